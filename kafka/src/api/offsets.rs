//! OffsetCommit and OffsetFetch: the same committed offsets in
//! `__consumer_offsets` as gRPC groups, so lag metrics, Burrow status and
//! `kmon group describe` see Kafka clients' commits.

use std::collections::HashMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse};
use kafka_protocol::protocol::StrBytes;
use kmon_broker::Broker;

use super::{text, topic_name};
use crate::error::error_code;
use kmon_broker::controller::state::acls::{AclOperation, Resource};

pub async fn commit(broker: &Broker, req: OffsetCommitRequest, principal: &str) -> OffsetCommitResponse {
    let state = broker.metadata();
    // Partitions of unknown topics fail on their own; the others commit together.
    let mut codes: HashMap<(String, i32), i16> = HashMap::new();
    let mut offsets = Vec::new();
    for topic in &req.topics {
        let name = topic.name.0.as_str();
        let count = state.topics.get(name).map(|t| t.partitions.len());
        for p in &topic.partitions {
            let known = count.is_some_and(|n| p.partition_index >= 0 && (p.partition_index as usize) < n);
            if let Err(err) = broker.authorizer.authorize(principal, AclOperation::Read, &Resource::topic(name)) {
                codes.insert((name.to_string(), p.partition_index), error_code(&err));
            } else if !known {
                codes.insert((name.to_string(), p.partition_index), ResponseError::UnknownTopicOrPartition.code());
            } else if p.committed_offset < 0 {
                codes.insert((name.to_string(), p.partition_index), ResponseError::InvalidCommitOffsetSize.code());
            } else {
                let metadata = p.committed_metadata.as_ref().map(|m| m.as_str().to_string()).unwrap_or_default();
                offsets.push((name.to_string(), p.partition_index as u32, p.committed_offset, metadata));
            }
        }
    }
    let instance = req.group_instance_id.as_ref().map(|s| s.as_str()).filter(|s| !s.is_empty());
    let group_refused =
        broker.authorizer.authorize(principal, AclOperation::Read, &Resource::group(req.group_id.0.as_str())).err();
    let outcome = if let Some(err) = group_refused {
        error_code(&err)
    } else if offsets.is_empty() {
        0
    } else {
        broker
            .groups
            .commit(
                req.group_id.0.as_str(),
                req.generation_id_or_member_epoch,
                req.member_id.as_str(),
                instance,
                offsets,
            )
            .await
            .err()
            .map_or(0, |err| error_code(&err))
    };
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.as_str().to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = codes.get(&(name.clone(), p.partition_index)).copied().unwrap_or(outcome);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// v1 names the partitions; v2+ may ask for all of the group's (null).
/// A partition without a commit answers offset -1.
pub fn fetch(broker: &Broker, req: OffsetFetchRequest, version: i16, principal: &str) -> OffsetFetchResponse {
    let wanted: Vec<(String, u32)> = req
        .topics
        .iter()
        .flatten()
        .flat_map(|t| t.partition_indexes.iter().map(move |&p| (t.name.0.as_str().to_string(), p.max(0) as u32)))
        .collect();
    let all = req.topics.is_none();
    if !all && wanted.is_empty() {
        return OffsetFetchResponse::default();
    }
    let group = req.group_id.0.as_str();
    let fetched = broker
        .authorizer
        .authorize(principal, AclOperation::Describe, &Resource::group(group))
        .and_then(|()| broker.groups.fetch_offsets(group, &wanted));
    match fetched {
        Ok(found) => {
            let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
            for (topic, partition, value) in found {
                let answer = OffsetFetchResponsePartition::default()
                    .with_partition_index(partition as i32)
                    .with_committed_offset(value.as_ref().map_or(-1, |v| v.offset))
                    .with_committed_leader_epoch(-1)
                    .with_metadata(Some(value.map_or_else(StrBytes::default, |v| text(v.metadata))));
                match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                    Some(t) => t.partitions.push(answer),
                    None => topics.push(
                        OffsetFetchResponseTopic::default().with_name(topic_name(topic)).with_partitions(vec![answer]),
                    ),
                }
            }
            OffsetFetchResponse::default().with_topics(topics)
        }
        Err(err) => {
            let code = error_code(&err);
            // v1 has no top-level error: each partition carries it.
            let topics = if version < 2 {
                req.topics
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        let partitions = t
                            .partition_indexes
                            .iter()
                            .map(|&p| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(-1)
                                    .with_error_code(code)
                            })
                            .collect();
                        OffsetFetchResponseTopic::default().with_name(t.name).with_partitions(partitions)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            OffsetFetchResponse::default().with_error_code(code).with_topics(topics)
        }
    }
}
