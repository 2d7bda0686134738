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
