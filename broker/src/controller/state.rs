//! The cluster metadata state machine: brokers, topics, partition
//! assignments, leaders, leader epochs and ISRs. It is replicated by the
//! Raft quorum (`controller`); `apply` is deterministic, so every node that
//! applies the same commands holds the same state.
//!
//! Leader election happens here, inside `apply`: fencing a broker moves the
//! leadership of its partitions to another in-sync replica (new leader
//! epoch); a partition with no in-sync replica left goes offline (leader -1)
//! unless its topic allows unclean election.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub type BrokerId = i32;
/// "No leader": the partition is offline.
pub const NO_LEADER: BrokerId = -1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    pub id: BrokerId,
    pub address: String,
    pub metrics_address: String,
    /// The Kafka listener's address; empty when the broker serves none.
    #[serde(default)]
    pub kafka_address: String,
    pub fault_domain: String,
    pub update_domain: String,
    /// Fenced brokers missed their session: they lead nothing and are in
    /// no ISR until they heartbeat again.
    pub fenced: bool,
    /// A fresh value each time the broker process starts: when a broker
    /// sees its own in the applied metadata, that metadata is newer than
    /// its start (see `ReplicaManager::delete_stray_logs`).
    #[serde(default)]
    pub incarnation: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// Assigned replicas; the first is the preferred leader. While the
    /// partition is being reassigned: the target replicas followed by the
    /// original ones that are leaving (Kafka's KIP-455 layout).
    pub replicas: Vec<BrokerId>,
    pub leader: BrokerId,
    pub leader_epoch: i32,
    pub isr: Vec<BrokerId>,
    /// Bumped on every change of leader, ISR or replicas; an ISR change
    /// proposed against an older epoch is refused.
    pub partition_epoch: i32,
    /// Set while the partition moves to new replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassignment: Option<Reassignment>,
}

/// An ongoing move of one partition: new replicas are added and catch up,
/// join the ISR, then the leaving ones are dropped (`CompleteReassignment`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    pub original: Vec<BrokerId>,
    /// The replica list once done; its first member is the preferred leader.
    pub target: Vec<BrokerId>,
    /// Bytes the move copies (partition size × replicas added), as planned.
    pub bytes: u64,
}

impl Reassignment {
    /// Replicas that are new to the partition: they copy its log.
    pub fn adding(&self) -> Vec<BrokerId> {
        self.target.iter().copied().filter(|b| !self.original.contains(b)).collect()
    }

    /// Replicas that leave once the new ones are in sync.
    pub fn removing(&self) -> Vec<BrokerId> {
        self.original.iter().copied().filter(|b| !self.target.contains(b)).collect()
    }
}

impl BrokerRecord {
    /// Broker `id` at `127.0.0.1:9000+id` in fault domain `FD<fd>` and
    /// update domain `UD<ud>`, unfenced: the brokers of synthetic clusters
    /// (planner benchmarks) and of tests.
    pub fn local(id: BrokerId, fd: usize, ud: usize) -> BrokerRecord {
        BrokerRecord {
            id,
            address: format!("127.0.0.1:{}", 9000 + id),
            metrics_address: String::new(),
            kafka_address: String::new(),
            fault_domain: format!("FD{fd}"),
            update_domain: format!("UD{ud}"),
            fenced: false,
            incarnation: 0,
        }
    }
}

impl PartitionRecord {
    /// Replicas being added by an ongoing reassignment (empty otherwise).
    pub fn adding(&self) -> Vec<BrokerId> {
        self.reassignment.as_ref().map(Reassignment::adding).unwrap_or_default()
    }

    /// The replication factor the partition is held to: replicas being
    /// added do not count until the move completes (as in Kafka, so a
    /// reassignment does not show as under-replicated).
    pub fn replication_factor(&self) -> usize {
        self.replicas.len() - self.adding().len()
    }

    pub fn is_under_replicated(&self) -> bool {
        self.isr.len() < self.replication_factor()
    }

    /// Moves leadership to the preferred (first) replica if it is in sync
    /// and alive and does not lead yet (new leader epoch); whether it moved.
    fn elect_preferred(&mut self, alive: &BTreeSet<BrokerId>) -> bool {
        let preferred = self.replicas[0];
        if self.leader == preferred || !self.isr.contains(&preferred) || !alive.contains(&preferred) {
            return false;
        }
        self.leader = preferred;
        self.leader_epoch += 1;
        true
    }
}

/// The reassignment batch in progress, for progress reports that survive
/// a controller failover or a restart of the CLI that started it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignmentBatch {
    /// Partitions and bytes of every move started since the cluster had
    /// none pending.
    pub partitions: u32,
    pub bytes: u64,
    /// Replication throttle for the moving replicas, bytes/s (None: unthrottled).
    pub throttle_bytes_per_sec: Option<u64>,
    /// When the first move started, ms since the Unix epoch (proposer's clock).
    pub started_ms: i64,
}

/// One partition to move, as proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaMove {
    pub topic: String,
    pub partition: u32,
    pub target: Vec<BrokerId>,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Tells this topic from an earlier one of the same name (Kafka's topic
    /// id, KIP-516): a broker that finds a log of another id deletes it
    /// instead of serving it. 0: unknown (created before ids existed).
    #[serde(default)]
    pub topic_id: u64,
    pub replication_factor: u32,
    /// Topic config overrides (Kafka names), validated before proposal.
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionRecord>,
}

impl TopicRecord {
    pub fn unclean_leader_election(&self) -> bool {
        self.configs.get("unclean.leader.election.enable").is_some_and(|v| v == "true")
    }
}

/// Whether two topic ids name different topics (0: not recorded, matches any).
pub fn other_topic(a: u64, b: u64) -> bool {
    a != 0 && b != 0 && a != b
}

/// The topics (partition count, id) of the last metadata a component
/// applied, to tell which are gone from the next: deleted, or their name
/// taken by a new topic. Metadata arrives through a watch channel, so a
/// delete and a create of the same name can come as one update.
#[derive(Debug, Default)]
pub struct TopicsSeen(BTreeMap<String, (u32, u64)>);

impl TopicsSeen {
    /// Records `state`'s topics; returns the previous ones that are gone,
    /// with their partition counts.
    pub fn update(&mut self, state: &ClusterState) -> Vec<(String, u32)> {
        let gone = self
            .0
            .iter()
            .filter(|(name, (_, id))| state.topics.get(*name).is_none_or(|t| other_topic(*id, t.topic_id)))
            .map(|(name, (count, _))| (name.clone(), *count))
            .collect();
        self.0 = state.topics.iter().map(|(name, t)| (name.clone(), (t.partitions.len() as u32, t.topic_id))).collect();
        gone
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub brokers: BTreeMap<BrokerId, BrokerRecord>,
    pub topics: BTreeMap<String, TopicRecord>,
    /// Set while any partition is being reassigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassignment: Option<ReassignmentBatch>,
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
}

pub type ApplyResult = Result<CommandOutcome, MetadataError>;

impl ClusterState {
    pub fn apply(&mut self, command: &MetadataCommand) -> ApplyResult {
        match command {
            MetadataCommand::RegisterBroker(record) => {
                let id = record.id;
                self.brokers.insert(id, BrokerRecord { fenced: false, ..record.clone() });
                self.on_unfenced(id);
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::FenceBroker { id } => {
                let broker = self.brokers.get_mut(id).ok_or(MetadataError::UnknownBroker(*id))?;
                broker.fenced = true;
                self.on_fenced(*id);
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::UnfenceBroker { id } => {
                let broker = self.brokers.get_mut(id).ok_or(MetadataError::UnknownBroker(*id))?;
                broker.fenced = false;
                self.on_unfenced(*id);
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::CreateTopic { name, partitions, replication_factor, configs, topic_id } => {
                if self.topics.contains_key(name) {
                    return Err(MetadataError::TopicAlreadyExists(name.clone()));
                }
                if *partitions == 0 {
                    return Err(MetadataError::InvalidPartitions(0));
                }
                let (assignment, placement_note) = self.place(*partitions, *replication_factor)?;
                let partitions = assignment
                    .into_iter()
                    .map(|replicas| PartitionRecord {
                        leader: replicas[0],
                        leader_epoch: 0,
                        isr: replicas.clone(),
                        replicas,
                        partition_epoch: 0,
                        reassignment: None,
                    })
                    .collect();
                self.topics.insert(
                    name.clone(),
                    TopicRecord {
                        topic_id: *topic_id,
                        replication_factor: *replication_factor,
                        configs: configs.clone(),
                        partitions,
                    },
                );
                Ok(CommandOutcome::TopicCreated { placement_note })
            }
            MetadataCommand::DeleteTopic { name } => {
                self.topics.remove(name).ok_or_else(|| MetadataError::UnknownTopic(name.clone()))?;
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::AlterIsr { topic, partition, leader, leader_epoch, partition_epoch, isr } => {
                let t = self.topics.get_mut(topic).ok_or_else(|| MetadataError::UnknownTopic(topic.clone()))?;
                let p = t
                    .partitions
                    .get_mut(*partition as usize)
                    .ok_or_else(|| MetadataError::UnknownPartition { topic: topic.clone(), partition: *partition })?;
                let stale = |reason: String| MetadataError::StaleIsrChange {
                    topic: topic.clone(),
                    partition: *partition,
                    reason,
                };
                if p.leader != *leader || p.leader_epoch != *leader_epoch {
                    return Err(stale(format!(
                        "proposed by {leader} at leader epoch {leader_epoch}, current leader {} epoch {}",
                        p.leader, p.leader_epoch
                    )));
                }
                if p.partition_epoch != *partition_epoch {
                    return Err(stale(format!("partition epoch {partition_epoch}, current {}", p.partition_epoch)));
                }
                let invalid = |reason: &str| MetadataError::InvalidIsr {
                    topic: topic.clone(),
                    partition: *partition,
                    reason: reason.into(),
                };
                if !isr.contains(leader) {
                    return Err(invalid("the leader must stay in the ISR"));
                }
                if isr.iter().any(|b| !p.replicas.contains(b)) {
                    return Err(invalid("every ISR member must be an assigned replica"));
                }
                // Keep replica order, drop duplicates.
                p.isr = p.replicas.iter().copied().filter(|b| isr.contains(b)).collect();
                p.partition_epoch += 1;
                Ok(CommandOutcome::IsrAltered { partition_epoch: p.partition_epoch })
            }
            MetadataCommand::StartReassignment { moves, throttle_bytes_per_sec, now_ms } => {
                self.start_reassignment(moves, *throttle_bytes_per_sec, *now_ms)
            }
            MetadataCommand::CompleteReassignment { topic, partition } => self.complete_reassignment(topic, *partition),
            MetadataCommand::CancelReassignment => self.cancel_reassignment(),
            MetadataCommand::SetReassignmentThrottle { throttle_bytes_per_sec } => {
                let batch = self.reassignment.as_mut().ok_or(MetadataError::NoReassignment(None))?;
                batch.throttle_bytes_per_sec = *throttle_bytes_per_sec;
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::ElectPreferredLeaders { topics } => self.elect_preferred_leaders(topics),
        }
    }

    /// Validates every move first, then applies them all: the replica list
    /// becomes target + leaving originals, so the new replicas start
    /// copying from the current leader.
    fn start_reassignment(&mut self, moves: &[ReplicaMove], throttle: Option<u64>, now_ms: i64) -> ApplyResult {
        let mut seen = BTreeSet::new();
        for m in moves {
            let invalid = |reason: String| MetadataError::InvalidReassignment {
                topic: m.topic.clone(),
                partition: m.partition,
                reason,
            };
            let t = self.topics.get(&m.topic).ok_or_else(|| MetadataError::UnknownTopic(m.topic.clone()))?;
            let p = t
                .partitions
                .get(m.partition as usize)
                .ok_or_else(|| MetadataError::UnknownPartition { topic: m.topic.clone(), partition: m.partition })?;
            if !seen.insert((m.topic.as_str(), m.partition)) {
                return Err(invalid("listed twice".into()));
            }
            if p.reassignment.is_some() {
                return Err(MetadataError::ReassignmentInProgress { topic: m.topic.clone(), partition: m.partition });
            }
            if m.target.is_empty() {
                return Err(invalid("the target replica list is empty".into()));
            }
            let distinct: BTreeSet<_> = m.target.iter().collect();
            if distinct.len() != m.target.len() {
                return Err(invalid(format!("the target {:?} names a broker twice", m.target)));
            }
            if let Some(unknown) = m.target.iter().find(|b| !self.brokers.contains_key(b)) {
                return Err(invalid(format!("broker {unknown} is not registered")));
            }
            if let Some(fenced) = m.target.iter().find(|b| !p.replicas.contains(b) && self.brokers[b].fenced) {
                return Err(invalid(format!("new replica {fenced} is fenced (down) and could not copy the log")));
            }
        }
        let alive = self.alive();
        let mut count = 0u32;
        let mut bytes = 0u64;
        for m in moves {
            let p = &mut self.topics.get_mut(&m.topic).expect("validated").partitions[m.partition as usize];
            if p.replicas == m.target {
                continue; // nothing to do
            }
            let original = p.replicas.clone();
            let mut replicas = m.target.clone();
            replicas.extend(original.iter().copied().filter(|b| !m.target.contains(b)));
            let only_order_changes = replicas.len() == original.len();
            p.replicas = replicas;
            p.partition_epoch += 1;
            if only_order_changes {
                // Same replica set, new preferred leader: no copy needed.
                p.elect_preferred(&alive);
                continue;
            }
            p.reassignment = Some(Reassignment { original, target: m.target.clone(), bytes: m.bytes });
            count += 1;
            bytes += m.bytes;
        }
        if count > 0 {
            let batch = self.reassignment.get_or_insert(ReassignmentBatch { started_ms: now_ms, ..Default::default() });
            batch.partitions += count;
            batch.bytes += bytes;
            batch.throttle_bytes_per_sec = throttle;
        }
        Ok(CommandOutcome::ReassignmentStarted { partitions: count, bytes })
    }

    fn complete_reassignment(&mut self, topic: &str, partition: u32) -> ApplyResult {
        let alive = self.alive();
        let p = self.partition_mut(topic, partition)?;
        let Some(r) = p.reassignment.clone() else {
            return Err(MetadataError::NoReassignment(Some((topic.into(), partition))));
        };
        let waiting_for: Vec<BrokerId> = r.target.iter().copied().filter(|b| !p.isr.contains(b)).collect();
        if !waiting_for.is_empty() {
            return Err(MetadataError::ReassignmentNotReady { topic: topic.into(), partition, waiting_for });
        }
        p.isr = r.target.iter().copied().filter(|b| p.isr.contains(b)).collect();
        p.replicas = r.target;
        p.reassignment = None;
        let preferred = p.replicas.iter().copied().find(|b| p.isr.contains(b) && alive.contains(b));
        if let Some(new_leader) = preferred
            && new_leader != p.leader
        {
            p.leader = new_leader;
            p.leader_epoch += 1;
        }
        p.partition_epoch += 1;
        self.finish_batch_if_done();
        Ok(CommandOutcome::Done)
    }

    fn cancel_reassignment(&mut self) -> ApplyResult {
        if self.reassignment.is_none() {
            return Err(MetadataError::NoReassignment(None));
        }
        let alive = self.alive();
        let (mut reverted, mut kept) = (0, 0);
        for p in self.topics.values_mut().flat_map(|t| t.partitions.iter_mut()) {
            let Some(r) = p.reassignment.clone() else { continue };
            let isr: Vec<BrokerId> = r.original.iter().copied().filter(|b| p.isr.contains(b)).collect();
            let leader = if r.original.contains(&p.leader) {
                Some(p.leader)
            } else {
                r.original.iter().copied().find(|b| isr.contains(b) && alive.contains(b))
            };
            let Some(leader) = leader.filter(|_| !isr.is_empty()) else {
                kept += 1;
                continue;
            };
            if leader != p.leader {
                p.leader = leader;
                p.leader_epoch += 1;
            }
            p.replicas = r.original;
            p.isr = isr;
            p.reassignment = None;
            p.partition_epoch += 1;
            reverted += 1;
        }
        self.finish_batch_if_done();
        Ok(CommandOutcome::ReassignmentCancelled { reverted, kept })
    }

    fn elect_preferred_leaders(&mut self, topics: &[String]) -> ApplyResult {
        if let Some(unknown) = topics.iter().find(|t| !self.topics.contains_key(*t)) {
            return Err(MetadataError::UnknownTopic(unknown.clone()));
        }
        let alive = self.alive();
        let (mut moved, mut already_preferred, mut not_eligible) = (0, 0, 0);
        for (name, t) in &mut self.topics {
            if !topics.is_empty() && !topics.contains(name) {
                continue;
            }
            for p in &mut t.partitions {
                if p.leader == p.replicas[0] {
                    already_preferred += 1;
                } else if p.elect_preferred(&alive) {
                    p.partition_epoch += 1;
                    moved += 1;
                } else {
                    not_eligible += 1;
                }
            }
        }
        Ok(CommandOutcome::LeadersElected { moved, already_preferred, not_eligible })
    }

    fn finish_batch_if_done(&mut self) {
        let pending = self.topics.values().flat_map(|t| &t.partitions).any(|p| p.reassignment.is_some());
        if !pending {
            self.reassignment = None;
        }
    }

    fn alive(&self) -> BTreeSet<BrokerId> {
        self.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect()
    }

    fn partition_mut(&mut self, topic: &str, partition: u32) -> Result<&mut PartitionRecord, MetadataError> {
        let t = self.topics.get_mut(topic).ok_or_else(|| MetadataError::UnknownTopic(topic.into()))?;
        t.partitions
            .get_mut(partition as usize)
            .ok_or_else(|| MetadataError::UnknownPartition { topic: topic.into(), partition })
    }

    /// Partitions being reassigned, by topic and partition.
    pub fn pending_reassignments(&self) -> impl Iterator<Item = (&str, u32, &PartitionRecord, &Reassignment)> {
        self.topics.iter().flat_map(|(name, t)| {
            t.partitions
                .iter()
                .enumerate()
                .filter_map(move |(i, p)| p.reassignment.as_ref().map(|r| (name.as_str(), i as u32, p, r)))
        })
    }

    /// Moves leadership off a fenced broker and drops it from ISRs (keeping
    /// it only where it is the last member, so we know who has the data).
    fn on_fenced(&mut self, id: BrokerId) {
        let alive = self.alive();
        for topic in self.topics.values_mut() {
            let unclean = topic.unclean_leader_election();
            for p in &mut topic.partitions {
                if !p.replicas.contains(&id) {
                    continue;
                }
                let mut changed = false;
                if p.isr.contains(&id) && p.isr.len() > 1 {
                    p.isr.retain(|b| *b != id);
                    changed = true;
                }
                if p.leader == id {
                    let candidate =
                        p.replicas.iter().copied().find(|b| *b != id && p.isr.contains(b) && alive.contains(b));
                    match candidate {
                        Some(new_leader) => p.leader = new_leader,
                        None if unclean => {
                            if let Some(any) = p.replicas.iter().copied().find(|b| *b != id && alive.contains(b)) {
                                p.leader = any;
                                p.isr = vec![any];
                            } else {
                                p.leader = NO_LEADER;
                            }
                        }
                        None => p.leader = NO_LEADER,
                    }
                    p.leader_epoch += 1;
                    changed = true;
                }
                if changed {
                    p.partition_epoch += 1;
                }
            }
        }
    }

    /// A broker is back: offline partitions it can lead come back online.
    fn on_unfenced(&mut self, id: BrokerId) {
        for topic in self.topics.values_mut() {
            let unclean = topic.unclean_leader_election();
            for p in &mut topic.partitions {
                if p.leader != NO_LEADER || !p.replicas.contains(&id) {
                    continue;
                }
                if p.isr.contains(&id) || unclean {
                    p.leader = id;
                    if !p.isr.contains(&id) {
                        p.isr = vec![id];
                    }
                    p.leader_epoch += 1;
                    p.partition_epoch += 1;
                }
            }
        }
    }

    /// Replica lists for `partitions` new partitions of replication factor
    /// `rf`, and which constraint was relaxed if any: see [`crate::placement`].
    pub fn place(&self, partitions: u32, rf: u32) -> Result<(Vec<Vec<BrokerId>>, Option<String>), MetadataError> {
        crate::placement::place(self, partitions, rf)
    }

    /// Partitions per state, for status and metrics.
    pub fn partition_counts(&self) -> PartitionCounts {
        let mut c = PartitionCounts::default();
        for t in self.topics.values() {
            for p in &t.partitions {
                c.partitions += 1;
                if p.leader == NO_LEADER {
                    c.offline += 1;
                }
                if p.is_under_replicated() {
                    c.under_replicated += 1;
                }
            }
        }
        c
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCounts {
    pub partitions: usize,
    pub under_replicated: usize,
    pub offline: usize,
}

/// Clusters and topics for the tests of the state machine and of placement.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub(crate) fn broker(id: BrokerId, fd: usize, ud: usize) -> MetadataCommand {
        MetadataCommand::RegisterBroker(BrokerRecord::local(id, fd, ud))
    }

    pub(crate) fn cluster(layout: &[(usize, usize)]) -> ClusterState {
        let mut s = ClusterState::default();
        for (i, (fd, ud)) in layout.iter().enumerate() {
            s.apply(&broker(i as BrokerId + 1, *fd, *ud)).unwrap();
        }
        s
    }

    pub(crate) fn create(s: &mut ClusterState, name: &str, partitions: u32, rf: u32) -> ApplyResult {
        s.apply(&MetadataCommand::CreateTopic {
            name: name.into(),
            partitions,
            replication_factor: rf,
            configs: BTreeMap::new(),
            topic_id: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{cluster, create};
    use super::*;

    #[test]
    fn fencing_moves_leadership_within_the_isr_and_unfencing_restores_offline_partitions() {
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
        create(&mut s, "t", 3, 3).unwrap();
        let p0 = s.topics["t"].partitions[0].clone();
        let old_leader = p0.leader;
        s.apply(&MetadataCommand::FenceBroker { id: old_leader }).unwrap();
        let p = &s.topics["t"].partitions[0];
        assert_ne!(p.leader, old_leader);
        assert!(p0.isr.contains(&p.leader));
        assert_eq!(p.leader_epoch, p0.leader_epoch + 1);
        assert!(!p.isr.contains(&old_leader));
        // Fence the rest: the last ISR member keeps its place, the partition goes offline.
        for id in [1, 2, 3] {
            if id != old_leader {
                s.apply(&MetadataCommand::FenceBroker { id }).unwrap();
            }
        }
        let p = s.topics["t"].partitions[0].clone();
        assert_eq!(p.leader, NO_LEADER);
        assert_eq!(p.isr.len(), 1);
        assert_eq!(s.partition_counts().offline, 3);
        // The old leader is not in the ISR: it cannot lead (no unclean election).
        s.apply(&MetadataCommand::UnfenceBroker { id: old_leader }).unwrap();
        assert_eq!(s.topics["t"].partitions[0].leader, NO_LEADER);
        s.apply(&MetadataCommand::UnfenceBroker { id: p.isr[0] }).unwrap();
        assert_eq!(s.topics["t"].partitions[0].leader, p.isr[0]);
    }

    #[test]
    fn unclean_election_picks_a_live_out_of_sync_replica_only_when_allowed() {
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
        let mut configs = BTreeMap::new();
        configs.insert("unclean.leader.election.enable".to_string(), "true".to_string());
        s.apply(&MetadataCommand::CreateTopic {
            name: "u".into(),
            partitions: 1,
            replication_factor: 3,
            configs,
            topic_id: 7,
        })
        .unwrap();
        let p = s.topics["u"].partitions[0].clone();
        // Shrink the ISR to the leader alone, then fence the leader.
        s.apply(&MetadataCommand::AlterIsr {
            topic: "u".into(),
            partition: 0,
            leader: p.leader,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: vec![p.leader],
        })
        .unwrap();
        s.apply(&MetadataCommand::FenceBroker { id: p.leader }).unwrap();
        let after = &s.topics["u"].partitions[0];
        assert_ne!(after.leader, NO_LEADER, "unclean election elects an out-of-sync replica");
        assert_ne!(after.leader, p.leader);
        assert_eq!(after.isr, vec![after.leader]);
    }

    #[test]
    fn isr_changes_need_the_current_leader_and_epochs() {
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
        create(&mut s, "t", 1, 3).unwrap();
        let p = s.topics["t"].partitions[0].clone();
        let follower = p.replicas[1];
        let shrink = |leader, leader_epoch, partition_epoch, isr: Vec<BrokerId>| MetadataCommand::AlterIsr {
            topic: "t".into(),
            partition: 0,
            leader,
            leader_epoch,
            partition_epoch,
            isr,
        };
        let smaller: Vec<BrokerId> = p.isr.iter().copied().filter(|b| *b != follower).collect();
        assert!(matches!(s.apply(&shrink(follower, 0, 0, smaller.clone())), Err(MetadataError::StaleIsrChange { .. })));
        assert_eq!(
            s.apply(&shrink(p.leader, 0, 0, smaller.clone())).unwrap(),
            CommandOutcome::IsrAltered { partition_epoch: 1 }
        );
        assert!(matches!(s.apply(&shrink(p.leader, 0, 0, p.isr.clone())), Err(MetadataError::StaleIsrChange { .. })));
        assert!(matches!(s.apply(&shrink(p.leader, 0, 1, vec![follower])), Err(MetadataError::InvalidIsr { .. })));
        s.apply(&shrink(p.leader, 0, 1, p.isr.clone())).unwrap();
        assert_eq!(s.topics["t"].partitions[0].isr, p.replicas);
    }

    fn start(s: &mut ClusterState, topic: &str, partition: u32, target: Vec<BrokerId>) -> ApplyResult {
        s.apply(&MetadataCommand::StartReassignment {
            moves: vec![ReplicaMove { topic: topic.into(), partition, target, bytes: 100 }],
            throttle_bytes_per_sec: Some(1000),
            now_ms: 1,
        })
    }

    fn join_isr(s: &mut ClusterState, topic: &str, partition: u32, broker: BrokerId) {
        let p = s.topics[topic].partitions[partition as usize].clone();
        let mut isr = p.isr.clone();
        isr.push(broker);
        s.apply(&MetadataCommand::AlterIsr {
            topic: topic.into(),
            partition,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr,
        })
        .unwrap();
    }

    #[test]
    fn reassignment_adds_then_removes_replicas_and_the_preferred_replica_leads() {
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (2, 0)]);
        create(&mut s, "t", 1, 3).unwrap();
        let before = s.topics["t"].partitions[0].clone();
        assert_eq!(before.replicas, vec![1, 2, 3]);
        let outcome = start(&mut s, "t", 0, vec![4, 2, 6]).unwrap();
        assert_eq!(outcome, CommandOutcome::ReassignmentStarted { partitions: 1, bytes: 100 });
        let p = s.topics["t"].partitions[0].clone();
        // Target first, then the leaving originals; the leader has not moved.
        assert_eq!(p.replicas, vec![4, 2, 6, 1, 3]);
        assert_eq!(p.adding(), vec![4, 6]);
        assert_eq!(p.leader, 1);
        assert!(!p.is_under_replicated(), "new replicas do not count until they are in sync");
        assert_eq!(s.reassignment.as_ref().unwrap().throttle_bytes_per_sec, Some(1000));
        // Not ready until every target replica is in the ISR.
        let early = s.apply(&MetadataCommand::CompleteReassignment { topic: "t".into(), partition: 0 });
        assert!(
            matches!(early, Err(MetadataError::ReassignmentNotReady { ref waiting_for, .. }) if *waiting_for == vec![4, 6])
        );
        // A second move of the same partition is refused while it moves.
        assert!(matches!(start(&mut s, "t", 0, vec![5, 2, 6]), Err(MetadataError::ReassignmentInProgress { .. })));
        join_isr(&mut s, "t", 0, 4);
        join_isr(&mut s, "t", 0, 6);
        s.apply(&MetadataCommand::CompleteReassignment { topic: "t".into(), partition: 0 }).unwrap();
        let done = &s.topics["t"].partitions[0];
        assert_eq!(done.replicas, vec![4, 2, 6]);
        assert_eq!(done.isr, vec![4, 2, 6]);
        assert_eq!(done.leader, 4, "the preferred replica leads");
        assert_eq!(done.leader_epoch, before.leader_epoch + 1);
        assert!(done.reassignment.is_none());
        assert!(s.reassignment.is_none(), "the batch ends with its last partition");
    }

    #[test]
    fn bad_reassignments_are_refused_whole() {
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2), (0, 1)]);
        create(&mut s, "t", 2, 3).unwrap();
        let snapshot = s.clone();
        let moves = |target: Vec<BrokerId>| MetadataCommand::StartReassignment {
            moves: vec![
                ReplicaMove { topic: "t".into(), partition: 0, target: vec![4, 2, 3], bytes: 1 },
                ReplicaMove { topic: "t".into(), partition: 1, target, bytes: 1 },
            ],
            throttle_bytes_per_sec: None,
            now_ms: 0,
        };
        for (target, expected) in
            [(vec![9, 2, 3], "broker 9 is not registered"), (vec![4, 4, 3], "names a broker twice"), (vec![], "empty")]
        {
            let err = s.apply(&moves(target)).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
            assert_eq!(s, snapshot, "nothing applied");
        }
        s.apply(&MetadataCommand::FenceBroker { id: 4 }).unwrap();
        let (index, without_4) =
            s.topics["t"].partitions.iter().enumerate().find(|(_, p)| !p.replicas.contains(&4)).unwrap();
        let target = [vec![4], without_4.replicas[1..].to_vec()].concat();
        let err = start(&mut s, "t", index as u32, target).unwrap_err();
        assert!(err.to_string().contains("fenced"), "{err}");
        assert!(matches!(start(&mut s, "nope", 0, vec![1]), Err(MetadataError::UnknownTopic(_))));
    }

    #[test]
    fn cancel_reverts_to_the_original_replicas() {
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2), (0, 1)]);
        create(&mut s, "t", 1, 3).unwrap();
        start(&mut s, "t", 0, vec![4, 2, 3]).unwrap();
        join_isr(&mut s, "t", 0, 4);
        let outcome = s.apply(&MetadataCommand::CancelReassignment).unwrap();
        assert_eq!(outcome, CommandOutcome::ReassignmentCancelled { reverted: 1, kept: 0 });
        let p = &s.topics["t"].partitions[0];
        assert_eq!(p.replicas, vec![1, 2, 3]);
        assert_eq!(p.isr, vec![1, 2, 3]);
        assert_eq!(p.leader, 1);
        assert!(s.reassignment.is_none());
        assert_eq!(s.apply(&MetadataCommand::CancelReassignment), Err(MetadataError::NoReassignment(None)));
    }

    #[test]
    fn preferred_leader_election_moves_only_eligible_partitions() {
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
        create(&mut s, "t", 3, 3).unwrap();
        // Fence and unfence broker 1: it loses leadership and the ISR.
        s.apply(&MetadataCommand::FenceBroker { id: 1 }).unwrap();
        s.apply(&MetadataCommand::UnfenceBroker { id: 1 }).unwrap();
        let led_by_1 = s.topics["t"].partitions.iter().filter(|p| p.replicas[0] == 1).count() as u32;
        let outcome = s.apply(&MetadataCommand::ElectPreferredLeaders { topics: vec![] }).unwrap();
        assert_eq!(
            outcome,
            CommandOutcome::LeadersElected { moved: 0, already_preferred: 3 - led_by_1, not_eligible: led_by_1 }
        );
        // Back in the ISR, it leads its partitions again.
        for i in 0..3 {
            if s.topics["t"].partitions[i].replicas[0] == 1 {
                join_isr(&mut s, "t", i as u32, 1);
            }
        }
        let outcome = s.apply(&MetadataCommand::ElectPreferredLeaders { topics: vec!["t".into()] }).unwrap();
        assert_eq!(
            outcome,
            CommandOutcome::LeadersElected { moved: led_by_1, already_preferred: 3 - led_by_1, not_eligible: 0 }
        );
        assert!(s.topics["t"].partitions.iter().all(|p| p.leader == p.replicas[0]));
        assert!(matches!(
            s.apply(&MetadataCommand::ElectPreferredLeaders { topics: vec!["x".into()] }),
            Err(MetadataError::UnknownTopic(_))
        ));
    }
}
