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
//!
//! Files: `config` (settings, Kafka's defaults), `rebalance` (JoinGroup,
//! SyncGroup, the leader's assignment, revocation), `fetch` (where owned
//! partitions start, fetch results, handing records to `poll`), `commit`
//! (commit, auto-commit), `heartbeat` (the background task); this file
//! holds the consumer's state, its API and the `poll` loop.

mod commit;
mod config;
mod fetch;
mod heartbeat;
mod rebalance;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kmon_proto::v1 as pb;
use regex::Regex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::coordinator::Coordinator;
use super::member::{MemberState, Phase};
use crate::admin::Admin;
use crate::consumer::Consumer;
use crate::error::ClientError;
use crate::router::Router;
use crate::types::{ConsumerRecord, TopicPartition};

pub use config::{AutoOffsetReset, GroupConsumerConfig};
use heartbeat::{Shared, heartbeat_loop};

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
        let router = Router::connect(&config.bootstrap, config.security.as_ref()).await?;
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

    pub(super) fn check_fatal(&self) -> Result<(), ClientError> {
        match self.shared.lock().fatal.clone() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}
