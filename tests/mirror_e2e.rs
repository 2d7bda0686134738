//! `kmon mirror` between two real clusters (one broker each, on their own
//! ephemeral ports): 1M records with keys, headers and timestamps copied to
//! the renamed topic, the mirror SIGKILLed mid-run and restarted (nothing
//! skipped, order and every field kept per partition, duplicates only the
//! uncommitted tail), the cycle guard and internal topics left alone;
//! group failover through checkpoints and group offset sync; bad input.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kmon_client::batch::Header;
use kmon_client::{
    Admin, AutoOffsetReset, ConsumerRecord, GroupConsumer, GroupConsumerConfig, OffsetSpec, OutgoingRecord, Producer,
    ProducerConfig, TopicPartition,
};
use kmon_mirror::sync::Checkpoint;

/// `kmon mirror` with its metrics on an ephemeral port, killed on drop.
struct MirrorProcess {
    child: Child,
    metrics: String,
}

impl MirrorProcess {
    fn start(source: &str, target: &str, extra: &[&str]) -> MirrorProcess {
        let mut command = Command::new(KMON);
        command
            .args(["mirror", "--source", source, "--target", target, "--metrics-listen", "127.0.0.1:0"])
            .args(["--commit-interval", "200ms", "--checkpoint-interval", "300ms", "--refresh-interval", "1s"])
            .args(extra)
            .stderr(Stdio::null());
        let (child, line) = spawn_until_ready(command, kmon_mirror::READY_PREFIX, Duration::from_secs(60));
        let metrics = kmon_cluster::ready_field(&line, "metrics").expect("metrics= in the ready line").to_owned();
        MirrorProcess { child, metrics }
    }

    /// SIGKILL: nothing flushed or committed on the way out.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sum of a metric over its series.
    fn metric_sum(&self, name: &str) -> f64 {
        let (_, body) = http_get(&self.metrics, "/metrics").expect("mirror /metrics");
        body.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for MirrorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

const PARTITIONS: u32 = 4;

/// Produces records `from..to` of `topic`: key `k<i>`, value `v<i>`, a
/// header with the index, timestamp 1.7e12 + i, partition i % 4.
/// A source and a target cluster of one broker each, and their admins.
struct TwoClusters {
    dir: tempfile::TempDir,
    source: BrokerProcess,
    target: BrokerProcess,
    src: String,
    dst: String,
    source_admin: Admin,
    target_admin: Admin,
}

impl TwoClusters {
    async fn start() -> TwoClusters {
        let dir = tempfile::tempdir().unwrap();
        let source = BrokerProcess::start(&dir.path().join("source"), &[]);
        let target = BrokerProcess::start(&dir.path().join("target"), &[]);
        let (src, dst) = (source.bootstrap(), target.bootstrap());
        let source_admin = Admin::connect(&src).await.unwrap();
        let target_admin = Admin::connect(&dst).await.unwrap();
        TwoClusters { dir, source, target, src, dst, source_admin, target_admin }
    }
}

async fn produce_numbered(producer: &Producer, topic: &str, from: u64, to: u64) {
    for i in from..to {
        let key = format!("k{i}");
        let value = format!("v{i}");
        let headers = [Header { key: "i".into(), value: Some(Bytes::from(i.to_string())) }];
        let record = OutgoingRecord {
            partition: Some((i % PARTITIONS as u64) as u32),
            timestamp_ms: Some(1_700_000_000_000 + i as i64),
            key: Some(key.as_bytes()),
            value: value.as_bytes(),
            headers: &headers,
        };
        producer.send_record(topic, &record).await.unwrap();
    }
    producer.flush().await.unwrap();
}

fn by_partition(records: Vec<ConsumerRecord>) -> BTreeMap<u32, Vec<ConsumerRecord>> {
    let mut out: BTreeMap<u32, Vec<ConsumerRecord>> = BTreeMap::new();
    for r in records {
        out.entry(r.partition).or_default().push(r);
    }
    out
}

fn same_record(a: &ConsumerRecord, b: &ConsumerRecord) -> bool {
    a.key == b.key && a.value == b.value && a.headers == b.headers && a.timestamp_ms == b.timestamp_ms
}

async fn end_offsets(admin: &Admin, topic: &str, partitions: u32) -> Vec<i64> {
    try_end_offsets(admin, topic, partitions).await.unwrap()
}

async fn try_end_offsets(admin: &Admin, topic: &str, partitions: u32) -> Result<Vec<i64>, kmon_client::ClientError> {
    let specs: Vec<(&str, u32, OffsetSpec)> = (0..partitions).map(|p| (topic, p, OffsetSpec::Latest)).collect();
    let mut offsets = admin.list_offsets(&specs).await?;
    offsets.sort_by_key(|o| o.partition);
    Ok(offsets.iter().map(|o| o.offset.unwrap_or(0)).collect())
}

/// Sum of the mirror's committed position over `position`.
async fn committed_sum(source: &Admin, position: &[TopicPartition]) -> i64 {
    let committed = source.fetch_offsets("kmon-mirror.source.target", position).await.unwrap();
    committed.iter().filter_map(|c| c.offset).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_a_million_records_and_resumes_after_sigkill_with_nothing_skipped() {
    let TwoClusters { dir: _dir, source, target, src, dst, source_admin, target_admin } = TwoClusters::start().await;
    source_admin.create_topic("orders", PARTITIONS, 1, vec![("retention.ms".into(), "86400000".into())]).await.unwrap();
    // Came from the target (cycle) and internal: never mirrored.
    source_admin.create_topic("target.orders", 1, 1, Vec::new()).await.unwrap();
    source_admin.create_topic("mm2-offset-syncs.other.internal", 1, 1, Vec::new()).await.unwrap();
    let producer = Producer::connect(ProducerConfig::new(src.clone())).await.unwrap();
    const TOTAL: u64 = 1_000_000;
    let started = Instant::now();
    produce_numbered(&producer, "orders", 0, TOTAL / 2).await;
    eprintln!("produced {} in {:?}", TOTAL / 2, started.elapsed());

    let position: Vec<TopicPartition> = (0..PARTITIONS).map(|p| TopicPartition::new("orders", p)).collect();
    let mut mirror = MirrorProcess::start(&src, &dst, &[]);
    // Kill it mid-run: once it has committed a position and copied more.
    wait_for_async("the mirror to copy and commit some records", Duration::from_secs(60), || async {
        // The target topic appears once the mirror made it.
        let copied: i64 = try_end_offsets(&target_admin, "source.orders", PARTITIONS).await.ok()?.iter().sum();
        (copied > 50_000 && committed_sum(&source_admin, &position).await > 0).then_some(())
    })
    .await;
    mirror.kill();
    let copied_at_kill: i64 = end_offsets(&target_admin, "source.orders", PARTITIONS).await.iter().sum();
    let committed_at_kill = committed_sum(&source_admin, &position).await;
    eprintln!("killed with {copied_at_kill} copied, {committed_at_kill} committed");
    assert!(copied_at_kill < TOTAL as i64, "killed mid-run");
    produce_numbered(&producer, "orders", TOTAL / 2, TOTAL).await;
    eprintln!("produced {TOTAL} in {:?}", started.elapsed());

    let mirror = MirrorProcess::start(&src, &dst, &[]);
    let source_ends = end_offsets(&source_admin, "orders", PARTITIONS).await;
    wait_for_async("the mirror to commit the source's end offsets", Duration::from_secs(120), || async {
        let committed = source_admin.fetch_offsets("kmon-mirror.source.target", &position).await.ok()?;
        let mut committed: Vec<(u32, Option<i64>)> = committed.iter().map(|c| (c.partition, c.offset)).collect();
        committed.sort();
        (committed.iter().map(|c| c.1).collect::<Vec<_>>() == source_ends.iter().map(|&e| Some(e)).collect::<Vec<_>>())
            .then_some(())
    })
    .await;
    eprintln!("mirrored {TOTAL} in {:?}", started.elapsed());

    // Per partition: the target is the source's records in order, every
    // field kept, with one stretch copied twice (from the last commit
    // before the kill to the kill).
    let originals = by_partition(consume_all(&src, "orders", PARTITIONS).await);
    let copies = by_partition(consume_all(&dst, "source.orders", PARTITIONS).await);
    let mut duplicates = 0;
    for p in 0..PARTITIONS {
        let (orig, copy) = (&originals[&p], &copies[&p]);
        assert_eq!(orig.len() as u64, TOTAL / PARTITIONS as u64);
        assert!(copy.len() >= orig.len(), "partition {p}: {} copies of {} records", copy.len(), orig.len());
        let extra = copy.len() - orig.len();
        // The first run's copies: a prefix of the source.
        let first_run = copy.iter().zip(orig).take_while(|(c, o)| same_record(c, o)).count();
        // The rest: the source from `first_run - extra` to its end.
        let resumed = first_run - extra;
        assert!(
            copy[first_run..].iter().zip(&orig[resumed..]).all(|(c, o)| same_record(c, o)),
            "partition {p}: the copy is not the source in order (first run {first_run}, {extra} copied twice)"
        );
        assert_eq!(copy.len() - first_run, orig.len() - resumed, "partition {p}");
        duplicates += extra;
    }
    eprintln!("copied twice after the SIGKILL: {duplicates} records");
    // Exactly the tail copied after the last commit before the kill.
    assert_eq!(duplicates as i64, copied_at_kill - committed_at_kill, "only the uncommitted tail is copied again");

    let topics: Vec<String> = target_admin.list_topics().await.unwrap().into_iter().map(|t| t.name).collect();
    assert!(topics.contains(&"mm2-offset-syncs.source.internal".to_owned()), "{topics:?}");
    assert!(topics.contains(&"source.checkpoints.internal".to_owned()), "{topics:?}");
    assert!(!topics.iter().any(|t| t.contains("target.orders") || t.contains("other.internal")), "{topics:?}");
    let remote = target_admin.describe_topic("source.orders").await.unwrap();
    assert_eq!(remote.partitions.len() as u32, PARTITIONS);
    assert!(remote.configs.contains(&("retention.ms".to_owned(), "86400000".to_owned())), "{:?}", remote.configs);

    // The restarted mirror counts what it copied; nothing is left behind.
    wait_for("lag 0 on /metrics", Duration::from_secs(10), || {
        (mirror.metric_sum("kmon_mirror_lag_records") == 0.0).then_some(())
    });
    let counted = mirror.metric_sum("kafka_connect_mirror_source_connector_record_count");
    assert!(counted > 0.0 && counted <= TOTAL as f64, "{counted}");
    assert!(mirror.metric_sum("kafka_connect_mirror_source_connector_byte_count") > 0.0);
    // The series the dashboard's Mirror row plots (dashboards_live has no
    // mirror running, so this is where their names are checked).
    // The rates appear once their first 5 s window closes.
    for series in [
        "kafka_connect_mirror_source_connector_record_rate{",
        "kafka_connect_mirror_source_connector_replication_latency_ms_max{",
        "kmon_mirror_lag_records{",
    ] {
        wait_for(&format!("{series} on the mirror's /metrics"), Duration::from_secs(15), || {
            let (_, body) = http_get(&mirror.metrics, "/metrics")?;
            body.lines().any(|l| l.starts_with(series)).then_some(())
        });
    }
    drop(mirror);
    drop((source, target));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_fails_over_to_the_target_and_continues_where_it_committed() {
    let TwoClusters { dir: _dir, source: _source, target: _target, src, dst, source_admin, target_admin } =
        TwoClusters::start().await;
    source_admin.create_topic("orders", PARTITIONS, 1, Vec::new()).await.unwrap();
    let producer = Producer::connect(ProducerConfig::new(src.clone())).await.unwrap();
    produce_numbered(&producer, "orders", 0, 20_000).await;

    // The group reads part of the topic on the source and commits.
    let group = "billing";
    let mut config = GroupConsumerConfig::new(src.clone(), group);
    config.auto_commit = false;
    config.auto_offset_reset = AutoOffsetReset::Earliest;
    config.max_poll_records = 500;
    let mut consumer = GroupConsumer::connect(config).await.unwrap();
    consumer.subscribe(vec!["orders".into()]);
    let mut read = 0;
    while read < 6_000 {
        read += consumer.poll().await.unwrap().len();
    }
    consumer.commit().await.unwrap();
    let committed: BTreeMap<u32, i64> = source_admin
        .fetch_offsets(group, &[])
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| Some((c.partition, c.offset?)))
        .collect();
    consumer.close().await.unwrap();
    assert!(!committed.is_empty());

    let _mirror = MirrorProcess::start(&src, &dst, &[]);
    let remote: Vec<TopicPartition> = committed.keys().map(|&p| TopicPartition::new("source.orders", p)).collect();
    let synced: BTreeMap<u32, i64> =
        wait_for_async("the group's offsets synced to the target", Duration::from_secs(60), || async {
            let offsets = target_admin.fetch_offsets(group, &remote).await.ok()?;
            let synced: BTreeMap<u32, i64> =
                offsets.into_iter().filter_map(|c| Some((c.partition, c.offset?))).collect();
            (synced.len() == committed.len()).then_some(synced)
        })
        .await;
    // One source, nothing copied twice: the offsets translate 1:1.
    assert_eq!(synced, committed);

    // The checkpoints topic holds MM2-shaped checkpoints of the group.
    let checkpoints = consume_all(&dst, "source.checkpoints.internal", 1).await;
    let decoded: Vec<Checkpoint> = checkpoints
        .iter()
        .map(|r| Checkpoint::decode(r.key.as_deref().unwrap(), &r.value).unwrap())
        .filter(|c| c.group == group)
        .collect();
    for (&p, &offset) in &committed {
        assert!(
            decoded.iter().any(|c| c.partition == TopicPartition::new("source.orders", p)
                && c.upstream == offset
                && c.downstream == offset),
            "no checkpoint of partition {p} at {offset}: {decoded:?}"
        );
    }

    // The same group on the target starts exactly after its last commit.
    let originals = by_partition(consume_all(&src, "orders", PARTITIONS).await);
    let mut config = GroupConsumerConfig::new(dst.clone(), group);
    config.auto_offset_reset = AutoOffsetReset::Earliest;
    let mut failed_over = GroupConsumer::connect(config).await.unwrap();
    failed_over.subscribe(vec!["source.orders".into()]);
    // Partitions the group read to the end on the source have nothing left.
    let unfinished =
        (0..PARTITIONS).filter(|p| committed.get(p).copied().unwrap_or(0) < originals[p].len() as i64).count();
    assert!(unfinished > 0);
    let mut first: BTreeMap<u32, ConsumerRecord> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.len() < unfinished {
        assert!(Instant::now() < deadline, "the failed-over group read {} partitions", first.len());
        for r in failed_over.poll().await.unwrap() {
            first.entry(r.partition).or_insert(r);
        }
    }
    for (p, record) in &first {
        let resume = committed.get(p).copied().unwrap_or(0) as usize;
        assert!(
            same_record(record, &originals[p][resume]),
            "partition {p}: the target group started at {:?}, the source committed {resume}",
            record.value
        );
    }
    failed_over.close().await.unwrap();
}

#[test]
fn bad_input_gets_a_clear_error() {
    let run = |args: &[&str]| {
        let out = Command::new(KMON).arg("mirror").args(args).stdin(Stdio::null()).output().unwrap();
        assert!(!out.status.success(), "kmon mirror {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let nobody = format!("127.0.0.1:{}", free_port());
    let err = run(&["--source", &nobody, "--target", &nobody, "--topics", "orders("]);
    assert!(err.contains("invalid --topics regex \"orders(\""), "{err}");
    let err = run(&["--source", &nobody, "--target", &nobody, "--source-alias", "a", "--target-alias", "a"]);
    assert!(err.contains("--source-alias and --target-alias"), "{err}");
    let err = run(&["--source", &nobody, "--target", &nobody, "--metrics-listen", "127.0.0.1:0"]);
    assert!(err.contains(&format!("cannot reach the source cluster at {nobody}")), "{err}");
}

/// Each cluster secured by mutual TLS with its own CA: the mirror reads the
/// source with the source's identity and writes the target with the
/// target's (`--source-tls-*`, `--target-tls-*`); the wrong CA for a
/// cluster, or a missing file, is refused with that cluster named.
#[test]
fn mirrors_between_clusters_with_their_own_certificate_authorities() {
    let (source_pki, target_pki) = (common::pki::Pki::new(), common::pki::Pki::new());
    let dir = tempfile::tempdir().unwrap();
    let source = BrokerProcess::start(&dir.path().join("source"), &refs(&source_pki.broker_args()));
    let target = BrokerProcess::start(&dir.path().join("target"), &refs(&target_pki.broker_args()));
    let (src, dst) = (source.bootstrap(), target.bootstrap());
    let (on_source, on_target) =
        (source_pki.client("ca.crt", Some("alice")), target_pki.client("ca.crt", Some("alice")));
    kmon_ok(&src, &common::pki::with(&["topic", "create", "orders", "--partitions", "2"], &on_source), "");
    kmon_ok(&src, &common::pki::with(&["produce", "--topic", "orders"], &on_source), "o1\no2\no3\n");

    let flags = |side: &str, pki: &common::pki::Pki, ca: &str| {
        [("tls-ca", ca), ("tls-cert", "alice.crt"), ("tls-key", "alice.key")]
            .into_iter()
            .flat_map(|(flag, file)| [format!("--{side}-{flag}"), pki.path(file)])
            .collect::<Vec<_>>()
    };
    let mut args = flags("source", &source_pki, "ca.crt");
    args.extend(flags("target", &target_pki, "ca.crt"));
    let _mirror = MirrorProcess::start(&src, &dst, &refs(&args));
    let consume = common::pki::with(&["consume", "--topic", "source.orders", "--from-beginning"], &on_target);
    wait_for("the records copied to the TLS target", Duration::from_secs(60), || {
        let out = kmon(&dst, &consume, "");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
        lines.sort();
        (lines == ["o1", "o2", "o3"]).then_some(())
    });

    let refused = |args: &[String]| {
        let out = Command::new(KMON)
            .args(["mirror", "--source", &src, "--target", &dst, "--metrics-listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "kmon mirror {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The source's CA does not vouch for the target's brokers.
    let mut wrong_ca = flags("source", &source_pki, "ca.crt");
    wrong_ca.extend(flags("target", &source_pki, "ca.crt"));
    let err = refused(&wrong_ca);
    assert!(err.contains(&format!("cannot reach the target cluster at {dst}")), "{err}");
    // No TLS towards a TLS source.
    let err = refused(&flags("target", &target_pki, "ca.crt"));
    assert!(err.contains(&format!("cannot reach the source cluster at {src}")), "{err}");
    // A CA file that is not there.
    let mut missing = flags("source", &source_pki, "ca.crt");
    missing.extend(flags("target", &target_pki, "no-such-ca.crt"));
    let err = refused(&missing);
    assert!(err.contains("the target cluster's TLS/SASL settings") && err.contains("no-such-ca.crt"), "{err}");
}

/// A source whose ACLs admit only a SCRAM user: the mirror reads it as
/// that user (`--source-sasl-*`); a wrong password is refused at start
/// with the source named.
#[test]
fn reads_a_source_as_a_scram_user() {
    let dir = tempfile::tempdir().unwrap();
    let source = BrokerProcess::start(&dir.path().join("source"), &["--super-users", "User:mirror"]);
    let target = BrokerProcess::start(&dir.path().join("target"), &[]);
    let (src, dst) = (source.bootstrap(), target.bootstrap());
    kmon_ok(&src, &["user", "add", "mirror", "--password", "mirror-pw"], "");
    let as_mirror =
        |args: &[&'static str]| [args, &["--sasl-username", "mirror", "--sasl-password", "mirror-pw"]].concat();
    kmon_ok(&src, &as_mirror(&["topic", "create", "payments", "--partitions", "1"]), "");
    kmon_ok(&src, &as_mirror(&["produce", "--topic", "payments"]), "p1\np2\n");
    // An ACL turns authorization on: anonymous clients are refused now.
    let acl = ["acl", "add", "--allow-principal", "User:nobody", "--operation", "Read", "--topic", "payments"];
    kmon_ok(&src, &as_mirror(&acl), "");
    let err = kmon_err(&src, &["consume", "--topic", "payments", "--from-beginning"], "");
    assert!(err.contains("User:ANONYMOUS is not authorized"), "{err}");

    let _mirror =
        MirrorProcess::start(&src, &dst, &["--source-sasl-username", "mirror", "--source-sasl-password", "mirror-pw"]);
    wait_for("the records copied from the SCRAM-protected source", Duration::from_secs(60), || {
        let out = kmon(&dst, &["consume", "--topic", "source.payments", "--from-beginning"], "");
        (String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>() == ["p1", "p2"]).then_some(())
    });

    let out = Command::new(KMON)
        .args(["mirror", "--source", &src, "--target", &dst, "--metrics-listen", "127.0.0.1:0"])
        .args(["--source-sasl-username", "mirror", "--source-sasl-password", "guess"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&format!("cannot reach the source cluster at {src}")), "{err}");
}
