//! [`GroupConsumer`]: a member of a consumer group.
//!
//! `poll` drives the group protocol (see `member` for what each group
//! error does): it (re)joins when needed, auto-commits when due, and
//! fetches the owned partitions with the plain [`Consumer`], whose long
//! poll is cut short when the background heartbeat task reports that the
//! group is rebalancing. Heartbeats are sent every `heartbeat_interval`
//! by that task, also while the application is busy between two polls;
//! if `poll` is not called for `max_poll_interval`, the task leaves the
//! group (dynamic members) so the partitions go to members that make
//! progress.
//!
//! Guarantees:
//! - **At least once**: a committed offset is never past a record that
//!   `poll` has not returned. Auto-commit (at the start of a `poll`, every
//!   `auto_commit_interval`, when partitions are revoked, and on `close`)
//!   commits the positions of the records returned so far, i.e. of the
//!   records the application has been handed.
//! - **One owner**: a member stops fetching a partition (and drops the
//!   records of it not yet returned) before committing it and before
//!   rejoining. With the eager protocol (`range`, `roundrobin`) every
//!   partition is revoked before JoinGroup; with the cooperative one only
//!   those the new assignment takes away, after SyncGroup, and the member
//!   rejoins at once so the next generation hands them on. A member that
//!   lost its generation (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, poll
//!   timeout) drops its partitions without committing: another member
//!   may own them already.
//! - **Order**: records of a partition are returned in offset order.
//!
//! Rebalance protocol: cooperative only if every configured assignor is
//! (Kafka's rule: a group moving between assignors then never has two
//! owners of a partition). The default assignors are Kafka 3's, `range`
//! then `cooperative-sticky`: groups rebalance eagerly with `range`, and
//! configuring `[cooperative-sticky]` alone turns on incremental
//! cooperative rebalancing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kmon_proto::v1 as pb;
use regex::Regex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::admin::{commit_request, fetch_offsets};
use super::assignor::{Assignor, MemberSubscription, RebalanceProtocol};
use super::coordinator::{COORDINATOR_RETRY_TIMEOUT, Coordinator};
use super::member::{MemberState, NO_GENERATION, Phase, Reaction};
use super::protocol::{self, PROTOCOL_TYPE, Subscription};
use crate::admin::Admin;
use crate::consumer::{Consumer, ConsumerConfig};
use crate::error::{ClientError, ErrorCode};
use crate::retry::Backoff;
use crate::router::Router;
use crate::types::{ConsumerRecord, OffsetSpec, TopicPartition};

/// Where a member starts reading a partition the group has committed
/// nothing for (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The log end offset: only records produced from now on (Kafka's
    /// default).
    #[default]
    Latest,
}

impl FromStr for AutoOffsetReset {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            other => Err(format!("expected earliest or latest, got {other:?}")),
        }
    }
}

impl From<AutoOffsetReset> for OffsetSpec {
    fn from(reset: AutoOffsetReset) -> Self {
        match reset {
            AutoOffsetReset::Earliest => OffsetSpec::Earliest,
            AutoOffsetReset::Latest => OffsetSpec::Latest,
        }
    }
}

/// Group consumer settings; [`GroupConsumerConfig::new`] gives Kafka's
/// defaults.
#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    /// Any broker, `HOST:PORT`.
    pub bootstrap: String,
    pub group_id: String,
    /// Shown by `DescribeGroup`.
    pub client_id: String,
    /// Static membership (`group.instance.id`): a restarted member with the
    /// same id gets its partitions back without a rebalance, and `close`
    /// does not leave the group.
    pub group_instance_id: Option<String>,
    /// The coordinator removes a member it has not heard from for this
    /// long (default 10 s).
    pub session_timeout: Duration,
    /// Between two heartbeats (default 3 s, at most a third of the session
    /// timeout is advised).
    pub heartbeat_interval: Duration,
    /// Longest time between two `poll` calls before the member leaves the
    /// group; also the rebalance timeout sent in JoinGroup (default 5 min).
    pub max_poll_interval: Duration,
    /// Assignors offered, by preference (default `range`,
    /// `cooperative-sticky`; see the module docs).
    pub assignors: Vec<Assignor>,
    /// Commit the positions of returned records periodically, on revocation
    /// and on close (default true).
    pub auto_commit: bool,
    /// Default 5 s.
    pub auto_commit_interval: Duration,
    /// Default [`AutoOffsetReset::Latest`].
    pub auto_offset_reset: AutoOffsetReset,
    /// Most records one `poll` returns (default 500); the rest wait for
    /// the next `poll`.
    pub max_poll_records: usize,
    /// How often the topic list is re-read (a pattern subscription picks
    /// up new topics; the leader notices partition count changes);
    /// default 10 s.
    pub metadata_max_age: Duration,
    /// Fetch long-poll bound, also the longest a `poll` without records
    /// takes when the group is stable (default 500 ms).
    pub max_wait: Duration,
    pub min_bytes: u32,
    pub max_bytes: u32,
    pub partition_max_bytes: u32,
    /// Added to `max_wait` to bound a fetch round trip.
    pub request_timeout: Duration,
}

impl GroupConsumerConfig {
    pub fn new(bootstrap: impl Into<String>, group_id: impl Into<String>) -> Self {
        let fetch = ConsumerConfig::new("");
        GroupConsumerConfig {
            bootstrap: bootstrap.into(),
            group_id: group_id.into(),
            client_id: "kmon-consumer".to_owned(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            assignors: vec![Assignor::Range, Assignor::CooperativeSticky],
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            auto_offset_reset: AutoOffsetReset::Latest,
            max_poll_records: 500,
            metadata_max_age: Duration::from_secs(10),
            max_wait: fetch.max_wait,
            min_bytes: fetch.min_bytes,
            max_bytes: fetch.max_bytes,
            partition_max_bytes: fetch.partition_max_bytes,
            request_timeout: fetch.request_timeout,
        }
    }

    /// Rejects settings the coordinator or the protocol cannot work with.
    pub fn validate(&self) -> Result<(), ClientError> {
        let invalid = |reason: String| Err(ClientError::InvalidArgument(reason));
        if self.group_id.is_empty() {
            return invalid("the group id is empty".into());
        }
        if self.assignors.is_empty() {
            return invalid("no assignor configured".into());
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.session_timeout {
            return invalid(format!(
                "the heartbeat interval ({:?}) must be positive and below the session timeout ({:?})",
                self.heartbeat_interval, self.session_timeout
            ));
        }
        if millis(self.session_timeout).is_none() || millis(self.max_poll_interval).is_none() {
            return invalid("session timeout and max poll interval must fit in u32 milliseconds".into());
        }
        if self.group_instance_id.as_deref() == Some("") {
            return invalid("the group instance id is empty (leave it unset for a dynamic member)".into());
        }
        Ok(())
    }

    fn fetch_config(&self) -> ConsumerConfig {
        ConsumerConfig {
            bootstrap: self.bootstrap.clone(),
            max_wait: self.max_wait,
            min_bytes: self.min_bytes,
            max_bytes: self.max_bytes,
            partition_max_bytes: self.partition_max_bytes,
            request_timeout: self.request_timeout,
        }
    }

    fn protocol(&self) -> RebalanceProtocol {
        Assignor::common_protocol(&self.assignors)
    }
}

fn millis(duration: Duration) -> Option<u32> {
    u32::try_from(duration.as_millis()).ok()
}

/// What the member subscribes to.
#[derive(Debug, Clone)]
enum Topics {
    None,
    /// The topics themselves (in `GroupConsumer::topics`).
    Names,
    /// Matched against whole topic names; internal topics (`__*`) are
    /// never matched.
    Pattern(Regex),
}

/// State shared with the heartbeat task.
#[derive(Debug)]
struct Shared {
    state: Mutex<MemberState>,
    /// Woken when the member must rejoin or stop.
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, MemberState> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// A member of a consumer group; see the module docs.
#[derive(Debug)]
pub struct GroupConsumer {
    config: GroupConsumerConfig,
    router: Arc<Router>,
    admin: Admin,
    coordinator: Arc<Coordinator>,
    fetcher: Consumer,
    shared: Arc<Shared>,
    heartbeat: JoinHandle<()>,
    subscription: Topics,
    /// Topics subscribed now (the pattern resolved).
    topics: BTreeSet<String>,
    /// Partitions assigned to this member in its generation.
    owned: BTreeSet<TopicPartition>,
    /// Owned partitions whose start offset is not known yet.
    unstarted: BTreeSet<TopicPartition>,
    /// Next offset to return per started partition: what a commit sends.
    positions: BTreeMap<TopicPartition, i64>,
    /// Fetched, not returned yet.
    buffer: VecDeque<ConsumerRecord>,
    /// Leader only: partition counts of the topics it assigned.
    assigned_counts: BTreeMap<String, u32>,
    last_commit: Instant,
    last_metadata: Option<Instant>,
    closed: bool,
}

impl GroupConsumer {
    /// Connects to the bootstrap broker; joining waits for the first
    /// `poll` after a `subscribe`.
    pub async fn connect(config: GroupConsumerConfig) -> Result<Self, ClientError> {
        config.validate()?;
        let router = Router::connect(&config.bootstrap).await?;
        let coordinator = Arc::new(Coordinator::new(router.clone(), config.group_id.clone()));
        let shared = Arc::new(Shared {
            state: Mutex::new(MemberState::new(config.group_instance_id.clone())),
            wake: Notify::new(),
        });
        let heartbeat = tokio::spawn(heartbeat_loop(
            shared.clone(),
            coordinator.clone(),
            config.group_id.clone(),
            config.heartbeat_interval,
            config.max_poll_interval,
        ));
        Ok(GroupConsumer {
            fetcher: Consumer::with_router(router.clone(), config.fetch_config()),
            admin: Admin::from_router(router.clone()),
            router,
            coordinator,
            shared,
            heartbeat,
            subscription: Topics::None,
            topics: BTreeSet::new(),
            owned: BTreeSet::new(),
            unstarted: BTreeSet::new(),
            positions: BTreeMap::new(),
            buffer: VecDeque::new(),
            assigned_counts: BTreeMap::new(),
            last_commit: Instant::now(),
            last_metadata: None,
            closed: false,
            config,
        })
    }

    /// Subscribes to these topics (replacing an earlier subscription); the
    /// next `poll` rejoins.
    pub fn subscribe(&mut self, topics: Vec<String>) {
        let topics: BTreeSet<String> = topics.into_iter().collect();
        self.subscription = Topics::Names;
        self.set_topics(topics);
    }

    /// Subscribes to every topic whose whole name matches `pattern` (a
    /// `regex` crate pattern), re-evaluated every `metadata_max_age`.
    pub fn subscribe_pattern(&mut self, pattern: &str) -> Result<(), ClientError> {
        let regex = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|err| ClientError::InvalidArgument(format!("invalid topic pattern {pattern:?}: {err}")))?;
        self.subscription = Topics::Pattern(regex);
        self.last_metadata = None;
        Ok(())
    }

    /// The partitions assigned to this member.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    /// The topics subscribed now (a pattern resolved at the last metadata
    /// refresh).
    pub fn subscription(&self) -> Vec<String> {
        self.topics.iter().cloned().collect()
    }

    /// The offset of the next record `poll` will return for an owned
    /// partition (what `commit` would commit).
    pub fn position(&self, partition: &TopicPartition) -> Option<i64> {
        self.positions.get(partition).copied()
    }

    pub fn group_id(&self) -> &str {
        &self.config.group_id
    }

    /// Empty before the first join.
    pub fn member_id(&self) -> String {
        self.shared.lock().member_id.clone()
    }

    /// -1 outside a generation.
    pub fn generation(&self) -> i32 {
        self.shared.lock().generation
    }

    /// An admin client on the same connections.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Up to `max_poll_records` records (see [`GroupConsumer::poll_up_to`]).
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        self.poll_up_to(self.config.max_poll_records).await
    }

    /// Joins or rejoins the group if needed, commits if due, and returns up
    /// to `max_records` records of the owned partitions (each partition in
    /// offset order). Empty after about `max_wait` without data.
    ///
    /// Cancel-safe between records: dropping the future loses no returned
    /// record and commits nothing new.
    pub async fn poll_up_to(&mut self, max_records: usize) -> Result<Vec<ConsumerRecord>, ClientError> {
        let max_records = max_records.max(1);
        if self.closed {
            return Err(ClientError::InvalidArgument("the consumer is closed".into()));
        }
        if matches!(self.subscription, Topics::None) {
            return Err(ClientError::InvalidArgument("subscribe to topics before polling".into()));
        }
        self.shared.lock().last_poll = Instant::now();
        let deadline = Instant::now() + self.config.max_wait;
        let shared = self.shared.clone();
        loop {
            self.check_fatal()?;
            self.refresh_metadata_if_due().await;
            if self.shared.lock().needs_join() {
                self.rejoin().await?;
            }
            self.start_unstarted().await;
            self.maybe_auto_commit().await;
            if !self.buffer.is_empty() {
                return Ok(self.take(max_records));
            }
            let notified = shared.wake.notified();
            tokio::pin!(notified);
            if self.fetcher.assignments().next().is_none() {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                }
            } else {
                tokio::select! {
                    biased;
                    _ = &mut notified => {}
                    fetched = self.fetcher.poll() => self.fetched(fetched).await?,
                }
            }
            if !self.buffer.is_empty() {
                return Ok(self.take(max_records));
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    /// Commits the positions of the records returned so far on every owned
    /// partition, synchronously.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        let offsets = self.owned_positions();
        self.last_commit = Instant::now();
        self.commit_now(&offsets).await
    }

    /// Commits these offsets (the offset of the next record to read, as in
    /// Kafka) in the current generation.
    pub async fn commit_offsets(&mut self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<(), ClientError> {
        self.commit_now(offsets).await
    }

    /// Commits (with auto-commit), stops the heartbeats and leaves the
    /// group (dynamic members only: a static member's partitions wait for
    /// it for the session timeout). The first error is returned after
    /// everything was tried.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.closed = true;
        let mut result = Ok(());
        let (phase, member_id, instance_id) = {
            let state = self.shared.lock();
            (state.phase, state.member_id.clone(), state.instance_id.clone())
        };
        if self.config.auto_commit && phase == Phase::Stable {
            let offsets = self.owned_positions();
            if let Err(err) = self.commit_now(&offsets).await {
                tracing::warn!(group = %self.config.group_id, error = %err, "final commit failed");
                result = Err(err);
            }
        }
        self.heartbeat.abort();
        self.stop_fetching_all();
        if instance_id.is_none() && !member_id.is_empty() {
            let request = pb::LeaveGroupRequest {
                group_id: self.config.group_id.clone(),
                member_id: member_id.clone(),
                group_instance_id: String::new(),
            };
            let left = self
                .coordinator
                .call(self.config.heartbeat_interval, Instant::now() + self.config.session_timeout, |mut client| {
                    let request = request.clone();
                    async move { client.leave_group(request).await }
                })
                .await;
            match left {
                Ok(_) => tracing::info!(group = %self.config.group_id, member = %member_id, "left the group"),
                Err(err) => {
                    tracing::warn!(group = %self.config.group_id, error = %err, "leaving the group failed");
                    if result.is_ok() {
                        result = Err(err);
                    }
                }
            }
        }
        self.shared.lock().reset();
        result
    }

    fn check_fatal(&self) -> Result<(), ClientError> {
        match self.shared.lock().fatal.clone() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn set_topics(&mut self, topics: BTreeSet<String>) {
        if topics != self.topics {
            self.topics = topics;
            self.shared.lock().request_rejoin("the subscription changed");
        }
    }

    /// Re-reads the topic list every `metadata_max_age`: resolves a pattern
    /// and, on the leader, notices partition count changes. A failure is
    /// only logged (the next refresh will tell).
    async fn refresh_metadata_if_due(&mut self) {
        if self.last_metadata.is_some_and(|last| last.elapsed() < self.config.metadata_max_age) {
            return;
        }
        self.last_metadata = Some(Instant::now());
        let metadata = match self.router.metadata(&[]).await {
            Ok(metadata) => metadata,
            Err(err) => {
                tracing::debug!(error = %err, "metadata refresh failed");
                return;
            }
        };
        let counts: BTreeMap<String, u32> =
            metadata.topics.iter().map(|t| (t.name.clone(), t.partitions.len() as u32)).collect();
        if let Topics::Pattern(regex) = &self.subscription {
            let matched = counts.keys().filter(|t| !t.starts_with("__") && regex.is_match(t)).cloned().collect();
            self.set_topics(matched);
        }
        if self.assigned_counts.iter().any(|(topic, &count)| counts.get(topic).copied().unwrap_or(0) != count) {
            self.shared.lock().request_rejoin("the partition count of a subscribed topic changed");
        }
    }

    /// JoinGroup + SyncGroup until the member has a stable assignment; see
    /// the module docs for what is revoked when.
    async fn rejoin(&mut self) -> Result<(), ClientError> {
        let protocol = self.config.protocol();
        if self.shared.lock().generation == NO_GENERATION && !self.owned.is_empty() {
            // The generation was lost: someone else may own these already.
            let lost: Vec<TopicPartition> = self.owned.iter().cloned().collect();
            tracing::warn!(group = %self.config.group_id, partitions = ?lost, "generation lost: dropping partitions without committing");
            self.drop_partitions(&lost);
        }
        if protocol == RebalanceProtocol::Eager && !self.owned.is_empty() {
            let all: Vec<TopicPartition> = self.owned.iter().cloned().collect();
            self.revoke(&all).await;
        }
        let mut backoff = Backoff::default();
        loop {
            self.check_fatal()?;
            let (member_id, generation) = {
                let mut state = self.shared.lock();
                state.phase = Phase::Rebalancing;
                state.rejoin = None;
                (state.member_id.clone(), state.generation)
            };
            let subscription = Subscription {
                topics: self.topics.iter().cloned().collect(),
                owned_partitions: match protocol {
                    RebalanceProtocol::Cooperative => self.owned.iter().cloned().collect(),
                    RebalanceProtocol::Eager => Vec::new(),
                },
                generation,
            };
            let metadata = protocol::encode_subscription(&subscription);
            let request = pb::JoinGroupRequest {
                group_id: self.config.group_id.clone(),
                session_timeout_ms: millis(self.config.session_timeout).unwrap_or(u32::MAX),
                rebalance_timeout_ms: millis(self.config.max_poll_interval).unwrap_or(u32::MAX),
                member_id: member_id.clone(),
                group_instance_id: self.config.group_instance_id.clone().unwrap_or_default(),
                protocol_type: PROTOCOL_TYPE.to_owned(),
                protocols: self
                    .config
                    .assignors
                    .iter()
                    .map(|a| pb::GroupProtocol { name: a.name().to_owned(), metadata: metadata.clone() })
                    .collect(),
                client_id: self.config.client_id.clone(),
            };
            // JoinGroup is answered when the rebalance completes: up to the
            // rebalance timeout.
            let timeout = self.config.max_poll_interval + Duration::from_secs(5);
            let joined = self
                .coordinator
                .call(timeout, Instant::now() + COORDINATOR_RETRY_TIMEOUT, |mut client| {
                    let request = request.clone();
                    async move { client.join_group(request).await }
                })
                .await;
            let response = match joined {
                Ok(response) => response,
                Err(err) => {
                    self.after_rebalance_error(generation, &member_id, err, true)?;
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            let (member_id, generation) = (response.member_id.clone(), response.generation_id);
            {
                let mut state = self.shared.lock();
                state.member_id = member_id.clone();
                state.generation = generation;
            }
            let leader = response.leader == member_id && !response.skip_assignment;
            let assignments = if leader {
                self.assign(&response).await?
            } else {
                self.assigned_counts.clear();
                Vec::new()
            };
            let request = pb::SyncGroupRequest {
                group_id: self.config.group_id.clone(),
                generation_id: generation,
                member_id: member_id.clone(),
                group_instance_id: self.config.group_instance_id.clone().unwrap_or_default(),
                assignments,
            };
            let synced = self
                .coordinator
                .call(timeout, Instant::now() + COORDINATOR_RETRY_TIMEOUT, |mut client| {
                    let request = request.clone();
                    async move { client.sync_group(request).await }
                })
                .await;
            let response = match synced {
                Ok(response) => response,
                Err(err) => {
                    self.after_rebalance_error(generation, &member_id, err, false)?;
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            let assigned: BTreeSet<TopicPartition> =
                protocol::decode_assignment(&response.assignment)?.into_iter().collect();
            let revoked: Vec<TopicPartition> = self.owned.difference(&assigned).cloned().collect();
            if !revoked.is_empty() {
                self.revoke(&revoked).await;
            }
            let added: Vec<TopicPartition> = assigned.difference(&self.owned).cloned().collect();
            self.unstarted.extend(added.iter().cloned());
            self.owned = assigned;
            self.shared.lock().joined(member_id.clone(), generation);
            tracing::info!(
                group = %self.config.group_id,
                member = %member_id,
                generation,
                protocol = %response.protocol_name,
                assigned = ?self.owned,
                revoked = ?revoked,
                "joined the group"
            );
            self.start_unstarted().await;
            if protocol == RebalanceProtocol::Cooperative && !revoked.is_empty() {
                // Let the next generation hand the revoked partitions on.
                self.shared.lock().request_rejoin("partitions were revoked (cooperative rebalance)");
                continue;
            }
            return Ok(());
        }
    }

    /// A JoinGroup (`joining`) or SyncGroup failed: `Ok` to try again
    /// (after resetting the member id where the coordinator forgot it),
    /// the error when it is final.
    fn after_rebalance_error(
        &self,
        generation: i32,
        member_id: &str,
        err: ClientError,
        joining: bool,
    ) -> Result<(), ClientError> {
        let mut state = self.shared.lock();
        let reaction = state.on_error(generation, member_id, &err);
        tracing::info!(group = %self.config.group_id, error = %err, ?reaction, "rebalance step failed");
        match reaction {
            Reaction::Fatal => Err(err),
            Reaction::ResetAndRejoin => {
                if joining && err.code() == Some(ErrorCode::UnknownMemberId) {
                    // Even a static member: the coordinator gives it a new id.
                    state.member_id.clear();
                }
                Ok(())
            }
            Reaction::Rejoin => Ok(()),
            Reaction::None => {
                state.phase = Phase::Unjoined;
                Err(err)
            }
        }
    }

    /// The leader's part: runs the chosen assignor over every member's
    /// subscription.
    async fn assign(&mut self, response: &pb::JoinGroupResponse) -> Result<Vec<pb::SyncAssignment>, ClientError> {
        let assignor: Assignor = response.protocol_name.parse().map_err(|err: String| {
            ClientError::InvalidArgument(format!("the coordinator chose an assignor this client lacks: {err}"))
        })?;
        let members: Vec<MemberSubscription> = response
            .members
            .iter()
            .map(|member| {
                let subscription = protocol::decode_subscription(&member.metadata).unwrap_or_else(|err| {
                    tracing::warn!(member = %member.member_id, error = %err, "ignoring an undecodable subscription");
                    Subscription::default()
                });
                MemberSubscription {
                    member_id: member.member_id.clone(),
                    group_instance_id: (!member.group_instance_id.is_empty()).then(|| member.group_instance_id.clone()),
                    topics: subscription.topics,
                    owned_partitions: subscription.owned_partitions,
                    generation: subscription.generation,
                }
            })
            .collect();
        let topics: BTreeSet<&String> = members.iter().flat_map(|m| &m.topics).collect();
        let metadata = self.router.metadata(&[]).await?;
        let known: BTreeMap<&str, u32> =
            metadata.topics.iter().map(|t| (t.name.as_str(), t.partitions.len() as u32)).collect();
        self.assigned_counts =
            topics.iter().map(|t| ((*t).clone(), known.get(t.as_str()).copied().unwrap_or(0))).collect();
        let partitions: BTreeMap<String, u32> =
            self.assigned_counts.iter().filter(|(_, count)| **count > 0).map(|(t, c)| (t.clone(), *c)).collect();
        let assignment = assignor.assign(&partitions, &members);
        tracing::debug!(group = %self.config.group_id, %assignor, ?assignment, "computed the assignment as leader");
        Ok(assignment
            .iter()
            .map(|(member_id, owned)| pb::SyncAssignment {
                member_id: member_id.clone(),
                assignment: protocol::encode_assignment(owned),
            })
            .collect())
    }

    /// Stops fetching `partitions`, commits their positions (auto-commit),
    /// and gives them up.
    async fn revoke(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.fetcher.unassign(&tp.topic, tp.partition);
        }
        self.buffer.retain(|r| !partitions.iter().any(|tp| *tp.topic == *r.topic && tp.partition == r.partition));
        if self.config.auto_commit {
            let offsets: BTreeMap<TopicPartition, i64> =
                partitions.iter().filter_map(|tp| self.positions.get(tp).map(|&o| (tp.clone(), o))).collect();
            if !offsets.is_empty()
                && let Err(err) = self.commit_now(&offsets).await
            {
                tracing::warn!(
                    group = %self.config.group_id,
                    error = %err,
                    "could not commit revoked partitions: records after their last commit will be read again"
                );
            }
        }
        self.drop_partitions(partitions);
        tracing::info!(group = %self.config.group_id, ?partitions, "revoked partitions");
    }

    /// Forgets `partitions` without committing.
    fn drop_partitions(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.fetcher.unassign(&tp.topic, tp.partition);
            self.positions.remove(tp);
            self.owned.remove(tp);
            self.unstarted.remove(tp);
        }
        self.buffer.retain(|r| !partitions.iter().any(|tp| *tp.topic == *r.topic && tp.partition == r.partition));
    }

    fn stop_fetching_all(&mut self) {
        for tp in &self.owned {
            self.fetcher.unassign(&tp.topic, tp.partition);
        }
        self.buffer.clear();
    }

    /// Starts fetching the owned partitions not started yet: at the
    /// committed offset, else per `auto_offset_reset`. A failure leaves
    /// them for the next `poll`.
    async fn start_unstarted(&mut self) {
        if self.unstarted.is_empty() {
            return;
        }
        let partitions: Vec<TopicPartition> = self.unstarted.iter().cloned().collect();
        if let Err(err) = self.start(&partitions).await {
            tracing::warn!(group = %self.config.group_id, error = %err, "cannot start partitions yet");
        }
    }

    async fn start(&mut self, partitions: &[TopicPartition]) -> Result<(), ClientError> {
        let committed = fetch_offsets(&self.coordinator, partitions).await?;
        let mut starts: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for c in committed {
            if let Some(offset) = c.offset {
                starts.insert(TopicPartition::new(c.topic, c.partition), offset);
            }
        }
        let missing: Vec<&TopicPartition> = partitions.iter().filter(|tp| !starts.contains_key(*tp)).collect();
        if !missing.is_empty() {
            let spec = OffsetSpec::from(self.config.auto_offset_reset);
            let request: Vec<(&str, u32, OffsetSpec)> =
                missing.iter().map(|tp| (tp.topic.as_str(), tp.partition, spec)).collect();
            for resolved in self.admin.list_offsets(&request).await? {
                starts.insert(TopicPartition::new(resolved.topic, resolved.partition), resolved.offset.unwrap_or(0));
            }
        }
        for tp in partitions {
            let Some(&offset) = starts.get(tp) else { continue };
            if !self.owned.contains(tp) {
                continue;
            }
            self.fetcher.assign(&tp.topic, tp.partition, offset);
            self.positions.insert(tp.clone(), offset);
            self.unstarted.remove(tp);
            tracing::debug!(group = %self.config.group_id, partition = %tp, offset, "starting");
        }
        Ok(())
    }

    /// Takes a fetch result: records into the buffer; an offset out of
    /// range resets the partitions concerned.
    async fn fetched(&mut self, fetched: Result<Vec<ConsumerRecord>, ClientError>) -> Result<(), ClientError> {
        match fetched {
            Ok(records) => {
                self.buffer.extend(records);
                Ok(())
            }
            Err(err) if err.code() == Some(ErrorCode::OffsetOutOfRange) => self.reset_out_of_range().await,
            Err(err) if err.is_retriable() => {
                tracing::debug!(error = %err, "fetch failed, retrying");
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Moves every partition whose position is outside its log to
    /// `auto_offset_reset`.
    async fn reset_out_of_range(&mut self) -> Result<(), ClientError> {
        let partitions: Vec<TopicPartition> = self.positions.keys().cloned().collect();
        let mut request = Vec::new();
        for tp in &partitions {
            request.push((tp.topic.as_str(), tp.partition, OffsetSpec::Earliest));
            request.push((tp.topic.as_str(), tp.partition, OffsetSpec::Latest));
        }
        let earliest: BTreeMap<TopicPartition, i64> = self
            .admin
            .list_offsets(&request.iter().copied().step_by(2).collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|o| (TopicPartition::new(o.topic, o.partition), o.offset.unwrap_or(0)))
            .collect();
        let latest: BTreeMap<TopicPartition, i64> = self
            .admin
            .list_offsets(&request.iter().copied().skip(1).step_by(2).collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|o| (TopicPartition::new(o.topic, o.partition), o.offset.unwrap_or(0)))
            .collect();
        for tp in partitions {
            let (Some(&low), Some(&high)) = (earliest.get(&tp), latest.get(&tp)) else { continue };
            let Some(fetch_position) = self.fetcher.position(&tp.topic, tp.partition) else { continue };
            if (low..=high).contains(&fetch_position) {
                continue;
            }
            let to = match self.config.auto_offset_reset {
                AutoOffsetReset::Earliest => low,
                AutoOffsetReset::Latest => high,
            };
            tracing::warn!(partition = %tp, position = fetch_position, to, "offset out of range: resetting");
            self.buffer.retain(|r| !(*r.topic == tp.topic && r.partition == tp.partition));
            self.fetcher.assign(&tp.topic, tp.partition, to);
            self.positions.insert(tp, to);
        }
        Ok(())
    }

    async fn maybe_auto_commit(&mut self) {
        if !self.config.auto_commit || self.last_commit.elapsed() < self.config.auto_commit_interval {
            return;
        }
        self.last_commit = Instant::now();
        let offsets = self.owned_positions();
        if offsets.is_empty() {
            return;
        }
        if let Err(err) = self.commit_now(&offsets).await {
            tracing::warn!(group = %self.config.group_id, error = %err, "auto-commit failed");
        }
    }

    fn owned_positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.positions.iter().filter(|(tp, _)| self.owned.contains(*tp)).map(|(tp, &o)| (tp.clone(), o)).collect()
    }

    /// OffsetCommit in the current generation; a group error is applied to
    /// the member state (and wakes `poll`).
    async fn commit_now(&self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let (member_id, generation) = {
            let state = self.shared.lock();
            (state.member_id.clone(), state.generation)
        };
        if generation == NO_GENERATION {
            return Err(ClientError::InvalidArgument(format!(
                "not a member of a generation of group {:?} (poll first)",
                self.config.group_id
            )));
        }
        let request = commit_request(
            &self.config.group_id,
            generation,
            &member_id,
            self.config.group_instance_id.as_deref(),
            offsets,
        );
        let result = self
            .coordinator
            .request(|mut client| {
                let request = request.clone();
                async move { client.offset_commit(request).await }
            })
            .await;
        match result {
            Ok(_) => {
                tracing::debug!(group = %self.config.group_id, ?offsets, "committed");
                Ok(())
            }
            Err(err) => {
                if self.shared.lock().on_error(generation, &member_id, &err) != Reaction::None {
                    self.shared.wake.notify_one();
                }
                Err(err)
            }
        }
    }

    /// Up to `max` buffered records; the positions move past them.
    fn take(&mut self, max: usize) -> Vec<ConsumerRecord> {
        let count = max.min(self.buffer.len());
        let records: Vec<ConsumerRecord> = self.buffer.drain(..count).collect();
        let mut last: Option<(&ConsumerRecord, i64)> = None;
        let advance = |record: &ConsumerRecord, next: i64, positions: &mut BTreeMap<TopicPartition, i64>| {
            let tp = TopicPartition::new(&*record.topic, record.partition);
            if let Some(position) = positions.get_mut(&tp) {
                *position = (*position).max(next);
            }
        };
        for record in &records {
            match last {
                Some((previous, _)) if previous.topic == record.topic && previous.partition == record.partition => {}
                Some((previous, next)) => advance(previous, next, &mut self.positions),
                None => {}
            }
            last = Some((record, record.offset + 1));
        }
        if let Some((previous, next)) = last {
            advance(previous, next, &mut self.positions);
        }
        records
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Heartbeats every `interval` while the member is stable; reports
/// rebalances and fencing through the shared state; leaves the group when
/// `poll` has not been called for `max_poll_interval`.
async fn heartbeat_loop(
    shared: Arc<Shared>,
    coordinator: Arc<Coordinator>,
    group_id: String,
    interval: Duration,
    max_poll_interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let (member_id, generation, instance_id, last_poll) = {
            let state = shared.lock();
            if state.phase != Phase::Stable || state.rejoin.is_some() || state.fatal.is_some() {
                continue;
            }
            (state.member_id.clone(), state.generation, state.instance_id.clone(), state.last_poll)
        };
        if last_poll.elapsed() > max_poll_interval {
            tracing::warn!(
                group = %group_id,
                ?max_poll_interval,
                "poll was not called within the max poll interval: leaving the group"
            );
            if instance_id.is_none() {
                let request = pb::LeaveGroupRequest {
                    group_id: group_id.clone(),
                    member_id: member_id.clone(),
                    group_instance_id: String::new(),
                };
                let left = coordinator
                    .call(interval, Instant::now() + interval, |mut client| {
                        let request = request.clone();
                        async move { client.leave_group(request).await }
                    })
                    .await;
                if let Err(err) = left {
                    tracing::debug!(error = %err, "leave after the poll timeout failed");
                }
                let mut state = shared.lock();
                if state.generation == generation {
                    state.reset();
                }
            }
            shared.lock().request_rejoin("the max poll interval was exceeded");
            shared.wake.notify_one();
            continue;
        }
        let request = pb::HeartbeatRequest {
            group_id: group_id.clone(),
            generation_id: generation,
            member_id: member_id.clone(),
            group_instance_id: instance_id.unwrap_or_default(),
        };
        let result = coordinator
            .call(interval, Instant::now() + interval, |mut client| {
                let request = request.clone();
                async move { client.heartbeat(request).await }
            })
            .await;
        if let Err(err) = result {
            let reaction = shared.lock().on_error(generation, &member_id, &err);
            if reaction == Reaction::None {
                tracing::debug!(group = %group_id, error = %err, "heartbeat failed");
            } else {
                tracing::info!(group = %group_id, error = %err, ?reaction, "heartbeat: the group is rebalancing");
                shared.wake.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafka_s() {
        let config = GroupConsumerConfig::new("127.0.0.1:9092", "g");
        assert_eq!(config.session_timeout, Duration::from_secs(10));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(3));
        assert_eq!(config.max_poll_interval, Duration::from_secs(300));
        assert_eq!(config.auto_commit_interval, Duration::from_secs(5));
        assert!(config.auto_commit);
        assert_eq!(config.auto_offset_reset, AutoOffsetReset::Latest);
        assert_eq!(config.assignors, [Assignor::Range, Assignor::CooperativeSticky]);
        assert_eq!(config.protocol(), RebalanceProtocol::Eager);
        config.validate().unwrap();
    }

    #[test]
    fn bad_settings_are_refused() {
        let base = GroupConsumerConfig::new("127.0.0.1:9092", "g");
        let mut config = base.clone();
        config.group_id.clear();
        assert!(config.validate().unwrap_err().to_string().contains("group id"));
        let mut config = base.clone();
        config.heartbeat_interval = config.session_timeout;
        assert!(config.validate().unwrap_err().to_string().contains("heartbeat interval"));
        let mut config = base.clone();
        config.assignors.clear();
        assert!(config.validate().is_err());
        let mut config = base.clone();
        config.group_instance_id = Some(String::new());
        assert!(config.validate().is_err());
        let mut config = base;
        config.max_poll_interval = Duration::from_secs(u64::from(u32::MAX));
        assert!(config.validate().is_err());
    }

    #[test]
    fn auto_offset_reset_parses() {
        assert_eq!("earliest".parse::<AutoOffsetReset>().unwrap(), AutoOffsetReset::Earliest);
        assert_eq!("latest".parse::<AutoOffsetReset>().unwrap(), AutoOffsetReset::Latest);
        assert!("none".parse::<AutoOffsetReset>().is_err());
        assert_eq!(OffsetSpec::from(AutoOffsetReset::Earliest), OffsetSpec::Earliest);
    }
}
