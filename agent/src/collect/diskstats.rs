//! Block devices: `node_disk_{reads,writes}_completed_total`,
//! `node_disk_{read,written}_bytes_total` and
//! `node_disk_io_time_seconds_total`, labelled `device` with the kernel's
//! name from `/proc/diskstats` (`sda`, `nvme0n1`, `vda`, `dm-0`), as
//! node_exporter's diskstats collector.
//!
//! Devices whose name matches the exclude pattern (`--disk-device-exclude`,
//! default node_exporter's `--collector.diskstats.device-exclude`,
//! [`DEFAULT_DISK_DEVICE_EXCLUDE`]) are left out: partitions (`sda1`,
//! `nvme0n1p1`, `vda1`), `ram`/`zram`, `loop` and floppy devices. A
//! partition's I/O is counted in its disk's; a device-mapper volume's
//! (`dm-N`: LVM, dm-crypt) is counted both in its own series and in the
//! disks below it, as with node_exporter, so a per-node sum over all devices
//! of a machine with LVM counts that I/O twice.
//!
//! [`DEFAULT_DISK_DEVICE_EXCLUDE`]: crate::config::DEFAULT_DISK_DEVICE_EXCLUDE

use std::collections::BTreeMap;

use super::{Collect, CollectError, MAX_DISKS, Series};
use crate::config::DeviceExclude;
use crate::metrics::{DISK_IO_TIME, DISK_READ, DISK_READS_COMPLETED, DISK_WRITES_COMPLETED, DISK_WRITTEN};
use crate::source::diskstats::{self, DiskStats, SECTOR_BYTES};

#[derive(Debug, Default)]
pub struct DiskstatsCollector {
    exclude: DeviceExclude,
}

impl DiskstatsCollector {
    pub fn new(exclude: DeviceExclude) -> Self {
        DiskstatsCollector { exclude }
    }
}

impl Collect for DiskstatsCollector {
    fn name(&self) -> &'static str {
        "diskstats"
    }

    fn collect(&mut self, out: &mut Vec<Series>) -> Result<(), CollectError> {
        if !cfg!(target_os = "linux") {
            return Err(CollectError("block device counters are only read on Linux (/proc/diskstats)".into()));
        }
        series(&diskstats::read()?, &self.exclude, out);
        Ok(())
    }
}

/// The series of the devices not excluded, sorted by name, at most
/// [`MAX_DISKS`].
pub fn series(disks: &[DiskStats], exclude: &DeviceExclude, out: &mut Vec<Series>) {
    let kept: BTreeMap<&str, &DiskStats> =
        disks.iter().filter(|d| !exclude.excludes(&d.device)).map(|d| (d.device.as_str(), d)).collect();
    for (device, d) in kept.into_iter().take(MAX_DISKS) {
        let label = || vec![("device", device.to_owned())];
        out.push(Series::new(&DISK_READS_COMPLETED, label(), d.reads_completed as f64));
        out.push(Series::new(&DISK_READ, label(), (d.sectors_read * SECTOR_BYTES) as f64));
        out.push(Series::new(&DISK_WRITES_COMPLETED, label(), d.writes_completed as f64));
        out.push(Series::new(&DISK_WRITTEN, label(), (d.sectors_written * SECTOR_BYTES) as f64));
        out.push(Series::new(&DISK_IO_TIME, label(), d.io_time_ms as f64 / 1000.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(out: &[Series]) -> Vec<&str> {
        out.iter().filter(|s| s.desc == &DISK_IO_TIME).map(|s| s.labels[0].1.as_str()).collect()
    }

    #[test]
    fn whole_disks_and_dm_stay_partitions_ram_and_loop_go() {
        let text = include_str!("../source/testdata/diskstats-server");
        let mut out = Vec::new();
        series(&diskstats::parse(text).unwrap(), &DeviceExclude::default(), &mut out);
        assert_eq!(devices(&out), ["dm-0", "dm-1", "nvme0n1", "sda"]);
        let nvme = |desc| out.iter().find(|s| s.desc == desc && s.labels[0].1 == "nvme0n1").unwrap().value;
        assert_eq!(nvme(&DISK_READS_COMPLETED), 88_000.0);
        assert_eq!(nvme(&DISK_READ), 7_040_000.0 * 512.0);
        assert_eq!(nvme(&DISK_WRITES_COMPLETED), 150_000.0);
        assert_eq!(nvme(&DISK_WRITTEN), 9_876_543.0 * 512.0);
        assert_eq!(nvme(&DISK_IO_TIME), 95.0);

        // The development VM: loop0-7 and zram0 go, vda stays.
        let mut out = Vec::new();
        let vm = diskstats::parse(include_str!("../source/testdata/diskstats-vm")).unwrap();
        series(&vm, &DeviceExclude::default(), &mut out);
        assert_eq!(devices(&out), ["vda"]);
    }

    #[test]
    fn the_exclude_pattern_is_configurable() {
        let disks = diskstats::parse(include_str!("../source/testdata/diskstats-server")).unwrap();
        let mut out = Vec::new();
        series(&disks, &"^(loop|dm-)\\d+$".parse().unwrap(), &mut out);
        assert_eq!(devices(&out), ["nvme0n1", "nvme0n1p1", "nvme0n1p2", "sda", "sda1", "sda2", "zram0"]);
        let mut out = Vec::new();
        series(&disks, &"".parse().unwrap(), &mut out);
        assert_eq!(devices(&out).len(), disks.len(), "an empty pattern excludes nothing");
    }

    #[test]
    fn devices_are_capped() {
        let disks: Vec<DiskStats> = (0..100)
            .map(|i| DiskStats {
                device: format!("dm-{i:03}"),
                reads_completed: 1,
                sectors_read: 1,
                writes_completed: 1,
                sectors_written: 1,
                io_time_ms: 1,
            })
            .collect();
        let mut out = Vec::new();
        series(&disks, &DeviceExclude::default(), &mut out);
        assert_eq!(devices(&out).len(), MAX_DISKS);
        assert_eq!(out.len(), MAX_DISKS * 5);
    }
}
