//! One hosted partition: its log and its role (leader, follower, offline).
//!
//! As leader it tracks every follower's log end offset (learned from the
//! offsets they fetch at) and keeps the high watermark at the smallest log
//! end offset in the ISR. It decides when a follower has caught up (ISR
//! expand) or fallen behind for too long (ISR shrink); the changes
//! themselves go through the controller.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::controller::state::{BrokerId, PartitionRecord};
use crate::log::PartitionLog;

#[derive(Debug, Clone)]
pub struct FollowerProgress {
    /// The follower's log end offset: the offset of its last fetch.
    pub log_end_offset: i64,
    /// The leader's log end offset when that fetch arrived.
    pub leader_end_at_last_fetch: i64,
    /// Last time the follower had everything the leader had at its
    /// previous fetch (Kafka's lastCaughtUpTimeMs).
    pub last_caught_up: Instant,
}

#[derive(Debug, Clone)]
pub struct LeaderState {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<BrokerId>,
    /// Replicas a reassignment is adding: their fetches are throttled and
    /// they do not count towards the replication factor.
    pub adding: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub followers: HashMap<BrokerId, FollowerProgress>,
    /// The log end offset when this broker became leader: a follower must
    /// reach it before it may join the ISR.
    pub epoch_start_offset: i64,
    /// An ISR change is on its way through the controller.
    pub isr_change_pending: bool,
    /// The follower an ISR expansion on its way would add. It counts
    /// towards the high watermark from the proposal on (Kafka's "maximal
    /// ISR", KIP-497): once in the ISR it may be elected leader, so the
    /// high watermark must never pass its log end, or records acknowledged
    /// meanwhile would be missing from the new leader's log.
    pub joining: Option<BrokerId>,
}

impl LeaderState {
    /// Fewer in sync than the replication factor (replicas a reassignment
    /// is adding do not count), as `PartitionRecord::is_under_replicated`.
    pub fn is_under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len() - self.adding.len()
    }
}

#[derive(Debug, Clone)]
pub enum Role {
    Leader(LeaderState),
    Follower { leader: BrokerId, leader_epoch: i32 },
    Offline { leader_epoch: i32 },
}

#[derive(Debug)]
pub struct HostedPartition {
    pub topic: String,
    pub partition: u32,
    pub log: Arc<PartitionLog>,
    pub role: Mutex<Role>,
    /// Stops the follower fetch loop when the role changes.
    pub fetcher: Mutex<Option<CancellationToken>>,
    /// As a follower: the leader's log end offset minus ours, after the
    /// last fetch (for ReplicaFetcherManager MaxLag).
    follower_lag: AtomicI64,
    /// This broker is a replica being added by a reassignment: its copy
    /// of the log is throttled.
    pub being_added: AtomicBool,
}

/// What the leader should propose after a follower's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    /// True when the ISR grows, false when it shrinks.
    pub expand: bool,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<BrokerId>,
}

impl HostedPartition {
    pub fn new(topic: &str, partition: u32, log: Arc<PartitionLog>) -> Self {
        HostedPartition {
            topic: topic.into(),
            partition,
            log,
            role: Mutex::new(Role::Offline { leader_epoch: -1 }),
            fetcher: Mutex::new(None),
            follower_lag: AtomicI64::new(0),
            being_added: AtomicBool::new(false),
        }
    }

    pub fn follower_lag(&self) -> i64 {
        self.follower_lag.load(Ordering::Relaxed)
    }

    pub fn set_follower_lag(&self, lag: i64) {
        self.follower_lag.store(lag.max(0), Ordering::Relaxed);
    }

    /// `read` of the leader state, while this broker leads the partition.
    fn as_leader<T>(&self, read: impl FnOnce(&LeaderState) -> T) -> Option<T> {
        match &*self.role.lock() {
            Role::Leader(state) => Some(read(state)),
            _ => None,
        }
    }

    pub fn leader_state(&self) -> Option<LeaderState> {
        self.as_leader(LeaderState::clone)
    }

    /// The leader epoch while this broker leads the partition.
    pub fn leader_epoch(&self) -> Option<i32> {
        self.as_leader(|state| state.leader_epoch)
    }

    /// While this broker leads: its log end offset when it became leader.
    pub fn epoch_start_offset(&self) -> Option<i64> {
        self.as_leader(|state| state.epoch_start_offset)
    }

    /// Becomes (or stays) leader per the metadata record.
    pub fn apply_leader(&self, me: BrokerId, record: &PartitionRecord) {
        let mut role = self.role.lock();
        match &mut *role {
            Role::Leader(state) if state.leader_epoch == record.leader_epoch => {
                state.isr = record.isr.clone();
                state.replicas = record.replicas.clone();
                state.adding = record.adding();
                state.followers.retain(|b, _| record.replicas.contains(b));
                // Every metadata change re-applies every partition: only a
                // new partition epoch settles an ISR change on its way (it
                // was proposed against the old one, so it either is in
                // this record or can never commit). Dropping the joiner on
                // another partition's update let the high watermark pass
                // it while its expansion (and election) was still coming.
                if state.partition_epoch != record.partition_epoch {
                    state.partition_epoch = record.partition_epoch;
                    state.isr_change_pending = false;
                    state.joining = None;
                }
            }
            _ => {
                let now = Instant::now();
                let leo = self.log.log_end_offset();
                let followers = record
                    .replicas
                    .iter()
                    .filter(|r| **r != me)
                    .map(|r| {
                        // Unknown until the follower fetches; ISR members get
                        // the benefit of the doubt for one lag period.
                        let progress =
                            FollowerProgress { log_end_offset: -1, leader_end_at_last_fetch: leo, last_caught_up: now };
                        (*r, progress)
                    })
                    .collect();
                *role = Role::Leader(LeaderState {
                    leader_epoch: record.leader_epoch,
                    partition_epoch: record.partition_epoch,
                    replicas: record.replicas.clone(),
                    adding: record.adding(),
                    isr: record.isr.clone(),
                    followers,
                    epoch_start_offset: leo,
                    isr_change_pending: false,
                    joining: None,
                });
            }
        }
        drop(role);
        self.update_high_watermark();
    }

    /// High watermark = smallest log end offset in the ISR (the leader's
    /// own included) and of a follower the ISR is being expanded with.
    /// Followers not heard from yet hold it back. Below min.insync.replicas
    /// it stays put (Kafka's KIP-966): the replicas that left hold all a
    /// consumer may have read, so one of them can lead (they are the
    /// partition's eligible leader replicas) without taking records back.
    pub fn update_high_watermark(&self) {
        let hw = {
            let role = self.role.lock();
            let Role::Leader(state) = &*role else { return };
            if state.isr.len() < self.log.config().min_insync_replicas as usize {
                return;
            }
            let mut hw = self.log.log_end_offset();
            for member in state.isr.iter().chain(&state.joining) {
                if let Some(progress) = state.followers.get(member) {
                    if progress.log_end_offset < 0 {
                        return; // not heard from yet
                    }
                    hw = hw.min(progress.log_end_offset);
                }
            }
            hw
        };
        self.log.set_high_watermark(hw);
    }

    /// Records a follower's fetch at `offset`; returns an ISR expansion to
    /// propose when the follower has caught up and is not in the ISR.
    pub fn on_follower_fetch(&self, follower: BrokerId, offset: i64) -> Option<IsrProposal> {
        let leader_end = self.log.log_end_offset();
        let proposal = {
            let mut role = self.role.lock();
            let Role::Leader(state) = &mut *role else { return None };
            let progress = state.followers.entry(follower).or_insert(FollowerProgress {
                log_end_offset: -1,
                leader_end_at_last_fetch: leader_end,
                last_caught_up: Instant::now(),
            });
            let now = Instant::now();
            if offset >= leader_end || offset >= progress.leader_end_at_last_fetch {
                progress.last_caught_up = now;
            }
            progress.log_end_offset = offset;
            progress.leader_end_at_last_fetch = leader_end;
            let hw = self.log.high_watermark();
            let caught_up = offset >= hw && offset >= state.epoch_start_offset;
            if caught_up && !state.isr.contains(&follower) && !state.isr_change_pending {
                state.isr_change_pending = true;
                state.joining = Some(follower);
                let mut isr = state.isr.clone();
                isr.push(follower);
                Some(IsrProposal {
                    expand: true,
                    leader_epoch: state.leader_epoch,
                    partition_epoch: state.partition_epoch,
                    isr,
                })
            } else {
                None
            }
        };
        self.update_high_watermark();
        proposal
    }

    /// Followers in the ISR that have not caught up within `max_lag`:
    /// returns the shrunk ISR to propose, if any.
    pub fn lagging_followers(&self, max_lag: Duration) -> Option<IsrProposal> {
        let mut role = self.role.lock();
        let Role::Leader(state) = &mut *role else { return None };
        if state.isr_change_pending {
            return None;
        }
        let now = Instant::now();
        let leader_end = self.log.log_end_offset();
        let lagging: Vec<BrokerId> = state
            .isr
            .iter()
            .copied()
            .filter(|member| {
                state
                    .followers
                    .get(member)
                    .is_some_and(|p| p.log_end_offset < leader_end && now.duration_since(p.last_caught_up) > max_lag)
            })
            .collect();
        if lagging.is_empty() {
            return None;
        }
        state.isr_change_pending = true;
        Some(IsrProposal {
            expand: false,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            isr: state.isr.iter().copied().filter(|m| !lagging.contains(m)).collect(),
        })
    }

    /// ISR members that are in sync right now: the leader, and followers
    /// that caught up within `max_lag`. The ISR in the metadata can only
    /// shrink through the quorum; this count needs no quorum, so acks=all
    /// is refused up front when replicas are gone even while the quorum is
    /// down too.
    pub fn live_isr(&self, me: BrokerId, max_lag: Duration) -> usize {
        let role = self.role.lock();
        let Role::Leader(state) = &*role else { return 0 };
        let now = Instant::now();
        state
            .isr
            .iter()
            .filter(|m| {
                **m == me || state.followers.get(m).is_some_and(|p| now.duration_since(p.last_caught_up) <= max_lag)
            })
            .count()
    }

    /// The controller refused an ISR proposal made at `partition_epoch`
    /// for good (not for being stale: then a newer partition record is on
    /// its way and settles it): allow another, and let go of the joiner.
    pub fn isr_change_refused(&self, partition_epoch: i32) {
        if let Role::Leader(state) = &mut *self.role.lock()
            && state.partition_epoch == partition_epoch
        {
            state.isr_change_pending = false;
            state.joining = None;
        }
    }

    /// Whether an ISR proposal made at these epochs is still unsettled (no
    /// newer partition record applied, still leader at that epoch): what
    /// decides whether to retry it when the controller could not be asked.
    pub fn isr_change_unsettled(&self, leader_epoch: i32, partition_epoch: i32) -> bool {
        self.as_leader(|state| {
            state.isr_change_pending && state.leader_epoch == leader_epoch && state.partition_epoch == partition_epoch
        })
        .unwrap_or(false)
    }

    /// Bytes a replica being added still has to copy, estimated from its
    /// fetch offset (its log end) and this leader's log: the share of the
    /// log's offsets it lacks, times the log's size.
    pub fn bytes_left_to_copy(&self) -> u64 {
        let role = self.role.lock();
        let Role::Leader(state) = &*role else { return 0 };
        if state.adding.is_empty() {
            return 0; // almost always: no need to size the log
        }
        let (start, end, size) = (self.log.log_start_offset(), self.log.log_end_offset(), self.log.size_bytes());
        let span = (end - start).max(1) as f64;
        state
            .adding
            .iter()
            .map(|b| {
                let copied = state.followers.get(b).map_or(start, |p| p.log_end_offset.max(start));
                let missing = (end - copied).max(0) as f64;
                (size as f64 * missing / span) as u64
            })
            .sum()
    }

    pub fn stop_fetcher(&self) {
        if let Some(token) = self.fetcher.lock().take() {
            token.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::config::{BrokerConfig, LogConfig};
    use crate::log::batch::tests::make_batch;

    fn record(leader: BrokerId, leader_epoch: i32, isr: Vec<BrokerId>) -> PartitionRecord {
        PartitionRecord {
            replicas: isr.clone(),
            leader,
            leader_epoch,
            isr,
            partition_epoch: leader_epoch,
            reassignment: None,
            elr: Vec::new(),
        }
    }

    /// A follower's high watermark trails the leader's; once it leads, the
    /// followers' first fetches bring it up to the start of its epoch. Until
    /// then `epoch_start_offset` is above it (what KIP-207 refuses on).
    #[test]
    fn a_new_leaders_high_watermark_reaches_its_epoch_start_after_the_followers_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(BrokerConfig::default().default_log_config());
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config).unwrap();
        let log = Arc::new(log);
        for _ in 0..4 {
            log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 0).unwrap();
        }
        log.set_high_watermark(5); // what it last heard as a follower
        let hosted = HostedPartition::new("t", 0, log.clone());
        assert_eq!(hosted.epoch_start_offset(), None, "not a leader yet");

        hosted.apply_leader(1, &record(1, 1, vec![1, 2, 3]));
        assert_eq!(hosted.epoch_start_offset(), Some(20));
        assert_eq!(log.high_watermark(), 5, "followers not heard from: the stale view stays");
        hosted.on_follower_fetch(2, 20);
        assert_eq!(log.high_watermark(), 5, "one in-sync follower still unheard");
        hosted.on_follower_fetch(3, 20);
        assert_eq!(log.high_watermark(), 20);

        log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 1).unwrap();
        hosted.apply_leader(1, &record(1, 2, vec![1, 2, 3]));
        assert_eq!(hosted.epoch_start_offset(), Some(25), "a new epoch starts at the log end");
        assert_eq!(log.high_watermark(), 20);
    }

    /// Below min.insync.replicas the high watermark stays where it was, so
    /// the replicas that left the ISR (eligible to lead) hold every record a
    /// consumer could have read; back at min.insync.replicas it moves on.
    #[test]
    fn below_min_insync_replicas_the_high_watermark_stays() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(LogConfig { min_insync_replicas: 2, ..BrokerConfig::default().default_log_config() });
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config).unwrap();
        let log = Arc::new(log);
        let hosted = HostedPartition::new("t", 0, log.clone());
        hosted.apply_leader(1, &record(1, 1, vec![1, 2]));
        log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 1).unwrap();
        hosted.on_follower_fetch(2, 5);
        assert_eq!(log.high_watermark(), 5);

        hosted.apply_leader(1, &PartitionRecord { partition_epoch: 2, ..record(1, 1, vec![1]) });
        log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 1).unwrap();
        hosted.update_high_watermark();
        assert_eq!(log.high_watermark(), 5, "the leader alone is below min.insync.replicas");

        hosted.apply_leader(1, &PartitionRecord { partition_epoch: 3, ..record(1, 1, vec![1, 2]) });
        hosted.on_follower_fetch(2, 10);
        assert_eq!(log.high_watermark(), 10);
    }

    /// The chaos run with seed 1796457640057432491 lost two acknowledged
    /// records: the leader proposed adding a caught-up follower to the ISR,
    /// went on acknowledging with the old ISR, and the controller made the
    /// newcomer (the preferred replica) leader before it had those records.
    /// From the proposal on, the newcomer holds the high watermark back.
    #[test]
    fn a_follower_joining_the_isr_holds_the_high_watermark_from_the_proposal_on() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(BrokerConfig::default().default_log_config());
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config).unwrap();
        let log = Arc::new(log);
        let hosted = HostedPartition::new("t", 0, log.clone());
        let out_of_sync = |partition_epoch| PartitionRecord {
            replicas: vec![1, 2, 3],
            leader: 1,
            leader_epoch: 1,
            isr: vec![1, 2],
            partition_epoch,
            reassignment: None,
            elr: Vec::new(),
        };
        hosted.apply_leader(1, &out_of_sync(1));
        for _ in 0..4 {
            log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 1).unwrap();
        }
        assert!(hosted.on_follower_fetch(2, 20).is_none());
        assert_eq!(log.high_watermark(), 20);

        let proposal = hosted.on_follower_fetch(3, 20).expect("broker 3 caught up: an expansion");
        assert_eq!(proposal.isr, vec![1, 2, 3]);
        log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 1).unwrap();
        hosted.on_follower_fetch(2, 25);
        assert_eq!(log.high_watermark(), 20, "broker 3, joining, has only 20 records");

        hosted.apply_leader(1, &PartitionRecord { isr: vec![1, 2, 3], ..out_of_sync(2) });
        assert_eq!(log.high_watermark(), 20);
        hosted.on_follower_fetch(3, 25);
        assert_eq!(log.high_watermark(), 25);

        // An expansion refused for good lets go of the newcomer again.
        hosted.apply_leader(1, &out_of_sync(3));
        log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 1).unwrap();
        hosted.on_follower_fetch(3, 25).expect("an expansion");
        hosted.on_follower_fetch(2, 30);
        assert_eq!(log.high_watermark(), 25);
        hosted.isr_change_refused(3);
        hosted.update_high_watermark();
        assert_eq!(log.high_watermark(), 30);
    }

    /// The chaos run with seed 1796479546969637734 lost 410 acknowledged
    /// records: every metadata change re-applies every partition, and the
    /// same-epoch re-apply dropped the joiner of an expansion still on its
    /// way. Only a new partition epoch settles it; a refusal for being
    /// stale leaves it to the newer record, which is on its way.
    #[test]
    fn only_a_new_partition_epoch_or_a_final_refusal_lets_go_of_a_joining_follower() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(BrokerConfig::default().default_log_config());
        let (log, _) = PartitionLog::open("t", 0, dir.path(), config).unwrap();
        let log = Arc::new(log);
        let hosted = HostedPartition::new("t", 0, log.clone());
        let record = PartitionRecord {
            replicas: vec![3, 1, 2],
            leader: 1,
            leader_epoch: 4,
            isr: vec![1, 2],
            partition_epoch: 7,
            reassignment: None,
            elr: Vec::new(),
        };
        hosted.apply_leader(1, &record);
        log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 4).unwrap();
        hosted.on_follower_fetch(2, 5);
        let proposal = hosted.on_follower_fetch(3, 5).expect("broker 3 caught up: an expansion");
        log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 4).unwrap();
        hosted.on_follower_fetch(2, 10);
        assert_eq!(log.high_watermark(), 5);

        // Another partition's change: the same record comes again.
        hosted.apply_leader(1, &record);
        hosted.on_follower_fetch(2, 10);
        assert_eq!(log.high_watermark(), 5, "the joiner still holds the high watermark");
        assert!(hosted.isr_change_unsettled(proposal.leader_epoch, proposal.partition_epoch));
        assert!(hosted.on_follower_fetch(3, 5).is_none(), "one ISR change at a time");

        // A refusal of an older proposal changes nothing.
        hosted.isr_change_refused(6);
        hosted.update_high_watermark();
        assert_eq!(log.high_watermark(), 5);

        // The expansion commits: broker 3 is a member, and once it fetched
        // the rest the high watermark moves on.
        hosted.apply_leader(1, &PartitionRecord { isr: vec![3, 1, 2], partition_epoch: 8, ..record.clone() });
        assert!(!hosted.isr_change_unsettled(proposal.leader_epoch, proposal.partition_epoch));
        assert_eq!(log.high_watermark(), 5);
        hosted.on_follower_fetch(3, 10);
        assert_eq!(log.high_watermark(), 10);
    }
}
