//! `kmon up` as a newcomer runs it: a 3-broker cluster of child processes,
//! `kmon status --json`, `kmon topic describe --json`, a clean stop on
//! SIGTERM, and a restart of the same cluster with its data; `kmon up
//! --secure` and the client settings it prints.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

/// A base port with `n` free consecutive ports above it.
fn free_port_run(n: u16) -> u16 {
    for _ in 0..100 {
        let base = free_port();
        if base > u16::MAX - n {
            continue;
        }
        let held: Vec<_> = (0..n).filter_map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok()).collect();
        if held.len() == n as usize {
            return base;
        }
    }
    panic!("no run of {n} free ports");
}

struct Up {
    child: std::process::Child,
}

impl Up {
    fn start(dir: &std::path::Path, base: u16, metrics: u16) -> (Up, String) {
        Self::start_with(dir, base, metrics, &["--brokers", "3"])
    }

    fn start_with(dir: &std::path::Path, base: u16, metrics: u16, extra: &[&str]) -> (Up, String) {
        let mut child = Command::new(KMON)
            .arg("up")
            .args(extra)
            .arg("--data-dir")
            .arg(dir)
            .args(["--base-port", &base.to_string(), "--base-metrics-port", &metrics.to_string()])
            // Kafka listeners on free ports too (a restart keeps those of its first start).
            .args(["--base-kafka-port", &free_port_run(6).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let up = Up { child };
        let mut printed = String::new();
        loop {
            let line = rx.recv_timeout(Duration::from_secs(90)).expect("kmon up did not report the cluster up");
            printed.push_str(&line);
            printed.push('\n');
            if line.contains("Ctrl-C to stop") {
                return (up, printed);
            }
        }
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = wait_for("kmon up to stop", Duration::from_secs(60), || self.child.try_wait().unwrap());
        assert!(status.success(), "kmon up exits cleanly on SIGTERM: {status}");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn kmon_up_runs_a_three_broker_cluster_and_restarts_it_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let base = free_port_run(3);
    let metrics = free_port_run(3);
    let bootstrap = format!("127.0.0.1:{base}");
    let (up, printed) = Up::start(&data, base, metrics);
    assert!(printed.contains(&bootstrap), "{printed}");

    let status: serde_json::Value = serde_json::from_str(&kmon_ok(&bootstrap, &["status", "--json"], "")).unwrap();
    assert!(status["controller_id"].as_i64().unwrap() >= 1, "{status}");
    let brokers = status["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 3);
    let domains: Vec<(String, String)> = brokers
        .iter()
        .map(|b| (b["fault_domain"].as_str().unwrap().into(), b["update_domain"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        domains,
        [("FD0".into(), "UD0".into()), ("FD1".into(), "UD1".into()), ("FD2".into(), "UD2".into())],
        "diagonal layout"
    );
    assert!(brokers.iter().all(|b| b["alive"] == true));
    for key in ["address", "metrics_address", "id"] {
        assert!(brokers[0].get(key).is_some(), "status JSON has brokers[].{key}");
    }

    kmon_ok(&bootstrap, &["topic", "create", "up-topic", "--partitions", "3", "--replication-factor", "3"], "");
    let input: String = (0..500).map(|i| format!("line-{i}\n")).collect();
    kmon_ok(&bootstrap, &["produce", "--topic", "up-topic", "--acks", "all"], &input);
    let described: serde_json::Value =
        serde_json::from_str(&kmon_ok(&bootstrap, &["topic", "describe", "up-topic", "--json"], "")).unwrap();
    assert_eq!(described["topic"], "up-topic");
    let partitions = described["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    for p in partitions {
        assert_eq!(p["replicas"].as_array().unwrap().len(), 3);
        assert!(p["leader"].as_i64().unwrap() >= 1);
        assert!(p["isr"].is_array());
    }
    // `kmon up` runs a node agent: its samples go to the internal topic
    // `__kmon_node_metrics` (1 partition), created on its first shipment.
    let status: serde_json::Value =
        wait_for("the agent's topic and the agent in status", Duration::from_secs(30), || {
            let status: serde_json::Value =
                serde_json::from_str(&kmon_ok(&bootstrap, &["status", "--json"], "")).unwrap();
            (status["partitions"] == 4 && status["agents"].as_array().is_some_and(|a| a.len() == 1)).then_some(status)
        });
    assert_eq!(status["offline_partitions"], 0);
    up.stop();

    // Same directory: the same cluster comes back with its data.
    let (up, _) = Up::start(&data, base, metrics);
    let out = kmon_ok(&bootstrap, &["consume", "--topic", "up-topic", "--from-beginning"], "");
    assert_eq!(out.lines().count(), 500);
    // Scale-down is not this issue's, but a different count is refused, not obeyed.
    let refused = Command::new(KMON).args(["up", "--brokers", "2", "--data-dir"]).arg(&data).output().unwrap();
    assert!(!refused.status.success());
    up.stop();
}

#[test]
fn kmon_up_grows_a_running_cluster_and_rebalances_onto_the_new_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let base = free_port_run(6);
    let metrics = free_port_run(6);
    let bootstrap = format!("127.0.0.1:{base}");
    let (first, _) = Up::start(&data, base, metrics);
    kmon_ok(&bootstrap, &["topic", "create", "grow", "--partitions", "6", "--replication-factor", "3"], "");
    let input: String = (0..600).map(|i| format!("k{i}:v{i}\n")).collect();
    kmon_ok(&bootstrap, &["produce", "--topic", "grow", "--key-separator", ":", "--acks", "all"], &input);

    // A second `kmon up` with more brokers starts only the new ones, then rebalances.
    let (second, printed) = Up::start_with(&data, base, metrics, &["--brokers", "6", "--rebalance"]);
    assert!(printed.contains("added broker(s) 4, 5, 6 to the running cluster"), "{printed}");
    let layout = std::fs::read_to_string(data.join("cluster.toml")).unwrap();
    assert_eq!(layout.matches("[[brokers]]").count(), 6, "{layout}");
    // While partitions move and leaders change, a reader still sees every
    // acknowledged record: a new leader does not answer "latest" from the
    // stale high watermark it had as a follower (KIP-207).
    let out = kmon_ok(&bootstrap, &["consume", "--topic", "grow", "--from-beginning"], "");
    assert_eq!(out.lines().count(), 600, "read while moving");
    let described = wait_for("partitions moved onto the new brokers, in sync", Duration::from_secs(120), || {
        let status: serde_json::Value =
            serde_json::from_str(&kmon_ok(&bootstrap, &["rebalance", "status", "--json"], "")).ok()?;
        if status["in_progress"] != false {
            return None;
        }
        let described: serde_json::Value =
            serde_json::from_str(&kmon_ok(&bootstrap, &["topic", "describe", "grow", "--json"], "")).ok()?;
        let partitions = described["partitions"].as_array()?;
        let on_new = partitions.iter().flat_map(|p| p["replicas"].as_array().unwrap()).any(|r| r.as_i64() > Some(3));
        // Mid-move a replica list holds the targets and the leaving
        // replicas: done when every list is back to 3, all in sync.
        let moved = partitions.iter().all(|p| p["replicas"].as_array().unwrap().len() == 3);
        let in_sync = partitions.iter().all(|p| p["isr"].as_array().unwrap().len() == 3);
        (on_new && moved && in_sync).then_some(described)
    });
    let mut per_broker = std::collections::BTreeMap::new();
    for p in described["partitions"].as_array().unwrap() {
        for r in p["replicas"].as_array().unwrap() {
            *per_broker.entry(r.as_i64().unwrap()).or_insert(0) += 1;
        }
    }
    assert_eq!(per_broker.len(), 6, "every broker holds replicas of the topic: {per_broker:?}");
    let out = kmon_ok(&bootstrap, &["consume", "--topic", "grow", "--from-beginning"], "");
    assert_eq!(out.lines().count(), 600, "nothing lost by the move");

    // The general way to add one more: the next id and the next cell of the grid.
    let out = kmon_ok(
        &bootstrap,
        &[
            "cluster",
            "add-broker",
            "--listen",
            "127.0.0.1:1",
            "--metrics-listen",
            "127.0.0.1:2",
            "--data-dir",
            "x",
            "--dry-run",
        ],
        "",
    );
    assert!(out.contains("\"--id\" \"7\"") && out.contains("\"FD0\"") && out.contains("\"UD2\""), "{out}");
    let err = kmon_err(
        &bootstrap,
        &[
            "cluster",
            "add-broker",
            "--id",
            "2",
            "--listen",
            "127.0.0.1:1",
            "--metrics-listen",
            "127.0.0.1:2",
            "--data-dir",
            "x",
        ],
        "",
    );
    assert!(err.contains("broker 2 is already registered"), "{err}");
    second.stop();
    first.stop();
}

/// The `NAME=VALUE` pairs of the `export` line `kmon up --secure` prints.
fn printed_env(printed: &str) -> Vec<(String, String)> {
    let line = printed.lines().find_map(|l| l.trim().strip_prefix("export ")).expect("an export line");
    line.split_whitespace()
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("NAME=VALUE");
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// `kmon ARGS` against `bootstrap` with `env` set.
fn kmon_with_env(bootstrap: &str, env: &[(String, String)], args: &[&str]) -> std::process::Output {
    Command::new(KMON)
        .args(args)
        .env("KMON_BOOTSTRAP", bootstrap)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn kmon_up_secure_needs_the_printed_client_certificate_and_keeps_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let (base, metrics) = (free_port_run(3), free_port_run(3));
    let bootstrap = format!("127.0.0.1:{base}");
    let (up, printed) = Up::start_with(&data, base, metrics, &["--brokers", "3", "--secure"]);
    for expected in ["mutual TLS", "security.protocol=SSL", "ssl.ca.location=", "ssl.certificate.location="] {
        assert!(printed.contains(expected), "{expected}: {printed}");
    }
    let env = printed_env(&printed);
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["KMON_TLS_CA", "KMON_TLS_CERT", "KMON_TLS_KEY"], "{printed}");
    let ok = |args: &[&str]| {
        let out = kmon_with_env(&bootstrap, &env, args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "kmon {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };

    // The admin's certificate: status, a replicated topic (brokers talk
    // mutual TLS to each other), produce and consume.
    let status: serde_json::Value = serde_json::from_str(&ok(&["status", "--json"])).unwrap();
    let brokers = status["brokers"].as_array().unwrap();
    assert!(brokers.len() == 3 && brokers.iter().all(|b| b["alive"] == true), "{status}");
    ok(&["topic", "create", "secure-topic", "--partitions", "2", "--replication-factor", "3"]);
    let mut producer = Command::new(KMON)
        .args(["produce", "--topic", "secure-topic", "--acks", "all"])
        .env("KMON_BOOTSTRAP", &bootstrap)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut producer.stdin.take().unwrap(), b"s1\ns2\n").unwrap();
    assert!(producer.wait().unwrap().success());
    let mut consumed: Vec<String> =
        ok(&["consume", "--topic", "secure-topic", "--from-beginning"]).lines().map(String::from).collect();
    consumed.sort();
    assert_eq!(consumed, ["s1", "s2"]);

    // The Kafka listener with the printed librdkafka settings (kcat).
    let kcat_line = printed.lines().find_map(|l| l.trim().strip_prefix("e.g. kcat ")).expect("a kcat line");
    let out = Command::new("timeout")
        .args(["30", "kcat"])
        .args(kcat_line.split_whitespace())
        .output()
        .expect("kcat (./test.sh installs it)");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listing.contains("secure-topic"),
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without a certificate (plain text, or the CA alone): refused.
    for without in [&[][..], &env[..1]] {
        let out = kmon_with_env(&bootstrap, without, &["topic", "create", "nope", "--partitions", "1"]);
        assert!(!out.status.success(), "{without:?}");
        let out = kmon_with_env(&bootstrap, without, &["status"]);
        assert!(!out.status.success(), "{without:?}");
    }
    assert!(!ok(&["topic", "list"]).contains("nope"));

    // Stopped, the directory is refused without --secure; with it, the
    // same CA comes back and the printed certificate still works.
    let ca = std::fs::read(data.join("tls/ca.crt")).unwrap();
    up.stop();
    let out = Command::new(KMON).arg("up").arg("--data-dir").arg(&data).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("kmon up --secure"), "{err}");
    let (up, printed_again) = Up::start_with(&data, base, metrics, &["--secure"]);
    assert_eq!(printed_env(&printed_again), env);
    assert_eq!(std::fs::read(data.join("tls/ca.crt")).unwrap(), ca, "the CA is made once");
    assert!(ok(&["topic", "list"]).contains("secure-topic"));
    up.stop();
}
