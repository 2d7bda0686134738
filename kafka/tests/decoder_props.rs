//! Property test: the request decoder turns any bytes into a request or an
//! error, never a panic or an unbounded allocation; random bytes, and valid
//! frames of every served API with bytes flipped, cut or inserted.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kmon_kafka::frame::decode_request;
use kmon_kafka::versions::SERVED;
use proptest::prelude::*;

/// A valid frame (without its size prefix) of each served API and version,
/// with an empty default body.
fn valid_frames() -> Vec<Bytes> {
    let mut frames = Vec::new();
    for api in SERVED {
        for version in api.min..=api.max {
            let mut buf = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(api.key as i16)
                .with_request_api_version(version)
                .with_correlation_id(7)
                .with_client_id(Some(StrBytes::from_static_str("prop")))
                .encode(&mut buf, api.key.request_header_version(version))
                .unwrap();
            default_body(api.key).encode(&mut buf, version).unwrap();
            frames.push(buf.freeze());
        }
    }
    frames
}

fn default_body(key: ApiKey) -> RequestKind {
    use RequestKind as R;
    match key {
        ApiKey::Produce => R::Produce(Default::default()),
        ApiKey::Fetch => R::Fetch(Default::default()),
        ApiKey::ListOffsets => R::ListOffsets(Default::default()),
        ApiKey::Metadata => R::Metadata(Default::default()),
        ApiKey::OffsetCommit => R::OffsetCommit(Default::default()),
        ApiKey::OffsetFetch => R::OffsetFetch(Default::default()),
        ApiKey::FindCoordinator => R::FindCoordinator(Default::default()),
        ApiKey::JoinGroup => R::JoinGroup(Default::default()),
        ApiKey::Heartbeat => R::Heartbeat(Default::default()),
        ApiKey::LeaveGroup => R::LeaveGroup(Default::default()),
        ApiKey::SyncGroup => R::SyncGroup(Default::default()),
        ApiKey::DescribeGroups => R::DescribeGroups(Default::default()),
        ApiKey::ListGroups => R::ListGroups(Default::default()),
        ApiKey::ApiVersions => R::ApiVersions(Default::default()),
        ApiKey::CreateTopics => R::CreateTopics(Default::default()),
        ApiKey::DeleteTopics => R::DeleteTopics(Default::default()),
        ApiKey::InitProducerId => R::InitProducerId(Default::default()),
        ApiKey::OffsetForLeaderEpoch => R::OffsetForLeaderEpoch(Default::default()),
        ApiKey::DescribeConfigs => R::DescribeConfigs(Default::default()),
        ApiKey::DeleteGroups => R::DeleteGroups(Default::default()),
        ApiKey::DescribeCluster => R::DescribeCluster(Default::default()),
        ApiKey::SaslHandshake => R::SaslHandshake(Default::default()),
        ApiKey::SaslAuthenticate => R::SaslAuthenticate(Default::default()),
        other => panic!("served API {other:?} needs a default body here"),
    }
}

#[test]
fn every_valid_frame_decodes() {
    let frames = valid_frames();
    assert!(frames.len() > 50, "only {} frames built", frames.len());
    for frame in frames {
        let decoded = decode_request(frame.clone());
        assert!(decoded.is_ok(), "{:?}: {:?}", &frame[..8.min(frame.len())], decoded.err());
    }
}

#[test]
fn a_huge_array_length_is_an_error_not_an_abort() {
    // Metadata v1: header, then the topics array length: claim 2^31 - 1
    // topics in a 20-byte frame. Unpatched kafka-protocol sized a Vec for
    // them before reading any and aborted on the allocation.
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(1)
        .encode(&mut buf, 1)
        .unwrap();
    buf.extend_from_slice(&i32::MAX.to_be_bytes());
    buf.extend_from_slice(&[0, 1, b'x']);
    assert!(decode_request(buf.freeze()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(Bytes::from(bytes));
    }

    #[test]
    fn random_bytes_after_a_served_header_never_panic(
        api in 0..SERVED.len(),
        version in 0i16..16,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(SERVED[api].key as i16).to_be_bytes());
        buf.extend_from_slice(&version.to_be_bytes());
        buf.extend_from_slice(&1i32.to_be_bytes());
        buf.extend_from_slice(&body);
        let _ = decode_request(buf.freeze());
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        insert in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let frames = valid_frames();
        let mut frame = frames[pick.index(frames.len())].to_vec();
        for (at, byte) in flips {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        let at = cut.index(frame.len() + 1);
        let mut mutated = frame[..at].to_vec();
        mutated.extend_from_slice(&insert);
        mutated.extend_from_slice(&frame[at..]);
        let _ = decode_request(Bytes::from(mutated.clone()));
        let _ = decode_request(Bytes::from(frame[..at].to_vec()));
    }
}
