//! What a processor sees while one input record (or one commit's flush)
//! goes through the topology: its task partition, the record's origin,
//! the task's stores, and the records to produce.

use std::collections::HashMap;
use std::sync::Arc;

use crate::store::{Origin, Store};

/// A record to produce once the current input record is processed.
pub(crate) struct Outgoing {
    pub(crate) topic: Arc<str>,
    /// `None`: Kafka's default partitioner on the key.
    pub(crate) partition: Option<u32>,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) timestamp_ms: i64,
    pub(crate) origin: Option<Origin>,
}

#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) late: u64,
    pub(crate) unreadable: u64,
    pub(crate) duplicates: u64,
    /// Windows purged from their store past retention.
    pub(crate) expired_windows: u64,
}

pub(crate) struct Ctx {
    /// The task: the partition of the input record (co-partitioned topics
    /// share it).
    pub(crate) partition: u32,
    pub(crate) origin: Option<Origin>,
    /// Records derived from the current input record so far that reached
    /// an aggregation or a repartition (their place, for the origin).
    derived: u64,
    pub(crate) stores: HashMap<(Arc<str>, u32), Store>,
    pub(crate) out: Vec<Outgoing>,
    pub(crate) counts: Counts,
}

impl Ctx {
    pub(crate) fn new() -> Ctx {
        Ctx {
            partition: 0,
            origin: None,
            derived: 0,
            stores: HashMap::new(),
            out: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Starts an input record of `partition` coming from `origin`.
    pub(crate) fn begin(&mut self, partition: u32, origin: Option<Origin>) {
        self.partition = partition;
        self.origin = origin;
        self.derived = 0;
    }

    /// The origin of the next derived record: the input's origin with its
    /// place among this input's derived records (20 bits per repartition
    /// hop; the origin of a repartitioned record already holds the place
    /// it had upstream).
    pub(crate) fn next_origin(&mut self) -> Option<Origin> {
        let origin = self.origin.as_ref()?;
        let place = self.derived;
        self.derived += 1;
        Some(Origin { stream: origin.stream.clone(), offset: origin.offset, seq: (origin.seq << 20) | place })
    }

    /// The current task's store `name` (empty if it was never restored).
    pub(crate) fn store(&mut self, name: &Arc<str>) -> &mut Store {
        self.stores.entry((name.clone(), self.partition)).or_default()
    }
}
