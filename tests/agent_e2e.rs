//! The node agent end to end: a real broker and a real `kmon agent`
//! (ephemeral ports, 200 ms interval): its `/metrics` parses, has the
//! node_exporter disk, file system and NIC series this machine's /sys says
//! it should, and follows real disk writes, `kmon status --json` lists it, its samples land in
//! `__kmon_node_metrics`, and the samples taken while the broker was
//! SIGKILLed arrive, in order and without a gap, once it is back.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use kmon_client::{Consumer, ConsumerConfig};

const TOPIC: &str = "__kmon_node_metrics";
const NODE: &str = "e2e-node";

/// `GET /metrics`, parsed by a real exposition-format parser.
fn scrape(address: &str) -> prometheus_parse::Scrape {
    let mut stream = std::net::TcpStream::connect(address).expect("connect to /metrics");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("application/openmetrics-text"), "{head}");
    assert!(body.trim_end().ends_with("# EOF"), "OpenMetrics ends with # EOF");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("/metrics parses")
}

fn value(sample: &prometheus_parse::Sample) -> f64 {
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => panic!("unexpected value type for {}", sample.metric),
    }
}

fn sum(scrape: &prometheus_parse::Scrape, metric: &str) -> f64 {
    scrape.samples.iter().filter(|s| s.metric == metric).map(value).sum()
}

/// Every record of the topic so far (JSON values), read to the high watermark.
fn consume_all(bootstrap: &str) -> Vec<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut consumer = Consumer::connect(ConsumerConfig::new(bootstrap)).await.expect("consumer");
        consumer.assign(TOPIC, 0, 0);
        let mut records = Vec::new();
        loop {
            let batch = consumer.poll().await.expect("poll");
            records.extend(batch.iter().map(|r| {
                assert_eq!(r.key.as_deref(), Some(NODE.as_bytes()), "keyed by node");
                serde_json::from_slice::<serde_json::Value>(&r.value).expect("JSON sample")
            }));
            // Stop at the high watermark of the last fetch (the agent keeps
            // producing, so waiting for an empty fetch could last forever).
            let position = consumer.position(TOPIC, 0).unwrap_or(0);
            if consumer.high_watermark(TOPIC, 0).is_some_and(|hw| position >= hw) {
                return records;
            }
        }
    })
}

fn sequences(records: &[serde_json::Value]) -> Vec<u64> {
    records.iter().map(|r| r["sequence"].as_u64().expect("sequence")).collect()
}

/// Sequence numbers, duplicates (an at-least-once resend) dropped: they
/// must first appear in increasing order, without a gap.
fn assert_in_order_without_gap(seqs: &[u64]) -> (u64, u64) {
    let mut seen = BTreeSet::new();
    let firsts: Vec<u64> = seqs.iter().copied().filter(|s| seen.insert(*s)).collect();
    assert!(firsts.windows(2).all(|w| w[1] == w[0] + 1), "sequence numbers out of order or with a gap: {firsts:?}");
    (firsts[0], *firsts.last().unwrap())
}

/// Value of the sample of `metric` whose `label` is `value`.
fn labelled(scrape: &prometheus_parse::Scrape, metric: &str, label: &str, value_: &str) -> Option<f64> {
    scrape.samples.iter().find(|s| s.metric == metric && s.labels.get(label) == Some(value_)).map(value)
}

/// The node_exporter series of issue 15 (item 6), checked against this
/// machine's /sys: disk series for whole disks only, inode and read-only
/// figures for the data dir's file system (`mountpoint`) and for `/`, and
/// a link speed exactly for the interfaces whose speed is known.
fn assert_node_exporter_disk_fs_and_nic_series(scrape: &prometheus_parse::Scrape, mountpoint: &str) {
    // Disks: the kernel's names of whole disks (and dm-N), which are what
    // /sys/block lists; partitions are not there, nor are they in /metrics.
    let devices: BTreeSet<&str> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "node_disk_io_time_seconds_total")
        .filter_map(|s| s.labels.get("device"))
        .collect();
    assert!(!devices.is_empty(), "node_disk_io_time_seconds_total for no device");
    for device in &devices {
        assert!(
            std::path::Path::new("/sys/block").join(device).exists(),
            "{device} is not a whole disk (/sys/block/{device} missing)"
        );
        assert!(
            !["loop", "ram", "zram", "fd"].iter().any(|p| device.starts_with(p)),
            "{device} is excluded by default"
        );
        for metric in [
            "node_disk_reads_completed_total",
            "node_disk_writes_completed_total",
            "node_disk_read_bytes_total",
            "node_disk_written_bytes_total",
        ] {
            assert!(labelled(scrape, metric, "device", device).is_some(), "{metric}{{device={device:?}}} missing");
        }
    }
    let partitions: Vec<&str> = scrape
        .samples
        .iter()
        .filter(|s| s.metric.starts_with("node_disk_"))
        .filter_map(|s| s.labels.get("device"))
        .filter(|d| std::path::Path::new("/sys/class/block").join(d).join("partition").exists())
        .collect();
    assert!(partitions.is_empty(), "partitions in the disk series: {partitions:?}");
    assert!(sum(scrape, "node_disk_reads_completed_total") > 0.0, "this machine has read from a disk");
    assert!(sum(scrape, "node_disk_io_time_seconds_total") > 0.0, "this machine's disks were busy at some point");

    // File systems: inodes and the read-only flag, for the data dir's file
    // system (writable: the broker writes there) and for `/`.
    assert!(labelled(scrape, "node_filesystem_readonly", "mountpoint", "/").is_some_and(|ro| ro == 0.0 || ro == 1.0));
    assert_eq!(labelled(scrape, "node_filesystem_readonly", "mountpoint", mountpoint), Some(0.0));
    let files = labelled(scrape, "node_filesystem_files", "mountpoint", mountpoint).expect("node_filesystem_files");
    let free = labelled(scrape, "node_filesystem_files_free", "mountpoint", mountpoint).expect("files_free");
    assert!(files > 0.0 && free > 0.0 && free <= files, "inodes of {mountpoint}: {free} free of {files}");
    let with_labels = scrape
        .samples
        .iter()
        .find(|s| s.metric == "node_filesystem_files" && s.labels.get("mountpoint") == Some(mountpoint))
        .unwrap();
    assert!(with_labels.labels.get("device").is_some() && with_labels.labels.get("fstype").is_some());

    // NICs: a speed series exactly for the interfaces whose speed is known.
    for sample in scrape.samples.iter().filter(|s| s.metric == "node_network_receive_bytes_total") {
        let device = sample.labels.get("device").unwrap();
        let known = std::fs::read_to_string(format!("/sys/class/net/{device}/speed"))
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .filter(|mbit| *mbit >= 0);
        let speed = labelled(scrape, "node_network_speed_bytes", "device", device);
        assert_eq!(speed, known.map(|mbit| mbit as f64 * 125_000.0), "node_network_speed_bytes of {device}");
    }
}

#[test]
fn agent_metrics_shipping_and_replay_after_a_broker_restart() {
    let mut cluster = Cluster::start(1, &[]);
    let bootstrap = cluster.brokers[0].bootstrap();
    let data_dir = cluster.brokers[0].data_dirs[0].canonicalize().unwrap();
    let agent_dir = tempfile::tempdir().unwrap();
    let agent = AgentProcess::start(&bootstrap, &agent_dir.path().join("buffer"), NODE, &[]);

    // /metrics parses and has the data dir's file system.
    let first = wait_for("node_filesystem_avail_bytes", Duration::from_secs(20), || {
        let s = scrape(&agent.metrics);
        s.samples.iter().any(|x| x.metric == "node_filesystem_avail_bytes").then_some(s)
    });
    let mountpoint = first
        .samples
        .iter()
        .filter(|s| s.metric == "node_filesystem_avail_bytes")
        .filter_map(|s| s.labels.get("mountpoint").map(str::to_owned))
        .filter(|m| data_dir.starts_with(m))
        .max_by_key(|m| m.len())
        .unwrap_or_else(|| panic!("no file system series covers {}", data_dir.display()));
    let avail = first
        .samples
        .iter()
        .find(|s| s.metric == "node_filesystem_avail_bytes" && s.labels.get("mountpoint") == Some(&mountpoint))
        .unwrap();
    assert!(value(avail) > 0.0);
    for name in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes",
        "node_load1",
        "node_network_receive_bytes_total",
        "node_network_transmit_drop_total",
        "kmon_node_broker_resident_memory_bytes",
        "kmon_agent_samples_shipped_total",
        "kmon_agent_samples_dropped_total",
    ] {
        assert!(first.samples.iter().any(|s| s.metric == name), "{name} missing from /metrics");
    }
    assert_node_exporter_disk_fs_and_nic_series(&first, &mountpoint);

    // Ours by pid: other `kmon broker` processes may run on the machine.
    let pid = cluster.brokers[0].pid().unwrap().to_string();
    let ours = first
        .samples
        .iter()
        .find(|s| s.metric == "kmon_node_broker_resident_memory_bytes" && s.labels.get("pid") == Some(pid.as_str()))
        .unwrap_or_else(|| panic!("no broker memory series for pid {pid}"));
    assert_eq!(ours.labels.get("broker"), Some("1"), "the broker's id is read from its command line");
    assert!(value(ours) > 1e6, "resident memory of a running broker: {}", value(ours));

    // Writing 200 MB (fsynced) on the data disk makes the written bytes and
    // the writes completed rise.
    let written_before = sum(&first, "node_disk_written_bytes_total");
    let writes_before = sum(&first, "node_disk_writes_completed_total");
    let file = data_dir.join("agent-e2e-ballast");
    {
        let mut f = std::fs::File::create(&file).unwrap();
        let chunk = vec![0x5a_u8; 1 << 20];
        for _ in 0..200 {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
    }
    std::fs::remove_file(&file).unwrap();
    let written_after = wait_for("node_disk_written_bytes_total to rise by 200 MB", Duration::from_secs(30), || {
        let now = sum(&scrape(&agent.metrics), "node_disk_written_bytes_total");
        (now - written_before >= 190e6).then_some(now)
    });
    assert!(written_after > written_before);
    let writes_after = sum(&scrape(&agent.metrics), "node_disk_writes_completed_total");
    assert!(writes_after > writes_before, "writes completed: {writes_before} then {writes_after}");

    // `kmon status --json` lists the agent.
    let status: serde_json::Value = wait_for("the agent in kmon status", Duration::from_secs(20), || {
        let status: serde_json::Value = serde_json::from_str(&kmon_ok(&bootstrap, &["status", "--json"], "")).unwrap();
        status["agents"].as_array().is_some_and(|a| !a.is_empty()).then_some(status)
    });
    let agents = status["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{status}");
    assert_eq!(agents[0]["node"], NODE);
    assert_eq!(agents[0]["metrics_address"], agent.metrics.as_str());
    assert!(agents[0]["last_seen"].as_str().is_some_and(|s| s.ends_with('Z')), "{status}");
    assert!(status["brokers"].is_array() && status["controller_id"].is_number(), "existing keys stay");

    // The samples land in the internal topic.
    let records = wait_for("samples in __kmon_node_metrics", Duration::from_secs(20), || {
        let records = consume_all(&bootstrap);
        (records.len() >= 5).then_some(records)
    });
    let sample = &records[0];
    assert_eq!(sample["node"], NODE);
    assert_eq!(sample["metrics_address"], agent.metrics.as_str());
    assert!(sample["timestamp_ms"].as_i64().unwrap() > 0);
    assert!(
        sample["series"].as_array().unwrap().iter().any(|s| s["name"] == "node_load1"),
        "a sample carries every series"
    );
    for name in ["node_disk_io_time_seconds_total", "node_filesystem_files", "node_filesystem_readonly"] {
        assert!(sample["series"].as_array().unwrap().iter().any(|s| s["name"] == name), "{name} is shipped");
    }
    assert_in_order_without_gap(&sequences(&records));

    // SIGKILL the broker: the agent buffers on disk meanwhile.
    cluster.broker(1).kill();
    let shipped_before = sum(&scrape(&agent.metrics), "kmon_agent_samples_shipped_total");
    wait_for("samples buffered while the broker is down", Duration::from_secs(20), || {
        (sum(&scrape(&agent.metrics), "kmon_agent_samples_buffered") >= 8.0).then_some(())
    });
    let buffered_while_down = sum(&scrape(&agent.metrics), "kmon_agent_samples_buffered");
    assert_eq!(sum(&scrape(&agent.metrics), "kmon_agent_samples_dropped_total"), 0.0);

    // Back on the same data and ports: the buffered samples arrive.
    cluster.restart(1);
    wait_for("the buffer to drain", Duration::from_secs(60), || {
        let s = scrape(&agent.metrics);
        (sum(&s, "kmon_agent_samples_buffered") == 0.0
            && sum(&s, "kmon_agent_samples_shipped_total") >= shipped_before + buffered_while_down)
            .then_some(())
    });
    let after = consume_all(&bootstrap);
    let seqs = sequences(&after);
    let (first_seq, last_seq) = assert_in_order_without_gap(&seqs);
    assert_eq!(first_seq, sequences(&records)[0], "nothing stored before the restart was lost");
    assert!(
        last_seq >= sequences(&records).last().unwrap() + buffered_while_down as u64,
        "the samples taken while the broker was down arrived (last {last_seq}); agent log:\n{}",
        agent.stderr()
    );
}
