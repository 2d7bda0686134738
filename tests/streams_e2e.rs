//! kmon-streams over a real broker, through `kmon streams` instances:
//! word count with two instances of one application, one SIGKILLed
//! mid-run: the survivor takes its tasks over (restoring the stores from
//! their changelogs) and the output table (latest count per word) equals
//! the counts computed here, exactly (aggregations skip reprocessed
//! records by their origin; see the README). Then a windowed sum (a late
//! record dropped and counted) and an enrichment join with a compacted
//! table.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use kmon_client::{Admin, OffsetSpec, OutgoingRecord, Producer, ProducerConfig};

/// A `kmon streams` instance, SIGKILLed on drop.
struct Instance {
    process: KillOnDrop,
    metrics: String,
}

impl Instance {
    fn start(bootstrap: &str, args: &[&str]) -> Instance {
        let mut command = Command::new(KMON);
        command
            .args([
                "streams",
                "--bootstrap",
                bootstrap,
                "--commit-interval",
                "300ms",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .env_remove("KMON_BOOTSTRAP")
            .stderr(Stdio::null());
        let (child, line) = spawn_until_ready(command, kmon_streams::cli::READY_PREFIX, Duration::from_secs(30));
        let process = KillOnDrop(child);
        let metrics = kmon_cluster::ready_field(&line, "metrics").expect("metrics= in the ready line").to_owned();
        Instance { process, metrics }
    }

    /// Sum of the samples of `name` (any labels); 0 when absent.
    fn metric(&self, name: &str) -> f64 {
        let Some((200, body)) = http_get(&self.metrics, "/metrics") else { return 0.0 };
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn line(i: u64) -> String {
    (0..5).map(|j| format!("w{}", (i * 31 + j * 17) % 97)).collect::<Vec<_>>().join(" ")
}

async fn produce_lines(producer: &Producer, topic: &str, range: std::ops::Range<u64>) {
    for i in range {
        producer.send(topic, None, Bytes::from(line(i))).await.unwrap();
    }
    producer.flush().await.unwrap();
}

/// The latest value per key of `topic`.
async fn table(bootstrap: &str, topic: &str, partitions: u32) -> BTreeMap<String, Vec<u8>> {
    consume_all(bootstrap, topic, partitions)
        .await
        .into_iter()
        .map(|r| (String::from_utf8(r.key.unwrap_or_default().to_vec()).unwrap(), r.value.to_vec()))
        .collect()
}

fn counts(table: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, u64> {
    table.iter().map(|(k, v)| (k.clone(), u64::from_be_bytes(v[..].try_into().unwrap()))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_survives_a_sigkilled_instance_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let bootstrap = broker.bootstrap();
    let admin = Admin::connect(&bootstrap).await.unwrap();
    admin.create_topic("lines", 4, 1, Vec::new()).await.unwrap();
    admin.create_topic("word-counts", 4, 1, Vec::new()).await.unwrap();
    let producer = Producer::connect(ProducerConfig::new(bootstrap.clone())).await.unwrap();
    const LINES: u64 = 20_000;
    let mut reference: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..LINES {
        for word in line(i).split(' ') {
            *reference.entry(word.to_owned()).or_default() += 1;
        }
    }
    produce_lines(&producer, "lines", 0..LINES / 2).await;

    let args = ["--application-id", "wc", "word-count", "--input", "lines", "--output", "word-counts"];
    let mut doomed = Instance::start(&bootstrap, &args);
    let survivor = Instance::start(&bootstrap, &args);
    // Both own tasks and the doomed one has committed state to its
    // changelogs; then it dies while the second half is being written.
    wait_for("both instances processing and committing", Duration::from_secs(60), || {
        (doomed.metric("kmon_streams_commits_total") >= 2.0
            && doomed.metric("kafka_streams_stream_thread_metrics_process_total") > 1000.0
            && survivor.metric("kmon_streams_active_tasks") > 0.0
            && doomed.metric("kmon_streams_active_tasks") > 0.0)
            .then_some(())
    });
    // Commits alone do not prove counts reached the changelog: under load
    // the first commits can precede the first repartitioned words. Every
    // changelog partition must hold counts, so whichever the doomed one
    // owns is restored by the survivor.
    wait_for_async("every counts changelog partition written", Duration::from_secs(60), || {
        let admin = &admin;
        async move {
            for partition in 0..4 {
                let end = admin.list_offset("wc-counts-changelog", partition, OffsetSpec::Latest).await.ok()?;
                if end.offset.unwrap_or(0) == 0 {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;
    let writer = {
        let producer = Producer::connect(ProducerConfig::new(bootstrap.clone())).await.unwrap();
        tokio::spawn(async move { produce_lines(&producer, "lines", LINES / 2..LINES).await })
    };
    doomed.process.0.kill().unwrap();
    doomed.process.0.wait().unwrap();
    writer.await.unwrap();

    // The survivor takes every task (after the session timeout), restores
    // the dead one's stores and finishes.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut last;
    loop {
        last = counts(&table(&bootstrap, "word-counts", 4).await);
        if last == reference || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(last, reference, "final word counts (output table) against the offline reference");
    assert_eq!(survivor.metric("kmon_streams_active_tasks"), 8.0, "4 input + 4 repartition partitions");
    assert!(
        survivor.metric("kmon_streams_state_restored_records_total") > 0.0,
        "the dead instance's stores were restored"
    );
    assert!(survivor.metric("kmon_streams_state_restore_seconds") > 0.0);
    // The changelog holds the same counts (latest per word, origins
    // stripped: the value ends with the u64).
    let changelog = table(&bootstrap, "wc-counts-changelog", 4).await;
    let from_changelog: BTreeMap<String, u64> =
        changelog.iter().map(|(k, v)| (k.clone(), u64::from_be_bytes(v[v.len() - 8..].try_into().unwrap()))).collect();
    assert_eq!(from_changelog, reference);
    let described = admin.describe_topic("wc-counts-changelog").await.unwrap();
    assert!(described.configs.iter().any(|(k, v)| k == "cleanup.policy" && v == "compact"), "{:?}", described.configs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_sum_drops_late_records_and_enrichment_joins_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let bootstrap = broker.bootstrap();
    let admin = Admin::connect(&bootstrap).await.unwrap();
    for topic in ["readings", "sums", "clicks", "enriched"] {
        admin.create_topic(topic, 2, 1, Vec::new()).await.unwrap();
    }
    admin.create_topic("users", 2, 1, vec![("cleanup.policy".into(), "compact".into())]).await.unwrap();
    let producer = Producer::connect(ProducerConfig::new(bootstrap.clone())).await.unwrap();
    let send = |topic: &'static str, ts: i64, key: &'static str, value: &'static str| {
        let producer = &producer;
        async move {
            let record = OutgoingRecord {
                partition: None,
                timestamp_ms: Some(ts),
                key: Some(key.as_bytes()),
                value: value.as_bytes(),
                headers: &[],
            };
            producer.send_record(topic, &record).await.unwrap();
        }
    };
    // k1: 1+2 in [0, 10s), 4 in [10s, 20s); the 8 at 3 s comes after
    // stream time reached 12 s with no grace: dropped. Then both keys at
    // 100 s: with a 30 s retention the windows at 0 s and 10 s are purged
    // from the store after their sums were written.
    for (ts, key, value) in [
        (1_000, "k1", "1"),
        (5_000, "k1", "2"),
        (2_000, "k2", "10"),
        (12_000, "k1", "4"),
        (3_000, "k1", "8"),
        (100_000, "k1", "5"),
        (100_000, "k2", "6"),
    ] {
        send("readings", ts, key, value).await;
    }
    send("users", 0, "u1", "alice").await;
    send("users", 1, "u1", "alice-2").await;
    send("clicks", 2, "u1", "home").await;
    send("clicks", 3, "u2", "cart").await;
    producer.flush().await.unwrap();

    let windowed = Instance::start(
        &bootstrap,
        &[
            "--application-id",
            "ws",
            "windowed-sum",
            "--input",
            "readings",
            "--output",
            "sums",
            "--window",
            "10s",
            "--retention",
            "30s",
        ],
    );
    let enrich = Instance::start(
        &bootstrap,
        &["--application-id", "en", "enrich", "--input", "clicks", "--table", "users", "--output", "enriched"],
    );
    let expected_sums: BTreeMap<String, u64> =
        [("k1@0", 3), ("k1@10000", 4), ("k2@0", 10), ("k1@100000", 5), ("k2@100000", 6)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    let expected_enriched: BTreeMap<String, Vec<u8>> =
        [("u1", "home|alice-2"), ("u2", "cart|unknown")].into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
    let (mut sums, mut enriched) = (BTreeMap::new(), BTreeMap::new());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (sums != expected_sums || enriched != expected_enriched) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sums = counts(&table(&bootstrap, "sums", 2).await);
        enriched = table(&bootstrap, "enriched", 2).await;
    }
    assert_eq!(sums, expected_sums);
    assert_eq!(enriched, expected_enriched);
    assert_eq!(windowed.metric("kafka_streams_stream_task_metrics_dropped_records_total"), 1.0);
    wait_for("the three windows past retention purged", Duration::from_secs(10), || {
        (windowed.metric("kmon_streams_expired_windows_total") == 3.0).then_some(())
    });
    // The windowed changelog also ages out (a day past the retention),
    // as Kafka Streams' windowed changelogs do.
    let configs = admin.describe_topic("ws-window-sums-changelog").await.unwrap().configs;
    let config = |key: &str| configs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(config("cleanup.policy"), Some("compact,delete"), "{configs:?}");
    assert_eq!(config("retention.ms"), Some("86430000"), "{configs:?}");
    assert_eq!(enrich.metric("kmon_streams_state_restored_records_total"), 2.0, "the users table, read at assignment");
}

/// `streams/examples/word_count.rs`, the program a newcomer runs first,
/// built by `cargo build --all-targets` (test.sh) beside `kmon`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_word_count_example_counts_words() {
    let example = std::path::Path::new(KMON).with_file_name("examples").join("word_count");
    assert!(example.exists(), "{} missing: build it with `cargo build -p kmon-streams --examples`", example.display());
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let bootstrap = broker.bootstrap();
    let admin = Admin::connect(&bootstrap).await.unwrap();
    admin.create_topic("text-lines", 2, 1, Vec::new()).await.unwrap();
    admin.create_topic("word-counts", 2, 1, Vec::new()).await.unwrap();
    let producer = Producer::connect(ProducerConfig::new(bootstrap.clone())).await.unwrap();
    for text in ["The quick brown fox", "jumps over the lazy dog", "THE END"] {
        producer.send("text-lines", None, Bytes::from(text)).await.unwrap();
    }
    producer.flush().await.unwrap();
    let _example = KillOnDrop(
        Command::new(&example)
            .arg(&bootstrap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the word_count example"),
    );
    let mut expected: BTreeMap<String, u64> =
        ["quick", "brown", "fox", "jumps", "over", "lazy", "dog", "end"].iter().map(|w| (w.to_string(), 1)).collect();
    expected.insert("the".into(), 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut last;
    loop {
        last = counts(&table(&bootstrap, "word-counts", 2).await);
        if last == expected || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(last, expected, "word-counts written by the example");
}
