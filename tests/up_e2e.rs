//! `kmon up` as a newcomer runs it: a 3-broker cluster of child processes,
//! `kmon status --json`, `kmon topic describe --json`, a clean stop on
//! SIGTERM, and a restart of the same cluster with its data.

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
        let mut child = Command::new(KMON)
            .args(["up", "--brokers", "3", "--data-dir"])
            .arg(dir)
            .args(["--base-port", &base.to_string(), "--base-metrics-port", &metrics.to_string()])
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
