//! PlanRebalance and RemoveBroker.

use std::collections::BTreeSet;

use kmon_proto::v1::*;
use tonic::Status;

use crate::balance::{planner, sizes};
use crate::broker::Broker;
use crate::error::BrokerError;

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
        .map_err(|e| Status::internal(format!("the planner failed: {e}")))?;
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
