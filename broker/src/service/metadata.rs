//! Metadata: the brokers, the active controller and every partition's
//! leader, answered from this broker's local copy of the metadata.

use kmon_proto::v1::*;
use tonic::Status;

use super::topics::describe_view;
use crate::broker::Broker;

pub(super) fn handle(broker: &Broker, req: MetadataRequest) -> Result<MetadataResponse, Status> {
    let state = broker.metadata();
    let topics = if req.topics.is_empty() {
        broker.list_topics()
    } else {
        req.topics.iter().map(|t| broker.describe_topic(t)).collect::<Result<Vec<_>, _>>()?
    };
    Ok(MetadataResponse {
        brokers: state
            .brokers
            .values()
            .map(|b| BrokerInfo {
                id: b.id,
                address: b.address.clone(),
                metrics_address: b.metrics_address.clone(),
                kafka_address: b.kafka_address.clone(),
                fault_domain: b.fault_domain.clone(),
                update_domain: b.update_domain.clone(),
                alive: !b.fenced,
            })
            .collect(),
        controller_id: broker.controller.leader_id().unwrap_or(-1),
        topics: topics.iter().map(describe_view).collect(),
        controller_voters: broker
            .controller
            .raft_status()
            .voters
            .iter()
            .filter_map(|id| state.brokers.get(id).map(|b| format!("{id}@{}", b.address)))
            .collect::<Vec<_>>()
            .join(","),
    })
}
