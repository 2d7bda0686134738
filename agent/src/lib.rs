//! The kmon node agent: host metrics under node_exporter names, served on
//! its own `/metrics` and shipped to the cluster.
//!
//! Data flow, every `interval` (default 5 s):
//!
//! ```text
//! collect::* (one file per collector) ─▶ Vec<Series> ─┬─▶ metrics::Snapshot ─▶ GET /metrics (OpenMetrics)
//!                                                    └─▶ NodeSample (sequence n) ─▶ buffer (disk, fsync)
//! collect::cluster (Metadata + brokers' /metrics) ───────▶ (same NodeSample, not on /metrics)
//! ship (own task): buffer.read_pending ─▶ gRPC `Ship` client stream ─▶ broker ─▶ `__kmon_node_metrics`
//!                  ShipAck ─▶ buffer.ack(n)
//! ```
//!
//! Every sample is written to the disk buffer first and forgotten only once
//! a broker acknowledged it, so a cluster that is down, or restarting,
//! loses nothing as long as the buffer holds (`--buffer-max-bytes`); when it
//! is full the oldest samples go and `kmon_agent_samples_dropped_total`
//! counts them. A collector that fails counts
//! `kmon_agent_scrape_errors_total{collector}` and the loop goes on.
//!
//! - [`agent`]: `run(config, shutdown)`: bind, open the buffer, run the
//!   collect and ship loops until shutdown.
//! - [`config`]: [`AgentConfig`], parsed and checked at start-up.
//! - [`collect`]: the collectors (`filesystem`, `diskstats`, `network`,
//!   `cpu`, `memory`, `load`, `process`), the cluster sampler (`cluster`: throughput, lag,
//!   ISR and balance figures of the cluster, so its history is shipped
//!   too) and the [`collect::Series`] they produce. Which
//!   series exist and how their label cardinality is bounded is documented
//!   there.
//! - [`source`]: parsers of the Linux files read directly (`/proc/diskstats`,
//!   `/proc/mounts`, `/sys/class/net/IF/speed`), each taking the file's text.
//! - [`metrics`]: metric names (constants), the agent's own counters and
//!   the `/metrics` server.
//! - [`buffer`]: the disk buffer; its module doc specifies the on-disk
//!   layout and invariants.
//! - [`ship`]: one `Ship` stream per round to the first reachable bootstrap
//!   broker.
//! - [`error`]: the crate's error type, [`AgentError`], with real messages.

pub mod agent;
pub mod buffer;
pub mod collect;
pub mod config;
pub mod error;
pub mod metrics;
pub mod ship;
pub mod source;

pub use agent::{READY_PREFIX, run, run_with};
pub use config::AgentConfig;
pub use error::AgentError;
