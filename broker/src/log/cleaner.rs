//! The log cleaner of compacted topics (`cleanup.policy=compact`, e.g.
//! `__consumer_offsets`): keeps the latest record of every key.
//!
//! Only sealed segments are rewritten; the active one is left alone. Pass:
//! 1. read the whole log and note, per key, the offset of its latest record;
//! 2. for each sealed segment, re-encode its batches keeping only records
//!    that are the latest for their key (tombstones too, until they are
//!    older than `delete_retention`), with their original offsets and
//!    timestamps (so consumers and followers see the same offsets);
//! 3. swap the cleaned file in (temp file, fsync, rename; the indexes are
//!    rebuilt from it).
//!
//! A pass runs when the sealed part written since the last pass is at
//! least half of it (Kafka's `min.cleanable.dirty.ratio` 0.5).

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::batch;
use super::partition::PartitionLog;
use crate::error::{BrokerError, Result};

/// What a cleaning pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    pub segments: usize,
    pub records_before: usize,
    pub records_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

fn decode_all(bytes: &Bytes) -> Result<Vec<kafka_protocol::records::Record>> {
    batch::decode_full(bytes)
        .map_err(|fault| BrokerError::CorruptMessage(format!("log cleaner cannot decode a batch: {fault}")))
}

/// Cleans `log` if it is compacted and dirty enough. `now_ms` decides
/// which tombstones have outlived `delete_retention_ms`.
pub fn clean(log: &PartitionLog, now_ms: i64, delete_retention_ms: i64) -> Result<Option<CleanStats>> {
    if !log.config().compacts() {
        return Ok(None);
    }
    let sealed = log.sealed_segments();
    if sealed.is_empty() {
        return Ok(None);
    }
    let total: u64 = sealed.iter().map(|s| s.size()).sum();
    let clean_end = log.cleaned_up_to();
    let dirty: u64 = sealed.iter().filter(|s| s.base_offset >= clean_end).map(|s| s.size()).sum();
    if dirty * 2 < total || dirty == 0 {
        return Ok(None);
    }
    // 1. Latest offset of every key, over the whole log.
    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read_bounded(offset, 8 << 20, super::partition::ReadBound::LogEnd)?;
        if read.records.is_empty() {
            break;
        }
        let records = decode_all(&read.records)?;
        for r in &records {
            if let Some(key) = &r.key {
                latest.insert(key.clone(), r.offset);
            }
        }
        let Some(last) = batch::iter_headers(&read.records).last().map(|(_, h)| h.next_offset()) else { break };
        offset = last;
    }
    // 2 + 3. Rewrite each sealed segment.
    let mut stats = CleanStats::default();
    let sealed_end = sealed.last().map_or(0, |s| s.next_offset());
    for segment in sealed {
        let bytes = segment.read_at(0, segment.size() as usize)?;
        let mut cleaned = BytesMut::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let header = batch::parse_header(&bytes[pos..])
                .map_err(|f| BrokerError::CorruptLogDir { path: segment.log_path(), reason: f.to_string() })?;
            let one = bytes.slice(pos..pos + header.size);
            pos += header.size;
            let records = decode_all(&one)?;
            stats.records_before += records.len();
            let kept: Vec<_> = records
                .into_iter()
                .filter(|r| match &r.key {
                    None => false, // a compacted topic needs keys; keyless records go
                    Some(key) => {
                        let is_latest = latest.get(key) == Some(&r.offset);
                        let expired_tombstone = r.value.is_none() && now_ms - r.timestamp > delete_retention_ms;
                        is_latest && !expired_tombstone
                    }
                })
                .collect();
            stats.records_after += kept.len();
            if !kept.is_empty() {
                cleaned.extend_from_slice(&batch::encode_full(&kept, header.leader_epoch));
            }
        }
        stats.segments += 1;
        stats.bytes_before += bytes.len() as u64;
        stats.bytes_after += cleaned.len() as u64;
        log.replace_segment(&segment, &cleaned)?;
    }
    log.set_cleaned_up_to(sealed_end);
    tracing::info!(
        topic = %log.topic, partition = log.partition, segments = stats.segments,
        records_before = stats.records_before, records_after = stats.records_after,
        bytes_before = stats.bytes_before, bytes_after = stats.bytes_after, "cleaned compacted log"
    );
    Ok(Some(stats))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::BrokerConfig;

    fn keyed_batch(start_key: usize, count: usize, ts: i64, tombstone_key: Option<usize>) -> BytesMut {
        let records = (0..count).map(|i| {
            let key = (start_key + i) % 5;
            let value = (tombstone_key != Some(key)).then(|| Bytes::from(format!("v{}", start_key + i)));
            (Some(Bytes::from(format!("k{key}"))), value)
        });
        BytesMut::from(&batch::encode_records(records, ts)[..])
    }

    #[test]
    fn keeps_the_latest_record_per_key_with_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = BrokerConfig::default().default_log_config();
        config.segment_bytes = 1024;
        config.cleanup_policy = "compact".into();
        let (log, _) = PartitionLog::open("c", 0, dir.path(), Arc::new(config)).unwrap();
        for round in 0..40 {
            let info = log.append(keyed_batch(round * 3, 3, 1_000, None), 0).unwrap();
            log.set_high_watermark(info.last_offset + 1);
        }
        // A tombstone for k2, recent: kept; then the log is cleaned.
        let info = log.append(keyed_batch(2, 1, 2_000, Some(2)), 1).unwrap();
        log.set_high_watermark(info.last_offset + 1);
        let end = log.log_end_offset();
        let before = log.size_bytes();
        let stats = clean(&log, 3_000, 86_400_000).unwrap().expect("dirty enough to clean");
        assert!(stats.records_after < stats.records_before);
        assert!(log.size_bytes() < before);
        assert_eq!(log.log_end_offset(), end, "cleaning never moves the end");
        // Read everything back: at most one record per key in sealed
        // segments, offsets increasing, each the latest for its key.
        let mut seen: HashMap<Bytes, (i64, Option<Bytes>)> = HashMap::new();
        let mut offset = log.log_start_offset();
        let mut last = -1;
        while offset < end {
            let read = log.read(offset, 1 << 20).unwrap();
            for r in decode_all(&read.records).unwrap() {
                assert!(r.offset > last);
                last = r.offset;
                seen.insert(r.key.clone().unwrap(), (r.offset, r.value.clone()));
            }
            offset = batch::iter_headers(&read.records).last().unwrap().1.next_offset();
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[&Bytes::from("k2")].1, None, "the tombstone is the latest for k2");
        assert_eq!(seen[&Bytes::from("k4")].1, Some(Bytes::from("v119")));
        // A second pass finds nothing new to clean.
        assert_eq!(clean(&log, 3_000, 86_400_000).unwrap(), None);
        // Reopen: the cleaned segments recover as they are.
        log.close().unwrap();
        drop(log);
        let mut config = BrokerConfig::default().default_log_config();
        config.cleanup_policy = "compact".into();
        let (log, truncated) = PartitionLog::open("c", 0, dir.path(), Arc::new(config)).unwrap();
        assert_eq!(truncated, 0);
        assert_eq!(log.log_end_offset(), end);
    }
}
