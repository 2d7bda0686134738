//! The consumer: explicit partition assignment, long-poll fetches.
//!
//! Each partition is fetched from its leader: one Fetch per leader broker
//! per poll, sent concurrently. Each [`Consumer::poll`] returns the records
//! of one fetch round: as soon as one leader answers with data, the
//! answers already there are taken too and the other (long-polling)
//! requests are dropped; their partitions are fetched again next round
//! from the same positions. As soon as a round completes, the next one is
//! started (positions are read from the batch headers) while the records
//! are decoded, so the network round trip overlaps decoding.
//!
//! Leader errors (NOT_LEADER_OR_FOLLOWER, an unreachable broker, no leader
//! known; see `retry`) refresh the metadata. A round in which no leader
//! answered is retried with backoff (50 ms doubling to 1 s) until
//! `max_wait + request_timeout`, then `poll` returns the last error.
//! Positions only move forward with records returned, so nothing is
//! skipped or repeated across retries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use kmon_proto::v1 as pb;
use tokio::task::JoinHandle;

use crate::admin::Admin;
use crate::batch::{self, DecodedRecord};
use crate::connection::Security;
use crate::error::ClientError;
use crate::retry::Backoff;
use crate::router::Router;
use crate::types::{ConsumerRecord, OffsetSpec};

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Any broker, `HOST:PORT`.
    pub bootstrap: String,
    /// Long-poll bound: the broker answers after this even with no data.
    pub max_wait: Duration,
    /// The broker answers as soon as this many bytes are available.
    pub min_bytes: u32,
    /// Bound on one response.
    pub max_bytes: u32,
    /// Bound per partition in one response.
    pub partition_max_bytes: u32,
    /// Added to `max_wait` to bound a fetch round trip.
    pub request_timeout: Duration,
    /// TLS and credentials for this consumer's connections (default
    /// `None`: this process's settings).
    pub security: Option<Security>,
}

impl ConsumerConfig {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ConsumerConfig {
            bootstrap: bootstrap.into(),
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 32 << 20,
            partition_max_bytes: 8 << 20,
            request_timeout: Duration::from_secs(30),
            security: None,
        }
    }
}

/// Reads assigned partitions in order; see the module docs.
#[derive(Debug)]
pub struct Consumer {
    router: Arc<Router>,
    admin: Admin,
    config: ConsumerConfig,
    assignments: Vec<Assignment>,
    prefetch: Option<JoinHandle<FetchResult>>,
    last_round_trip: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Assignment {
    topic: Arc<str>,
    partition: u32,
    position: i64,
    high_watermark: Option<i64>,
}

type FetchResult = Result<(pb::FetchResponse, Duration), ClientError>;

impl Consumer {
    pub async fn connect(config: ConsumerConfig) -> Result<Self, ClientError> {
        let router = Router::connect(&config.bootstrap, config.security.as_ref()).await?;
        Ok(Self::with_router(router, config))
    }

    /// A consumer sharing `router` (the group consumer's fetcher).
    pub(crate) fn with_router(router: Arc<Router>, config: ConsumerConfig) -> Self {
        Consumer {
            admin: Admin::from_router(router.clone()),
            router,
            config,
            assignments: Vec::new(),
            prefetch: None,
            last_round_trip: None,
        }
    }

    /// An admin client on the same connection.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Reads `topic`-`partition` from `offset` (replacing an earlier
    /// assignment of that partition).
    pub fn assign(&mut self, topic: &str, partition: u32, offset: i64) {
        self.cancel_prefetch();
        match self.find_mut(topic, partition) {
            Some(assignment) => assignment.position = offset,
            None => self.assignments.push(Assignment {
                topic: topic.into(),
                partition,
                position: offset,
                high_watermark: None,
            }),
        }
    }

    /// Resolves `spec` with ListOffsets and assigns from there; returns the
    /// starting offset.
    pub async fn assign_at(&mut self, topic: &str, partition: u32, spec: OffsetSpec) -> Result<i64, ClientError> {
        let resolved = self.admin.list_offset(topic, partition, spec).await?;
        let offset = match resolved.offset {
            Some(offset) => offset,
            // No record at or after the timestamp: start at the end.
            None => self.admin.list_offset(topic, partition, OffsetSpec::Latest).await?.offset.unwrap_or(0),
        };
        self.assign(topic, partition, offset);
        Ok(offset)
    }

    /// Stops reading a partition.
    pub fn unassign(&mut self, topic: &str, partition: u32) {
        self.cancel_prefetch();
        self.assignments.retain(|a| !(&*a.topic == topic && a.partition == partition));
    }

    /// The offset of the next record to be returned for a partition.
    pub fn position(&self, topic: &str, partition: u32) -> Option<i64> {
        self.find(topic, partition).map(|a| a.position)
    }

    /// The high watermark the last fetch reported for a partition.
    pub fn high_watermark(&self, topic: &str, partition: u32) -> Option<i64> {
        self.find(topic, partition).and_then(|a| a.high_watermark)
    }

    /// `(topic, partition, position)` of every assignment.
    pub fn assignments(&self) -> impl Iterator<Item = (&str, u32, i64)> {
        self.assignments.iter().map(|a| (&*a.topic, a.partition, a.position))
    }

    /// Round trip of the fetch whose records the last `poll` returned.
    pub fn last_round_trip(&self) -> Option<Duration> {
        self.last_round_trip
    }

    /// Fetches once (waiting up to `max_wait` for data) and returns the
    /// records at or after each partition's position, in offset order per
    /// partition. An empty vector means no new data arrived in time.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.assignments.is_empty() {
            return Err(ClientError::InvalidArgument("the consumer has no assigned partitions".into()));
        }
        let fetched = match self.prefetch.take() {
            Some(handle) => handle
                .await
                .unwrap_or_else(|err| Err(ClientError::InvalidArgument(format!("fetch task failed: {err}")))),
            None => fetch(self.router.clone(), self.fetch_partitions(), &self.config).await,
        };
        let (response, round_trip) = fetched?;
        self.last_round_trip = Some(round_trip);

        // Advance positions from the batch headers, start the next fetch,
        // then decode.
        let mut work = Vec::with_capacity(response.partitions.len());
        for result in response.partitions {
            let Some(index) =
                self.assignments.iter().position(|a| *a.topic == result.topic && a.partition == result.partition)
            else {
                continue;
            };
            let data: Bytes = result.records;
            let assignment = &mut self.assignments[index];
            assignment.high_watermark = Some(result.high_watermark);
            let from = assignment.position;
            if let Some(next) = batch::next_offset(&data)? {
                assignment.position = assignment.position.max(next);
            }
            work.push((index, from, data));
        }
        self.prefetch = Some(tokio::spawn(fetch(self.router.clone(), self.fetch_partitions(), &self.config)));

        let mut records = Vec::new();
        let mut decoded: Vec<DecodedRecord> = Vec::new();
        for (index, from, data) in work {
            decoded.clear();
            if let Err(err) = batch::decode_batches_into(&data, from, &mut decoded) {
                self.cancel_prefetch();
                self.assignments[index].position = from;
                return Err(err.into());
            }
            let assignment = &self.assignments[index];
            records.reserve(decoded.len());
            records.extend(decoded.drain(..).map(|r| ConsumerRecord {
                topic: assignment.topic.clone(),
                partition: assignment.partition,
                offset: r.offset,
                timestamp_ms: r.timestamp_ms,
                key: r.key,
                value: r.value,
                headers: r.headers,
            }));
        }
        Ok(records)
    }

    fn fetch_partitions(&self) -> Vec<pb::FetchPartition> {
        self.assignments
            .iter()
            .map(|a| pb::FetchPartition {
                topic: a.topic.to_string(),
                partition: a.partition,
                offset: a.position,
                max_bytes: self.config.partition_max_bytes,
            })
            .collect()
    }

    fn cancel_prefetch(&mut self) {
        if let Some(handle) = self.prefetch.take() {
            handle.abort();
        }
    }

    fn find(&self, topic: &str, partition: u32) -> Option<&Assignment> {
        self.assignments.iter().find(|a| &*a.topic == topic && a.partition == partition)
    }

    fn find_mut(&mut self, topic: &str, partition: u32) -> Option<&mut Assignment> {
        self.assignments.iter_mut().find(|a| &*a.topic == topic && a.partition == partition)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.cancel_prefetch();
    }
}

fn partition_of(p: &pb::FetchPartition) -> (&str, u32) {
    (&p.topic, p.partition)
}

/// One fetch round (see the module docs): the merged answers of the
/// leaders, and the round trip.
fn fetch(
    router: Arc<Router>,
    partitions: Vec<pb::FetchPartition>,
    config: &ConsumerConfig,
) -> impl std::future::Future<Output = FetchResult> + Send + 'static {
    let timeout = config.max_wait + config.request_timeout;
    let max_wait_ms = config.max_wait.as_millis().min(u128::from(u32::MAX)) as u32;
    let (min_bytes, max_bytes) = (config.min_bytes, config.max_bytes);
    async move {
        let start = Instant::now();
        let deadline = start + timeout;
        let seen = router.cache().generation();
        if partitions.iter().any(|p| router.cache().leader_address(&p.topic, p.partition).is_none()) {
            // First fetch of a topic: load its leaders.
            router.refresh_after_error(seen).await;
        }
        let mut pending = partitions;
        let mut backoff = Backoff::default();
        loop {
            let seen = router.cache().generation();
            let (groups, leaderless) = router.group_by_leader(pending, partition_of);
            let mut attempts: FuturesUnordered<_> = groups
                .into_iter()
                .map(|(address, partitions)| {
                    let router = &router;
                    async move {
                        let request =
                            pb::FetchRequest { partitions: partitions.clone(), max_wait_ms, min_bytes, max_bytes };
                        let result = match router.client(&address).await {
                            Err(err) => Err(err),
                            Ok(mut client) => match tokio::time::timeout(timeout, client.fetch(request)).await {
                                Err(_) => Err(ClientError::Timeout(timeout)),
                                Ok(Err(status)) => Err(ClientError::from(status)),
                                Ok(Ok(response)) => Ok(response.into_inner()),
                            },
                        };
                        (address, partitions, result)
                    }
                })
                .collect();
            let mut merged = Vec::new();
            let mut answered = false;
            let mut retry: Vec<pb::FetchPartition> = Vec::new();
            let mut last_error = None;
            let mut have_data = false;
            loop {
                let next = if have_data {
                    // Take the answers already there, drop the long polls.
                    match attempts.next().now_or_never() {
                        Some(next) => next,
                        None => break,
                    }
                } else {
                    attempts.next().await
                };
                let Some((address, partitions, result)) = next else {
                    break;
                };
                match result {
                    Ok(response) => {
                        answered = true;
                        have_data |= response.partitions.iter().any(|p| !p.records.is_empty());
                        merged.extend(response.partitions);
                    }
                    Err(err) if err.is_retriable() => {
                        router.learn_from(&address, &err, partitions.iter().map(partition_of));
                        retry.extend(partitions);
                        last_error = Some(err);
                    }
                    Err(err) => return Err(err),
                }
            }
            drop(attempts);
            if let Some(first) = leaderless.first() {
                last_error.get_or_insert_with(|| ClientError::LeaderNotAvailable {
                    topic: first.topic.clone(),
                    partition: first.partition,
                });
                retry.extend(leaderless);
            }
            let Some(err) = last_error else {
                return Ok((pb::FetchResponse { partitions: merged }, start.elapsed()));
            };
            if answered {
                // Some leaders answered: return that, and route the others
                // right next round.
                router.refresh_after_error(seen).await;
                return Ok((pb::FetchResponse { partitions: merged }, start.elapsed()));
            }
            let delay = backoff.next_delay();
            if Instant::now() + delay >= deadline {
                return Err(err);
            }
            tracing::debug!(error = %err, ?delay, "retrying fetch");
            tokio::time::sleep(delay).await;
            router.refresh_after_error(seen).await;
            pending = retry;
        }
    }
}
