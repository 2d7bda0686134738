//! The group coordinator: every group whose `__consumer_offsets` partition
//! this broker leads lives here. Becoming leader of such a partition loads
//! it (every commit and group record, in order); losing it unloads it, and
//! clients find the new coordinator. Commits and completed rebalances are
//! written to the partition with acks=all before they count.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::error::GroupError;
use super::lag::{CommitSample, CommitWindow, GroupStatus, LagRules, PartitionStatus};
use super::membership::{Group, GroupState, GroupTimings, JoinOutcome, JoinRequest, Pending};
use super::records::{self, Entry, OffsetValue};
use crate::controller::Controller;
use crate::controller::state::{BrokerId, MetadataCommand, MetadataError, NO_LEADER, TopicsSeen};
use crate::error::{BrokerError, Result};
use crate::log::partition::{ReadBound, now_ms};
use crate::replication::{ReplicaManager, RequiredAcks};
use crate::tasks::Tasks;

pub use kmon_proto::groups::OFFSETS_TOPIC;

/// Coordinator settings (broker config `offsets_*`, `group_*`).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub offsets_partitions: u32,
    pub offsets_replication_factor: u32,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    pub initial_rebalance_delay: Duration,
    pub offsets_retention: Duration,
    pub lag: LagRules,
}

/// A group with its committed offsets and lag windows.
#[derive(Debug)]
struct GroupEntry {
    group: Group,
    offsets: BTreeMap<(String, u32), OffsetValue>,
    windows: HashMap<(String, u32), CommitWindow>,
}

impl GroupEntry {
    fn new(id: &str, now: Instant) -> Self {
        GroupEntry { group: Group::new(id, now), offsets: BTreeMap::new(), windows: HashMap::new() }
    }
}

#[derive(Debug)]
struct OffsetsPartition {
    leader_epoch: i32,
    groups: Mutex<HashMap<String, GroupEntry>>,
}

/// One partition's lag as `DescribeGroup` reports it.
#[derive(Debug, Clone)]
pub struct PartitionLagView {
    pub topic: String,
    pub partition: u32,
    pub committed_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub lag: i64,
    pub status: PartitionStatus,
    pub owner: String,
}

#[derive(Debug, Clone)]
pub struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<(String, u32)>,
    /// The member's metadata for the group's protocol and its assignment,
    /// as sent (Kafka's DescribeGroups returns both).
    pub metadata: Bytes,
    pub assignment_bytes: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupView {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub status: GroupStatus,
    pub members: Vec<MemberView>,
    pub partitions: Vec<PartitionLagView>,
}

#[derive(Debug)]
pub struct GroupCoordinator {
    me: BrokerId,
    replicas: Arc<ReplicaManager>,
    controller: Controller,
    config: GroupConfig,
    loaded: RwLock<HashMap<u32, Arc<OffsetsPartition>>>,
    loading: Mutex<HashSet<u32>>,
    /// (topic, partition) → (high watermark, log end offset), refreshed in
    /// the background from the partition leaders.
    offsets_cache: RwLock<HashMap<(String, u32), (i64, i64)>>,
    /// Channels to other brokers for that refresh, kept across refreshes
    /// (tonic reconnects a lazy channel by itself).
    remote: Mutex<HashMap<String, tonic::transport::Channel>>,
    /// Topics of the last metadata seen: offsets on those gone from the
    /// next (deleted, or the name taken by a new topic) are removed.
    topics_seen: Mutex<TopicsSeen>,
    shutdown: CancellationToken,
    /// Loads, offset clean-ups and group writes run here (tracked).
    tasks: Tasks,
}

/// Decodes a member's assignment into (topic, partition) pairs: Kafka's
/// `ConsumerProtocol` (every client today), or the protobuf form kmon
/// clients wrote before (still in stored group state); anything else, as
/// another protocol type's assignment, owns nothing.
pub fn decode_assignment(bytes: &Bytes) -> Vec<(String, u32)> {
    kmon_proto::consumer_protocol::decode_assignment(bytes).unwrap_or_else(|_| {
        kmon_proto::v1::ConsumerProtocolAssignment::decode(bytes.clone())
            .map(|a| a.partitions.into_iter().map(|tp| (tp.topic, tp.partition)).collect())
            .unwrap_or_default()
    })
}

impl GroupCoordinator {
    pub fn new(replicas: Arc<ReplicaManager>, config: GroupConfig) -> Self {
        let tasks = replicas.tasks.clone();
        GroupCoordinator {
            me: replicas.broker_id,
            controller: replicas.controller().clone(),
            replicas,
            config,
            loaded: RwLock::new(HashMap::new()),
            loading: Mutex::new(HashSet::new()),
            offsets_cache: RwLock::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
            topics_seen: Mutex::new(TopicsSeen::default()),
            shutdown: tasks.shutdown().clone(),
            tasks,
        }
    }

    fn timings(&self) -> GroupTimings {
        GroupTimings { initial_rebalance_delay: self.config.initial_rebalance_delay }
    }

    fn partition_of(&self, group: &str) -> Result<Arc<OffsetsPartition>> {
        if group.is_empty() {
            return Err(GroupError::InvalidGroupId(group.into()).into());
        }
        let p = records::partition_for(group, self.offsets_partitions());
        if let Some(loaded) = self.loaded.read().get(&p) {
            return Ok(loaded.clone());
        }
        if self.loading.lock().contains(&p) {
            return Err(GroupError::CoordinatorLoadInProgress.into());
        }
        Err(GroupError::NotCoordinator.into())
    }

    /// Partitions of the offsets topic: as created, else as configured.
    fn offsets_partitions(&self) -> u32 {
        self.controller
            .state()
            .borrow()
            .topics
            .get(OFFSETS_TOPIC)
            .map_or(self.config.offsets_partitions, |t| t.partitions.len() as u32)
    }

    /// FindCoordinator: creates the offsets topic on first use.
    pub async fn find_coordinator(&self, group: &str) -> Result<(BrokerId, String)> {
        if group.is_empty() {
            return Err(GroupError::InvalidGroupId(group.into()).into());
        }
        let state = self.controller.state().borrow().clone();
        let Some(topic) = state.topics.get(OFFSETS_TOPIC) else {
            self.create_offsets_topic().await?;
            return Err(GroupError::CoordinatorNotAvailable("creating __consumer_offsets".into()).into());
        };
        let p = records::partition_for(group, topic.partitions.len() as u32);
        let leader = topic.partitions[p as usize].leader;
        let broker = (leader != NO_LEADER).then(|| state.brokers.get(&leader)).flatten();
        match broker {
            Some(b) => Ok((b.id, b.address.clone())),
            None => Err(GroupError::CoordinatorNotAvailable(format!("{OFFSETS_TOPIC}-{p} has no leader")).into()),
        }
    }

    async fn create_offsets_topic(&self) -> Result<()> {
        let live = self.controller.state().borrow().brokers.values().filter(|b| !b.fenced).count() as u32;
        let rf = self.config.offsets_replication_factor.min(live.max(1));
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert("retention.ms".to_string(), "-1".to_string());
        configs.insert("min.insync.replicas".to_string(), rf.min(2).to_string());
        configs.insert("segment.bytes".to_string(), (100u64 << 20).to_string());
        let command = MetadataCommand::CreateTopic {
            name: OFFSETS_TOPIC.into(),
            partitions: self.config.offsets_partitions,
            replication_factor: rf,
            configs,
            topic_id: crate::broker::new_topic_id(),
            min_insync_replicas: rf.min(2),
        };
        match self.controller.write(command).await {
            Ok(Ok(_)) | Ok(Err(MetadataError::TopicAlreadyExists(_))) => {
                tracing::info!(partitions = self.config.offsets_partitions, rf, "created {OFFSETS_TOPIC}");
                Ok(())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(BrokerError::Controller(e.to_string())),
        }
    }

    fn check_session_timeout(&self, t: Duration) -> Result<()> {
        if t < self.config.min_session_timeout || t > self.config.max_session_timeout {
            return Err(GroupError::InvalidSessionTimeout {
                given_ms: t.as_millis() as u64,
                min_ms: self.config.min_session_timeout.as_millis() as u64,
                max_ms: self.config.max_session_timeout.as_millis() as u64,
            }
            .into());
        }
        Ok(())
    }

    #[tracing::instrument(name = "join_group", level = "debug", skip_all, fields(
        group = group_id,
        member = req.member_id.as_str(),
    ))]
    pub async fn join(&self, group_id: &str, req: JoinRequest) -> Result<JoinOutcome> {
        self.check_session_timeout(req.session_timeout)?;
        let partition = self.partition_of(group_id)?;
        let wait_limit = req.rebalance_timeout + self.config.initial_rebalance_delay + Duration::from_secs(5);
        let pending = {
            let mut groups = partition.groups.lock();
            let entry = groups.entry(group_id.to_string()).or_insert_with(|| GroupEntry::new(group_id, Instant::now()));
            entry.group.join(req, Instant::now(), self.timings())
        };
        let reply = match pending {
            Pending::Now(reply) => reply,
            Pending::Wait(rx) => match tokio::time::timeout(wait_limit, rx).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) => Err(GroupError::NotCoordinator),
                Err(_) => Err(GroupError::RebalanceInProgress),
            },
        };
        Ok(reply?)
    }

    #[tracing::instrument(name = "sync_group", level = "debug", skip_all, fields(
        group = group_id,
        member = member_id,
        generation = generation,
    ))]
    pub async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<(Bytes, String)> {
        let partition = self.partition_of(group_id)?;
        let p = records::partition_for(group_id, self.offsets_partitions());
        let (pending, persist) = {
            let mut groups = partition.groups.lock();
            let entry = groups.get_mut(group_id).ok_or_else(|| GroupError::UnknownMemberId(member_id.into()))?;
            let before = entry.group.state;
            let pending = entry.group.sync(member_id, instance_id, generation, assignments, Instant::now())?;
            let completed = before == GroupState::CompletingRebalance && entry.group.state == GroupState::Stable;
            (pending, completed.then(|| entry.group.to_value()))
        };
        if let Some(value) = persist {
            // The new membership survives a coordinator failover.
            let entry = Entry::Group { group: group_id.into(), value: Some(value) };
            if let Err(err) = self.append(p, vec![entry]).await {
                tracing::warn!(group = %group_id, error = %err, "could not persist group membership");
            }
        }
        let reply = match pending {
            Pending::Now(reply) => reply,
            Pending::Wait(rx) => match tokio::time::timeout(Duration::from_secs(300), rx).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) => Err(GroupError::NotCoordinator),
                Err(_) => Err(GroupError::RebalanceInProgress),
            },
        };
        Ok(reply?)
    }

    pub fn heartbeat(&self, group_id: &str, member_id: &str, instance_id: Option<&str>, generation: i32) -> Result<()> {
        let partition = self.partition_of(group_id)?;
        let mut groups = partition.groups.lock();
        let entry = groups.get_mut(group_id).ok_or_else(|| GroupError::UnknownMemberId(member_id.into()))?;
        Ok(entry.group.heartbeat(member_id, instance_id, generation, Instant::now())?)
    }

    pub fn leave(&self, group_id: &str, member_id: &str, instance_id: Option<&str>) -> Result<()> {
        let partition = self.partition_of(group_id)?;
        let mut groups = partition.groups.lock();
        let entry = groups.get_mut(group_id).ok_or_else(|| GroupError::GroupIdNotFound(group_id.into()))?;
        Ok(entry.group.leave(member_id, instance_id, Instant::now(), self.timings())?)
    }

    /// OffsetCommit. `generation == -1` with an empty member id is an admin
    /// commit, refused while the group has members.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: Vec<(String, u32, i64, String)>,
    ) -> Result<()> {
        let partition = self.partition_of(group_id)?;
        let state = self.controller.state().borrow().clone();
        for (topic, p, offset, _) in &offsets {
            let t = state.topics.get(topic).ok_or_else(|| BrokerError::UnknownTopic(topic.clone()))?;
            if *p as usize >= t.partitions.len() {
                return Err(BrokerError::UnknownPartition {
                    topic: topic.clone(),
                    partition: *p,
                    partitions: t.partitions.len() as u32,
                });
            }
            if *offset < 0 {
                return Err(BrokerError::InvalidRequest(format!("negative offset {offset} for {topic}-{p}")));
            }
        }
        {
            let mut groups = partition.groups.lock();
            let admin = generation < 0 && member_id.is_empty();
            match groups.get_mut(group_id) {
                Some(entry) if admin && !entry.group.members.is_empty() => {
                    return Err(GroupError::NonEmptyGroup {
                        group: group_id.into(),
                        members: entry.group.members.len(),
                        action: "committing offsets as an admin (reset-offsets)".into(),
                    }
                    .into());
                }
                Some(_) if admin => {}
                None if admin => {
                    groups.insert(group_id.to_string(), GroupEntry::new(group_id, Instant::now()));
                }
                None => return Err(GroupError::UnknownMemberId(member_id.into()).into()),
                Some(entry) => {
                    let g = &mut entry.group;
                    if !g.members.contains_key(member_id) {
                        return Err(GroupError::UnknownMemberId(member_id.into()).into());
                    }
                    if let Some(instance) = instance_id
                        && g.static_members.get(instance).is_some_and(|owner| owner != member_id)
                    {
                        return Err(GroupError::FencedInstanceId(instance.into()).into());
                    }
                    if generation != g.generation {
                        return Err(GroupError::IllegalGeneration { given: generation, current: g.generation }.into());
                    }
                    if g.state == GroupState::CompletingRebalance {
                        return Err(GroupError::RebalanceInProgress.into());
                    }
                    if let Some(m) = g.members.get_mut(member_id) {
                        m.last_heartbeat = Instant::now();
                    }
                }
            }
        }
        let now = now_ms();
        let entries: Vec<Entry> = offsets
            .iter()
            .map(|(topic, p, offset, metadata)| Entry::Offset {
                group: group_id.into(),
                topic: topic.clone(),
                partition: *p,
                value: Some(OffsetValue { offset: *offset, metadata: metadata.clone(), commit_timestamp_ms: now }),
            })
            .collect();
        self.append(records::partition_for(group_id, self.offsets_partitions()), entries).await?;
        let cache = self.offsets_cache.read().clone();
        let admin = generation < 0 && member_id.is_empty();
        let mut groups = partition.groups.lock();
        if let Some(entry) = groups.get_mut(group_id) {
            for (topic, p, offset, metadata) in offsets {
                if admin {
                    // A reset is a deliberate move, not a consumer rewinding.
                    entry.windows.remove(&(topic.clone(), p));
                }
                let hw = cache.get(&(topic.clone(), p)).map_or(offset, |(hw, _)| *hw);
                entry
                    .windows
                    .entry((topic.clone(), p))
                    .or_default()
                    .push(CommitSample { offset, lag: (hw - offset).max(0), at_ms: now }, &self.config.lag);
                entry.offsets.insert((topic, p), OffsetValue { offset, metadata, commit_timestamp_ms: now });
            }
        }
        Ok(())
    }

    /// OffsetFetch: committed offsets (-1 where none), all when `wanted` is empty.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: &[(String, u32)],
    ) -> Result<Vec<(String, u32, Option<OffsetValue>)>> {
        let partition = self.partition_of(group_id)?;
        let groups = partition.groups.lock();
        let Some(entry) = groups.get(group_id) else {
            return Ok(wanted.iter().map(|(t, p)| (t.clone(), *p, None)).collect());
        };
        if wanted.is_empty() {
            return Ok(entry.offsets.iter().map(|((t, p), v)| (t.clone(), *p, Some(v.clone()))).collect());
        }
        Ok(wanted.iter().map(|(t, p)| (t.clone(), *p, entry.offsets.get(&(t.clone(), *p)).cloned())).collect())
    }

    /// Groups this broker coordinates: (id, state, protocol type, members, status).
    pub fn list_groups(&self) -> Vec<(String, GroupState, String, usize, GroupStatus)> {
        let partitions: Vec<Arc<OffsetsPartition>> = self.loaded.read().values().cloned().collect();
        let mut out = Vec::new();
        for partition in partitions {
            let groups = partition.groups.lock();
            for (id, entry) in groups.iter() {
                let status = GroupStatus::of(self.lag_of(entry).iter().map(|l| l.status));
                out.push((
                    id.clone(),
                    entry.group.state,
                    entry.group.protocol_type.clone(),
                    entry.group.members.len(),
                    status,
                ));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn lag_of(&self, entry: &GroupEntry) -> Vec<PartitionLagView> {
        let cache = self.offsets_cache.read();
        let owners = entry.group.owners(decode_assignment);
        let mut keys: Vec<(String, u32)> = entry.offsets.keys().cloned().collect();
        keys.extend(owners.keys().cloned());
        keys.sort();
        keys.dedup();
        let now = now_ms();
        keys.into_iter()
            .map(|key| {
                let committed = entry.offsets.get(&key).map_or(-1, |v| v.offset);
                let (hw, leo) = cache.get(&key).copied().unwrap_or((-1, -1));
                let lag = if hw < 0 { 0 } else { (hw - committed.max(0)).max(0) };
                let mut status =
                    entry.windows.get(&key).map_or(PartitionStatus::Ok, |w| w.evaluate(lag, now, &self.config.lag));
                // Nobody owns it, lag remains, nothing commits: the consumers stopped.
                if status == PartitionStatus::Ok && lag > 0 && entry.group.members.is_empty() {
                    status = PartitionStatus::Stop;
                }
                PartitionLagView {
                    owner: owners.get(&key).cloned().unwrap_or_default(),
                    topic: key.0,
                    partition: key.1,
                    committed_offset: committed,
                    log_end_offset: leo,
                    high_watermark: hw,
                    lag,
                    status,
                }
            })
            .collect()
    }

    pub fn describe(&self, group_id: &str) -> Result<GroupView> {
        let partition = self.partition_of(group_id)?;
        let groups = partition.groups.lock();
        let entry = groups.get(group_id).ok_or_else(|| GroupError::GroupIdNotFound(group_id.into()))?;
        Ok(self.view_of(group_id, entry))
    }

    fn view_of(&self, group_id: &str, entry: &GroupEntry) -> GroupView {
        let partitions = self.lag_of(entry);
        let g = &entry.group;
        GroupView {
            group_id: group_id.into(),
            state: g.state,
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone().unwrap_or_default(),
            generation: g.generation,
            status: GroupStatus::of(partitions.iter().map(|p| p.status)),
            members: g
                .members
                .values()
                .map(|m| MemberView {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    host: m.host.clone(),
                    assignment: decode_assignment(&m.assignment),
                    metadata: g.protocol.as_deref().map(|p| m.subscription(p)).unwrap_or_default(),
                    assignment_bytes: m.assignment.clone(),
                })
                .collect(),
            partitions,
        }
    }

    /// Every coordinated group with its lag, for the metrics (one pass: each
    /// group's lag is computed once).
    pub fn snapshot(&self) -> Vec<GroupView> {
        self.describe_many(&[])
    }

    /// The coordinated groups among `wanted` (empty: all of them), sorted by
    /// id; groups coordinated elsewhere are simply not there.
    pub fn describe_many(&self, wanted: &[String]) -> Vec<GroupView> {
        let partitions: Vec<Arc<OffsetsPartition>> = self.loaded.read().values().cloned().collect();
        let mut views = Vec::new();
        for partition in partitions {
            let groups = partition.groups.lock();
            views.extend(
                groups
                    .iter()
                    .filter(|(id, _)| wanted.is_empty() || wanted.contains(id))
                    .map(|(id, entry)| self.view_of(id, entry)),
            );
        }
        views.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        views
    }

    /// DeleteGroup: only an empty group; its offsets go too.
    pub async fn delete(&self, group_id: &str) -> Result<()> {
        let partition = self.partition_of(group_id)?;
        let entries = {
            let groups = partition.groups.lock();
            let entry = groups.get(group_id).ok_or_else(|| GroupError::GroupIdNotFound(group_id.into()))?;
            if !entry.group.members.is_empty() {
                return Err(GroupError::NonEmptyGroup {
                    group: group_id.into(),
                    members: entry.group.members.len(),
                    action: "deleting the group".into(),
                }
                .into());
            }
            tombstones(group_id, entry)
        };
        self.append(records::partition_for(group_id, self.offsets_partitions()), entries).await?;
        partition.groups.lock().remove(group_id);
        Ok(())
    }

    /// Appends records to an offsets partition with acks=all.
    async fn append(&self, partition: u32, entries: Vec<Entry>) -> Result<()> {
        let hosted = self.replicas.check_produce(OFFSETS_TOPIC, partition, RequiredAcks::All).map_err(|e| match e {
            BrokerError::NotLeader { .. } => BrokerError::Group(GroupError::NotCoordinator),
            other => other,
        })?;
        let batch = records::encode(&entries, now_ms());
        let header = crate::log::batch::validate_produced(&batch, hosted.log.config().max_message_bytes as usize)?;
        self.replicas.append(&hosted, batch, header, RequiredAcks::All, Duration::from_secs(10)).await?;
        Ok(())
    }

    /// Loads offsets partitions this broker now leads and unloads the
    /// others, whenever the metadata changes.
    pub async fn metadata_loop(self: Arc<Self>) {
        let mut state = self.controller.state();
        loop {
            let current = state.borrow_and_update().clone();
            let led: HashMap<u32, i32> = current
                .topics
                .get(OFFSETS_TOPIC)
                .map(|t| {
                    t.partitions
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.leader == self.me)
                        .map(|(i, p)| (i as u32, p.leader_epoch))
                        .collect()
                })
                .unwrap_or_default();
            {
                let mut loaded = self.loaded.write();
                loaded.retain(|p, part| {
                    let keep = led.get(p) == Some(&part.leader_epoch);
                    if !keep {
                        tracing::info!(partition = p, "no longer coordinating groups of {OFFSETS_TOPIC}-{p}");
                    }
                    keep
                });
            }
            for (p, epoch) in led {
                let already = self.loaded.read().contains_key(&p);
                if !already && self.loading.lock().insert(p) {
                    self.tasks.spawn_cancellable(self.clone().load(p, epoch));
                }
            }
            let gone: HashSet<String> = self.topics_seen.lock().update(&current).into_iter().map(|(t, _)| t).collect();
            if !gone.is_empty() {
                // Commits after this are to a new topic of a reused name.
                let seen_ms = now_ms();
                let doomed =
                    move |topic: &str, _: u32, committed_ms: i64| gone.contains(topic) && committed_ms <= seen_ms;
                self.tasks.spawn_cancellable(self.clone().forget_offsets(doomed));
            }
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Reads an offsets partition from its start and rebuilds its groups.
    async fn load(self: Arc<Self>, p: u32, leader_epoch: i32) {
        let started = Instant::now();
        let result = async {
            // The replica manager makes us leader from the same metadata.
            let log = loop {
                match self.replicas.leader_log(OFFSETS_TOPIC, p) {
                    Ok(log) => break log,
                    Err(_) if started.elapsed() < Duration::from_secs(30) => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(e) => return Err(e),
                }
            };
            let mut offset = log.log_start_offset();
            let end = log.log_end_offset();
            let mut entries = Vec::new();
            while offset < end {
                let read = log.read_async(offset, 4 << 20, ReadBound::LogEnd).await?;
                if read.records.is_empty() {
                    break;
                }
                let decoded = records::decode(&read.records)?;
                let Some(last) = decoded.last().map(|(o, _)| *o) else { break };
                offset = last + 1;
                entries.extend(decoded);
            }
            Ok(entries)
        }
        .await;
        let entries = match result {
            Ok(entries) => entries,
            Err(err) => {
                tracing::error!(partition = p, error = %err, "loading {OFFSETS_TOPIC} failed");
                self.loading.lock().remove(&p);
                return;
            }
        };
        let now = Instant::now();
        let mut offsets: HashMap<String, BTreeMap<(String, u32), OffsetValue>> = HashMap::new();
        let mut values = HashMap::new();
        for (_, entry) in entries {
            match entry {
                Entry::Offset { group, topic, partition, value } => {
                    let map = offsets.entry(group).or_default();
                    match value {
                        Some(v) => map.insert((topic, partition), v),
                        None => map.remove(&(topic, partition)),
                    };
                }
                Entry::Group { group, value } => {
                    values.insert(group, value);
                }
            }
        }
        let mut groups: HashMap<String, GroupEntry> = HashMap::new();
        for (id, value) in values {
            if let Some(value) = value {
                groups.insert(
                    id.clone(),
                    GroupEntry {
                        group: Group::restore(&id, &value, now),
                        offsets: BTreeMap::new(),
                        windows: HashMap::new(),
                    },
                );
            }
        }
        for (id, map) in offsets {
            if map.is_empty() && !groups.contains_key(&id) {
                continue;
            }
            let entry = groups.entry(id.clone()).or_insert_with(|| GroupEntry::new(&id, now));
            entry.offsets = map;
        }
        let count = groups.len();
        self.loaded.write().insert(p, Arc::new(OffsetsPartition { leader_epoch, groups: Mutex::new(groups) }));
        self.loading.lock().remove(&p);
        // Offsets of topics deleted while another broker coordinated.
        let state = self.controller.state().borrow().clone();
        let doomed = move |topic: &str, partition: u32, _: i64| {
            state.topics.get(topic).is_none_or(|t| partition as usize >= t.partitions.len())
        };
        self.tasks.spawn_cancellable(self.clone().forget_offsets(doomed));
        tracing::info!(
            partition = p,
            groups = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded {OFFSETS_TOPIC}-{p}"
        );
    }

    /// Removes the committed offsets that are `doomed` (topic, partition,
    /// commit time): those of deleted partitions, writing tombstones, as
    /// Kafka's coordinator does when partitions are deleted; a topic created
    /// again under the name starts without them.
    async fn forget_offsets(self: Arc<Self>, doomed: impl Fn(&str, u32, i64) -> bool) {
        let partitions: Vec<(u32, Arc<OffsetsPartition>)> =
            self.loaded.read().iter().map(|(p, v)| (*p, v.clone())).collect();
        for (p, partition) in partitions {
            let mut tombstones = Vec::new();
            {
                let mut groups = partition.groups.lock();
                for (group, entry) in groups.iter_mut() {
                    let gone: Vec<(String, u32)> = entry
                        .offsets
                        .iter()
                        .filter(|((t, part), v)| doomed(t, *part, v.commit_timestamp_ms))
                        .map(|(key, _)| key.clone())
                        .collect();
                    for key in gone {
                        entry.offsets.remove(&key);
                        entry.windows.remove(&key);
                        let (topic, partition) = key;
                        tombstones.push(Entry::Offset { group: group.clone(), topic, partition, value: None });
                    }
                }
            }
            if tombstones.is_empty() {
                continue;
            }
            tracing::info!(partition = p, offsets = tombstones.len(), "removed committed offsets of deleted topics");
            if let Err(err) = self.append(p, tombstones).await {
                tracing::warn!(partition = p, error = %err, "could not persist removed offsets");
            }
        }
    }

    /// Expires sessions, finishes rebalances whose deadline passed, drops
    /// offsets of groups empty for longer than the retention.
    pub async fn tick_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_refresh = Instant::now() - Duration::from_secs(10);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.shutdown.cancelled() => return,
            }
            let now = Instant::now();
            let partitions: Vec<(u32, Arc<OffsetsPartition>)> =
                self.loaded.read().iter().map(|(p, v)| (*p, v.clone())).collect();
            for (p, partition) in &partitions {
                let mut expired_groups = Vec::new();
                let mut persist = Vec::new();
                {
                    let mut groups = partition.groups.lock();
                    for (id, entry) in groups.iter_mut() {
                        let before = entry.group.state;
                        if entry.group.expire(now, self.timings())
                            && entry.group.state == GroupState::Empty
                            && before != GroupState::Empty
                        {
                            persist.push(Entry::Group { group: id.clone(), value: Some(entry.group.to_value()) });
                        }
                        let stale = entry.group.state == GroupState::Empty
                            && entry
                                .group
                                .empty_since
                                .is_some_and(|t| now.duration_since(t) > self.config.offsets_retention);
                        if stale {
                            expired_groups.push(id.clone());
                        }
                    }
                    for id in &expired_groups {
                        if let Some(entry) = groups.get(id) {
                            persist.extend(tombstones(id, entry));
                        }
                        groups.remove(id);
                    }
                }
                if !persist.is_empty() {
                    let this = self.clone();
                    let p = *p;
                    self.tasks.spawn_cancellable(async move {
                        if let Err(err) = this.append(p, persist).await {
                            tracing::warn!(partition = p, error = %err, "could not persist group changes");
                        }
                    });
                }
            }
            if now.duration_since(last_refresh) >= Duration::from_secs(1) {
                last_refresh = now;
                self.refresh_offsets(&partitions).await;
            }
        }
    }

    /// Refreshes high watermarks and log end offsets of every partition the
    /// coordinated groups commit to or own.
    async fn refresh_offsets(&self, partitions: &[(u32, Arc<OffsetsPartition>)]) {
        let mut wanted: HashSet<(String, u32)> = HashSet::new();
        for (_, partition) in partitions {
            let groups = partition.groups.lock();
            for entry in groups.values() {
                wanted.extend(entry.offsets.keys().cloned());
                wanted.extend(entry.group.owners(decode_assignment).into_keys());
            }
        }
        if wanted.is_empty() {
            return;
        }
        let state = self.controller.state().borrow().clone();
        let mut remote: HashMap<String, Vec<(String, u32)>> = HashMap::new();
        let mut fresh = HashMap::new();
        for (topic, p) in wanted {
            if let Ok(log) = self.replicas.leader_log(&topic, p) {
                fresh.insert((topic, p), (log.high_watermark(), log.log_end_offset()));
                continue;
            }
            let leader = state.topics.get(&topic).and_then(|t| t.partitions.get(p as usize)).map(|r| r.leader);
            if let Some(address) = leader.and_then(|l| state.brokers.get(&l)).map(|b| b.address.clone()) {
                remote.entry(address).or_default().push((topic, p));
            }
        }
        for (address, parts) in remote {
            let channel = match self.remote_channel(&address) {
                Ok(channel) => channel,
                Err(err) => {
                    tracing::debug!(%address, error = %err, "bad broker address");
                    continue;
                }
            };
            match fetch_remote_offsets(channel, &parts).await {
                Ok(found) => fresh.extend(found),
                Err(err) => tracing::debug!(%address, error = %err, "offset lookup failed"),
            }
        }
        self.offsets_cache.write().extend(fresh);
    }

    /// A lazily connected channel to another broker, kept for reuse (also
    /// by `DescribeGroups`, which asks the other coordinators).
    pub fn remote_channel(&self, address: &str) -> Result<tonic::transport::Channel> {
        let mut remote = self.remote.lock();
        if let Some(channel) = remote.get(address) {
            return Ok(channel.clone());
        }
        let channel = crate::tls::peer_endpoint(address)
            .map_err(|e| BrokerError::InvalidRequest(e.to_string()))?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .connect_lazy();
        remote.insert(address.to_string(), channel.clone());
        Ok(channel)
    }
}

fn tombstones(group_id: &str, entry: &GroupEntry) -> Vec<Entry> {
    let mut out: Vec<Entry> = entry
        .offsets
        .keys()
        .map(|(t, p)| Entry::Offset { group: group_id.into(), topic: t.clone(), partition: *p, value: None })
        .collect();
    out.push(Entry::Group { group: group_id.into(), value: None });
    out
}

/// High watermark and log end offset of partitions led by another broker.
async fn fetch_remote_offsets(
    channel: tonic::transport::Channel,
    parts: &[(String, u32)],
) -> Result<Vec<((String, u32), (i64, i64))>> {
    use kmon_proto::v1::{ListOffsetsPartition, ListOffsetsRequest, OffsetSpec, kmon_client::KmonClient};
    let mut client = KmonClient::new(channel);
    let ask = |spec: OffsetSpec| ListOffsetsRequest {
        partitions: parts
            .iter()
            .map(|(t, p)| ListOffsetsPartition { topic: t.clone(), partition: *p, spec: spec as i32, timestamp_ms: 0 })
            .collect(),
    };
    let hw = client.list_offsets(ask(OffsetSpec::Latest)).await.map_err(|s| BrokerError::Controller(s.to_string()))?;
    let leo = client.list_offsets(ask(OffsetSpec::LogEnd)).await.map_err(|s| BrokerError::Controller(s.to_string()))?;
    Ok(hw
        .into_inner()
        .partitions
        .into_iter()
        .zip(leo.into_inner().partitions)
        .map(|(h, l)| ((h.topic, h.partition), (h.offset, l.offset)))
        .collect())
}
