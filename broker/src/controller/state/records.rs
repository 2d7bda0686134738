//! The metadata's records: brokers, topics, partitions (replicas, leader,
//! epochs, ISR), reassignments in progress, and the [`ClusterState`] that
//! holds them, with its read-only views.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::commands::MetadataError;

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
    /// The last run did not close its logs (killed, crashed) or this start
    /// cut a torn tail off one: records it had (and may have helped
    /// acknowledge) may be gone, so it must not lead from an ISR of one
    /// while another replica is eligible (see [`PartitionRecord::elr`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unclean_shutdown: bool,
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
            unclean_shutdown: false,
        }
    }
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
    /// Eligible leader replicas (Kafka's KIP-966): replicas that left the
    /// ISR while it was smaller than min.insync.replicas. Nothing was
    /// acknowledged after they left, so each holds every acknowledged
    /// record: when the ISR has no live member left that kept its log
    /// whole, one of them leads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elr: Vec<BrokerId>,
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

    /// Replaces the ISR (in replica order). Members leaving an ISR that
    /// ends up below `min_isr` become eligible leader replicas; an ISR back
    /// at `min_isr` makes them unnecessary.
    pub(super) fn set_isr(&mut self, isr: Vec<BrokerId>, min_isr: usize) {
        if isr.len() < min_isr {
            let leaving: Vec<BrokerId> = self.isr.iter().copied().filter(|b| !isr.contains(b)).collect();
            for b in leaving {
                if !self.elr.contains(&b) {
                    self.elr.push(b);
                }
            }
        } else {
            self.elr.clear();
        }
        let replicas = &self.replicas;
        self.elr.retain(|b| !isr.contains(b) && replicas.contains(b));
        self.isr = isr;
    }

    /// Replaces the replica list; eligible replicas no longer assigned go.
    pub(super) fn set_replicas(&mut self, replicas: Vec<BrokerId>) {
        self.elr.retain(|b| replicas.contains(b));
        self.replicas = replicas;
    }

    /// Makes `leader` the leader and sole ISR member, at a new epoch.
    pub(super) fn lead_alone(&mut self, leader: BrokerId, min_isr: usize) {
        self.set_isr(vec![leader], min_isr);
        self.leader = leader;
        self.leader_epoch += 1;
        self.partition_epoch += 1;
    }

    pub fn is_under_replicated(&self) -> bool {
        self.isr.len() < self.replication_factor()
    }

    /// Moves leadership to the preferred (first) replica if it is in sync
    /// and alive and does not lead yet (new leader epoch); whether it moved.
    pub(super) fn elect_preferred(&mut self, alive: &BTreeSet<BrokerId>) -> bool {
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
    /// min.insync.replicas as the creating broker resolved it (its default
    /// unless the configs override it). 0: created before this was kept.
    #[serde(default)]
    pub min_insync_replicas: u32,
}

impl TopicRecord {
    /// The smallest ISR that acknowledges acks=all writes.
    pub fn min_isr(&self) -> usize {
        let configured = self.configs.get("min.insync.replicas").and_then(|v| v.parse::<usize>().ok());
        match self.min_insync_replicas {
            0 => configured.unwrap_or(1),
            resolved => resolved as usize,
        }
    }

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
    /// Producer ids handed out so far (metadata from before idempotent
    /// producers has none).
    #[serde(default)]
    pub producer_ids: ProducerIdsRecord,
    /// Access control lists (metadata from before ACLs has none).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub acls: super::acls::AclSet,
    /// SASL/SCRAM-SHA-512 credentials by user name (salted keys only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scram_users: BTreeMap<String, kmon_tls::ScramCredential>,
}

/// Producer ids, allocated in blocks to brokers (Kafka's KIP-730), and the
/// producer each transactional id has now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdsRecord {
    /// The first id not handed out yet.
    pub next_id: i64,
    /// Transactional id -> (producer id, epoch): a new instance of the
    /// same id gets the next epoch, which fences the older one.
    #[serde(default)]
    pub transactional: BTreeMap<String, (i64, i16)>,
}

impl ClusterState {
    /// Partitions being reassigned, by topic and partition.
    pub fn pending_reassignments(&self) -> impl Iterator<Item = (&str, u32, &PartitionRecord, &Reassignment)> {
        self.topics.iter().flat_map(|(name, t)| {
            t.partitions
                .iter()
                .enumerate()
                .filter_map(move |(i, p)| p.reassignment.as_ref().map(|r| (name.as_str(), i as u32, p, r)))
        })
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
