//! The crate's one error type, and the one place where a gRPC status
//! becomes a [`ClientError`].

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
    CorruptBatch(String),

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
    /// changes, unavailable brokers, timeouts. See `retry` for the table.
    pub fn is_retriable(&self) -> bool {
        crate::retry::is_retriable(self)
    }
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
mod tests {
    use super::*;

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
}
