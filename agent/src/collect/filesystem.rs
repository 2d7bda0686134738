//! File systems: `node_filesystem_{size,avail}_bytes`,
//! `node_filesystem_files`, `node_filesystem_files_free` and
//! `node_filesystem_readonly`, labelled `device`, `mountpoint`, `fstype`,
//! as node_exporter's filesystem collector: the mounts of `/proc/mounts`,
//! each measured with `statvfs(3)` on its mount point.
//!
//! - size = `f_blocks × f_frsize`, avail = `f_bavail × f_frsize` (space
//!   for unprivileged users), files = `f_files`, files_free = `f_ffree`;
//! - readonly = 1 when mounted `ro` (its `/proc/mounts` options) or
//!   `statvfs` reports `ST_RDONLY`, else 0.
//!
//! Pseudo file systems are skipped (node_exporter's default
//! `fs-types-exclude`, plus memory file systems like `tmpfs`), and so is a
//! mount point hidden by a later mount on it. A mount whose `statvfs` fails
//! (no permission, a stale network mount) is left out of the interval; the
//! collector fails only when no file system could be measured. `statvfs` of
//! a hung network file system blocks the collection until it answers.

use std::collections::BTreeMap;

use super::{Collect, CollectError, MAX_FILESYSTEMS, Series};
use crate::metrics::{FILESYSTEM_AVAIL, FILESYSTEM_FILES, FILESYSTEM_FILES_FREE, FILESYSTEM_READONLY, FILESYSTEM_SIZE};
use crate::source::mounts::{self, Mount};

/// node_exporter's default `--collector.filesystem.fs-types-exclude`, plus
/// `tmpfs`-like memory file systems (no disk behind them).
const PSEUDO_FS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
    "tmpfs",
    "ramfs",
    "nfsd",
    "efivarfs",
];

#[derive(Debug, Default)]
pub struct FilesystemCollector;

/// One file system's figures, from `statvfs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub size_bytes: u64,
    pub avail_bytes: u64,
    pub files: u64,
    pub files_free: u64,
    /// `ST_RDONLY` among the `statvfs` flags.
    pub read_only: bool,
}

impl Collect for FilesystemCollector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&mut self, out: &mut Vec<Series>) -> Result<(), CollectError> {
        if !cfg!(target_os = "linux") {
            return Err(CollectError("file systems are only listed on Linux (/proc/mounts)".into()));
        }
        let mounts = mounts::read()?;
        let chosen = select(&mounts);
        let mut measured = Vec::with_capacity(chosen.len());
        let mut first_failure = None;
        for mount in chosen {
            match statvfs(&mount.mountpoint) {
                Ok(usage) => measured.push((mount, usage)),
                Err(err) => {
                    first_failure.get_or_insert_with(|| format!("statvfs {}: {err}", mount.mountpoint));
                }
            }
        }
        if measured.is_empty() {
            return Err(CollectError(first_failure.unwrap_or_else(|| "no file systems mounted".into())));
        }
        series(&measured, out);
        Ok(())
    }
}

fn statvfs(mountpoint: &str) -> std::io::Result<Usage> {
    let st = rustix::fs::statvfs(mountpoint)?;
    Ok(Usage {
        size_bytes: st.f_blocks.saturating_mul(st.f_frsize),
        avail_bytes: st.f_bavail.saturating_mul(st.f_frsize),
        files: st.f_files,
        files_free: st.f_ffree,
        read_only: st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
    })
}

/// The mounts to measure: no pseudo file systems, one per mount point (the
/// last mounted, which hides the others), sorted by mount point, at most
/// [`MAX_FILESYSTEMS`].
pub fn select(mounts: &[Mount]) -> Vec<&Mount> {
    let mut chosen: BTreeMap<&str, &Mount> = BTreeMap::new();
    for m in mounts.iter().filter(|m| !PSEUDO_FS.contains(&m.fstype.as_str())) {
        if chosen.len() < MAX_FILESYSTEMS || chosen.contains_key(m.mountpoint.as_str()) {
            chosen.insert(&m.mountpoint, m);
        }
    }
    chosen.into_values().collect()
}

/// The series of the measured file systems.
pub fn series(measured: &[(&Mount, Usage)], out: &mut Vec<Series>) {
    for (m, usage) in measured {
        let labels =
            || vec![("device", m.device.clone()), ("mountpoint", m.mountpoint.clone()), ("fstype", m.fstype.clone())];
        let read_only = m.read_only() || usage.read_only;
        out.push(Series::new(&FILESYSTEM_SIZE, labels(), usage.size_bytes as f64));
        out.push(Series::new(&FILESYSTEM_AVAIL, labels(), usage.avail_bytes as f64));
        out.push(Series::new(&FILESYSTEM_FILES, labels(), usage.files as f64));
        out.push(Series::new(&FILESYSTEM_FILES_FREE, labels(), usage.files_free as f64));
        out.push(Series::new(&FILESYSTEM_READONLY, labels(), if read_only { 1.0 } else { 0.0 }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USAGE: Usage = Usage { size_bytes: 100, avail_bytes: 40, files: 1000, files_free: 900, read_only: false };

    fn mount(device: &str, mountpoint: &str, fstype: &str, options: &str) -> Mount {
        Mount {
            device: device.into(),
            mountpoint: mountpoint.into(),
            fstype: fstype.into(),
            options: options.split(',').map(str::to_owned).collect(),
        }
    }

    fn value(out: &[Series], desc: &crate::metrics::Desc, mountpoint: &str) -> f64 {
        out.iter().find(|s| s.desc == desc && s.labels[1].1 == mountpoint).unwrap().value
    }

    #[test]
    fn the_captured_mounts_give_the_root_file_system_only() {
        let mounts = mounts::parse(include_str!("../source/testdata/mounts-vm")).unwrap();
        let chosen = select(&mounts);
        assert_eq!(chosen.len(), 1, "{chosen:?}");
        assert_eq!((chosen[0].device.as_str(), chosen[0].mountpoint.as_str()), ("/dev/vda", "/"));
    }

    #[test]
    fn pseudo_file_systems_are_skipped_and_a_hidden_mount_replaced() {
        let list = [
            mount("/dev/vdb", "/data", "xfs", "rw"),
            mount("proc", "/proc", "proc", "rw"),
            mount("/dev/vda", "/", "ext4", "rw,relatime"),
            mount("overlay", "/var/lib/x", "overlay", "rw"),
            mount("/dev/vdc", "/data", "ext4", "ro,relatime"),
        ];
        let chosen = select(&list);
        let points: Vec<&str> = chosen.iter().map(|m| m.mountpoint.as_str()).collect();
        assert_eq!(points, ["/", "/data", "/var/lib/x"]);
        assert_eq!(chosen[1].device, "/dev/vdc", "the later mount hides the earlier");

        let measured: Vec<(&Mount, Usage)> = chosen.into_iter().map(|m| (m, USAGE)).collect();
        let mut out = Vec::new();
        series(&measured, &mut out);
        assert_eq!(out.len(), 3 * 5);
        assert_eq!(value(&out, &FILESYSTEM_READONLY, "/data"), 1.0);
        assert_eq!(value(&out, &FILESYSTEM_READONLY, "/"), 0.0);
        assert_eq!(value(&out, &FILESYSTEM_FILES, "/"), 1000.0);
        assert_eq!(value(&out, &FILESYSTEM_FILES_FREE, "/"), 900.0);
        assert_eq!(value(&out, &FILESYSTEM_AVAIL, "/"), 40.0);
        let root = out.iter().find(|s| s.desc == &FILESYSTEM_SIZE && s.labels[1].1 == "/").unwrap();
        assert_eq!(
            root.labels,
            vec![("device", "/dev/vda".to_owned()), ("mountpoint", "/".to_owned()), ("fstype", "ext4".to_owned())]
        );
    }

    #[test]
    fn statvfs_read_only_flag_counts_too() {
        let m = mount("/dev/sr0", "/media/cd", "udf", "rw");
        let mut out = Vec::new();
        series(&[(&m, Usage { read_only: true, ..USAGE })], &mut out);
        assert_eq!(value(&out, &FILESYSTEM_READONLY, "/media/cd"), 1.0);
    }

    #[test]
    fn file_systems_are_capped() {
        let list: Vec<Mount> =
            (0..100).map(|i| mount(&format!("/dev/d{i}"), &format!("/m{i:03}"), "xfs", "rw")).collect();
        assert_eq!(select(&list).len(), MAX_FILESYSTEMS);
    }

    #[test]
    fn statvfs_of_the_root_gives_sane_figures() {
        let root = statvfs("/").unwrap();
        assert!(root.size_bytes > 0 && root.avail_bytes <= root.size_bytes, "{root:?}");
        assert!(root.files_free <= root.files, "{root:?}");
    }
}
