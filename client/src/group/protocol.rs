//! The consumer protocol carried inside the group protocol (pure): a
//! member's `ConsumerProtocolSubscription` in `JoinGroup` (one per
//! assignor it offers) and its `ConsumerProtocolAssignment` in
//! `SyncGroup`, in Kafka's own `ConsumerProtocol` schema
//! (`kmon_proto::consumer_protocol`), so Kafka clients can share a group.

use bytes::Bytes;
use kmon_proto::consumer_protocol as wire;

use crate::error::ClientError;
use crate::types::TopicPartition;

/// The protocol type of consumer groups.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";

/// What a member sends in JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Subscription {
    pub(crate) topics: Vec<String>,
    pub(crate) owned_partitions: Vec<TopicPartition>,
    pub(crate) generation: i32,
}

fn pairs(partitions: &[TopicPartition]) -> Vec<(String, u32)> {
    partitions.iter().map(|tp| (tp.topic.clone(), tp.partition)).collect()
}

fn partitions(pairs: Vec<(String, u32)>) -> Vec<TopicPartition> {
    pairs.into_iter().map(|(topic, partition)| TopicPartition { topic, partition }).collect()
}

pub(crate) fn encode_subscription(subscription: &Subscription) -> Bytes {
    wire::encode_subscription(&wire::Subscription {
        topics: subscription.topics.clone(),
        owned_partitions: pairs(&subscription.owned_partitions),
        generation: subscription.generation,
    })
}

pub(crate) fn decode_subscription(bytes: &[u8]) -> Result<Subscription, ClientError> {
    let decoded = wire::decode_subscription(bytes)
        .map_err(|err| ClientError::InvalidArgument(format!("undecodable member subscription: {err}")))?;
    Ok(Subscription {
        topics: decoded.topics,
        owned_partitions: partitions(decoded.owned_partitions),
        generation: decoded.generation,
    })
}

pub(crate) fn encode_assignment(assigned: &[TopicPartition]) -> Bytes {
    wire::encode_assignment(&pairs(assigned))
}

/// An empty answer (a member the leader gave nothing) decodes as no
/// partitions.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Result<Vec<TopicPartition>, ClientError> {
    wire::decode_assignment(bytes)
        .map(partitions)
        .map_err(|err| ClientError::InvalidArgument(format!("undecodable assignment from the coordinator: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trips() {
        let subscription = Subscription {
            topics: vec!["a".into(), "b".into()],
            owned_partitions: vec![TopicPartition::new("a", 3), TopicPartition::new("b", 0)],
            generation: 7,
        };
        assert_eq!(decode_subscription(&encode_subscription(&subscription)).unwrap(), subscription);
        assert_eq!(decode_subscription(&[]).unwrap(), Subscription { generation: -1, ..Subscription::default() });
    }

    #[test]
    fn assignment_round_trips() {
        let partitions = vec![TopicPartition::new("t", 0), TopicPartition::new("t", 5)];
        assert_eq!(decode_assignment(&encode_assignment(&partitions)).unwrap(), partitions);
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&[0xff, 0xff, 0xff]).is_err());
    }
}
