//! End-to-end tests of the foundation: a real `kmon broker` process, the
//! client library and the CLI.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kmon_client::{Acks, Admin, Consumer, ConsumerConfig, OffsetSpec, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_records_round_trip_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let admin = Admin::connect(&broker.bootstrap()).await.unwrap();
    admin.create_topic("round-trip", 4, 1, vec![]).await.unwrap();

    let producer = Producer::connect(ProducerConfig::new(broker.bootstrap())).await.unwrap();
    let n = 100_000u32;
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        let key = Bytes::from(format!("key-{}", i % 1000));
        let value = Bytes::from(format!("value-{i:08}-{}", "x".repeat((i % 50) as usize)));
        handles.push(producer.send("round-trip", Some(key), value).await.unwrap());
    }
    producer.flush().await.unwrap();
    let mut acked = HashMap::new();
    for (i, h) in handles.into_iter().enumerate() {
        let meta = h.wait().await.unwrap();
        assert!(acked.insert((meta.partition, meta.offset), i as u32).is_none(), "two records at one offset");
    }

    let records = consume_all(&broker.bootstrap(), "round-trip", 4).await;
    assert_eq!(records.len(), n as usize);
    let mut last_per_key: HashMap<Bytes, u32> = HashMap::new();
    for r in &records {
        let i = acked[&(r.partition, r.offset)];
        assert_eq!(r.value, Bytes::from(format!("value-{i:08}-{}", "x".repeat((i % 50) as usize))));
        let key = r.key.clone().unwrap();
        assert_eq!(key, Bytes::from(format!("key-{}", i % 1000)));
        // Same key → same partition (Kafka's murmur2), in send order.
        assert_eq!(r.partition, kmon_client::partitioner::partition_for_key(&key, 4));
        if let Some(prev) = last_per_key.insert(key, i) {
            assert!(prev < i, "records of one key out of order: {prev} then {i}");
        }
    }
}

#[test]
fn cli_produce_consume_keeps_order_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.bootstrap();
    kmon_ok(&b, &["topic", "create", "orders", "--partitions", "3"], "");
    let mut input = String::new();
    for i in 0..3000 {
        input.push_str(&format!("customer-{}:event-{i}\n", i % 7));
    }
    kmon_ok(&b, &["produce", "--topic", "orders", "--key-separator", ":", "--acks", "all"], &input);
    let out = kmon_ok(&b, &["consume", "--topic", "orders", "--from-beginning", "--print-key"], "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3000);
    let mut last: HashMap<&str, usize> = HashMap::new();
    for line in lines {
        let (key, value) = line.split_once('\t').expect("key<TAB>value");
        let i: usize = value.strip_prefix("event-").unwrap().parse().unwrap();
        assert_eq!(key, format!("customer-{}", i % 7));
        if let Some(prev) = last.insert(key, i) {
            assert!(prev < i, "{key}: event-{prev} came before event-{i}");
        }
    }
    // One partition, read from an offset, bounded count.
    let out =
        kmon_ok(&b, &["consume", "--topic", "orders", "--partition", "0", "--offset", "5", "--max-records", "3"], "");
    assert_eq!(out.lines().count(), 3);
    // describe shows the partitions and their end offsets add up.
    let described = kmon_ok(&b, &["topic", "describe", "orders"], "");
    assert!(described.contains("orders"), "{described}");
    assert!(kmon_ok(&b, &["topic", "list"], "").lines().any(|l| l.contains("orders")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_produce_with_fsync_always_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &["--flush-policy", "always"]);
    Admin::connect(&broker.bootstrap()).await.unwrap().create_topic("durable", 2, 1, vec![]).await.unwrap();

    let mut config = ProducerConfig::new(broker.bootstrap());
    config.acks = Acks::Leader;
    config.linger = Duration::from_millis(1);
    config.batch_size = 16 << 10;
    config.request_timeout = Duration::from_secs(5);
    let producer = Producer::connect(config).await.unwrap();
    // Keep producing in the background; collect what was acknowledged.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sender = tokio::spawn(async move {
        for i in 0u64.. {
            let value = Bytes::from(format!("durable-{i}"));
            let Ok(handle) = producer.send("durable", None, value.clone()).await else {
                break;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(meta) = handle.wait().await {
                    let _ = tx.send((meta.partition, meta.offset, value));
                }
            });
            if i % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let mut acked = Vec::new();
    while acked.len() < 20_000 {
        acked.push(rx.recv().await.unwrap());
    }
    broker.kill(); // SIGKILL mid-stream
    sender.abort();
    // Acknowledgements already in flight when the broker died still count.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(a) = rx.try_recv() {
        acked.push(a);
    }
    broker.restart();
    let records = consume_all(&broker.bootstrap(), "durable", 2).await;
    let stored: HashMap<(u32, i64), Bytes> = records.into_iter().map(|r| ((r.partition, r.offset), r.value)).collect();
    for (partition, offset, value) in &acked {
        assert_eq!(stored.get(&(*partition, *offset)), Some(value), "acknowledged record {partition}/{offset} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_over_segment_tail_is_cut_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data, &[]);
    Admin::connect(&broker.bootstrap()).await.unwrap().create_topic("torn", 1, 1, vec![]).await.unwrap();
    let mut config = ProducerConfig::new(broker.bootstrap());
    config.linger = Duration::ZERO;
    let producer = Producer::connect(config).await.unwrap();
    // 50 batches of 10 records.
    for b in 0..50 {
        let values: Vec<Vec<u8>> = (0..10).map(|i| format!("rec-{}", b * 10 + i).into_bytes()).collect();
        let handles = producer.send_batch("torn", values.iter().map(|v| (None, v.as_slice()))).await.unwrap();
        producer.flush().await.unwrap();
        for h in handles {
            h.wait().await.unwrap();
        }
    }
    broker.terminate();
    let segment = segment_files(&data.join("torn-0")).pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let len = bytes.len();
    bytes[len - 16..].copy_from_slice(b"GARBAGE!GARBAGE!");
    std::fs::write(&segment, &bytes).unwrap();

    broker.restart();
    assert!(broker.stderr().contains("truncated_bytes"), "the broker logs what it cut:\n{}", broker.stderr());
    let records = consume_all(&broker.bootstrap(), "torn", 1).await;
    assert_eq!(records.len(), 490, "the last (damaged) batch is gone, the rest is served");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value, Bytes::from(format!("rec-{i}")));
    }
    // New records continue after the valid log.
    let h = producer_for(&broker).await.send("torn", None, Bytes::from_static(b"after")).await.unwrap();
    assert_eq!(h.wait().await.unwrap().offset, 490);
}

async fn producer_for(broker: &BrokerProcess) -> Producer {
    let mut config = ProducerConfig::new(broker.bootstrap());
    config.linger = Duration::ZERO;
    Producer::connect(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("broker.toml");
    std::fs::write(&config_file, "log_retention_check_interval_ms = 100\n").unwrap();
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, &["--config", config_file.to_str().unwrap()]);
    let admin = Admin::connect(&broker.bootstrap()).await.unwrap();
    let configs =
        vec![("segment.bytes".to_string(), "2048".to_string()), ("retention.bytes".to_string(), "8192".to_string())];
    admin.create_topic("short-lived", 1, 1, configs).await.unwrap();
    let producer = producer_for(&broker).await;
    for i in 0..200 {
        let h = producer.send("short-lived", None, Bytes::from(vec![b'r'; 100 + i % 3])).await.unwrap();
        producer.flush().await.unwrap();
        h.wait().await.unwrap();
    }
    let partition_dir = data.join("short-lived-0");
    let on_disk = || -> u64 {
        segment_files(&partition_dir).iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
    };
    let end = admin.list_offset("short-lived", 0, OffsetSpec::Latest).await.unwrap().offset.unwrap();
    assert_eq!(end, 200, "about 20 KB were written");
    // retention.bytes keeps the log within one segment of 8 KiB.
    wait_for("retention to delete segments", Duration::from_secs(30), || (on_disk() <= 8192 + 2048).then_some(()));
    let start = admin.list_offset("short-lived", 0, OffsetSpec::Earliest).await.unwrap().offset.unwrap();
    assert!(start > 0);
    let first_file = segment_files(&partition_dir)[0].file_stem().unwrap().to_string_lossy().parse::<i64>().unwrap();
    assert_eq!(first_file, start, "log start offset is the first remaining segment");
    // Reading below the start is a clear error naming the range.
    let err =
        kmon_err(&broker.bootstrap(), &["consume", "--topic", "short-lived", "--partition", "0", "--offset", "0"], "");
    assert!(err.contains(&format!("{start}..200")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_fetch_returns_as_soon_as_data_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    Admin::connect(&broker.bootstrap()).await.unwrap().create_topic("poll", 1, 1, vec![]).await.unwrap();
    let mut config = ConsumerConfig::new(broker.bootstrap());
    config.max_wait = Duration::from_secs(20);
    let mut consumer = Consumer::connect(config).await.unwrap();
    consumer.assign("poll", 0, 0);
    // An idle poll waits: it does not return empty at once.
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let records = consumer.poll().await.unwrap();
        (records, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "an idle fetch must wait for data");
    let producer = producer_for(&broker).await;
    let produced_at = Instant::now();
    producer.send("poll", None, Bytes::from_static(b"wake up")).await.unwrap().wait().await.unwrap();
    let (records, waited) = waiting.await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value, Bytes::from_static(b"wake up"));
    assert!(waited >= Duration::from_millis(300));
    assert!(produced_at.elapsed() < Duration::from_secs(10), "fetch answered long before its 20 s max wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_earliest_latest_and_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let admin = Admin::connect(&broker.bootstrap()).await.unwrap();
    admin.create_topic("timed", 1, 1, vec![]).await.unwrap();
    let mut raw =
        kmon_proto::v1::kmon_client::KmonClient::connect(format!("http://{}", broker.bootstrap())).await.unwrap();
    // Ten batches of three records with known timestamps: 1000, 1010, ... per record.
    for b in 0..10i64 {
        let records: Vec<kmon_client::batch::Record> = (0..3)
            .map(|i| kmon_client::batch::Record {
                key: None,
                value: Bytes::from(format!("t{}", b * 3 + i)),
                timestamp_ms: 1000 + (b * 3 + i) * 10,
                headers: vec![],
            })
            .collect();
        raw.produce(kmon_proto::v1::ProduceRequest {
            acks: kmon_proto::v1::Acks::Leader as i32,
            timeout_ms: 5000,
            partitions: vec![kmon_proto::v1::PartitionRecords {
                topic: "timed".into(),
                partition: 0,
                records: kmon_client::batch::encode_batch(&records).into(),
            }],
        })
        .await
        .unwrap();
    }
    let at = |spec| {
        let admin = &admin;
        async move { admin.list_offset("timed", 0, spec).await.unwrap() }
    };
    assert_eq!(at(OffsetSpec::Earliest).await.offset, Some(0));
    assert_eq!(at(OffsetSpec::Latest).await.offset, Some(30));
    let found = at(OffsetSpec::Timestamp(1125)).await;
    assert_eq!(found.offset, Some(13), "first record at or after 1125 ms is the 14th (1130 ms)");
    assert_eq!(found.timestamp_ms, 1130);
    assert_eq!(at(OffsetSpec::Timestamp(0)).await.offset, Some(0));
    assert_eq!(at(OffsetSpec::Timestamp(5000)).await.offset, None, "no record that new");
}

/// A broker stopped with SIGTERM closes its logs and marks its data
/// directory; one killed with SIGKILL leaves no mark, so its next start
/// registers as shut down uncleanly (it may have lost appends not yet
/// synced, and must not lead from an ISR of one over an eligible replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_stop_that_closed_every_log_counts_as_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data, &[]);
    let admin = Admin::connect(&broker.bootstrap()).await.unwrap();
    admin.create_topic("marked", 1, 1, vec![]).await.unwrap();
    let producer = Producer::connect(ProducerConfig::new(broker.bootstrap())).await.unwrap();
    producer.send("marked", None, Bytes::from_static(b"one")).await.unwrap().wait().await.unwrap();
    let marker = data.join(".kmon_clean_shutdown");
    let unclean = |broker: &BrokerProcess| broker.stderr().matches("unclean shutdown").count();

    broker.terminate();
    assert!(marker.exists(), "a clean stop marks the data directory");
    broker.restart();
    assert!(!marker.exists(), "the mark goes at start: a crash from here on is unclean");
    assert_eq!(unclean(&broker), 0, "{}", broker.stderr());

    broker.restart(); // SIGKILL
    assert_eq!(unclean(&broker), 1, "{}", broker.stderr());
    let records = consume_all(&broker.bootstrap(), "marked", 1).await;
    assert_eq!(records.len(), 1, "nothing stored is lost");
}
