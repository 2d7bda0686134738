//! `kmon rest` over a real broker, driven by plain HTTP clients: curl for
//! the v3 resources and produce (JSON, string and binary data, keys,
//! headers, partition choice, timestamps; bad JSON, an unknown topic, an
//! oversized body, a bad base64 value), records read back with kmon's own
//! consumer to check every field landed; Python `requests` for a v2
//! consumer instance (create, subscribe, fetch, commit, delete), its
//! committed offset checked with `kmon group describe`; `/openapi.json` and
//! `/metrics`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use kmon_client::{Consumer, ConsumerConfig, ConsumerRecord};
use serde_json::{Value, json};

/// `kmon rest` on an ephemeral port, killed on drop.
struct RestProcess {
    child: Child,
    address: String,
}

impl RestProcess {
    fn start(bootstrap: &str, extra: &[&str]) -> RestProcess {
        let mut command = Command::new(KMON);
        command
            .args(["rest", "--bootstrap", bootstrap, "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("KMON_BOOTSTRAP")
            .stderr(Stdio::null());
        let (child, line) = spawn_until_ready(command, kmon_rest::READY_PREFIX, Duration::from_secs(30));
        let address = kmon_cluster::ready_field(&line, "http").expect("http= in the ready line").to_owned();
        RestProcess { child, address }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl Drop for RestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl` with a JSON body (or none): (status, parsed body or the text).
fn curl(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    let mut command = Command::new("curl");
    command.args(["-sS", "-X", method, "-w", "\n%{http_code}", url]);
    if body.is_some() {
        command.args(["-H", "Content-Type: application/json", "--data-binary", "@-"]);
    }
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("curl (test.sh installs it)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(body.unwrap_or("").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "curl {method} {url}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    let value = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    (status.trim().parse().unwrap(), value)
}

/// Up to `count` records of a partition from its start, reading for at
/// most `wait`.
async fn read_back(bootstrap: &str, topic: &str, partition: u32, count: usize, wait: Duration) -> Vec<ConsumerRecord> {
    let mut consumer = Consumer::connect(ConsumerConfig::new(bootstrap)).await.unwrap();
    consumer.assign(topic, partition, 0);
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + wait;
    while records.len() < count && std::time::Instant::now() < deadline {
        records.extend(consumer.poll().await.unwrap());
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_resources_and_produce_over_curl() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let bootstrap = broker.bootstrap();
    let rest = RestProcess::start(&bootstrap, &["--max-body-bytes", "16384"]);

    // Cluster and topic resources.
    let (status, clusters) = curl("GET", &rest.url("/v3/clusters"), None);
    assert_eq!(status, 200, "{clusters}");
    assert_eq!(clusters["kind"], "KafkaClusterList");
    assert_eq!(clusters["data"][0]["cluster_id"], "kmon");
    let (status, created) = curl(
        "POST",
        &rest.url("/v3/clusters/kmon/topics"),
        Some(r#"{"topic_name":"orders","partitions_count":3,"configs":[{"name":"retention.ms","value":"3600000"}]}"#),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["topic_name"].as_str(), created["partitions_count"].as_u64()), (Some("orders"), Some(3)));
    let (status, again) =
        curl("POST", &rest.url("/v3/clusters/kmon/topics"), Some(r#"{"topic_name":"orders","partitions_count":3}"#));
    assert_eq!((status, again["error_code"].as_u64()), (409, Some(409)), "{again}");
    let (status, topics) = curl("GET", &rest.url("/v3/clusters/kmon/topics"), None);
    assert_eq!(status, 200);
    assert!(topics["data"].as_array().unwrap().iter().any(|t| t["topic_name"] == "orders"), "{topics}");
    let (status, partitions) = curl("GET", &rest.url("/v3/clusters/kmon/topics/orders/partitions"), None);
    assert_eq!(status, 200);
    assert_eq!(partitions["data"].as_array().unwrap().len(), 3);
    assert_eq!(curl("GET", &rest.url("/v3/clusters/kmon/topics/orders/partitions/7"), None).0, 404);
    assert_eq!(curl("GET", &rest.url("/v3/clusters/other/topics"), None).0, 404);

    // One record of each data type, to a chosen partition, with a header
    // and a timestamp; each is read back exactly.
    let produce =
        |body: Value| curl("POST", &rest.url("/v3/clusters/kmon/topics/orders/records"), Some(&body.to_string()));
    let (status, json_ack) = produce(json!({
        "partition_id": 1,
        "key": {"type": "STRING", "data": "customer-7"},
        "value": {"type": "JSON", "data": {"item": "tea", "qty": 2}},
        "headers": [{"name": "trace", "value": "YWJj"}],
        "timestamp": "2026-12-01T10:00:00.250Z",
    }));
    assert_eq!(status, 200, "{json_ack}");
    assert_eq!((json_ack["partition_id"].as_u64(), json_ack["offset"].as_i64()), (Some(1), Some(0)), "{json_ack}");
    assert_eq!(json_ack["timestamp"], "2026-12-01T10:00:00.250Z");
    let (status, binary_ack) = produce(json!({"partition_id": 1, "value": {"type": "BINARY", "data": "AAEC/w=="}}));
    assert_eq!((status, binary_ack["offset"].as_i64()), (200, Some(1)), "{binary_ack}");
    let (status, string_ack) = produce(json!({"partition_id": 1, "value": {"type": "STRING", "data": "plain text"}}));
    assert_eq!((status, string_ack["offset"].as_i64()), (200, Some(2)), "{string_ack}");
    let records = read_back(&bootstrap, "orders", 1, 3, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].key.as_deref(), Some(&b"customer-7"[..]));
    assert_eq!(serde_json::from_slice::<Value>(&records[0].value).unwrap(), json!({"item": "tea", "qty": 2}));
    assert_eq!(records[0].timestamp_ms, 1_796_119_200_250);
    assert_eq!(records[0].headers.len(), 1);
    assert_eq!(
        (records[0].headers[0].key.as_str(), records[0].headers[0].value.as_deref()),
        ("trace", Some(&b"abc"[..]))
    );
    assert_eq!(&records[1].value[..], &[0u8, 1, 2, 255]);
    assert_eq!(&records[2].value[..], b"plain text");

    // A batch of 100: each entry answered by its id, offsets in order.
    let entries: Vec<Value> =
        (0..100).map(|i| json!({"id": format!("e{i}"), "partition_id": 2, "value": {"data": i}})).collect();
    let (status, batch) = curl(
        "POST",
        &rest.url("/v3/clusters/kmon/topics/orders/records:batch"),
        Some(&json!({ "entries": entries }).to_string()),
    );
    assert_eq!(status, 207, "{batch}");
    let successes = batch["successes"].as_array().unwrap();
    assert_eq!((successes.len(), batch["failures"].as_array().unwrap().len()), (100, 0), "{batch}");
    for (i, s) in successes.iter().enumerate() {
        assert_eq!((s["id"].as_str(), s["offset"].as_i64()), (Some(format!("e{i}").as_str()), Some(i as i64)));
    }
    let mixed = json!({"entries": [
        {"id": "good", "partition_id": 0, "value": {"data": 1}},
        {"id": "bad", "value": {"type": "BINARY", "data": "%%%"}},
    ]});
    let (status, mixed) =
        curl("POST", &rest.url("/v3/clusters/kmon/topics/orders/records:batch"), Some(&mixed.to_string()));
    assert_eq!(status, 207);
    assert_eq!(mixed["successes"][0]["id"], "good");
    assert_eq!(
        (mixed["failures"][0]["id"].as_str(), mixed["failures"][0]["error_code"].as_u64()),
        (Some("bad"), Some(422))
    );

    // Bad input: a JSON error naming what was wrong, nothing written.
    let (status, err) = curl("POST", &rest.url("/v3/clusters/kmon/topics/orders/records"), Some("{not json"));
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("invalid JSON"), "{err}");
    let (status, err) = produce(json!({"value": {"type": "BINARY", "data": "not base64!"}}));
    assert_eq!(status, 422);
    assert!(err["message"].as_str().unwrap().contains("base64"), "{err}");
    let (status, err) = produce(json!({"partition_id": 9, "value": {"data": 1}}));
    assert_eq!(status, 422);
    assert!(err["message"].as_str().unwrap().contains("no partition 9"), "{err}");
    let (status, err) =
        curl("POST", &rest.url("/v3/clusters/kmon/topics/nope/records"), Some(r#"{"value":{"data":1}}"#));
    assert_eq!((status, err["error_code"].as_u64()), (404, Some(404)), "{err}");
    assert!(err["message"].as_str().unwrap().contains("nope"), "{err}");
    let big = json!({"value": {"type": "STRING", "data": "x".repeat(20_000)}}).to_string();
    let (status, err) = curl("POST", &rest.url("/v3/clusters/kmon/topics/orders/records"), Some(&big));
    assert_eq!(status, 413, "{err}");
    assert!(err["message"].as_str().unwrap().contains("16384"), "{err}");
    // Nothing more may arrive: read for a moment past the three records.
    let after = read_back(&bootstrap, "orders", 1, 4, Duration::from_secs(2)).await;
    assert_eq!(after.len(), 3, "refused requests wrote nothing");

    // The OpenAPI document names every route; the proxy's metrics count
    // requests by route pattern and status.
    let (status, openapi) = curl("GET", &rest.url("/openapi.json"), None);
    assert_eq!(status, 200);
    assert_eq!(openapi["openapi"], "3.0.3");
    for path in ["/v3/clusters/{cluster_id}/topics/{topic_name}/records", "/consumers/{group_name}"] {
        assert!(openapi["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    let metrics = http_get(&rest.address, "/metrics").expect("/metrics").1;
    assert!(
        metrics.contains(
            r#"kmon_rest_requests_total{route="/v3/clusters/{cluster_id}/topics/{topic_name}/records",method="POST",status="200"} 3"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("kmon_rest_records_produced_total 104"), "{metrics}");

    // Deleting the topic.
    assert_eq!(curl("DELETE", &rest.url("/v3/clusters/kmon/topics/orders"), None).0, 204);
    assert_eq!(curl("GET", &rest.url("/v3/clusters/kmon/topics/orders"), None).0, 404);
}

/// The Python side: the v2 consumer flow with `requests`.
const CONSUMER_SCRIPT: &str = r#"
import json, sys, time, requests
base, group = sys.argv[1], sys.argv[2]
h = {"Content-Type": "application/vnd.kafka.v2+json"}
r = requests.post(f"{base}/consumers/{group}", headers=h, json={"name": "c1", "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": "false"})
assert r.status_code == 200, r.text
uri = r.json()["base_uri"]
dup = requests.post(f"{base}/consumers/{group}", headers=h, json={"name": "c1"})
assert dup.status_code == 409, dup.text
bad = requests.post(f"{base}/consumers/{group}", headers=h, data="{oops")
assert bad.status_code == 400 and "invalid JSON" in bad.json()["message"], bad.text
r = requests.post(f"{uri}/subscription", headers=h, json={"topics": ["events"]})
assert r.status_code == 204, r.text
got, deadline = [], time.time() + 30
while len(got) < 20 and time.time() < deadline:
    r = requests.get(f"{uri}/records", params={"timeout": 1000})
    assert r.status_code == 200, r.text
    got += r.json()
assert [g["value"]["n"] for g in got] == list(range(20)), got
last = got[-1]
r = requests.post(f"{uri}/offsets", headers=h, json={"offsets": [{"topic": "events", "partition": last["partition"], "offset": last["offset"]}]})
assert r.status_code == 204, r.text
r = requests.delete(uri)
assert r.status_code == 204, r.text
r = requests.get(f"{uri}/records")
assert r.status_code == 404 and r.json()["error_code"] == 404, r.text
print(json.dumps({"consumed": len(got), "last_offset": last["offset"]}))
"#;

#[test]
fn v2_consumer_instance_over_python_requests() {
    let python = std::env::var("KMON_TEST_PYTHON").expect(
        "KMON_TEST_PYTHON is not set: ./test.sh makes the virtualenv with `requests` (tests/kafka_clients/requirements.txt)",
    );
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let bootstrap = broker.bootstrap();
    kmon_ok(&bootstrap, &["topic", "create", "events", "--partitions", "1"], "");
    let records: String = (0..20).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    kmon_ok(&bootstrap, &["produce", "--topic", "events"], &records);
    let rest = RestProcess::start(&bootstrap, &[]);

    let out = Command::new(&python)
        .args(["-c", CONSUMER_SCRIPT, &rest.url(""), "web"])
        .output()
        .expect("the virtualenv's python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((summary["consumed"].as_u64(), summary["last_offset"].as_i64()), (Some(20), Some(19)));
    // The commit reached the group: its committed offset is the next one.
    let describe = kmon_ok(&bootstrap, &["group", "describe", "web", "--json"], "");
    let group: Value = serde_json::from_str(&describe).unwrap();
    let committed = group.to_string();
    assert!(committed.contains("\"committed_offset\":20"), "{describe}");
}
