//! Offset translation: MM2's offset-sync and checkpoint records (their
//! binary shapes, so MM2 tooling such as `RemoteClusterUtils` reads them)
//! and the store that maps a source offset to its copy's offset. Pure.
//!
//! The mirror writes an offset sync `(upstream, downstream)` for a
//! partition whenever `downstream - upstream` changes (its first record,
//! a gap in the source such as compaction left, the first record after a
//! restart that copies a tail again). Between two syncs every copied
//! record has the same difference, so any source offset up to what is
//! copied translates exactly: `downstream + (offset - upstream)` of the
//! last sync at or before it.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut};
use kmon_client::TopicPartition;

use crate::error::MirrorError;

/// One offset sync (MM2's `OffsetSync`): key `topic` STRING, `partition`
/// INT32; value `upstreamOffset` INT64, `offset` INT64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetSync {
    pub partition: TopicPartition,
    pub upstream: i64,
    pub downstream: i64,
}

/// One checkpoint (MM2's `Checkpoint`, value version 0): key `group`
/// STRING, `topic` STRING (the target's name), `partition` INT32; value
/// `version` INT16, `upstreamOffset` INT64, `offset` INT64, `metadata`
/// STRING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub group: String,
    pub partition: TopicPartition,
    pub upstream: i64,
    pub downstream: i64,
    pub metadata: String,
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    // Kafka's STRING: INT16 length; names here are far below 32 KiB.
    buf.put_i16(s.len().min(i16::MAX as usize) as i16);
    buf.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn get_string(buf: &mut &[u8], what: &str) -> Result<String, MirrorError> {
    let corrupt = || MirrorError::CorruptRecord(format!("{what}: truncated string"));
    if buf.remaining() < 2 {
        return Err(corrupt());
    }
    let len = buf.get_i16();
    let len = usize::try_from(len).map_err(|_| corrupt())?;
    if buf.remaining() < len {
        return Err(corrupt());
    }
    let text = String::from_utf8(buf[..len].to_vec()).map_err(|_| corrupt())?;
    buf.advance(len);
    Ok(text)
}

fn get_i64(buf: &mut &[u8], what: &str) -> Result<i64, MirrorError> {
    if buf.remaining() < 8 {
        return Err(MirrorError::CorruptRecord(format!("{what}: truncated INT64")));
    }
    Ok(buf.get_i64())
}

fn get_partition(buf: &mut &[u8], what: &str) -> Result<u32, MirrorError> {
    if buf.remaining() < 4 {
        return Err(MirrorError::CorruptRecord(format!("{what}: truncated INT32")));
    }
    u32::try_from(buf.get_i32()).map_err(|_| MirrorError::CorruptRecord(format!("{what}: negative partition")))
}

impl OffsetSync {
    pub fn key(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        put_string(&mut buf, &self.partition.topic);
        buf.put_i32(self.partition.partition as i32);
        buf
    }

    pub fn value(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16);
        buf.put_i64(self.upstream);
        buf.put_i64(self.downstream);
        buf
    }

    pub fn decode(mut key: &[u8], mut value: &[u8]) -> Result<Self, MirrorError> {
        let topic = get_string(&mut key, "offset sync key")?;
        let partition = get_partition(&mut key, "offset sync key")?;
        Ok(OffsetSync {
            partition: TopicPartition::new(topic, partition),
            upstream: get_i64(&mut value, "offset sync value")?,
            downstream: get_i64(&mut value, "offset sync value")?,
        })
    }
}

impl Checkpoint {
    pub const VERSION: i16 = 0;

    pub fn key(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        put_string(&mut buf, &self.group);
        put_string(&mut buf, &self.partition.topic);
        buf.put_i32(self.partition.partition as i32);
        buf
    }

    pub fn value(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(20 + self.metadata.len());
        buf.put_i16(Self::VERSION);
        buf.put_i64(self.upstream);
        buf.put_i64(self.downstream);
        put_string(&mut buf, &self.metadata);
        buf
    }

    pub fn decode(mut key: &[u8], mut value: &[u8]) -> Result<Self, MirrorError> {
        let group = get_string(&mut key, "checkpoint key")?;
        let topic = get_string(&mut key, "checkpoint key")?;
        let partition = get_partition(&mut key, "checkpoint key")?;
        if value.remaining() < 2 {
            return Err(MirrorError::CorruptRecord("checkpoint value: no version".into()));
        }
        let version = value.get_i16();
        if version != Self::VERSION {
            return Err(MirrorError::CorruptRecord(format!("checkpoint value version {version} (0 is known)")));
        }
        Ok(Checkpoint {
            group,
            partition: TopicPartition::new(topic, partition),
            upstream: get_i64(&mut value, "checkpoint value")?,
            downstream: get_i64(&mut value, "checkpoint value")?,
            metadata: get_string(&mut value, "checkpoint value")?,
        })
    }
}

#[derive(Debug, Default)]
struct PartitionSyncs {
    /// (upstream, downstream), ascending by upstream.
    syncs: Vec<(i64, i64)>,
    /// Next source offset after the last record known copied.
    copied_upto: Option<i64>,
}

/// Offset syncs of every mirrored partition, keyed by the source's name.
#[derive(Debug, Default)]
pub struct OffsetSyncStore {
    partitions: BTreeMap<TopicPartition, PartitionSyncs>,
}

impl OffsetSyncStore {
    /// Records a sync. Syncs at or after its upstream offset are dropped:
    /// they described a copy a restarted mirror is now replacing.
    pub fn apply(&mut self, sync: &OffsetSync) {
        let entry = self.partitions.entry(sync.partition.clone()).or_default();
        entry.syncs.retain(|&(upstream, _)| upstream < sync.upstream);
        entry.syncs.push((sync.upstream, sync.downstream));
    }

    /// `downstream - upstream` of the partition's last sync.
    pub fn last_delta(&self, partition: &TopicPartition) -> Option<i64> {
        self.partitions.get(partition)?.syncs.last().map(|&(u, d)| d - u)
    }

    /// Notes that every source record before `upto` is copied.
    pub fn set_copied_upto(&mut self, partition: &TopicPartition, upto: i64) {
        self.partitions.entry(partition.clone()).or_default().copied_upto = Some(upto);
    }

    /// The target offset of source offset `offset` (a group's committed
    /// offset: the next record to read), or `None` when it is not copied
    /// yet or is older than the first sync.
    pub fn translate(&self, partition: &TopicPartition, offset: i64) -> Option<i64> {
        let entry = self.partitions.get(partition)?;
        if offset > entry.copied_upto? {
            return None;
        }
        let at = entry.syncs.partition_point(|&(upstream, _)| upstream <= offset);
        let (upstream, downstream) = *entry.syncs.get(at.checked_sub(1)?)?;
        Some(downstream + (offset - upstream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("orders", 2)
    }

    fn sync(upstream: i64, downstream: i64) -> OffsetSync {
        OffsetSync { partition: tp(), upstream, downstream }
    }

    #[test]
    fn records_round_trip_in_mm2_shapes() {
        let s = sync(7, 3);
        // STRING "orders" = INT16 6 + bytes, then INT32 2.
        assert_eq!(s.key(), [&[0u8, 6][..], b"orders", &[0, 0, 0, 2]].concat());
        assert_eq!(s.value(), [7i64.to_be_bytes(), 3i64.to_be_bytes()].concat());
        assert_eq!(OffsetSync::decode(&s.key(), &s.value()).unwrap(), s);
        let c = Checkpoint { group: "g".into(), partition: tp(), upstream: 10, downstream: 4, metadata: "m".into() };
        assert_eq!(&c.value()[..2], &[0, 0], "version 0 first");
        assert_eq!(Checkpoint::decode(&c.key(), &c.value()).unwrap(), c);
        assert!(Checkpoint::decode(&c.key()[..3], &c.value()).is_err());
        assert!(OffsetSync::decode(&s.key(), &s.value()[..9]).is_err());
    }

    #[test]
    fn translates_exactly_up_to_what_is_copied() {
        let mut store = OffsetSyncStore::default();
        assert_eq!(store.translate(&tp(), 0), None);
        // Source starts at 100 (older records deleted), target at 0.
        store.apply(&sync(100, 0));
        // A gap in the source at 150..160: offset 160 was copied to 50.
        store.apply(&sync(160, 50));
        store.set_copied_upto(&tp(), 200);
        assert_eq!(store.last_delta(&tp()), Some(-110));
        assert_eq!(store.translate(&tp(), 99), None, "before the first sync");
        assert_eq!(store.translate(&tp(), 100), Some(0));
        assert_eq!(store.translate(&tp(), 150), Some(50), "in the gap: the next copied record");
        assert_eq!(store.translate(&tp(), 170), Some(60));
        assert_eq!(store.translate(&tp(), 200), Some(90), "everything read: the copy's end");
        assert_eq!(store.translate(&tp(), 201), None, "not copied yet");
    }

    #[test]
    fn a_restart_replaces_the_syncs_of_the_tail_it_copies_again() {
        let mut store = OffsetSyncStore::default();
        store.apply(&sync(0, 0));
        store.apply(&sync(500, 490));
        // Killed after copying to 900 but committing 400: 400.. copied
        // again after the 900 records already there.
        store.apply(&sync(400, 900));
        store.set_copied_upto(&tp(), 450);
        assert_eq!(store.translate(&tp(), 300), Some(300));
        assert_eq!(store.translate(&tp(), 420), Some(920));
        assert_eq!(store.last_delta(&tp()), Some(500));
    }
}
