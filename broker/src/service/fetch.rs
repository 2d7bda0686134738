//! Fetch: a long poll. Reads every requested partition; if fewer than
//! `min_bytes` are available, waits until any of them grows or `max_wait`
//! passes, whichever comes first, then reads again.

use std::time::Duration;

use kmon_proto::v1::*;
use tokio::time::Instant;

/// Adds the time spent waiting for data to the request's remote time.
struct RemoteTimer<'a> {
    started: Instant,
    remote: &'a mut Duration,
}

impl Drop for RemoteTimer<'_> {
    fn drop(&mut self) {
        *self.remote += self.started.elapsed();
    }
}
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::log::partition::ReadBound;

/// Kafka's `max.partition.fetch.bytes` and `fetch.max.bytes` defaults.
const DEFAULT_PARTITION_MAX_BYTES: usize = 1 << 20;
const DEFAULT_MAX_BYTES: usize = 50 << 20;

#[tracing::instrument(name = "fetch", level = "debug", skip_all, fields(
    topic = req.partitions.first().map_or("", |p| p.topic.as_str()),
    partitions = req.partitions.len(),
))]
pub(super) async fn handle(
    broker: &Broker,
    req: FetchRequest,
    shutdown: &CancellationToken,
    remote: &mut Duration,
) -> Result<FetchResponse, Status> {
    for p in &req.partitions {
        broker.metrics.total_fetch.inc_by(&p.topic, 1);
    }
    let logs = req
        .partitions
        .iter()
        .map(|p| {
            broker
                .replicas
                .leader_log(&p.topic, p.partition)
                .inspect_err(|_| broker.metrics.failed_fetch.inc_by(&p.topic, 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let wait = Duration::from_millis(u64::from(req.max_wait_ms.min(broker.config.fetch_max_wait_ms)));
    let deadline = Instant::now() + wait;
    let min_bytes = req.min_bytes.max(1) as usize;
    let max_bytes = if req.max_bytes == 0 { DEFAULT_MAX_BYTES } else { req.max_bytes as usize };
    // Subscribe before the first read so no append slips between them.
    let mut watchers: Vec<_> = logs.iter().map(|l| l.subscribe()).collect();
    loop {
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let mut total = 0usize;
        let mut results = Vec::with_capacity(logs.len());
        for (log, p) in logs.iter().zip(&req.partitions) {
            let part_max = if p.max_bytes == 0 { DEFAULT_PARTITION_MAX_BYTES } else { p.max_bytes as usize };
            let budget = part_max.min(max_bytes.saturating_sub(total)).max(1);
            let read = log
                .read_async(p.offset, budget, ReadBound::HighWatermark)
                .await
                .inspect_err(|_| broker.metrics.failed_fetch.inc_by(&p.topic, 1))?;
            total += read.records.len();
            results.push(PartitionFetchResult {
                topic: p.topic.clone(),
                partition: p.partition,
                high_watermark: read.high_watermark,
                log_start_offset: read.log_start_offset,
                records: read.records,
            });
        }
        if total >= min_bytes || Instant::now() >= deadline || logs.is_empty() {
            for r in &results {
                if !r.records.is_empty() {
                    broker.metrics.bytes_out.inc_by(&r.topic, r.records.len() as u64);
                }
            }
            return Ok(FetchResponse { partitions: results });
        }
        let any_changed = futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        let waiting = Instant::now();
        let _remote_guard = RemoteTimer { started: waiting, remote: &mut *remote };
        tokio::select! {
            _ = any_changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.cancelled() => return Err(BrokerError::Unavailable("the broker is shutting down".into()).into()),
        }
    }
}
