//! The kmon broker.
//!
//! Data path, top-down:
//!
//! ```text
//! gRPC Produce ─▶ service::produce ─▶ log::PartitionLog::append ─▶ log::segment (write, index)
//!                                            │ high watermark (watch)
//! gRPC Fetch   ─▶ service::fetch (long poll) ◀┘ ─▶ PartitionLog::read ─▶ segment::read (pread)
//! ```
//!
//! - [`server`]: `run(config, shutdown)`: bind, recover, serve, stop.
//! - [`broker`]: the broker's state and operations in domain terms, and the
//!   table of which operation goes to the quorum and which to a leader.
//! - [`controller`]: the metadata quorum (openraft) and its state machine.
//! - [`placement`]: the fault × update domain grid's diagonal walk and the
//!   replicas of new partitions.
//! - [`balance`]: the rebalance planner (fault × update domains, load,
//!   leaders) and the scale-down refusal.
//! - [`replication`]: ISR replication: replica manager, follower fetchers,
//!   broker lifecycle (register, heartbeat, fencing).
//! - [`group`]: consumer groups: coordinator, membership, offsets, lag.
//! - [`service`]: the gRPC API, one file per RPC; errors → status in one place.
//! - [`log`]: segmented partition logs, indexes, recovery, retention, and
//!   idempotent producers' sequences per partition.
//! - [`producer_ids`]: producer ids for idempotent producers, in blocks
//!   from the quorum.
//! - [`topics`]: topic metadata and Kafka's topic name rules.
//! - [`config`]: broker configuration and topic-level log configs.
//! - [`metrics`]: Kafka-named Prometheus metrics and `/metrics`.
//! - [`tls`]: TLS on the gRPC port and to other brokers; peer principals.
//! - [`tasks`]: the one shutdown token and task tracker of a broker.
//! - [`error`]: the crate's error type.
//! - [`fault`]: faults injected through the environment, for tests.

pub mod balance;
pub mod broker;
pub mod config;
pub mod controller;
pub mod error;
pub mod fault;
pub mod group;
pub mod log;
pub mod metrics;
pub mod placement;
pub mod producer_ids;
pub mod replication;
pub mod server;
pub mod service;
pub mod tasks;
pub mod tls;
pub mod topics;

pub use broker::Broker;
pub use config::{BrokerConfig, FlushPolicy, LogConfig};
pub use error::BrokerError;
pub use server::{READY_PREFIX, run};
