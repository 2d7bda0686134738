//! Round trips, CRC checks, and a cross-check against the `kafka-protocol`
//! crate's encoder and decoder in both directions.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

use super::varint::{put_varlong, varlong_len};
use super::*;

fn sample_records() -> Vec<Record> {
    vec![
        Record {
            key: Some(Bytes::from_static(b"key-1")),
            value: Bytes::from_static(b"hello"),
            timestamp_ms: 1_700_000_000_000,
            headers: vec![],
        },
        Record {
            key: None,
            value: Bytes::from(vec![7u8; 300]),
            timestamp_ms: 1_700_000_000_005,
            headers: vec![
                Header { key: "trace".into(), value: Some(Bytes::from_static(b"abc")) },
                Header { key: "empty".into(), value: None },
            ],
        },
        Record { key: Some(Bytes::new()), value: Bytes::new(), timestamp_ms: 1_700_000_100_000, headers: vec![] },
    ]
}

fn decoded(records: &[Record], base_offset: i64) -> Vec<DecodedRecord> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| DecodedRecord {
            offset: base_offset + i as i64,
            timestamp_ms: r.timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
        })
        .collect()
}

fn kafka_encode(records: &[kafka_protocol::records::Record]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
    buf.to_vec()
}

/// Sets the base offset of a batch, as the broker does (outside the CRC).
fn with_base_offset(mut batch: Vec<u8>, base: i64) -> Vec<u8> {
    batch[0..8].copy_from_slice(&base.to_be_bytes());
    batch
}

#[test]
fn round_trip() {
    let records = sample_records();
    let batch = Bytes::from(with_base_offset(encode_batch(&records), 42));
    assert_eq!(decode_batches(&batch).unwrap(), decoded(&records, 42));
    assert_eq!(next_offset(&batch).unwrap(), Some(45));
}

#[test]
fn encoding_is_byte_identical_to_kafka_protocol() {
    let records = sample_records();
    assert_eq!(encode_batch(&records), kafka_encode(&to_kafka_records(&records)));
}

#[test]
fn kafka_protocol_decodes_our_batches() {
    let records = sample_records();
    let mut batch = Bytes::from(with_base_offset(encode_batch(&records), 100));
    let set = RecordBatchDecoder::decode(&mut batch).unwrap();
    assert_eq!(set.records.len(), records.len());
    for (i, (theirs, ours)) in set.records.iter().zip(&records).enumerate() {
        assert_eq!(theirs.offset, 100 + i as i64);
        assert_eq!(theirs.timestamp, ours.timestamp_ms);
        assert_eq!(theirs.key, ours.key);
        assert_eq!(theirs.value.as_ref(), Some(&ours.value));
        assert_eq!(theirs.headers.len(), ours.headers.len());
        assert_eq!(theirs.producer_id, -1);
        assert_eq!(theirs.sequence, -1 + i as i32);
    }
}

#[test]
fn we_decode_kafka_protocol_batches() {
    let records = sample_records();
    let batch = with_base_offset(kafka_encode(&to_kafka_records(&records)), 7);
    assert_eq!(decode_batches(&Bytes::from(batch)).unwrap(), decoded(&records, 7));
}

#[test]
fn compressed_batches_from_kafka_clients_decode_the_same() {
    let records = sample_records();
    for compression in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &to_kafka_records(&records),
            &RecordEncodeOptions { version: 2, compression },
        )
        .unwrap();
        let batch = Bytes::from(with_base_offset(buf.to_vec(), 7));
        assert_eq!(decode_batches(&batch).unwrap(), decoded(&records, 7), "{compression:?}");
        let mut out = Vec::new();
        assert_eq!(decode_batches_into(&batch, 9, &mut out).unwrap(), Some(10), "{compression:?}");
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![9], "{compression:?}");
    }
}

#[test]
fn concatenated_batches_skip_records_below_min_offset() {
    let records = sample_records();
    let mut data = with_base_offset(encode_batch(&records), 10);
    data.extend(with_base_offset(encode_batch(&records), 13));
    let data = Bytes::from(data);
    let mut out = Vec::new();
    let next = decode_batches_into(&data, 12, &mut out).unwrap();
    assert_eq!(next, Some(16));
    let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![12, 13, 14, 15]);
    assert_eq!(out[0].value, records[2].value);
}

#[test]
fn bad_crc_is_reported() {
    let mut batch = encode_batch(&sample_records());
    let last = batch.len() - 1;
    batch[last] ^= 0xff;
    let err = decode_batches(&Bytes::from(batch)).unwrap_err();
    assert!(matches!(err, BatchFault::BadCrc { .. }));
    assert!(err.to_string().contains("CRC-32C mismatch"), "{err}");
}

#[test]
fn truncated_batch_is_reported() {
    let batch = encode_batch(&sample_records());
    let err = decode_batches(&Bytes::from(batch[..batch.len() - 3].to_vec())).unwrap_err();
    assert!(matches!(err, BatchFault::Truncated { .. }), "{err}");
}

#[test]
fn empty_input_decodes_to_nothing() {
    assert_eq!(decode_batches_into(&Bytes::new(), 0, &mut Vec::new()).unwrap(), None);
}

#[test]
fn record_size_is_an_upper_bound() {
    for record in sample_records() {
        let mut builder = BatchBuilder::with_capacity(0);
        let before = builder.size_bytes();
        builder.append(record.timestamp_ms, record.key.as_deref(), &record.value, &record.headers);
        let bound = BatchBuilder::record_size(record.key.as_deref(), &record.value, &record.headers);
        assert!(builder.size_bytes() - before <= bound);
    }
}

#[test]
fn varint_lengths() {
    for value in [0i64, 1, -1, 63, -64, 64, -65, 8191, 8192, i32::MAX as i64, i64::MIN, i64::MAX] {
        let mut buf = Vec::new();
        put_varlong(&mut buf, value);
        assert_eq!(buf.len(), varlong_len(value), "{value}");
    }
}

/// A batch of `count` records of `value_len` bytes each, null keys.
fn make_batch(count: i32, timestamp: i64, value_len: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::with_capacity(0);
    for _ in 0..count {
        builder.append(timestamp, None, &vec![b'v'; value_len], &[]);
    }
    builder.finish()
}

#[test]
fn validation_checks_and_stamping_keeps_the_crc() {
    let mut b = make_batch(3, 1_000, 10);
    let h = validate(&b).unwrap();
    assert_eq!((h.records_count, h.last_offset_delta, h.size), (3, 2, b.len()));
    assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (-1, -1, -1));
    let mut builder = BatchBuilder::with_capacity(0);
    builder.append(1, None, b"v", &[]);
    builder.set_producer(42, 3, 17);
    let h = validate(&builder.finish()).unwrap();
    assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (42, 3, 17));
    assign_offset(&mut b, 42, 7);
    let h = validate(&b).unwrap();
    assert_eq!((h.base_offset, h.leader_epoch, h.next_offset()), (42, 7, 45));
}

#[test]
fn flipped_byte_fails_crc_and_short_input_is_truncated() {
    let mut b = make_batch(1, 0, 10);
    let last = b.len() - 3;
    b[last] ^= 0xff;
    assert!(matches!(validate(&b), Err(BatchFault::BadCrc { .. })));
    let b = make_batch(10, 0, 100);
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

#[test]
fn tombstones_encode_as_null_values_kafka_protocol_reads() {
    let batch = encode_records([(Some(Bytes::from_static(b"k")), None), (None, Some(Bytes::from_static(b"v")))], 5);
    let mut bytes = Bytes::from(batch);
    let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
    assert_eq!(set.records.len(), 2);
    assert_eq!(set.records[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(set.records[0].value, None);
    assert_eq!(set.records[1].value.as_deref(), Some(&b"v"[..]));
    assert_eq!(set.records[1].timestamp, 5);
}

#[test]
fn first_record_at_or_after_finds_the_offset() {
    let records: Vec<Record> = (0..4)
        .map(|i| Record { key: None, value: Bytes::from_static(b"x"), timestamp_ms: 100 + i * 10, headers: vec![] })
        .collect();
    let mut batch = encode_batch(&records);
    assign_offset(&mut batch, 50, 0);
    assert_eq!(first_record_at_or_after(&batch, 115), Some((52, 120)));
    assert_eq!(first_record_at_or_after(&batch, 200), None);
}
