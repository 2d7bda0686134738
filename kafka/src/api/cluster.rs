//! The brokers as Kafka clients see them (their Kafka listeners, rack =
//! `FDx/UDy`), shared by Metadata, FindCoordinator and DescribeCluster; and
//! DescribeCluster itself.

use std::net::SocketAddr;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kmon_broker::Broker;
use kmon_broker::controller::state::acls::{AclOperation, Resource};
use kmon_broker::controller::state::{BrokerRecord, ClusterState};

use super::text;

/// The cluster id Kafka clients see (kmon's metadata has no id of its own
/// yet; clients only compare it between brokers).
pub const CLUSTER_ID: &str = "kmon";

/// A broker's Kafka endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: String,
}

/// The endpoint of a live (unfenced) broker that serves a Kafka listener.
pub fn endpoint(record: &BrokerRecord) -> Option<Endpoint> {
    if record.fenced {
        return None;
    }
    let address: SocketAddr = record.kafka_address.parse().ok()?;
    Some(Endpoint {
        id: record.id,
        host: address.ip().to_string(),
        port: i32::from(address.port()),
        rack: format!("{}/{}", record.fault_domain, record.update_domain),
    })
}

pub fn endpoints(state: &ClusterState) -> Vec<Endpoint> {
    state.brokers.values().filter_map(endpoint).collect()
}

pub fn describe(broker: &Broker, req: DescribeClusterRequest, principal: &str) -> DescribeClusterResponse {
    if let Err(err) = broker.authorizer.authorize(principal, AclOperation::Describe, &Resource::cluster()) {
        return DescribeClusterResponse::default()
            .with_error_code(crate::error::error_code(&err))
            .with_error_message(Some(text(err.to_string())));
    }
    let response = DescribeClusterResponse::default()
        .with_cluster_id(text(CLUSTER_ID))
        .with_controller_id(BrokerId(broker.controller.leader_id().unwrap_or(-1)))
        .with_endpoint_type(req.endpoint_type);
    // endpoint_type 2 asks for KRaft controller endpoints: kmon's quorum
    // runs inside the brokers and speaks gRPC only.
    if req.endpoint_type == 2 {
        return response
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(text("kmon's metadata quorum has no Kafka controller endpoints")));
    }
    let brokers = endpoints(&broker.metadata())
        .into_iter()
        .map(|e| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(e.id))
                .with_host(text(e.host))
                .with_port(e.port)
                .with_rack(Some(text(e.rack)))
        })
        .collect();
    response.with_brokers(brokers)
}
