//! The consumer protocol carried inside the group protocol (pure): a
//! member's `ConsumerProtocolSubscription` in `JoinGroup` (one per
//! assignor it offers) and its `ConsumerProtocolAssignment` in
//! `SyncGroup`, both protobuf-encoded (Kafka's `ConsumerProtocol`, as
//! protobuf instead of Kafka's own schema).

use bytes::Bytes;
use kmon_proto::v1 as pb;
use prost::Message;

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

pub(crate) fn encode_subscription(subscription: &Subscription) -> Bytes {
    pb::ConsumerProtocolSubscription {
        topics: subscription.topics.clone(),
        owned_partitions: subscription.owned_partitions.iter().map(Into::into).collect(),
        generation_id: subscription.generation,
    }
    .encode_to_vec()
    .into()
}

pub(crate) fn decode_subscription(bytes: &[u8]) -> Result<Subscription, ClientError> {
    let decoded = pb::ConsumerProtocolSubscription::decode(bytes)
        .map_err(|err| ClientError::InvalidArgument(format!("undecodable member subscription: {err}")))?;
    Ok(Subscription {
        topics: decoded.topics,
        owned_partitions: decoded.owned_partitions.into_iter().map(Into::into).collect(),
        generation: decoded.generation_id,
    })
}

pub(crate) fn encode_assignment(partitions: &[TopicPartition]) -> Bytes {
    pb::ConsumerProtocolAssignment { partitions: partitions.iter().map(Into::into).collect() }.encode_to_vec().into()
}

/// An empty answer (a member the leader gave nothing) decodes as no
/// partitions.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Result<Vec<TopicPartition>, ClientError> {
    let decoded = pb::ConsumerProtocolAssignment::decode(bytes)
        .map_err(|err| ClientError::InvalidArgument(format!("undecodable assignment from the coordinator: {err}")))?;
    Ok(decoded.partitions.into_iter().map(Into::into).collect())
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
        assert_eq!(decode_subscription(&[]).unwrap(), Subscription::default());
    }

    #[test]
    fn assignment_round_trips() {
        let partitions = vec![TopicPartition::new("t", 0), TopicPartition::new("t", 5)];
        assert_eq!(decode_assignment(&encode_assignment(&partitions)).unwrap(), partitions);
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&[0xff, 0xff, 0xff]).is_err());
    }
}
