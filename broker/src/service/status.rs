//! The one place where broker errors become gRPC statuses. Each status
//! carries the stable error name in the `kmon-error` metadata key.

use kmon_proto::error_metadata;
use kmon_proto::v1::ErrorCode;
use tonic::{Code, Status};

use crate::controller::state::MetadataError;
use crate::controller::state::acls::ResourceType;
use crate::error::BrokerError;
use crate::group::GroupError;
use crate::log::producer_state::SequenceError;

impl BrokerError {
    pub fn error_code(&self) -> ErrorCode {
        match self {
            BrokerError::UnknownTopic(_) | BrokerError::UnknownPartition { .. } => ErrorCode::UnknownTopicOrPartition,
            BrokerError::TopicAlreadyExists(_) => ErrorCode::TopicAlreadyExists,
            BrokerError::InvalidTopicName { .. } => ErrorCode::InvalidTopicName,
            BrokerError::InvalidConfig { .. } | BrokerError::Config(_) => ErrorCode::InvalidConfig,
            BrokerError::InvalidPartitions(_) => ErrorCode::InvalidPartitions,
            BrokerError::InvalidReplicationFactor { .. } => ErrorCode::InvalidReplicationFactor,
            BrokerError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            BrokerError::CorruptMessage(_) => ErrorCode::CorruptMessage,
            BrokerError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            BrokerError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            BrokerError::Storage { .. } | BrokerError::CorruptLogDir { .. } => ErrorCode::StorageError,
            BrokerError::NotLeader { .. } => ErrorCode::NotLeaderOrFollower,
            BrokerError::OffsetNotAvailable { .. } => ErrorCode::OffsetNotAvailable,
            BrokerError::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
            BrokerError::NotEnoughReplicasAfterAppend { .. } => ErrorCode::NotEnoughReplicasAfterAppend,
            BrokerError::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
            BrokerError::ProducerSequence { refusal, .. } => match refusal {
                SequenceError::OutOfOrder { .. } => ErrorCode::OutOfOrderSequenceNumber,
                SequenceError::InvalidEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            },
            BrokerError::RequestTimedOut { .. } => ErrorCode::RequestTimedOut,
            BrokerError::Controller(_) => ErrorCode::NotController,
            BrokerError::ScaleDownRefused { .. } => ErrorCode::InvalidKafkaScaleDownRequest,
            BrokerError::Unavailable(_) => ErrorCode::BrokerNotAvailable,
            BrokerError::Internal(_) => ErrorCode::UnknownServerError,
            BrokerError::AuthenticationFailed(_) => ErrorCode::SaslAuthenticationFailed,
            BrokerError::AuthorizationFailed { resource_type, .. } => match resource_type {
                ResourceType::Topic => ErrorCode::TopicAuthorizationFailed,
                ResourceType::Group => ErrorCode::GroupAuthorizationFailed,
                ResourceType::Cluster => ErrorCode::ClusterAuthorizationFailed,
            },
            BrokerError::Group(e) => match e {
                GroupError::NotCoordinator => ErrorCode::NotCoordinator,
                GroupError::CoordinatorNotAvailable(_) => ErrorCode::CoordinatorNotAvailable,
                GroupError::CoordinatorLoadInProgress => ErrorCode::CoordinatorLoadInProgress,
                GroupError::RebalanceInProgress => ErrorCode::RebalanceInProgress,
                GroupError::UnknownMemberId(_) => ErrorCode::UnknownMemberId,
                GroupError::IllegalGeneration { .. } => ErrorCode::IllegalGeneration,
                GroupError::FencedInstanceId(_) => ErrorCode::FencedInstanceId,
                GroupError::GroupIdNotFound(_) => ErrorCode::GroupIdNotFound,
                GroupError::NonEmptyGroup { .. } => ErrorCode::NonEmptyGroup,
                GroupError::InconsistentGroupProtocol(_) => ErrorCode::InconsistentGroupProtocol,
                GroupError::InvalidSessionTimeout { .. } => ErrorCode::InvalidSessionTimeout,
                GroupError::InvalidGroupId(_) => ErrorCode::InvalidGroupId,
            },
            BrokerError::Metadata(e) => match e {
                MetadataError::TopicAlreadyExists(_) => ErrorCode::TopicAlreadyExists,
                MetadataError::UnknownTopic(_) | MetadataError::UnknownPartition { .. } => {
                    ErrorCode::UnknownTopicOrPartition
                }
                MetadataError::InvalidReplicationFactor { .. } => ErrorCode::InvalidReplicationFactor,
                MetadataError::InvalidPartitions(_) => ErrorCode::InvalidPartitions,
                _ => ErrorCode::InvalidRequest,
            },
        }
    }

    fn grpc_code(&self) -> Code {
        match self {
            BrokerError::UnknownTopic(_) | BrokerError::UnknownPartition { .. } => Code::NotFound,
            BrokerError::TopicAlreadyExists(_) => Code::AlreadyExists,
            BrokerError::OffsetOutOfRange { .. } => Code::OutOfRange,
            BrokerError::Storage { .. } | BrokerError::CorruptLogDir { .. } | BrokerError::Internal(_) => {
                Code::Internal
            }
            BrokerError::Unavailable(_) => Code::Unavailable,
            BrokerError::NotLeader { .. } | BrokerError::OffsetNotAvailable { .. } | BrokerError::Controller(_) => {
                Code::Unavailable
            }
            BrokerError::NotEnoughReplicas { .. } | BrokerError::NotEnoughReplicasAfterAppend { .. } => {
                Code::Unavailable
            }
            BrokerError::FencedLeaderEpoch { .. }
            | BrokerError::ScaleDownRefused { .. }
            | BrokerError::ProducerSequence { .. } => Code::FailedPrecondition,
            BrokerError::Group(GroupError::GroupIdNotFound(_)) => Code::NotFound,
            BrokerError::Group(
                GroupError::NotCoordinator
                | GroupError::CoordinatorNotAvailable(_)
                | GroupError::CoordinatorLoadInProgress,
            ) => Code::Unavailable,
            BrokerError::Group(
                GroupError::RebalanceInProgress
                | GroupError::UnknownMemberId(_)
                | GroupError::IllegalGeneration { .. }
                | GroupError::FencedInstanceId(_)
                | GroupError::NonEmptyGroup { .. },
            ) => Code::FailedPrecondition,
            BrokerError::RequestTimedOut { .. } => Code::DeadlineExceeded,
            BrokerError::AuthorizationFailed { .. } => Code::PermissionDenied,
            BrokerError::AuthenticationFailed(_) => Code::Unauthenticated,
            BrokerError::Metadata(MetadataError::TopicAlreadyExists(_)) => Code::AlreadyExists,
            BrokerError::Metadata(
                MetadataError::UnknownTopic(_)
                | MetadataError::UnknownPartition { .. }
                | MetadataError::UnknownScramUser(_),
            ) => Code::NotFound,
            _ => Code::InvalidArgument,
        }
    }
}

impl From<BrokerError> for Status {
    fn from(err: BrokerError) -> Status {
        let message = match &err {
            BrokerError::Storage { source, .. } => format!("{err}: {source}"),
            _ => err.to_string(),
        };
        let mut status = Status::new(err.grpc_code(), message);
        let meta = status.metadata_mut();
        let name = err.error_code().as_str_name();
        meta.insert(error_metadata::ERROR_CODE, name.parse().expect("ascii error name"));
        if let BrokerError::OffsetOutOfRange { log_start, log_end, .. } = &err {
            meta.insert(error_metadata::LOG_START_OFFSET, log_start.to_string().parse().expect("digits"));
            meta.insert(error_metadata::LOG_END_OFFSET, log_end.to_string().parse().expect("digits"));
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_status_names_the_valid_range() {
        let status = Status::from(BrokerError::OffsetOutOfRange {
            topic: "t".into(),
            partition: 0,
            offset: 99,
            log_start: 5,
            log_end: 10,
        });
        assert_eq!(status.code(), Code::OutOfRange);
        assert!(status.message().contains("5..10"), "{}", status.message());
        assert_eq!(status.metadata().get(error_metadata::ERROR_CODE).unwrap(), "OFFSET_OUT_OF_RANGE");
        assert_eq!(status.metadata().get(error_metadata::LOG_END_OFFSET).unwrap(), "10");
    }

    #[test]
    fn offset_not_available_is_retriable_and_names_both_offsets() {
        let status = Status::from(BrokerError::OffsetNotAvailable {
            topic: "t".into(),
            partition: 3,
            high_watermark: 5,
            epoch_start_offset: 20,
        });
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.metadata().get(error_metadata::ERROR_CODE).unwrap(), "OFFSET_NOT_AVAILABLE");
        assert!(status.message().contains("t-3") && status.message().contains("(5)"), "{}", status.message());
        assert!(status.message().contains("(20)"), "{}", status.message());
    }

    #[test]
    fn authorization_failures_are_permission_denied_with_kafkas_names() {
        use crate::controller::state::acls::AclOperation;
        for (resource_type, name) in [
            (ResourceType::Topic, "TOPIC_AUTHORIZATION_FAILED"),
            (ResourceType::Group, "GROUP_AUTHORIZATION_FAILED"),
            (ResourceType::Cluster, "CLUSTER_AUTHORIZATION_FAILED"),
        ] {
            let status = Status::from(BrokerError::AuthorizationFailed {
                principal: "User:alice".into(),
                operation: AclOperation::Write,
                resource_type,
                resource_name: "orders".into(),
            });
            assert_eq!(status.code(), Code::PermissionDenied);
            assert_eq!(status.metadata().get(error_metadata::ERROR_CODE).unwrap(), name);
            let expected = format!("User:alice is not authorized to Write {resource_type} 'orders'");
            assert!(status.message().contains(&expected), "{}", status.message());
        }
    }

    #[test]
    fn scale_down_status_has_the_stable_name_and_the_services_code() {
        let status = Status::from(BrokerError::ScaleDownRefused { broker_id: 2 });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.metadata().get(error_metadata::ERROR_CODE).unwrap(), "INVALID_KAFKA_SCALE_DOWN_REQUEST");
        assert!(status.message().contains("InvalidKafkaScaleDownRequestErrorCode"), "{}", status.message());
        assert!(status.message().contains("removing broker 2"), "{}", status.message());
    }

    #[test]
    fn unavailable_and_internal_carry_stable_names() {
        let status = Status::from(BrokerError::Unavailable("the broker is shutting down".into()));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.metadata().get(error_metadata::ERROR_CODE).unwrap(), "BROKER_NOT_AVAILABLE");
        let status = Status::from(BrokerError::Internal("the planner failed: panicked".into()));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.metadata().get(error_metadata::ERROR_CODE).unwrap(), "UNKNOWN_SERVER_ERROR");
        assert!(status.message().contains("the planner failed"), "{}", status.message());
    }
}
