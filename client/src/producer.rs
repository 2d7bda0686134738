//! The batching producer.
//!
//! ```text
//! send() ──► accumulator (per partition: open batch → queued batches)
//!                 │  a batch closes when full, on linger expiry or flush
//!                 ▼
//!            sender task ──► ProduceRequest per leader broker (one batch
//!                 ▲           per partition, several partitions of the
//!                 │           same leader per request, up to
//!                 │           max_in_flight requests pipelined)
//!                 │              │ retriable failure: backoff, refresh
//!                 │              │ metadata, resend to the new leader
//!                 └────────── completion: resolves the batch's handles
//! ```
//!
//! Records are encoded straight into their partition's open batch
//! ([`BatchBuilder`]); a record costs one short mutex hold and no
//! allocation. Every record of a batch shares the batch's completion
//! state; a [`RecordHandle`] is that state plus the record's index.
//!
//! Routing: each batch goes to its partition's leader, as the client's
//! metadata cache knows it (refreshed from `Metadata` when a topic is first
//! used and after routing errors). Batches are grouped per leader: one
//! ProduceRequest per leader broker.
//!
//! Retries: a batch that fails with a retriable error (NOT_LEADER_OR_FOLLOWER,
//! UNKNOWN_TOPIC_OR_PARTITION just after a creation, NOT_ENOUGH_REPLICAS,
//! REQUEST_TIMED_OUT, an unreachable or dead broker, a timed-out request,
//! no leader known; see `retry`) is sent again after a backoff (50 ms
//! doubling to 1 s) and a metadata refresh, to whichever broker then leads
//! the partition, until `delivery_timeout` has passed since the batch was
//! opened; it then fails with the last error (its code kept, e.g.
//! NOT_ENOUGH_REPLICAS). Other errors (CORRUPT_MESSAGE, MESSAGE_TOO_LARGE,
//! INVALID_*) fail the batch at once.
//!
//! Idempotence (the default with acks=all, as in Kafka ≥ 3.0): the producer
//! gets a producer id and epoch from `InitProducerId`, and each batch
//! carries them and the sequence number of its first record, counted per
//! partition in the order batches are dispatched (a batch is finished, its
//! header and CRC written, when it leaves the queue). The partition leader
//! appends a partition's batches strictly in sequence order: a retry of a
//! batch already written (its acknowledgement was lost: a leader that died
//! after appending, a timeout, a connection reset) is answered with the
//! offsets it got the first time, and a batch that overtook an earlier one
//! waits for it or is refused with OUT_OF_ORDER_SEQUENCE_NUMBER, which is
//! retried. So up to `max_in_flight_per_partition` (≤ 5) batches of a
//! partition are in flight and each record is written exactly once, in
//! order, whatever is retried. When a batch fails for good, the producer
//! takes a new producer id before it dispatches more (the broker would
//! refuse the gap after the lost batch), as Kafka bumps the epoch.
//!
//! Without idempotence (`idempotence = false`, or acks 0 or 1), one batch
//! per partition is in flight (the broker may run concurrent requests in
//! any order), so a partition's order holds across retries, but a retry
//! cannot tell "not written" from "written, acknowledgement lost": delivery
//! is at-least-once.
//!
//! Either way, when a batch fails for good, the batches of that partition
//! not yet sent fail too ([`ClientError::EarlierBatchFailed`]), so a
//! partition never holds a record sent after one that was lost. With
//! acks=all a batch the producer reports as acknowledged is on every
//! in-sync replica, so it survives the loss of the leader (acks=1 can lose
//! acknowledged records when the leader dies before followers copied them).

use std::collections::{HashMap, VecDeque};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kmon_proto::v1 as pb;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::admin::Admin;
use crate::batch::{BatchBuilder, HEADER_LEN as BATCH_HEADER_LEN, Header};
use crate::connection::Security;
use crate::error::ClientError;
use crate::partitioner::{StickyPartitioner, partition_for_key};
use crate::retry::Backoff;
use crate::router::Router;
use crate::types::{Acks, RecordMetadata};

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Any broker, `HOST:PORT`.
    pub bootstrap: String,
    pub acks: Acks,
    /// How long a batch waits for more records before it is sent.
    pub linger: Duration,
    /// A batch is sent once it reaches this many bytes.
    pub batch_size: usize,
    /// Produce requests in flight at once (pipelining across partitions).
    pub max_in_flight: usize,
    /// Batches of one partition in flight at once with idempotence (at
    /// most 5, Kafka's bound); without it, always 1.
    pub max_in_flight_per_partition: usize,
    /// Exactly once and in order per partition through retries (needs
    /// acks=all; with acks 0 or 1 the producer is not idempotent).
    pub idempotence: bool,
    /// Bound on one produce request's record bytes.
    pub max_request_size: usize,
    /// `send` waits while this many bytes are buffered or in flight.
    pub buffer_memory: usize,
    /// Bound on one produce request's round trip (a timed-out request is
    /// retried).
    pub request_timeout: Duration,
    /// How long a batch may take from opening to acknowledgement, retries
    /// included; past it the batch fails with its last error.
    pub delivery_timeout: Duration,
    /// TLS and credentials for this producer's connections (default
    /// `None`: this process's settings).
    pub security: Option<Security>,
}

impl ProducerConfig {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ProducerConfig {
            bootstrap: bootstrap.into(),
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 1 << 20,
            max_in_flight: 5,
            max_in_flight_per_partition: 5,
            idempotence: true,
            max_request_size: 16 << 20,
            buffer_memory: 32 << 20,
            request_timeout: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(30),
            security: None,
        }
    }
}

/// Sends records in batches; see the module docs. Dropping the producer
/// still sends what was buffered; use [`Producer::flush`] to wait for it.
#[derive(Debug)]
pub struct Producer {
    shared: Arc<Shared>,
}

/// Kafka's bound on in-flight batches per partition of an idempotent
/// producer (the broker remembers the last five batches of each).
pub const MAX_IN_FLIGHT_IDEMPOTENT: usize = 5;

/// A record as [`Producer::send_record`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRecord<'a> {
    /// `None`: the partitioner picks (by key, or sticky without one).
    pub partition: Option<u32>,
    /// Milliseconds since the epoch; `None`: when it is sent.
    pub timestamp_ms: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
    pub headers: &'a [Header],
}

/// Resolves to where a record landed once its batch is acknowledged.
/// `.await` it, or ask [`RecordHandle::try_result`] without waiting.
#[derive(Debug, Clone)]
pub struct RecordHandle {
    batch: Arc<BatchState>,
    index: u32,
    partition: u32,
}

impl Producer {
    /// Connects to the bootstrap broker and starts the sender task.
    pub async fn connect(config: ProducerConfig) -> Result<Self, ClientError> {
        if config.batch_size == 0 || config.max_in_flight == 0 {
            return Err(ClientError::InvalidArgument("batch_size and max_in_flight must be at least 1".into()));
        }
        let idempotent = config.idempotence && config.acks == Acks::All;
        if idempotent && !(1..=MAX_IN_FLIGHT_IDEMPOTENT).contains(&config.max_in_flight_per_partition) {
            return Err(ClientError::InvalidArgument(format!(
                "max_in_flight_per_partition must be 1 to {MAX_IN_FLIGHT_IDEMPOTENT} with idempotence, not {}",
                config.max_in_flight_per_partition
            )));
        }
        let router = Router::connect(&config.bootstrap, config.security.as_ref()).await?;
        // Learn every broker now, as Kafka's producer does at start: a
        // producer whose bootstrap broker dies before its first send still
        // finds the others (a failure here is only logged).
        let seen = router.cache().generation();
        router.refresh_after_error(seen).await;
        let shared = Arc::new(Shared::new(router, config));
        if idempotent {
            let identity = init_producer_id(&shared.router).await?;
            shared.lock().producer = Some(identity);
        }
        tokio::spawn(run_sender(shared.clone()));
        Ok(Producer { shared })
    }

    /// Sends one record. Keyed records go to Kafka's murmur2 partition,
    /// keyless ones to the topic's sticky partition. Returns once the
    /// record is buffered; await the handle for the acknowledgement.
    pub async fn send(&self, topic: &str, key: Option<Bytes>, value: Bytes) -> Result<RecordHandle, ClientError> {
        self.send_to(topic, None, key.as_deref(), &value).await
    }

    /// Sends one record to an explicit partition (or the partitioner's
    /// choice if `None`). Key and value are copied into the batch.
    pub async fn send_to(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<RecordHandle, ClientError> {
        self.wait_for_space().await;
        self.ensure_topic(topic).await?;
        let mut acc = self.shared.lock();
        acc.append(&self.shared, topic, partition, now_ms(), key, value)
    }

    /// Sends one record with all it can carry: an explicit partition (or
    /// the partitioner's choice), its own timestamp (or now), key, value
    /// and headers. Copied into the batch.
    pub async fn send_record(&self, topic: &str, record: &OutgoingRecord<'_>) -> Result<RecordHandle, ClientError> {
        self.wait_for_space().await;
        self.ensure_topic(topic).await?;
        let mut acc = self.shared.lock();
        acc.append_record(&self.shared, topic, record, now_ms())
    }

    /// Sends many records of one topic under one lock: the fastest path.
    pub async fn send_batch<'a, I>(&self, topic: &str, records: I) -> Result<Vec<RecordHandle>, ClientError>
    where
        I: IntoIterator<Item = (Option<&'a [u8]>, &'a [u8])>,
    {
        self.wait_for_space().await;
        self.ensure_topic(topic).await?;
        let timestamp = now_ms();
        let mut acc = self.shared.lock();
        records.into_iter().map(|(key, value)| acc.append(&self.shared, topic, None, timestamp, key, value)).collect()
    }

    /// Number of partitions of `topic` (fetched once, then cached).
    pub async fn partition_count(&self, topic: &str) -> Result<u32, ClientError> {
        self.ensure_topic(topic).await?;
        let acc = self.shared.lock();
        Ok(acc.topics[topic].partitions.len() as u32)
    }

    /// An admin client sharing the producer's connections and metadata.
    pub fn admin(&self) -> Admin {
        Admin::from_router(self.shared.router.clone())
    }

    /// Sends every buffered batch now and waits until everything sent so
    /// far is acknowledged; returns the first failure, if any.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let pending = self.shared.lock().close_all_and_collect();
        self.shared.wake_sender.notify_one();
        let mut first_error = None;
        for batch in pending {
            if let Err(err) = &batch.wait().await.result {
                first_error.get_or_insert_with(|| err.clone());
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn ensure_topic(&self, topic: &str) -> Result<(), ClientError> {
        if self.shared.lock().topics.contains_key(topic) {
            return Ok(());
        }
        let count = self.shared.router.partition_count(topic).await? as usize;
        if count == 0 {
            return Err(ClientError::InvalidArgument(format!("topic {topic:?} has no partitions")));
        }
        let mut acc = self.shared.lock();
        acc.topics.entry(topic.to_owned()).or_insert_with(|| TopicState {
            name: topic.into(),
            partitions: (0..count).map(|_| PartitionState::default()).collect(),
            sticky: StickyPartitioner::default(),
        });
        Ok(())
    }

    async fn wait_for_space(&self) {
        let limit = self.shared.config.buffer_memory;
        while self.shared.buffered.load(Ordering::Acquire) >= limit {
            let freed = self.shared.space_freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.shared.buffered.load(Ordering::Acquire) < limit {
                break;
            }
            freed.await;
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake_sender.notify_one();
    }
}

impl RecordHandle {
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Whether this record opened its batch (its send → ack time is the
    /// batch's [`RecordHandle::batch_latency`]).
    pub fn is_first_in_batch(&self) -> bool {
        self.index == 0
    }

    /// The result, if the batch has completed.
    pub fn try_result(&self) -> Option<Result<RecordMetadata, ClientError>> {
        self.batch.outcome.get().map(|outcome| self.result(outcome))
    }

    /// Time from the batch's first record to its acknowledgement, once
    /// acknowledged.
    pub fn batch_latency(&self) -> Option<Duration> {
        self.batch.outcome.get().map(|outcome| outcome.at.duration_since(self.batch.created))
    }

    /// Waits for the acknowledgement.
    pub async fn wait(self) -> Result<RecordMetadata, ClientError> {
        let outcome = self.batch.wait().await;
        self.result(outcome)
    }

    fn result(&self, outcome: &Outcome) -> Result<RecordMetadata, ClientError> {
        let base = outcome.result.clone()?;
        Ok(RecordMetadata {
            partition: self.partition,
            offset: if base < 0 { -1 } else { base + i64::from(self.index) },
        })
    }
}

impl IntoFuture for RecordHandle {
    type Output = Result<RecordMetadata, ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

#[derive(Debug)]
struct Shared {
    config: ProducerConfig,
    router: Arc<Router>,
    accumulator: Mutex<Accumulator>,
    /// Batches closed, a batch opened (new linger deadline), a request done.
    wake_sender: Notify,
    space_freed: Notify,
    /// Record bytes buffered or in flight.
    buffered: AtomicUsize,
    closed: AtomicBool,
}

impl Shared {
    fn new(router: Arc<Router>, config: ProducerConfig) -> Self {
        Shared {
            router,
            config,
            accumulator: Mutex::new(Accumulator::default()),
            wake_sender: Notify::new(),
            space_freed: Notify::new(),
            buffered: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Accumulator> {
        // A panic while holding the lock leaves consistent-enough state.
        self.accumulator.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Completion of one batch, shared by its records' handles.
#[derive(Debug)]
struct BatchState {
    created: Instant,
    outcome: OnceLock<Outcome>,
    done: Notify,
}

#[derive(Debug)]
struct Outcome {
    /// The base offset.
    result: Result<i64, ClientError>,
    at: Instant,
}

impl BatchState {
    fn new() -> Arc<Self> {
        Arc::new(BatchState { created: Instant::now(), outcome: OnceLock::new(), done: Notify::new() })
    }

    fn complete(&self, result: Result<i64, ClientError>) {
        let _ = self.outcome.set(Outcome { result, at: Instant::now() });
        self.done.notify_waiters();
    }

    async fn wait(&self) -> &Outcome {
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if let Some(outcome) = self.outcome.get() {
                return outcome;
            }
            done.await;
        }
    }
}

#[derive(Debug, Default)]
struct Accumulator {
    topics: HashMap<String, TopicState>,
    /// Idempotence: the producer id and epoch batches are stamped with.
    producer: Option<ProducerIdentity>,
    /// A batch failed for good: take a new producer id before dispatching
    /// more (its partition's sequence has a gap the broker would refuse).
    producer_lost: bool,
}

/// An idempotent producer's id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProducerIdentity {
    id: i64,
    epoch: i16,
}

#[derive(Debug)]
struct TopicState {
    name: Arc<str>,
    partitions: Vec<PartitionState>,
    sticky: StickyPartitioner,
}

#[derive(Debug, Default)]
struct PartitionState {
    open: Option<OpenBatch>,
    /// Closed batches waiting to be sent, oldest first.
    queued: VecDeque<ClosedBatch>,
    /// Batches sent and not completed, oldest first, with their dispatch
    /// numbers.
    in_flight: Vec<(u64, Arc<BatchState>)>,
    /// Batches of this partition dispatched so far.
    dispatched: u64,
    /// Idempotence: the sequence of the next batch's first record.
    next_sequence: i32,
    /// Idempotence: a batch failed for good, so the partition's later
    /// batches under the same producer id can never be appended (the
    /// broker refuses the gap): they fail instead of being retried.
    sequence_broken: bool,
}

#[derive(Debug)]
struct OpenBatch {
    builder: BatchBuilder,
    state: Arc<BatchState>,
    deadline: Instant,
}

/// A batch closed for records, finished (header, producer fields, CRC)
/// when it is dispatched.
#[derive(Debug)]
struct ClosedBatch {
    builder: BatchBuilder,
    state: Arc<BatchState>,
}

/// A batch dispatched: its bytes as sent, and resent on retries.
#[derive(Debug)]
struct SentBatch {
    data: Vec<u8>,
    state: Arc<BatchState>,
}

/// A batch on its way to the broker.
struct Outgoing {
    topic: Arc<str>,
    partition: u32,
    batch: SentBatch,
}

impl PartitionState {
    fn close_open(&mut self) -> bool {
        match self.open.take() {
            Some(open) => {
                self.queued.push_back(ClosedBatch { builder: open.builder, state: open.state });
                true
            }
            None => false,
        }
    }

    /// Fails every batch not yet sent (after an earlier one failed);
    /// returns the record bytes released.
    fn fail_unsent(&mut self, topic: &str, partition: u32, cause: &ClientError) -> usize {
        self.close_open();
        let mut released = 0;
        for batch in self.queued.drain(..) {
            released += batch.builder.size_bytes() - BATCH_HEADER_LEN;
            batch.state.complete(Err(ClientError::EarlierBatchFailed {
                topic: topic.to_owned(),
                partition,
                cause: Box::new(cause.clone()),
            }));
        }
        released
    }
}

impl Accumulator {
    fn append(
        &mut self,
        shared: &Shared,
        topic: &str,
        partition: Option<u32>,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<RecordHandle, ClientError> {
        let record = OutgoingRecord { partition, timestamp_ms: Some(timestamp_ms), key, value, headers: &[] };
        self.append_record(shared, topic, &record, timestamp_ms)
    }

    /// Appends `record` (its timestamp, or `now_ms`) to its partition's
    /// open batch.
    fn append_record(
        &mut self,
        shared: &Shared,
        topic: &str,
        record: &OutgoingRecord<'_>,
        now_ms: i64,
    ) -> Result<RecordHandle, ClientError> {
        let OutgoingRecord { partition, timestamp_ms, key, value, headers } = *record;
        let timestamp_ms = timestamp_ms.unwrap_or(now_ms);
        let config = &shared.config;
        let state = self.topics.get_mut(topic).expect("ensure_topic ran before append");
        let count = state.partitions.len() as u32;
        let explicit = partition;
        let mut partition = match (partition, key) {
            (Some(p), _) if p < count => p,
            (Some(p), _) => {
                return Err(ClientError::InvalidArgument(format!(
                    "topic {topic:?} has {count} partitions, there is no partition {p}"
                )));
            }
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => state.sticky.partition(count),
        };
        let record_size = BatchBuilder::record_size(key, value, headers);
        if record_size + BATCH_HEADER_LEN > config.max_request_size {
            return Err(ClientError::InvalidArgument(format!(
                "a record of {record_size} bytes exceeds max_request_size ({} bytes)",
                config.max_request_size
            )));
        }
        let mut wake = false;
        let mut slot = &mut state.partitions[partition as usize];
        if key.is_none()
            && explicit.is_none()
            && slot.open.as_ref().is_some_and(|open| open.builder.size_bytes() + record_size > config.batch_size)
        {
            // Like Kafka's abortOnNewBatch: a keyless record that would open
            // a new batch goes to the next sticky partition instead.
            slot.close_open();
            state.sticky.batch_closed(partition, count);
            wake = true;
            partition = state.sticky.partition(count);
            slot = &mut state.partitions[partition as usize];
        }
        if let Some(open) = &slot.open
            && open.builder.size_bytes() + record_size > config.batch_size
        {
            slot.close_open();
            state.sticky.batch_closed(partition, count);
            wake = true;
        }
        let open = slot.open.get_or_insert_with(|| {
            wake = true;
            OpenBatch {
                builder: BatchBuilder::with_capacity(config.batch_size.max(record_size + BATCH_HEADER_LEN)),
                state: BatchState::new(),
                deadline: Instant::now() + config.linger,
            }
        });
        let before = open.builder.size_bytes();
        let index = open.builder.append(timestamp_ms, key, value, headers);
        shared.buffered.fetch_add(open.builder.size_bytes() - before, Ordering::AcqRel);
        let handle = RecordHandle { batch: open.state.clone(), index, partition };
        if open.builder.size_bytes() >= config.batch_size {
            slot.close_open();
            state.sticky.batch_closed(partition, count);
            wake = true;
        }
        if wake {
            shared.wake_sender.notify_one();
        }
        Ok(handle)
    }

    /// Closes every open batch; returns the state of every batch not yet
    /// acknowledged.
    fn close_all_and_collect(&mut self) -> Vec<Arc<BatchState>> {
        let mut pending = Vec::new();
        for topic in self.topics.values_mut() {
            let count = topic.partitions.len() as u32;
            for (partition, slot) in topic.partitions.iter_mut().enumerate() {
                if slot.close_open() {
                    topic.sticky.batch_closed(partition as u32, count);
                }
                pending.extend(slot.in_flight.iter().map(|(_, state)| state.clone()));
                pending.extend(slot.queued.iter().map(|b| b.state.clone()));
            }
        }
        pending
    }

    /// Closes batches whose linger expired (all of them if `close_all`),
    /// and takes sendable batches into at most `max_requests` requests,
    /// each for one leader (`leader_of`; partitions without a known leader
    /// share requests, which look the leader up again). Returns the
    /// requests and the next linger deadline.
    fn collect(
        &mut self,
        config: &ProducerConfig,
        max_requests: usize,
        close_all: bool,
        leader_of: &dyn Fn(&str, u32) -> Option<i32>,
    ) -> (Vec<Vec<Outgoing>>, Option<Instant>) {
        let now = Instant::now();
        let mut deadline: Option<Instant> = None;
        let mut requests = Vec::new();
        // Per leader: the request being filled and its size.
        let mut filling: HashMap<Option<i32>, (Vec<Outgoing>, usize)> = HashMap::new();
        // Requests made or being filled.
        let mut started = 0;
        let in_flight_bound = match self.producer {
            // Nothing new goes out under an id about to be replaced.
            Some(_) if self.producer_lost => 0,
            Some(_) => config.max_in_flight_per_partition,
            None => 1,
        };
        for topic in self.topics.values_mut() {
            let count = topic.partitions.len() as u32;
            for (index, slot) in topic.partitions.iter_mut().enumerate() {
                let partition = index as u32;
                if let Some(open) = &slot.open {
                    if close_all || open.deadline <= now {
                        slot.close_open();
                        topic.sticky.batch_closed(partition, count);
                    } else {
                        deadline = Some(deadline.map_or(open.deadline, |d| d.min(open.deadline)));
                    }
                }
                // The window counts from the oldest batch not yet completed,
                // not the number in flight: a batch being retried must still
                // be among the last five its leader remembers when it lands.
                let window = slot.in_flight.first().map_or(0, |(oldest, _)| slot.dispatched - oldest);
                if slot.queued.is_empty() || window >= in_flight_bound as u64 {
                    continue;
                }
                let size = slot.queued[0].builder.size_bytes();
                let (current, current_size) =
                    filling.entry(leader_of(&topic.name, partition).filter(|id| *id >= 0)).or_default();
                let full = !current.is_empty() && *current_size + size > config.max_request_size;
                if current.is_empty() || full {
                    if started >= max_requests {
                        continue;
                    }
                    started += 1;
                    if full {
                        requests.push(std::mem::take(current));
                        *current_size = 0;
                    }
                }
                let ClosedBatch { mut builder, state } = slot.queued.pop_front().expect("checked non-empty");
                if let Some(producer) = self.producer {
                    builder.set_producer(producer.id, producer.epoch, slot.next_sequence);
                    slot.next_sequence = next_sequence(slot.next_sequence, builder.record_count());
                }
                let batch = SentBatch { data: builder.finish(), state };
                slot.in_flight.push((slot.dispatched, batch.state.clone()));
                slot.dispatched += 1;
                *current_size += size;
                current.push(Outgoing { topic: topic.name.clone(), partition, batch });
            }
        }
        requests.extend(filling.into_values().map(|(request, _)| request).filter(|request| !request.is_empty()));
        (requests, deadline)
    }

    /// Whether an earlier batch of the partition failed for good under the
    /// current producer id.
    fn sequence_broken(&self, topic: &str, partition: u32) -> bool {
        self.topics.get(topic).and_then(|t| t.partitions.get(partition as usize)).is_some_and(|p| p.sequence_broken)
    }

    fn in_flight_count(&self) -> usize {
        self.topics.values().flat_map(|t| t.partitions.iter()).map(|p| p.in_flight.len()).sum()
    }

    fn is_idle(&self) -> bool {
        self.topics
            .values()
            .all(|t| t.partitions.iter().all(|p| p.open.is_none() && p.queued.is_empty() && p.in_flight.is_empty()))
    }
}

async fn run_sender(shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(shared.config.max_in_flight));
    loop {
        let renew = {
            let acc = shared.lock();
            // Batches of the old id still in flight land first: one of
            // them retried after the new id's batches would break order.
            acc.producer_lost && acc.in_flight_count() == 0
        };
        if renew {
            renew_producer_id(&shared).await;
        }
        let closed = shared.closed.load(Ordering::Acquire);
        let (requests, deadline) = {
            let mut acc = shared.lock();
            if closed && acc.is_idle() {
                return;
            }
            let cache = shared.router.cache();
            let leader_of = |topic: &str, partition: u32| cache.leader(topic, partition).map(|leader| leader.id);
            acc.collect(&shared.config, permits.available_permits(), closed, &leader_of)
        };
        if !requests.is_empty() {
            for batches in requests {
                let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
                tokio::spawn(send_request(shared.clone(), batches, permit));
            }
            continue;
        }
        match deadline {
            Some(deadline) => {
                tokio::select! {
                    () = shared.wake_sender.notified() => {}
                    () = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
            None => shared.wake_sender.notified().await,
        }
    }
}

/// A batch between its first send and its completion.
struct InFlight {
    topic: Arc<str>,
    partition: u32,
    records: Bytes,
    state: Arc<BatchState>,
}

impl InFlight {
    fn partition(&self) -> (&str, u32) {
        (&self.topic, self.partition)
    }
}

/// Sends the batches to their leaders and retries the retriable failures
/// (see the module docs) until each batch is acknowledged, fails, or
/// reaches its delivery timeout. Each batch completes as soon as its own
/// request does.
async fn send_request(shared: Arc<Shared>, batches: Vec<Outgoing>, _permit: OwnedSemaphorePermit) {
    let router = &shared.router;
    let mut pending: Vec<InFlight> = batches
        .into_iter()
        .map(|outgoing| InFlight {
            topic: outgoing.topic,
            partition: outgoing.partition,
            records: Bytes::from(outgoing.batch.data),
            state: outgoing.batch.state,
        })
        .collect();
    let mut backoff = Backoff::default();
    loop {
        let seen = router.cache().generation();
        let (groups, leaderless) = router.group_by_leader(pending, InFlight::partition);
        let mut attempts: FuturesUnordered<_> =
            groups.into_iter().map(|(address, batches)| produce_to(&shared, address, batches)).collect();
        let mut retry: Vec<(InFlight, ClientError)> = Vec::new();
        while let Some((address, batches, response)) = attempts.next().await {
            match response {
                Ok(response) => {
                    for batch in batches {
                        let result = response
                            .partitions
                            .iter()
                            .find(|r| r.partition == batch.partition && *r.topic == *batch.topic)
                            .map(|r| r.base_offset)
                            .ok_or_else(|| {
                                ClientError::InvalidArgument(format!(
                                    "the broker's produce response has no result for {}-{}",
                                    batch.topic, batch.partition
                                ))
                            });
                        finish(&shared, batch, result);
                    }
                }
                Err(err) if err.is_retriable() => {
                    router.learn_from(&address, &err, batches.iter().map(InFlight::partition));
                    retry.extend(batches.into_iter().map(|batch| (batch, err.clone())));
                }
                Err(err) => {
                    for batch in batches {
                        finish(&shared, batch, Err(err.clone()));
                    }
                }
            }
        }
        drop(attempts);
        retry.extend(leaderless.into_iter().map(|batch| {
            let err = ClientError::LeaderNotAvailable { topic: batch.topic.to_string(), partition: batch.partition };
            (batch, err)
        }));
        if retry.is_empty() {
            return;
        }
        let delay = backoff.next_delay();
        let retry_at = Instant::now() + delay;
        pending = Vec::with_capacity(retry.len());
        for (batch, err) in retry {
            if shared.lock().sequence_broken(&batch.topic, batch.partition) {
                let cause = Box::new(err);
                let err = ClientError::EarlierBatchFailed {
                    topic: batch.topic.to_string(),
                    partition: batch.partition,
                    cause,
                };
                finish(&shared, batch, Err(err));
            } else if retry_at >= batch.state.created + shared.config.delivery_timeout {
                tracing::debug!(topic = %batch.topic, partition = batch.partition, error = %err,
                    "delivery timeout reached");
                finish(&shared, batch, Err(err));
            } else {
                tracing::debug!(topic = %batch.topic, partition = batch.partition, error = %err,
                    ?delay, "retrying produce");
                pending.push(batch);
            }
        }
        if pending.is_empty() {
            return;
        }
        tokio::time::sleep(delay).await;
        router.refresh_after_error(seen).await;
    }
}

/// One ProduceRequest to one leader.
async fn produce_to(
    shared: &Shared,
    address: String,
    batches: Vec<InFlight>,
) -> (String, Vec<InFlight>, Result<pb::ProduceResponse, ClientError>) {
    let config = &shared.config;
    let request = pb::ProduceRequest {
        acks: pb::Acks::from(config.acks).into(),
        timeout_ms: config.request_timeout.as_millis().min(u128::from(u32::MAX)) as u32,
        partitions: batches
            .iter()
            .map(|batch| pb::PartitionRecords {
                topic: batch.topic.to_string(),
                partition: batch.partition,
                records: batch.records.clone(),
            })
            .collect(),
    };
    let response = match shared.router.client(&address).await {
        Err(err) => Err(err),
        Ok(mut client) => match tokio::time::timeout(config.request_timeout, client.produce(request)).await {
            Err(_) => Err(ClientError::Timeout(config.request_timeout)),
            Ok(Err(status)) => Err(ClientError::from(status)),
            Ok(Ok(response)) => Ok(response.into_inner()),
        },
    };
    (address, batches, response)
}

/// Completes a batch: it leaves the in-flight set (letting the next batch
/// of its partition go), a failure fails the partition's unsent batches,
/// and its bytes are released.
fn finish(shared: &Shared, batch: InFlight, result: Result<i64, ClientError>) {
    let mut released = batch.records.len() - BATCH_HEADER_LEN;
    {
        let mut acc = shared.lock();
        if let Some(slot) =
            acc.topics.get_mut(&*batch.topic).and_then(|t| t.partitions.get_mut(batch.partition as usize))
        {
            slot.in_flight.retain(|(_, s)| !Arc::ptr_eq(s, &batch.state));
            if let Err(err) = &result {
                released += slot.fail_unsent(&batch.topic, batch.partition, err);
            }
        }
        if result.is_err() && acc.producer.is_some() {
            acc.producer_lost = true;
            if let Some(slot) =
                acc.topics.get_mut(&*batch.topic).and_then(|t| t.partitions.get_mut(batch.partition as usize))
            {
                slot.sequence_broken = true;
            }
        }
    }
    batch.state.complete(result);
    shared.buffered.fetch_sub(released, Ordering::AcqRel);
    shared.space_freed.notify_waiters();
    shared.wake_sender.notify_one();
}

/// The sequence `count` records after `sequence`, wrapping past i32::MAX
/// to 0 as Kafka's producers do.
fn next_sequence(sequence: i32, count: usize) -> i32 {
    let count = count as i32;
    if sequence > i32::MAX - count { count - (i32::MAX - sequence) - 1 } else { sequence + count }
}

/// A producer id and epoch from the cluster (any broker).
async fn init_producer_id(router: &Router) -> Result<ProducerIdentity, ClientError> {
    let response = router
        .any_broker(|mut client| async move { client.init_producer_id(pb::InitProducerIdRequest::default()).await })
        .await?;
    let epoch = i16::try_from(response.producer_epoch).map_err(|_| {
        ClientError::InvalidArgument(format!("the broker sent producer epoch {}", response.producer_epoch))
    })?;
    Ok(ProducerIdentity { id: response.producer_id, epoch })
}

/// After a batch failed for good: a new producer id, and every partition's
/// sequence from 0 under it. Retried until the cluster answers (nothing is
/// dispatched meanwhile).
async fn renew_producer_id(shared: &Shared) {
    let mut backoff = Backoff::default();
    loop {
        match init_producer_id(&shared.router).await {
            Ok(identity) => {
                let mut acc = shared.lock();
                acc.producer = Some(identity);
                acc.producer_lost = false;
                for slot in acc.topics.values_mut().flat_map(|t| t.partitions.iter_mut()) {
                    slot.next_sequence = 0;
                    slot.sequence_broken = false;
                }
                tracing::info!(producer_id = identity.id, "new producer id after a failed batch");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot get a new producer id; retrying");
                if shared.closed.load(Ordering::Acquire) && shared.lock().is_idle() {
                    return;
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
