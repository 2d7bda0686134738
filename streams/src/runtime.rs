//! [`KafkaStreams`]: runs a topology as one member of the application's
//! consumer group.
//!
//! Start-up: check the input topics, create the internal topics
//! (repartition: as many partitions as their upstream; changelogs,
//! compacted: as many as their task topic), check co-partitioning, join
//! the group `application.id` with the range assignor (partition `p` of
//! co-partitioned topics lands on one instance: task `p`).
//!
//! Loop: poll → if the assignment changed, drop the stores of tasks taken
//! away (unflushed changes are discarded: the next owner reprocesses) and
//! restore the stores of tasks added (changelog from its start to its end;
//! a table from its own topic) → process each record → produce what it
//! made → every `commit_interval`: write the changed entries of every store
//! to its changelog and forward them downstream, flush the producer (all
//! acknowledged), then commit the input positions.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kmon_client::batch::Header;
use kmon_client::{
    Admin, Assignor, AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRecord, ErrorCode, GroupConsumer,
    GroupConsumerConfig, OffsetSpec, OutgoingRecord, Producer, ProducerConfig, TopicPartition,
};

use crate::context::Ctx;
use crate::error::StreamsError;
use crate::metrics::{PartitionLabels, ReasonLabels, StoreLabels, StreamsMetrics};
use crate::store::Origin;
use crate::topology::{SourceKind, StreamsBuilder, Topology};

/// How much longer than its store's retention a windowed changelog keeps
/// records (Kafka's `windowstore.changelog.additional.retention.ms`).
const CHANGELOG_EXTRA_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// How an application instance runs.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// Any broker, `HOST:PORT`.
    pub bootstrap: String,
    /// Between two commits (Kafka Streams' `commit.interval.ms`; default
    /// 1 s). What can be reprocessed after a crash is what came in since.
    pub commit_interval: Duration,
    /// The group drops a silent instance after this long (default 6 s):
    /// how soon a killed instance's tasks move.
    pub session_timeout: Duration,
    /// Records per poll (default 1000).
    pub max_poll_records: usize,
    /// Replication factor of the internal topics; 0: the broker default.
    pub replication_factor: u32,
}

impl StreamsConfig {
    pub fn new(bootstrap: impl Into<String>) -> StreamsConfig {
        StreamsConfig {
            bootstrap: bootstrap.into(),
            commit_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(6),
            max_poll_records: 1000,
            replication_factor: 0,
        }
    }
}

/// One running instance of an application.
pub struct KafkaStreams {
    config: StreamsConfig,
    topology: Topology,
    metrics: StreamsMetrics,
}

impl KafkaStreams {
    /// Takes the builder's topology; mistakes made while building are
    /// reported here.
    pub fn new(builder: &StreamsBuilder, config: StreamsConfig) -> Result<KafkaStreams, StreamsError> {
        let topology = builder.take_topology();
        if !topology.errors.is_empty() {
            return Err(StreamsError::Topology(topology.errors.join("; ")));
        }
        if topology.sources.is_empty() {
            return Err(StreamsError::Topology("no source: call stream() or table() first".into()));
        }
        if config.commit_interval.is_zero() || config.max_poll_records == 0 {
            return Err(StreamsError::Topology("commit_interval and max_poll_records must be > 0".into()));
        }
        Ok(KafkaStreams { config, topology, metrics: StreamsMetrics::new() })
    }

    /// The instance's figures (share it before `run`).
    pub fn metrics(&self) -> StreamsMetrics {
        self.metrics.clone()
    }

    /// Runs until `shutdown` resolves, then commits and leaves the group.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), StreamsError> {
        let admin = Admin::connect(&self.config.bootstrap).await.map_err(StreamsError::client("connecting"))?;
        self.prepare_topics(&admin).await?;
        let mut producer_config = ProducerConfig::new(self.config.bootstrap.clone());
        // In order, once per producer session: what the origins rely on.
        producer_config.idempotence = true;
        producer_config.linger = Duration::from_millis(5);
        let producer = Producer::connect(producer_config).await.map_err(StreamsError::client("producer"))?;
        let mut group_config =
            GroupConsumerConfig::new(self.config.bootstrap.clone(), self.topology.application_id.clone());
        group_config.client_id = format!("{}-streams", self.topology.application_id);
        group_config.assignors = vec![Assignor::Range];
        group_config.auto_commit = false;
        group_config.auto_offset_reset = AutoOffsetReset::Earliest;
        group_config.session_timeout = self.config.session_timeout;
        group_config.heartbeat_interval = (self.config.session_timeout / 4).max(Duration::from_millis(100));
        group_config.max_poll_records = self.config.max_poll_records;
        let mut consumer = GroupConsumer::connect(group_config).await.map_err(StreamsError::client("joining"))?;
        consumer.subscribe(self.topology.sources.iter().map(|s| s.topic.to_string()).collect());
        let restorer = Consumer::connect(ConsumerConfig::new(self.config.bootstrap.clone()))
            .await
            .map_err(StreamsError::client("restore consumer"))?;

        let mut run = Running {
            topology: &mut self.topology,
            metrics: &self.metrics,
            ctx: Ctx::new(),
            owned: BTreeSet::new(),
            table_restored_to: HashMap::new(),
            producer,
            admin,
            restorer,
            processed_since_commit: 0,
        };
        tokio::pin!(shutdown);
        let mut last_commit = Instant::now();
        loop {
            let records = tokio::select! {
                _ = &mut shutdown => break,
                records = consumer.poll() => records.map_err(StreamsError::client("poll"))?,
            };
            let now_owned: BTreeSet<TopicPartition> = consumer.assignment().into_iter().collect();
            if now_owned != run.owned {
                run.reassign(now_owned).await?;
            }
            for record in &records {
                run.process(record);
            }
            run.send_out().await?;
            if last_commit.elapsed() >= self.config.commit_interval {
                let elapsed = last_commit.elapsed();
                last_commit = Instant::now();
                run.commit(&mut consumer, elapsed).await?;
            }
        }
        let elapsed = last_commit.elapsed();
        run.commit(&mut consumer, elapsed).await?;
        consumer.close().await.map_err(StreamsError::client("leaving the group"))
    }

    /// Checks the input topics, creates the internal ones; the partition
    /// count of every topic the application reads or writes state to.
    async fn prepare_topics(&self, admin: &Admin) -> Result<HashMap<Arc<str>, u32>, StreamsError> {
        let mut counts: HashMap<Arc<str>, u32> = HashMap::new();
        for source in &self.topology.sources {
            if matches!(source.kind, SourceKind::Repartition { .. }) {
                continue;
            }
            let description =
                admin.describe_topic(&source.topic).await.map_err(|source_err| match source_err.code() {
                    Some(ErrorCode::UnknownTopicOrPartition) => {
                        StreamsError::Topology(format!("input topic {:?} does not exist", source.topic))
                    }
                    _ => StreamsError::Client {
                        what: format!("describing input topic {:?}", source.topic),
                        source: source_err,
                    },
                })?;
            counts.insert(source.topic.clone(), description.partitions.len() as u32);
        }
        // Repartition topics in build order: an upstream comes first.
        for source in &self.topology.sources {
            if let SourceKind::Repartition { upstream } = &source.kind {
                let n = *counts.get(upstream).ok_or_else(|| {
                    StreamsError::Topology(format!(
                        "repartition {:?} reads {upstream:?}, which has no partition count",
                        source.topic
                    ))
                })?;
                self.create_internal(admin, &source.topic, n, Vec::new()).await?;
                counts.insert(source.topic.clone(), n);
            }
        }
        for store in &self.topology.stores {
            if let Some(changelog) = &store.changelog {
                let n = counts[&store.task_topic];
                let configs = match store.windows {
                    None => vec![("cleanup.policy".to_string(), "compact".to_string())],
                    // Kafka Streams' windowed changelogs: compacted, and
                    // aged out a day after the store's retention
                    // (windowstore.changelog.additional.retention.ms).
                    Some(windows) => vec![
                        ("cleanup.policy".to_string(), "compact,delete".to_string()),
                        (
                            "retention.ms".to_string(),
                            (windows.retention_ms() + CHANGELOG_EXTRA_RETENTION_MS).to_string(),
                        ),
                    ],
                };
                self.create_internal(admin, changelog, n, configs).await?;
                counts.insert(changelog.clone(), n);
            }
        }
        for (stream, table) in &self.topology.joins {
            if counts[stream] != counts[table] {
                return Err(StreamsError::Topology(format!(
                    "a join needs co-partitioned topics: {stream:?} has {} partitions, table {table:?} has {}",
                    counts[stream], counts[table]
                )));
            }
        }
        Ok(counts)
    }

    async fn create_internal(
        &self,
        admin: &Admin,
        topic: &str,
        partitions: u32,
        configs: Vec<(String, String)>,
    ) -> Result<(), StreamsError> {
        match admin.create_topic(topic, partitions, self.config.replication_factor, configs).await {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some(ErrorCode::TopicAlreadyExists) => {
                let existing = admin.describe_topic(topic).await.map_err(StreamsError::client("describing"))?;
                if existing.partitions.len() as u32 != partitions {
                    return Err(StreamsError::Topology(format!(
                        "internal topic {topic:?} has {} partitions, the topology needs {partitions}",
                        existing.partitions.len()
                    )));
                }
                Ok(())
            }
            Err(err) => Err(StreamsError::Client { what: format!("creating internal topic {topic:?}"), source: err }),
        }
    }
}

/// The state of a running instance.
struct Running<'a> {
    topology: &'a mut Topology,
    metrics: &'a StreamsMetrics,
    ctx: Ctx,
    owned: BTreeSet<TopicPartition>,
    /// Table partitions: records below this offset are in the store
    /// already (restored), the group re-delivers them from its commit.
    table_restored_to: HashMap<(Arc<str>, u32), i64>,
    producer: Producer,
    admin: Admin,
    restorer: Consumer,
    processed_since_commit: u64,
}

impl Running<'_> {
    async fn reassign(&mut self, now_owned: BTreeSet<TopicPartition>) -> Result<(), StreamsError> {
        for gone in self.owned.difference(&now_owned) {
            for store in self.topology.stores.iter().filter(|s| *s.task_topic == *gone.topic) {
                self.ctx.stores.remove(&(store.name.clone(), gone.partition));
            }
            self.table_restored_to.retain(|(topic, p), _| !(**topic == *gone.topic && *p == gone.partition));
        }
        let added: Vec<TopicPartition> = now_owned.difference(&self.owned).cloned().collect();
        tracing::info!(
            revoked = self.owned.difference(&now_owned).count(),
            assigned = added.len(),
            "assignment changed"
        );
        for tp in added {
            let stores: Vec<(Arc<str>, Arc<str>, bool)> = self
                .topology
                .stores
                .iter()
                .filter(|s| *s.task_topic == *tp.topic)
                .map(|s| match &s.changelog {
                    Some(changelog) => (s.name.clone(), changelog.clone(), false),
                    None => (s.name.clone(), s.task_topic.clone(), true),
                })
                .collect();
            for (name, topic, is_table) in stores {
                if self.ctx.stores.contains_key(&(name.clone(), tp.partition)) {
                    continue;
                }
                let end = self.restore(&name, &topic, tp.partition, is_table).await?;
                if is_table {
                    self.table_restored_to.insert((topic, tp.partition), end);
                }
            }
        }
        self.owned = now_owned;
        self.metrics.active_tasks.set(self.owned.len() as i64);
        Ok(())
    }

    /// Reads `topic`'s `partition` from its start to its end into the
    /// store; returns the end offset.
    async fn restore(
        &mut self,
        name: &Arc<str>,
        topic: &Arc<str>,
        partition: u32,
        raw: bool,
    ) -> Result<i64, StreamsError> {
        let started = Instant::now();
        let what = || format!("restoring store {name:?} from {topic}-{partition}");
        let end = self
            .admin
            .list_offset(topic, partition, OffsetSpec::Latest)
            .await
            .map_err(|e| StreamsError::Client { what: what(), source: e })?
            .offset
            .unwrap_or(0);
        self.restorer
            .assign_at(topic, partition, OffsetSpec::Earliest)
            .await
            .map_err(|e| StreamsError::Client { what: what(), source: e })?;
        let mut store = crate::store::Store::new();
        let mut read = 0u64;
        while self.restorer.position(topic, partition).unwrap_or(end) < end {
            for record in self.restorer.poll().await.map_err(|e| StreamsError::Client { what: what(), source: e })? {
                if record.offset >= end {
                    continue;
                }
                read += 1;
                let key = record.key.as_deref().unwrap_or_default().to_vec();
                if raw {
                    store.put_raw(key, record.value.to_vec());
                } else {
                    store.restore(key, &record.value).map_err(|reason| StreamsError::Changelog {
                        topic: topic.to_string(),
                        partition,
                        offset: record.offset,
                        reason,
                    })?;
                }
            }
        }
        self.restorer.unassign(topic, partition);
        if !raw {
            // Stream time is not in the changelog: the latest window start
            // restored is a lower bound of it.
            store.stream_time = store
                .keys()
                .filter_map(|k| crate::window::split_window_key(k).map(|(_, s)| s))
                .max()
                .unwrap_or(i64::MIN);
            // Windows the previous owner purged may still be in the
            // changelog until it ages out.
            if let Some(windows) = self.topology.stores.iter().find(|s| s.name == *name).and_then(|s| s.windows) {
                store.purge_expired(&windows);
            }
        }
        let elapsed = started.elapsed();
        tracing::info!(store = %name, partition, records = read, entries = store.len(), elapsed_ms = elapsed.as_millis() as u64, "store restored");
        self.metrics.restored_records.inc_by(read);
        self.metrics
            .restore_seconds
            .get_or_create(&StoreLabels { store: name.to_string(), partition: partition.to_string() })
            .set(elapsed.as_secs_f64());
        self.ctx.stores.insert((name.clone(), partition), store);
        Ok(end)
    }

    fn process(&mut self, record: &ConsumerRecord) {
        if let Some(&end) = self.table_restored_to.get(&(Arc::from(&*record.topic), record.partition))
            && record.offset < end
        {
            return;
        }
        self.topology.process(record, &mut self.ctx);
        self.metrics.process_total.inc();
        self.processed_since_commit += 1;
    }

    /// Hands the records made so far to the producer (acknowledged by the
    /// next commit's flush).
    async fn send_out(&mut self) -> Result<(), StreamsError> {
        for out in self.ctx.out.drain(..) {
            let headers: Vec<Header> = out
                .origin
                .iter()
                .map(|o| Header { key: Origin::HEADER.into(), value: Some(o.to_header().into()) })
                .collect();
            let record = OutgoingRecord {
                partition: out.partition,
                timestamp_ms: Some(out.timestamp_ms),
                key: Some(&out.key),
                value: &out.value,
                headers: &headers,
            };
            self.producer
                .send_record(&out.topic, &record)
                .await
                .map_err(|e| StreamsError::Client { what: format!("producing to {}", out.topic), source: e })?;
        }
        let counts = std::mem::take(&mut self.ctx.counts);
        self.metrics.dropped.get_or_create(&ReasonLabels { reason: "late" }).inc_by(counts.late);
        self.metrics.dropped.get_or_create(&ReasonLabels { reason: "unreadable" }).inc_by(counts.unreadable);
        self.metrics.duplicates_skipped.inc_by(counts.duplicates);
        self.metrics.expired_windows.inc_by(counts.expired_windows);
        Ok(())
    }

    /// Changed entries → changelog and downstream; flush; commit offsets.
    async fn commit(&mut self, consumer: &mut GroupConsumer, elapsed: Duration) -> Result<(), StreamsError> {
        self.topology.flush(&mut self.ctx, now_ms());
        self.send_out().await?;
        self.producer.flush().await.map_err(StreamsError::client("flushing changelog and output records"))?;
        // A commit refused because a rebalance started is not fatal: the
        // records since the last commit are reprocessed (see the README).
        if let Err(err) = consumer.commit().await {
            tracing::warn!(%err, "offset commit failed; records since the last commit will be reprocessed");
        } else {
            self.metrics.commits.inc();
        }
        self.metrics.process_rate.set(self.processed_since_commit as f64 / elapsed.as_secs_f64().max(1e-3));
        self.processed_since_commit = 0;
        self.update_lag(consumer).await;
        Ok(())
    }

    /// Log end minus position per owned partition; a failure only skips
    /// this update.
    async fn update_lag(&mut self, consumer: &GroupConsumer) {
        let owned: Vec<(&str, u32, OffsetSpec)> =
            self.owned.iter().map(|tp| (tp.topic.as_str(), tp.partition, OffsetSpec::Latest)).collect();
        if owned.is_empty() {
            return;
        }
        match self.admin.list_offsets(&owned).await {
            Ok(ends) => {
                for end in ends {
                    let tp = TopicPartition::new(end.topic.clone(), end.partition);
                    if let (Some(end_offset), Some(position)) = (end.offset, consumer.position(&tp)) {
                        self.metrics
                            .records_lag
                            .get_or_create(&PartitionLabels { topic: end.topic, partition: end.partition.to_string() })
                            .set((end_offset - position).max(0));
                    }
                }
            }
            Err(err) => tracing::debug!(%err, "lag not updated"),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
