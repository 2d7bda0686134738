//! Kafka RecordBatch v2 codec: pure, no I/O.
//!
//! kmon moves records as Kafka RecordBatch v2 bytes from the producer to
//! disk and back to consumers. This module builds uncompressed batches the
//! way Kafka's Java producer does (no transactions, no idempotence) and
//! decodes concatenated batches back into records. It is hand-rolled for
//! speed; a test cross-checks it against the `kafka-protocol` crate in both
//! directions.
//!
//! # Batch layout (all integers big-endian)
//!
//! ```text
//! offset  size  field
//!  0      8     baseOffset            0 from the producer; the broker assigns it
//!  8      4     batchLength           bytes after this field
//! 12      4     partitionLeaderEpoch  -1 from the producer
//! 16      1     magic                 2
//! 17      4     crc                   CRC-32C (Castagnoli) of bytes 21..end
//! 21      2     attributes            bits 0-2 compression (0 = none),
//!                                     bit 3 timestamp type (0 = CreateTime),
//!                                     bit 4 transactional, bit 5 control
//! 23      4     lastOffsetDelta       recordCount - 1
//! 27      8     baseTimestamp         first record's timestamp (ms)
//! 35      8     maxTimestamp          largest record timestamp (ms)
//! 43      8     producerId            -1
//! 51      2     producerEpoch         -1
//! 53      4     baseSequence          -1
//! 57      4     recordCount
//! 61      ...   records
//! ```
//!
//! # Record layout (varint = zig-zag LEB128, as Kafka/protobuf `sint`)
//!
//! ```text
//! length          varint   bytes after this field
//! attributes      int8     0
//! timestampDelta  varlong  timestamp - baseTimestamp
//! offsetDelta     varint   index in the batch
//! keyLength       varint   -1 = null key
//! key             bytes
//! valueLength     varint   -1 = null value (decoded as empty)
//! value           bytes
//! headerCount     varint
//!   headerKeyLength varint, headerKey (UTF-8), headerValueLength varint
//!   (-1 = null), headerValue
//! ```

use bytes::Bytes;

use crate::error::ClientError;

/// Bytes before the first record of a batch.
pub const BATCH_HEADER_LEN: usize = 61;
const LENGTH_FIELD_END: usize = 12;
const CRC_START: usize = 21;
const MAGIC: u8 = 2;
const COMPRESSION_MASK: i16 = 0x7;
const CONTROL_FLAG: i16 = 1 << 5;

/// A record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

/// A record to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Option<Bytes>,
    pub value: Bytes,
    /// CreateTime, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub headers: Vec<Header>,
}

/// A record decoded from a batch, with its absolute offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    /// A null value (tombstone) decodes as empty.
    pub value: Bytes,
    pub headers: Vec<Header>,
}

/// Builds one uncompressed RecordBatch v2, appending each record's bytes
/// as it comes (no per-record allocation).
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    records: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// A new, empty batch whose buffer has room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(BATCH_HEADER_LEN));
        buf.resize(BATCH_HEADER_LEN, 0);
        BatchBuilder { buf, records: 0, base_timestamp: 0, max_timestamp: i64::MIN }
    }

    /// Number of records appended.
    pub fn record_count(&self) -> usize {
        self.records as usize
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Size of the batch so far, header included.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The encoded size a record would add to a batch.
    pub fn record_size(key: Option<&[u8]>, value: &[u8], headers: &[Header]) -> usize {
        // Deltas are at most 5 (offset) and 10 (timestamp) bytes.
        let body = body_size(i64::MAX, i32::MAX, key, value, headers);
        body + varint_len(body as i32)
    }

    /// Appends a record; returns its offset delta (index) in the batch.
    pub fn append(&mut self, timestamp_ms: i64, key: Option<&[u8]>, value: &[u8], headers: &[Header]) -> u32 {
        if self.records == 0 {
            self.base_timestamp = timestamp_ms;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        let offset_delta = self.records;
        let timestamp_delta = timestamp_ms.wrapping_sub(self.base_timestamp);
        let body = body_size(timestamp_delta, offset_delta, key, value, headers);
        let buf = &mut self.buf;
        buf.reserve(body + 5);
        put_varint(buf, body as i32);
        buf.push(0); // attributes
        put_varlong(buf, timestamp_delta);
        put_varint(buf, offset_delta);
        put_nullable(buf, key);
        put_varint(buf, value.len() as i32);
        buf.extend_from_slice(value);
        put_varint(buf, headers.len() as i32);
        for header in headers {
            put_varint(buf, header.key.len() as i32);
            buf.extend_from_slice(header.key.as_bytes());
            put_nullable(buf, header.value.as_deref());
        }
        self.records += 1;
        offset_delta as u32
    }

    /// Fills in the header and CRC and returns the batch bytes.
    pub fn finish(self) -> Vec<u8> {
        let mut buf = self.buf;
        let batch_length = (buf.len() - LENGTH_FIELD_END) as i32;
        let header = &mut buf[..BATCH_HEADER_LEN];
        header[0..8].copy_from_slice(&0i64.to_be_bytes());
        header[8..12].copy_from_slice(&batch_length.to_be_bytes());
        header[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        header[16] = MAGIC;
        header[21..23].copy_from_slice(&0i16.to_be_bytes());
        header[23..27].copy_from_slice(&(self.records - 1).to_be_bytes());
        header[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        let max_timestamp = if self.records == 0 { self.base_timestamp } else { self.max_timestamp };
        header[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
        header[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        header[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        header[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        header[57..61].copy_from_slice(&self.records.to_be_bytes());
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        buf
    }
}

/// Encodes `records` as one batch.
pub fn encode_batch(records: &[Record]) -> Vec<u8> {
    let size = records.iter().map(|r| BatchBuilder::record_size(r.key.as_deref(), &r.value, &r.headers)).sum::<usize>();
    let mut builder = BatchBuilder::with_capacity(BATCH_HEADER_LEN + size);
    for record in records {
        builder.append(record.timestamp_ms, record.key.as_deref(), &record.value, &record.headers);
    }
    builder.finish()
}

/// Decodes every record of a concatenation of batches.
pub fn decode_batches(data: &Bytes) -> Result<Vec<DecodedRecord>, ClientError> {
    let mut records = Vec::new();
    decode_batches_into(data, i64::MIN, &mut records)?;
    Ok(records)
}

/// Decodes the records at offset `min_offset` or later of a concatenation
/// of batches into `out` (keys and values are slices of `data`), checking
/// every batch's CRC. Records of control batches are skipped. Returns the
/// offset after the last batch, or `None` if `data` is empty.
pub fn decode_batches_into(
    data: &Bytes,
    min_offset: i64,
    out: &mut Vec<DecodedRecord>,
) -> Result<Option<i64>, ClientError> {
    let mut next_offset = None;
    let mut position = 0;
    while position < data.len() {
        let header = BatchHeader::parse(&data[position..])?;
        let end = position + header.total_len;
        let batch = &data[position..end];
        let actual = crc32c::crc32c(&batch[CRC_START..]);
        if actual != header.crc {
            return Err(ClientError::CorruptBatch(format!(
                "CRC mismatch in the batch at offset {}: stored {:#010x}, computed {actual:#010x}",
                header.base_offset, header.crc
            )));
        }
        next_offset = Some(header.next_offset());
        if header.attributes & CONTROL_FLAG == 0 && header.next_offset() > min_offset {
            if header.attributes & COMPRESSION_MASK == 0 {
                decode_records(data, position, &header, min_offset, out)?;
            } else {
                decode_compressed(data.slice(position..end), min_offset, out)?;
            }
        }
        position = end;
    }
    Ok(next_offset)
}

/// The offset after the last batch of `data` (None if empty), read from the
/// batch headers only (no CRC check, no record decoding).
pub fn next_offset(data: &[u8]) -> Result<Option<i64>, ClientError> {
    let mut next = None;
    let mut position = 0;
    while position < data.len() {
        let header = BatchHeader::parse(&data[position..])?;
        next = Some(header.next_offset());
        position += header.total_len;
    }
    Ok(next)
}

/// The fixed fields of a batch the decoder needs.
struct BatchHeader {
    base_offset: i64,
    total_len: usize,
    crc: u32,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    record_count: i32,
}

impl BatchHeader {
    fn parse(data: &[u8]) -> Result<Self, ClientError> {
        if data.len() < BATCH_HEADER_LEN {
            return Err(corrupt(format!(
                "truncated batch header: {} bytes left, a header is {BATCH_HEADER_LEN}",
                data.len()
            )));
        }
        let base_offset = i64::from_be_bytes(data[0..8].try_into().expect("8 bytes"));
        let batch_length = i32::from_be_bytes(data[8..12].try_into().expect("4 bytes"));
        let total_len = LENGTH_FIELD_END as i64 + i64::from(batch_length);
        if total_len < BATCH_HEADER_LEN as i64 || total_len > data.len() as i64 {
            return Err(corrupt(format!(
                "batch at offset {base_offset} has length {batch_length} but {} bytes remain",
                data.len() - LENGTH_FIELD_END
            )));
        }
        if data[16] != MAGIC {
            return Err(corrupt(format!(
                "batch at offset {base_offset} has magic {} (only v2 is supported)",
                data[16]
            )));
        }
        let attributes = i16::from_be_bytes(data[21..23].try_into().expect("2 bytes"));
        Ok(BatchHeader {
            base_offset,
            total_len: total_len as usize,
            crc: u32::from_be_bytes(data[17..21].try_into().expect("4 bytes")),
            attributes,
            last_offset_delta: i32::from_be_bytes(data[23..27].try_into().expect("4 bytes")),
            base_timestamp: i64::from_be_bytes(data[27..35].try_into().expect("8 bytes")),
            record_count: i32::from_be_bytes(data[57..61].try_into().expect("4 bytes")),
        })
    }

    fn next_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta) + 1
    }
}

/// A batch a Kafka client wrote compressed (kmon's producer never does):
/// kafka-protocol decompresses it (gzip, snappy, lz4, zstd).
fn decode_compressed(mut batch: Bytes, min_offset: i64, out: &mut Vec<DecodedRecord>) -> Result<(), ClientError> {
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut batch)
        .map_err(|err| corrupt(format!("compressed batch: {err}")))?;
    out.extend(set.records.into_iter().filter(|r| r.offset >= min_offset).map(|r| DecodedRecord {
        offset: r.offset,
        timestamp_ms: r.timestamp,
        key: r.key,
        value: r.value.unwrap_or_default(),
        headers: r.headers.into_iter().map(|(key, value)| Header { key: key.as_str().to_string(), value }).collect(),
    }));
    Ok(())
}

fn decode_records(
    data: &Bytes,
    batch_start: usize,
    header: &BatchHeader,
    min_offset: i64,
    out: &mut Vec<DecodedRecord>,
) -> Result<(), ClientError> {
    let end = batch_start + header.total_len;
    let mut reader = Reader { data, position: batch_start + BATCH_HEADER_LEN, end, base_offset: header.base_offset };
    out.reserve(header.record_count.max(0) as usize);
    for _ in 0..header.record_count {
        let length = reader.varint()?;
        if length < 0 || reader.position + length as usize > end {
            return Err(reader.error("record length runs past the batch"));
        }
        let record_end = reader.position + length as usize;
        reader.position += 1; // attributes
        let timestamp_delta = reader.varlong()?;
        let offset_delta = reader.varint()?;
        let offset = header.base_offset + i64::from(offset_delta);
        if offset < min_offset {
            reader.position = record_end;
            continue;
        }
        let key = reader.nullable_bytes()?;
        let value = reader.nullable_bytes()?.unwrap_or_default();
        let header_count = reader.varint()?;
        let mut headers = Vec::new();
        for _ in 0..header_count.max(0) {
            let key = reader.nullable_bytes()?.ok_or_else(|| reader.error("null header key"))?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| reader.error("header key is not UTF-8"))?;
            let value = reader.nullable_bytes()?;
            headers.push(Header { key, value });
        }
        if reader.position != record_end {
            return Err(reader.error("record length does not match its fields"));
        }
        out.push(DecodedRecord {
            offset,
            timestamp_ms: header.base_timestamp.wrapping_add(timestamp_delta),
            key,
            value,
            headers,
        });
    }
    if reader.position != end {
        return Err(reader.error("bytes left over after the last record"));
    }
    Ok(())
}

struct Reader<'a> {
    data: &'a Bytes,
    position: usize,
    end: usize,
    base_offset: i64,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> ClientError {
        corrupt(format!("{what} (batch at offset {})", self.base_offset))
    }

    fn varlong(&mut self) -> Result<i64, ClientError> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            if self.position >= self.end || shift > 63 {
                return Err(self.error("bad varint"));
            }
            let byte = self.data[self.position];
            self.position += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }

    fn varint(&mut self) -> Result<i32, ClientError> {
        let value = self.varlong()?;
        i32::try_from(value).map_err(|_| self.error("varint out of range"))
    }

    fn nullable_bytes(&mut self) -> Result<Option<Bytes>, ClientError> {
        let length = self.varint()?;
        if length < 0 {
            return Ok(None);
        }
        let end = self.position + length as usize;
        if end > self.end {
            return Err(self.error("field runs past the batch"));
        }
        let bytes = self.data.slice(self.position..end);
        self.position = end;
        Ok(Some(bytes))
    }
}

fn corrupt(message: String) -> ClientError {
    ClientError::CorruptBatch(message)
}

fn body_size(timestamp_delta: i64, offset_delta: i32, key: Option<&[u8]>, value: &[u8], headers: &[Header]) -> usize {
    let mut size = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    size += nullable_len(key);
    size += varint_len(value.len() as i32) + value.len();
    size += varint_len(headers.len() as i32);
    for header in headers {
        size += varint_len(header.key.len() as i32) + header.key.len();
        size += nullable_len(header.value.as_deref());
    }
    size
}

fn nullable_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        Some(bytes) => varint_len(bytes.len() as i32) + bytes.len(),
        None => 1,
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn varint_len(value: i32) -> usize {
    varlong_len(i64::from(value))
}

fn varlong_len(value: i64) -> usize {
    let bits = 64 - (zigzag(value) | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn put_varint(buf: &mut Vec<u8>, value: i32) {
    put_varlong(buf, i64::from(value));
}

fn put_varlong(buf: &mut Vec<u8>, value: i64) {
    let mut value = zigzag(value);
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn put_nullable(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            put_varint(buf, bytes.len() as i32);
            buf.extend_from_slice(bytes);
        }
        None => put_varint(buf, -1),
    }
}

#[cfg(test)]
mod tests;
