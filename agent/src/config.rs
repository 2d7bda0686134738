//! The agent's configuration, checked once at start-up.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::AgentError;

/// Smallest accepted `--buffer-max-bytes`: a few hundred samples.
pub const MIN_BUFFER_BYTES: u64 = 1 << 20;
/// Default `--buffer-max-bytes`: 64 MiB, about three days of 5 s samples.
pub const DEFAULT_BUFFER_BYTES: u64 = 64 << 20;
/// Default collection and shipping interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

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
