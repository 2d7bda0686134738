//! Produce: check every batch first (nothing is written if any is bad),
//! then append each to its partition's log; with `log_flush_policy =
//! always` the answer waits for fdatasync.

use bytes::BytesMut;
use kmon_proto::v1::*;
use tonic::Status;

use crate::broker::Broker;
use crate::config::FlushPolicy;
use crate::error::BrokerError;
use crate::log::batch;

pub(super) async fn handle(
    broker: &Broker,
    req: ProduceRequest,
) -> Result<ProduceResponse, Status> {
    let mut targets = Vec::with_capacity(req.partitions.len());
    for part in req.partitions {
        let log = broker
            .partition(&part.topic, part.partition)
            .inspect_err(|_| {
                broker.metrics.failed_produce.inc_by(&part.topic, 1);
            })?;
        let max = log.config().max_message_bytes as usize;
        if let Err(err) = batch::validate_produced(&part.records, max) {
            broker.metrics.failed_produce.inc_by(&part.topic, 1);
            return Err(annotate(err, &part.topic, part.partition).into());
        }
        targets.push((log, part));
    }
    let mut results = Vec::with_capacity(targets.len());
    let mut to_sync = Vec::new();
    for (log, part) in targets {
        let len = part.records.len() as u64;
        // The request owns the only reference to its bytes, so this is
        // normally free; otherwise one copy.
        let bytes = part
            .records
            .try_into_mut()
            .unwrap_or_else(|b| BytesMut::from(&b[..]));
        let info = log
            .append(bytes, 0)
            .inspect_err(|_| broker.metrics.failed_produce.inc_by(&part.topic, 1))?;
        broker.metrics.messages_in.inc_by(
            &part.topic,
            (info.last_offset - info.base_offset + 1) as u64,
        );
        broker.metrics.bytes_in.inc_by(&part.topic, len);
        results.push(PartitionProduceResult {
            topic: part.topic,
            partition: part.partition,
            base_offset: info.base_offset,
            log_append_time_ms: info.append_time_ms,
            log_start_offset: info.log_start_offset,
        });
        if broker.config.log_flush_policy == FlushPolicy::Always {
            to_sync.push(log);
        }
    }
    if !to_sync.is_empty() {
        tokio::task::spawn_blocking(move || to_sync.iter().try_for_each(|log| log.flush()))
            .await
            .map_err(|e| Status::internal(format!("flush task failed: {e}")))??;
    }
    Ok(ProduceResponse {
        partitions: results,
    })
}

fn annotate(err: BrokerError, topic: &str, partition: u32) -> BrokerError {
    match err {
        BrokerError::CorruptMessage(why) => {
            BrokerError::CorruptMessage(format!("{topic}-{partition}: {why}"))
        }
        other => other,
    }
}
