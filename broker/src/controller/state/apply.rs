//! [`ClusterState::apply`]: each command's effect, deterministic. Leader
//! election happens here: fencing a broker moves the leadership of its
//! partitions to another in-sync replica; unfencing one brings offline
//! partitions back; reassignments start, complete and are cancelled.

use std::collections::BTreeSet;

use super::commands::{ApplyResult, CommandOutcome, MetadataCommand, MetadataError, ReplicaMove};
use super::records::{
    BrokerId, BrokerRecord, ClusterState, NO_LEADER, PartitionRecord, Reassignment, ReassignmentBatch, TopicRecord,
};

/// Partition leader elections a command made: a partition got a new,
/// live leader (going offline is not an election; nor is the first leader
/// of a new partition, which placement picks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaderElections {
    pub all: u64,
    /// Of those, leaders that were not in the ISR (only with the topic's
    /// `unclean.leader.election.enable`).
    pub unclean: u64,
}

impl LeaderElections {
    fn elected(&mut self, unclean: bool) {
        self.all += 1;
        self.unclean += u64::from(unclean);
    }

    pub fn add(&mut self, other: LeaderElections) {
        self.all += other.all;
        self.unclean += other.unclean;
    }
}

impl ClusterState {
    pub fn apply(&mut self, command: &MetadataCommand) -> ApplyResult {
        self.apply_counting(command, &mut LeaderElections::default())
    }

    /// [`Self::apply`], adding the leader elections it made to `elections`.
    pub fn apply_counting(&mut self, command: &MetadataCommand, elections: &mut LeaderElections) -> ApplyResult {
        match command {
            MetadataCommand::RegisterBroker(record) => {
                let id = record.id;
                // A new incarnation is a restart: what the old process had
                // appended may be gone (a torn tail, unflushed pages), so it
                // leaves every ISR and loses its leaderships (new epochs)
                // before it counts as alive again, as on a fence. Else it
                // could lead again at its old epoch with a shorter log and
                // write other records at acknowledged offsets.
                let restarted = self.brokers.get(&id).is_some_and(|old| old.incarnation != record.incarnation);
                if restarted {
                    if let Some(old) = self.brokers.get_mut(&id) {
                        old.fenced = true;
                    }
                    self.on_fenced(id, elections);
                }
                self.brokers.insert(id, BrokerRecord { fenced: false, ..record.clone() });
                if restarted && record.unclean_shutdown {
                    self.on_unclean_restart(id, elections);
                }
                self.on_unfenced(id, elections);
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::FenceBroker { id } => {
                let broker = self.brokers.get_mut(id).ok_or(MetadataError::UnknownBroker(*id))?;
                broker.fenced = true;
                self.on_fenced(*id, elections);
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::UnfenceBroker { id } => {
                let broker = self.brokers.get_mut(id).ok_or(MetadataError::UnknownBroker(*id))?;
                broker.fenced = false;
                self.on_unfenced(*id, elections);
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::CreateTopic {
                name,
                partitions,
                replication_factor,
                configs,
                topic_id,
                min_insync_replicas,
            } => {
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
                        elr: Vec::new(),
                    })
                    .collect();
                self.topics.insert(
                    name.clone(),
                    TopicRecord {
                        topic_id: *topic_id,
                        replication_factor: *replication_factor,
                        configs: configs.clone(),
                        partitions,
                        min_insync_replicas: *min_insync_replicas,
                    },
                );
                Ok(CommandOutcome::TopicCreated { placement_note })
            }
            MetadataCommand::DeleteTopic { name } => {
                self.topics.remove(name).ok_or_else(|| MetadataError::UnknownTopic(name.clone()))?;
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::AlterIsr { topic, partition, leader, leader_epoch, partition_epoch, isr } => {
                let alive = self.alive();
                let t = self.topics.get_mut(topic).ok_or_else(|| MetadataError::UnknownTopic(topic.clone()))?;
                let min_isr = t.min_isr();
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
                let preferred_was_out = !p.isr.contains(&p.replicas[0]);
                p.set_isr(p.replicas.iter().copied().filter(|b| isr.contains(b)).collect(), min_isr);
                p.partition_epoch += 1;
                // The preferred replica back in sync (a restarted broker
                // loses its leaderships, see RegisterBroker) leads again:
                // kmon's auto.leader.rebalance, per partition and at once.
                if preferred_was_out && p.elect_preferred(&alive) {
                    elections.elected(false);
                }
                Ok(CommandOutcome::IsrAltered { partition_epoch: p.partition_epoch })
            }
            MetadataCommand::StartReassignment { moves, throttle_bytes_per_sec, now_ms } => {
                self.start_reassignment(moves, *throttle_bytes_per_sec, *now_ms, elections)
            }
            MetadataCommand::CompleteReassignment { topic, partition } => {
                self.complete_reassignment(topic, *partition, elections)
            }
            MetadataCommand::CancelReassignment => self.cancel_reassignment(elections),
            MetadataCommand::SetReassignmentThrottle { throttle_bytes_per_sec } => {
                let batch = self.reassignment.as_mut().ok_or(MetadataError::NoReassignment(None))?;
                batch.throttle_bytes_per_sec = *throttle_bytes_per_sec;
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::ElectPreferredLeaders { topics } => self.elect_preferred_leaders(topics, elections),
            MetadataCommand::AllocateProducerIds { broker, count } => {
                if !self.brokers.contains_key(broker) {
                    return Err(MetadataError::UnknownBroker(*broker));
                }
                let first = self.producer_ids.next_id;
                self.producer_ids.next_id += i64::from(*count);
                Ok(CommandOutcome::ProducerIdsAllocated { first, count: *count })
            }
            MetadataCommand::InitTransactionalProducer { transactional_id } => {
                let ids = &mut self.producer_ids;
                let (producer_id, epoch) = match ids.transactional.get(transactional_id) {
                    // Kafka's rule: an exhausted epoch moves to a new id.
                    Some(&(id, epoch)) if epoch < i16::MAX - 1 => (id, epoch + 1),
                    _ => {
                        ids.next_id += 1;
                        (ids.next_id - 1, 0)
                    }
                };
                ids.transactional.insert(transactional_id.clone(), (producer_id, epoch));
                Ok(CommandOutcome::ProducerIdAssigned { producer_id, epoch })
            }
            MetadataCommand::CreateAcls { acls } => {
                let changed = acls.iter().filter(|acl| self.acls.insert((*acl).clone())).count();
                Ok(CommandOutcome::AclsChanged { changed: changed as u32 })
            }
            MetadataCommand::DeleteAcls { acls } => {
                let changed = acls.iter().filter(|acl| self.acls.remove(*acl)).count();
                Ok(CommandOutcome::AclsChanged { changed: changed as u32 })
            }
            MetadataCommand::UpsertScramUser { user, credential } => {
                let replaced = self.scram_users.insert(user.clone(), credential.clone()).is_some();
                Ok(CommandOutcome::ScramUserUpserted { replaced })
            }
            MetadataCommand::DeleteScramUser { user } => match self.scram_users.remove(user) {
                Some(_) => Ok(CommandOutcome::Done),
                None => Err(MetadataError::UnknownScramUser(user.clone())),
            },
        }
    }

    /// Validates every move first, then applies them all: the replica list
    /// becomes target + leaving originals, so the new replicas start
    /// copying from the current leader.
    fn start_reassignment(
        &mut self,
        moves: &[ReplicaMove],
        throttle: Option<u64>,
        now_ms: i64,
        elections: &mut LeaderElections,
    ) -> ApplyResult {
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
                if p.elect_preferred(&alive) {
                    elections.elected(false);
                }
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

    fn complete_reassignment(&mut self, topic: &str, partition: u32, elections: &mut LeaderElections) -> ApplyResult {
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
        p.set_replicas(r.target);
        p.reassignment = None;
        let preferred = p.replicas.iter().copied().find(|b| p.isr.contains(b) && alive.contains(b));
        if let Some(new_leader) = preferred
            && new_leader != p.leader
        {
            p.leader = new_leader;
            p.leader_epoch += 1;
            elections.elected(false);
        }
        p.partition_epoch += 1;
        self.finish_batch_if_done();
        Ok(CommandOutcome::Done)
    }

    fn cancel_reassignment(&mut self, elections: &mut LeaderElections) -> ApplyResult {
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
                elections.elected(false);
            }
            p.set_replicas(r.original);
            p.isr = isr;
            p.reassignment = None;
            p.partition_epoch += 1;
            reverted += 1;
        }
        self.finish_batch_if_done();
        Ok(CommandOutcome::ReassignmentCancelled { reverted, kept })
    }

    fn elect_preferred_leaders(&mut self, topics: &[String], elections: &mut LeaderElections) -> ApplyResult {
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
                    elections.elected(false);
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

    /// Moves leadership off a fenced broker and drops it from ISRs (keeping
    /// it only where it is the last member, so we know who has the data,
    /// unless an eligible leader replica takes over).
    fn on_fenced(&mut self, id: BrokerId, elections: &mut LeaderElections) {
        let alive = self.alive();
        for topic in self.topics.values_mut() {
            let unclean = topic.unclean_leader_election();
            let min_isr = topic.min_isr();
            for p in &mut topic.partitions {
                if !p.replicas.contains(&id) {
                    continue;
                }
                let mut changed = false;
                if p.isr.contains(&id) && p.isr.len() > 1 {
                    p.set_isr(p.isr.iter().copied().filter(|b| *b != id).collect(), min_isr);
                    changed = true;
                }
                if p.leader == id {
                    let candidate =
                        p.replicas.iter().copied().find(|b| *b != id && p.isr.contains(b) && alive.contains(b));
                    let eligible = || p.elr.iter().copied().find(|b| *b != id && alive.contains(b));
                    match candidate.ok_or_else(eligible) {
                        Ok(new_leader) => {
                            p.leader = new_leader;
                            elections.elected(false);
                        }
                        // The last ISR member is gone; an eligible replica
                        // holds every acknowledged record and takes over
                        // (the fenced one becomes eligible in its place).
                        Err(Some(new_leader)) => {
                            p.set_isr(vec![new_leader], min_isr);
                            p.leader = new_leader;
                            elections.elected(false);
                        }
                        Err(None) if unclean => {
                            if let Some(any) = p.replicas.iter().copied().find(|b| *b != id && alive.contains(b)) {
                                p.leader = any;
                                p.isr = vec![any];
                                p.elr.clear();
                                elections.elected(true);
                            } else {
                                p.leader = NO_LEADER;
                            }
                        }
                        Err(None) => p.leader = NO_LEADER,
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

    /// A broker is back: offline partitions it can lead come back online,
    /// as an in-sync replica or as an eligible one while every ISR member
    /// is fenced.
    fn on_unfenced(&mut self, id: BrokerId, elections: &mut LeaderElections) {
        let alive = self.alive();
        for topic in self.topics.values_mut() {
            let unclean = topic.unclean_leader_election();
            let min_isr = topic.min_isr();
            for p in &mut topic.partitions {
                if p.leader != NO_LEADER || !p.replicas.contains(&id) {
                    continue;
                }
                if p.isr.contains(&id) {
                    p.leader = id;
                    p.leader_epoch += 1;
                    p.partition_epoch += 1;
                    elections.elected(false);
                } else if p.elr.contains(&id) && !p.isr.iter().any(|b| alive.contains(b)) {
                    p.lead_alone(id, min_isr);
                    elections.elected(false);
                } else if unclean {
                    p.lead_alone(id, min_isr);
                    p.elr.clear();
                    elections.elected(true);
                }
            }
        }
    }

    /// A broker restarted after an unclean shutdown (killed before closing
    /// its logs, or its recovery cut a torn tail), so it may miss records it
    /// helped acknowledge. It stops being an
    /// eligible leader replica, and where it is the ISR's last member while
    /// another replica is eligible, that replica leads instead (or the
    /// partition waits offline for one): else it would lead with the
    /// shorter log and its followers would truncate the acknowledged
    /// records away. Where it is the only candidate left, it stays one.
    fn on_unclean_restart(&mut self, id: BrokerId, elections: &mut LeaderElections) {
        let alive = self.alive();
        for topic in self.topics.values_mut() {
            let min_isr = topic.min_isr();
            for p in &mut topic.partitions {
                if !p.replicas.contains(&id) {
                    continue;
                }
                if p.elr.contains(&id) && (p.elr.len() > 1 || !p.isr.is_empty()) {
                    p.elr.retain(|b| *b != id);
                    p.partition_epoch += 1;
                }
                if p.isr != [id] || p.elr.is_empty() {
                    continue;
                }
                let was_leader = p.leader == id;
                p.isr.clear();
                match p.elr.iter().copied().find(|b| alive.contains(b)) {
                    Some(eligible) => {
                        p.lead_alone(eligible, min_isr);
                        elections.elected(false);
                    }
                    None => {
                        p.leader = NO_LEADER;
                        p.leader_epoch += i32::from(was_leader);
                        p.partition_epoch += 1;
                    }
                }
            }
        }
    }
}
