//! Every failure the proxy answers with: a JSON body `{"error_code",
//! "message"}` (Confluent's shape) and its HTTP status, made here only.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kmon_client::{ClientError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Malformed JSON, a missing field, a value of the wrong type.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but refused (bad base64, a partition that does not
    /// exist, an unknown format).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// What the cluster answered.
    #[error(transparent)]
    Cluster(#[from] ClientError),
}

impl RestError {
    /// The HTTP status and Confluent's error code for this failure (v3
    /// uses the HTTP status as its code; v2's five-digit codes are
    /// status × 100 + detail).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            RestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RestError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RestError::NotFound(_) => StatusCode::NOT_FOUND,
            RestError::Conflict(_) => StatusCode::CONFLICT,
            RestError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RestError::Cluster(err) => match err.code() {
                Some(ErrorCode::UnknownTopicOrPartition | ErrorCode::GroupIdNotFound) => StatusCode::NOT_FOUND,
                Some(ErrorCode::TopicAlreadyExists) => StatusCode::CONFLICT,
                Some(
                    ErrorCode::InvalidTopicName
                    | ErrorCode::InvalidConfig
                    | ErrorCode::InvalidPartitions
                    | ErrorCode::InvalidReplicationFactor
                    | ErrorCode::MessageTooLarge
                    | ErrorCode::InvalidRequest,
                ) => StatusCode::UNPROCESSABLE_ENTITY,
                Some(ErrorCode::RequestTimedOut) => StatusCode::GATEWAY_TIMEOUT,
                _ if matches!(err, ClientError::InvalidArgument(_)) => StatusCode::UNPROCESSABLE_ENTITY,
                _ if matches!(err, ClientError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
                _ if err.is_retriable() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error_code": status.as_u16(), "message": self.to_string() });
        (status, Json(body)).into_response()
    }
}
