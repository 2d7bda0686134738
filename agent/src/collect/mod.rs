//! The collectors, one file each, all behind [`Collect`]. A collector reads
//! its figures once per interval and appends [`Series`]; one that fails
//! returns an error, which the agent counts in
//! `kmon_agent_scrape_errors_total{collector}`, and the others still run.
//!
//! | collector | source | series (labels) |
//! |---|---|---|
//! | [`filesystem`] | `/proc/mounts`, `statvfs` of each mount point (Linux) | `node_filesystem_{size,avail}_bytes`, `node_filesystem_files`, `node_filesystem_files_free`, `node_filesystem_readonly`, all `{device,mountpoint,fstype}` |
//! | [`diskstats`] | `/proc/diskstats` (Linux) | `node_disk_{reads,writes}_completed_total{device}`, `node_disk_{read,written}_bytes_total{device}`, `node_disk_io_time_seconds_total{device}` |
//! | [`network`] | sysinfo `Networks`; drops and link speed from `/sys/class/net/*` (Linux) | `node_network_{receive,transmit}_{bytes,packets,errs,drop}_total{device}`, `node_network_speed_bytes{device}` (only when the speed is known) |
//! | [`cpu`] | `/proc/stat` (Linux) | `node_cpu_seconds_total{cpu,mode}` |
//! | [`memory`] | sysinfo `System` (MemTotal, MemAvailable) | `node_memory_MemTotal_bytes`, `node_memory_MemAvailable_bytes` |
//! | [`load`] | sysinfo `System::load_average` | `node_load1`, `node_load5`, `node_load15` |
//! | [`cluster`] (async, shipped only) | `Metadata` and the brokers' `/metrics`, see its module doc | `kmon_cluster_*`, `kafka_server_brokertopicmetrics_{bytesin,bytesout,messagesin}_total{broker}`, `kafka_consumergroup_lag_sum{consumergroup,topic}` |
//! | [`process`] | sysinfo processes named `kmon` run as `kmon broker` | `kmon_node_broker_resident_memory_bytes{pid,broker}`, `kmon_node_broker_cpu_seconds_total{pid,broker}` |
//!
//! ## Label cardinality
//!
//! Every label set is bounded by the hardware and is capped:
//! - file systems: pseudo file systems are skipped (`proc`, `sysfs`,
//!   `tmpfs`, `devtmpfs`, `cgroup*`, `squashfs`, ... as node_exporter's
//!   default `fs-types-exclude`), one series per mount point, at most
//!   [`MAX_FILESYSTEMS`]; `overlay` is kept because a containerised broker
//!   keeps its data there.
//! - disks: the kernel's block devices but those matching
//!   `--disk-device-exclude` (by default, as node_exporter: partitions,
//!   `ram`/`zram`, `loop`, floppies), so whole disks and `dm-N`; at most
//!   [`MAX_DISKS`].
//! - network interfaces: `lo` is kept (every byte of a local `kmon up`
//!   cluster goes over it); per-container virtual interfaces (`veth*`,
//!   `cali*`, `lxc*`), which come and go with containers, are skipped; at
//!   most [`MAX_INTERFACES`].
//! - cpu: one per logical CPU × the 8 node_exporter modes.
//! - broker processes: one per running `kmon broker` (pid, broker id from
//!   `--id`, empty when not given); series of an exited process disappear
//!   at the next collection.
//!
//! What is beyond a cap is left out (sorted by name, the first ones stay).

pub mod cluster;
pub mod cpu;
pub mod diskstats;
pub mod filesystem;
pub mod load;
pub mod memory;
pub mod network;
pub mod process;

use crate::config::AgentConfig;
use crate::metrics::Desc;

/// Bound on file system series (per metric).
pub const MAX_FILESYSTEMS: usize = 64;
/// Bound on disk devices.
pub const MAX_DISKS: usize = 64;
/// Bound on network interfaces.
pub const MAX_INTERFACES: usize = 32;

/// One value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub desc: &'static Desc,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Series {
    pub fn new(desc: &'static Desc, labels: Vec<(&'static str, String)>, value: f64) -> Self {
        Series { desc, labels, value }
    }
}

/// A collector's failure: what went wrong, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CollectError(pub String);

impl From<std::io::Error> for CollectError {
    fn from(err: std::io::Error) -> Self {
        CollectError(err.to_string())
    }
}

/// One collector.
pub trait Collect: Send {
    /// The `collector` label of its scrape errors.
    fn name(&self) -> &'static str;
    /// Appends this interval's series to `out`.
    fn collect(&mut self, out: &mut Vec<Series>) -> Result<(), CollectError>;
}

/// Every collector, in exposition order.
pub fn all(config: &AgentConfig) -> Vec<Box<dyn Collect>> {
    vec![
        Box::new(cpu::CpuCollector),
        Box::new(memory::MemoryCollector::default()),
        Box::new(load::LoadCollector),
        Box::new(filesystem::FilesystemCollector),
        Box::new(diskstats::DiskstatsCollector::new(config.disk_device_exclude.clone())),
        Box::new(network::NetworkCollector::default()),
        Box::new(process::ProcessCollector::default()),
    ]
}

/// Runs every collector; returns the series and the names of those that
/// failed (with why).
pub fn collect_all(collectors: &mut [Box<dyn Collect>]) -> (Vec<Series>, Vec<(&'static str, CollectError)>) {
    let mut out = Vec::with_capacity(128);
    let mut failed = Vec::new();
    for collector in collectors.iter_mut() {
        let before = out.len();
        if let Err(err) = collector.collect(&mut out) {
            // A failed collector contributes nothing half-done.
            out.truncate(before);
            failed.push((collector.name(), err));
        }
    }
    (out, failed)
}
