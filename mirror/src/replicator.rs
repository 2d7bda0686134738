//! The copy loop: reads every mirrored partition of the source with a
//! plain consumer, sends each record to the same partition of its renamed
//! topic on the target (key, value, headers and timestamp kept), and every
//! commit interval waits for the target's acknowledgements, writes the
//! offset syncs, then commits its position on the source.
//!
//! Its position is the committed offsets of its own group on the source
//! (an admin commit: the group has no members), committed only after the
//! copies up to it are acknowledged (acks=all) and their offset syncs are
//! written. A mirror killed between two commits copies the records since
//! the last commit again on restart: nothing is skipped, and the target
//! holds at most one commit interval of records twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kmon_client::{
    Consumer, ConsumerRecord, ErrorCode, OffsetSpec, OutgoingRecord, RecordHandle, TopicDescription, TopicPartition,
};
use tokio::sync::watch;

use crate::error::{Context, MirrorError};
use crate::metrics::PartitionLabels;
use crate::run::Mirror;
use crate::sync::OffsetSync;

/// A record sent to the target, not yet known acknowledged.
struct Pending {
    /// Index into `Replicator::partitions`.
    partition: usize,
    upstream: i64,
    timestamp_ms: i64,
    bytes: u64,
    handle: RecordHandle,
}

/// One mirrored partition.
struct MirroredPartition {
    source: TopicPartition,
    remote_topic: String,
    labels: PartitionLabels,
    /// Next source offset to commit: every record before it is copied.
    copied_upto: i64,
    /// The last committed `copied_upto`.
    committed: i64,
    /// `downstream - upstream` of the last offset sync written.
    delta: Option<i64>,
    records: i64,
    bytes: i64,
    /// (when, records, bytes) at the start of the current rate window.
    rate_window: (Instant, i64, i64),
}

pub(crate) struct Replicator {
    mirror: Arc<Mirror>,
    consumer: Consumer,
    partitions: Vec<MirroredPartition>,
    index: HashMap<TopicPartition, usize>,
    /// Source topic → its partition count when last seen.
    topics: BTreeMap<String, u32>,
    pending: Vec<Pending>,
}

/// Pending records after which a commit round starts before its interval.
const MAX_PENDING: usize = 200_000;
/// Window of the record and byte rates.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Wait after a failed round before copying again.
const FAILURE_BACKOFF: Duration = Duration::from_secs(1);

impl Replicator {
    pub(crate) fn new(mirror: Arc<Mirror>, consumer: Consumer) -> Self {
        Replicator {
            mirror,
            consumer,
            partitions: Vec::new(),
            index: HashMap::new(),
            topics: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    /// Copies until `stop` turns true, then commits what is acknowledged.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), MirrorError> {
        let args = self.mirror.args.clone();
        self.discover().await?;
        let mut next_refresh = Instant::now() + args.refresh_interval;
        let mut next_commit = Instant::now() + args.commit_interval;
        while !*stop.borrow() {
            if Instant::now() >= next_refresh {
                if let Err(err) = self.discover().await {
                    tracing::warn!(error = %err, "topic refresh failed; trying again next interval");
                }
                next_refresh = Instant::now() + args.refresh_interval;
            }
            if self.partitions.is_empty() {
                // Nothing to read yet: wait for the next refresh.
                tokio::select! {
                    _ = tokio::time::sleep_until(next_refresh.into()) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            match self.consumer.poll().await {
                Ok(records) => self.send(records).await,
                Err(err) => {
                    tracing::warn!(error = %err, "fetching from the source failed; retrying");
                    tokio::time::sleep(FAILURE_BACKOFF).await;
                }
            }
            if Instant::now() >= next_commit || self.pending.len() >= MAX_PENDING {
                self.commit_round().await;
                next_commit = Instant::now() + args.commit_interval;
            }
        }
        self.commit_round().await;
        Ok(())
    }

    async fn send(&mut self, records: Vec<ConsumerRecord>) {
        for record in records {
            let tp = TopicPartition::new(&*record.topic, record.partition);
            let Some(&partition) = self.index.get(&tp) else { continue };
            let outgoing = OutgoingRecord {
                partition: Some(record.partition),
                timestamp_ms: Some(record.timestamp_ms),
                key: record.key.as_deref(),
                value: &record.value,
                headers: &record.headers,
            };
            let remote = &self.partitions[partition].remote_topic;
            match self.mirror.producer.send_record(remote, &outgoing).await {
                Ok(handle) => self.pending.push(Pending {
                    partition,
                    upstream: record.offset,
                    timestamp_ms: record.timestamp_ms,
                    bytes: (record.key.as_ref().map_or(0, |k| k.len()) + record.value.len()) as u64,
                    handle,
                }),
                Err(err) => {
                    // Not buffered: the round fails and copies again from
                    // the committed position.
                    tracing::warn!(topic = %remote, error = %err, "could not send a copy");
                    self.mirror.metrics.produce_failures.inc();
                    self.rewind().await;
                    return;
                }
            }
        }
    }

    /// Waits for the copies, writes offset syncs, commits the position.
    async fn commit_round(&mut self) {
        if let Err(err) = self.mirror.producer.flush().await {
            tracing::warn!(error = %err, "copies to the target failed; copying again from the committed position");
            self.mirror.metrics.produce_failures.inc();
            self.rewind().await;
            return;
        }
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut syncs = Vec::new();
        // Per partition: (records, bytes, latency sum, latency max, copied upto).
        let mut round: BTreeMap<usize, (i64, i64, i64, i64, i64)> = BTreeMap::new();
        // A flush without error should leave every handle answered; if one
        // is not, the position must not move past it, so copy the round again.
        let answered: Option<Vec<i64>> = self
            .pending
            .iter()
            .map(|pending| match pending.handle.try_result() {
                Some(Ok(metadata)) => Some(metadata.offset),
                _ => None,
            })
            .collect();
        let Some(answered) = answered else {
            tracing::warn!("a copy has no acknowledgement after the flush; copying again from the committed position");
            self.mirror.metrics.produce_failures.inc();
            self.rewind().await;
            return;
        };
        for (pending, downstream) in self.pending.drain(..).zip(answered) {
            let p = &mut self.partitions[pending.partition];
            let delta = downstream - pending.upstream;
            if p.delta != Some(delta) {
                syncs.push(OffsetSync { partition: p.source.clone(), upstream: pending.upstream, downstream });
                p.delta = Some(delta);
            }
            let latency = (now_ms - pending.timestamp_ms).max(0);
            let stats = round.entry(pending.partition).or_default();
            stats.0 += 1;
            stats.1 += pending.bytes as i64;
            stats.2 += latency;
            stats.3 = stats.3.max(latency);
            stats.4 = pending.upstream + 1;
        }
        if !syncs.is_empty() && !self.write_syncs(&syncs).await {
            return;
        }
        {
            let mut store = self.mirror.store.lock().expect("offset sync store");
            for sync in &syncs {
                store.apply(sync);
            }
            for (&partition, stats) in &round {
                store.set_copied_upto(&self.partitions[partition].source, stats.4);
            }
        }
        let metrics = &self.mirror.metrics;
        for (&partition, &(records, bytes, latency_sum, latency_max, upto)) in &round {
            let p = &mut self.partitions[partition];
            p.copied_upto = upto;
            p.records += records;
            p.bytes += bytes;
            metrics.record_count.get_or_create(&p.labels).set(p.records);
            metrics.byte_count.get_or_create(&p.labels).set(p.bytes);
            metrics.replication_latency_ms.get_or_create(&p.labels).set(latency_sum as f64 / records as f64);
            metrics.replication_latency_ms_max.get_or_create(&p.labels).set(latency_max as f64);
        }
        self.commit_position().await;
        self.update_gauges();
    }

    async fn write_syncs(&mut self, syncs: &[OffsetSync]) -> bool {
        let topic = self.mirror.policy.offset_syncs_topic();
        let producer = &self.mirror.producer;
        for sync in syncs {
            let (key, value) = (sync.key(), sync.value());
            let record =
                OutgoingRecord { partition: Some(0), timestamp_ms: None, key: Some(&key), value: &value, headers: &[] };
            if let Err(err) = producer.send_record(&topic, &record).await {
                tracing::warn!(error = %err, "could not send an offset sync");
                self.rewind().await;
                return false;
            }
        }
        if let Err(err) = producer.flush().await {
            tracing::warn!(error = %err, "offset syncs were not written; copying again from the committed position");
            self.mirror.metrics.produce_failures.inc();
            self.rewind().await;
            return false;
        }
        true
    }

    async fn commit_position(&mut self) {
        let offsets: BTreeMap<TopicPartition, i64> = self
            .partitions
            .iter()
            .filter(|p| p.copied_upto > p.committed)
            .map(|p| (p.source.clone(), p.copied_upto))
            .collect();
        if offsets.is_empty() {
            return;
        }
        let group = &self.mirror.args.position_group();
        match self.mirror.source.reset_offsets(group, &offsets).await {
            Ok(()) => {
                for p in &mut self.partitions {
                    p.committed = p.copied_upto;
                }
                self.mirror.metrics.commits.inc();
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                self.mirror.metrics.last_commit_seconds.set(now);
            }
            // The copies are on the target: a crash before the next
            // commit copies them again (duplicates, nothing lost).
            Err(err) => {
                tracing::warn!(error = %err, group, "committing the mirror's position failed; next round retries")
            }
        }
    }

    /// Lag and rates of every partition.
    fn update_gauges(&mut self) {
        let metrics = &self.mirror.metrics;
        let now = Instant::now();
        for p in &mut self.partitions {
            if let Some(high_watermark) = self.consumer.high_watermark(&p.source.topic, p.source.partition) {
                metrics.lag.get_or_create(&p.labels).set((high_watermark - p.copied_upto).max(0));
            }
            let (since, records, bytes) = p.rate_window;
            let elapsed = now.duration_since(since);
            if elapsed >= RATE_WINDOW {
                let secs = elapsed.as_secs_f64();
                metrics.record_rate.get_or_create(&p.labels).set((p.records - records) as f64 / secs);
                metrics.byte_rate.get_or_create(&p.labels).set((p.bytes - bytes) as f64 / secs);
                p.rate_window = (now, p.records, p.bytes);
            }
        }
    }

    /// Drops what is in flight and reads again from the committed
    /// position: what was copied since is copied again.
    async fn rewind(&mut self) {
        // Whatever is still buffered fails or lands; either way it is
        // copied again (at least once).
        let _ = self.mirror.producer.flush().await;
        self.pending.clear();
        {
            let store = self.mirror.store.lock().expect("offset sync store");
            for p in &mut self.partitions {
                p.copied_upto = p.committed;
                p.delta = store.last_delta(&p.source);
                self.consumer.assign(&p.source.topic, p.source.partition, p.committed);
            }
        }
        tokio::time::sleep(FAILURE_BACKOFF).await;
    }

    /// Finds the source topics to mirror, makes their target topics, and
    /// starts reading new partitions at the committed position (or the
    /// earliest offset).
    async fn discover(&mut self) -> Result<(), MirrorError> {
        let mirror = self.mirror.clone();
        let topics = mirror.source.list_topics().await.context(|| "listing the source's topics".into())?;
        for topic in topics.into_iter().filter(|t| mirror.policy.mirrors_topic(&t.name)) {
            let count = topic.partitions.len() as u32;
            if self.topics.get(&topic.name).is_some_and(|&known| known >= count) {
                continue;
            }
            match self.ensure_target_topic(&topic).await {
                Ok(()) => self.start_partitions(&topic).await?,
                // One topic that cannot be mirrored does not stop the rest.
                Err(err) => tracing::error!(topic = %topic.name, error = %err, "not mirrored"),
            }
        }
        Ok(())
    }

    async fn ensure_target_topic(&self, topic: &TopicDescription) -> Result<(), MirrorError> {
        let remote = self.mirror.policy.remote_topic(&topic.name);
        let wanted = topic.partitions.len() as u32;
        match self.mirror.target.describe_topic(&remote).await {
            Ok(existing) if (existing.partitions.len() as u32) < wanted => Err(MirrorError::PartitionMismatch {
                source_topic: topic.name.clone(),
                target: remote,
                source_partitions: wanted,
                target_partitions: existing.partitions.len() as u32,
            }),
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some(ErrorCode::UnknownTopicOrPartition) => {
                let created = self
                    .mirror
                    .target
                    .create_topic(&remote, wanted, self.mirror.args.replication_factor, topic.configs.clone())
                    .await;
                match created {
                    Ok(_) => {
                        tracing::info!(topic = %topic.name, remote, partitions = wanted, "created the target topic");
                        Ok(())
                    }
                    Err(err) if err.code() == Some(ErrorCode::TopicAlreadyExists) => Ok(()),
                    Err(err) => Err(err).context(|| format!("creating topic {remote:?} on the target")),
                }
            }
            Err(err) => Err(err).context(|| format!("describing topic {remote:?} on the target")),
        }
    }

    async fn start_partitions(&mut self, topic: &TopicDescription) -> Result<(), MirrorError> {
        let new: Vec<TopicPartition> = topic
            .partitions
            .iter()
            .map(|p| TopicPartition::new(&topic.name, p.partition))
            .filter(|tp| !self.index.contains_key(tp))
            .collect();
        let group = self.mirror.args.position_group();
        let committed = self
            .mirror
            .source
            .fetch_offsets(&group, &new)
            .await
            .context(|| format!("reading the mirror's position (group {group:?}) on the source"))?;
        let remote_topic = self.mirror.policy.remote_topic(&topic.name);
        for tp in new {
            let position = committed.iter().find(|c| c.topic == tp.topic && c.partition == tp.partition);
            let offset = match position.and_then(|c| c.offset) {
                Some(offset) => {
                    self.consumer.assign(&tp.topic, tp.partition, offset);
                    offset
                }
                None => self
                    .consumer
                    .assign_at(&tp.topic, tp.partition, OffsetSpec::Earliest)
                    .await
                    .context(|| format!("finding the earliest offset of {}-{}", tp.topic, tp.partition))?,
            };
            tracing::info!(topic = %tp.topic, partition = tp.partition, offset, "mirroring from");
            let delta = self.mirror.store.lock().expect("offset sync store").last_delta(&tp);
            self.mirror.store.lock().expect("offset sync store").set_copied_upto(&tp, offset);
            let labels = PartitionLabels {
                source: self.mirror.policy.source_alias.clone(),
                target: self.mirror.policy.target_alias.clone(),
                topic: remote_topic.clone(),
                partition: tp.partition.to_string(),
            };
            self.index.insert(tp.clone(), self.partitions.len());
            self.partitions.push(MirroredPartition {
                source: tp,
                remote_topic: remote_topic.clone(),
                labels,
                copied_upto: offset,
                committed: offset,
                delta,
                records: 0,
                bytes: 0,
                rate_window: (Instant::now(), 0, 0),
            });
        }
        self.topics.insert(topic.name.clone(), topic.partitions.len() as u32);
        Ok(())
    }
}
