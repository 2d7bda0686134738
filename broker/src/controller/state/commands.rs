//! The commands that change the metadata (every write goes through the
//! Raft log), what applying one produced, and why one was refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::acls::AclBinding;
use super::records::{BrokerId, BrokerRecord};

/// One partition to move, as proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaMove {
    pub topic: String,
    pub partition: u32,
    pub target: Vec<BrokerId>,
    pub bytes: u64,
}

/// A change to the metadata. Every write goes through the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// A broker (re)starting: records its addresses and domains, unfenced.
    RegisterBroker(BrokerRecord),
    /// The active controller saw no heartbeat within the session timeout.
    FenceBroker {
        id: BrokerId,
    },
    /// A fenced broker heartbeats again.
    UnfenceBroker {
        id: BrokerId,
    },
    CreateTopic {
        name: String,
        partitions: u32,
        replication_factor: u32,
        configs: BTreeMap<String, String>,
        /// Chosen at random by the proposer (the state machine must not).
        #[serde(default)]
        topic_id: u64,
        /// The proposer's min.insync.replicas for it (0: not sent).
        #[serde(default)]
        min_insync_replicas: u32,
    },
    DeleteTopic {
        name: String,
    },
    /// A partition leader shrinks or expands its ISR (Kafka's AlterPartition).
    AlterIsr {
        topic: String,
        partition: u32,
        leader: BrokerId,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<BrokerId>,
    },
    /// Starts moving partitions to new replica lists (all or nothing).
    StartReassignment {
        moves: Vec<ReplicaMove>,
        throttle_bytes_per_sec: Option<u64>,
        now_ms: i64,
    },
    /// Every target replica of a moving partition is in its ISR: drop the
    /// leaving replicas and move leadership to the preferred one. Proposed
    /// by the active controller.
    CompleteReassignment {
        topic: String,
        partition: u32,
    },
    /// Reverts every pending move to its original replicas.
    CancelReassignment,
    /// Changes the throttle of the reassignment in progress.
    SetReassignmentThrottle {
        throttle_bytes_per_sec: Option<u64>,
    },
    /// Moves leadership to the preferred (first) replica wherever it is in
    /// the ISR and alive. Empty `topics`: every topic.
    ElectPreferredLeaders {
        topics: Vec<String>,
    },
    /// A broker's next block of producer ids for idempotent producers.
    AllocateProducerIds {
        broker: BrokerId,
        count: u32,
    },
    /// A producer with a transactional id starts: its id again with the
    /// next epoch (fencing the previous instance), or a new id.
    InitTransactionalProducer {
        transactional_id: String,
    },
    /// Adds ACLs (validated by the proposer); ones already present are kept once.
    CreateAcls {
        acls: Vec<AclBinding>,
    },
    /// Removes exactly these ACLs; ones not present are ignored.
    DeleteAcls {
        acls: Vec<AclBinding>,
    },
    /// Adds a SCRAM user or replaces its credential.
    UpsertScramUser {
        user: String,
        credential: kmon_tls::ScramCredential,
    },
    /// Removes a SCRAM user (refused if there is none of that name).
    DeleteScramUser {
        user: String,
    },
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    Done,
    TopicCreated {
        /// Which placement constraint had to be relaxed, if any.
        placement_note: Option<String>,
    },
    IsrAltered {
        partition_epoch: i32,
    },
    ReassignmentStarted {
        partitions: u32,
        bytes: u64,
    },
    ReassignmentCancelled {
        /// Partitions back on their original replicas.
        reverted: u32,
        /// Partitions left moving: none of their original replicas is in
        /// sync and alive to lead them, so reverting would take them offline.
        kept: u32,
    },
    ProducerIdsAllocated {
        first: i64,
        count: u32,
    },
    ProducerIdAssigned {
        producer_id: i64,
        epoch: i16,
    },
    /// ACLs actually added or removed (the others were already so).
    AclsChanged {
        changed: u32,
    },
    ScramUserUpserted {
        replaced: bool,
    },
    LeadersElected {
        /// Partitions whose leadership moved to the preferred replica.
        moved: u32,
        /// Partitions whose preferred replica already leads.
        already_preferred: u32,
        /// Partitions whose preferred replica is out of sync or fenced.
        not_eligible: u32,
    },
}

/// Why a command was refused. Serializable: it travels in the Raft
/// response from the controller to whichever broker proposed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetadataError {
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("unknown partition {partition} of topic '{topic}'")]
    UnknownPartition { topic: String, partition: u32 },
    #[error("unknown broker {0}")]
    UnknownBroker(BrokerId),
    #[error("replication factor {requested} is larger than the {available} available broker(s)")]
    InvalidReplicationFactor { requested: u32, available: u32 },
    #[error("invalid partition count {0}")]
    InvalidPartitions(u32),
    #[error("stale ISR change for {topic}-{partition}: {reason}")]
    StaleIsrChange { topic: String, partition: u32, reason: String },
    #[error("invalid ISR for {topic}-{partition}: {reason}")]
    InvalidIsr { topic: String, partition: u32, reason: String },
    #[error("invalid reassignment of {topic}-{partition}: {reason}")]
    InvalidReassignment { topic: String, partition: u32, reason: String },
    #[error(
        "{topic}-{partition} is already being reassigned (see `kmon rebalance status`; `kmon rebalance cancel` reverts)"
    )]
    ReassignmentInProgress { topic: String, partition: u32 },
    #[error("no reassignment in progress{}", .0.as_ref().map(|(t, p)| format!(" for {t}-{p}")).unwrap_or_default())]
    NoReassignment(Option<(String, u32)>),
    #[error("reassignment of {topic}-{partition} cannot complete yet: {waiting_for:?} not in the ISR")]
    ReassignmentNotReady { topic: String, partition: u32, waiting_for: Vec<BrokerId> },
    #[error("no SCRAM user '{0}'")]
    UnknownScramUser(String),
}

pub type ApplyResult = Result<CommandOutcome, MetadataError>;
