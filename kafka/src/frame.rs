//! The pure codec (no I/O): a request frame's bytes (after the 4-byte size)
//! → a typed request, and a typed response → a size-prefixed frame. All
//! parsing is `kafka-protocol`'s; this module only checks what the listener
//! serves before decoding and turns every failure into a [`FrameError`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::KafkaError;
use crate::versions::{self, Served};

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    pub api: &'static Served,
    pub version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// Why a frame could not become a request. Only
/// [`FrameError::UnsupportedVersion`] of ApiVersions gets an answer (Kafka
/// answers it with the versions it serves); the rest close the connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("request frame of {0} bytes is too short for a request header")]
    Truncated(usize),
    #[error("unknown or unserved API key {0}")]
    UnknownApi(i16),
    #[error("{name} version {version} is not served (versions {min}..={max})")]
    UnsupportedVersion { name: &'static str, version: i16, min: i16, max: i16, correlation_id: i32 },
    #[error("malformed {name} v{version} request: {reason}")]
    Malformed { name: &'static str, version: i16, reason: String },
}

/// Decodes one request frame (without its size prefix).
pub fn decode_request(frame: Bytes) -> Result<Request, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::Truncated(frame.len()));
    }
    let mut peek = &frame[..];
    let (key, version, correlation_id) = (peek.get_i16(), peek.get_i16(), peek.get_i32());
    let api = ApiKey::try_from(key).ok().and_then(versions::served).ok_or(FrameError::UnknownApi(key))?;
    if !api.supports(version) {
        return Err(FrameError::UnsupportedVersion {
            name: api.name,
            version,
            min: api.min,
            max: api.max,
            correlation_id,
        });
    }
    let malformed = |reason: String| FrameError::Malformed { name: api.name, version, reason };
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, api.key.request_header_version(version))
        .map_err(|e| malformed(format!("header: {e}")))?;
    let body = RequestKind::decode(api.key, &mut buf, version).map_err(|e| malformed(e.to_string()))?;
    Ok(Request { api, version, header, body })
}

fn api_name(api: ApiKey) -> &'static str {
    versions::served(api).map_or("unserved", |s| s.name)
}

/// Encodes a response as a size-prefixed frame.
pub fn encode_response(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Bytes, KafkaError> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api.response_header_version(version))
        .map_err(|e| KafkaError::Encode { api: api_name(api), version, reason: e.to_string() })?;
    response.encode(&mut buf, version).map_err(|e| KafkaError::Encode {
        api: api_name(api),
        version,
        reason: e.to_string(),
    })?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::StrBytes;

    fn frame(key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_a_flexible_api_versions_request() {
        let body = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("librdkafka"))
            .with_client_software_version(StrBytes::from_static_str("2.0.2"));
        let req = decode_request(frame(ApiKey::ApiVersions, 3, &body)).unwrap();
        assert_eq!(req.api.name, "ApiVersions");
        assert_eq!(req.header.correlation_id, 42);
        assert!(matches!(req.body, RequestKind::ApiVersions(r) if r.client_software_name.as_str() == "librdkafka"));
    }

    #[test]
    fn unserved_version_names_the_range() {
        let err = decode_request(frame(ApiKey::Metadata, 13, &MetadataRequest::default())).unwrap_err();
        assert!(matches!(err, FrameError::UnsupportedVersion { min: 0, max: 12, correlation_id: 42, .. }), "{err:?}");
    }

    #[test]
    fn unknown_key_and_short_frames_are_errors() {
        let mut raw = BytesMut::new();
        raw.put_i16(9999);
        raw.put_i16(0);
        raw.put_i32(1);
        raw.put_i16(-1);
        assert_eq!(decode_request(raw.freeze()).unwrap_err(), FrameError::UnknownApi(9999));
        assert_eq!(decode_request(Bytes::from_static(&[0, 3, 0])).unwrap_err(), FrameError::Truncated(3));
        // DescribeAcls is a real Kafka API that this listener does not serve.
        let acls = frame(ApiKey::DescribeAcls, 1, &kafka_protocol::messages::DescribeAclsRequest::default());
        assert_eq!(decode_request(acls).unwrap_err(), FrameError::UnknownApi(29));
    }

    #[test]
    fn a_truncated_body_is_malformed() {
        let full = frame(ApiKey::Metadata, 1, &MetadataRequest::default().with_topics(Some(vec![])));
        let cut = full.slice(..full.len() - 2);
        assert!(matches!(decode_request(cut), Err(FrameError::Malformed { name: "Metadata", .. })));
    }

    #[test]
    fn response_frames_carry_their_size_and_correlation_id() {
        let response = ResponseKind::ApiVersions(Default::default());
        let bytes = encode_response(ApiKey::ApiVersions, 3, 7, &response).unwrap();
        assert_eq!(i32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize, bytes.len() - 4);
        assert_eq!(i32::from_be_bytes(bytes[4..8].try_into().unwrap()), 7);
    }
}
