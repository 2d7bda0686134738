//! The 61-byte batch header: parsed, checked and stamped in place.

use super::attributes;
use super::varint::read_varlong;

/// Bytes before `batchLength`'s count starts (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the whole v2 header: bytes before the first record.
pub const HEADER_LEN: usize = 61;
/// The only batch format kmon reads and writes.
pub const MAGIC: u8 = 2;
/// The CRC covers the batch from `attributes` to its end.
pub const CRC_START: usize = 21;

/// The fixed fields of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Size of the whole batch in bytes (batchLength + 12).
    pub size: usize,
    pub leader_epoch: i32,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn is_compressed(&self) -> bool {
        self.attributes & attributes::COMPRESSION_MASK != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & attributes::CONTROL != 0
    }
}

/// Why bytes are not a valid batch: for produce validation, for finding the
/// end of the valid log on recovery, and for consumers' decoding.
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
        base_offset: i64,
        stored: u32,
        computed: u32,
    },
    BadOffsets(String),
    /// A record inside the batch does not parse.
    BadRecord {
        base_offset: i64,
        what: String,
    },
}

impl std::fmt::Display for BatchFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchFault::Truncated { needed, available } => {
                write!(f, "batch truncated: needs {needed} bytes, {available} present")
            }
            BatchFault::BadMagic(m) => write!(f, "unsupported record batch magic {m} (only v2 is accepted)"),
            BatchFault::BadLength(l) => write!(f, "invalid batch length {l}"),
            BatchFault::BadCrc { base_offset, stored, computed } => write!(
                f,
                "CRC-32C mismatch in the batch at offset {base_offset}: batch says {stored:#010x}, \
                 content gives {computed:#010x}"
            ),
            BatchFault::BadOffsets(why) => write!(f, "{why}"),
            BatchFault::BadRecord { base_offset, what } => write!(f, "{what} (batch at offset {base_offset})"),
        }
    }
}

impl std::error::Error for BatchFault {}

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
/// its CRC (fast path for reads of data already validated); `bytes` may end
/// before the batch does.
pub fn parse_header(bytes: &[u8]) -> Result<BatchHeader, BatchFault> {
    let size = peek_size(bytes)?;
    if bytes.len() < HEADER_LEN {
        return Err(BatchFault::Truncated { needed: HEADER_LEN, available: bytes.len() });
    }
    if bytes[16] != MAGIC {
        return Err(BatchFault::BadMagic(bytes[16]));
    }
    Ok(BatchHeader {
        base_offset: i64_at(bytes, 0),
        size,
        leader_epoch: i32_at(bytes, 12),
        crc: u32::from_be_bytes(bytes[17..21].try_into().expect("4 bytes")),
        attributes: i16_at(bytes, 21),
        last_offset_delta: i32_at(bytes, 23),
        base_timestamp: i64_at(bytes, 27),
        max_timestamp: i64_at(bytes, 35),
        producer_id: i64_at(bytes, 43),
        producer_epoch: i16_at(bytes, 51),
        base_sequence: i32_at(bytes, 53),
        records_count: i32_at(bytes, 57),
    })
}

/// The header of the batch at the start of `bytes`, which must hold all of
/// it, with its CRC-32C checked.
pub(crate) fn parse_checked(bytes: &[u8]) -> Result<BatchHeader, BatchFault> {
    let header = parse_header(bytes)?;
    if bytes.len() < header.size {
        return Err(BatchFault::Truncated { needed: header.size, available: bytes.len() });
    }
    let computed = crc32c::crc32c(&bytes[CRC_START..header.size]);
    if header.crc != computed {
        return Err(BatchFault::BadCrc { base_offset: header.base_offset, stored: header.crc, computed });
    }
    Ok(header)
}

/// Parses and fully checks the batch at the start of `bytes` (which may hold
/// more after it): magic, length, CRC-32C and offset fields.
pub fn validate(bytes: &[u8]) -> Result<BatchHeader, BatchFault> {
    let header = parse_checked(bytes)?;
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

/// In an uncompressed CreateTime batch, the offset and timestamp of the
/// first record with timestamp >= `timestamp`. `None` for compressed or
/// LogAppendTime batches (the caller then uses the batch's base offset).
pub fn first_record_at_or_after(batch: &[u8], timestamp: i64) -> Option<(i64, i64)> {
    let header = parse_header(batch).ok()?;
    if header.is_compressed() || header.attributes & attributes::LOG_APPEND_TIME != 0 {
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
