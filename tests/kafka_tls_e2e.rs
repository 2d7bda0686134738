//! TLS and mutual TLS on the Kafka listener, over a real broker and real
//! third-party clients (confluent-kafka's librdkafka, kcat) with
//! `security.protocol=SSL`: the broker's `--tls-*` flags cover the Kafka
//! listener as they cover gRPC; a client with a certificate signed by the
//! CA produces and consumes; one without a certificate, with one from
//! another CA, or in plain text is refused; the principal ACLs are checked
//! against is the certificate's, mapped by the same rules as on gRPC, not
//! User:ANONYMOUS.
mod common;

use std::process::{Command, Output, Stdio};

use common::pki::*;
use common::*;

/// librdkafka's settings for TLS: trust `ca`, present `name`'s certificate
/// (when given). librdkafka checks that the broker's certificate names the
/// host it dialed (127.0.0.1): the test certificates do.
fn ssl(pki: &Pki, ca: &str, name: Option<&str>) -> Vec<String> {
    let mut config = vec!["security.protocol=SSL".to_string(), format!("ssl.ca.location={}", pki.path(ca))];
    if let Some(name) = name {
        config.push(format!("ssl.certificate.location={}", pki.path(&format!("{name}.crt"))));
        config.push(format!("ssl.key.location={}", pki.path(&format!("{name}.key"))));
    }
    config
}

/// `ck_produce.py`: `count` records to `topic`, giving up after `deadline`
/// seconds (records not delivered by then are reported as failed).
fn produce(bootstrap: &str, topic: &str, config: &[String], count: u32, deadline: u32) -> Command {
    let mut cmd = Command::new(kafka_clients_python());
    cmd.arg(kafka_client_script("ck_produce.py"))
        .args(["--bootstrap", bootstrap, "--topic", topic, "--count", &count.to_string()])
        .args(["--deadline", &deadline.to_string(), "--allow-failures"])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for setting in config {
        cmd.args(["--config", setting]);
    }
    cmd
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn kafka_clients_over_mutual_tls_are_authorized_as_their_certificate() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    // The mapping rules apply as on gRPC: alice's certificate is User:alice-ssl.
    let mut args = pki.broker_args_with_super_users();
    args.extend(["--tls-principal-mapping-rules".into(), "RULE:^CN=alice$/alice-ssl/,DEFAULT".into()]);
    let broker = BrokerProcess::start_with_env(
        &[data.path().to_path_buf()],
        &refs(&args),
        &[("RUST_LOG", "info,kmon_kafka=debug")],
    );
    let b = broker.bootstrap();
    let admin = pki.client("ca.crt", Some("admin"));
    for topic in ["open", "closed"] {
        kmon_ok(&b, &with(&["topic", "create", topic, "--partitions", "2"], &admin), "");
    }
    // alice may look every topic up, write to and read open, and look up
    // the coordinator of ck_consume.py's group; nothing else.
    for (operation, resource, name) in [
        ("Describe", "--topic", "*"),
        ("Write", "--topic", "open"),
        ("Read", "--topic", "open"),
        ("Describe", "--group", "kmon-test-ck-consume"),
    ] {
        kmon_ok(
            &b,
            &with(
                &["acl", "add", "--allow-principal", "User:alice-ssl", "--operation", operation, resource, name],
                &admin,
            ),
            "",
        );
    }
    let alice = ssl(&pki, "ca.crt", Some("alice"));

    let out = produce(&broker.kafka, "open", &alice, 5, 30).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains(r#""delivered": 5"#), "{stdout}{stderr}");

    let mut consume = Command::new(kafka_clients_python());
    consume
        .arg(kafka_client_script("ck_consume.py"))
        .args(["--bootstrap", &broker.kafka, "--topic", "open", "--min-records", "5", "--deadline", "30"])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for setting in &alice {
        consume.args(["--config", setting]);
    }
    let out = consume.output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let mut values: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(r#""event": "record""#))
        .filter_map(|l| l.split(r#""value": ""#).nth(1)?.split('"').next())
        .collect();
    values.sort();
    assert_eq!(values, ["record-0", "record-1", "record-2", "record-3", "record-4"], "{stdout}");

    // No Write on closed for User:alice-ssl: refused by Produce, nothing
    // written, counted under alice's principal (not ANONYMOUS).
    let out = produce(&broker.kafka, "closed", &alice, 3, 20).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("TOPIC_AUTHORIZATION_FAILED"), "{stdout}{stderr}");
    assert!(!stdout.contains(r#""event": "delivered""#), "{stdout}");
    let out = kmon_ok(&b, &with(&["consume", "--topic", "closed", "--from-beginning"], &admin), "");
    assert_eq!(out, "", "nothing was written to closed");
    assert!(denied(&broker.metrics, "User:alice-ssl", "topic") >= 1.0);
    assert_eq!(denied(&broker.metrics, "User:ANONYMOUS", "topic"), 0.0);
    let log = broker.stderr();
    assert!(log.contains("kafka listener: TLS connection") && log.contains("User:alice-ssl"), "{log}");

    // kcat as admin, a super user: writes to closed and reads it back.
    let mut kcat_ssl = vec!["-X".to_string(), "security.protocol=ssl".to_string()];
    for setting in ssl(&pki, "ca.crt", Some("admin")).into_iter().skip(1) {
        kcat_ssl.extend(["-X".to_string(), setting]);
    }
    let kcat = |args: &[&str], input: &str| {
        let mut child = Command::new("timeout")
            .args(["30", "kcat", "-b", &broker.kafka])
            .args(&kcat_ssl)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kcat (./test.sh installs it)");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "kcat {args:?}: {stdout}{stderr}");
        stdout
    };
    kcat(&["-P", "-t", "closed", "-p", "0"], "from-kcat\n");
    let read = kcat(&["-C", "-t", "closed", "-p", "0", "-o", "beginning", "-e", "-q"], "");
    assert_eq!(read.trim(), "from-kcat");
}

#[test]
fn the_tls_kafka_listener_refuses_clients_without_a_valid_certificate() {
    let pki = Pki::new();
    let other = ca("another CA");
    leaf(pki.dir.path(), &other, "mallory", "mallory");
    let data = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start_with_env(
        &[data.path().to_path_buf()],
        &refs(&pki.broker_args()),
        &[("RUST_LOG", "info,kmon_kafka=debug")],
    );
    kmon_ok(
        &broker.bootstrap(),
        &with(&["topic", "create", "t", "--partitions", "1"], &pki.client("ca.crt", Some("admin"))),
        "",
    );

    // No certificate, a certificate from another CA, plain text: all three
    // at once (each gives up after its deadline); none gets a record in.
    let refused: Vec<(&str, Vec<String>)> = vec![
        ("no certificate", ssl(&pki, "ca.crt", None)),
        ("another CA", ssl(&pki, "ca.crt", Some("mallory"))),
        ("plain text", Vec::new()),
    ];
    let children: Vec<_> = refused
        .iter()
        .map(|(what, config)| {
            let child = produce(&broker.kafka, "t", config, 2, 10)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (what, child)
        })
        .collect();
    for (what, child) in children {
        let (stdout, stderr) = text(&child.wait_with_output().unwrap());
        assert!(!stdout.contains(r#""event": "delivered""#), "{what}: {stdout}{stderr}");
        assert!(stdout.contains(r#""delivered": 0"#), "{what}: {stdout}{stderr}");
    }
    let log = broker.stderr();
    assert!(log.contains("kafka listener: TLS handshake refused"), "{log}");
    // The certificate's expiry is watched for the Kafka listener too.
    let (_, metrics) = http_get(&broker.metrics, "/metrics").expect("metrics");
    assert!(
        metrics.contains(r#"kmon_tls_certificate_expiry_timestamp_seconds{listener="kafka",subject="CN=broker"}"#),
        "{metrics}"
    );
    // librdkafka sends no certificate the broker's CA did not sign (the
    // broker names its CA in the handshake): both are refused as certificate-less.
    assert!(log.contains("peer sent no certificates"), "{log}");
    assert!(log.contains("corrupt message"), "plain text on the TLS port: {log}");

    // A valid certificate is served (so the refusals above were the listener's choice).
    let out = produce(&broker.kafka, "t", &ssl(&pki, "ca.crt", Some("alice")), 2, 30).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains(r#""delivered": 2"#), "{stdout}{stderr}");
    let out = kmon_ok(
        &broker.bootstrap(),
        &with(&["consume", "--topic", "t", "--from-beginning"], &pki.client("ca.crt", Some("admin"))),
        "",
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), ["record-0", "record-1"]);
}
