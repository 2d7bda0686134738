//! ACLs in the metadata quorum, over real processes with mutual TLS (the
//! principal is the client certificate's CN): with no ACL everything is
//! allowed; once one exists a principal without Write is refused with
//! PermissionDenied naming who, what and which, and nothing is written; a
//! DENY beats an ALLOW; prefixed ACLs match by name prefix; ACLs survive a
//! full cluster restart and the SIGKILL of the controller. (Kafka clients
//! and ACLs, over the TLS Kafka listener: kafka_tls_e2e.rs.)
mod common;

use std::time::Duration;

use common::pki::*;
use common::*;

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn write_needs_an_acl_deny_beats_allow_and_prefixes_match() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(data.path(), &refs(&pki.broker_args_with_super_users()));
    let b = broker.bootstrap();
    let (admin, alice, bob) =
        (pki.client("ca.crt", Some("admin")), pki.client("ca.crt", Some("alice")), pki.client("ca.crt", Some("bob")));

    // No ACL at all: everyone may do everything, as before ACLs existed.
    let out = kmon_ok(&b, &with(&["acl", "list"], &alice), "");
    assert!(out.contains("no ACLs"), "{out}");
    kmon_ok(&b, &with(&["topic", "create", "open", "--partitions", "1"], &bob), "");
    kmon_ok(&b, &with(&["produce", "--topic", "open"], &bob), "before\n");

    // alice may write to every topic starting with orders-.
    let out = kmon_ok(
        &b,
        &with(
            &[
                "acl",
                "add",
                "--allow-principal",
                "User:alice",
                "--operation",
                "Write",
                "--topic",
                "orders-",
                "--resource-pattern-type",
                "prefixed",
            ],
            &admin,
        ),
        "",
    );
    assert!(out.contains("1 ACL(s) added"), "{out}");
    for topic in ["orders-eu", "secret"] {
        kmon_ok(&b, &with(&["topic", "create", topic, "--partitions", "1"], &admin), "");
    }
    kmon_ok(&b, &with(&["produce", "--topic", "orders-eu"], &alice), "a1\n");
    // alice may read secret (and so describe it), not write to it.
    kmon_ok(
        &b,
        &with(&["acl", "add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "secret"], &admin),
        "",
    );

    // No ACL allows alice to write to secret: refused, named, nothing written.
    let err = kmon_err(&b, &with(&["produce", "--topic", "secret"], &alice), "leak\n");
    assert!(err.contains("User:alice is not authorized to Write Topic 'secret'"), "{err}");
    let out = kmon_ok(&b, &with(&["consume", "--topic", "secret", "--from-beginning"], &admin), "");
    assert_eq!(out, "", "nothing was written to secret");
    // Nor may bob (no ACL names him: he may not even describe the topic),
    // nor may alice change the ACLs.
    let err = kmon_err(&b, &with(&["produce", "--topic", "orders-eu"], &bob), "b1\n");
    assert!(err.contains("User:bob is not authorized to Describe Topic 'orders-eu'"), "{err}");
    let err = kmon_err(
        &b,
        &with(&["acl", "add", "--allow-principal", "User:alice", "--operation", "All", "--topic", "secret"], &alice),
        "",
    );
    assert!(err.contains("User:alice is not authorized to Alter Cluster 'kafka-cluster'"), "{err}");
    assert!(denied(&broker.metrics, "User:alice", "topic") >= 1.0);
    assert!(denied(&broker.metrics, "User:alice", "cluster") >= 1.0);

    // Everyone may do everything to every topic, but bob may not write to
    // orders-*: the DENY wins for bob only.
    kmon_ok(
        &b,
        &with(&["acl", "add", "--allow-principal", "User:*", "--operation", "All", "--topic", "*"], &admin),
        "",
    );
    let deny_bob = [
        "acl",
        "remove",
        "--deny-principal",
        "User:bob",
        "--operation",
        "Write",
        "--topic",
        "orders-",
        "--resource-pattern-type",
        "prefixed",
    ];
    let mut add_deny = deny_bob;
    add_deny[1] = "add";
    kmon_ok(&b, &with(&add_deny, &admin), "");
    let err = kmon_err(&b, &with(&["produce", "--topic", "orders-eu"], &bob), "b2\n");
    assert!(err.contains("User:bob is not authorized to Write Topic 'orders-eu'"), "{err}");
    kmon_ok(&b, &with(&["produce", "--topic", "secret"], &bob), "b3\n");
    kmon_ok(&b, &with(&["produce", "--topic", "orders-eu"], &alice), "a2\n");
    let listed = kmon_ok(&b, &with(&["acl", "list"], &admin), "");
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert!(listed.contains("Deny") && listed.contains("User:bob") && listed.contains("Prefixed"), "{listed}");

    // Without the DENY, bob writes to orders-eu again.
    let out = kmon_ok(&b, &with(&deny_bob, &admin), "");
    assert!(out.contains("1 ACL(s) removed"), "{out}");
    kmon_ok(&b, &with(&["produce", "--topic", "orders-eu"], &bob), "b4\n");
    let out = kmon_ok(&b, &with(&["consume", "--topic", "orders-eu", "--from-beginning"], &admin), "");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["a1", "a2", "b4"]);
    let out = kmon_ok(&b, &with(&["consume", "--topic", "secret", "--from-beginning"], &admin), "");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["b3"]);

    // A bad ACL is refused with what was wrong, and nothing is stored.
    let err = kmon_err(
        &b,
        &with(&["acl", "add", "--allow-principal", "alice", "--operation", "Read", "--topic", "t"], &admin),
        "",
    );
    assert!(err.contains("User:NAME"), "{err}");
    let err = kmon_err(
        &b,
        &with(&["acl", "add", "--allow-principal", "User:a", "--operation", "Push", "--topic", "t"], &admin),
        "",
    );
    assert!(err.contains("'Push'"), "{err}");
    assert_eq!(kmon_ok(&b, &with(&["acl", "list"], &admin), "").lines().count(), 3);
}

/// The id of the broker that is the active controller now.
fn controller(cluster: &Cluster) -> i32 {
    wait_for("an active controller", DEADLINE, || {
        cluster.brokers.iter().enumerate().find_map(|(i, b)| {
            let (_, body) = http_get(&b.metrics, "/metrics")?;
            body.lines()
                .any(|l| l == "kafka_controller_kafkacontroller_activecontrollercount 1")
                .then_some(i as i32 + 1)
        })
    })
}

#[test]
fn acls_survive_a_full_restart_and_a_controller_failover() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, "broker_session_timeout_ms = 1500\nbroker_heartbeat_interval_ms = 200\n").unwrap();
    let mut args = pki.broker_args_with_super_users();
    args.extend(["--config".into(), config.to_string_lossy().into_owned()]);
    let mut cluster = Cluster::start(3, &refs(&args));
    let (admin, alice, bob) =
        (pki.client("ca.crt", Some("admin")), pki.client("ca.crt", Some("alice")), pki.client("ca.crt", Some("bob")));
    let b = cluster.bootstrap_except(&[]);
    kmon_ok(&b, &with(&["topic", "create", "t", "--partitions", "2", "--replication-factor", "3"], &admin), "");
    kmon_ok(
        &b,
        &with(&["acl", "add", "--allow-principal", "User:alice", "--operation", "Write", "--topic", "t"], &admin),
        "",
    );
    kmon_ok(&b, &with(&["produce", "--topic", "t", "--acks", "all"], &alice), "a1\n");
    kmon_err(&b, &with(&["produce", "--topic", "t"], &bob), "b1\n");

    cluster.restart_all();
    let b = cluster.bootstrap_except(&[]);
    let listed = kmon_ok(&b, &with(&["acl", "list"], &admin), "");
    assert!(listed.contains("User:alice") && listed.contains("Write"), "{listed}");
    // Replication (brokers as User:broker) works; alice still may, bob still may not.
    kmon_ok(&b, &with(&["produce", "--topic", "t", "--acks", "all"], &alice), "a2\n");
    let err = kmon_err(&b, &with(&["produce", "--topic", "t"], &bob), "b2\n");
    assert!(err.contains("User:bob is not authorized to Describe Topic 't'"), "{err}");

    let old = controller(&cluster);
    cluster.broker(old).kill();
    let b = cluster.bootstrap_except(&[old]);
    let new = controller(&cluster);
    assert_ne!(new, old);
    // The new controller has the ACLs and takes new ones.
    kmon_ok(
        &b,
        &with(&["acl", "add", "--allow-principal", "User:bob", "--operation", "Write", "--topic", "t"], &admin),
        "",
    );
    let listed = kmon_ok(&b, &with(&["acl", "list"], &admin), "");
    assert_eq!(listed.lines().count(), 2, "{listed}");
    // Every broker learns the new ACL from the quorum, soon.
    wait_for("bob's produce to be allowed", DEADLINE, || {
        kmon(&b, &with(&["produce", "--topic", "t"], &bob), "b3\n").status.success().then_some(())
    });
    let out = kmon_ok(&b, &with(&["consume", "--topic", "t", "--from-beginning"], &admin), "");
    let mut got: Vec<_> = out.lines().collect();
    got.sort();
    assert_eq!(got, ["a1", "a2", "b3"]);
}
