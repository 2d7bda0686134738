//! The replica manager: which partitions this broker hosts and in which
//! role, driven by the cluster metadata; the leader side of produce and
//! fetch; ISR changes proposed to the controller.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};
use std::time::Duration;

use bytes::BytesMut;
use tokio_util::sync::CancellationToken;

use super::fetcher;
use super::partition::{HostedPartition, IsrProposal, Role};
use super::throttle::Throttle;
use crate::config::{BrokerConfig, LogConfig};
use crate::controller::Controller;
use crate::controller::state::{
    BrokerId, ClusterState, MetadataCommand, MetadataError, NO_LEADER, TopicsSeen, other_topic,
};
use crate::error::{BrokerError, Result};
use crate::log::batch::BatchHeader;
use crate::log::partition::ReadBound;
use crate::log::{AppendInfo, LogManager, PartitionLog, ReadResult};
use crate::metrics::BrokerMetrics;
use crate::tasks::Tasks;

/// How long a produced batch waits for the earlier batches of its producer
/// (see `ReplicaManager::wait_for_earlier_batches`).
const SEQUENCE_WAIT: Duration = Duration::from_secs(1);
/// Between attempts of an ISR change the controller could not be asked about.
const ISR_RETRY_FIRST_BACKOFF: Duration = Duration::from_millis(100);
const ISR_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How many replicas must hold a batch before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredAcks {
    None,
    Leader,
    All,
}

#[derive(Debug)]
pub struct ReplicaManager {
    pub broker_id: BrokerId,
    logs: Arc<LogManager>,
    default_log_config: LogConfig,
    partitions: RwLock<HashMap<(String, u32), Arc<HostedPartition>>>,
    controller: Controller,
    config: BrokerConfig,
    shutdown: CancellationToken,
    /// Where fetchers and ISR proposals run (tracked, cancelled at shutdown).
    pub tasks: Tasks,
    /// Topics of the last metadata applied: those gone from the next one
    /// (deleted, or the name taken by a new topic) lose their local logs.
    topics_seen: Mutex<TopicsSeen>,
    pub metrics: Arc<BrokerMetrics>,
    /// Reassignment traffic this broker sends as leader to replicas being added.
    pub throttle_out: Throttle,
    /// Reassignment traffic this broker copies as a replica being added.
    pub throttle_in: Arc<Throttle>,
    /// This process's registration (fresh each start).
    pub incarnation: u64,
    /// Logs on disk not assigned here are deleted once, when the applied
    /// metadata first shows this process's registration.
    stray_check_pending: AtomicBool,
}

/// Where an appended batch landed and how long acks=all waited for it.
#[derive(Debug, Clone, Copy)]
pub struct AppendOutcome {
    pub info: AppendInfo,
    pub replication_wait: Duration,
}

impl ReplicaManager {
    pub fn new(
        config: BrokerConfig,
        logs: Arc<LogManager>,
        controller: Controller,
        metrics: Arc<BrokerMetrics>,
        tasks: Tasks,
    ) -> Self {
        ReplicaManager {
            broker_id: config.broker_id,
            default_log_config: config.default_log_config(),
            logs,
            partitions: RwLock::new(HashMap::new()),
            controller,
            config,
            shutdown: tasks.shutdown().clone(),
            tasks,
            topics_seen: Mutex::new(TopicsSeen::default()),
            metrics,
            throttle_out: Throttle::default(),
            throttle_in: Arc::new(Throttle::default()),
            incarnation: new_incarnation(),
            stray_check_pending: AtomicBool::new(true),
        }
    }

    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    pub fn get(&self, topic: &str, partition: u32) -> Option<Arc<HostedPartition>> {
        self.partitions.read().get(&(topic.to_string(), partition)).cloned()
    }

    pub fn hosted(&self) -> Vec<Arc<HostedPartition>> {
        self.partitions.read().values().cloned().collect()
    }

    fn log_config(&self, configs: &BTreeMap<String, String>) -> Arc<LogConfig> {
        // Overrides were validated before the topic was created; fall back
        // to defaults rather than refuse to host a partition.
        Arc::new(self.default_log_config.with_overrides(configs).unwrap_or_else(|_| self.default_log_config.clone()))
    }

    /// Brings the hosted partitions in line with the metadata: delete logs
    /// of deleted topics, create logs for new assignments, switch roles on
    /// leader changes, delete logs of replicas moved away.
    pub fn apply_metadata(self: &Arc<Self>, state: &ClusterState) {
        let me = self.broker_id;
        let throttle = state.reassignment.as_ref().and_then(|r| r.throttle_bytes_per_sec);
        self.throttle_out.set_rate(throttle);
        self.throttle_in.set_rate(throttle);
        // First: a topic deleted and created again may come in one update,
        // and the old logs must go before new ones of that name open.
        self.drop_deleted_topics(state);
        // Until this process's registration is in the metadata, a leadership
        // there is the previous process's: its epoch must not take writes
        // (the registration moves it on, see `ClusterState::apply`).
        let registered = state.brokers.get(&me).is_some_and(|b| b.incarnation == self.incarnation);
        for (name, topic) in &state.topics {
            let config = self.log_config(&topic.configs);
            for (index, record) in topic.partitions.iter().enumerate() {
                if !record.replicas.contains(&me) {
                    continue;
                }
                let partition = index as u32;
                let hosted = match self.ensure_hosted(name, partition, config.clone(), topic.topic_id) {
                    Ok(hosted) => hosted,
                    Err(err) => {
                        tracing::error!(topic = %name, partition, error = %err, "cannot open partition log");
                        continue;
                    }
                };
                hosted.being_added.store(record.adding().contains(&me), std::sync::atomic::Ordering::Relaxed);
                // Before the role changes: writes of an older leadership
                // still under way (a produce, a fetcher's append) either
                // landed already or are refused, so none lands after the
                // new fetcher's truncation.
                hosted.log.fence_epochs_below(record.leader_epoch);
                if record.leader == me && !registered {
                    hosted.stop_fetcher();
                    *hosted.role.lock() = Role::Offline { leader_epoch: record.leader_epoch };
                } else if record.leader == me {
                    let was_leader = matches!(*hosted.role.lock(), Role::Leader(_));
                    hosted.stop_fetcher();
                    hosted.apply_leader(me, record);
                    if !was_leader {
                        tracing::info!(topic = %name, partition, epoch = record.leader_epoch, "became leader");
                    }
                } else if record.leader == NO_LEADER {
                    hosted.stop_fetcher();
                    *hosted.role.lock() = Role::Offline { leader_epoch: record.leader_epoch };
                } else {
                    let same = matches!(
                        *hosted.role.lock(),
                        Role::Follower { leader, leader_epoch } if leader == record.leader && leader_epoch == record.leader_epoch
                    );
                    let leader_address = state.brokers.get(&record.leader).map(|b| b.address.clone());
                    if !same && let Some(address) = leader_address {
                        hosted.stop_fetcher();
                        *hosted.role.lock() =
                            Role::Follower { leader: record.leader, leader_epoch: record.leader_epoch };
                        let token = self.shutdown.child_token();
                        *hosted.fetcher.lock() = Some(token.clone());
                        self.tasks.spawn(fetcher::run(
                            self.fetcher_context(),
                            hosted.clone(),
                            address,
                            record.leader_epoch,
                            token,
                        ));
                    }
                }
            }
        }
        self.drop_unassigned(state);
        if registered && self.stray_check_pending.swap(false, Ordering::Relaxed) {
            self.delete_stray_logs(state);
        }
    }

    /// Topics of the last metadata applied that are gone from `state`, or
    /// whose name now belongs to a new topic (another topic id): their
    /// local partitions stop and their logs are deleted.
    fn drop_deleted_topics(&self, state: &ClusterState) {
        let gone = self.topics_seen.lock().update(state);
        for (topic, count) in gone {
            for partition in 0..count {
                self.remove_local(&topic, partition, "its topic was deleted");
            }
        }
    }

    /// Stops a local partition and deletes its log; `why` goes to the log.
    fn remove_local(&self, topic: &str, partition: u32, why: &str) {
        if let Some(hosted) = self.partitions.write().remove(&(topic.to_string(), partition)) {
            hosted.stop_fetcher();
            *hosted.role.lock() = Role::Offline { leader_epoch: -1 };
        }
        match self.logs.delete(topic, partition) {
            Ok(None) => {}
            Ok(Some(log)) => {
                tracing::info!(%topic, partition, size_bytes = log.size_bytes(), "deleted local log: {why}")
            }
            Err(err) => tracing::error!(%topic, partition, error = %err, "deleting local log failed ({why})"),
        }
    }

    /// Logs found on disk for partitions `state` does not assign here: the
    /// replica moved away or its topic was deleted while this broker was
    /// down. Called once `state` holds this process's registration, so it
    /// is newer than anything the broker saw before it stopped; the data
    /// lives on the current replicas (Kafka's stray replicas, KAFKA-14616).
    fn delete_stray_logs(&self, state: &ClusterState) {
        let me = self.broker_id;
        for log in self.logs.all() {
            let assigned = state.topics.get(&log.topic).is_some_and(|t| {
                !other_topic(log.topic_id(), t.topic_id)
                    && t.partitions.get(log.partition as usize).is_some_and(|p| p.replicas.contains(&me))
            });
            if !assigned && self.get(&log.topic, log.partition).is_none() {
                self.remove_local(&log.topic, log.partition, "stray log: the partition is not assigned to this broker");
            }
        }
    }

    /// Partitions this broker hosted that a completed (or cancelled)
    /// reassignment took away: stop following and delete the local log.
    /// Only partitions hosted by this process are considered: the metadata
    /// it saw them in is older than `state`, so they really moved away.
    /// (Logs found on disk at start: `delete_stray_logs`.)
    fn drop_unassigned(&self, state: &ClusterState) {
        let me = self.broker_id;
        let gone: Vec<(String, u32)> = self
            .partitions
            .read()
            .keys()
            .filter(|(topic, partition)| {
                state
                    .topics
                    .get(topic)
                    .and_then(|t| t.partitions.get(*partition as usize))
                    .is_some_and(|p| !p.replicas.contains(&me))
            })
            .cloned()
            .collect();
        for (topic, partition) in gone {
            self.remove_local(&topic, partition, "replica moved away by a reassignment");
        }
    }

    /// The hosted partition, opening (or creating) its log. A log of an
    /// earlier topic of the same name (another topic id) is deleted first:
    /// its records are not this topic's.
    fn ensure_hosted(
        &self,
        topic: &str,
        partition: u32,
        config: Arc<LogConfig>,
        topic_id: u64,
    ) -> Result<Arc<HostedPartition>> {
        if let Some(hosted) = self.get(topic, partition)
            && !other_topic(hosted.log.topic_id(), topic_id)
        {
            if *hosted.log.config() != *config {
                hosted.log.set_config(config);
            }
            return Ok(hosted);
        }
        let log = match self.logs.get(topic, partition) {
            Some(log) if other_topic(log.topic_id(), topic_id) => {
                let why =
                    format!("it belongs to an earlier topic {topic} (id {:016x}, now {topic_id:016x})", log.topic_id());
                self.remove_local(topic, partition, &why);
                self.logs.create(topic, partition, config)?
            }
            Some(log) => {
                log.set_config(config);
                log
            }
            None => self.logs.create(topic, partition, config)?,
        };
        if log.topic_id() == 0 && topic_id != 0 {
            log.set_topic_id(topic_id);
        }
        let hosted = Arc::new(HostedPartition::new(topic, partition, log));
        self.partitions.write().insert((topic.to_string(), partition), hosted.clone());
        Ok(hosted)
    }

    fn not_leader(&self, topic: &str, partition: u32) -> BrokerError {
        let state = self.controller.state().borrow().clone();
        let leader = state
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
            .map(|p| p.leader)
            .filter(|l| *l != NO_LEADER)
            .and_then(|l| state.brokers.get(&l))
            .map(|b| b.address.clone());
        if !state.topics.contains_key(topic) {
            return BrokerError::UnknownTopic(topic.into());
        }
        if let Some(t) = state.topics.get(topic)
            && partition as usize >= t.partitions.len()
        {
            return BrokerError::UnknownPartition {
                topic: topic.into(),
                partition,
                partitions: t.partitions.len() as u32,
            };
        }
        BrokerError::NotLeader { topic: topic.into(), partition, leader }
    }

    /// The log of a partition this broker leads (for client reads/writes).
    pub fn leader_log(&self, topic: &str, partition: u32) -> Result<Arc<PartitionLog>> {
        match self.get(topic, partition) {
            Some(hosted) if matches!(*hosted.role.lock(), Role::Leader(_)) => Ok(hosted.log.clone()),
            _ => Err(self.not_leader(topic, partition)),
        }
    }

    /// The leader's log, for answers that name the committed end of the log
    /// (the latest offset, an offset for a timestamp). A new leader's high
    /// watermark is its own stale view until the followers fetch from it:
    /// until it reaches the start of the leader epoch the answer would be
    /// too small, so it is refused as retriable (Kafka's KIP-207).
    pub fn committed_leader_log(&self, topic: &str, partition: u32) -> Result<Arc<PartitionLog>> {
        let hosted = self.get(topic, partition).ok_or_else(|| self.not_leader(topic, partition))?;
        let Some(epoch_start_offset) = hosted.epoch_start_offset() else {
            return Err(self.not_leader(topic, partition));
        };
        let high_watermark = hosted.log.high_watermark();
        if high_watermark < epoch_start_offset {
            return Err(BrokerError::OffsetNotAvailable {
                topic: topic.into(),
                partition,
                high_watermark,
                epoch_start_offset,
            });
        }
        Ok(hosted.log.clone())
    }

    /// Checks a produce target before anything is written.
    pub fn check_produce(&self, topic: &str, partition: u32, acks: RequiredAcks) -> Result<Arc<HostedPartition>> {
        let hosted = self.get(topic, partition).ok_or_else(|| self.not_leader(topic, partition))?;
        if hosted.leader_epoch().is_none() {
            return Err(self.not_leader(topic, partition));
        }
        let min = hosted.log.config().min_insync_replicas;
        // ISR members that kept up (0 if leadership moved meanwhile).
        let in_sync = hosted.live_isr(self.broker_id, self.max_lag());
        if acks == RequiredAcks::All && (in_sync as u32) < min {
            return Err(BrokerError::NotEnoughReplicas { topic: topic.into(), partition, isr: in_sync, min });
        }
        Ok(hosted)
    }

    /// Appends a produced batch (already checked: `header`) as leader; with acks=all waits until every
    /// in-sync replica has it (the high watermark passes it).
    pub async fn append(
        &self,
        hosted: &HostedPartition,
        batch: BytesMut,
        header: BatchHeader,
        acks: RequiredAcks,
        timeout: Duration,
    ) -> Result<AppendOutcome> {
        let leader_epoch = hosted.leader_epoch().ok_or_else(|| self.not_leader(&hosted.topic, hosted.partition))?;
        let mut hw = hosted.log.subscribe();
        self.wait_for_earlier_batches(hosted, &header, timeout).await;
        // Leadership may have moved while earlier batches were awaited: a
        // follower must not append what it accepted as a leader.
        if hosted.leader_epoch() != Some(leader_epoch) {
            return Err(self.not_leader(&hosted.topic, hosted.partition));
        }
        let appended = hosted.log.blocking(move |log| log.append_checked(batch, header, leader_epoch)).await;
        let info = match appended {
            Ok(info) => info,
            Err(BrokerError::FencedLeaderEpoch { .. }) => return Err(self.not_leader(&hosted.topic, hosted.partition)),
            Err(err) => {
                if let BrokerError::ProducerSequence { refusal, .. } = &err {
                    self.metrics.producer_sequence_error(refusal);
                }
                self.logs.note_failure(&hosted.log, &err);
                return Err(err);
            }
        };
        if info.duplicate {
            self.metrics.producer_duplicates.inc();
        }
        hosted.update_high_watermark();
        if acks != RequiredAcks::All {
            return Ok(AppendOutcome { info, replication_wait: Duration::ZERO });
        }
        let waiting_since = std::time::Instant::now();
        let target = info.last_offset + 1;
        // Leadership can move while we wait (a reassignment completes, a
        // preferred election): the new leader's high watermark is not ours,
        // so answer NotLeader at once, as Kafka completes delayed produces,
        // rather than time out; the producer retries on the new leader.
        let waited = tokio::time::timeout(timeout, async {
            let mut role_check = tokio::time::interval(Duration::from_millis(100));
            loop {
                if *hw.borrow_and_update() >= target {
                    return Ok(true);
                }
                tokio::select! {
                    changed = hw.changed() => if changed.is_err() { return Ok(false) },
                    _ = role_check.tick() => {
                        if hosted.leader_epoch() != Some(leader_epoch) {
                            return Err(self.not_leader(&hosted.topic, hosted.partition));
                        }
                    }
                    _ = self.shutdown.cancelled() => return Ok(false),
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(true)) => {}
            Ok(Err(moved)) => return Err(moved),
            _ => {
                return Err(BrokerError::RequestTimedOut {
                    what: format!(
                        "the in-sync replicas of {}-{} to replicate offset {}",
                        hosted.topic, hosted.partition, info.last_offset
                    ),
                    waited_ms: timeout.as_millis() as u64,
                });
            }
        }
        let min = hosted.log.config().min_insync_replicas;
        let isr = hosted.live_isr(self.broker_id, self.max_lag());
        if (isr as u32) < min {
            return Err(BrokerError::NotEnoughReplicasAfterAppend {
                topic: hosted.topic.clone(),
                partition: hosted.partition,
                isr,
                min,
            });
        }
        Ok(AppendOutcome { info, replication_wait: waiting_since.elapsed() })
    }

    /// An idempotent producer's batches of one partition travel in several
    /// requests at once, which gRPC may hand over in any order: a batch
    /// that overtook an earlier one waits (bounded) until the log end moves
    /// and its turn comes, rather than being refused and retried after a
    /// backoff. If it does not come (the earlier batch was lost), the
    /// append refuses it with OUT_OF_ORDER_SEQUENCE_NUMBER.
    async fn wait_for_earlier_batches(&self, hosted: &HostedPartition, header: &BatchHeader, timeout: Duration) {
        if header.producer_id < 0 {
            return;
        }
        let mut end = hosted.log.subscribe_end();
        let deadline = tokio::time::Instant::now() + timeout.min(SEQUENCE_WAIT);
        while hosted.log.awaits_earlier_batches(header) {
            tokio::select! {
                changed = end.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(deadline) => return,
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Leader side of a follower's fetch.
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(level = "debug", skip_all, fields(
        topic = topic,
        partition = partition,
        replica = replica,
        offset = offset,
    ))]
    pub async fn replica_fetch(
        self: &Arc<Self>,
        replica: BrokerId,
        topic: &str,
        partition: u32,
        offset: i64,
        leader_epoch: i32,
        max_bytes: usize,
        max_wait: Duration,
    ) -> Result<ReadResult> {
        let hosted = self.get(topic, partition).ok_or_else(|| self.not_leader(topic, partition))?;
        let state = hosted.leader_state().ok_or_else(|| self.not_leader(topic, partition))?;
        if leader_epoch != state.leader_epoch {
            return Err(BrokerError::FencedLeaderEpoch {
                topic: topic.into(),
                partition,
                requested: leader_epoch,
                current: state.leader_epoch,
            });
        }
        if !state.replicas.contains(&replica) {
            return Err(BrokerError::InvalidRequest(format!(
                "broker {replica} is not a replica of {topic}-{partition}"
            )));
        }
        let mut end = hosted.log.subscribe_end();
        if let Some(proposal) = hosted.on_follower_fetch(replica, offset) {
            self.propose_isr(hosted.clone(), proposal);
        }
        let throttled = state.adding.contains(&replica);
        let max_bytes = if throttled { self.throttle_out.chunk(max_bytes) } else { max_bytes };
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            end.borrow_and_update();
            let read = hosted.log.read_async(offset, max_bytes, ReadBound::LogEnd).await?;
            if !read.records.is_empty() || tokio::time::Instant::now() >= deadline {
                self.metrics.replication_bytes_out.inc_by(read.records.len() as u64);
                if throttled {
                    let wait = self.throttle_out.consume(read.records.len());
                    if !wait.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = self.shutdown.cancelled() => {}
                        }
                    }
                }
                return Ok(read);
            }
            tokio::select! {
                _ = end.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = self.shutdown.cancelled() => return Ok(read),
            }
        }
    }

    /// Leader side of OffsetForLeaderEpoch.
    pub fn end_offset_for_epoch(&self, topic: &str, partition: u32, epoch: i32) -> Result<(i32, i64)> {
        let hosted = self.get(topic, partition).ok_or_else(|| self.not_leader(topic, partition))?;
        if hosted.leader_state().is_none() {
            return Err(self.not_leader(topic, partition));
        }
        Ok(hosted.log.end_offset_for_epoch(epoch).unwrap_or((-1, hosted.log.log_end_offset())))
    }

    /// Proposes an ISR change through the controller, in the background.
    pub fn propose_isr(&self, hosted: Arc<HostedPartition>, proposal: IsrProposal) {
        let controller = self.controller.clone();
        let me = self.broker_id;
        let metrics = self.metrics.clone();
        self.tasks.spawn_cancellable(async move {
            tracing::info!(
                topic = %hosted.topic, partition = hosted.partition, isr = ?proposal.isr,
                "proposing ISR change"
            );
            let expand = proposal.expand;
            let command = MetadataCommand::AlterIsr {
                topic: hosted.topic.clone(),
                partition: hosted.partition,
                leader: me,
                leader_epoch: proposal.leader_epoch,
                partition_epoch: proposal.partition_epoch,
                isr: proposal.isr.clone(),
            };
            let mut backoff = ISR_RETRY_FIRST_BACKOFF;
            loop {
                match controller.write(command.clone()).await {
                    Ok(Ok(_)) => {
                        // The new ISR arrives with the metadata.
                        if expand {
                            metrics.isr_expands.inc();
                        } else {
                            metrics.isr_shrinks.inc();
                        }
                    }
                    Ok(Err(refused)) => {
                        tracing::info!(topic = %hosted.topic, partition = hosted.partition, reason = %refused, "ISR change refused");
                        // Stale: a newer partition record exists and settles it.
                        if !matches!(refused, MetadataError::StaleIsrChange { .. }) {
                            hosted.isr_change_refused(proposal.partition_epoch);
                        }
                    }
                    // Unknown whether an attempt committed (the controller
                    // may have appended it before the answer was lost): the
                    // joiner keeps holding the high watermark and the same
                    // proposal goes again until the controller settles it,
                    // as Kafka's AlterPartition manager retries.
                    Err(err) => {
                        tracing::warn!(topic = %hosted.topic, partition = hosted.partition, error = %err, "ISR change failed; retrying");
                        if hosted.isr_change_unsettled(proposal.leader_epoch, proposal.partition_epoch) {
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(ISR_RETRY_MAX_BACKOFF);
                            continue;
                        }
                    }
                }
                break;
            }
        });
    }

    /// Shrinks the ISR of led partitions whose followers fell behind.
    pub async fn isr_shrink_loop(self: Arc<Self>) {
        let max_lag = Duration::from_millis(self.config.replica_lag_time_max_ms);
        let mut tick = tokio::time::interval(max_lag / 4);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.shutdown.cancelled() => return,
            }
            for hosted in self.hosted() {
                if let Some(proposal) = hosted.lagging_followers(max_lag) {
                    self.propose_isr(hosted.clone(), proposal);
                }
            }
        }
    }

    /// Re-applies the metadata whenever it changes.
    pub async fn metadata_loop(self: Arc<Self>) {
        let mut state = self.controller.state();
        loop {
            let current = state.borrow_and_update().clone();
            self.apply_metadata(&current);
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    fn max_lag(&self) -> Duration {
        Duration::from_millis(self.config.replica_lag_time_max_ms)
    }

    fn fetcher_context(&self) -> fetcher::FetcherContext {
        fetcher::FetcherContext {
            broker_id: self.broker_id,
            max_bytes: self.config.replica_fetch_max_bytes as usize,
            max_wait: Duration::from_millis(u64::from(self.config.replica_fetch_wait_max_ms)),
            throttle: self.throttle_in.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// Unique per process start: the time in nanoseconds mixed with the pid.
fn new_incarnation() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 48)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::controller::ControllerConfig;
    use crate::controller::state::{BrokerRecord, PartitionRecord, TopicRecord};
    use crate::log::batch::tests::make_batch;

    async fn manager(dir: &Path, controller: Controller) -> Arc<ReplicaManager> {
        let config = BrokerConfig { broker_id: 1, data_dirs: vec![dir.join("data")], ..BrokerConfig::default() };
        let log_config = Arc::new(config.default_log_config());
        let logs = Arc::new(LogManager::open(&config.data_dirs, |_| Some(log_config.clone())).unwrap());
        let metrics = Arc::new(BrokerMetrics::new(false));
        Arc::new(ReplicaManager::new(config, logs, controller, metrics, Tasks::new(CancellationToken::new())))
    }

    /// Broker 1 alone, leading the one partition of topic "t" with `topic_id`.
    fn state(topic_id: u64) -> ClusterState {
        let mut state = ClusterState::default();
        state.brokers.insert(1, BrokerRecord::local(1, 0, 0));
        let partition = PartitionRecord {
            replicas: vec![1],
            leader: 1,
            leader_epoch: 0,
            isr: vec![1],
            partition_epoch: 0,
            reassignment: None,
            elr: Vec::new(),
        };
        let topic = TopicRecord {
            topic_id,
            replication_factor: 1,
            configs: BTreeMap::new(),
            partitions: vec![partition],
            min_insync_replicas: 0,
        };
        state.topics.insert("t".into(), topic);
        state
    }

    /// Chaos harness, issue 16: a produce checked while this broker led
    /// epoch 3 can reach the log after the metadata made it a follower at
    /// epoch 4 and its fetcher truncated. Applying that metadata fences
    /// epoch 3 in the log before the role changes, so the late append is
    /// refused instead of sitting where the new leader wrote other records.
    #[tokio::test]
    async fn a_demoted_leaders_log_refuses_appends_of_its_old_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let controller = Controller::start(ControllerConfig {
            node_id: 1,
            voters: BTreeMap::from([(1, "127.0.0.1:1".to_string())]),
            dir: dir.path().join("raft"),
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 400,
            election_timeout_max_ms: 800,
        })
        .await
        .unwrap();
        let replicas = manager(dir.path(), controller.clone()).await;
        let mut led = state(0xA);
        led.brokers.get_mut(&1).unwrap().incarnation = replicas.incarnation;
        // Broker 2 at an address nothing listens on: its follower fetches fail.
        led.brokers.insert(2, BrokerRecord { address: "127.0.0.1:1".into(), ..BrokerRecord::local(2, 1, 1) });
        let partition = &mut led.topics.get_mut("t").unwrap().partitions[0];
        (partition.replicas, partition.isr, partition.leader_epoch) = (vec![1, 2], vec![1, 2], 3);
        replicas.apply_metadata(&led);
        let hosted = replicas.check_produce("t", 0, RequiredAcks::Leader).unwrap();
        assert_eq!(hosted.leader_epoch(), Some(3));
        hosted.log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 3).unwrap();

        let mut followed = led.clone();
        let partition = &mut followed.topics.get_mut("t").unwrap().partitions[0];
        (partition.leader, partition.leader_epoch) = (2, 4);
        replicas.apply_metadata(&followed);
        assert_eq!(hosted.leader_epoch(), None, "a follower now");
        let late = hosted.log.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 3);
        assert!(
            matches!(late, Err(BrokerError::FencedLeaderEpoch { requested: 3, current: 4, .. })),
            "the old epoch's produce must be refused: {late:?}"
        );
        assert_eq!(hosted.log.log_end_offset(), 5, "nothing landed");
        replicas.shutdown.cancel();
        controller.shutdown().await;
    }

    /// A topic deleted and created again under the same name can reach a
    /// broker as one metadata update (or while it was down): the old log's
    /// records must not become the new topic's.
    #[tokio::test]
    async fn a_topic_created_again_under_the_same_name_starts_from_an_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let controller = Controller::start(ControllerConfig {
            node_id: 1,
            voters: BTreeMap::from([(1, "127.0.0.1:1".to_string())]),
            dir: dir.path().join("raft"),
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 400,
            election_timeout_max_ms: 800,
        })
        .await
        .unwrap();
        let replicas = manager(dir.path(), controller.clone()).await;
        replicas.apply_metadata(&state(0xA));
        let old = replicas.get("t", 0).unwrap().log.clone();
        old.append(BytesMut::from(&make_batch(5, 1000, 10)[..]), 0).unwrap();
        assert_eq!((old.log_end_offset(), old.topic_id()), (5, 0xA));

        replicas.apply_metadata(&state(0xB));
        let new = replicas.get("t", 0).unwrap().log.clone();
        assert_eq!((new.log_end_offset(), new.topic_id()), (0, 0xB), "a fresh log for the new topic");
        new.append(BytesMut::from(&make_batch(2, 1000, 10)[..]), 0).unwrap();
        new.flush().unwrap();
        let metadata = std::fs::read_to_string(new.dir().join("partition.metadata")).unwrap();
        assert!(metadata.contains("topic_id: 000000000000000b"), "{metadata}");

        // The same name is reused again while the broker is down: at start
        // its log (id B) is replaced, the first metadata it sees is enough.
        replicas.shutdown.cancel();
        drop(replicas);
        let restarted = manager(dir.path(), controller.clone()).await;
        assert_eq!(restarted.logs.get("t", 0).unwrap().log_end_offset(), 2, "recovered from disk");
        restarted.apply_metadata(&state(0xC));
        let log = restarted.get("t", 0).unwrap().log.clone();
        assert_eq!((log.log_end_offset(), log.topic_id()), (0, 0xC));

        // The same topic id: the log and its records stay.
        log.append(BytesMut::from(&make_batch(3, 1000, 10)[..]), 0).unwrap();
        restarted.apply_metadata(&state(0xC));
        assert_eq!(restarted.get("t", 0).unwrap().log.log_end_offset(), 3);
        // A log recorded before topic ids (0) is kept and adopts the id.
        let unrecorded = state(0);
        restarted.apply_metadata(&unrecorded);
        assert_eq!(restarted.get("t", 0).unwrap().log.log_end_offset(), 3);
        controller.shutdown().await;
    }
}
