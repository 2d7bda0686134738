//! The background heartbeat task: heartbeats every `heartbeat_interval`
//! while the member is stable, also while the application is busy between
//! two polls; reports rebalances and fencing to `poll` through [`Shared`];
//! leaves the group (dynamic members) when `poll` has not been called for
//! `max_poll_interval`, so the partitions go to members that make progress.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kmon_proto::v1 as pb;
use tokio::sync::Notify;

use crate::group::coordinator::Coordinator;
use crate::group::member::{MemberState, Phase, Reaction};

/// State shared with the heartbeat task.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) state: Mutex<MemberState>,
    /// Woken when the member must rejoin or stop.
    pub(super) wake: Notify,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, MemberState> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Heartbeats every `interval` while the member is stable; reports
/// rebalances and fencing through the shared state; leaves the group when
/// `poll` has not been called for `max_poll_interval`.
pub(super) async fn heartbeat_loop(
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
