//! The broker's one error type. Each variant maps to a stable wire error
//! code (`kmon.v1.ErrorCode`) and a gRPC status in `service::status`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("unknown partition {partition} of topic '{topic}' (it has {partitions} partitions: 0..{partitions})")]
    UnknownPartition { topic: String, partition: u32, partitions: u32 },
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: String },
    #[error("invalid config {key}={value}: {reason}")]
    InvalidConfig { key: String, value: String, reason: String },
    #[error("invalid partition count {0}: must be between 1 and 100000")]
    InvalidPartitions(u32),
    #[error("replication factor {requested} is larger than the {available} available broker(s)")]
    InvalidReplicationFactor { requested: u32, available: u32 },
    #[error("record batch of {size} bytes exceeds max.message.bytes = {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    #[error(
        "offset {offset} is out of range for {topic}-{partition}: valid offsets are {log_start}..{log_end} (log start offset to log end offset)"
    )]
    OffsetOutOfRange { topic: String, partition: u32, offset: i64, log_start: i64, log_end: i64 },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("storage error: {context}")]
    Storage {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid broker configuration: {0}")]
    Config(String),
    #[error("log directory {path} is corrupt: {reason}")]
    CorruptLogDir { path: PathBuf, reason: String },
    #[error("this broker is not the leader of {topic}-{partition}{}", leader_hint(.leader))]
    NotLeader { topic: String, partition: u32, leader: Option<String> },
    #[error(
        "not enough in-sync replicas for {topic}-{partition}: {isr} in sync, min.insync.replicas = {min}; nothing was written"
    )]
    NotEnoughReplicas { topic: String, partition: u32, isr: usize, min: u32 },
    #[error(
        "{topic}-{partition}: written to the leader, but the in-sync replicas fell to {isr} (min.insync.replicas = {min}) before it was replicated"
    )]
    NotEnoughReplicasAfterAppend { topic: String, partition: u32, isr: usize, min: u32 },
    #[error(
        "{topic}-{partition}: the new leader's high watermark ({high_watermark}) has not reached the start of its leader epoch ({epoch_start_offset}) yet; retry shortly"
    )]
    OffsetNotAvailable { topic: String, partition: u32, high_watermark: i64, epoch_start_offset: i64 },
    #[error("{topic}-{partition}: fenced leader epoch {requested} (current {current})")]
    FencedLeaderEpoch { topic: String, partition: u32, requested: i32, current: i32 },
    #[error("{topic}-{partition}: {refusal}")]
    ProducerSequence { topic: String, partition: u32, refusal: crate::log::producer_state::SequenceError },
    #[error("timed out after {waited_ms} ms waiting for {what}")]
    RequestTimedOut { what: String, waited_ms: u64 },
    #[error("cluster metadata: {0}")]
    Metadata(#[from] crate::controller::state::MetadataError),
    #[error("metadata quorum: {0}")]
    Controller(String),
    #[error("{0}")]
    Group(#[from] crate::group::GroupError),
    #[error("{}", crate::balance::scale_down::refusal(&format!("removing broker {broker_id}")))]
    ScaleDownRefused { broker_id: i32 },
    #[error("broker not available: {0}; retry")]
    Unavailable(String),
    #[error("internal error in the broker: {0}")]
    Internal(String),
    #[error(
        "{principal} is not authorized to {operation} {resource_type} '{resource_name}' (an ACL denies it or none allows it; see `kmon acl list`)"
    )]
    AuthorizationFailed {
        principal: String,
        operation: crate::controller::state::acls::AclOperation,
        resource_type: crate::controller::state::acls::ResourceType,
        resource_name: String,
    },
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
}

fn leader_hint(leader: &Option<String>) -> String {
    match leader {
        Some(address) => format!(" (the leader is at {address})"),
        None => " (no leader right now: an election may be in progress)".into(),
    }
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

/// Adds context to I/O errors: `file.sync_data().storage(|| format!(...))`.
pub trait IoContext<T> {
    fn storage(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn storage(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| BrokerError::Storage { context: context(), source })
    }
}
