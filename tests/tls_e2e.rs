//! TLS and mutual TLS on the gRPC port, over real processes, with
//! certificates made by rcgen in the test: a client with a valid
//! certificate is served; one without a certificate or with one from
//! another CA is refused; a 3-broker mTLS cluster replicates; a certificate
//! rewritten and announced with SIGHUP is served to new connections while a
//! producer keeps producing.
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const DEADLINE: Duration = Duration::from_secs(30);

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
}

/// Writes `<name>.crt` / `<name>.key` signed by `ca` for 127.0.0.1 and localhost.
fn leaf(dir: &Path, ca: &Ca, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("kmon test CA");
        std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
        leaf(dir.path(), &ca, "broker", "broker");
        leaf(dir.path(), &ca, "alice", "alice");
        Pki { dir, ca }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn broker_args(&self) -> Vec<String> {
        [
            "--tls-cert",
            &self.path("broker.crt"),
            "--tls-key",
            &self.path("broker.key"),
            "--tls-ca",
            &self.path("ca.crt"),
        ]
        .map(String::from)
        .to_vec()
    }

    /// Client flags with `name`'s certificate, trusting `ca`.
    fn client(&self, ca: &str, name: Option<&str>) -> Vec<String> {
        let mut args = vec!["--tls-ca".to_string(), self.path(ca)];
        if let Some(name) = name {
            args.extend(["--tls-cert".into(), self.path(&format!("{name}.crt"))]);
            args.extend(["--tls-key".into(), self.path(&format!("{name}.key"))]);
        }
        args
    }
}

fn with<'a>(args: &'a [&'a str], tls: &'a [String]) -> Vec<&'a str> {
    args.iter().copied().chain(tls.iter().map(String::as_str)).collect()
}

#[test]
fn mutual_tls_serves_valid_clients_and_refuses_others() {
    let pki = Pki::new();
    let other = ca("another CA");
    leaf(pki.dir.path(), &other, "mallory", "mallory");
    let data = tempfile::tempdir().unwrap();
    let args = pki.broker_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let broker = BrokerProcess::start_with_env(
        &[data.path().to_path_buf()],
        &args,
        &[("RUST_LOG", "info,kmon_broker::tls=debug")],
    );
    let b = broker.bootstrap();

    let alice = pki.client("ca.crt", Some("alice"));
    kmon_ok(&b, &with(&["topic", "create", "secure", "--partitions", "1"], &alice), "");
    kmon_ok(&b, &with(&["produce", "--topic", "secure"], &alice), "one\ntwo\n");
    let out = kmon_ok(&b, &with(&["consume", "--topic", "secure", "--from-beginning"], &alice), "");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["one", "two"]);

    // No client certificate, a certificate from another CA, plain text: refused.
    kmon_err(&b, &with(&["topic", "list"], &pki.client("ca.crt", None)), "");
    kmon_err(&b, &with(&["topic", "list"], &pki.client("ca.crt", Some("mallory"))), "");
    kmon_err(&b, &["topic", "list"], "");
    // The broker logged why, and who alice is.
    let log = broker.stderr();
    assert!(log.contains("peer sent no certificates"), "{log}");
    assert!(log.contains("UnknownIssuer"), "{log}");
    assert!(log.contains("User:alice"), "{log}");

    // The expiry metric names the listener and the subject.
    let (_, metrics) = http_get(&broker.metrics, "/metrics").expect("metrics");
    assert!(
        metrics.contains(r#"kmon_tls_certificate_expiry_timestamp_seconds{listener="grpc",subject="CN=broker"}"#),
        "{metrics}"
    );
}

#[test]
fn bad_tls_files_stop_the_broker_with_the_file_named() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kmon"))
        .args(["broker", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(["--tls-cert", &pki.path("broker.crt"), "--tls-key", &pki.path("alice.key")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("alice.key") && err.contains("does not match"), "{err}");
}

#[test]
fn three_broker_mtls_cluster_replicates() {
    let pki = Pki::new();
    let args = pki.broker_args();
    let cluster = Cluster::start(3, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let b = cluster.bootstrap_except(&[]);
    let alice = pki.client("ca.crt", Some("alice"));
    kmon_ok(
        &b,
        &with(&["topic", "create", "replicated", "--partitions", "2", "--replication-factor", "3"], &alice),
        "",
    );
    let records: String = (0..50).map(|i| format!("r{i}\n")).collect();
    kmon_ok(&b, &with(&["produce", "--topic", "replicated", "--acks", "all"], &alice), &records);
    let out = kmon_ok(&b, &with(&["consume", "--topic", "replicated", "--from-beginning"], &alice), "");
    assert_eq!(out.lines().count(), 50, "{out}");
}

#[test]
fn certificate_rotation_on_sighup_keeps_producers_going() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let args = pki.broker_args();
    let broker = BrokerProcess::start(data.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    let b = broker.bootstrap();
    let alice = pki.client("ca.crt", Some("alice"));
    kmon_ok(&b, &with(&["topic", "create", "rotating", "--partitions", "1"], &alice), "");
    // The new certificate comes from a second CA, so that a client trusting
    // only that CA tells which certificate the broker serves; the producer
    // trusts both (a CA bundle during a CA change).
    let second = ca("rotated CA");
    std::fs::write(pki.dir.path().join("ca2.crt"), &second.pem).unwrap();
    let both = std::fs::read_to_string(pki.path("ca.crt")).unwrap() + &second.pem;
    std::fs::write(pki.dir.path().join("both.crt"), both).unwrap();
    let alice = pki.client("both.crt", Some("alice"));

    // A producer that keeps its connection open while the certificate changes.
    let mut producer = Command::new(env!("CARGO_BIN_EXE_kmon"))
        .args(with(&["produce", "--topic", "rotating"], &alice))
        .env("KMON_BOOTSTRAP", &b)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = producer.stdin.take().unwrap();
    for i in 0..100 {
        writeln!(stdin, "before-{i}").unwrap();
    }
    stdin.flush().unwrap();
    // The producer is connected once its first records are in.
    wait_for("the first records", DEADLINE, || {
        let out = kmon_ok(&b, &with(&["consume", "--topic", "rotating", "--from-beginning"], &alice), "");
        (out.lines().count() == 100).then_some(())
    });

    let only_new = pki.client("ca2.crt", Some("alice"));
    kmon_err(&b, &with(&["topic", "list"], &only_new), "");
    leaf(pki.dir.path(), &second, "broker", "broker-rotated");
    broker.signal("HUP");
    wait_for("the new certificate on new connections", DEADLINE, || {
        kmon(&b, &with(&["topic", "list"], &only_new), "").status.success().then_some(())
    });
    for i in 0..100 {
        writeln!(stdin, "after-{i}").unwrap();
    }
    drop(stdin);
    let out = producer.wait_with_output().unwrap();
    assert!(out.status.success(), "producer failed: {}", String::from_utf8_lossy(&out.stderr));
    let consumed = kmon_ok(&b, &with(&["consume", "--topic", "rotating", "--from-beginning"], &only_new), "");
    assert_eq!(consumed.lines().count(), 200);
    let (_, metrics) = http_get(&broker.metrics, "/metrics").expect("metrics");
    assert!(metrics.contains(r#"subject="CN=broker-rotated""#), "{metrics}");
    assert!(!metrics.contains(r#"subject="CN=broker"}"#), "{metrics}");
}

/// A counter's value on an agent's `/metrics` (0 when absent).
fn agent_counter(metrics: &str, name: &str) -> f64 {
    let Some((_, body)) = http_get(metrics, "/metrics") else { return 0.0 };
    body.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[test]
fn an_agent_ships_only_with_a_valid_identity() {
    let pki = Pki::new();
    let other = ca("another CA");
    leaf(pki.dir.path(), &other, "mallory", "mallory");
    leaf(pki.dir.path(), &pki.ca, "agent", "agent-1");
    let data = tempfile::tempdir().unwrap();
    let args = pki.broker_args();
    let broker = BrokerProcess::start(data.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    let b = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();

    let good_args = pki.client("ca.crt", Some("agent"));
    let good = AgentProcess::start(&b, &dir.path().join("good"), "good", &with(&["--no-cluster-sample"], &good_args));
    let bad_args = pki.client("ca.crt", Some("mallory"));
    let bad = AgentProcess::start(&b, &dir.path().join("bad"), "bad", &with(&["--no-cluster-sample"], &bad_args));
    let plain = AgentProcess::start(&b, &dir.path().join("plain"), "plain", &["--no-cluster-sample"]);
    wait_for("the valid agent to ship", DEADLINE, || {
        (agent_counter(&good.metrics, "kmon_agent_samples_shipped_total") > 0.0).then_some(())
    });
    wait_for("the others to fail shipping", DEADLINE, || {
        (agent_counter(&bad.metrics, "kmon_agent_ship_errors_total") > 0.0
            && agent_counter(&plain.metrics, "kmon_agent_ship_errors_total") > 0.0)
            .then_some(())
    });
    assert_eq!(agent_counter(&bad.metrics, "kmon_agent_samples_shipped_total"), 0.0);
    assert_eq!(agent_counter(&plain.metrics, "kmon_agent_samples_shipped_total"), 0.0);
}
