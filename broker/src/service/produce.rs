//! Produce: check every batch and that this broker leads its partition
//! (nothing is written if any check fails), append each to its leader log,
//! then wait as `acks` asks: 0 and 1 answer after the leader's write,
//! `all` once every in-sync replica has the batch. With
//! `log_flush_policy = always` the answer also waits for fdatasync.

use std::time::Duration;

use bytes::BytesMut;
use kmon_proto::v1::*;
use tonic::Status;

use crate::broker::Broker;
use crate::config::FlushPolicy;
use crate::error::BrokerError;
use crate::log::batch;
use crate::replication::RequiredAcks;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[tracing::instrument(name = "produce", level = "debug", skip_all, fields(
    topic = req.partitions.first().map_or("", |p| p.topic.as_str()),
    partitions = req.partitions.len(),
    acks = req.acks,
))]
pub(super) async fn handle(
    broker: &Broker,
    req: ProduceRequest,
    remote: &mut std::time::Duration,
) -> Result<ProduceResponse, Status> {
    let acks = match req.acks() {
        Acks::None => RequiredAcks::None,
        Acks::Leader => RequiredAcks::Leader,
        Acks::All => RequiredAcks::All,
    };
    let timeout = if req.timeout_ms == 0 { DEFAULT_TIMEOUT } else { Duration::from_millis(u64::from(req.timeout_ms)) };
    let mut targets = Vec::with_capacity(req.partitions.len());
    for part in req.partitions {
        broker.metrics.total_produce.inc_by(&part.topic, 1);
        let checked = broker.replicas.check_produce(&part.topic, part.partition, acks).and_then(|hosted| {
            let max = hosted.log.config().max_message_bytes as usize;
            let header = batch::validate_produced(&part.records, max)
                .map_err(|err| annotate(err, &part.topic, part.partition))?;
            Ok((hosted, header))
        });
        match checked {
            Ok((hosted, header)) => targets.push((hosted, header, part)),
            Err(err) => {
                broker.metrics.failed_produce.inc_by(&part.topic, 1);
                return Err(err.into());
            }
        }
    }
    let appends = targets.into_iter().map(|(hosted, header, part)| async move {
        let len = part.records.len() as u64;
        // The request owns the only reference to its bytes, so this is
        // normally free; otherwise one copy.
        let bytes = part.records.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]));
        let result = broker.replicas.append(&hosted, bytes, header, acks, timeout).await;
        (hosted, part.topic, part.partition, len, result)
    });
    let mut results = Vec::new();
    let mut to_sync = Vec::new();
    let mut first_error = None;
    for (hosted, topic, partition, len, result) in futures::future::join_all(appends).await {
        match result {
            Ok(outcome) => {
                let info = outcome.info;
                *remote = (*remote).max(outcome.replication_wait);
                // A retry of a batch already written is no new traffic.
                if !info.duplicate {
                    broker.metrics.messages_in.inc_by(&topic, (info.last_offset - info.base_offset + 1) as u64);
                    broker.metrics.bytes_in.inc_by(&topic, len);
                }
                results.push(PartitionProduceResult {
                    topic,
                    partition,
                    base_offset: info.base_offset,
                    log_append_time_ms: info.append_time_ms,
                    log_start_offset: info.log_start_offset,
                });
                if broker.config.log_flush_policy == FlushPolicy::Always {
                    to_sync.push(hosted.log.clone());
                }
            }
            Err(err) => {
                broker.metrics.failed_produce.inc_by(&topic, 1);
                first_error.get_or_insert(err);
            }
        }
    }
    if !to_sync.is_empty() {
        tokio::task::spawn_blocking(move || to_sync.iter().try_for_each(|log| log.flush()))
            .await
            .map_err(|e| BrokerError::Internal(format!("flush task failed: {e}")))??;
    }
    if let Some(err) = first_error {
        return Err(err.into());
    }
    Ok(ProduceResponse { partitions: results })
}

fn annotate(err: BrokerError, topic: &str, partition: u32) -> BrokerError {
    match err {
        BrokerError::CorruptMessage(why) => BrokerError::CorruptMessage(format!("{topic}-{partition}: {why}")),
        other => other,
    }
}
