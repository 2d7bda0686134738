//! The agent's configuration, checked once at start-up.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;

use crate::error::AgentError;

/// Smallest accepted `--buffer-max-bytes`: a few hundred samples.
pub const MIN_BUFFER_BYTES: u64 = 1 << 20;
/// Default `--buffer-max-bytes`: 64 MiB, about three days of 5 s samples.
pub const DEFAULT_BUFFER_BYTES: u64 = 64 << 20;
/// Default collection and shipping interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Default `--disk-device-exclude`: node_exporter's default
/// `--collector.diskstats.device-exclude` (partitions, ram, zram, loop and
/// floppy devices), so whole disks and `dm-N` stay.
pub const DEFAULT_DISK_DEVICE_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Brokers to ship to, `HOST:PORT`, tried in turn.
    pub bootstrap: Vec<String>,
    /// Where `/metrics` is served, `HOST:PORT` (port 0: any free port).
    pub metrics_listen: String,
    /// How often a sample is taken and shipped.
    pub interval: Duration,
    /// This node's name in the samples (default: the host name).
    pub node: String,
    /// The disk buffer's directory.
    pub buffer_dir: PathBuf,
    /// Bound on the disk buffer's files; when full the oldest samples go.
    pub buffer_max_bytes: u64,
    /// Also take the cluster sample (Metadata and the brokers' /metrics,
    /// see [`crate::collect::cluster`]) and ship it with the host series.
    pub cluster_sample: bool,
    /// Block devices the `node_disk_*` series leave out.
    pub disk_device_exclude: DeviceExclude,
}

/// Which block devices (by their `/proc/diskstats` name) the disk series
/// leave out: a regular expression, parsed once at start-up; an empty one
/// leaves out nothing. Default: [`DEFAULT_DISK_DEVICE_EXCLUDE`].
#[derive(Debug, Clone)]
pub struct DeviceExclude(Option<Regex>);

impl DeviceExclude {
    pub fn excludes(&self, device: &str) -> bool {
        self.0.as_ref().is_some_and(|re| re.is_match(device))
    }
}

impl Default for DeviceExclude {
    fn default() -> Self {
        DEFAULT_DISK_DEVICE_EXCLUDE.parse().expect("the default pattern is valid")
    }
}

impl FromStr for DeviceExclude {
    type Err = AgentError;

    fn from_str(pattern: &str) -> Result<Self, AgentError> {
        if pattern.is_empty() {
            return Ok(DeviceExclude(None));
        }
        Regex::new(pattern)
            .map(|re| DeviceExclude(Some(re)))
            .map_err(|err| AgentError::Config(format!("--disk-device-exclude {pattern:?} is not a regex: {err}")))
    }
}

impl AgentConfig {
    /// Rejects values the agent cannot run with, with a clear message.
    pub fn validate(&self) -> Result<(), AgentError> {
        if self.bootstrap.iter().all(|b| b.trim().is_empty()) {
            return Err(AgentError::Config("--bootstrap needs at least one HOST:PORT".into()));
        }
        if self.interval < Duration::from_millis(10) {
            return Err(AgentError::Config(format!("--interval {:?} is below 10ms", self.interval)));
        }
        if self.node.is_empty() {
            return Err(AgentError::Config("--node must not be empty".into()));
        }
        if self.buffer_max_bytes < MIN_BUFFER_BYTES {
            return Err(AgentError::Config(format!(
                "--buffer-max-bytes {} is below the minimum {MIN_BUFFER_BYTES}",
                self.buffer_max_bytes
            )));
        }
        Ok(())
    }
}

/// The host name, or `localhost` when it cannot be read.
pub fn default_node_name() -> String {
    sysinfo::System::host_name().ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_device_exclude_is_node_exporters() {
        let exclude = DeviceExclude::default();
        for kept in ["sda", "vda", "xvda", "hdb", "nvme0n1", "nvme10n2", "dm-0", "md0", "mmcblk0", "sr0"] {
            assert!(!exclude.excludes(kept), "{kept} is a whole disk");
        }
        for dropped in ["sda1", "vda15", "xvdb2", "nvme0n1p1", "nvme1n2p12", "loop0", "ram3", "zram0", "fd0"] {
            assert!(exclude.excludes(dropped), "{dropped} is left out");
        }
    }

    #[test]
    fn a_bad_pattern_is_rejected_with_the_flag_named() {
        let err = "^(sd".parse::<DeviceExclude>().unwrap_err().to_string();
        assert!(err.starts_with("invalid configuration: --disk-device-exclude \"^(sd\" is not a regex"), "{err}");
        assert!(!"".parse::<DeviceExclude>().unwrap().excludes("loop0"));
    }
}
