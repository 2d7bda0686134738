//! kmon's wire protocol.
//!
//! - [`v1`]: the client API (topics, produce, fetch, offsets, metadata),
//!   generated from `proto/kmon.proto` by protox + tonic-prost-build.
//! - [`controller`]: the brokers' internal controller quorum (Raft), from
//!   `proto/controller.proto`; kept apart from the client API.
//! - [`replication`]: followers pulling from leaders, leader-epoch
//!   truncation and broker heartbeats, from `proto/replication.proto`.
//! - [`agent`]: node agents shipping host samples to the cluster, from
//!   `proto/agent.proto`.
//! - [`groups`]: Kafka's placement of a group on `__consumer_offsets`.
//! - [`node_sample`]: the record stored in `__kmon_node_metrics` per agent
//!   sample (written by the brokers, read by `kmon report`).
//! - [`consumer_protocol`]: Kafka's `ConsumerProtocol` (member subscriptions
//!   and assignments inside the group protocol), shared by every client.
//! - [`metric_names`]: every metric name kmon exports, for exporters and
//!   readers alike.
//! - [`record_batch`]: Kafka's RecordBatch v2 codec, the one used by the
//!   producer, the broker's log and the consumers.
//! - [`error_metadata`]: the status metadata keys every error carries.
#![allow(unreachable_pub, clippy::all)]

/// Generated client API.
pub mod v1 {
    tonic::include_proto!("kmon.v1");
}

/// Generated internal protocol of the controller quorum (Raft messages as
/// serde_json payloads).
pub mod controller {
    pub mod v1 {
        tonic::include_proto!("kmon.controller.v1");
    }
}

/// Generated internal protocol between brokers: replica fetch, leader-epoch
/// truncation, heartbeats.
pub mod replication {
    pub mod v1 {
        tonic::include_proto!("kmon.replication.v1");
    }
}

/// Generated internal protocol of the node agents: `Ship` (client stream of
/// samples) and `ListAgents`.
pub mod agent {
    pub mod v1 {
        tonic::include_proto!("kmon.agent.v1");
    }
}

/// Which `__consumer_offsets` partition coordinates a group: part of the
/// wire contract, shared by brokers and clients.
pub mod consumer_protocol;
pub mod groups;
pub mod metric_names;
pub mod node_sample;
pub mod record_batch;

/// Keys of the gRPC status metadata that kmon puts on every error.
pub mod error_metadata {
    /// Stable error name, one of `v1::ErrorCode`'s names.
    pub const ERROR_CODE: &str = "kmon-error";
    /// On OFFSET_OUT_OF_RANGE: the first valid offset.
    pub const LOG_START_OFFSET: &str = "kmon-log-start-offset";
    /// On OFFSET_OUT_OF_RANGE: the log end offset.
    pub const LOG_END_OFFSET: &str = "kmon-log-end-offset";
    /// On NOT_LEADER_OR_FOLLOWER: the address of the current leader.
    pub const LEADER_ADDRESS: &str = "kmon-leader";
}
