//! Produce: each partition on its own (Kafka reports errors per partition):
//! check that this broker leads it and the batch is sound, append, then
//! wait as `acks` asks. The same checks, log append and replication wait as
//! gRPC produce (`ReplicaManager::check_produce` / `append`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::messages::ProduceResponse;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kmon_broker::config::FlushPolicy;
use kmon_broker::controller::state::acls::{AclOperation, Resource};
use kmon_broker::log::PartitionLog;
use kmon_broker::log::batch;
use kmon_broker::replication::RequiredAcks;
use kmon_broker::{Broker, BrokerError};

use super::{text, topic_name};
use crate::error::error_code;

/// Kafka's `request.timeout.ms` default, for a request that names none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

struct Outcome {
    response: PartitionProduceResponse,
    remote: Duration,
    to_sync: Option<Arc<PartitionLog>>,
}

/// None when `acks` is 0: Kafka never answers those.
pub async fn handle(
    broker: &Broker,
    req: ProduceRequest,
    principal: &str,
    remote: &mut Duration,
) -> Option<ProduceResponse> {
    // The acks every partition is written with, or what they are all refused with.
    let acks = match req.acks {
        0 => Ok(RequiredAcks::None),
        1 => Ok(RequiredAcks::Leader),
        -1 => Ok(RequiredAcks::All),
        other => Err((ResponseError::InvalidRequiredAcks, format!("acks must be -1, 0 or 1, not {other}"))),
    }
    .and_then(|acks| match &req.transactional_id {
        None => Ok(acks),
        Some(id) => Err((
            ResponseError::TransactionalIdAuthorizationFailed,
            format!("transactional id '{}': kmon has no transactions yet", id.0.as_str()),
        )),
    });
    let timeout = if req.timeout_ms <= 0 { DEFAULT_TIMEOUT } else { Duration::from_millis(req.timeout_ms as u64) };
    let acks_value = req.acks;
    let mut work = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.0.as_str().to_string();
        for part in topic.partition_data {
            work.push((name.clone(), part.index, part.records));
        }
    }
    let outcomes = futures::future::join_all(work.into_iter().map(|(topic, index, records)| {
        let acks = acks.clone();
        async move {
            let outcome = match acks {
                Ok(acks) => produce_partition(broker, principal, &topic, index, records, acks, timeout).await,
                Err((code, why)) => refused(broker, &topic, index, code.code(), why),
            };
            (topic, outcome)
        }
    }))
    .await;
    let to_sync: Vec<_> = outcomes.iter().filter_map(|(_, o)| o.to_sync.clone()).collect();
    if !to_sync.is_empty() {
        // log_flush_policy = always: answer only once the appends are on disk.
        let synced = tokio::task::spawn_blocking(move || to_sync.iter().try_for_each(|log| log.flush())).await;
        let failure = match synced {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some((error_code(&err), err.to_string())),
            Err(err) => Some((ResponseError::KafkaStorageError.code(), format!("flush task failed: {err}"))),
        };
        if let Some((code, message)) = failure {
            tracing::error!(%message, "flush after produce failed");
            return (acks_value != 0).then(|| all_failed(outcomes, code, message));
        }
    }
    *remote = outcomes.iter().map(|(_, o)| o.remote).max().unwrap_or_default();
    if acks_value == 0 {
        return None;
    }
    Some(group(outcomes.into_iter().map(|(t, o)| (t, o.response))))
}

async fn produce_partition(
    broker: &Broker,
    principal: &str,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: RequiredAcks,
    timeout: Duration,
) -> Outcome {
    broker.metrics.total_produce.inc_by(topic, 1);
    if let Err(err) = broker.authorizer.authorize(principal, AclOperation::Write, &Resource::topic(topic)) {
        return failed(broker, topic, index, &err);
    }
    let Ok(partition) = u32::try_from(index) else {
        return refused(
            broker,
            topic,
            index,
            ResponseError::UnknownTopicOrPartition.code(),
            "negative partition".into(),
        );
    };
    let records = records.unwrap_or_default();
    let checked = broker.replicas.check_produce(topic, partition, acks).and_then(|hosted| {
        let max = hosted.log.config().max_message_bytes as usize;
        let header = batch::validate_produced(&records, max).map_err(|err| match err {
            BrokerError::CorruptMessage(why) => BrokerError::CorruptMessage(format!("{topic}-{partition}: {why}")),
            other => other,
        })?;
        Ok((hosted, header))
    });
    let (hosted, header) = match checked {
        Ok(checked) => checked,
        Err(err) => return failed(broker, topic, index, &err),
    };
    let len = records.len() as u64;
    // The request owns the only reference to its bytes, so this is
    // normally free; otherwise one copy.
    let bytes = records.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]));
    match broker.replicas.append(&hosted, bytes, header, acks, timeout).await {
        Ok(outcome) => {
            let info = outcome.info;
            // A retry of a batch already written is no new traffic.
            if !info.duplicate {
                broker.metrics.messages_in.inc_by(topic, (info.last_offset - info.base_offset + 1) as u64);
                broker.metrics.bytes_in.inc_by(topic, len);
            }
            let to_sync = (broker.config.log_flush_policy == FlushPolicy::Always).then(|| hosted.log.clone());
            Outcome {
                response: PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(info.base_offset)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(info.log_start_offset),
                remote: outcome.replication_wait,
                to_sync,
            }
        }
        Err(err) => failed(broker, topic, index, &err),
    }
}

fn failed(broker: &Broker, topic: &str, index: i32, err: &BrokerError) -> Outcome {
    refused(broker, topic, index, error_code(err), err.to_string())
}

fn refused(broker: &Broker, topic: &str, index: i32, code: i16, message: String) -> Outcome {
    broker.metrics.failed_produce.inc_by(topic, 1);
    Outcome {
        response: PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(code)
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
            .with_error_message(Some(text(message))),
        remote: Duration::ZERO,
        to_sync: None,
    }
}

fn all_failed(outcomes: Vec<(String, Outcome)>, code: i16, message: String) -> ProduceResponse {
    group(outcomes.into_iter().map(|(t, o)| {
        let response = o.response.with_error_code(code).with_base_offset(-1).with_error_message(Some(text(&message)));
        (t, response)
    }))
}

/// Partition answers grouped by topic, in request order.
fn group(answers: impl Iterator<Item = (String, PartitionProduceResponse)>) -> ProduceResponse {
    let mut topics: Vec<TopicProduceResponse> = Vec::new();
    for (topic, answer) in answers {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partition_responses.push(answer),
            None => topics.push(
                TopicProduceResponse::default().with_name(topic_name(topic)).with_partition_responses(vec![answer]),
            ),
        }
    }
    ProduceResponse::default().with_responses(topics)
}
