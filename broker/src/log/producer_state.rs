//! Idempotent producers on one partition, as Kafka's
//! `ProducerStateManager` keeps them: per producer id, its epoch and the
//! last [`MAX_CACHED_BATCHES`] batches it wrote (sequence ranges and the
//! offsets they got).
//!
//! The leader checks every produced batch that carries a producer id
//! ([`ProducerStates::check`]):
//! - the same sequences as a cached batch: a retry whose acknowledgement was
//!   lost; it answers with the offsets the batch got the first time and
//!   nothing is written;
//! - an older epoch: `INVALID_PRODUCER_EPOCH` (a newer instance fenced it);
//! - a gap or a step back in the sequence: `OUT_OF_ORDER_SEQUENCE_NUMBER`;
//! - a producer this partition has no state for (a new partition, a topic
//!   deleted and created again, state expired) may start at any sequence,
//!   as in Kafka since KIP-360. A batch that overtook its producer's
//!   earlier ones on the way (gRPC does not keep a connection's requests
//!   in order) waits for them first: [`ProducerStates::awaits_earlier_batches`].
//!
//! Followers record every batch they copy, so a new leader knows what the
//! old one did. A restart rebuilds the state from the log, starting at the
//! latest snapshot (one is written at each segment roll, so only the active
//! segment is read again).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::batch::BatchHeader;

/// Batches remembered per producer: Kafka allows five in flight per
/// partition, and any of them may be retried.
pub const MAX_CACHED_BATCHES: usize = 5;
/// A producer-state snapshot: `<offset, 20 digits>.snapshot`, the state of
/// every batch below that offset.
const SNAPSHOT_SUFFIX: &str = "snapshot";
/// Snapshots kept per partition (older ones go when a new one is written).
const SNAPSHOTS_KEPT: usize = 2;

/// One batch a producer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct CachedBatch {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: i16,
    /// Oldest first, at most [`MAX_CACHED_BATCHES`].
    batches: VecDeque<CachedBatch>,
    /// When its last batch was appended (ms): expiry.
    last_append_ms: i64,
}

/// Every producer that wrote to one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

/// What the leader does with a produced batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not written before: append it.
    Append,
    /// Written before (a retry): answer with its first offsets.
    Duplicate { base_offset: i64, last_offset: i64 },
}

/// Why a produced batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error(
        "producer {producer_id}: epoch {got} is older than its current epoch {current} (fenced by a newer instance)"
    )]
    InvalidEpoch { producer_id: i64, got: i16, current: i16 },
    #[error("producer {producer_id}: sequence {got} is out of order, expected {expected}")]
    OutOfOrder { producer_id: i64, got: i32, expected: i32 },
}

/// The sequence `n` places after `sequence`, wrapping past i32::MAX to 0
/// as Kafka's producers do.
fn add_sequence(sequence: i32, n: i32) -> i32 {
    if sequence > i32::MAX - n { n - (i32::MAX - sequence) - 1 } else { sequence + n }
}

fn last_sequence(header: &BatchHeader) -> i32 {
    add_sequence(header.base_sequence, header.last_offset_delta)
}

impl ProducerStates {
    /// Producers known to this partition.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks a produced batch (not yet stamped) against the producer's
    /// state. Batches without a producer id always append.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        let producer_id = header.producer_id;
        if producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        let got = header.base_sequence;
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(SequenceError::InvalidEpoch { producer_id, got: header.producer_epoch, current: entry.epoch });
        }
        if header.producer_epoch > entry.epoch {
            // A new epoch starts its sequences again.
            return if got == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrder { producer_id, got, expected: 0 })
            };
        }
        let last = last_sequence(header);
        if let Some(cached) = entry.batches.iter().find(|b| b.first_sequence == got && b.last_sequence == last) {
            return Ok(SequenceCheck::Duplicate { base_offset: cached.base_offset, last_offset: cached.last_offset });
        }
        let expected = entry.batches.back().map_or(0, |b| add_sequence(b.last_sequence, 1));
        if got != expected {
            return Err(SequenceError::OutOfOrder { producer_id, got, expected });
        }
        Ok(SequenceCheck::Append)
    }

    /// Whether the batch is ahead of its producer's next expected sequence
    /// (or, for a producer without state here, does not start at 0): an
    /// earlier batch may still be on its way.
    pub fn awaits_earlier_batches(&self, header: &BatchHeader) -> bool {
        if header.producer_id < 0 {
            return false;
        }
        match self.producers.get(&header.producer_id) {
            None => header.base_sequence > 0,
            Some(_) => {
                matches!(self.check(header), Err(SequenceError::OutOfOrder { got, expected, .. }) if got > expected)
            }
        }
    }

    /// Records a batch written to the log (stamped with its offsets), on
    /// the leader after [`Self::check`] and on followers as they copy.
    pub fn record(&mut self, header: &BatchHeader, append_ms: i64) {
        if header.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_insert_with(|| ProducerEntry {
            epoch: header.producer_epoch,
            batches: VecDeque::with_capacity(MAX_CACHED_BATCHES),
            last_append_ms: append_ms,
        });
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == MAX_CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(CachedBatch {
            first_sequence: header.base_sequence,
            last_sequence: last_sequence(header),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
        });
        entry.last_append_ms = entry.last_append_ms.max(append_ms);
    }

    /// Forgets producers idle for longer than `max_idle_ms`
    /// (`producer.id.expiration.ms`); returns how many.
    pub fn expire(&mut self, now_ms: i64, max_idle_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| now_ms.saturating_sub(entry.last_append_ms) <= max_idle_ms);
        before - self.producers.len()
    }
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{SNAPSHOT_SUFFIX}"))
}

/// Snapshots in `dir`, by offset, ascending.
fn snapshots(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name();
                    let offset = name.to_str()?.strip_suffix(&format!(".{SNAPSHOT_SUFFIX}"))?.parse().ok()?;
                    Some((offset, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Writes the state of every batch below `offset` (a crash leaves the old
/// snapshots or the new one whole) and drops older snapshots beyond the
/// last [`SNAPSHOTS_KEPT`].
pub fn write_snapshot(dir: &Path, offset: i64, states: &ProducerStates) -> std::io::Result<()> {
    let path = snapshot_path(dir, offset);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(states).map_err(std::io::Error::other)?)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    let all = snapshots(dir);
    for (_, old) in &all[..all.len().saturating_sub(SNAPSHOTS_KEPT)] {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

/// The offset of the latest snapshot, if any.
pub fn latest_snapshot_offset(dir: &Path) -> Option<i64> {
    snapshots(dir).last().map(|(offset, _)| *offset)
}

/// The latest readable snapshot at or below `end` (snapshots above it, of
/// a log cut shorter, are deleted), as (offset, state); `None` if none.
pub fn load_snapshot(dir: &Path, end: i64) -> Option<(i64, ProducerStates)> {
    let mut found = None;
    for (offset, path) in snapshots(dir) {
        if offset > end {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        match std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()) {
            Some(states) => found = Some((offset, states)),
            None => tracing::warn!(path = %path.display(), "skipping an unreadable producer-state snapshot"),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, records: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            size: 0,
            leader_epoch: 0,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: records,
        }
    }

    #[test]
    fn retries_are_duplicates_and_gaps_are_out_of_order() {
        let mut states = ProducerStates::default();
        assert_eq!(states.check(&header(7, 0, 0, 3, 0)), Ok(SequenceCheck::Append));
        states.record(&header(7, 0, 0, 3, 10), 1);
        states.record(&header(7, 0, 3, 2, 13), 1);
        // The first batch again: its offsets, nothing written.
        assert_eq!(
            states.check(&header(7, 0, 0, 3, 0)),
            Ok(SequenceCheck::Duplicate { base_offset: 10, last_offset: 12 })
        );
        assert_eq!(states.check(&header(7, 0, 5, 1, 0)), Ok(SequenceCheck::Append));
        assert_eq!(
            states.check(&header(7, 0, 6, 1, 0)),
            Err(SequenceError::OutOfOrder { producer_id: 7, got: 6, expected: 5 })
        );
        // Without a producer id: no checks.
        assert_eq!(states.check(&header(-1, -1, -1, 1, 0)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let mut states = ProducerStates::default();
        states.record(&header(7, 1, 0, 1, 0), 1);
        assert!(matches!(states.check(&header(7, 0, 1, 1, 0)), Err(SequenceError::InvalidEpoch { .. })));
        assert_eq!(states.check(&header(7, 2, 0, 1, 0)), Ok(SequenceCheck::Append));
        assert!(matches!(states.check(&header(7, 2, 4, 1, 0)), Err(SequenceError::OutOfOrder { .. })));
        states.record(&header(7, 2, 0, 1, 1), 1);
        assert_eq!(states.check(&header(7, 2, 1, 1, 0)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn unknown_producers_start_anywhere_after_waiting_and_only_five_batches_are_kept() {
        let mut states = ProducerStates::default();
        assert_eq!(states.check(&header(9, 0, 4, 1, 0)), Ok(SequenceCheck::Append));
        assert!(states.awaits_earlier_batches(&header(9, 0, 4, 1, 0)));
        assert!(!states.awaits_earlier_batches(&header(9, 0, 0, 1, 0)));
        for i in 0..6 {
            states.record(&header(9, 0, i, 1, i64::from(i)), 1);
        }
        // The oldest fell out of the cache: a retry that old is a gap now.
        assert!(matches!(states.check(&header(9, 0, 0, 1, 0)), Err(SequenceError::OutOfOrder { .. })));
        assert!(matches!(states.check(&header(9, 0, 1, 1, 0)), Ok(SequenceCheck::Duplicate { base_offset: 1, .. })));
    }

    #[test]
    fn sequences_wrap_past_i32_max() {
        let mut states = ProducerStates::default();
        states.record(&header(3, 0, i32::MAX - 1, 2, 0), 1);
        assert_eq!(states.check(&header(3, 0, 0, 1, 0)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn idle_producers_expire() {
        let mut states = ProducerStates::default();
        states.record(&header(1, 0, 0, 1, 0), 1_000);
        states.record(&header(2, 0, 0, 1, 1), 5_000);
        assert_eq!(states.expire(6_000, 2_000), 1);
        assert_eq!(states.len(), 1);
    }

    #[test]
    fn snapshots_round_trip_and_later_ones_are_dropped_on_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let mut states = ProducerStates::default();
        states.record(&header(1, 0, 0, 2, 0), 1);
        write_snapshot(dir.path(), 2, &states).unwrap();
        states.record(&header(1, 0, 2, 2, 2), 1);
        write_snapshot(dir.path(), 4, &states).unwrap();
        write_snapshot(dir.path(), 6, &states).unwrap();
        assert_eq!(snapshots(dir.path()).len(), SNAPSHOTS_KEPT);
        let (offset, loaded) = load_snapshot(dir.path(), 5).unwrap();
        assert_eq!((offset, loaded), (4, states));
        assert_eq!(snapshots(dir.path()).len(), 1, "the snapshot past the end is gone");
    }
}
