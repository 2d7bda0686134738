//! The Kafka APIs this listener serves and their versions: exactly what
//! ApiVersions advertises. An API missing here is refused, never answered
//! half right. Ranges are those current librdkafka 2.x and kafka-python
//! negotiate, within what the `kafka-protocol` codec knows.

use kafka_protocol::messages::ApiKey;

/// One served API: its key, its name in Kafka's request metrics (the
/// `request` label), the versions served, and whether ApiVersions lists it.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    pub key: ApiKey,
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    /// The lowest version ApiVersions names (`min` but for Produce).
    pub advertised_from: i16,
}

const fn api(key: ApiKey, name: &'static str, min: i16, max: i16) -> Served {
    Served { key, name, min, max, advertised_from: min }
}

pub const SERVED: &[Served] = &[
    // Advertised from v0 as Kafka 4 does (KAFKA-18659): librdkafka before
    // 2.10 otherwise sends gzip, snappy and lz4 batches uncompressed (seen
    // with Debian's 2.0.2). v0–v2 (message formats 0 and 1) are not served:
    // such a request closes the connection.
    Served { key: ApiKey::Produce, name: "Produce", min: 3, max: 9, advertised_from: 0 },
    api(ApiKey::Fetch, "Fetch", 4, 12),
    api(ApiKey::ListOffsets, "ListOffsets", 1, 6),
    api(ApiKey::Metadata, "Metadata", 0, 12),
    api(ApiKey::OffsetCommit, "OffsetCommit", 2, 8),
    api(ApiKey::OffsetFetch, "OffsetFetch", 1, 7),
    api(ApiKey::FindCoordinator, "FindCoordinator", 0, 4),
    api(ApiKey::JoinGroup, "JoinGroup", 0, 7),
    api(ApiKey::Heartbeat, "Heartbeat", 0, 4),
    api(ApiKey::LeaveGroup, "LeaveGroup", 0, 4),
    api(ApiKey::SyncGroup, "SyncGroup", 0, 5),
    api(ApiKey::DescribeGroups, "DescribeGroups", 0, 5),
    api(ApiKey::ListGroups, "ListGroups", 0, 4),
    api(ApiKey::ApiVersions, "ApiVersions", 0, 3),
    api(ApiKey::CreateTopics, "CreateTopics", 2, 7),
    api(ApiKey::DeleteTopics, "DeleteTopics", 1, 6),
    api(ApiKey::InitProducerId, "InitProducerId", 0, 4),
    api(ApiKey::OffsetForLeaderEpoch, "OffsetForLeaderEpoch", 2, 4),
    api(ApiKey::DescribeConfigs, "DescribeConfigs", 1, 4),
    api(ApiKey::DeleteGroups, "DeleteGroups", 0, 2),
    api(ApiKey::DescribeCluster, "DescribeCluster", 0, 1),
    // v0 of SaslHandshake sends raw SASL tokens outside Kafka frames: not
    // served; clients that know SaslAuthenticate use v1.
    api(ApiKey::SaslHandshake, "SaslHandshake", 1, 1),
    api(ApiKey::SaslAuthenticate, "SaslAuthenticate", 0, 2),
];

/// The served entry of an API, if it is served at all.
pub fn served(key: ApiKey) -> Option<&'static Served> {
    SERVED.iter().find(|s| s.key == key)
}

impl Served {
    pub fn supports(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_range_is_within_the_codec() {
        for s in SERVED {
            let codec = s.key.valid_versions();
            assert!(s.min <= s.max, "{}", s.name);
            assert!(codec.min <= s.min && s.max <= codec.max, "{} {}..{} vs codec {codec:?}", s.name, s.min, s.max);
            assert_eq!(format!("{:?}", s.key), s.name, "metric name is Kafka's API name");
        }
    }

    #[test]
    fn each_api_is_listed_once() {
        for (i, s) in SERVED.iter().enumerate() {
            assert!(SERVED[i + 1..].iter().all(|o| o.key != s.key), "{} twice", s.name);
        }
    }
}
