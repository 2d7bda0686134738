//! The crate's error type, and the one place where broker errors become
//! Kafka error codes (those clients know, retry on, and show by name).

use kafka_protocol::ResponseError;
use kmon_broker::BrokerError;
use kmon_proto::v1::ErrorCode;

use crate::frame::FrameError;

/// What ends a connection: a frame that cannot be served, or the socket.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("request frame of {size} bytes exceeds socket_request_max_bytes = {max}")]
    FrameTooLarge { size: i64, max: u32 },
    #[error("cannot encode the {api} v{version} response: {reason}")]
    Encode { api: &'static str, version: i16, reason: String },
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("{api} request before SASL authentication on a listener that requires it")]
    SaslRequired { api: &'static str },
}

/// The Kafka error code of a broker error: kmon's stable error names map
/// one to one onto Kafka's, so clients retry exactly what Kafka's would
/// (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR, OFFSET_NOT_AVAILABLE ...).
pub fn error_code(err: &BrokerError) -> i16 {
    kafka_error(err.error_code()).code()
}

pub fn kafka_error(code: ErrorCode) -> ResponseError {
    use ResponseError as K;
    match code {
        ErrorCode::Unspecified => K::UnknownServerError,
        ErrorCode::UnknownTopicOrPartition => K::UnknownTopicOrPartition,
        ErrorCode::TopicAlreadyExists => K::TopicAlreadyExists,
        ErrorCode::InvalidTopicName => K::InvalidTopicException,
        ErrorCode::InvalidConfig => K::InvalidConfig,
        ErrorCode::InvalidPartitions => K::InvalidPartitions,
        ErrorCode::InvalidReplicationFactor => K::InvalidReplicationFactor,
        ErrorCode::MessageTooLarge => K::MessageTooLarge,
        ErrorCode::CorruptMessage => K::CorruptMessage,
        ErrorCode::OffsetOutOfRange => K::OffsetOutOfRange,
        ErrorCode::InvalidRequest | ErrorCode::InvalidKafkaScaleDownRequest => K::InvalidRequest,
        ErrorCode::NotLeaderOrFollower => K::NotLeaderOrFollower,
        ErrorCode::NotEnoughReplicas => K::NotEnoughReplicas,
        ErrorCode::StorageError => K::KafkaStorageError,
        ErrorCode::RequestTimedOut => K::RequestTimedOut,
        ErrorCode::NotEnoughReplicasAfterAppend => K::NotEnoughReplicasAfterAppend,
        ErrorCode::FencedLeaderEpoch => K::FencedLeaderEpoch,
        ErrorCode::NotController => K::NotController,
        ErrorCode::NotCoordinator => K::NotCoordinator,
        ErrorCode::CoordinatorNotAvailable => K::CoordinatorNotAvailable,
        ErrorCode::CoordinatorLoadInProgress => K::CoordinatorLoadInProgress,
        ErrorCode::RebalanceInProgress => K::RebalanceInProgress,
        ErrorCode::UnknownMemberId => K::UnknownMemberId,
        ErrorCode::IllegalGeneration => K::IllegalGeneration,
        ErrorCode::FencedInstanceId => K::FencedInstanceId,
        ErrorCode::GroupIdNotFound => K::GroupIdNotFound,
        ErrorCode::NonEmptyGroup => K::NonEmptyGroup,
        ErrorCode::InconsistentGroupProtocol => K::InconsistentGroupProtocol,
        ErrorCode::InvalidSessionTimeout => K::InvalidSessionTimeout,
        ErrorCode::InvalidGroupId => K::InvalidGroupId,
        ErrorCode::OffsetNotAvailable => K::OffsetNotAvailable,
        ErrorCode::BrokerNotAvailable => K::BrokerNotAvailable,
        ErrorCode::UnknownServerError => K::UnknownServerError,
        ErrorCode::OutOfOrderSequenceNumber => K::OutOfOrderSequenceNumber,
        ErrorCode::InvalidProducerEpoch => K::InvalidProducerEpoch,
        ErrorCode::TopicAuthorizationFailed => K::TopicAuthorizationFailed,
        ErrorCode::GroupAuthorizationFailed => K::GroupAuthorizationFailed,
        ErrorCode::ClusterAuthorizationFailed => K::ClusterAuthorizationFailed,
        ErrorCode::SaslAuthenticationFailed => K::SaslAuthenticationFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_clients_retry_on_maps_to_retriable_kafka_codes() {
        for code in [
            ErrorCode::NotLeaderOrFollower,
            ErrorCode::NotCoordinator,
            ErrorCode::CoordinatorNotAvailable,
            ErrorCode::CoordinatorLoadInProgress,
            ErrorCode::OffsetNotAvailable,
            ErrorCode::NotEnoughReplicas,
            ErrorCode::RequestTimedOut,
        ] {
            assert!(kafka_error(code).is_retriable(), "{code:?} → {:?}", kafka_error(code));
        }
        let not_leader = BrokerError::NotLeader { topic: "t".into(), partition: 0, leader: None };
        assert_eq!(error_code(&not_leader), 6);
        assert_eq!(kafka_error(ErrorCode::NotCoordinator).code(), 16);
        assert_eq!(kafka_error(ErrorCode::OffsetOutOfRange).code(), 1);
    }
}
