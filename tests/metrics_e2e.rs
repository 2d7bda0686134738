//! Honest metrics: the figures on `/metrics` follow real events, parse
//! with an exposition-format parser, and pass `promtool check metrics`.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Scrapes `/metrics` (Prometheus text format) and parses it.
fn scrape(metrics_address: &str) -> (String, prometheus_parse::Scrape) {
    let body = http_get(metrics_address, "/metrics", None);
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format");
    (body, parsed)
}

/// `GET path` with an optional `Accept` header; the body of a 200 answer.
fn http_get(address: &str, path: &str, accept: Option<&str>) -> String {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
    let (status, body) = common::http_get_with(address, path, &headers).expect("an HTTP answer from /metrics");
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Value of a series with exactly these labels (`[]` = no labels).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find_map(|s| {
        let wanted: HashMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let have: HashMap<String, String> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        (s.metric == name && have == wanted).then_some(match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
    })
}

/// Every series of `name`: its labels and value.
fn series(scrape: &prometheus_parse::Scrape, name: &str) -> Vec<(HashMap<String, String>, f64)> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| {
            let labels = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            };
            (labels, value)
        })
        .collect()
}

/// The quorum state a broker reports: the `state` of its one
/// `kafka_server_raftmetrics_current_state` series, which must be at 1
/// and carry Strimzi's `current_state` label too.
fn raft_state(scrape: &prometheus_parse::Scrape) -> String {
    let states = series(scrape, "kafka_server_raftmetrics_current_state");
    assert_eq!(states.len(), 1, "one current_state series: {states:?}");
    let (labels, value) = &states[0];
    assert_eq!(*value, 1.0);
    assert_eq!(labels.get("state"), labels.get("current_state"), "{labels:?}");
    labels["state"].clone()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn promtool_check(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (test.sh installs Debian's prometheus package)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    // promtool exits 3 for lint warnings only (naming advice), 1 for errors.
    assert!(
        out.status.code() != Some(1),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn produced_records_move_messages_in_and_the_exposition_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.bootstrap();
    kmon_ok(&b, &["topic", "create", "counted", "--partitions", "2"], "");
    let (_, before) = scrape(&broker.metrics);
    let base = value(&before, "kafka_server_brokertopicmetrics_messagesin_total", &[]).unwrap_or(0.0);
    let input: String = (0..1234).map(|i| format!("r{i}\n")).collect();
    kmon_ok(&b, &["produce", "--topic", "counted"], &input);
    let (body, after) = scrape(&broker.metrics);
    assert_eq!(
        value(&after, "kafka_server_brokertopicmetrics_messagesin_total", &[("topic", "counted")]),
        Some(1234.0)
    );
    assert_eq!(value(&after, "kafka_server_brokertopicmetrics_messagesin_total", &[]), Some(base + 1234.0));
    assert!(
        value(&after, "kafka_server_brokertopicmetrics_bytesin_total", &[("topic", "counted")]).unwrap() > 1234.0 * 4.0
    );
    assert_eq!(value(&after, "kafka_server_replicamanager_partitioncount", &[]), Some(2.0));
    assert_eq!(value(&after, "kafka_server_replicamanager_leadercount", &[]), Some(2.0));
    assert_eq!(value(&after, "kafka_controller_kafkacontroller_activecontrollercount", &[]), Some(1.0));
    assert_eq!(value(&after, "kafka_controller_kafkacontroller_globaltopiccount", &[]), Some(1.0));
    let hw: f64 = (0..2)
        .map(|p| {
            value(
                &after,
                "kafka_topic_partition_current_offset",
                &[("topic", "counted"), ("partition", &p.to_string())],
            )
            .unwrap()
        })
        .sum();
    assert_eq!(hw, 1234.0);
    assert!(body.contains("kafka_network_requestmetrics_totaltimems_bucket{"), "request latency histograms");
    for phase in ["totaltimems", "requestqueuetimems", "localtimems", "remotetimems", "responsesendtimems"] {
        let count = value(&after, &format!("kafka_network_requestmetrics_{phase}_count"), &[("request", "Produce")]);
        assert!(count.unwrap_or(0.0) >= 1.0, "{phase} histogram counts the produce request");
    }
    assert!(value(&after, "kafka_network_socketserver_networkprocessoravgidlepercent", &[]).is_some());
    for idle in [
        "kafka_network_socketserver_networkprocessoravgidle_percent",
        "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent",
    ] {
        let v = value(&after, idle, &[]).unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&v), "{idle} = {v}");
    }
    // The broker itself: its info line, when it started.
    let info = series(&after, "kafka_broker_info");
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].0["broker"], "1");
    assert_eq!(info[0].0["address"], broker.grpc);
    assert_eq!(info[0].1, 1.0);
    let started = value(&after, "process_start_time_seconds", &[]).unwrap();
    assert!(started <= unix_now() && started > unix_now() - 600.0, "started at {started}");
    assert_eq!(value(&after, "kafka_log_logmanager_offlinelogdirectorycount", &[]), Some(0.0));
    // Alone in its quorum: the leader, having voted for itself; topic
    // creation went through it, so commits were timed.
    assert_eq!(raft_state(&after), "leader");
    assert_eq!(value(&after, "kafka_server_raftmetrics_current_vote", &[]), Some(1.0));
    let commit_ms = value(&after, "kafka_server_raftmetrics_commit_latency_avg", &[]).unwrap();
    assert!(commit_ms > 0.0 && commit_ms < 10_000.0, "commit latency {commit_ms} ms");
    // Nothing failed over: no elections, and the counters exist at 0.
    assert_eq!(value(&after, "kafka_controller_controllerstats_leaderelections_total", &[]), Some(0.0));
    assert_eq!(value(&after, "kafka_controller_controllerstats_uncleanleaderelections_total", &[]), Some(0.0));
    // Per partition, on its leader (min.insync.replicas 1, RF 1).
    for p in ["0", "1"] {
        let labels = [("topic", "counted"), ("partition", p)];
        assert_eq!(value(&after, "kafka_cluster_partition_replicascount", &labels), Some(1.0));
        assert_eq!(value(&after, "kafka_cluster_partition_atminisr", &labels), Some(1.0));
        assert_eq!(value(&after, "kafka_cluster_partition_underminisr", &labels), Some(0.0));
    }
    promtool_check(&body);
    // OpenMetrics when asked for it.
    let om = http_get(&broker.metrics, "/metrics", Some("application/openmetrics-text; version=1.0.0"));
    assert!(om.ends_with("# EOF\n"));
    // Only the named metrics, whole (what the TUI and the agent ask for).
    let path =
        "/metrics?name[]=kafka_server_brokertopicmetrics_messagesin_total&name[]=kafka_topic_partition_current_offset";
    let only = http_get(&broker.metrics, path, None);
    let names: std::collections::BTreeSet<&str> =
        only.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["kafka_server_brokertopicmetrics_messagesin_total", "kafka_topic_partition_current_offset"],
        "{only}"
    );
    let parsed = prometheus_parse::Scrape::parse(only.lines().map(|l| Ok(l.to_string()))).unwrap();
    let messages_in = "kafka_server_brokertopicmetrics_messagesin_total";
    assert_eq!(value(&parsed, messages_in, &[("topic", "counted")]), Some(1234.0));
    assert_eq!(value(&parsed, messages_in, &[]), value(&after, messages_in, &[]));
    for p in ["0", "1"] {
        let labels = [("topic", "counted"), ("partition", p)];
        let offset = "kafka_topic_partition_current_offset";
        assert_eq!(value(&parsed, offset, &labels), value(&after, offset, &labels));
    }
    promtool_check(&only);
    let om_only = http_get(&broker.metrics, path, Some("application/openmetrics-text; version=1.0.0"));
    assert!(om_only.contains("# TYPE kafka_server_brokertopicmetrics_messagesin counter"), "{om_only}");
    assert!(om_only.ends_with("# EOF\n"));
    // Asked for by name, every family comes back with the same series as
    // on the whole page (values move between scrapes; label sets do not).
    let series_of = |page: &str| -> std::collections::BTreeSet<String> {
        page.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(s, _)| s.to_owned())
            .collect()
    };
    let (page, _) = scrape(&broker.metrics);
    let families: Vec<&str> = page.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    assert!(families.len() > 50, "{families:?}");
    let query: Vec<String> = families.iter().map(|f| format!("name[]={f}")).collect();
    let all_named = http_get(&broker.metrics, &format!("/metrics?{}", query.join("&")), None);
    assert_eq!(series_of(&all_named), series_of(&page), "every family, named");
    for family in &families {
        let alone = http_get(&broker.metrics, &format!("/metrics?name[]={family}"), None);
        let expected: std::collections::BTreeSet<String> = series_of(&page)
            .into_iter()
            .filter(|s| {
                let name = s.split('{').next().unwrap();
                name == *family || ["_bucket", "_sum", "_count"].iter().any(|x| name == format!("{family}{x}"))
            })
            .collect();
        assert!(!expected.is_empty(), "{family} has no series");
        assert_eq!(series_of(&alone), expected, "{family} asked for alone");
    }
    for (bad, says) in
        [("/metrics?name[]=no{such", "invalid metric name"), ("/metrics?match[]=up", "unknown query parameter")]
    {
        let (status, body) = common::http_get(&broker.metrics, bad).unwrap();
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains(says), "{bad}: {body}");
    }
    // Failed produce requests are counted too (a batch over max.message.bytes).
    kmon_ok(&b, &["topic", "create", "small", "--partitions", "1", "--config", "max.message.bytes=100"], "");
    kmon_err(&b, &["produce", "--topic", "small"], &format!("{}\n", "x".repeat(300)));
    let (_, after) = scrape(&broker.metrics);
    assert_eq!(
        value(&after, "kafka_server_brokertopicmetrics_failedproducerequests_total", &[("topic", "small")]),
        Some(1.0)
    );
}

#[test]
fn a_paused_follower_moves_isr_figures_and_they_recover() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        // The leader notices the lagging follower (1 s) before the controller
        // would fence it (4 s), so the shrink is the leader's and is counted.
        "broker_session_timeout_ms = 4000\nbroker_heartbeat_interval_ms = 200\nreplica_lag_time_max_ms = 1000\n",
    )
    .unwrap();
    let mut cluster = Cluster::start(3, &["--config", config.to_str().unwrap()]);
    let b = cluster.brokers[0].bootstrap();
    kmon_ok(&b, &["topic", "create", "isr", "--partitions", "1", "--replication-factor", "3"], "");
    let described: serde_json::Value = wait_for("a full ISR", Duration::from_secs(30), || {
        let d: serde_json::Value =
            serde_json::from_str(&kmon_ok(&b, &["topic", "describe", "isr", "--json"], "")).ok()?;
        (d["partitions"][0]["isr"].as_array()?.len() == 3).then_some(d)
    });
    let leader = described["partitions"][0]["leader"].as_i64().unwrap() as i32;
    let follower = described["partitions"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_i64().unwrap() as i32)
        .find(|r| *r != leader)
        .unwrap();
    let leader_metrics = cluster.broker(leader).metrics.clone();
    let (_, before) = scrape(&leader_metrics);
    assert_eq!(value(&before, "kafka_server_replicamanager_underreplicatedpartitions", &[]), Some(0.0));
    let shrinks = value(&before, "kafka_server_replicamanager_isrshrinks_total", &[]).unwrap_or(0.0);
    let expands = value(&before, "kafka_server_replicamanager_isrexpands_total", &[]).unwrap_or(0.0);
    // Exactly one broker says it is the active controller.
    let controllers: f64 = cluster
        .brokers
        .iter()
        .map(|b| value(&scrape(&b.metrics).1, "kafka_controller_kafkacontroller_activecontrollercount", &[]).unwrap())
        .sum();
    assert_eq!(controllers, 1.0);

    cluster.broker(follower).signal("STOP");
    // As in Kafka, a follower only falls out of sync when there is
    // something to fall behind on: keep producing (acks=1).
    kmon_ok(&b, &["produce", "--topic", "isr", "--acks", "1"], "while\nit\nsleeps\n");
    wait_for("under-replicated on the leader", Duration::from_secs(30), || {
        let (_, s) = scrape(&leader_metrics);
        let under = value(&s, "kafka_server_replicamanager_underreplicatedpartitions", &[])?;
        let in_sync = value(&s, "kafka_topic_partition_in_sync_replica", &[("topic", "isr"), ("partition", "0")])?;
        (under == 1.0 && in_sync == 2.0).then_some(())
    });
    cluster.broker(follower).signal("CONT");
    let (_, recovered) = wait_for("the ISR to recover", Duration::from_secs(30), || {
        let (body, s) = scrape(&leader_metrics);
        (value(&s, "kafka_server_replicamanager_underreplicatedpartitions", &[]) == Some(0.0)).then_some((body, s))
    });
    assert!(value(&recovered, "kafka_server_replicamanager_isrshrinks_total", &[]).unwrap_or(0.0) > shrinks);
    assert!(value(&recovered, "kafka_server_replicamanager_isrexpands_total", &[]).unwrap_or(0.0) > expands);
    assert_eq!(
        value(&recovered, "kafka_topic_partition_in_sync_replica", &[("topic", "isr"), ("partition", "0")]),
        Some(3.0)
    );
}

#[test]
fn a_killed_partition_leader_moves_election_and_min_isr_figures() {
    let mut cluster = Cluster::start_fast_failover(3);
    let b = cluster.brokers[0].bootstrap();
    let scrape_of = |cluster: &Cluster, id: i32| scrape(&cluster.brokers[id as usize - 1].metrics).1;
    // Each broker describes itself, as laid out; the quorum has exactly one
    // leader, whom every broker's vote names (the leader votes for itself).
    let controller = wait_for("one quorum leader and votes for it", Duration::from_secs(30), || {
        let scrapes: Vec<_> = (1..=3).map(|id| scrape_of(&cluster, id)).collect();
        let leaders: Vec<i32> = (1..=3).filter(|id| raft_state(&scrapes[*id as usize - 1]) == "leader").collect();
        let [leader] = leaders[..] else { return None };
        let votes = scrapes.iter().map(|s| value(s, "kafka_server_raftmetrics_current_vote", &[]));
        votes.into_iter().all(|v| v == Some(f64::from(leader))).then_some(leader)
    });
    for id in 1..=3 {
        let s = scrape_of(&cluster, id);
        let info = series(&s, "kafka_broker_info");
        assert_eq!(info.len(), 1, "broker {id}: {info:?}");
        let (labels, v) = &info[0];
        let layout = cluster.layout_of(id);
        assert_eq!(*v, 1.0);
        assert_eq!(labels["broker"], id.to_string());
        assert_eq!(labels["fault_domain"], layout.fault_domain);
        assert_eq!(labels["update_domain"], layout.update_domain);
        assert_eq!(labels["address"], cluster.brokers[id as usize - 1].grpc);
        let state = raft_state(&s);
        assert_eq!(state == "leader", id == controller, "broker {id} is {state}");
        assert_eq!(
            value(&s, "kafka_controller_kafkacontroller_activecontrollercount", &[]),
            Some(f64::from(id == controller))
        );
        // Peers keep gRPC connections to each other (quorum, replication).
        let grpc = value(&s, "kafka_server_socket_server_metrics_connection_count", &[("listener", "GRPC")]);
        assert!(grpc.unwrap_or(0.0) >= 1.0, "broker {id}: GRPC connections {grpc:?}");
        if id != controller {
            assert!(value(&s, "kafka_server_raftmetrics_commit_latency_avg", &[]).unwrap().is_nan(), "broker {id}");
        }
    }
    kmon_ok(
        &b,
        &[
            "topic",
            "create",
            "strict",
            "--partitions",
            "3",
            "--replication-factor",
            "3",
            "--config",
            "min.insync.replicas=3",
        ],
        "",
    );
    let described: serde_json::Value = wait_for("full ISRs", Duration::from_secs(30), || {
        let d: serde_json::Value =
            serde_json::from_str(&kmon_ok(&b, &["topic", "describe", "strict", "--json"], "")).ok()?;
        d["partitions"].as_array()?.iter().all(|p| p["isr"].as_array().is_some_and(|i| i.len() == 3)).then_some(d)
    });
    // A partition led by a broker that is not the controller: killing its
    // leader makes the controller elect another.
    let (partition, victim) = described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["partition"].as_i64().unwrap(), p["leader"].as_i64().unwrap() as i32))
        .find(|(_, leader)| *leader != controller)
        .expect("a partition led by a broker that is not the controller");
    let partition = partition.to_string();
    let labels = [("topic", "strict"), ("partition", partition.as_str())];
    let before = scrape_of(&cluster, victim);
    assert_eq!(value(&before, "kafka_cluster_partition_replicascount", &labels), Some(3.0));
    assert_eq!(value(&before, "kafka_cluster_partition_atminisr", &labels), Some(1.0));
    assert_eq!(value(&before, "kafka_cluster_partition_underminisr", &labels), Some(0.0));
    let elections = "kafka_controller_controllerstats_leaderelections_total";
    let unclean = "kafka_controller_controllerstats_uncleanleaderelections_total";
    let elected_before = value(&scrape_of(&cluster, controller), elections, &[]).unwrap();
    let started_before = value(&before, "process_start_time_seconds", &[]).unwrap();

    cluster.broker(victim).kill();
    let survivors: Vec<i32> = (1..=3).filter(|id| *id != victim).collect();
    let new_leader = wait_for("the partition's new leader under min ISR", Duration::from_secs(30), || {
        survivors.iter().copied().find(|id| {
            let s = scrape_of(&cluster, *id);
            value(&s, "kafka_cluster_partition_underminisr", &labels) == Some(1.0)
                && value(&s, "kafka_cluster_partition_atminisr", &labels) == Some(0.0)
                && value(&s, "kafka_cluster_partition_replicascount", &labels) == Some(3.0)
        })
    });
    // Only the leader exports a partition's figures.
    let other = survivors.iter().copied().find(|id| *id != new_leader).unwrap();
    assert_eq!(value(&scrape_of(&cluster, other), "kafka_cluster_partition_underminisr", &labels), None);
    let after = scrape_of(&cluster, controller);
    assert!(value(&after, elections, &[]).unwrap() > elected_before, "the controller counted the election");
    assert_eq!(value(&after, unclean, &[]), Some(0.0), "every new leader came from the ISR");
    assert_eq!(survivors.iter().filter(|id| raft_state(&scrape_of(&cluster, **id)) == "leader").count(), 1);
    // Back again: a new process, so a new start time.
    cluster.restart(victim);
    let restarted = value(&scrape_of(&cluster, victim), "process_start_time_seconds", &[]).unwrap();
    assert!(restarted > started_before, "restart: {started_before} -> {restarted}");
}
