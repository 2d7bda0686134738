//! The Kafka RecordBatch v2 header, as the broker needs it: parsed, checked
//! and stamped in place, never re-encoded.
//!
//! Layout (big-endian), 61 bytes before the records:
//!
//! | offset | field                | type |
//! |--------|----------------------|------|
//! | 0      | baseOffset           | i64  |
//! | 8      | batchLength          | i32  |  bytes after this field
//! | 12     | partitionLeaderEpoch | i32  |
//! | 16     | magic (= 2)          | i8   |
//! | 17     | crc (CRC-32C)        | u32  |  covers byte 21 to the end
//! | 21     | attributes           | i16  |
//! | 23     | lastOffsetDelta      | i32  |
//! | 27     | baseTimestamp        | i64  |
//! | 35     | maxTimestamp         | i64  |
//! | 43     | producerId           | i64  |
//! | 51     | producerEpoch        | i16  |
//! | 53     | baseSequence         | i32  |
//! | 57     | recordsCount         | i32  |
//!
//! Because the CRC starts at `attributes`, the broker may overwrite
//! `baseOffset` and `partitionLeaderEpoch` without recomputing it.

use crate::error::BrokerError;

/// Bytes before `batchLength`'s count starts (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the whole v2 header.
pub const HEADER_LEN: usize = 61;
const MAGIC_V2: u8 = 2;
const CRC_START: usize = 21;

/// The fields of a batch header the log uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Size of the whole batch in bytes (batchLength + 12).
    pub size: usize,
    pub leader_epoch: i32,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub records_count: i32,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
}

/// Why bytes are not a valid batch. Used both for produce validation and to
/// find the end of the valid log on recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchFault {
    /// Fewer bytes than the header (or than `batchLength` says).
    Truncated {
        needed: usize,
        available: usize,
    },
    BadMagic(u8),
    BadLength(i32),
    BadCrc {
        stored: u32,
        computed: u32,
    },
    BadOffsets(String),
}

impl std::fmt::Display for BatchFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchFault::Truncated { needed, available } => {
                write!(f, "batch truncated: needs {needed} bytes, {available} present")
            }
            BatchFault::BadMagic(m) => write!(f, "unsupported record batch magic {m} (only v2 is accepted)"),
            BatchFault::BadLength(l) => write!(f, "invalid batch length {l}"),
            BatchFault::BadCrc { stored, computed } => {
                write!(f, "CRC-32C mismatch: batch says {stored:#010x}, content gives {computed:#010x}")
            }
            BatchFault::BadOffsets(why) => write!(f, "{why}"),
        }
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the size of the batch starting at `bytes[0]` from its first 12
/// bytes, without checking anything else.
pub fn peek_size(bytes: &[u8]) -> Result<usize, BatchFault> {
    if bytes.len() < LOG_OVERHEAD {
        return Err(BatchFault::Truncated { needed: LOG_OVERHEAD, available: bytes.len() });
    }
    let len = i32_at(bytes, 8);
    if len < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchFault::BadLength(len));
    }
    Ok(len as usize + LOG_OVERHEAD)
}

/// Parses the header of the batch at the start of `bytes` without checking
/// its CRC (fast path for reads of data already validated).
pub fn parse_header(bytes: &[u8]) -> Result<BatchHeader, BatchFault> {
    let size = peek_size(bytes)?;
    if bytes.len() < HEADER_LEN {
        return Err(BatchFault::Truncated { needed: HEADER_LEN, available: bytes.len() });
    }
    if bytes[16] != MAGIC_V2 {
        return Err(BatchFault::BadMagic(bytes[16]));
    }
    Ok(BatchHeader {
        base_offset: i64_at(bytes, 0),
        size,
        leader_epoch: i32_at(bytes, 12),
        last_offset_delta: i32_at(bytes, 23),
        base_timestamp: i64_at(bytes, 27),
        max_timestamp: i64_at(bytes, 35),
        records_count: i32_at(bytes, 57),
    })
}

/// Parses and fully checks the batch at the start of `bytes` (which may hold
/// more after it): magic, length, CRC-32C and offset fields.
pub fn validate(bytes: &[u8]) -> Result<BatchHeader, BatchFault> {
    let header = parse_header(bytes)?;
    if bytes.len() < header.size {
        return Err(BatchFault::Truncated { needed: header.size, available: bytes.len() });
    }
    let stored = u32::from_be_bytes(bytes[17..21].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&bytes[CRC_START..header.size]);
    if stored != computed {
        return Err(BatchFault::BadCrc { stored, computed });
    }
    if header.records_count < 0 || header.last_offset_delta < 0 {
        return Err(BatchFault::BadOffsets(format!(
            "negative record count {} or last offset delta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    if header.base_offset < 0 {
        return Err(BatchFault::BadOffsets(format!("negative base offset {}", header.base_offset)));
    }
    Ok(header)
}

/// Checks a batch a producer sent: exactly one valid batch, with records.
pub fn validate_produced(bytes: &[u8], max_message_bytes: usize) -> Result<BatchHeader, BrokerError> {
    if bytes.len() > max_message_bytes {
        return Err(BrokerError::MessageTooLarge { size: bytes.len(), max: max_message_bytes });
    }
    let header = validate(bytes).map_err(|fault| BrokerError::CorruptMessage(fault.to_string()))?;
    if header.size != bytes.len() {
        return Err(BrokerError::CorruptMessage(format!(
            "expected exactly one record batch per partition: batch is {} bytes, request carries {}",
            header.size,
            bytes.len()
        )));
    }
    if header.records_count == 0 {
        return Err(BrokerError::CorruptMessage("record batch holds no records".into()));
    }
    if header.last_offset_delta != header.records_count - 1 {
        return Err(BrokerError::CorruptMessage(format!(
            "last offset delta {} does not match {} records",
            header.last_offset_delta, header.records_count
        )));
    }
    Ok(header)
}

/// Stamps the broker-assigned base offset and leader epoch into a batch.
/// Neither field is covered by the CRC.
pub fn assign_offset(bytes: &mut [u8], base_offset: i64, leader_epoch: i32) {
    bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
    bytes[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Splits a run of batches into headers with their byte ranges; stops at the
/// first incomplete batch (a read may end mid-batch).
pub fn iter_headers(bytes: &[u8]) -> impl Iterator<Item = (usize, BatchHeader)> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let rest = &bytes[pos..];
        let header = parse_header(rest).ok()?;
        if rest.len() < header.size {
            return None;
        }
        let at = pos;
        pos += header.size;
        Some((at, header))
    })
}

/// Encodes records the broker writes itself (group offsets, test data) into
/// one uncompressed RecordBatch v2 with kafka-protocol: offsets from 0 (the
/// log assigns the real ones), one timestamp, no headers.
pub fn encode_records(
    records: impl IntoIterator<Item = (Option<bytes::Bytes>, Option<bytes::Bytes>)>,
    timestamp_ms: i64,
) -> bytes::BytesMut {
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence stays constant: one batch.
            sequence: i as i32 - 1,
            timestamp: timestamp_ms,
            key,
            value,
            headers: Default::default(),
        })
        .collect();
    let mut out = bytes::BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut out, &records, &options).expect("encoding to memory cannot fail");
    out
}

/// Zigzag varint as Kafka's records use, returning (value, bytes read).
fn read_varlong(b: &[u8]) -> Option<(i64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((((value >> 1) as i64) ^ -((value & 1) as i64), i + 1));
        }
    }
    None
}

/// In an uncompressed CreateTime batch, the offset and timestamp of the
/// first record with timestamp >= `timestamp`. `None` for compressed or
/// LogAppendTime batches (the caller then uses the batch's base offset).
pub fn first_record_at_or_after(batch: &[u8], timestamp: i64) -> Option<(i64, i64)> {
    let header = parse_header(batch).ok()?;
    let attributes = i16_at(batch, 21);
    if attributes & 0x07 != 0 || attributes & 0x08 != 0 {
        return None;
    }
    let mut pos = HEADER_LEN;
    for _ in 0..header.records_count {
        let (len, n) = read_varlong(batch.get(pos..)?)?;
        let body = pos + n;
        let mut at = body + 1; // attributes
        let (ts_delta, n) = read_varlong(batch.get(at..)?)?;
        at += n;
        let (offset_delta, _) = read_varlong(batch.get(at..)?)?;
        let ts = header.base_timestamp + ts_delta;
        if ts >= timestamp {
            return Some((header.base_offset + offset_delta, ts));
        }
        pos = body + usize::try_from(len).ok()?;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal valid batch with `count` records of `value_len`
    /// bytes (test helper; the real encoder lives in the client).
    pub(crate) fn make_batch(count: i32, timestamp: i64, value_len: usize) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..count {
            let mut rec = Vec::new();
            rec.push(0u8); // attributes
            put_varint(&mut rec, 0); // timestamp delta
            put_varint(&mut rec, i64::from(i)); // offset delta
            put_varint(&mut rec, -1); // key: null
            put_varint(&mut rec, value_len as i64);
            rec.extend(std::iter::repeat_n(b'v', value_len));
            put_varint(&mut rec, 0); // headers
            put_varint(&mut records, rec.len() as i64);
            records.extend(rec);
        }
        let mut b = Vec::new();
        b.extend(0i64.to_be_bytes());
        b.extend(0i32.to_be_bytes()); // length, patched below
        b.extend(0i32.to_be_bytes());
        b.push(2);
        b.extend(0u32.to_be_bytes()); // crc, patched below
        b.extend(0i16.to_be_bytes());
        b.extend((count - 1).to_be_bytes());
        b.extend(timestamp.to_be_bytes());
        b.extend(timestamp.to_be_bytes());
        b.extend((-1i64).to_be_bytes());
        b.extend((-1i16).to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.extend(count.to_be_bytes());
        b.extend(records);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn put_varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    #[test]
    fn valid_batch_round_trips_through_validation() {
        let mut b = make_batch(3, 1_000, 10);
        let h = validate_produced(&b, 1 << 20).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.size, b.len());
        assign_offset(&mut b, 42, 7);
        let h = validate(&b).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.leader_epoch, 7);
        assert_eq!(h.next_offset(), 45);
    }

    #[test]
    fn flipped_byte_fails_crc() {
        let mut b = make_batch(1, 0, 10);
        let last = b.len() - 3;
        b[last] ^= 0xff;
        assert!(matches!(validate(&b), Err(BatchFault::BadCrc { .. })));
        assert!(matches!(validate_produced(&b, 1 << 20), Err(BrokerError::CorruptMessage(_))));
    }

    #[test]
    fn oversized_and_truncated_batches_are_refused() {
        let b = make_batch(10, 0, 100);
        assert!(matches!(validate_produced(&b, 100), Err(BrokerError::MessageTooLarge { .. })));
        assert!(matches!(validate(&b[..b.len() - 1]), Err(BatchFault::Truncated { .. })));
        assert!(matches!(validate(&b[..5]), Err(BatchFault::Truncated { .. })));
    }

    #[test]
    fn iter_headers_stops_at_partial_batch() {
        let mut bytes = make_batch(2, 0, 5);
        let second = make_batch(3, 0, 5);
        bytes.extend(&second);
        bytes.extend(&second[..10]);
        let headers: Vec<_> = iter_headers(&bytes).collect();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[1].0, make_batch(2, 0, 5).len());
    }
}
