//! Broker lifecycle: a broker registers with the quorum, then heartbeats
//! the active controller; the active controller fences brokers whose
//! session expired (their partitions get new leaders, see
//! `ClusterState::apply`) and unfences them when they heartbeat again.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use kmon_proto::replication::v1::BrokerHeartbeatRequest;
use kmon_proto::replication::v1::replication_client::ReplicationClient;
use tokio_util::sync::CancellationToken;

use crate::controller::Controller;
use crate::controller::state::{BrokerId, BrokerRecord, ClusterState, MetadataCommand};

/// Heartbeats seen by this broker while it is the active controller.
#[derive(Debug, Default)]
pub struct Liveness {
    last_seen: Mutex<HashMap<BrokerId, Instant>>,
}

impl Liveness {
    pub fn heartbeat(&self, broker: BrokerId) {
        self.last_seen.lock().insert(broker, Instant::now());
    }
}

/// Registers this broker (retrying until the quorum answers).
pub async fn register(controller: &Controller, record: BrokerRecord, shutdown: &CancellationToken) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        match controller.write(MetadataCommand::RegisterBroker(record.clone())).await {
            Ok(Ok(_)) => {
                // Committed; wait until this broker has applied it too, so
                // that it serves (and authorizes) on metadata that includes
                // everything committed before its registration.
                let mut state = controller.state();
                let applied = |s: &Arc<ClusterState>| {
                    s.brokers.get(&record.id).is_some_and(|b| b.incarnation == record.incarnation)
                };
                tokio::select! {
                    _ = state.wait_for(applied) => {}
                    _ = shutdown.cancelled() => return false,
                }
                tracing::info!(broker = record.id, "registered with the metadata quorum");
                return true;
            }
            Ok(Err(refused)) => tracing::warn!(error = %refused, "registration refused; retrying"),
            Err(err) => tracing::info!(error = %err, "waiting for the metadata quorum to register"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return false,
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Sends a heartbeat to the active controller every `interval`.
pub async fn heartbeat_loop(
    controller: Controller,
    liveness: Arc<Liveness>,
    me: BrokerId,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut client: Option<(String, ReplicationClient<tonic::transport::Channel>)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let Some(leader) = controller.leader_id() else { continue };
        if leader == me {
            liveness.heartbeat(me);
            continue;
        }
        let Some(address) = controller.state().borrow().brokers.get(&leader).map(|b| b.address.clone()) else {
            continue;
        };
        if client.as_ref().is_none_or(|(a, _)| *a != address) {
            let endpoint = match crate::tls::peer_endpoint(&address) {
                Ok(e) => e.connect_timeout(interval).timeout(interval * 2),
                Err(_) => continue,
            };
            client = Some((address.clone(), ReplicationClient::new(endpoint.connect_lazy())));
        }
        if let Some((_, c)) = &mut client
            && let Err(status) = c.broker_heartbeat(BrokerHeartbeatRequest { broker_id: me }).await
        {
            tracing::debug!(error = %status.message(), "heartbeat failed");
            client = None;
        }
    }
}

/// On the active controller: fence brokers whose session expired, unfence
/// those that came back.
pub async fn fencing_loop(
    controller: Controller,
    liveness: Arc<Liveness>,
    session_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut was_leader = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if !controller.is_leader() {
            was_leader = false;
            continue;
        }
        let state = controller.state().borrow().clone();
        let now = Instant::now();
        if !was_leader {
            // A new controller gives every broker a full session to reach it.
            was_leader = true;
            let mut seen = liveness.last_seen.lock();
            for id in state.brokers.keys() {
                seen.insert(*id, now);
            }
            continue;
        }
        let commands: Vec<MetadataCommand> = {
            let mut seen = liveness.last_seen.lock();
            // A broker that just registered gets a full session to send its
            // first heartbeat.
            for id in state.brokers.keys() {
                seen.entry(*id).or_insert(now);
            }
            state
                .brokers
                .values()
                .filter_map(|b| {
                    let alive = seen.get(&b.id).is_some_and(|t| now.duration_since(*t) < session_timeout);
                    match (b.fenced, alive) {
                        (false, false) => Some(MetadataCommand::FenceBroker { id: b.id }),
                        (true, true) => Some(MetadataCommand::UnfenceBroker { id: b.id }),
                        _ => None,
                    }
                })
                .collect()
        };
        for command in commands {
            tracing::info!(?command, "broker liveness changed");
            if let Err(err) = controller.write(command).await {
                tracing::warn!(error = %err, "could not record broker liveness");
            }
        }
    }
}
