//! Which failures are worth another try, and how long to wait between
//! tries (pure, no I/O).
//!
//! | failure                                   | retried | refresh metadata |
//! |-------------------------------------------|---------|------------------|
//! | NOT_LEADER_OR_FOLLOWER                    | yes     | yes              |
//! | UNKNOWN_TOPIC_OR_PARTITION (just created) | yes     | yes              |
//! | NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT    | yes     | yes              |
//! | STORAGE_ERROR (the leader moves away)     | yes     | yes              |
//! | no connection, transport failure          | yes     | yes              |
//! | client-side request timeout               | yes     | yes              |
//! | no leader known for the partition         | yes     | yes              |
//! | anything else (CORRUPT_MESSAGE, INVALID_*, MESSAGE_TOO_LARGE, OFFSET_OUT_OF_RANGE, ...) | no | - |
//!
//! A status without a `kmon-error` name did not come from kmon's request
//! handling (every kmon error carries one): it is the transport's, e.g.
//! a broker that died mid-request.

use std::time::Duration;

use crate::error::{ClientError, ErrorCode};

/// First wait after a retriable failure.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between two tries.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Whether the operation may succeed if tried again (after a metadata
/// refresh); see the module docs.
pub(crate) fn is_retriable(err: &ClientError) -> bool {
    match err {
        ClientError::Server(server) => match server.code {
            Some(code) => matches!(
                code,
                ErrorCode::NotLeaderOrFollower
                    | ErrorCode::UnknownTopicOrPartition
                    | ErrorCode::NotEnoughReplicas
                    | ErrorCode::OffsetNotAvailable
                    | ErrorCode::RequestTimedOut
                    | ErrorCode::StorageError
            ),
            None => is_transport_status(server.status),
        },
        ClientError::Connect { .. } | ClientError::Timeout(_) => true,
        ClientError::LeaderNotAvailable { .. } => true,
        ClientError::InvalidAddress { .. }
        | ClientError::CorruptBatch(_)
        | ClientError::InvalidArgument(_)
        | ClientError::EarlierBatchFailed { .. }
        | ClientError::ProducerClosed => false,
    }
}

/// Whether the connection to the broker is suspect (drop it from the pool
/// and try another broker for requests any broker can answer).
pub(crate) fn is_transport(err: &ClientError) -> bool {
    match err {
        ClientError::Connect { .. } | ClientError::Timeout(_) => true,
        ClientError::Server(server) => server.code.is_none() && is_transport_status(server.status),
        _ => false,
    }
}

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

/// Exponential backoff: [`INITIAL_BACKOFF`] doubling up to
/// [`MAX_BACKOFF`].
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: INITIAL_BACKOFF }
    }
}

impl Backoff {
    /// The wait before the next try.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        delay
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::error::ServerError;

    fn server(code: Option<ErrorCode>, status: tonic::Code) -> ClientError {
        ClientError::Server(ServerError {
            code,
            status,
            message: "m".into(),
            log_start_offset: None,
            log_end_offset: None,
            leader: None,
        })
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
            assert!(is_retriable(&server(Some(code), tonic::Code::Unavailable)), "{code:?}");
            assert!(!is_transport(&server(Some(code), tonic::Code::Unavailable)));
        }
        assert!(is_retriable(&server(None, tonic::Code::Unavailable)));
        assert!(is_transport(&server(None, tonic::Code::Unavailable)));
        assert!(is_retriable(&ClientError::Timeout(Duration::from_secs(1))));
        // Nothing listens on port 1: a real connect error.
        let connect = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect().await.unwrap_err();
        assert!(is_retriable(&ClientError::Connect { address: "127.0.0.1:1".into(), source: Arc::new(connect) }));
        assert!(is_retriable(&ClientError::LeaderNotAvailable { topic: "t".into(), partition: 0 }));
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
            assert!(!is_retriable(&server(Some(code), tonic::Code::InvalidArgument)), "{code:?}");
        }
        assert!(!is_retriable(&server(None, tonic::Code::InvalidArgument)));
        assert!(!is_retriable(&server(None, tonic::Code::ResourceExhausted)));
        assert!(!is_retriable(&ClientError::CorruptBatch("crc".into())));
        assert!(!is_retriable(&ClientError::InvalidArgument("x".into())));
    }

    #[test]
    fn backoff_doubles_up_to_a_second() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
    }
}
