//! SASL/SCRAM-SHA-512 on the Kafka listener (Kafka's SASL_PLAINTEXT), over
//! a real broker and confluent-kafka (librdkafka): users made with `kmon
//! user add` (the password salted on the client, only keys in the quorum)
//! produce and consume; a wrong password, an unknown or removed user and a
//! client without SASL are refused and counted; ACLs apply to the SASL
//! principal (`User:alice`), not `User:ANONYMOUS`; no password is in any
//! file of the data directory.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn scram(user: &str, password: &str) -> Vec<String> {
    vec![
        "security.protocol=SASL_PLAINTEXT".into(),
        "sasl.mechanisms=SCRAM-SHA-512".into(),
        format!("sasl.username={user}"),
        format!("sasl.password={password}"),
    ]
}

/// `ck_produce.py` or `ck_consume.py` with librdkafka `config`.
fn client(name: &str, bootstrap: &str, topic: &str, config: &[String], extra: &[&str]) -> Output {
    let mut cmd = Command::new(kafka_clients_python());
    cmd.arg(kafka_client_script(name)).args(["--bootstrap", bootstrap, "--topic", topic]).args(extra);
    for setting in config {
        cmd.args(["--config", setting]);
    }
    cmd.env("PYTHONDONTWRITEBYTECODE", "1").output().unwrap()
}

fn produce(bootstrap: &str, topic: &str, config: &[String], count: u32, deadline: u32) -> String {
    let count = count.to_string();
    let deadline = deadline.to_string();
    let out = client(
        "ck_produce.py",
        bootstrap,
        topic,
        config,
        &["--count", &count, "--deadline", &deadline, "--allow-failures"],
    );
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// As `user`, with confluent-kafka's AdminClient: describe the group
/// `group`, list groups, describe topic `topic`'s configs, describe the
/// cluster (its broker count); one line each, `ok ...` or `error CODE`.
fn admin_as(bootstrap: &str, user: &str, password: &str, group: &str, topic: &str) -> String {
    let program = r#"
import sys
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
bootstrap, user, password, group, topic = sys.argv[1:6]
admin = AdminClient({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                     "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password})
def show(what, run):
    try:
        print("ok", what, run())
    except KafkaException as e:
        print("error", what, e.args[0].name())
show("describe-group", lambda: admin.describe_consumer_groups([group])[group].result(timeout=20).state)
show("list-groups", lambda: sorted(g.group_id for g in admin.list_consumer_groups().result(timeout=20).valid))
resource = ConfigResource(ResourceType.TOPIC, topic)
show("describe-configs", lambda: len(admin.describe_configs([resource])[resource].result(timeout=20)))
# librdkafka describes the cluster with Metadata; kafka-python sends
# DescribeCluster itself.
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
def brokers():
    kp = KafkaAdminClient(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
                          sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user, sasl_plain_password=password)
    try:
        return len(kp.describe_cluster()["brokers"])
    finally:
        kp.close()
try:
    print("ok describe-cluster", brokers())
except KafkaError as e:
    print("error describe-cluster", type(e).__name__)
"#;
    let out = Command::new(kafka_clients_python())
        .args(["-c", program, bootstrap, user, password, group, topic])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn counter(metrics: &str, name: &str) -> f64 {
    let Some((_, body)) = http_get(metrics, "/metrics") else { return 0.0 };
    body.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map_while(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn scram_users_produce_and_consume_and_everyone_else_is_refused() {
    let data = tempfile::tempdir().unwrap();
    // gRPC stays plain text here: its ANONYMOUS clients (this test) manage
    // users and ACLs as a super user; Kafka clients must authenticate.
    let broker = BrokerProcess::start(
        data.path(),
        &["--kafka-sasl-mechanisms", "SCRAM-SHA-512", "--super-users", "User:ANONYMOUS"],
    );
    let b = broker.bootstrap();
    kmon_ok(&b, &["topic", "create", "open", "--partitions", "2"], "");
    kmon_ok(&b, &["topic", "create", "closed", "--partitions", "1"], "");
    let added = kmon_ok(&b, &["user", "add", "alice", "--password", "alice-Secret-1"], "");
    assert!(added.contains(r#"SCRAM-SHA-512 user "alice" added (4096 iterations)"#), "{added}");
    // The password from standard input, as a script would give it.
    kmon_ok(&b, &["user", "add", "bob"], "bob-Secret-2\n");
    let listed = kmon_ok(&b, &["user", "list"], "");
    assert!(listed.contains("alice") && listed.contains("bob") && !listed.contains("Secret"), "{listed}");

    // alice may use open, bob nothing (ACLs on the SASL principals).
    for (operation, topic) in [("Describe", "*"), ("Write", "open"), ("Read", "open")] {
        kmon_ok(&b, &["acl", "add", "--allow-principal", "User:alice", "--operation", operation, "--topic", topic], "");
    }
    kmon_ok(
        &b,
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Describe",
            "--group",
            "kmon-test-ck-consume",
        ],
        "",
    );
    kmon_ok(&b, &["acl", "add", "--allow-principal", "User:bob", "--operation", "Describe", "--topic", "*"], "");
    kmon_ok(&b, &["acl", "add", "--allow-principal", "User:bob", "--operation", "Describe", "--cluster"], "");

    let alice = scram("alice", "alice-Secret-1");
    let out = produce(&broker.kafka, "open", &alice, 5, 30);
    assert!(out.contains(r#""delivered": 5"#), "{out}");
    let out = client("ck_consume.py", &broker.kafka, "open", &alice, &["--min-records", "5", "--deadline", "30"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.contains(r#""event": "record""#)).count(), 5, "{stdout}");
    assert!(counter(&broker.metrics, "kafka_server_socket_server_metrics_successful_authentication_total") >= 2.0);

    // bob authenticates but has no Write: refused as User:bob, nothing written.
    let out = produce(&broker.kafka, "open", &scram("bob", "bob-Secret-2"), 2, 20);
    assert!(out.contains("TOPIC_AUTHORIZATION_FAILED"), "{out}");
    assert!(!out.contains(r#""event": "delivered""#), "{out}");

    // An idempotent producer's id needs Write on some topic (KIP-679):
    // alice has it, bob does not.
    let idempotent = ["--count", "2", "--deadline", "20", "--allow-failures", "--idempotence"];
    let out = client("ck_produce.py", &broker.kafka, "open", &alice, &idempotent);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#""delivered": 2"#), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let out = client("ck_produce.py", &broker.kafka, "open", &scram("bob", "bob-Secret-2"), &idempotent);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("CLUSTER_AUTHORIZATION_FAILED"), "{text}");
    assert!(!text.contains(r#""event": "delivered""#), "{text}");

    // The admin APIs check their ACLs too: alice may describe the group
    // she has Describe on and the topic, bob (Describe on topics only) not
    // the group, and does not see it listed.
    let group = "kmon-test-ck-consume";
    let alice_admin = admin_as(&broker.kafka, "alice", "alice-Secret-1", group, "open");
    assert!(alice_admin.contains("ok describe-group"), "{alice_admin}");
    assert!(alice_admin.contains("ok describe-configs"), "{alice_admin}");
    let bob_admin = admin_as(&broker.kafka, "bob", "bob-Secret-2", group, "open");
    assert!(bob_admin.contains("error describe-group GROUP_AUTHORIZATION_FAILED"), "{bob_admin}");
    assert!(bob_admin.contains("ok list-groups []"), "{bob_admin}");
    assert!(bob_admin.contains("ok describe-configs"), "Describe on every topic: {bob_admin}");
    // DescribeCluster needs Describe on the cluster: bob has it, alice not.
    assert!(bob_admin.contains("ok describe-cluster 1"), "{bob_admin}");
    assert!(alice_admin.contains("error describe-cluster ClusterAuthorizationFailedError"), "{alice_admin}");

    // A wrong password, an unknown user and plain text: no record in, the
    // failures counted.
    let failed_before = counter(&broker.metrics, "kafka_server_socket_server_metrics_failed_authentication_total");
    for (what, config) in [
        ("wrong password", scram("alice", "guess")),
        ("unknown user", scram("mallory", "alice-Secret-1")),
        ("no SASL", Vec::new()),
    ] {
        let out = produce(&broker.kafka, "open", &config, 1, 8);
        assert!(out.contains(r#""delivered": 0"#), "{what}: {out}");
        if what != "no SASL" {
            assert!(out.contains("Authentication failed") || out.contains("AUTHENTICATION"), "{what}: {out}");
        }
    }
    let failed = counter(&broker.metrics, "kafka_server_socket_server_metrics_failed_authentication_total");
    assert!(failed >= failed_before + 2.0, "{failed_before} -> {failed}");

    // A removed user cannot log in any more.
    kmon_ok(&b, &["user", "remove", "alice"], "");
    let out = produce(&broker.kafka, "open", &alice, 1, 8);
    assert!(out.contains(r#""delivered": 0"#), "{out}");
    let err = kmon_err(&b, &["user", "remove", "alice"], "");
    assert!(err.contains("no SCRAM user 'alice'"), "{err}");

    // Only salted keys were stored: neither password is in any file.
    drop(broker);
    for file in files(data.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for password in [&b"alice-Secret-1"[..], b"bob-Secret-2"] {
            assert!(!bytes.windows(password.len()).any(|w| w == password), "a password in {}", file.display());
        }
    }
}

#[test]
fn bad_sasl_settings_and_user_input_are_named() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(KMON)
        .args(["broker", "--data-dir"])
        .arg(data.path())
        .args(["--kafka-sasl-mechanisms", "PLAIN"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("kafka_sasl_mechanisms: 'PLAIN' is not supported (only SCRAM-SHA-512)"), "{stderr}");

    let broker = BrokerProcess::start(data.path(), &[]);
    let b = broker.bootstrap();
    let err = kmon_err(&b, &["user", "add", "carol", "--password", "x", "--iterations", "10"], "");
    assert!(err.contains("--iterations must be 4096..=16384, not 10"), "{err}");
    let err = kmon_err(&b, &["user", "add", "carol"], "");
    assert!(err.contains("the password of \"carol\" is empty"), "{err}");
}

/// gRPC clients (kmon's CLI) authenticate as the same SCRAM users with
/// `--sasl-username/--sasl-password`; ACLs apply to that principal; a wrong
/// password is refused as unauthenticated, not run as anonymous.
#[test]
fn grpc_clients_authenticate_as_scram_users() {
    let data = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(data.path(), &["--super-users", "User:admin"]);
    let b = broker.bootstrap();
    // No ACL yet: everyone may do everything, so the users can be made.
    kmon_ok(&b, &["user", "add", "admin", "--password", "admin-pw"], "");
    kmon_ok(&b, &["user", "add", "carol", "--password", "carol-pw"], "");
    let admin = ["--sasl-username", "admin", "--sasl-password", "admin-pw"];
    let carol = ["--sasl-username", "carol", "--sasl-password", "carol-pw"];
    let with = |who: &[&'static str], args: &[&'static str]| [args, who].concat();
    kmon_ok(&b, &with(&admin, &["topic", "create", "t", "--partitions", "1"]), "");
    for operation in ["Write", "Describe"] {
        let args = ["acl", "add", "--allow-principal", "User:carol", "--operation", operation, "--topic", "t"];
        kmon_ok(&b, &with(&admin, &args), "");
    }

    kmon_ok(&b, &with(&carol, &["produce", "--topic", "t"]), "from-carol\n");
    let read = kmon_ok(&b, &with(&admin, &["consume", "--topic", "t", "--from-beginning"]), "");
    assert_eq!(read.trim(), "from-carol");
    // carol may not read, anonymous may not write, a wrong password is no login.
    let err = kmon_err(&b, &with(&carol, &["consume", "--topic", "t", "--from-beginning"]), "");
    assert!(err.contains("User:carol is not authorized to Read Topic 't'"), "{err}");
    let err = kmon_err(&b, &["produce", "--topic", "t"], "anon\n");
    assert!(err.contains("User:ANONYMOUS is not authorized"), "{err}");
    let err = kmon_err(&b, &["produce", "--topic", "t", "--sasl-username", "carol", "--sasl-password", "guess"], "x\n");
    assert!(err.contains("authentication failed: invalid SCRAM credentials"), "{err}");
    let failed = counter(&broker.metrics, "kafka_server_socket_server_metrics_failed_authentication_total");
    assert!(failed >= 1.0, "{failed}");
    let read = kmon_ok(&b, &with(&admin, &["consume", "--topic", "t", "--from-beginning"]), "");
    assert_eq!(read.trim(), "from-carol", "nothing else was written");
}
