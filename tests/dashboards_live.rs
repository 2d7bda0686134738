//! The Grafana dashboards and Prometheus rules against a real 3-broker
//! cluster, its node agent and a real `prometheus` scraping every second:
//! every panel expression runs through the HTTP API, and SIGKILLing a
//! broker makes the under-replicated and broker-down alerts fire, then
//! resolve after a restart, and producing to a topic whose group stopped
//! consuming makes the consumer-lag alert fire. That run loads a copy of
//! `alerts.yml` whose `for:` are `1s` (the real ones wait minutes) and whose
//! recording group runs every second; the expressions are the real ones.
//!
//! `dashboards_static.rs` checks the same files without a cluster.
//! prometheus comes from Debian's `prometheus` package (test.sh installs it
//! when missing).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::dashboards::{all_panel_expressions, prometheus_dir, read};
use common::prometheus::Prometheus;
use common::*;

/// The rule files as the live test loads them: the real expressions, with
/// every `for:` cut to 1s and the recording group evaluated every second.
fn fast_rule_copies(dir: &Path) -> (PathBuf, PathBuf) {
    let recording = read(&prometheus_dir().join("recording.yml")).replace("interval: 15s", "interval: 1s");
    let alerts: String = read(&prometheus_dir().join("alerts.yml"))
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 1s\n", &l[..l.len() - l.trim_start().len()]),
            None => format!("{l}\n"),
        })
        .collect();
    assert!(!alerts.contains("for: 5m") && recording.contains("interval: 1s"));
    let (r, a) = (dir.join("recording.yml"), dir.join("alerts.yml"));
    std::fs::write(&r, recording).unwrap();
    std::fs::write(&a, alerts).unwrap();
    (r, a)
}

/// Panels whose expressions only have data while something is wrong: they
/// are checked after a broker is killed (its replicas leave the ISRs and
/// its partitions' leadership moves off their preferred replicas).
const DATA_WHILE_A_BROKER_IS_DOWN: &[&str] =
    &["Partitions missing in-sync replicas", "Partitions led by a non-preferred replica"];

/// Panels of features this cluster does not use: no `kmon mirror` runs
/// and no ACL refuses anything. Their expressions still run here; their
/// series are checked in mirror_e2e and acl_e2e.
const DATA_ONLY_WHEN_IN_USE: &[&str] = &[
    "Mirror records copied /s",
    "Mirror lag (worst partitions)",
    "Mirror replication latency (worst partitions)",
    "Denied requests",
];

#[test]
fn a_real_prometheus_runs_every_panel_and_fires_alerts_on_a_killed_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start_fast_failover(3);
    let bootstrap = cluster.brokers[0].bootstrap();
    kmon_ok(&bootstrap, &["topic", "create", "watched", "--partitions", "3", "--replication-factor", "3"], "");
    let agent = AgentProcess::start_every("1s", &bootstrap, &dir.path().join("agent-buffer"), &[]);

    // Workload: records in, a group that consumed part of them (so it lags).
    let records: String = (0..300).map(|i| format!("r{i}\n")).collect();
    kmon_ok(&bootstrap, &["produce", "--topic", "watched"], &records);
    kmon_ok(
        &bootstrap,
        &["consume", "--topic", "watched", "--group", "readers", "--from-beginning", "--max-records", "100"],
        "",
    );
    kmon_ok(&bootstrap, &["produce", "--topic", "watched"], &records);

    let (recording, alerts) = fast_rule_copies(dir.path());
    let targets = cluster.brokers.iter().map(|b| format!("\"{}\"", b.metrics)).collect::<Vec<_>>().join(", ");
    let prometheus_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{:?}, {:?}]\n\
             scrape_configs:\n  - job_name: kmon-broker\n    static_configs:\n      - targets: [{targets}]\n        labels: {{cluster: test}}\n\
             \x20 - job_name: kmon-agent\n    static_configs:\n      - targets: [\"{}\"]\n        labels: {{cluster: test}}\n",
            recording.display(),
            alerts.display(),
            agent.metrics
        ),
    )
    .unwrap();
    let prometheus = Prometheus::start(dir.path(), &prometheus_yml);
    let context =
        |p: &Prometheus, cluster: &Cluster| format!("prometheus log:\n{}\nbrokers:\n{}", p.log(), cluster.logs());

    wait_for("every target up", Duration::from_secs(60), || {
        let up = prometheus.query(r#"sum(up{cluster="test"})"#).ok()?;
        (up.first()?["value"][1] == "4").then_some(())
    });
    // The group consumes a little more while Prometheus watches, so its
    // consume rate (and time to drain) is measured.
    kmon_ok(
        &bootstrap,
        &["consume", "--topic", "watched", "--group", "readers", "--from-beginning", "--max-records", "50"],
        "",
    );
    // A few scrapes so that rates have two samples and the group is evaluated.
    wait_for("consumer lag in Prometheus", Duration::from_secs(60), || {
        let lag = prometheus.query(r#"consumergroup:kafka_consumergroup_lag:sum{consumergroup="readers"} > 0"#).ok()?;
        (!lag.is_empty()).then_some(())
    });

    // (a) Every panel expression runs; those with data on a healthy cluster
    // have some (rates need a few scrapes: asked again until a deadline).
    let panels_without_data = || {
        let mut empty = Vec::new();
        for (place, expr) in all_panel_expressions() {
            let result = prometheus.query(&expr).unwrap_or_else(|e| panic!("{place}: {expr}: {e}"));
            let exempt = DATA_WHILE_A_BROKER_IS_DOWN.iter().chain(DATA_ONLY_WHEN_IN_USE);
            if result.is_empty() && !exempt.clone().any(|t| place.contains(&format!("{t:?}"))) {
                empty.push(format!("{place}: {expr}"));
            }
        }
        empty
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut empty = panels_without_data();
    while !empty.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        empty = panels_without_data();
    }
    assert!(empty.is_empty(), "panels without data:\n{}", empty.join("\n"));
    // `$broker` is a broker id from kafka_broker_info, and per-broker
    // panels carry it (joined on the instance) for their legends.
    let info = prometheus.query(r#"kafka_broker_info{cluster="test"}"#).unwrap();
    let mut ids: Vec<&str> = info.iter().filter_map(|s| s["metric"]["broker"].as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["1", "2", "3"], "{info:?}");
    let (place, per_broker) = all_panel_expressions()
        .into_iter()
        .find(|(place, _)| place.contains("\"Leaders and partitions per broker\""))
        .expect("the leaders and partitions panel");
    let series = prometheus.query(&per_broker).unwrap();
    assert!(
        series.len() == 3
            && series.iter().all(|s| s["metric"]["broker"].is_string() && s["metric"]["fault_domain"].is_string()),
        "{place}: {series:?}"
    );
    assert!(
        prometheus.firing("KmonUnderReplicatedPartitions").is_empty(),
        "healthy cluster: {:?}",
        prometheus.api("/api/v1/alerts")
    );
    assert!(prometheus.firing("KmonBrokerDown").is_empty());

    // (c) The group's consumer has stopped; more records make its lag grow.
    kmon_ok(&bootstrap, &["produce", "--topic", "watched"], &records);
    wait_for("KmonConsumerLagGrowing firing for the stopped group", Duration::from_secs(60), || {
        let lagging = prometheus.firing("KmonConsumerLagGrowing");
        lagging.iter().any(|l| l["consumergroup"] == "readers" && l["topic"] == "watched").then_some(())
    });

    // (b) SIGKILL a broker that is not the active controller.
    let controller = prometheus
        .query("kafka_controller_kafkacontroller_activecontrollercount == 1")
        .unwrap()
        .first()
        .and_then(|s| s["metric"]["instance"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let victim = (1..=3).find(|id| cluster.broker(*id).metrics != controller).unwrap();
    let victim_metrics = cluster.broker(victim).metrics.clone();
    let started_before: f64 = prometheus
        .query(&format!(r#"process_start_time_seconds{{instance="{victim_metrics}"}}"#))
        .unwrap()
        .first()
        .and_then(|s| s["value"][1].as_str()?.parse().ok())
        .expect("the broker's start time");
    cluster.broker(victim).kill();
    wait_for(
        "KmonBrokerDown, KmonUnderReplicatedPartitions and KmonFewerBrokersThanExpected firing",
        Duration::from_secs(60),
        || {
            let down = prometheus.firing("KmonBrokerDown");
            let urp = prometheus.firing("KmonUnderReplicatedPartitions");
            let fenced = prometheus.firing("KmonFewerBrokersThanExpected");
            (down.iter().any(|l| l["instance"] == victim_metrics.as_str()) && !urp.is_empty() && !fenced.is_empty())
                .then_some(())
        },
    );
    let down = prometheus.firing("KmonBrokerDown");
    assert_eq!(down.len(), 1, "only the killed broker is down: {down:?}\n{}", context(&prometheus, &cluster));
    // The panels that are empty on a healthy cluster now have data.
    for (place, expr) in all_panel_expressions() {
        if DATA_WHILE_A_BROKER_IS_DOWN.iter().any(|t| place.contains(&format!("{t:?}"))) {
            wait_for(&format!("{place} to have data with broker {victim} down"), Duration::from_secs(30), || {
                let result = prometheus.query(&expr).unwrap_or_else(|e| panic!("{place}: {expr}: {e}"));
                (!result.is_empty()).then_some(())
            });
        }
    }
    assert_eq!(down[0]["severity"], "critical");
    assert_eq!(down[0]["cluster"], "test");

    // Back on the same ports and data: they resolve, and the restart is
    // reported for that broker only.
    cluster.restart(victim);
    wait_for("the alerts to resolve", Duration::from_secs(90), || {
        (prometheus.firing("KmonBrokerDown").is_empty()
            && prometheus.firing("KmonUnderReplicatedPartitions").is_empty()
            && prometheus.firing("KmonFewerBrokersThanExpected").is_empty())
        .then_some(())
    });
    // A fresh cluster counts as restarted (every broker started within 5
    // minutes), so the check is that the restarted broker's start time
    // moved and the alert covers it (promtool tests the quiet case).
    let started = |p: &Prometheus| {
        let q = format!(r#"process_start_time_seconds{{instance="{victim_metrics}"}}"#);
        p.query(&q).ok()?.first()?["value"][1].as_str()?.parse::<f64>().ok()
    };
    wait_for("the restarted broker's new start time and KmonBrokerRestarted for it", Duration::from_secs(30), || {
        let moved = started(&prometheus)? > started_before;
        let firing = prometheus.firing("KmonBrokerRestarted");
        (moved && firing.iter().any(|l| l["instance"] == victim_metrics.as_str())).then_some(())
    });
    drop(agent);
}
