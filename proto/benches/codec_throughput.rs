//! Throughput of kmon's RecordBatch codec against kafka-protocol's, for
//! 100-byte records in ~1.1 MB batches (a measurement, not a test):
//! `cargo bench -p kmon-proto --bench codec_throughput`

use std::hint::black_box;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
use kmon_proto::record_batch::{BatchBuilder, decode_batches_into, encode_batch, to_kafka_records};

const RECORDS: usize = 10_000;
const ROUNDS: usize = 100;
const BASE_TS: i64 = 1_700_000_000_000;

fn main() {
    let value = Bytes::from(vec![b'x'; 100]);
    let total = (RECORDS * ROUNDS) as f64;
    let rate = |start: Instant| total / start.elapsed().as_secs_f64() / 1e6;

    let start = Instant::now();
    for _ in 0..ROUNDS {
        let mut builder = BatchBuilder::with_capacity(1 << 20);
        for i in 0..RECORDS {
            builder.append(BASE_TS + i as i64, None, &value, &[]);
        }
        black_box(builder.finish());
    }
    println!("kmon encode:           {:6.2} M records/s", rate(start));

    let records: Vec<kmon_proto::record_batch::Record> = (0..RECORDS)
        .map(|i| kmon_proto::record_batch::Record {
            key: None,
            value: value.clone(),
            timestamp_ms: BASE_TS + i as i64,
            headers: vec![],
        })
        .collect();
    let theirs = to_kafka_records(&records);
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    let start = Instant::now();
    for _ in 0..ROUNDS {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &theirs, &options).unwrap();
        black_box(buf);
    }
    println!("kafka-protocol encode: {:6.2} M records/s", rate(start));

    let batch = Bytes::from(encode_batch(&records));
    let start = Instant::now();
    let mut out = Vec::with_capacity(RECORDS);
    for _ in 0..ROUNDS {
        out.clear();
        decode_batches_into(&batch, 0, &mut out).unwrap();
        black_box(&out);
    }
    println!("kmon decode:           {:6.2} M records/s", rate(start));

    let start = Instant::now();
    for _ in 0..ROUNDS {
        let mut buf = batch.clone();
        black_box(RecordBatchDecoder::decode(&mut buf).unwrap());
    }
    println!("kafka-protocol decode: {:6.2} M records/s", rate(start));
}
