//! Bad input gets a clear error, a non-zero exit, and loses nothing.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use kmon_client::{Admin, ErrorCode, Producer, ProducerConfig};
use kmon_proto::v1::kmon_client::KmonClient;
use kmon_proto::v1::{Acks, PartitionRecords, ProduceRequest};

#[test]
fn cli_reports_bad_topics_configs_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.bootstrap();
    kmon_ok(&b, &["topic", "create", "events", "--partitions", "2", "--config", "retention.ms=60000"], "");
    kmon_ok(&b, &["produce", "--topic", "events"], "one\ntwo\nthree\n");

    let err = kmon_err(&b, &["topic", "create", "events", "--partitions", "1"], "");
    assert!(err.contains("already exists"), "{err}");
    let err = kmon_err(&b, &["topic", "create", "bad name!", "--partitions", "1"], "");
    assert!(err.contains("invalid topic name") && err.contains("' '"), "{err}");
    let long = "x".repeat(250);
    let err = kmon_err(&b, &["topic", "create", &long, "--partitions", "1"], "");
    assert!(err.contains("at most 249"), "{err}");
    let err = kmon_err(&b, &["topic", "create", "ok-name", "--partitions", "1", "--config", "retention.ms=soon"], "");
    assert!(err.contains("retention.ms=soon") && err.contains("not an integer"), "{err}");
    let err = kmon_err(&b, &["topic", "create", "ok-name", "--partitions", "1", "--config", "retension.ms=5"], "");
    assert!(err.contains("unknown topic config"), "{err}");
    let err = kmon_err(&b, &["topic", "create", "ok-name", "--partitions", "0"], "");
    assert!(err.to_lowercase().contains("partition"), "{err}");
    let err = kmon_err(&b, &["produce", "--topic", "nope"], "x\n");
    assert!(err.contains("unknown topic 'nope'"), "{err}");
    let err = kmon_err(&b, &["topic", "describe", "nope"], "");
    assert!(err.contains("unknown topic 'nope'"), "{err}");
    let err = kmon_err(&b, &["consume", "--topic", "events", "--partition", "7", "--from-beginning"], "");
    assert!(err.contains("partition 7"), "{err}");
    let err = kmon_err(&b, &["consume", "--topic", "events", "--partition", "0", "--offset", "999"], "");
    assert!(err.contains("out of range") && err.contains("0.."), "{err}");
    let err = kmon_err(&b, &["produce", "--topic", "events", "--acks", "2"], "x\n");
    assert!(err.contains("acks"), "{err}");

    // Nothing stored was lost along the way.
    let out = kmon_ok(&b, &["consume", "--topic", "events", "--from-beginning"], "");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["one", "three", "two"]);
    let described = kmon_ok(&b, &["topic", "describe", "events"], "");
    assert!(described.contains("retention.ms") && described.contains("60000"), "{described}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_oversized_batches_are_refused_by_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let admin = Admin::connect(&broker.bootstrap()).await.unwrap();
    admin.create_topic("strict", 1, 1, vec![("max.message.bytes".into(), "2000".into())]).await.unwrap();

    let good = kmon_client::batch::encode_batch(&[kmon_client::batch::Record {
        key: None,
        value: Bytes::from_static(b"hello"),
        timestamp_ms: 1,
        headers: vec![],
    }]);
    let mut raw = KmonClient::connect(format!("http://{}", broker.bootstrap())).await.unwrap();
    let produce = |records: Vec<u8>| ProduceRequest {
        acks: Acks::Leader as i32,
        timeout_ms: 5000,
        partitions: vec![PartitionRecords { topic: "strict".into(), partition: 0, records: records.into() }],
    };
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x55;
    let status = raw.produce(produce(bad_crc)).await.unwrap_err();
    assert_eq!(status.metadata().get("kmon-error").unwrap(), "CORRUPT_MESSAGE");
    assert!(status.message().contains("CRC"), "{}", status.message());

    let status = raw.produce(produce(good[..good.len() - 3].to_vec())).await.unwrap_err();
    assert_eq!(status.metadata().get("kmon-error").unwrap(), "CORRUPT_MESSAGE");

    let big = kmon_client::batch::encode_batch(&[kmon_client::batch::Record {
        key: None,
        value: Bytes::from(vec![7u8; 5000]),
        timestamp_ms: 1,
        headers: vec![],
    }]);
    let status = raw.produce(produce(big)).await.unwrap_err();
    assert_eq!(status.metadata().get("kmon-error").unwrap(), "MESSAGE_TOO_LARGE");
    assert!(status.message().contains("max.message.bytes = 2000"), "{}", status.message());

    // Through the client library the error keeps its code.
    let producer = Producer::connect(ProducerConfig::new(broker.bootstrap())).await.unwrap();
    let handle = producer.send("strict", None, Bytes::from(vec![1u8; 5000])).await.unwrap();
    let _ = producer.flush().await;
    let err = handle.wait().await.unwrap_err();
    assert!(matches!(err.code(), Some(ErrorCode::MessageTooLarge)), "{err}");

    // The good batch still lands at offset 0: nothing bad was written.
    let resp = raw.produce(produce(good)).await.unwrap().into_inner();
    assert_eq!(resp.partitions[0].base_offset, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_over_several_data_dirs_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().join("disk-a"), dir.path().join("disk-b")];
    let mut broker = BrokerProcess::start_dirs(&dirs, &[]);
    let b = broker.bootstrap();
    kmon_ok(&b, &["topic", "create", "spread", "--partitions", "4"], "");
    let count = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("spread-"))
            .count()
    };
    // The broker opens the logs as it applies the new metadata.
    wait_for("the 4 partition logs", Duration::from_secs(20), || {
        (count(&dirs[0]) + count(&dirs[1]) == 4).then_some(())
    });
    assert_eq!(count(&dirs[0]), 2, "new partitions go to the least used dir");
    assert_eq!(count(&dirs[1]), 2);
    let input: String = (0..400).map(|i| format!("r{i}\n")).collect();
    kmon_ok(&b, &["produce", "--topic", "spread"], &input);
    broker.terminate();
    broker.restart();
    let out = kmon_ok(&broker.bootstrap(), &["consume", "--topic", "spread", "--from-beginning"], "");
    assert_eq!(out.lines().count(), 400);
    let admin = Admin::connect(&broker.bootstrap()).await.unwrap();
    let topic = admin.describe_topic("spread").await.unwrap();
    let total: i64 = topic.partitions.iter().map(|p| p.log_end_offset).sum();
    assert_eq!(total, 400);
}

#[test]
fn broker_config_file_flags_override_and_bad_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(KMON).args(["broker", "--print-default-config"]).output().unwrap();
    assert!(out.status.success());
    let defaults = String::from_utf8(out.stdout).unwrap();
    assert!(defaults.contains("log_segment_bytes") && defaults.contains("log_flush_policy = \"interval\""));
    // The printed defaults are a valid config file.
    let file = dir.path().join("kmon.toml");
    std::fs::write(&file, &defaults).unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &["--config", file.to_str().unwrap()]);
    assert!(broker.grpc.starts_with("127.0.0.1:"), "flags override the file's listen address");
    drop(broker);

    std::fs::write(&file, "log_segment_bytes = 10\n").unwrap();
    let out = std::process::Command::new(KMON)
        .args(["broker", "--data-dir", dir.path().join("d2").to_str().unwrap(), "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("segment.bytes") || err.contains("log_segment_bytes"), "{err}");

    std::fs::write(&file, "log_segmnt_bytes = 10\n").unwrap();
    let out = std::process::Command::new(KMON).args(["broker", "--config", file.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("log_segmnt_bytes"));
}
