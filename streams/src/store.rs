//! State stores: an in-memory map per (store, task partition), backed by
//! the compacted changelog topic `<application.id>-<store>-changelog`
//! (partition = task partition).
//!
//! A changelog record's key is the store key; its value is a
//! [`StoredValue`]:
//!
//! ```text
//! u16 n                                  origins, big-endian
//! n × { u16 len, stream (len bytes, "topic/partition"), i64 offset, u64 seq }
//! rest                                   the aggregate, as its serde wrote it
//! ```
//!
//! The origins say, per input partition, the last input record (offset and
//! place among the records derived from it, see [`Origin`]) whose update is
//! in the value. A record reprocessed after a crash carries the same origin
//! and is skipped by [`Store::already_applied`], so an aggregate restored
//! from the changelog is not counted twice (see the README's at-least-once
//! section for what this does and does not cover).
//!
//! Table stores (a `table(topic)` source) keep the topic's raw values with
//! no origins; the source topic itself serves as their changelog.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::window::{TimeWindows, split_window_key};

/// Where a record came from: the input partition it was first read from
/// (before any repartition), its offset there, and its place among the
/// records derived from that input record (deterministic, as processing
/// is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// `topic/partition` of the input.
    pub(crate) stream: Arc<str>,
    pub(crate) offset: i64,
    pub(crate) seq: u64,
}

impl Origin {
    /// The header that carries an origin through a repartition topic.
    pub(crate) const HEADER: &'static str = "kmon-streams-origin";

    pub(crate) fn to_header(&self) -> String {
        format!("{}|{}|{}", self.offset, self.seq, self.stream)
    }

    pub(crate) fn from_header(text: &str) -> Option<Origin> {
        let mut parts = text.splitn(3, '|');
        let offset = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let stream = parts.next()?;
        Some(Origin { stream: stream.into(), offset, seq })
    }
}

/// A stored aggregate and the origins already applied to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct StoredValue {
    pub(crate) origins: Vec<(Arc<str>, i64, u64)>,
    pub(crate) value: Vec<u8>,
}

impl StoredValue {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.value.len() + self.origins.len() * 32);
        out.extend_from_slice(&(self.origins.len() as u16).to_be_bytes());
        for (stream, offset, seq) in &self.origins {
            out.extend_from_slice(&(stream.len() as u16).to_be_bytes());
            out.extend_from_slice(stream.as_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
        }
        out.extend_from_slice(&self.value);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<StoredValue, String> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
            if bytes.len() < n {
                return Err(format!("truncated: {} bytes left, {n} needed", bytes.len()));
            }
            let (head, tail) = bytes.split_at(n);
            *bytes = tail;
            Ok(head)
        }
        let mut rest = bytes;
        let n = u16::from_be_bytes(take(&mut rest, 2)?.try_into().unwrap());
        let mut origins = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let len = u16::from_be_bytes(take(&mut rest, 2)?.try_into().unwrap()) as usize;
            let stream = std::str::from_utf8(take(&mut rest, len)?).map_err(|e| format!("origin stream: {e}"))?;
            let offset = i64::from_be_bytes(take(&mut rest, 8)?.try_into().unwrap());
            let seq = u64::from_be_bytes(take(&mut rest, 8)?.try_into().unwrap());
            origins.push((Arc::from(stream), offset, seq));
        }
        Ok(StoredValue { origins, value: rest.to_vec() })
    }

    fn origin_of(&self, stream: &str) -> Option<(i64, u64)> {
        self.origins.iter().find(|(s, _, _)| &**s == stream).map(|&(_, o, q)| (o, q))
    }

    fn record_origin(&mut self, origin: &Origin) {
        match self.origins.iter_mut().find(|(s, _, _)| *s == origin.stream) {
            Some(entry) => (entry.1, entry.2) = (origin.offset, origin.seq),
            None => self.origins.push((origin.stream.clone(), origin.offset, origin.seq)),
        }
    }
}

/// One store of one task.
#[derive(Debug)]
pub(crate) struct Store {
    entries: HashMap<Vec<u8>, StoredValue>,
    /// Keys changed since the last commit: written to the changelog and
    /// forwarded downstream at the next commit.
    dirty: BTreeSet<Vec<u8>>,
    /// Largest record timestamp seen (windowed stores).
    pub(crate) stream_time: i64,
}

impl Default for Store {
    fn default() -> Store {
        Store { entries: HashMap::new(), dirty: BTreeSet::new(), stream_time: i64::MIN }
    }
}

impl Store {
    pub(crate) fn new() -> Store {
        Store::default()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(|v| v.value.as_slice())
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the update of `origin` is already in `key`'s value (the
    /// record is being reprocessed after a crash or a rebalance).
    pub(crate) fn already_applied(&self, key: &[u8], origin: Option<&Origin>) -> bool {
        let (Some(origin), Some(stored)) = (origin, self.entries.get(key)) else { return false };
        stored.origin_of(&origin.stream).is_some_and(|last| (origin.offset, origin.seq) <= last)
    }

    /// Sets `key`'s value, recording `origin` as applied.
    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>, origin: Option<&Origin>) {
        let stored = self.entries.entry(key.clone()).or_default();
        stored.value = value;
        if let Some(origin) = origin {
            stored.record_origin(origin);
        }
        self.dirty.insert(key);
    }

    /// A raw value from a table's topic (no origins, never dirty: the
    /// topic is its own changelog).
    pub(crate) fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.entries.insert(key, StoredValue { origins: Vec::new(), value });
    }

    /// To be written and forwarded again at the next commit (a skipped
    /// reprocessed record: its update may not have reached the output).
    pub(crate) fn mark_dirty(&mut self, key: &[u8]) {
        if self.entries.contains_key(key) {
            self.dirty.insert(key.to_vec());
        }
    }

    /// The keys changed since the last call, with their encoded stored
    /// value (for the changelog) and plain value (for downstream).
    pub(crate) fn take_dirty(&mut self) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|key| {
                let stored = self.entries.get(&key)?;
                Some((key.clone(), stored.encode(), stored.value.clone()))
            })
            .collect()
    }

    /// One changelog record read back on restore.
    pub(crate) fn restore(&mut self, key: Vec<u8>, changelog_value: &[u8]) -> Result<(), String> {
        self.entries.insert(key, StoredValue::decode(changelog_value)?);
        Ok(())
    }

    /// Drops the windows (windowed keys) past their retention at the
    /// current stream time; returns how many. Run after the dirty entries
    /// were flushed, so a window's last update still reaches the changelog
    /// and downstream.
    pub(crate) fn purge_expired(&mut self, windows: &TimeWindows) -> usize {
        let stream_time = self.stream_time;
        let before = self.entries.len();
        self.entries
            .retain(|key, _| split_window_key(key).is_none_or(|(_, start)| !windows.is_expired(start, stream_time)));
        let entries = &self.entries;
        self.dirty.retain(|key| entries.contains_key(key));
        before - self.entries.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.entries.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(stream: &str, offset: i64, seq: u64) -> Origin {
        Origin { stream: stream.into(), offset, seq }
    }

    #[test]
    fn stored_value_round_trips() {
        let value =
            StoredValue { origins: vec![("in/0".into(), 5, 2), ("in/1".into(), -1, 0)], value: b"agg".to_vec() };
        assert_eq!(StoredValue::decode(&value.encode()).unwrap(), value);
        let empty = StoredValue::default();
        assert_eq!(StoredValue::decode(&empty.encode()).unwrap(), empty);
        assert!(StoredValue::decode(&[0, 1, 0]).unwrap_err().contains("truncated"));
    }

    #[test]
    fn origin_header_round_trips() {
        let o = origin("topic|with|bars/3", 42, 7);
        assert_eq!(Origin::from_header(&o.to_header()), Some(o));
        assert_eq!(Origin::from_header("x|1|s"), None);
    }

    #[test]
    fn a_reprocessed_origin_is_already_applied() {
        let mut store = Store::new();
        store.put(b"k".to_vec(), b"1".to_vec(), Some(&origin("in/0", 10, 1)));
        assert!(store.already_applied(b"k", Some(&origin("in/0", 10, 1))));
        assert!(store.already_applied(b"k", Some(&origin("in/0", 9, 5))));
        assert!(!store.already_applied(b"k", Some(&origin("in/0", 10, 2))));
        assert!(!store.already_applied(b"k", Some(&origin("in/1", 0, 0))));
        assert!(!store.already_applied(b"other", Some(&origin("in/0", 0, 0))));
        assert!(!store.already_applied(b"k", None));
    }

    #[test]
    fn dirty_keys_come_out_once_and_restore_reads_them_back() {
        let mut store = Store::new();
        store.put(b"a".to_vec(), b"1".to_vec(), Some(&origin("in/0", 0, 0)));
        store.put(b"a".to_vec(), b"2".to_vec(), Some(&origin("in/0", 1, 0)));
        let dirty = store.take_dirty();
        assert_eq!(dirty.len(), 1);
        assert!(store.take_dirty().is_empty());
        let mut restored = Store::new();
        restored.restore(dirty[0].0.clone(), &dirty[0].1).unwrap();
        assert_eq!(restored.get(b"a"), Some(&b"2"[..]));
        assert!(restored.already_applied(b"a", Some(&origin("in/0", 1, 0))));
    }
}
