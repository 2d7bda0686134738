//! [`StreamsError`]: the one error type of the crate.

use kmon_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// A broker call (produce, fetch, commit, admin) failed.
    #[error("{what}: {source}")]
    Client {
        what: String,
        #[source]
        source: ClientError,
    },
    /// Bytes a serde could not read.
    #[error("cannot deserialize {what}: {reason}")]
    Deserialize { what: &'static str, reason: String },
    /// A topology or configuration that cannot run, found at start-up.
    #[error("invalid topology: {0}")]
    Topology(String),
    /// A changelog record that is not a stored value of this crate.
    #[error("changelog {topic}-{partition} offset {offset}: {reason}")]
    Changelog { topic: String, partition: u32, offset: i64, reason: String },
    #[error("metrics endpoint on {address}: {source}")]
    Metrics {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

impl StreamsError {
    pub(crate) fn client(what: impl Into<String>) -> impl FnOnce(ClientError) -> StreamsError {
        let what = what.into();
        move |source| StreamsError::Client { what, source }
    }
}
