//! PlanRebalance, RemoveBroker, and the reassignment calls: ExecuteReassignment,
//! ReassignmentStatus, CancelReassignment, ElectLeaders.

use std::collections::{BTreeMap, BTreeSet};

use kmon_proto::v1::*;
use tonic::Status;

use crate::balance::{planner, sizes};
use crate::broker::Broker;
use crate::controller::state::{CommandOutcome, MetadataCommand, ReplicaMove};
use crate::error::BrokerError;
use crate::log::partition::now_ms;

pub(super) async fn plan(broker: &Broker, req: PlanRebalanceRequest) -> Result<PlanRebalanceResponse, Status> {
    let state = broker.metadata();
    if let Some(unknown) = req.topics.iter().find(|t| !state.topics.contains_key(*t)) {
        return Err(BrokerError::UnknownTopic(unknown.clone()).into());
    }
    let topics: BTreeSet<String> = req.topics.into_iter().collect();
    let (sizes, sizes_note) = sizes::partition_sizes(broker, &state).await;
    // Planning is CPU work (up to ~a second for large clusters).
    let plan = tokio::task::spawn_blocking(move || planner::plan(&state, &sizes, &topics))
        .await
        .map_err(|e| BrokerError::Internal(format!("the planner failed: {e}")))?;
    Ok(PlanRebalanceResponse {
        moves: plan
            .moves
            .into_iter()
            .map(|m| PartitionMove {
                topic: m.topic,
                partition: m.partition,
                from_replicas: m.from_replicas,
                to_replicas: m.to_replicas,
                bytes_to_move: m.bytes_to_move,
            })
            .collect(),
        bytes_to_move: plan.bytes_to_move,
        goals: plan
            .goals
            .into_iter()
            .map(|g| BalanceGoal { name: g.name.to_owned(), before: g.before, after: g.after })
            .collect(),
        sizes_note: sizes_note.unwrap_or_default(),
    })
}

/// Always refused: the broker set never shrinks.
pub(super) fn remove_broker(req: RemoveBrokerRequest) -> Result<RemoveBrokerResponse, Status> {
    tracing::warn!(broker_id = req.broker_id, "refused a request to remove a broker (scale-down is not supported)");
    Err(BrokerError::ScaleDownRefused { broker_id: req.broker_id }.into())
}

/// Starts the moves (or, with none, changes the running one's throttle).
pub(super) async fn execute(
    broker: &Broker,
    req: ExecuteReassignmentRequest,
) -> Result<ExecuteReassignmentResponse, Status> {
    let throttle = Some(req.throttle_bytes_per_sec).filter(|t| *t > 0);
    if req.moves.is_empty() {
        if broker.metadata().reassignment.is_none() {
            return Err(BrokerError::InvalidRequest(
                "no moves given and no reassignment in progress (run `kmon rebalance plan` to see what would move)"
                    .into(),
            )
            .into());
        }
        broker.propose(MetadataCommand::SetReassignmentThrottle { throttle_bytes_per_sec: throttle }).await?;
        return Ok(ExecuteReassignmentResponse { partitions: 0, bytes: 0 });
    }
    let moves = req
        .moves
        .into_iter()
        .map(|m| ReplicaMove { topic: m.topic, partition: m.partition, target: m.to_replicas, bytes: m.bytes_to_move })
        .collect();
    let command = MetadataCommand::StartReassignment { moves, throttle_bytes_per_sec: throttle, now_ms: now_ms() };
    match broker.propose(command).await? {
        CommandOutcome::ReassignmentStarted { partitions, bytes } => {
            tracing::info!(partitions, bytes, ?throttle, "reassignment started");
            Ok(ExecuteReassignmentResponse { partitions, bytes })
        }
        other => Err(BrokerError::Internal(format!("unexpected outcome {other:?}")).into()),
    }
}

/// The pending moves from this broker's metadata; bytes left from the
/// sizes of the leaders' and the new replicas' logs.
pub(super) async fn status(broker: &Broker) -> Result<ReassignmentStatusResponse, Status> {
    let state = broker.metadata();
    let Some(batch) = state.reassignment.clone() else {
        return Ok(ReassignmentStatusResponse::default());
    };
    let mut involved: BTreeSet<i32> = BTreeSet::new();
    for (_, _, p, r) in state.pending_reassignments() {
        involved.insert(p.leader);
        involved.extend(r.adding());
    }
    let addresses: Vec<(i32, String)> =
        involved.into_iter().filter_map(|id| state.brokers.get(&id).map(|b| (id, b.address.clone()))).collect();
    // Only the moving topics: the CLI polls this twice a second.
    let topics: Vec<String> =
        state.pending_reassignments().map(|(t, ..)| t.to_owned()).collect::<BTreeSet<_>>().into_iter().collect();
    let me = broker.config.broker_id;
    let answers = futures::future::join_all(addresses.iter().map(|(id, address)| {
        let topics = topics.clone();
        async move {
            if *id == me {
                Ok(sizes::local_sizes(broker, &topics))
            } else {
                sizes::ask_sizes(broker, address, topics).await
            }
        }
    }))
    .await;
    let hosted: BTreeMap<i32, BTreeMap<(String, u32), u64>> =
        addresses.iter().zip(answers).filter_map(|((id, _), a)| a.ok().map(|sizes| (*id, sizes))).collect();
    let size_on = |broker: i32, key: &(String, u32)| hosted.get(&broker).and_then(|s| s.get(key)).copied();
    let mut pending = Vec::new();
    let mut bytes_left = 0;
    for (topic, partition, p, r) in state.pending_reassignments() {
        let key = (topic.to_string(), partition);
        let adding = r.adding();
        // Unknown leader size: assume the planned size per new replica.
        let leader_size = size_on(p.leader, &key).unwrap_or(r.bytes / adding.len().max(1) as u64);
        let left: u64 = adding
            .iter()
            .filter(|b| !p.isr.contains(b))
            .map(|b| leader_size.saturating_sub(size_on(*b, &key).unwrap_or(0)))
            .sum();
        bytes_left += left;
        pending.push(PartitionReassignment {
            topic: topic.to_string(),
            partition,
            original: r.original.clone(),
            target: r.target.clone(),
            adding,
            removing: r.removing(),
            isr: p.isr.clone(),
            leader: p.leader,
            bytes: r.bytes,
            bytes_left: left,
        });
    }
    Ok(ReassignmentStatusResponse {
        in_progress: true,
        partitions_total: batch.partitions,
        bytes_total: batch.bytes,
        throttle_bytes_per_sec: batch.throttle_bytes_per_sec.unwrap_or(0),
        started_ms: batch.started_ms,
        pending,
        bytes_left,
    })
}

pub(super) async fn cancel(broker: &Broker) -> Result<CancelReassignmentResponse, Status> {
    match broker.propose(MetadataCommand::CancelReassignment).await? {
        CommandOutcome::ReassignmentCancelled { reverted, kept } => {
            tracing::info!(reverted, kept, "reassignment cancelled");
            Ok(CancelReassignmentResponse { reverted, kept })
        }
        other => Err(BrokerError::Internal(format!("unexpected outcome {other:?}")).into()),
    }
}

pub(super) async fn elect_leaders(broker: &Broker, req: ElectLeadersRequest) -> Result<ElectLeadersResponse, Status> {
    match broker.propose(MetadataCommand::ElectPreferredLeaders { topics: req.topics }).await? {
        CommandOutcome::LeadersElected { moved, already_preferred, not_eligible } => {
            tracing::info!(moved, already_preferred, not_eligible, "preferred leader election");
            Ok(ElectLeadersResponse { moved, already_preferred, not_eligible })
        }
        other => Err(BrokerError::Internal(format!("unexpected outcome {other:?}")).into()),
    }
}
