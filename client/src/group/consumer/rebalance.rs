//! Joining and rebalancing: JoinGroup + SyncGroup until the member has a
//! stable assignment, the leader's assignor run, revocation (commit first)
//! and what a failed step means; the subscription's topics are re-read
//! every `metadata_max_age`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kmon_proto::v1 as pb;

use super::config::millis;
use super::{GroupConsumer, Topics};
use crate::error::{ClientError, ErrorCode};
use crate::group::assignor::{Assignor, MemberSubscription, RebalanceProtocol};
use crate::group::coordinator::COORDINATOR_RETRY_TIMEOUT;
use crate::group::member::{NO_GENERATION, Phase, Reaction};
use crate::group::protocol::{self, PROTOCOL_TYPE, Subscription};
use crate::retry::Backoff;
use crate::types::TopicPartition;

impl GroupConsumer {
    pub(super) fn set_topics(&mut self, topics: BTreeSet<String>) {
        if topics != self.topics {
            self.topics = topics;
            self.shared.lock().request_rejoin("the subscription changed");
        }
    }

    /// Re-reads the topic list every `metadata_max_age`: resolves a pattern
    /// and, on the leader, notices partition count changes. A failure is
    /// only logged (the next refresh will tell).
    pub(super) async fn refresh_metadata_if_due(&mut self) {
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
    pub(super) async fn rejoin(&mut self) -> Result<(), ClientError> {
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
}
