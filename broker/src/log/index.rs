//! Sparse offset and time indexes of one segment.
//!
//! `.index`: 8-byte entries `(relative offset: u32 BE, position: u32 BE)`,
//! one per `index.interval.bytes` of log, pointing at a batch start.
//! `.timeindex`: 12-byte entries `(max timestamp so far: i64 BE, relative
//! offset: u32 BE)`, added beside an offset entry when the segment's largest
//! timestamp has grown. Both are sorted and only ever appended to; the
//! active segment's indexes are rebuilt from the log on start-up, so a torn
//! index file can never point at garbage.

/// Offset → file position.
#[derive(Debug, Default, Clone)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub fn push(&mut self, relative_offset: u32, position: u32) {
        debug_assert!(self.entries.last().is_none_or(|&(o, p)| o < relative_offset && p < position));
        self.entries.push((relative_offset, position));
    }

    /// Position of the last indexed batch starting at or before
    /// `relative_offset` (0 when none is).
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let i = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        if i == 0 { 0 } else { self.entries[i - 1].1 }
    }

    /// Last entry, if any.
    pub fn last(&self) -> Option<(u32, u32)> {
        self.entries.last().copied()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 8);
        for &(o, p) in &self.entries {
            out.extend_from_slice(&o.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// Decodes an index file; `None` if it is not a well-formed index for a
    /// log of `log_size` bytes (the caller then rebuilds it).
    pub fn decode(bytes: &[u8], log_size: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        let mut index = OffsetIndex::default();
        for chunk in bytes.chunks_exact(8) {
            let o = u32::from_be_bytes(chunk[0..4].try_into().ok()?);
            let p = u32::from_be_bytes(chunk[4..8].try_into().ok()?);
            if u64::from(p) >= log_size || index.entries.last().is_some_and(|&(lo, lp)| lo >= o || lp >= p) {
                return None;
            }
            index.entries.push((o, p));
        }
        Some(index)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Timestamp → offset.
#[derive(Debug, Default, Clone)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn push(&mut self, timestamp: i64, relative_offset: u32) {
        if self.entries.last().is_none_or(|&(t, o)| timestamp > t && relative_offset > o) {
            self.entries.push((timestamp, relative_offset));
        }
    }

    /// A relative offset from which to scan for the first record with a
    /// timestamp >= `timestamp`: every record before it is older.
    pub fn lookup(&self, timestamp: i64) -> u32 {
        let i = self.entries.partition_point(|&(t, _)| t < timestamp);
        if i == 0 { 0 } else { self.entries[i - 1].1 }
    }

    /// The largest timestamp indexed.
    pub fn last_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|&(t, _)| t)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 12);
        for &(t, o) in &self.entries {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&o.to_be_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(12) {
            return None;
        }
        let mut index = TimeIndex::default();
        for chunk in bytes.chunks_exact(12) {
            let t = i64::from_be_bytes(chunk[0..8].try_into().ok()?);
            let o = u32::from_be_bytes(chunk[8..12].try_into().ok()?);
            if index.entries.last().is_some_and(|&(lt, lo)| lt >= t || lo >= o) {
                return None;
            }
            index.entries.push((t, o));
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_floor_lookup_and_round_trip() {
        let mut idx = OffsetIndex::default();
        idx.push(10, 4096);
        idx.push(20, 8200);
        assert_eq!(idx.lookup(5), 0);
        assert_eq!(idx.lookup(10), 4096);
        assert_eq!(idx.lookup(19), 4096);
        assert_eq!(idx.lookup(25), 8200);
        let back = OffsetIndex::decode(&idx.encode(), 10_000).unwrap();
        assert_eq!(back.lookup(25), 8200);
        assert!(OffsetIndex::decode(&idx.encode(), 5000).is_none(), "position past the log end");
        assert!(OffsetIndex::decode(&idx.encode()[..7], 10_000).is_none());
    }

    #[test]
    fn time_index_lookup_starts_before_first_newer_record() {
        let mut idx = TimeIndex::default();
        idx.push(100, 0);
        idx.push(200, 10);
        idx.push(150, 20); // not larger: ignored
        idx.push(300, 30);
        assert_eq!(idx.lookup(50), 0);
        assert_eq!(idx.lookup(200), 0);
        assert_eq!(idx.lookup(201), 10);
        assert_eq!(idx.lookup(1000), 30);
        let back = TimeIndex::decode(&idx.encode()).unwrap();
        assert_eq!(back.lookup(201), 10);
    }
}
