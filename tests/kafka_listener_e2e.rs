//! The Kafka listener at the byte level, over a real broker: ApiVersions,
//! Metadata before ApiVersions, and bad input (oversize, unknown API,
//! malformed, wrong CRC) — each answered with Kafka's error or a closed
//! connection with a log line, never a crash, nothing stored lost.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use common::{BrokerProcess, kmon_ok, wait_for};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};

fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect to the Kafka listener");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

fn send_frame(stream: &mut TcpStream, frame: &[u8]) {
    stream.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
    stream.write_all(frame).unwrap();
}

fn request<R: Encodable + HeaderVersion>(key: ApiKey, version: i16, body: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(11)
        .with_client_id(Some(StrBytes::from_static_str("kafka_listener_e2e")))
        .encode(&mut buf, R::header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

/// Reads one response frame; `None` when the broker closed the connection.
fn read_response(stream: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

fn call<Req: Encodable + HeaderVersion, Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    body: &Req,
) -> Resp {
    send_frame(stream, &request(key, version, body));
    let mut bytes = read_response(stream).expect("a response");
    let header = ResponseHeader::decode(&mut bytes, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 11);
    Resp::decode(&mut bytes, version).unwrap()
}

/// The connection is closed by the broker (EOF or reset), within the read timeout.
fn assert_closed(stream: &mut TcpStream, what: &str) {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("{what}: the broker answered {n} byte(s) instead of closing the connection"),
    }
}

fn batch(values: &[&str], crc_ok: bool) -> Bytes {
    let records: Vec<kmon_proto::record_batch::Record> = values
        .iter()
        .map(|v| kmon_proto::record_batch::Record {
            key: None,
            value: Bytes::copy_from_slice(v.as_bytes()),
            timestamp_ms: 1_700_000_000_000,
            headers: vec![],
        })
        .collect();
    // Encoded by kafka-protocol, as a Kafka client would.
    let records = kmon_proto::record_batch::to_kafka_records(&records);
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .unwrap();
    if !crc_ok {
        let last = buf.len() - 1;
        buf[last] ^= 0xff; // a value byte: covered by the CRC
    }
    buf.freeze()
}

fn produce(stream: &mut TcpStream, topic: &str, records: Bytes) -> (i16, i64) {
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))]),
    ]);
    let resp: ProduceResponse = call(stream, ApiKey::Produce, 8, &req);
    let p = &resp.responses[0].partition_responses[0];
    if p.error_code != 0 {
        eprintln!("produce to {topic}: error {}: {:?}", p.error_code, p.error_message);
    }
    (p.error_code, p.base_offset)
}

fn latest(stream: &mut TcpStream, topic: &str) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let req = ListOffsetsRequest::default().with_replica_id(kafka_protocol::messages::BrokerId(-1)).with_topics(vec![
        ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)]),
    ]);
    let resp: ListOffsetsResponse = call(stream, ApiKey::ListOffsets, 5, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[test]
fn api_versions_and_metadata_describe_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--fault-domain", "FD2", "--update-domain", "UD1"]);
    kmon_ok(&broker.grpc, &["topic", "create", "meta", "--partitions", "2"], "");

    // Metadata first, without ApiVersions: served, as Kafka does.
    let mut stream = connect(&broker.kafka);
    let meta: MetadataResponse = call(&mut stream, ApiKey::Metadata, 1, &MetadataRequest::default().with_topics(None));
    assert_eq!(meta.brokers.len(), 1);
    let b = &meta.brokers[0];
    assert_eq!(format!("{}:{}", b.host.as_str(), b.port), broker.kafka, "advertises its Kafka listener");
    assert_eq!(b.rack.as_ref().map(|r| r.as_str()), Some("FD2/UD1"), "rack is FDx/UDy");
    let topic = meta.topics.iter().find(|t| t.name.as_ref().unwrap().as_str() == "meta").expect("topic listed");
    assert_eq!(topic.partitions.len(), 2);
    assert!(topic.partitions.iter().all(|p| p.leader_id.0 == 1 && p.error_code == 0));

    // ApiVersions v3 (flexible): the served APIs, with the versions clients negotiate.
    let versions: ApiVersionsResponse = call(&mut stream, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(versions.error_code, 0);
    let range = |key: ApiKey| {
        versions.api_keys.iter().find(|k| k.api_key == key as i16).map(|k| (k.min_version, k.max_version))
    };
    // From v0 as Kafka 4 lists it (old librdkafka compresses only then); v0-v2 are refused.
    assert_eq!(range(ApiKey::Produce), Some((0, 9)));
    assert_eq!(range(ApiKey::Fetch), Some((4, 12)));
    assert_eq!(range(ApiKey::ApiVersions), Some((0, 3)));
    assert!(range(ApiKey::JoinGroup).is_some());
    // Idempotent producers (transactions are not served).
    assert_eq!(range(ApiKey::InitProducerId), Some((0, 4)));
    // SASL (used where the listener requires it): v1 handshakes only.
    assert_eq!(range(ApiKey::SaslHandshake), Some((1, 1)));
    assert_eq!(range(ApiKey::SaslAuthenticate), Some((0, 2)));
    // What is not served is not advertised.
    assert_eq!(range(ApiKey::AddPartitionsToTxn), None);

    // A newer ApiVersions than served gets Kafka's v0 answer: UNSUPPORTED_VERSION and the list.
    let mut frame = request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    frame[2..4].copy_from_slice(&9i16.to_be_bytes());
    send_frame(&mut stream, &frame);
    let mut bytes = read_response(&mut stream).expect("an answer");
    assert_eq!(bytes.get_i32(), 11, "correlation id");
    let v0 = ApiVersionsResponse::decode(&mut bytes, 0).unwrap();
    assert_eq!(v0.error_code, 35);
    assert!(v0.api_keys.iter().any(|k| k.api_key == ApiKey::Produce as i16));
}

#[test]
fn bad_frames_close_the_connection_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    kmon_ok(&broker.grpc, &["topic", "create", "bad", "--partitions", "1"], "");
    let mut good = connect(&broker.kafka);
    assert_eq!(produce(&mut good, "bad", batch(&["kept-1", "kept-2"], true)), (0, 0));

    // Wrong CRC: CORRUPT_MESSAGE for that partition, nothing written.
    assert_eq!(produce(&mut good, "bad", batch(&["torn"], false)).0, 2);
    assert_eq!(latest(&mut good, "bad"), 2);

    // A frame larger than socket.request.max.bytes (100 MiB): closed before its body is read.
    let mut oversize = connect(&broker.kafka);
    oversize.write_all(&(200i32 << 20).to_be_bytes()).unwrap();
    assert_closed(&mut oversize, "oversize frame");

    // A negative size.
    let mut negative = connect(&broker.kafka);
    negative.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert_closed(&mut negative, "negative frame size");

    // An unknown API key.
    let mut unknown = connect(&broker.kafka);
    let mut frame = request(ApiKey::Metadata, 1, &MetadataRequest::default());
    frame[0..2].copy_from_slice(&4242i16.to_be_bytes());
    send_frame(&mut unknown, &frame);
    assert_closed(&mut unknown, "unknown API key");

    // An unserved version of a served API (Metadata v13 uses topic ids only).
    let mut version = connect(&broker.kafka);
    send_frame(&mut version, &request(ApiKey::Metadata, 13, &MetadataRequest::default()));
    assert_closed(&mut version, "unserved version");

    // Produce v2 (message format 1): listed from v0 for old librdkafka's sake, never served.
    let mut old_format = connect(&broker.kafka);
    let mut frame = request(ApiKey::Produce, 3, &ProduceRequest::default().with_acks(1));
    frame[2..4].copy_from_slice(&2i16.to_be_bytes());
    send_frame(&mut old_format, &frame);
    assert_closed(&mut old_format, "produce v2");

    // A malformed body: a Produce whose topic array claims 2^31-1 topics.
    let mut malformed = connect(&broker.kafka);
    let mut frame = request(ApiKey::Produce, 7, &ProduceRequest::default().with_acks(1));
    let array_at = frame.len() - 4;
    frame[array_at..].copy_from_slice(&i32::MAX.to_be_bytes());
    send_frame(&mut malformed, &frame);
    assert_closed(&mut malformed, "malformed produce");

    // Still serving, and every stored record is there.
    assert_eq!(latest(&mut good, "bad"), 2);
    assert_eq!(produce(&mut good, "bad", batch(&["after"], true)), (0, 2));
    let out = kmon_ok(&broker.grpc, &["consume", "--topic", "bad", "--from-beginning"], "");
    let values: Vec<&str> = out.lines().collect();
    assert_eq!(values, ["kept-1", "kept-2", "after"], "{out}");

    // Each closed connection was logged with its reason.
    let log = wait_for("the broker to log the closed connections", Duration::from_secs(10), || {
        let log = broker.stderr();
        (log.matches("kafka listener: closing connection").count() >= 6).then_some(log)
    });
    for reason in [
        "exceeds socket_request_max_bytes",
        "unknown or unserved API key 4242",
        "Metadata version 13 is not served",
        "malformed Produce v7",
    ] {
        assert!(log.contains(reason), "no log line with '{reason}':\n{log}");
    }
}

#[test]
fn connections_are_counted_per_listener() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let count = || {
        let (_, body) = common::http_get(&broker.metrics, "/metrics").expect("metrics");
        body.lines()
            .find(|l| l.starts_with("kafka_server_socket_server_metrics_connection_count{listener=\"PLAINTEXT\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    let mut streams: Vec<TcpStream> = (0..3).map(|_| connect(&broker.kafka)).collect();
    for s in &mut streams {
        let _: ApiVersionsResponse = call(s, ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
    }
    wait_for("3 open connections counted", Duration::from_secs(10), || (count() == Some(3.0)).then_some(()));
    streams.truncate(1);
    wait_for("closed connections uncounted", Duration::from_secs(10), || (count() == Some(1.0)).then_some(()));
    let (_, body) = common::http_get(&broker.metrics, "/metrics").unwrap();
    assert!(
        body.lines().any(|l| l.starts_with("kafka_network_requestmetrics_requests_total{request=\"ApiVersions\"}")),
        "Kafka requests counted under Kafka's API name"
    );
}

#[test]
fn a_kmon_member_and_a_librdkafka_member_share_one_group() {
    use std::process::{Command, Stdio};
    assert!(
        Command::new("kcat").arg("-V").output().is_ok_and(|o| o.status.success()),
        "kcat is missing: ./test.sh installs Debian's kcat package"
    );
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    kmon_ok(&broker.grpc, &["topic", "create", "mix", "--partitions", "4"], "");
    let _kmon_member = common::KillOnDrop(
        Command::new(common::KMON)
            .args(["consume", "--topic", "mix", "--group", "mixed", "--from-beginning"])
            .env("KMON_BOOTSTRAP", &broker.grpc)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The group exists once the member has joined: until then describe fails.
    let describe = || {
        let out = common::kmon(&broker.grpc, &["group", "describe", "mixed"], "");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for("the kmon member to own all 4 partitions", Duration::from_secs(30), || {
        let out = describe();
        // Four partition owners and the member line.
        (out.matches("kmon-consume-").count() >= 5).then_some(())
    });
    let _kafka_member = common::KillOnDrop(
        Command::new("kcat")
            .args(["-b", &broker.kafka, "-G", "mixed", "mix", "-q", "-f", "%s\n"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // One group, one coordinator: librdkafka's member joins the kmon
    // member's group (Kafka's ConsumerProtocol on both sides) and the range
    // assignor gives each member two partitions.
    let described = wait_for("both members to own two partitions each", Duration::from_secs(40), || {
        let out = describe();
        let owners: Vec<&str> =
            out.lines().filter(|l| l.starts_with("mix ")).filter_map(|l| l.split_whitespace().last()).collect();
        let kmon = owners.iter().filter(|o| o.starts_with("kmon-consume-")).count();
        let rdkafka = owners.iter().filter(|o| o.starts_with("rdkafka-")).count();
        (kmon == 2 && rdkafka == 2).then_some(out)
    });
    assert!(described.contains("State: Stable"), "{described}");
}
