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
    pub fault_domain: String,
    pub update_domain: String,
    /// Fenced brokers missed their session: they lead nothing and are in
    /// no ISR until they heartbeat again.
    pub fenced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<BrokerId>,
    pub leader: BrokerId,
    pub leader_epoch: i32,
    pub isr: Vec<BrokerId>,
    /// Bumped on every change of leader or ISR; an ISR change proposed
    /// against an older epoch is refused.
    pub partition_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub brokers: BTreeMap<BrokerId, BrokerRecord>,
    pub topics: BTreeMap<String, TopicRecord>,
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
            MetadataCommand::CreateTopic { name, partitions, replication_factor, configs } => {
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
                    })
                    .collect();
                self.topics.insert(
                    name.clone(),
                    TopicRecord { replication_factor: *replication_factor, configs: configs.clone(), partitions },
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
        }
    }

    /// Moves leadership off a fenced broker and drops it from ISRs (keeping
    /// it only where it is the last member, so we know who has the data).
    fn on_fenced(&mut self, id: BrokerId) {
        let alive: BTreeSet<BrokerId> = self.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect();
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

    /// Two-dimensional placement: the racks (fault domain, update domain)
    /// of live brokers are ordered by walking the FD × UD grid diagonally,
    /// so neighbours differ in both; each partition takes a window of RF
    /// consecutive racks, starting one rack further per partition so
    /// leaders spread evenly; within a rack the broker with the fewest
    /// replicas is used. Returns the replica lists and, when the cluster's
    /// shape forced it, which constraint was relaxed.
    pub fn place(&self, partitions: u32, rf: u32) -> Result<(Vec<Vec<BrokerId>>, Option<String>), MetadataError> {
        let live: Vec<&BrokerRecord> = self.brokers.values().filter(|b| !b.fenced).collect();
        if rf == 0 || rf as usize > live.len() {
            return Err(MetadataError::InvalidReplicationFactor { requested: rf, available: live.len() as u32 });
        }
        let racks = diagonal_racks(&live);
        let mut load: BTreeMap<BrokerId, usize> = live.iter().map(|b| (b.id, 0)).collect();
        for topic in self.topics.values() {
            for p in &topic.partitions {
                for r in &p.replicas {
                    if let Some(l) = load.get_mut(r) {
                        *l += 1;
                    }
                }
            }
        }
        let existing: usize = self.topics.values().map(|t| t.partitions.len()).sum();
        let mut assignment = Vec::with_capacity(partitions as usize);
        for p in 0..partitions as usize {
            let start = (existing + p) % racks.len();
            let mut replicas: Vec<BrokerId> = Vec::with_capacity(rf as usize);
            let mut step = 0;
            while replicas.len() < rf as usize {
                let rack = &racks[(start + step) % racks.len()];
                step += 1;
                let pick = rack.iter().filter(|b| !replicas.contains(b)).min_by_key(|b| (load[b], **b)).copied();
                if let Some(b) = pick {
                    replicas.push(b);
                    *load.get_mut(&b).expect("live broker") += 1;
                }
            }
            assignment.push(replicas);
        }
        let fds: BTreeSet<&str> = live.iter().map(|b| b.fault_domain.as_str()).collect();
        let uds: BTreeSet<&str> = live.iter().map(|b| b.update_domain.as_str()).collect();
        let mut notes = Vec::new();
        if fds.len() < rf as usize {
            notes.push(format!(
                "fault-domain spread relaxed: {} fault domain(s) for replication factor {rf}",
                fds.len()
            ));
        }
        if uds.len() < rf as usize {
            notes.push(format!(
                "update-domain spread relaxed: {} update domain(s) for replication factor {rf}",
                uds.len()
            ));
        }
        let domain_of: BTreeMap<BrokerId, (&str, &str)> =
            live.iter().map(|b| (b.id, (b.fault_domain.as_str(), b.update_domain.as_str()))).collect();
        let violating = assignment.iter().filter(|r| !spans_domains(r, &domain_of, fds.len(), uds.len())).count();
        if violating > 0 {
            notes.push(format!(
                "{violating} partition(s) could not span min(#FD, RF) fault domains and min(#UD, RF) update domains with these brokers"
            ));
        }
        Ok((assignment, (!notes.is_empty()).then(|| notes.join("; "))))
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
                if p.isr.len() < p.replicas.len() {
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

/// Whether replicas span min(#FD, RF) fault domains and min(#UD, RF)
/// update domains.
pub fn spans_domains(
    replicas: &[BrokerId],
    domain_of: &BTreeMap<BrokerId, (&str, &str)>,
    fault_domains: usize,
    update_domains: usize,
) -> bool {
    let fds: BTreeSet<&str> = replicas.iter().filter_map(|r| domain_of.get(r).map(|d| d.0)).collect();
    let uds: BTreeSet<&str> = replicas.iter().filter_map(|r| domain_of.get(r).map(|d| d.1)).collect();
    fds.len() >= fault_domains.min(replicas.len()) && uds.len() >= update_domains.min(replicas.len())
}

/// Racks (brokers sharing a fault domain and an update domain) in diagonal
/// order: for 3 × 3, FD0UD0, FD1UD1, FD2UD2, FD0UD1, FD1UD2, FD2UD0, FD0UD2,
/// FD1UD0, FD2UD1. Empty racks are skipped.
fn diagonal_racks(live: &[&BrokerRecord]) -> Vec<Vec<BrokerId>> {
    let fds: Vec<&str> = live.iter().map(|b| b.fault_domain.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let uds: Vec<&str> = live.iter().map(|b| b.update_domain.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut racks = Vec::new();
    for shift in 0..uds.len() {
        for (i, fd) in fds.iter().enumerate() {
            let ud = uds[(i + shift) % uds.len()];
            let members: Vec<BrokerId> =
                live.iter().filter(|b| b.fault_domain == *fd && b.update_domain == ud).map(|b| b.id).collect();
            if !members.is_empty() {
                racks.push(members);
            }
        }
    }
    racks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(id: BrokerId, fd: usize, ud: usize) -> MetadataCommand {
        MetadataCommand::RegisterBroker(BrokerRecord {
            id,
            address: format!("127.0.0.1:{}", 9000 + id),
            metrics_address: String::new(),
            fault_domain: format!("FD{fd}"),
            update_domain: format!("UD{ud}"),
            fenced: false,
        })
    }

    fn cluster(layout: &[(usize, usize)]) -> ClusterState {
        let mut s = ClusterState::default();
        for (i, (fd, ud)) in layout.iter().enumerate() {
            s.apply(&broker(i as BrokerId + 1, *fd, *ud)).unwrap();
        }
        s
    }

    fn create(s: &mut ClusterState, name: &str, partitions: u32, rf: u32) -> ApplyResult {
        s.apply(&MetadataCommand::CreateTopic {
            name: name.into(),
            partitions,
            replication_factor: rf,
            configs: BTreeMap::new(),
        })
    }

    #[test]
    fn diagonal_walk_of_three_by_three() {
        let layout: Vec<(usize, usize)> = (0..3).flat_map(|f| (0..3).map(move |u| (f, u))).collect();
        let s = cluster(&layout);
        let live: Vec<&BrokerRecord> = s.brokers.values().collect();
        let order: Vec<(String, String)> = diagonal_racks(&live)
            .iter()
            .map(|r| (s.brokers[&r[0]].fault_domain.clone(), s.brokers[&r[0]].update_domain.clone()))
            .collect();
        let names: Vec<String> = order.iter().map(|(f, u)| format!("{f}{u}")).collect();
        assert_eq!(names, ["FD0UD0", "FD1UD1", "FD2UD2", "FD0UD1", "FD1UD2", "FD2UD0", "FD0UD2", "FD1UD0", "FD2UD1"]);
    }

    #[test]
    fn placement_spans_both_dimensions_and_spreads_leaders() {
        // kmon up's default: 3 brokers on the diagonal.
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
        let outcome = create(&mut s, "t", 6, 3).unwrap();
        assert_eq!(outcome, CommandOutcome::TopicCreated { placement_note: None });
        let t = &s.topics["t"];
        let mut leaders = BTreeMap::new();
        for p in &t.partitions {
            let set: BTreeSet<_> = p.replicas.iter().collect();
            assert_eq!(set.len(), 3);
            *leaders.entry(p.leader).or_insert(0) += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[test]
    fn placement_says_which_dimension_was_relaxed() {
        // Two fault domains, three update domains, RF 3.
        let mut s = cluster(&[(0, 0), (1, 1), (0, 2), (1, 0)]);
        let CommandOutcome::TopicCreated { placement_note: Some(note) } = create(&mut s, "t", 4, 3).unwrap() else {
            panic!("expected a placement note");
        };
        assert!(note.contains("fault-domain spread relaxed: 2 fault domain(s)"), "{note}");
        assert!(!note.contains("update-domain spread relaxed"), "{note}");
        let big = create(&mut s, "u", 1, 5).unwrap_err();
        assert_eq!(big, MetadataError::InvalidReplicationFactor { requested: 5, available: 4 });
    }

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
        s.apply(&MetadataCommand::CreateTopic { name: "u".into(), partitions: 1, replication_factor: 3, configs })
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
}
