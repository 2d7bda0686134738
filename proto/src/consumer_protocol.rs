//! Kafka's `ConsumerProtocol` (pure): what a consumer-group member puts in
//! `JoinGroup` (its subscription, one per assignor it offers) and what the
//! leader hands out in `SyncGroup` (each member's assignment). The broker
//! treats both as opaque bytes; they use Kafka's own schema, a big-endian
//! `i16` version followed by the struct at that version, so a librdkafka,
//! Java or kafka-python member and a kmon member can share one group.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopic,
};
use kafka_protocol::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as OwnedTopic,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Versions written: subscription v2 carries owned partitions and the
/// generation (cooperative rebalancing); assignment v0 is read by every client.
const SUBSCRIPTION_VERSION: i16 = 2;
const ASSIGNMENT_VERSION: i16 = 0;
/// Newest versions this codec knows; a newer one appends fields, so its
/// prefix is read at this version.
const NEWEST: i16 = 3;

/// A member's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    pub topics: Vec<String>,
    /// Partitions the member owned before this rebalance (version ≥ 1).
    pub owned_partitions: Vec<(String, u32)>,
    /// The generation those were owned in; -1 when unknown (version ≥ 2).
    pub generation: i32,
}

pub fn encode_subscription(subscription: &Subscription) -> Bytes {
    let message = ConsumerProtocolSubscription::default()
        .with_topics(subscription.topics.iter().map(|t| StrBytes::from_string(t.clone())).collect())
        .with_owned_partitions(
            group_by_topic(&subscription.owned_partitions)
                .into_iter()
                .map(|(topic, partitions)| OwnedTopic::default().with_topic(name(topic)).with_partitions(partitions))
                .collect(),
        )
        .with_generation_id(subscription.generation);
    encode(&message, SUBSCRIPTION_VERSION)
}

/// Empty bytes are an empty subscription.
pub fn decode_subscription(bytes: &[u8]) -> Result<Subscription, String> {
    if bytes.is_empty() {
        return Ok(Subscription { generation: -1, ..Subscription::default() });
    }
    let (version, decoded): (i16, ConsumerProtocolSubscription) = decode(bytes, "subscription")?;
    Ok(Subscription {
        topics: decoded.topics.iter().map(|t| t.as_str().to_string()).collect(),
        owned_partitions: flatten(decoded.owned_partitions.iter().map(|t| (&t.topic, &t.partitions)))?,
        generation: if version >= 2 { decoded.generation_id } else { -1 },
    })
}

pub fn encode_assignment(partitions: &[(String, u32)]) -> Bytes {
    let message = ConsumerProtocolAssignment::default().with_assigned_partitions(
        group_by_topic(partitions)
            .into_iter()
            .map(|(topic, partitions)| AssignedTopic::default().with_topic(name(topic)).with_partitions(partitions))
            .collect(),
    );
    encode(&message, ASSIGNMENT_VERSION)
}

/// Empty bytes (a member the leader gave nothing) are no partitions.
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, u32)>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let (_, decoded): (i16, ConsumerProtocolAssignment) = decode(bytes, "assignment")?;
    flatten(decoded.assigned_partitions.iter().map(|t| (&t.topic, &t.partitions)))
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// (topic, partition) pairs as one entry per topic, in first-seen order.
fn group_by_topic(pairs: &[(String, u32)]) -> Vec<(&str, Vec<i32>)> {
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in pairs {
        match out.iter_mut().find(|(t, _)| t == topic) {
            Some((_, partitions)) => partitions.push(*partition as i32),
            None => out.push((topic, vec![*partition as i32])),
        }
    }
    out
}

fn flatten<'a>(topics: impl Iterator<Item = (&'a TopicName, &'a Vec<i32>)>) -> Result<Vec<(String, u32)>, String> {
    let mut out = Vec::new();
    for (topic, partitions) in topics {
        for &p in partitions {
            let p = u32::try_from(p).map_err(|_| format!("negative partition {p} of topic '{}'", topic.0.as_str()))?;
            out.push((topic.0.as_str().to_string(), p));
        }
    }
    Ok(out)
}

fn encode<M: Encodable>(message: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message.encode(&mut buf, version).expect("a consumer-protocol message encodes");
    buf.freeze()
}

fn decode<M: Decodable>(bytes: &[u8], what: &str) -> Result<(i16, M), String> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return Err(format!("consumer-protocol {what} of {} byte(s) has no version", bytes.len()));
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("consumer-protocol {what} has negative version {version}"));
    }
    let message = M::decode(&mut buf, version.min(NEWEST))
        .map_err(|err| format!("undecodable consumer-protocol {what} (version {version}): {err}"))?;
    Ok((version, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trips() {
        let subscription = Subscription {
            topics: vec!["a".into(), "b".into()],
            owned_partitions: vec![("a".into(), 3), ("b".into(), 0), ("a".into(), 1)],
            generation: 7,
        };
        let decoded = decode_subscription(&encode_subscription(&subscription)).unwrap();
        assert_eq!(decoded.topics, subscription.topics);
        assert_eq!(decoded.generation, 7);
        let mut owned = decoded.owned_partitions;
        owned.sort();
        assert_eq!(owned, vec![("a".into(), 1), ("a".into(), 3), ("b".into(), 0)]);
    }

    #[test]
    fn assignment_is_kafkas_layout() {
        // Version 0, one topic "t" with partitions [0, 5], null user data:
        // the bytes librdkafka and the Java client write.
        let expected: &[u8] =
            &[0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff];
        let encoded = encode_assignment(&[("t".into(), 0), ("t".into(), 5)]);
        assert_eq!(&encoded[..], expected);
        assert_eq!(decode_assignment(expected).unwrap(), vec![("t".into(), 0), ("t".into(), 5)]);
        assert!(decode_assignment(&[]).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_assignment(&[0xff, 0xff, 0xff]).is_err());
        assert!(decode_assignment(&[0]).is_err());
        assert!(decode_subscription(&[0, 1, 0x7f, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn newer_versions_are_read_by_their_known_prefix() {
        let mut bytes = BytesMut::new();
        bytes.put_i16(9);
        ConsumerProtocolAssignment::default()
            .with_assigned_partitions(vec![AssignedTopic::default().with_topic(name("x")).with_partitions(vec![2])])
            .encode(&mut bytes, NEWEST)
            .unwrap();
        bytes.put_slice(b"future fields");
        assert_eq!(decode_assignment(&bytes).unwrap(), vec![("x".into(), 2)]);
    }
}
