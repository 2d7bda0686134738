//! Fetch: a long poll over every asked partition this broker leads. Reads
//! each from its offset within its and the request's byte budgets; if fewer
//! than `min_bytes` came back and no partition has an error, waits until one
//! of them grows or `max_wait` passes, then reads again. Errors are per
//! partition. No fetch sessions (KIP-227): every answer is a full one with
//! session id 0, which clients take as "fetch in full each time".
//! read_committed reads up to the high watermark: kmon has no transactions,
//! so the last stable offset is the high watermark.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kmon_broker::controller::state::ClusterState;
use kmon_broker::controller::state::acls::{AclOperation, Resource};
use kmon_broker::log::PartitionLog;
use kmon_broker::log::partition::ReadBound;
use kmon_broker::{Broker, BrokerError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{checked_leader_epoch, topic_name};
use crate::error::error_code;

/// Kafka's `fetch.max.bytes` default when the request says 0.
const DEFAULT_MAX_BYTES: usize = 50 << 20;

struct Wanted {
    topic: String,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    /// The leader's log, or the error code that partition gets.
    log: Result<Arc<PartitionLog>, (i16, i64)>,
}

pub async fn handle(
    broker: &Broker,
    req: FetchRequest,
    principal: &str,
    shutdown: &CancellationToken,
    remote: &mut Duration,
) -> FetchResponse {
    let state = broker.metadata();
    let mut wanted = Vec::new();
    for topic in &req.topics {
        let name = topic.topic.0.as_str();
        for p in &topic.partitions {
            broker.metrics.total_fetch.inc_by(name, 1);
            let log = resolve(broker, principal, &state, name, p.partition, p.current_leader_epoch);
            if log.is_err() {
                broker.metrics.failed_fetch.inc_by(name, 1);
            }
            wanted.push(Wanted {
                topic: name.to_string(),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(1) as usize,
                log,
            });
        }
    }
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64)
        .min(Duration::from_millis(u64::from(broker.config.fetch_max_wait_ms)));
    let deadline = Instant::now() + wait;
    let min_bytes = req.min_bytes.max(1) as usize;
    let max_bytes = if req.max_bytes <= 0 { DEFAULT_MAX_BYTES } else { req.max_bytes as usize };
    let read_committed = req.isolation_level == 1;
    // Subscribe before the first read so no append slips between them.
    let mut watchers: Vec<_> = wanted.iter().filter_map(|w| w.log.as_ref().ok()).map(|l| l.subscribe()).collect();
    loop {
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let mut total = 0usize;
        let mut any_error = false;
        let mut answers = Vec::with_capacity(wanted.len());
        for w in &wanted {
            let answer = match &w.log {
                Err((code, hw)) => partition_error(w.partition, *code, *hw),
                Ok(log) => {
                    let budget = w.max_bytes.min(max_bytes.saturating_sub(total)).max(1);
                    match log.read_async(w.offset, budget, ReadBound::HighWatermark).await {
                        Ok(read) => {
                            total += read.records.len();
                            PartitionData::default()
                                .with_partition_index(w.partition)
                                .with_high_watermark(read.high_watermark)
                                .with_last_stable_offset(read.high_watermark)
                                .with_log_start_offset(read.log_start_offset)
                                .with_aborted_transactions(read_committed.then(Vec::new))
                                .with_preferred_read_replica(BrokerId(-1))
                                .with_records(Some(read.records))
                        }
                        Err(err) => {
                            broker.metrics.failed_fetch.inc_by(&w.topic, 1);
                            partition_error(w.partition, error_code(&err), log.high_watermark())
                        }
                    }
                }
            };
            any_error |= answer.error_code != 0;
            answers.push((w.topic.as_str(), answer));
        }
        if total >= min_bytes || any_error || Instant::now() >= deadline || watchers.is_empty() {
            for (topic, answer) in &answers {
                if let Some(records) = answer.records.as_ref().filter(|r| !r.is_empty()) {
                    broker.metrics.bytes_out.inc_by(topic, records.len() as u64);
                }
            }
            return FetchResponse::default().with_responses(group(answers));
        }
        let any_changed = futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        let waiting = std::time::Instant::now();
        tokio::select! {
            _ = any_changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.cancelled() => {}
        }
        *remote += waiting.elapsed();
        if shutdown.is_cancelled() {
            return FetchResponse::default().with_responses(group(answers));
        }
    }
}

/// The leader log of a partition, or the error code (and high watermark
/// when known) that partition is answered with.
fn resolve(
    broker: &Broker,
    principal: &str,
    state: &ClusterState,
    topic: &str,
    partition: i32,
    leader_epoch: i32,
) -> Result<Arc<PartitionLog>, (i16, i64)> {
    let unknown = || (ResponseError::UnknownTopicOrPartition.code(), -1);
    broker
        .authorizer
        .authorize(principal, AclOperation::Read, &Resource::topic(topic))
        .map_err(|err| (error_code(&err), -1))?;
    let partition = u32::try_from(partition).map_err(|_| unknown())?;
    if state.topics.get(topic).is_none_or(|t| (partition as usize) >= t.partitions.len()) {
        return Err(unknown());
    }
    let log = broker.replicas.leader_log(topic, partition).map_err(|err: BrokerError| (error_code(&err), -1))?;
    checked_leader_epoch(broker, topic, partition, leader_epoch).map_err(|code| (code, -1))?;
    Ok(log)
}

fn partition_error(partition: i32, code: i16, high_watermark: i64) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(code)
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark)
        .with_log_start_offset(-1)
        .with_preferred_read_replica(BrokerId(-1))
        .with_records(Some(Bytes::new()))
}

fn group(answers: Vec<(&str, PartitionData)>) -> Vec<FetchableTopicResponse> {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for (topic, answer) in answers {
        match topics.last_mut().filter(|t| t.topic.0.as_str() == topic) {
            Some(t) => t.partitions.push(answer),
            None => topics
                .push(FetchableTopicResponse::default().with_topic(topic_name(topic)).with_partitions(vec![answer])),
        }
    }
    topics
}
