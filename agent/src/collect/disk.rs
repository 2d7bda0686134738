//! File systems (size, available space) and disks (bytes read and written),
//! from sysinfo's `Disks`.
//!
//! sysinfo 0.40 lists *mounted file systems*; each one's `usage()` is the
//! I/O counters of its block device, read from `/proc/diskstats` on Linux
//! (sectors × 512), i.e. per device, not per process. So
//! `node_disk_*_bytes_total{device}` covers the block devices that back a
//! mounted file system (the ones a broker can write to), once per device
//! however often it is mounted; unmounted disks are not seen.

use std::collections::BTreeMap;

use sysinfo::{DiskRefreshKind, Disks};

use super::{Collect, CollectError, MAX_DISKS, MAX_FILESYSTEMS, Series};
use crate::metrics::{DISK_READ, DISK_WRITTEN, FILESYSTEM_AVAIL, FILESYSTEM_SIZE};

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
pub struct DiskCollector {
    disks: Option<Disks>,
}

/// One mounted file system as the collector sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mounted {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
    pub size: u64,
    pub avail: u64,
    pub read_bytes: u64,
    pub written_bytes: u64,
}

impl Collect for DiskCollector {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn collect(&mut self, out: &mut Vec<Series>) -> Result<(), CollectError> {
        let refresh = DiskRefreshKind::nothing().with_storage().with_io_usage();
        let disks = match &mut self.disks {
            Some(disks) => {
                disks.refresh_specifics(true, refresh);
                disks
            }
            None => self
                .disks
                .insert(Disks::new_with_refreshed_list_specifics(refresh).map_err(|e| CollectError(e.to_string()))?),
        };
        let mounted: Vec<Mounted> = disks
            .iter()
            .map(|d| {
                let usage = d.usage();
                Mounted {
                    device: d.name().to_string_lossy().into_owned(),
                    mountpoint: d.mount_point().to_string_lossy().into_owned(),
                    fstype: d.file_system().to_string_lossy().into_owned(),
                    size: d.total_space(),
                    avail: d.available_space(),
                    read_bytes: usage.total_read_bytes,
                    written_bytes: usage.total_written_bytes,
                }
            })
            .collect();
        if mounted.is_empty() {
            return Err(CollectError("no file systems listed".into()));
        }
        series(&mounted, out);
        Ok(())
    }
}

/// The bounded series of a list of mounted file systems.
pub fn series(mounted: &[Mounted], out: &mut Vec<Series>) {
    let mut filesystems: BTreeMap<&str, &Mounted> = BTreeMap::new();
    let mut devices: BTreeMap<&str, &Mounted> = BTreeMap::new();
    for m in mounted {
        if PSEUDO_FS.contains(&m.fstype.as_str()) {
            continue;
        }
        if filesystems.len() < MAX_FILESYSTEMS || filesystems.contains_key(m.mountpoint.as_str()) {
            filesystems.insert(&m.mountpoint, m);
        }
        if let Some(device) = m.device.strip_prefix("/dev/")
            && (devices.len() < MAX_DISKS || devices.contains_key(device))
        {
            devices.entry(device).or_insert(m);
        }
    }
    for m in filesystems.values() {
        let labels =
            vec![("device", m.device.clone()), ("mountpoint", m.mountpoint.clone()), ("fstype", m.fstype.clone())];
        out.push(Series::new(&FILESYSTEM_SIZE, labels.clone(), m.size as f64));
        out.push(Series::new(&FILESYSTEM_AVAIL, labels, m.avail as f64));
    }
    for (device, m) in devices {
        out.push(Series::new(&DISK_READ, vec![("device", device.to_owned())], m.read_bytes as f64));
        out.push(Series::new(&DISK_WRITTEN, vec![("device", device.to_owned())], m.written_bytes as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounted(device: &str, mountpoint: &str, fstype: &str, written: u64) -> Mounted {
        Mounted {
            device: device.into(),
            mountpoint: mountpoint.into(),
            fstype: fstype.into(),
            size: 100,
            avail: 40,
            read_bytes: 7,
            written_bytes: written,
        }
    }

    #[test]
    fn pseudo_file_systems_are_skipped_and_devices_counted_once() {
        let list = [
            mounted("/dev/vda", "/", "ext4", 5),
            mounted("/dev/vda", "/work", "ext4", 5),
            mounted("proc", "/proc", "proc", 0),
            mounted("overlay", "/var/lib/x", "overlay", 0),
        ];
        let mut out = Vec::new();
        series(&list, &mut out);
        let fs: Vec<&str> =
            out.iter().filter(|s| s.desc == &FILESYSTEM_AVAIL).map(|s| s.labels[1].1.as_str()).collect();
        assert_eq!(fs, ["/", "/var/lib/x", "/work"]);
        let written: Vec<_> = out.iter().filter(|s| s.desc == &DISK_WRITTEN).collect();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].labels, vec![("device", "vda".to_owned())]);
        assert_eq!(written[0].value, 5.0);
    }

    #[test]
    fn file_systems_are_capped() {
        let list: Vec<Mounted> =
            (0..100).map(|i| mounted(&format!("/dev/d{i}"), &format!("/m{i:03}"), "xfs", 1)).collect();
        let mut out = Vec::new();
        series(&list, &mut out);
        assert_eq!(out.iter().filter(|s| s.desc == &FILESYSTEM_SIZE).count(), MAX_FILESYSTEMS);
        assert_eq!(out.iter().filter(|s| s.desc == &DISK_READ).count(), MAX_DISKS);
    }
}
