//! Opening a gRPC channel to a broker.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::ClientError;

/// The generated client over a tonic channel.
pub type KmonClient = kmon_proto::v1::kmon_client::KmonClient<Channel>;

/// Largest gRPC message sent or accepted (produce and fetch carry whole
/// batches).
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `bootstrap` (`HOST:PORT`, or a full `http://` URI).
pub async fn connect(bootstrap: &str) -> Result<KmonClient, ClientError> {
    let uri = if bootstrap.contains("://") {
        bootstrap.to_owned()
    } else {
        format!("http://{bootstrap}")
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|err| ClientError::InvalidAddress {
        address: bootstrap.to_owned(),
        reason: err.to_string(),
    })?;
    let channel = endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        // Large windows so a multi-MiB produce or fetch is not throttled by
        // HTTP/2 flow control.
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            address: bootstrap.to_owned(),
            source: Arc::new(source),
        })?;
    Ok(kmon_proto::v1::kmon_client::KmonClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE))
}
