//! Uncompressed batches, built the way Kafka's Java producer builds them
//! (no transactions, no idempotence).

use bytes::Bytes;

use super::header::{CRC_START, HEADER_LEN, LOG_OVERHEAD, MAGIC};
use super::varint::{nullable_len, put_nullable, put_varint, put_varlong, varint_len, varlong_len};

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

/// Builds one uncompressed RecordBatch v2, appending each record's bytes
/// as it comes (no per-record allocation).
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    records: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    /// (producer id, epoch, base sequence): -1s without idempotence.
    producer: (i64, i16, i32),
}

impl BatchBuilder {
    /// A new, empty batch whose buffer has room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(HEADER_LEN));
        buf.resize(HEADER_LEN, 0);
        BatchBuilder { buf, records: 0, base_timestamp: 0, max_timestamp: i64::MIN, producer: (-1, -1, -1) }
    }

    /// Marks the batch as an idempotent producer's: its id, epoch and the
    /// sequence of its first record.
    pub fn set_producer(&mut self, producer_id: i64, epoch: i16, base_sequence: i32) {
        self.producer = (producer_id, epoch, base_sequence);
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
        let body = body_size(i64::MAX, i32::MAX, key, Some(value), headers);
        body + varint_len(body as i32)
    }

    /// Appends a record; returns its offset delta (index) in the batch.
    pub fn append(&mut self, timestamp_ms: i64, key: Option<&[u8]>, value: &[u8], headers: &[Header]) -> u32 {
        self.append_nullable(timestamp_ms, key, Some(value), headers)
    }

    /// [`Self::append`] where the value may be null (a tombstone, which
    /// compaction reads as "delete this key").
    pub fn append_nullable(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> u32 {
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
        put_nullable(buf, value);
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
        let batch_length = (buf.len() - LOG_OVERHEAD) as i32;
        let header = &mut buf[..HEADER_LEN];
        header[0..8].copy_from_slice(&0i64.to_be_bytes());
        header[8..12].copy_from_slice(&batch_length.to_be_bytes());
        header[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        header[16] = MAGIC;
        header[21..23].copy_from_slice(&0i16.to_be_bytes());
        header[23..27].copy_from_slice(&(self.records - 1).to_be_bytes());
        header[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        let max_timestamp = if self.records == 0 { self.base_timestamp } else { self.max_timestamp };
        header[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
        let (producer_id, epoch, base_sequence) = self.producer;
        header[43..51].copy_from_slice(&producer_id.to_be_bytes());
        header[51..53].copy_from_slice(&epoch.to_be_bytes());
        header[53..57].copy_from_slice(&base_sequence.to_be_bytes());
        header[57..61].copy_from_slice(&self.records.to_be_bytes());
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        buf
    }
}

/// Encodes `records` as one batch.
pub fn encode_batch(records: &[Record]) -> Vec<u8> {
    let size = records.iter().map(|r| BatchBuilder::record_size(r.key.as_deref(), &r.value, &r.headers)).sum::<usize>();
    let mut builder = BatchBuilder::with_capacity(HEADER_LEN + size);
    for record in records {
        builder.append(record.timestamp_ms, record.key.as_deref(), &record.value, &record.headers);
    }
    builder.finish()
}

/// Encodes records the broker writes itself (group offsets, compacted
/// survivors, test data) as one batch: offsets from 0 (the log assigns the
/// real ones), one timestamp, no headers; a `None` value is a tombstone.
pub fn encode_records(records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>)>, timestamp_ms: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::with_capacity(HEADER_LEN);
    for (key, value) in records {
        builder.append_nullable(timestamp_ms, key.as_deref(), value.as_deref(), &[]);
    }
    builder.finish()
}

fn body_size(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut size = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    size += nullable_len(key);
    size += nullable_len(value);
    size += varint_len(headers.len() as i32);
    for header in headers {
        size += varint_len(header.key.len() as i32) + header.key.len();
        size += nullable_len(header.value.as_deref());
    }
    size
}

/// The same records as kafka-protocol's type, offsets from 0 as one batch
/// has them: for encoding with kafka-protocol (a Kafka client's encoder)
/// where a test or a benchmark compares against it.
pub fn to_kafka_records(records: &[Record]) -> Vec<kafka_protocol::records::Record> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i as i64,
            // offset - sequence constant keeps one batch; base sequence -1.
            sequence: i as i32 - 1,
            timestamp: r.timestamp_ms,
            key: r.key.clone(),
            value: Some(r.value.clone()),
            headers: r
                .headers
                .iter()
                .map(|h| (kafka_protocol::protocol::StrBytes::from_string(h.key.clone()), h.value.clone()))
                .collect(),
        })
        .collect()
}

/// Encodes records of Kafka's full record type as one uncompressed batch,
/// each keeping its offset (the base offset is the first's), stamped with
/// `leader_epoch`: compaction's rewrite of a batch's survivors. Producer
/// fields are cleared: the rewritten batch is no producer's.
pub fn encode_full(records: &[kafka_protocol::records::Record], leader_epoch: i32) -> Vec<u8> {
    use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};
    let Some(first) = records.first().map(|r| r.offset) else { return Vec::new() };
    let records: Vec<_> = records
        .iter()
        .map(|r| kafka_protocol::records::Record {
            // kafka-protocol derives offsets from sequences: keep
            // offset - sequence constant within the batch.
            sequence: (r.offset - first) as i32 - 1,
            producer_id: -1,
            producer_epoch: -1,
            ..r.clone()
        })
        .collect();
    let mut out = bytes::BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut out, &records, &options).expect("encoding to memory cannot fail");
    // Outside the CRC: stamped as the broker stamps a produced batch.
    out[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    out.to_vec()
}
