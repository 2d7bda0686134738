//! The client's domain types; `convert` maps them to and from the
//! generated protobuf types.

use std::sync::Arc;

use bytes::Bytes;

use crate::batch::Header;

/// How many replicas must have a batch before the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// acks=0: do not wait for the log write (the broker still answers).
    None,
    /// acks=1: the leader has written the batch.
    Leader,
    /// acks=all: every in-sync replica has the batch.
    #[default]
    All,
}

impl Acks {
    /// Parses `0`, `1` or `all` (or `-1`), as the CLI and the benches take it.
    pub fn parse(text: &str) -> Result<Acks, String> {
        match text {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(format!("expected 0, 1 or all, got {other:?}")),
        }
    }
}

/// Which offset `ListOffsets` resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (the offset the next record will get).
    Latest,
    /// The first offset whose record timestamp is >= this (ms).
    Timestamp(i64),
}

/// A resolved offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: u32,
    /// `None` when no record has a timestamp >= the one asked for.
    pub offset: Option<i64>,
    pub timestamp_ms: i64,
}

/// A topic, its effective configs and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    /// Tells this topic from an earlier one of the same name (16 hex
    /// digits; empty for topics from before ids).
    pub topic_id: String,
    pub replication_factor: u32,
    /// Every config key with its effective value (defaults included).
    pub configs: Vec<(String, String)>,
    pub partitions: Vec<PartitionDescription>,
}

/// One partition of a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionDescription {
    pub partition: u32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Eligible leader replicas: left the ISR while it was below
    /// min.insync.replicas, so they hold every acknowledged record.
    pub elr: Vec<i32>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub size_bytes: u64,
    /// Data directory holding the partition on its leader.
    pub data_dir: String,
}

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub address: String,
    pub metrics_address: String,
    /// Kafka wire-protocol listener; empty when the broker serves none.
    pub kafka_address: String,
    pub fault_domain: String,
    pub update_domain: String,
    pub alive: bool,
}

/// Brokers, controller and topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub brokers: Vec<BrokerInfo>,
    pub controller_id: i32,
    pub topics: Vec<TopicDescription>,
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    pub partition: u32,
    /// -1 with acks=0 when the broker did not report an offset.
    pub offset: i64,
}

/// A record returned by the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<Header>,
}

/// A partition of a topic; ordered by topic, then partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A rebalance plan (`Admin::plan_rebalance`): nothing has moved yet.
#[derive(Debug, Clone, PartialEq)]
pub struct RebalancePlan {
    /// By topic, then partition.
    pub moves: Vec<PartitionMove>,
    pub bytes_to_move: u64,
    /// In priority order.
    pub goals: Vec<BalanceGoal>,
    /// Set when some partition sizes are estimates (a leader did not answer).
    pub sizes_note: Option<String>,
}

/// One partition's new replica list (the first is the preferred leader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMove {
    pub topic: String,
    pub partition: u32,
    pub from_replicas: Vec<i32>,
    pub to_replicas: Vec<i32>,
    /// Partition size × replicas new to the list.
    pub bytes_to_move: u64,
}

/// A goal before and after the plan: a count of partitions violating the
/// two-domain rule, or a skew (max / mean).
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceGoal {
    pub name: String,
    pub before: f64,
    pub after: f64,
}

/// The reassignment in progress (`Admin::reassignment_status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReassignmentStatus {
    pub in_progress: bool,
    /// Partitions and bytes of the whole batch since none were pending.
    pub partitions_total: u32,
    pub bytes_total: u64,
    /// Bytes/s per broker and direction; None: unthrottled.
    pub throttle_bytes_per_sec: Option<u64>,
    pub started_ms: i64,
    /// Partitions still moving.
    pub pending: Vec<PartitionReassignment>,
    /// Bytes the new replicas still have to copy.
    pub bytes_left: u64,
}

/// One partition still moving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: u32,
    pub original: Vec<i32>,
    pub target: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub bytes: u64,
    pub bytes_left: u64,
}

/// What a preferred leader election did (`Admin::elect_preferred_leaders`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaderElection {
    pub moved: u32,
    pub already_preferred: u32,
    /// Preferred replica out of sync or down.
    pub not_eligible: u32,
}
