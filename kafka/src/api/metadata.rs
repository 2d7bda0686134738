//! Metadata: the live brokers' Kafka listeners (rack = `FDx/UDy`), the
//! active controller, and each asked topic's partitions with leader, epoch,
//! replicas and ISR, from this broker's copy of the metadata.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kmon_broker::Broker;
use kmon_broker::controller::state::acls::{AclOperation, Resource};
use kmon_broker::controller::state::{ClusterState, TopicRecord};
use uuid::Uuid;

use super::cluster::{CLUSTER_ID, endpoints};
use super::{text, topic_name};

pub fn handle(broker: &Broker, req: MetadataRequest, version: i16, principal: &str) -> MetadataResponse {
    let state = broker.metadata();
    let live = endpoints(&state);
    let live_ids: BTreeSet<i32> = live.iter().map(|e| e.id).collect();
    let brokers = live
        .into_iter()
        .map(|e| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(e.id))
                .with_host(text(e.host))
                .with_port(e.port)
                .with_rack(Some(text(e.rack)))
        })
        .collect();
    // v0: an empty list means every topic; v1+: null does, empty means none.
    let topics = match req.topics {
        None => all_topics(broker, principal, &state, &live_ids),
        Some(wanted) if wanted.is_empty() && version == 0 => all_topics(broker, principal, &state, &live_ids),
        Some(wanted) => wanted
            .into_iter()
            .map(|w| match w.name {
                Some(name) if !may_describe(broker, principal, name.0.as_str()) => MetadataResponseTopic::default()
                    .with_name(Some(name))
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                Some(name) => match state.topics.get(name.0.as_str()) {
                    Some(record) => topic(name.0.as_str(), record, &live_ids),
                    None => MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                },
                None => match state.topics.iter().find(|(_, r)| topic_uuid(r.topic_id) == w.topic_id) {
                    Some((name, _)) if !may_describe(broker, principal, name) => MetadataResponseTopic::default()
                        .with_topic_id(w.topic_id)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                    Some((name, record)) => topic(name, record, &live_ids),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(w.topic_id)
                        .with_error_code(ResponseError::UnknownTopicId.code()),
                },
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(text(CLUSTER_ID)))
        .with_controller_id(BrokerId(broker.controller.leader_id().unwrap_or(-1)))
        .with_topics(topics)
}

/// kmon's 64-bit topic id as Kafka's UUID (0: none recorded).
pub fn topic_uuid(topic_id: u64) -> Uuid {
    Uuid::from_u64_pair(0, topic_id)
}

/// Every topic the client may describe (Kafka leaves the others out).
fn all_topics(
    broker: &Broker,
    principal: &str,
    state: &ClusterState,
    live: &BTreeSet<i32>,
) -> Vec<MetadataResponseTopic> {
    state
        .topics
        .iter()
        .filter(|(name, _)| broker.authorizer.allows(principal, AclOperation::Describe, &Resource::topic(name)))
        .map(|(name, record)| topic(name, record, live))
        .collect()
}

/// Describe on a topic the client named (a refusal is counted).
fn may_describe(broker: &Broker, principal: &str, name: &str) -> bool {
    broker.authorizer.authorize(principal, AclOperation::Describe, &Resource::topic(name)).is_ok()
}

fn topic(name: &str, record: &TopicRecord, live: &BTreeSet<i32>) -> MetadataResponseTopic {
    let partitions = record
        .partitions
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let leader_live = live.contains(&p.leader);
            let ids = |v: &[i32]| v.iter().map(|&id| BrokerId(id)).collect::<Vec<_>>();
            MetadataResponsePartition::default()
                .with_partition_index(index as i32)
                .with_error_code(if leader_live { 0 } else { ResponseError::LeaderNotAvailable.code() })
                .with_leader_id(BrokerId(if leader_live { p.leader } else { -1 }))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_offline_replicas(
                    p.replicas.iter().filter(|id| !live.contains(id)).map(|&id| BrokerId(id)).collect(),
                )
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_topic_id(topic_uuid(record.topic_id))
        .with_is_internal(name.starts_with("__"))
        .with_partitions(partitions)
}
