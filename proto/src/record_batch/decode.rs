//! Records back out of concatenated batches, every batch's CRC checked;
//! keys and values are slices of the input (no copies).

use bytes::Bytes;

use super::encode::Header;
use super::header::{BatchFault, BatchHeader, HEADER_LEN, parse_checked, parse_header};

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

/// Decodes every record of a concatenation of batches.
pub fn decode_batches(data: &Bytes) -> Result<Vec<DecodedRecord>, BatchFault> {
    let mut records = Vec::new();
    decode_batches_into(data, i64::MIN, &mut records)?;
    Ok(records)
}

/// Decodes the records at offset `min_offset` or later of a concatenation
/// of batches into `out`, checking every batch's CRC. Records of control
/// batches are skipped. Returns the offset after the last batch, or `None`
/// if `data` is empty.
pub fn decode_batches_into(
    data: &Bytes,
    min_offset: i64,
    out: &mut Vec<DecodedRecord>,
) -> Result<Option<i64>, BatchFault> {
    let mut next_offset = None;
    let mut position = 0;
    while position < data.len() {
        let header = parse_checked(&data[position..])?;
        let end = position + header.size;
        next_offset = Some(header.next_offset());
        if !header.is_control() && header.next_offset() > min_offset {
            if header.is_compressed() {
                decode_compressed(data.slice(position..end), &header, min_offset, out)?;
            } else {
                decode_records(data, position, &header, min_offset, out)?;
            }
        }
        position = end;
    }
    Ok(next_offset)
}

/// The offset after the last batch of `data` (None if empty), read from the
/// batch headers only (no CRC check, no record decoding).
pub fn next_offset(data: &[u8]) -> Result<Option<i64>, BatchFault> {
    let mut next = None;
    let mut position = 0;
    while position < data.len() {
        let header = parse_header(&data[position..])?;
        if header.size > data.len() - position {
            return Err(BatchFault::Truncated { needed: header.size, available: data.len() - position });
        }
        next = Some(header.next_offset());
        position += header.size;
    }
    Ok(next)
}

/// A batch a Kafka client wrote compressed (kmon's producer never does):
/// kafka-protocol decompresses it (gzip, snappy, lz4, zstd).
fn decode_compressed(
    mut batch: Bytes,
    header: &BatchHeader,
    min_offset: i64,
    out: &mut Vec<DecodedRecord>,
) -> Result<(), BatchFault> {
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut batch).map_err(|err| BatchFault::BadRecord {
        base_offset: header.base_offset,
        what: format!("compressed batch: {err}"),
    })?;
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
) -> Result<(), BatchFault> {
    let end = batch_start + header.size;
    let mut reader = Reader { data, position: batch_start + HEADER_LEN, end, base_offset: header.base_offset };
    out.reserve(header.records_count.max(0) as usize);
    for _ in 0..header.records_count {
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
    fn error(&self, what: &str) -> BatchFault {
        BatchFault::BadRecord { base_offset: self.base_offset, what: what.to_string() }
    }

    fn varlong(&mut self) -> Result<i64, BatchFault> {
        let (value, read) = super::varint::read_varlong(&self.data[self.position..self.end.max(self.position)])
            .ok_or_else(|| self.error("bad varint"))?;
        self.position += read;
        Ok(value)
    }

    fn varint(&mut self) -> Result<i32, BatchFault> {
        let value = self.varlong()?;
        i32::try_from(value).map_err(|_| self.error("varint out of range"))
    }

    fn nullable_bytes(&mut self) -> Result<Option<Bytes>, BatchFault> {
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

/// Every record of a run of batches with all of Kafka's fields (null values,
/// per-record offsets, producer ids), compressed batches too: for the
/// broker's own readers (compaction, group state), which must see what a
/// consumer never does.
pub fn decode_full(batches: &Bytes) -> Result<Vec<kafka_protocol::records::Record>, BatchFault> {
    let mut buf = batches.clone();
    let mut out = Vec::new();
    while !buf.is_empty() {
        let base_offset = parse_header(&buf).map(|h| h.base_offset)?;
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf)
            .map_err(|err| BatchFault::BadRecord { base_offset, what: err.to_string() })?;
        out.extend(set.records);
    }
    Ok(out)
}
