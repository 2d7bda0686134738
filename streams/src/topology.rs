//! The topology DSL: [`StreamsBuilder`] → [`KStream`] (map, filter,
//! flat_map, join, to) → [`KGroupedStream`] (count, reduce, aggregate,
//! windowed) → [`KTable`] (to_stream).
//!
//! Building wires closures, push-style: each operator hands its upstream a
//! sink that transforms a record and calls the next sink; a source's sink
//! becomes a `Processor` of raw input records, registered under its topic.
//! One processor instance serves every task: the task's state is found
//! through the [`Ctx`] (its partition picks the stores).
//!
//! A key-changing operator (`map`, `flat_map`, `group_by`) before a
//! grouping makes the grouping go through the repartition topic
//! `<application.id>-<store>-repartition`, so every record of one key
//! reaches the same task; the record's origin travels in a header.

use std::sync::{Arc, Mutex};

use kmon_client::ConsumerRecord;

use crate::context::{Ctx, Outgoing};
use crate::serde::{Serde, U64Serde};
use crate::store::Origin;
use crate::window::{TimeWindows, Windowed, WindowedSerde, window_key};

/// A record inside the topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    pub key: K,
    pub value: V,
    pub timestamp_ms: i64,
}

pub(crate) type Sink<K, V> = Box<dyn FnMut(Record<K, V>, &mut Ctx) + Send>;
pub(crate) type Processor = Box<dyn FnMut(&ConsumerRecord, &mut Ctx) + Send>;
/// Forwards a flushed store entry (key bytes, value bytes) downstream.
pub(crate) type Forward = Box<dyn FnMut(&[u8], &[u8], &mut Ctx) + Send>;
type Attach<K, V> = Box<dyn FnOnce(Sink<K, V>) + Send>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceKind {
    Stream,
    /// A table's topic: its records go into `store`.
    Table {
        store: Arc<str>,
    },
    /// An internal topic, with as many partitions as `upstream`.
    Repartition {
        upstream: Arc<str>,
    },
}

pub(crate) struct Source {
    pub(crate) topic: Arc<str>,
    pub(crate) kind: SourceKind,
    pub(crate) processors: Vec<Processor>,
}

pub(crate) struct StoreSpec {
    pub(crate) name: Arc<str>,
    /// The topic whose partitions are this store's tasks.
    pub(crate) task_topic: Arc<str>,
    /// `None` for a table store: restored from its own topic.
    pub(crate) changelog: Option<Arc<str>>,
    pub(crate) forward: Option<Forward>,
    /// A windowed store's windows: expired ones are purged at commit, and
    /// its changelog also deletes by age (`compact,delete`).
    pub(crate) windows: Option<TimeWindows>,
}

/// What [`StreamsBuilder`] builds; the runtime runs it.
pub(crate) struct Topology {
    pub(crate) application_id: String,
    pub(crate) sources: Vec<Source>,
    pub(crate) stores: Vec<StoreSpec>,
    /// (stream topic, table topic) pairs that must be co-partitioned.
    pub(crate) joins: Vec<(Arc<str>, Arc<str>)>,
    /// Mistakes found while building, reported when the application starts.
    pub(crate) errors: Vec<String>,
}

impl Topology {
    fn source_mut(&mut self, topic: &Arc<str>, kind: SourceKind) -> &mut Source {
        let index = match self.sources.iter().position(|s| s.topic == *topic) {
            Some(index) => {
                if self.sources[index].kind != kind {
                    self.errors.push(format!(
                        "topic {topic:?} is read both as {:?} and as {kind:?}",
                        self.sources[index].kind
                    ));
                }
                index
            }
            None => {
                self.sources.push(Source { topic: topic.clone(), kind, processors: Vec::new() });
                self.sources.len() - 1
            }
        };
        &mut self.sources[index]
    }

    /// Runs one input record through the processors of its topic.
    pub(crate) fn process(&mut self, record: &ConsumerRecord, ctx: &mut Ctx) {
        let Some(source) = self.sources.iter_mut().find(|s| *s.topic == *record.topic) else { return };
        let origin = match source.kind {
            SourceKind::Repartition { .. } => record
                .headers
                .iter()
                .find(|h| h.key == Origin::HEADER)
                .and_then(|h| Origin::from_header(std::str::from_utf8(h.value.as_deref()?).ok()?)),
            _ => Some(Origin {
                stream: format!("{}/{}", record.topic, record.partition).into(),
                offset: record.offset,
                seq: 0,
            }),
        };
        ctx.begin(record.partition, origin);
        for processor in &mut source.processors {
            processor(record, ctx);
        }
    }

    /// The commit's first half: every store entry changed since the last
    /// flush goes to its changelog partition and to the table's
    /// downstream (into `ctx.out`).
    pub(crate) fn flush(&mut self, ctx: &mut Ctx, now_ms: i64) {
        let mut keys: Vec<(Arc<str>, u32)> = ctx.stores.keys().cloned().collect();
        keys.sort();
        for (name, partition) in keys {
            let Some(spec) = self.stores.iter_mut().find(|s| s.name == name) else { continue };
            let Some(changelog) = spec.changelog.clone() else { continue };
            let dirty = ctx.stores.get_mut(&(name.clone(), partition)).map(|s| s.take_dirty()).unwrap_or_default();
            ctx.begin(partition, None);
            for (key, stored, value) in dirty {
                if let Some(forward) = spec.forward.as_mut() {
                    forward(&key, &value, ctx);
                }
                ctx.out.push(Outgoing {
                    topic: changelog.clone(),
                    partition: Some(partition),
                    key,
                    value: stored,
                    timestamp_ms: now_ms,
                    origin: None,
                });
            }
            if let (Some(windows), Some(store)) = (spec.windows, ctx.stores.get_mut(&(name.clone(), partition))) {
                ctx.counts.expired_windows += store.purge_expired(&windows) as u64;
            }
        }
    }

    fn add_store(&mut self, spec: StoreSpec) {
        if self.stores.iter().any(|s| s.name == spec.name) {
            self.errors.push(format!("two stores are named {:?}", spec.name));
        }
        self.stores.push(spec);
    }
}

/// Builds a topology for one application (`application.id`: the consumer
/// group and the prefix of its internal topics).
#[derive(Clone)]
pub struct StreamsBuilder {
    inner: Arc<Mutex<Topology>>,
}

impl StreamsBuilder {
    pub fn new(application_id: impl Into<String>) -> StreamsBuilder {
        let topology = Topology {
            application_id: application_id.into(),
            sources: Vec::new(),
            stores: Vec::new(),
            joins: Vec::new(),
            errors: Vec::new(),
        };
        StreamsBuilder { inner: Arc::new(Mutex::new(topology)) }
    }

    pub fn application_id(&self) -> String {
        self.lock().application_id.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Topology> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The records of `topic`. A record without a key reads as empty key
    /// bytes; a record either serde cannot read is dropped and counted.
    pub fn stream<K: Send + 'static, V: Send + 'static>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> KStream<K, V> {
        let topic: Arc<str> = topic.into();
        let attach =
            source_attach(self.clone(), topic.clone(), SourceKind::Stream, Arc::new(key_serde), Arc::new(value_serde));
        KStream { builder: self.clone(), topic, key_changed: false, attach }
    }

    /// `topic` (usually compacted) as a table: the latest value per key,
    /// kept in the store `<topic>-table` of each task, restored from the
    /// topic itself. Joined by a stream co-partitioned with it.
    pub fn table<K: Send + 'static, V: Send + 'static>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> KTable<K, V> {
        let topic: Arc<str> = topic.into();
        let store: Arc<str> = format!("{topic}-table").into();
        let mut inner = self.lock();
        inner.add_store(StoreSpec {
            name: store.clone(),
            task_topic: topic.clone(),
            changelog: None,
            forward: None,
            windows: None,
        });
        let table_store = store.clone();
        inner.source_mut(&topic, SourceKind::Table { store: store.clone() }).processors.push(Box::new(
            move |record: &ConsumerRecord, ctx: &mut Ctx| {
                let key = record.key.as_deref().unwrap_or_default().to_vec();
                ctx.store(&table_store).put_raw(key, record.value.to_vec());
            },
        ));
        drop(inner);
        KTable {
            builder: self.clone(),
            topic,
            kind: TableKind::Source { store, key_serde: Arc::new(key_serde), value_serde: Arc::new(value_serde) },
        }
    }

    pub(crate) fn take_topology(&self) -> Topology {
        let mut inner = self.lock();
        let application_id = inner.application_id.clone();
        std::mem::replace(
            &mut *inner,
            Topology { application_id, sources: Vec::new(), stores: Vec::new(), joins: Vec::new(), errors: Vec::new() },
        )
    }
}

/// A source's attach: deserializes raw records of `topic` and feeds the sink.
fn source_attach<K: Send + 'static, V: Send + 'static>(
    builder: StreamsBuilder,
    topic: Arc<str>,
    kind: SourceKind,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
) -> Attach<K, V> {
    Box::new(move |mut sink: Sink<K, V>| {
        builder.lock().source_mut(&topic, kind).processors.push(Box::new(move |record, ctx| {
            let key = key_serde.deserialize(record.key.as_deref().unwrap_or_default());
            let value = value_serde.deserialize(&record.value);
            match (key, value) {
                (Ok(key), Ok(value)) => sink(Record { key, value, timestamp_ms: record.timestamp_ms }, ctx),
                (Err(err), _) | (_, Err(err)) => {
                    ctx.counts.unreadable += 1;
                    tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, %err, "dropping an unreadable record");
                }
            }
        }));
    })
}

/// A stream of records of one sub-topology.
pub struct KStream<K, V> {
    builder: StreamsBuilder,
    /// The topic whose partitions are the tasks of this sub-topology.
    topic: Arc<str>,
    /// A key-changing operator ran since the source: grouping repartitions.
    key_changed: bool,
    attach: Attach<K, V>,
}

impl<K: Send + 'static, V: Send + 'static> KStream<K, V> {
    fn then<K2: Send + 'static, V2: Send + 'static>(
        self,
        key_changed: bool,
        mut step: impl FnMut(Record<K, V>, &mut dyn FnMut(Record<K2, V2>, &mut Ctx), &mut Ctx) + Send + 'static,
    ) -> KStream<K2, V2> {
        let attach = self.attach;
        KStream {
            builder: self.builder,
            topic: self.topic,
            key_changed: self.key_changed || key_changed,
            attach: Box::new(move |mut sink: Sink<K2, V2>| {
                attach(Box::new(move |record, ctx| step(record, &mut sink, ctx)))
            }),
        }
    }

    /// A new key and value per record (the key changes: a grouping after
    /// it repartitions).
    pub fn map<K2: Send + 'static, V2: Send + 'static>(
        self,
        mut f: impl FnMut(K, V) -> (K2, V2) + Send + 'static,
    ) -> KStream<K2, V2> {
        self.then(true, move |r, next, ctx| {
            let (key, value) = f(r.key, r.value);
            next(Record { key, value, timestamp_ms: r.timestamp_ms }, ctx)
        })
    }

    pub fn map_values<V2: Send + 'static>(self, mut f: impl FnMut(V) -> V2 + Send + 'static) -> KStream<K, V2> {
        self.then(false, move |r, next, ctx| {
            next(Record { key: r.key, value: f(r.value), timestamp_ms: r.timestamp_ms }, ctx)
        })
    }

    pub fn filter(self, mut keep: impl FnMut(&K, &V) -> bool + Send + 'static) -> KStream<K, V> {
        self.then(false, move |r, next, ctx| {
            if keep(&r.key, &r.value) {
                next(r, ctx)
            }
        })
    }

    /// Zero or more records per record (the key may change).
    pub fn flat_map<K2: Send + 'static, V2: Send + 'static, I>(
        self,
        mut f: impl FnMut(K, V) -> I + Send + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        self.then(true, move |r, next, ctx| {
            for (key, value) in f(r.key, r.value) {
                next(Record { key, value, timestamp_ms: r.timestamp_ms }, ctx)
            }
        })
    }

    /// Zero or more values per record, keeping the key.
    pub fn flat_map_values<V2: Send + 'static, I>(self, mut f: impl FnMut(V) -> I + Send + 'static) -> KStream<K, V2>
    where
        K: Clone,
        I: IntoIterator<Item = V2>,
    {
        self.then(false, move |r, next, ctx| {
            for value in f(r.value) {
                next(Record { key: r.key.clone(), value, timestamp_ms: r.timestamp_ms }, ctx)
            }
        })
    }

    /// Writes every record to `topic` (partitioned by key, Kafka's default
    /// partitioner). At least once: see the crate docs.
    pub fn to(self, topic: &str, key_serde: impl Serde<K>, value_serde: impl Serde<V>) {
        let topic: Arc<str> = topic.into();
        (self.attach)(Box::new(move |r, ctx| {
            ctx.out.push(Outgoing {
                topic: topic.clone(),
                partition: None,
                key: key_serde.serialize(&r.key),
                value: value_serde.serialize(&r.value),
                timestamp_ms: r.timestamp_ms,
                origin: None,
            })
        }));
    }

    /// Calls `f` on every record (tests, logging).
    pub fn for_each(self, mut f: impl FnMut(&Record<K, V>) + Send + 'static) {
        (self.attach)(Box::new(move |r, _| f(&r)));
    }

    /// Groups by the current key (repartitioning if a key-changing
    /// operator ran before).
    pub fn group_by_key(self, key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> KGroupedStream<K, V> {
        KGroupedStream { stream: self, key_serde: Arc::new(key_serde), value_serde: Arc::new(value_serde) }
    }

    /// Groups by a new key (always repartitions).
    pub fn group_by<K2: Send + 'static>(
        self,
        mut new_key: impl FnMut(&K, &V) -> K2 + Send + 'static,
        key_serde: impl Serde<K2>,
        value_serde: impl Serde<V>,
    ) -> KGroupedStream<K2, V> {
        self.map(move |k, v| (new_key(&k, &v), v)).group_by_key(key_serde, value_serde)
    }

    /// Inner join with a table: each record whose key is in `table` (in
    /// the same task: the topics must have as many partitions) becomes
    /// `joiner(value, table value)`; others are dropped.
    pub fn join<VT: Send + 'static, VR: Send + 'static>(
        self,
        table: &KTable<K, VT>,
        mut joiner: impl FnMut(&V, VT) -> VR + Send + 'static,
    ) -> KStream<K, VR> {
        self.left_join(table, move |v, tv| tv.map(|tv| joiner(v, tv))).filter_some()
    }

    /// Like [`KStream::join`], keeping the records with no table value
    /// (`None`).
    pub fn left_join<VT: Send + 'static, VR: Send + 'static>(
        self,
        table: &KTable<K, VT>,
        mut joiner: impl FnMut(&V, Option<VT>) -> VR + Send + 'static,
    ) -> KStream<K, VR> {
        let TableKind::Source { store, key_serde, value_serde } = &table.kind else {
            self.builder.lock().errors.push(format!(
                "joins read tables made by StreamsBuilder::table; {:?}'s table is an aggregation's",
                table.topic
            ));
            return self.then(false, |_, _, _| {});
        };
        {
            let mut inner = self.builder.lock();
            if self.key_changed {
                inner.errors.push(format!(
                    "a join with table {:?} after a key-changing operator needs a repartition, which is not supported: join first",
                    table.topic
                ));
            }
            inner.joins.push((self.topic.clone(), table.topic.clone()));
        }
        let (store, key_serde, value_serde) = (store.clone(), key_serde.clone(), value_serde.clone());
        self.then(false, move |r, next, ctx| {
            let key = key_serde.serialize(&r.key);
            let found = ctx.store(&store).get(&key).map(|bytes| value_serde.deserialize(bytes));
            let table_value = match found {
                Some(Ok(value)) => Some(value),
                Some(Err(err)) => {
                    ctx.counts.unreadable += 1;
                    tracing::warn!(%err, "unreadable table value: joined as missing");
                    None
                }
                None => None,
            };
            let value = joiner(&r.value, table_value);
            next(Record { key: r.key, value, timestamp_ms: r.timestamp_ms }, ctx)
        })
    }

    /// Routes every record through `<application.id>-<name>-repartition`,
    /// partitioned by its key; the returned stream reads that topic.
    fn repartition(self, name: &str, key_serde: Arc<dyn Serde<K>>, value_serde: Arc<dyn Serde<V>>) -> KStream<K, V> {
        let application_id = self.builder.application_id();
        let topic: Arc<str> = format!("{application_id}-{name}-repartition").into();
        let sink_topic = topic.clone();
        let (sink_keys, sink_values) = (key_serde.clone(), value_serde.clone());
        (self.attach)(Box::new(move |r, ctx| {
            let origin = ctx.next_origin();
            ctx.out.push(Outgoing {
                topic: sink_topic.clone(),
                partition: None,
                key: sink_keys.serialize(&r.key),
                value: sink_values.serialize(&r.value),
                timestamp_ms: r.timestamp_ms,
                origin,
            })
        }));
        let kind = SourceKind::Repartition { upstream: self.topic.clone() };
        let attach = source_attach(self.builder.clone(), topic.clone(), kind, key_serde, value_serde);
        KStream { builder: self.builder, topic, key_changed: false, attach }
    }
}

impl<K: Send + 'static, V: Send + 'static> KStream<K, Option<V>> {
    fn filter_some(self) -> KStream<K, V> {
        self.then(false, move |r, next, ctx| {
            if let Some(value) = r.value {
                next(Record { key: r.key, value, timestamp_ms: r.timestamp_ms }, ctx)
            }
        })
    }
}

/// A stream grouped by key, to aggregate.
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
}

impl<K: Send + 'static, V: Clone + Send + 'static> KGroupedStream<K, V> {
    /// Records per key, in the store `store`.
    pub fn count(self, store: &str) -> KTable<K, u64> {
        self.aggregate(store, || 0, |_, _, count| count + 1, U64Serde)
    }

    /// Combines the values of each key (the first value starts).
    pub fn reduce(self, store: &str, mut combine: impl FnMut(V, V) -> V + Send + 'static) -> KTable<K, V> {
        let value_serde = self.value_serde.clone();
        self.aggregate_with(store, None, value_serde, move |_, value, current: Option<V>| match current {
            Some(current) => combine(current, value),
            None => value,
        })
    }

    /// Folds the values of each key into an aggregate starting at `init()`.
    pub fn aggregate<A: Send + 'static>(
        self,
        store: &str,
        init: impl Fn() -> A + Send + 'static,
        mut add: impl FnMut(&K, V, A) -> A + Send + 'static,
        aggregate_serde: impl Serde<A>,
    ) -> KTable<K, A> {
        self.aggregate_with(store, None, Arc::new(aggregate_serde), move |key, value, current| {
            add(key, value, current.unwrap_or_else(&init))
        })
    }

    /// Aggregates per key and time window.
    pub fn windowed_by(self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream { grouped: self, windows }
    }

    /// The one aggregation node: dedupe by origin, update, mark dirty.
    /// `windows`: the table's keys are then windowed keys.
    fn aggregate_with<A: Send + 'static, KT: Send + 'static>(
        self,
        store: &str,
        windows: Option<TimeWindows>,
        aggregate_serde: Arc<dyn Serde<A>>,
        mut update: impl FnMut(&K, V, Option<A>) -> A + Send + 'static,
    ) -> KTable<KT, A>
    where
        V: Clone,
        WindowKeys<K>: TableKeys<KT>,
    {
        let KGroupedStream { stream, key_serde, value_serde } = self;
        let stream =
            if stream.key_changed { stream.repartition(store, key_serde.clone(), value_serde.clone()) } else { stream };
        let builder = stream.builder.clone();
        let store_name: Arc<str> = store.into();
        let application_id = builder.application_id();
        if let Some(windows) = windows
            && let Err(err) = windows.validate()
        {
            builder.lock().errors.push(format!("store {store:?}: {err}"));
        }

        let downstream: Arc<Mutex<Option<Sink<KT, A>>>> = Arc::new(Mutex::new(None));
        let table_keys: Arc<dyn Serde<KT>> = WindowKeys { inner: key_serde.clone(), windows }.serde();
        let forward = {
            let (downstream, table_keys, aggregate_serde) =
                (downstream.clone(), table_keys.clone(), aggregate_serde.clone());
            Box::new(move |key: &[u8], value: &[u8], ctx: &mut Ctx| {
                let mut slot = downstream.lock().unwrap_or_else(|e| e.into_inner());
                let Some(sink) = slot.as_mut() else { return };
                match (table_keys.deserialize(key), aggregate_serde.deserialize(value)) {
                    (Ok(key), Ok(value)) => sink(Record { key, value, timestamp_ms: now_ms() }, ctx),
                    (Err(err), _) | (_, Err(err)) => tracing::warn!(%err, "unreadable stored entry not forwarded"),
                }
            }) as Forward
        };
        builder.lock().add_store(StoreSpec {
            name: store_name.clone(),
            task_topic: stream.topic.clone(),
            changelog: Some(format!("{application_id}-{store}-changelog").into()),
            forward: Some(forward),
            windows,
        });

        let task_topic = stream.topic.clone();
        let node_store = store_name.clone();
        (stream.attach)(Box::new(move |r: Record<K, V>, ctx: &mut Ctx| {
            let origin = ctx.next_origin();
            let key = key_serde.serialize(&r.key);
            let targets: Vec<Vec<u8>> = match windows {
                None => vec![key],
                Some(windows) => {
                    let store = ctx.store(&node_store);
                    store.stream_time = store.stream_time.max(r.timestamp_ms);
                    let stream_time = store.stream_time;
                    let (open, closed): (Vec<i64>, Vec<i64>) = windows
                        .starts_for(r.timestamp_ms)
                        .into_iter()
                        .partition(|&s| !windows.is_closed(s, stream_time));
                    ctx.counts.late += closed.len() as u64;
                    open.into_iter().map(|start| window_key(&key, start)).collect()
                }
            };
            for target in targets {
                let store = ctx.store(&node_store);
                if store.already_applied(&target, origin.as_ref()) {
                    store.mark_dirty(&target);
                    ctx.counts.duplicates += 1;
                    continue;
                }
                let current = match store.get(&target).map(|bytes| aggregate_serde.deserialize(bytes)) {
                    Some(Ok(current)) => Some(current),
                    Some(Err(err)) => {
                        tracing::warn!(%err, "unreadable stored aggregate: starting over");
                        None
                    }
                    None => None,
                };
                let next = update(&r.key, r.value.clone(), current);
                let bytes = aggregate_serde.serialize(&next);
                ctx.store(&node_store).put(target, bytes, origin.as_ref());
            }
        }));
        KTable { builder, topic: task_topic, kind: TableKind::Aggregated { downstream } }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The keys of an aggregation's table: plain keys, or windowed keys.
pub(crate) struct WindowKeys<K> {
    inner: Arc<dyn Serde<K>>,
    windows: Option<TimeWindows>,
}

pub(crate) trait TableKeys<KT> {
    fn serde(self) -> Arc<dyn Serde<KT>>;
}

impl<K: Send + 'static> TableKeys<K> for WindowKeys<K> {
    fn serde(self) -> Arc<dyn Serde<K>> {
        self.inner
    }
}

impl<K: Send + 'static> TableKeys<Windowed<K>> for WindowKeys<K> {
    fn serde(self) -> Arc<dyn Serde<Windowed<K>>> {
        let size_ms = self.windows.map_or(0, |w| w.size_ms);
        Arc::new(WindowedSerde { inner: self.inner, size_ms })
    }
}

/// A grouped stream cut into time windows.
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeWindows,
}

impl<K: Send + 'static, V: Clone + Send + 'static> TimeWindowedKStream<K, V> {
    /// Records per key and window.
    pub fn count(self, store: &str) -> KTable<Windowed<K>, u64> {
        self.aggregate(store, || 0, |_, _, count| count + 1, U64Serde)
    }

    /// Folds the values of each key and window, from `init()`.
    pub fn aggregate<A: Send + 'static>(
        self,
        store: &str,
        init: impl Fn() -> A + Send + 'static,
        mut add: impl FnMut(&K, V, A) -> A + Send + 'static,
        aggregate_serde: impl Serde<A>,
    ) -> KTable<Windowed<K>, A> {
        let windows = Some(self.windows);
        self.grouped.aggregate_with(store, windows, Arc::new(aggregate_serde), move |key, value, current| {
            add(key, value, current.unwrap_or_else(&init))
        })
    }
}

/// A table: an aggregation's result, or a topic read as a table.
pub struct KTable<K, V> {
    builder: StreamsBuilder,
    /// The topic whose partitions are this table's tasks.
    topic: Arc<str>,
    kind: TableKind<K, V>,
}

enum TableKind<K, V> {
    /// `StreamsBuilder::table`: its store holds the topic's raw records.
    Source { store: Arc<str>, key_serde: Arc<dyn Serde<K>>, value_serde: Arc<dyn Serde<V>> },
    /// An aggregation's: its changed entries go to `downstream` at each
    /// commit.
    Aggregated { downstream: Arc<Mutex<Option<Sink<K, V>>>> },
}

impl<K: Send + 'static, V: Send + 'static> KTable<K, V> {
    /// The table's changes as a stream. For an aggregation: each key
    /// changed since the last commit, with its value then, once per commit
    /// (Kafka Streams with its record cache on).
    pub fn to_stream(self) -> KStream<K, V> {
        let attach: Attach<K, V> = match self.kind {
            TableKind::Source { store, key_serde, value_serde } => source_attach(
                self.builder.clone(),
                self.topic.clone(),
                SourceKind::Table { store },
                key_serde,
                value_serde,
            ),
            TableKind::Aggregated { downstream } => Box::new(move |sink| {
                *downstream.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
            }),
        };
        KStream { builder: self.builder, topic: self.topic, key_changed: false, attach }
    }
}

#[cfg(test)]
mod tests {
    //! The operators driven without brokers: records in through
    //! `Topology::process`, the commit's flush through `Topology::flush`,
    //! repartition records fed back as that topic's records.

    use std::collections::BTreeMap;
    use std::time::Duration;

    use bytes::Bytes;
    use kmon_client::batch::Header;

    use super::*;
    use crate::apps;
    use crate::serde::StringSerde;

    struct Driver {
        topology: Topology,
        ctx: Ctx,
        next_offset: BTreeMap<(String, u32), i64>,
        /// Latest value per (topic, key) written to non-internal topics.
        outputs: BTreeMap<(String, Vec<u8>), Vec<u8>>,
        changelog: Vec<Outgoing>,
    }

    impl Driver {
        fn new(builder: &StreamsBuilder) -> Driver {
            let topology = builder.take_topology();
            assert!(topology.errors.is_empty(), "{:?}", topology.errors);
            Driver {
                topology,
                ctx: Ctx::new(),
                next_offset: BTreeMap::new(),
                outputs: BTreeMap::new(),
                changelog: Vec::new(),
            }
        }

        fn record(
            &mut self,
            topic: &str,
            partition: u32,
            ts: i64,
            key: &str,
            value: &[u8],
            origin: Option<String>,
        ) -> ConsumerRecord {
            let offset = self.next_offset.entry((topic.into(), partition)).or_default();
            *offset += 1;
            ConsumerRecord {
                topic: topic.into(),
                partition,
                offset: *offset - 1,
                timestamp_ms: ts,
                key: Some(Bytes::copy_from_slice(key.as_bytes())),
                value: Bytes::copy_from_slice(value),
                headers: origin
                    .map(|o| vec![Header { key: Origin::HEADER.into(), value: Some(o.into()) }])
                    .unwrap_or_default(),
            }
        }

        /// Processes `record` and, transitively, what it wrote to
        /// repartition topics.
        fn process(&mut self, record: ConsumerRecord) {
            // In order, as a partition delivers them.
            let mut queue = std::collections::VecDeque::from([record]);
            while let Some(record) = queue.pop_front() {
                self.topology.process(&record, &mut self.ctx);
                queue.extend(self.route_out());
            }
        }

        fn send(&mut self, topic: &str, partition: u32, ts: i64, key: &str, value: &str) {
            let record = self.record(topic, partition, ts, key, value.as_bytes(), None);
            self.process(record);
        }

        /// Outputs recorded; repartition records returned to be processed.
        fn route_out(&mut self) -> Vec<ConsumerRecord> {
            let mut fed = Vec::new();
            for out in std::mem::take(&mut self.ctx.out) {
                if out.topic.ends_with("-repartition") {
                    // One partition: the driver runs one task per topic.
                    let key = String::from_utf8(out.key.clone()).unwrap();
                    let origin = out.origin.as_ref().map(Origin::to_header);
                    fed.push(self.record(&out.topic, 0, out.timestamp_ms, &key, &out.value, origin));
                } else if out.topic.ends_with("-changelog") {
                    self.changelog.push(out);
                } else {
                    self.outputs.insert((out.topic.to_string(), out.key), out.value);
                }
            }
            fed
        }

        fn commit(&mut self) {
            self.topology.flush(&mut self.ctx, 0);
            let fed = self.route_out();
            for record in fed {
                self.process(record);
            }
        }

        fn output_u64(&self, topic: &str, key: &str) -> Option<u64> {
            self.outputs
                .get(&(topic.into(), key.as_bytes().to_vec()))
                .map(|v| u64::from_be_bytes(v[..].try_into().unwrap()))
        }
    }

    #[test]
    fn word_count_repartitions_and_counts() {
        let builder = StreamsBuilder::new("app");
        apps::word_count(&builder, "lines", "counts-out");
        let mut driver = Driver::new(&builder);
        driver.send("lines", 0, 1, "", "the cat, the hat");
        driver.send("lines", 1, 2, "", "The end");
        driver.commit();
        assert_eq!(driver.output_u64("counts-out", "the"), Some(3));
        assert_eq!(driver.output_u64("counts-out", "hat"), Some(1));
        assert_eq!(driver.output_u64("counts-out", "end"), Some(1));
        assert!(driver.changelog.iter().all(|c| &*c.topic == "app-counts-changelog" && c.partition == Some(0)));
        assert_eq!(driver.ctx.counts.duplicates, 0);
    }

    #[test]
    fn a_replayed_input_record_is_not_counted_twice() {
        let builder = StreamsBuilder::new("app");
        apps::word_count(&builder, "lines", "out");
        let mut driver = Driver::new(&builder);
        let first = driver.record("lines", 0, 1, "", b"a b a", None);
        driver.process(first.clone());
        driver.commit();
        assert_eq!(driver.output_u64("out", "a"), Some(2));
        // As after a crash before the offset commit: the same input record
        // again, its repartition records written a second time.
        driver.outputs.clear();
        driver.process(first);
        let second = driver.record("lines", 0, 2, "", b"a", None);
        driver.process(second);
        driver.commit();
        assert_eq!(driver.output_u64("out", "a"), Some(3), "the replay was skipped, the new record counted");
        assert_eq!(driver.output_u64("out", "b"), Some(1), "a skipped key is forwarded again");
        assert_eq!(driver.ctx.counts.duplicates, 3);
    }

    #[test]
    fn state_restored_from_the_changelog_carries_on() {
        let builder = StreamsBuilder::new("app");
        apps::word_count(&builder, "lines", "out");
        let mut driver = Driver::new(&builder);
        let replayed = driver.record("lines", 0, 1, "", b"x y x", None);
        driver.process(replayed.clone());
        driver.commit();
        // A new instance: stores restored from the changelog records only.
        let mut store = crate::store::Store::new();
        for record in &driver.changelog {
            store.restore(record.key.clone(), &record.value).unwrap();
        }
        driver.ctx.stores.clear();
        driver.ctx.stores.insert(("counts".into(), 0), store);
        driver.outputs.clear();
        driver.process(replayed);
        let next = driver.record("lines", 0, 2, "", b"x", None);
        driver.process(next);
        driver.commit();
        assert_eq!(driver.output_u64("out", "x"), Some(3));
        assert_eq!(driver.output_u64("out", "y"), Some(1));
    }

    #[test]
    fn tumbling_windows_with_grace_drop_late_records() {
        let builder = StreamsBuilder::new("app");
        let s = Duration::from_secs(1);
        apps::windowed_sum(&builder, "in", "out", TimeWindows::tumbling(10 * s).grace(2 * s));
        let mut driver = Driver::new(&builder);
        for (ts, value) in [(1_000, "1"), (5_000, "2"), (11_000, "4"), (3_000, "8"), (12_000, "16"), (4_000, "32")] {
            driver.send("in", 0, ts, "k", value);
        }
        driver.commit();
        assert_eq!(driver.output_u64("out", "k@0"), Some(1 + 2 + 8), "3000 came within the grace, 4000 after it");
        assert_eq!(driver.output_u64("out", "k@10000"), Some(4 + 16));
        assert_eq!(driver.ctx.counts.late, 1);
    }

    #[test]
    fn windows_past_retention_are_purged_once_their_last_update_is_flushed() {
        let builder = StreamsBuilder::new("app");
        let s = Duration::from_secs(1);
        builder
            .stream("in", StringSerde, StringSerde)
            .map_values(|v: String| v.parse::<u64>().unwrap())
            .group_by_key(StringSerde, U64Serde)
            .windowed_by(TimeWindows::tumbling(10 * s).retention(30 * s))
            .aggregate("sums", || 0u64, |_, v, sum| sum + v, U64Serde)
            .to_stream()
            .map(|w, sum| (format!("{}@{}", w.key, w.start_ms), sum))
            .to("out", StringSerde, U64Serde);
        let mut driver = Driver::new(&builder);
        let stored = |d: &Driver| d.ctx.stores.get(&(Arc::from("sums"), 0)).map_or(0, |s| s.len());
        driver.send("in", 0, 1_000, "k", "1");
        driver.send("in", 0, 15_000, "k", "2");
        driver.commit();
        assert_eq!(stored(&driver), 2);
        // Stream time 35 s: the window at 0 s is past 0 + 30 s, the one at
        // 10 s is not. The update at 35 s and the 0 s window's last value
        // are flushed first.
        driver.send("in", 0, 35_000, "k", "4");
        driver.send("in", 0, 9_000, "k", "100");
        driver.commit();
        assert_eq!(stored(&driver), 2, "windows at 10 s and 30 s");
        assert_eq!(driver.ctx.counts.expired_windows, 1);
        assert_eq!(driver.ctx.counts.late, 1, "the record for the closed 0 s window");
        assert_eq!(driver.output_u64("out", "k@0"), Some(1));
        assert_eq!(driver.output_u64("out", "k@30000"), Some(4));
        // A record for the purged window does not bring it back.
        driver.send("in", 0, 2_000, "k", "8");
        driver.commit();
        assert_eq!((stored(&driver), driver.ctx.counts.late), (2, 2));
        assert_eq!(driver.output_u64("out", "k@0"), Some(1));
    }

    #[test]
    fn hopping_windows_count_a_record_in_each_window() {
        let builder = StreamsBuilder::new("app");
        let s = Duration::from_secs(1);
        apps::windowed_sum(&builder, "in", "out", TimeWindows::hopping(10 * s, 5 * s));
        let mut driver = Driver::new(&builder);
        driver.send("in", 0, 7_000, "k", "1");
        driver.send("in", 0, 12_000, "k", "10");
        driver.commit();
        assert_eq!(driver.output_u64("out", "k@0"), Some(1));
        assert_eq!(driver.output_u64("out", "k@5000"), Some(11));
        assert_eq!(driver.output_u64("out", "k@10000"), Some(10));
        assert_eq!(driver.ctx.counts.late, 0);
    }

    #[test]
    fn a_stream_joins_the_latest_table_value() {
        let builder = StreamsBuilder::new("app");
        apps::enrich(&builder, "clicks", "users", "enriched");
        let mut driver = Driver::new(&builder);
        driver.send("users", 0, 0, "u1", "alice");
        driver.send("clicks", 0, 1, "u1", "home");
        driver.send("clicks", 0, 2, "u2", "cart");
        let enriched = |d: &Driver, key: &str| d.outputs.get(&("enriched".into(), key.as_bytes().to_vec())).cloned();
        assert_eq!(enriched(&driver, "u1").as_deref(), Some(&b"home|alice"[..]));
        assert_eq!(enriched(&driver, "u2").as_deref(), Some(&b"cart|unknown"[..]));
        driver.send("users", 0, 3, "u1", "alice2");
        driver.send("clicks", 0, 4, "u1", "buy");
        assert_eq!(enriched(&driver, "u1").as_deref(), Some(&b"buy|alice2"[..]));
    }

    #[test]
    fn map_filter_and_reduce_compose() {
        let builder = StreamsBuilder::new("app");
        builder
            .stream("in", StringSerde, StringSerde)
            .filter(|_, v: &String| !v.is_empty())
            .map_values(|v: String| v.to_uppercase())
            .group_by_key(StringSerde, StringSerde)
            .reduce("joined", |a, b| format!("{a}+{b}"))
            .to_stream()
            .to("out", StringSerde, StringSerde);
        let mut driver = Driver::new(&builder);
        for value in ["a", "", "b"] {
            driver.send("in", 0, 0, "k", value);
        }
        driver.commit();
        assert_eq!(driver.outputs.get(&("out".into(), b"k".to_vec())).map(|v| &v[..]), Some(&b"A+B"[..]));
        assert!(driver.outputs.keys().all(|(topic, _)| topic == "out"), "no repartition: the key did not change");
    }

    #[test]
    fn topology_mistakes_are_reported() {
        let builder = StreamsBuilder::new("app");
        let table = builder.table("t", StringSerde, StringSerde);
        builder
            .stream("s", StringSerde, StringSerde)
            .map(|k, v| (v, k))
            .join(&table, |a: &String, b: String| format!("{a}{b}"))
            .to("o", StringSerde, StringSerde);
        builder.stream("t", StringSerde, StringSerde).to("o2", StringSerde, StringSerde);
        let errors = builder.take_topology().errors.join("; ");
        assert!(errors.contains("key-changing"), "{errors}");
        assert!(errors.contains("read both as"), "{errors}");
    }
}
