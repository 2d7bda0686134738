//! Metadata: the brokers and every partition's leader. A single-node
//! cluster is its own controller.

use kmon_proto::v1::*;
use tonic::Status;

use super::topics::describe_view;
use crate::broker::{Broker, SINGLE_NODE_ID};

pub(super) fn handle(broker: &Broker, req: MetadataRequest) -> Result<MetadataResponse, Status> {
    let topics = if req.topics.is_empty() {
        broker.list_topics()?
    } else {
        req.topics
            .iter()
            .map(|t| broker.describe_topic(t))
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(MetadataResponse {
        brokers: vec![BrokerInfo {
            id: SINGLE_NODE_ID,
            address: broker.address.to_string(),
            metrics_address: broker.metrics_address.to_string(),
            fault_domain: String::new(),
            update_domain: String::new(),
            alive: true,
        }],
        controller_id: SINGLE_NODE_ID,
        topics: topics.iter().map(|v| describe_view(broker, v)).collect(),
    })
}
