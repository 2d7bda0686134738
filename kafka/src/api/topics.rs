//! CreateTopics and DeleteTopics, through the metadata quorum as `kmon
//! topic create/delete`. Replicas are placed by kmon over fault × update
//! domains, so explicit replica assignments are refused with a message.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse};
use kmon_broker::controller::state::acls::{AclOperation, Resource};
use kmon_broker::{Broker, BrokerError};

use super::metadata::topic_uuid;
use super::text;
use crate::error::error_code;

pub async fn create(broker: &Broker, req: CreateTopicsRequest, principal: &str) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.as_str().to_string();
        let answer = CreatableTopicResult::default().with_name(topic.name.clone());
        let refused = |code: i16, message: String| {
            answer
                .clone()
                .with_error_code(code)
                .with_error_message(Some(text(message)))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
        };
        if let Err(err) = broker.authorizer.authorize_create_topic(principal, &name) {
            results.push(refused(error_code(&err), err.to_string()));
            continue;
        }
        if !topic.assignments.is_empty() {
            results.push(refused(
                ResponseError::InvalidReplicaAssignment.code(),
                format!("topic '{name}': kmon places replicas over fault and update domains itself; give a partition count and replication factor instead of an assignment"),
            ));
            continue;
        }
        let counts = count(topic.num_partitions, "partitions")
            .map_err(|why| (ResponseError::InvalidPartitions, why))
            .and_then(|partitions| {
                count(i32::from(topic.replication_factor), "replication factor")
                    .map(|rf| (partitions, rf))
                    .map_err(|why| (ResponseError::InvalidReplicationFactor, why))
            });
        let (partitions, replication_factor) = match counts {
            Ok(counts) => counts,
            Err((code, why)) => {
                results.push(refused(code.code(), format!("topic '{name}': {why}")));
                continue;
            }
        };
        let configs: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| c.value.as_ref().map(|v| (c.name.as_str().to_string(), v.as_str().to_string())))
            .collect();
        let outcome = if req.validate_only {
            broker.check_create_topic(&name, partitions, replication_factor, &configs).map(|(p, rf)| (p, rf, 0))
        } else {
            broker
                .create_topic(&name, partitions, replication_factor, configs)
                .await
                .map(|view| (view.record.partitions.len() as u32, view.record.replication_factor, view.record.topic_id))
        };
        results.push(match outcome {
            Ok((partitions, rf, topic_id)) => answer
                .with_topic_id(topic_uuid(topic_id))
                .with_num_partitions(partitions as i32)
                .with_replication_factor(rf as i16),
            Err(err) => refused(error_code(&err), err.to_string()),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// -1 asks for the broker's default (0 in kmon's calls).
fn count(value: i32, what: &str) -> Result<u32, String> {
    match value {
        -1 => Ok(0),
        v if v > 0 => Ok(v as u32),
        v => Err(format!("{what} must be positive or -1 for the broker default, not {v}")),
    }
}

pub async fn delete(broker: &Broker, req: DeleteTopicsRequest, principal: &str) -> DeleteTopicsResponse {
    // v0–v5 name topics; v6 names them or gives their ids.
    let mut wanted: Vec<(Option<String>, uuid::Uuid)> =
        req.topic_names.iter().map(|n| (Some(n.0.as_str().to_string()), uuid::Uuid::nil())).collect();
    wanted.extend(req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.as_str().to_string()), t.topic_id)));
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let name = name.or_else(|| {
            broker.metadata().topics.iter().find(|(_, r)| topic_uuid(r.topic_id) == id).map(|(n, _)| n.clone())
        });
        let answer = DeletableTopicResult::default().with_topic_id(id);
        let Some(name) = name else {
            responses.push(
                answer
                    .with_error_code(ResponseError::UnknownTopicId.code())
                    .with_error_message(Some(text(format!("no topic has id {id}")))),
            );
            continue;
        };
        let answer = answer.with_name(Some(super::topic_name(name.as_str())));
        let result =
            if let Err(err) = broker.authorizer.authorize(principal, AclOperation::Delete, &Resource::topic(&name)) {
                Err(err)
            } else if broker.metadata().topics.contains_key(&name) {
                broker.delete_topic(&name).await
            } else {
                Err(BrokerError::UnknownTopic(name.clone()))
            };
        responses.push(match result {
            Ok(()) => answer,
            Err(err) => answer.with_error_code(error_code(&err)).with_error_message(Some(text(err.to_string()))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
