//! The crate's one error type, the one place where a gRPC status becomes a
//! [`ClientError`], and which errors are worth another try.

use std::sync::Arc;
use std::time::Duration;

use kmon_proto::error_metadata;
pub use kmon_proto::v1::ErrorCode;

/// Everything that can go wrong in a kmon client call.
///
/// Cheap to clone (a failed produce batch hands the same error to every
/// record of the batch).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// TLS files missing, unreadable or not matching.
    #[error("TLS: {0}")]
    Tls(String),

    /// The bootstrap address does not parse as a URI.
    #[error("invalid broker address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },

    /// No connection could be made to the broker.
    #[error("cannot connect to broker at {address}")]
    Connect {
        address: String,
        #[source]
        source: Arc<tonic::transport::Error>,
    },

    /// The broker answered with an error status. Display is the server's
    /// message.
    #[error("{}", .0.message)]
    Server(ServerError),

    /// A record batch failed to decode (bad CRC, truncated, unsupported).
    #[error("corrupt record batch: {0}")]
    CorruptBatch(#[from] kmon_proto::record_batch::BatchFault),

    /// The request was not answered in time.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),

    /// A caller-side mistake (bad argument, unknown partition, ...).
    #[error("{0}")]
    InvalidArgument(String),

    /// A produce batch was not sent because an earlier batch of the same
    /// partition failed (sending it would have reordered the partition).
    #[error("not sent: an earlier batch of {topic}-{partition} failed: {cause}")]
    EarlierBatchFailed { topic: String, partition: u32, cause: Box<ClientError> },

    /// No leader is known for the partition (offline, an election in
    /// progress, or the metadata has not caught up yet).
    #[error("no leader is available for {topic}-{partition}")]
    LeaderNotAvailable { topic: String, partition: u32 },

    /// The producer was dropped before the record was acknowledged.
    #[error("the producer was closed before the record was acknowledged")]
    ProducerClosed,
}

/// An error status from the broker, with the stable error name decoded.
#[derive(Debug, Clone)]
pub struct ServerError {
    /// From the `kmon-error` metadata; `None` when the status carried no
    /// (or an unknown) error name, e.g. a transport failure.
    pub code: Option<ErrorCode>,
    /// The gRPC status code.
    pub status: tonic::Code,
    /// The server's message.
    pub message: String,
    /// On OFFSET_OUT_OF_RANGE: the first valid offset.
    pub log_start_offset: Option<i64>,
    /// On OFFSET_OUT_OF_RANGE: the log end offset.
    pub log_end_offset: Option<i64>,
    /// On NOT_LEADER_OR_FOLLOWER: the current leader's address.
    pub leader: Option<String>,
}

impl ClientError {
    /// The stable error name the broker sent, if this is a broker error
    /// (also through [`ClientError::EarlierBatchFailed`]).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server(server) => server.code,
            ClientError::EarlierBatchFailed { cause, .. } => cause.code(),
            _ => None,
        }
    }

    /// Whether trying again (after a metadata refresh) may succeed: leader
    /// changes, unavailable brokers, timeouts.
    ///
    /// | failure                                   | retried | refresh metadata |
    /// |-------------------------------------------|---------|------------------|
    /// | NOT_LEADER_OR_FOLLOWER                    | yes     | yes              |
    /// | UNKNOWN_TOPIC_OR_PARTITION (just created) | yes     | yes              |
    /// | NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT    | yes     | yes              |
    /// | STORAGE_ERROR (the leader moves away)     | yes     | yes              |
    /// | BROKER_NOT_AVAILABLE (shutting down)      | yes     | yes, another broker |
    /// | no connection, transport failure          | yes     | yes              |
    /// | client-side request timeout               | yes     | yes              |
    /// | no leader known for the partition         | yes     | yes              |
    /// | anything else (CORRUPT_MESSAGE, INVALID_*, MESSAGE_TOO_LARGE, OFFSET_OUT_OF_RANGE, ...) | no | - |
    ///
    /// A status without a `kmon-error` name did not come from kmon's request
    /// handling (every kmon error carries one): it is the transport's, e.g.
    /// a broker that died mid-request.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Server(server) => match server.code {
                Some(code) => matches!(
                    code,
                    ErrorCode::NotLeaderOrFollower
                        | ErrorCode::UnknownTopicOrPartition
                        | ErrorCode::NotEnoughReplicas
                        // Written to the leader, not yet to enough replicas:
                        // Kafka retries it too (an idempotent producer's
                        // retry is answered from the first write).
                        | ErrorCode::NotEnoughReplicasAfterAppend
                        | ErrorCode::OffsetNotAvailable
                        | ErrorCode::RequestTimedOut
                        | ErrorCode::StorageError
                        | ErrorCode::BrokerNotAvailable
                        // An idempotent producer's batch that overtook an
                        // earlier one of its partition: the earlier one
                        // lands first, this one on a retry.
                        | ErrorCode::OutOfOrderSequenceNumber
                ),
                None => is_transport_status(server.status),
            },
            ClientError::Connect { .. } | ClientError::Timeout(_) => true,
            ClientError::LeaderNotAvailable { .. } => true,
            ClientError::InvalidAddress { .. }
            | ClientError::CorruptBatch(_)
            | ClientError::InvalidArgument(_)
            | ClientError::Tls(_)
            | ClientError::EarlierBatchFailed { .. }
            | ClientError::ProducerClosed => false,
        }
    }

    /// Whether the connection to the broker is suspect (drop it from the
    /// pool and try another broker for requests any broker can answer).
    pub(crate) fn is_transport(&self) -> bool {
        match self {
            ClientError::Connect { .. } | ClientError::Timeout(_) => true,
            ClientError::Server(server) => match server.code {
                // A broker on its way down: ask another.
                Some(code) => code == ErrorCode::BrokerNotAvailable,
                None => is_transport_status(server.status),
            },
            _ => false,
        }
    }
}

/// The gRPC codes of a failed transport (a status with no `kmon-error`
/// name and one of these did not come from kmon's request handling).
fn is_transport_status(status: tonic::Code) -> bool {
    matches!(
        status,
        tonic::Code::Unavailable
            | tonic::Code::Cancelled
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
            | tonic::Code::Unknown
            | tonic::Code::Internal
    )
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        let metadata = status.metadata();
        let text = |key: &str| metadata.get(key).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let number = |key: &str| text(key).and_then(|value| value.parse().ok());
        let code = text(error_metadata::ERROR_CODE)
            .and_then(|name| ErrorCode::from_str_name(&name))
            .filter(|code| *code != ErrorCode::Unspecified);
        let mut message = status.message().to_owned();
        if message.is_empty() {
            message = format!("broker returned {:?}", status.code());
        }
        ClientError::Server(ServerError {
            code,
            status: status.code(),
            message,
            log_start_offset: number(error_metadata::LOG_START_OFFSET),
            log_end_offset: number(error_metadata::LOG_END_OFFSET),
            leader: text(error_metadata::LEADER_ADDRESS),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A broker error with this code (if any) and gRPC status.
    pub(crate) fn server(code: Option<ErrorCode>, status: tonic::Code) -> ClientError {
        ClientError::Server(ServerError {
            code,
            status,
            message: "m".into(),
            log_start_offset: None,
            log_end_offset: None,
            leader: None,
        })
    }

    #[test]
    fn status_metadata_gives_the_code_and_message_is_kept() {
        let mut status = tonic::Status::out_of_range("offset 99 is out of range [0, 10)");
        status.metadata_mut().insert(error_metadata::ERROR_CODE, "OFFSET_OUT_OF_RANGE".parse().unwrap());
        status.metadata_mut().insert(error_metadata::LOG_END_OFFSET, "10".parse().unwrap());
        let err = ClientError::from(status);
        assert_eq!(err.code(), Some(ErrorCode::OffsetOutOfRange));
        assert_eq!(err.to_string(), "offset 99 is out of range [0, 10)");
        let ClientError::Server(server) = err else { panic!() };
        assert_eq!(server.log_end_offset, Some(10));
        assert_eq!(server.log_start_offset, None);
    }

    #[test]
    fn status_without_metadata_has_no_code() {
        let err = ClientError::from(tonic::Status::unavailable("connection refused"));
        assert_eq!(err.code(), None);
        assert_eq!(err.to_string(), "connection refused");
    }

    #[tokio::test]
    async fn leader_and_availability_errors_are_retried() {
        for code in [
            ErrorCode::NotLeaderOrFollower,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::NotEnoughReplicas,
            ErrorCode::RequestTimedOut,
            ErrorCode::StorageError,
            ErrorCode::OffsetNotAvailable,
        ] {
            assert!(server(Some(code), tonic::Code::Unavailable).is_retriable(), "{code:?}");
            assert!(!server(Some(code), tonic::Code::Unavailable).is_transport());
        }
        assert!(server(None, tonic::Code::Unavailable).is_retriable());
        assert!(server(None, tonic::Code::Unavailable).is_transport());
        let shutting_down = server(Some(ErrorCode::BrokerNotAvailable), tonic::Code::Unavailable);
        assert!(shutting_down.is_retriable() && shutting_down.is_transport());
        assert!(!server(Some(ErrorCode::UnknownServerError), tonic::Code::Internal).is_retriable());
        assert!(ClientError::Timeout(Duration::from_secs(1)).is_retriable());
        // Nothing listens on port 1: a real connect error.
        let connect = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect().await.unwrap_err();
        assert!((ClientError::Connect { address: "127.0.0.1:1".into(), source: Arc::new(connect) }).is_retriable());
        assert!((ClientError::LeaderNotAvailable { topic: "t".into(), partition: 0 }).is_retriable());
    }

    #[test]
    fn data_and_request_errors_are_not_retried() {
        for code in [
            ErrorCode::CorruptMessage,
            ErrorCode::MessageTooLarge,
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidConfig,
            ErrorCode::InvalidTopicName,
            ErrorCode::OffsetOutOfRange,
            ErrorCode::TopicAlreadyExists,
        ] {
            assert!(!server(Some(code), tonic::Code::InvalidArgument).is_retriable(), "{code:?}");
        }
        assert!(!server(None, tonic::Code::InvalidArgument).is_retriable());
        assert!(!server(None, tonic::Code::ResourceExhausted).is_retriable());
        assert!(!ClientError::CorruptBatch(kmon_proto::record_batch::BatchFault::BadMagic(1)).is_retriable());
        assert!(!ClientError::InvalidArgument("x".into()).is_retriable());
    }
}
