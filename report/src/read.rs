//! Reading the history window from the cluster: every partition of
//! [`TOPIC`] from the first offset whose record timestamp is at or after
//! the window's start (ListOffsets by timestamp) up to the end offset
//! taken when reading starts. The broker stamps a record when it stores
//! it, which is never before the agent took the sample, so no sample of
//! the window is skipped; samples taken before the window (shipped late,
//! after an outage) are filtered out by their own timestamp.

use std::time::{Duration, Instant};

use kmon_client::{ClientError, Consumer, ConsumerConfig, OffsetSpec};

use crate::error::ReportError;
use crate::history::{self, Sample, TOPIC};

/// Bound on reading the whole window.
const READ_DEADLINE: Duration = Duration::from_secs(60);

/// What was read: the decoded samples of the window, and how many records
/// were not samples (skipped).
#[derive(Debug)]
pub struct History {
    pub samples: Vec<Sample>,
    pub undecodable: usize,
}

/// Reads the samples taken in `[now_ms - since, now_ms]`, deduplicated.
pub async fn read(bootstrap: &str, since: Duration, now_ms: i64) -> Result<History, ReportError> {
    let from_ms = now_ms - since.as_millis() as i64;
    let read_err = |context: &str| {
        let context = context.to_owned();
        move |source: ClientError| ReportError::Read { topic: TOPIC, context, source: Box::new(source) }
    };
    let mut config = ConsumerConfig::new(bootstrap);
    config.max_wait = Duration::from_millis(200);
    let mut consumer = Consumer::connect(config).await.map_err(read_err(&format!("connecting to {bootstrap}")))?;
    let metadata = consumer.admin().metadata(&[]).await.map_err(read_err("Metadata"))?;
    let Some(topic) = metadata.topics.iter().find(|t| t.name == TOPIC) else {
        return Err(ReportError::NoHistory {
            since,
            detail: format!("the cluster has no topic {TOPIC}: no node agent (`kmon agent`) has shipped to it"),
        });
    };

    let mut ends = Vec::new();
    for partition in topic.partitions.iter().map(|p| p.partition) {
        let end = consumer
            .admin()
            .list_offset(TOPIC, partition, OffsetSpec::Latest)
            .await
            .map_err(read_err("ListOffsets"))?
            .offset
            .unwrap_or(0);
        let start = consumer
            .assign_at(TOPIC, partition, OffsetSpec::Timestamp(from_ms))
            .await
            .map_err(read_err("ListOffsets"))?;
        if start >= end {
            consumer.unassign(TOPIC, partition);
        } else {
            ends.push((partition, end));
        }
    }

    let mut samples = Vec::new();
    let mut undecodable = 0;
    let deadline = Instant::now() + READ_DEADLINE;
    while !ends.is_empty() {
        if Instant::now() > deadline {
            return Err(ReportError::ReadTimeout(format!("not read to its end within {READ_DEADLINE:?}")));
        }
        for record in consumer.poll().await.map_err(read_err("Fetch"))? {
            match history::decode(&record.value) {
                Some(sample) if sample.timestamp_ms >= from_ms && sample.timestamp_ms <= now_ms => samples.push(sample),
                Some(_) => {}
                None => undecodable += 1,
            }
        }
        ends.retain(|(partition, end)| {
            let done = consumer.position(TOPIC, *partition).is_some_and(|p| p >= *end);
            if done {
                consumer.unassign(TOPIC, *partition);
            }
            !done
        });
    }
    Ok(History { samples: history::dedupe(samples), undecodable })
}
