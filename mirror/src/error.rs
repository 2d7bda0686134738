//! [`MirrorError`]: every failure of the mirror, named with what was wrong.

use kmon_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("invalid {flag} regex {pattern:?}: {reason}")]
    BadRegex { flag: String, pattern: String, reason: String },
    #[error("{0}")]
    BadArgument(String),
    /// A cluster could not be reached at start-up.
    #[error("cannot reach the {role} cluster at {bootstrap}: {source}")]
    Unreachable {
        role: &'static str,
        bootstrap: String,
        #[source]
        source: Box<ClientError>,
    },
    /// A cluster's TLS or SASL flags are unusable (a file missing or not
    /// PEM, a certificate without its key).
    #[error("the {role} cluster's TLS/SASL settings: {source}")]
    Security {
        role: &'static str,
        #[source]
        source: Box<ClientError>,
    },
    /// The target already has the topic with fewer partitions than the
    /// source: records could not keep their partition.
    #[error(
        "target topic {target:?} has {target_partitions} partitions, source topic {source_topic:?} has {source_partitions}: add partitions on the target or delete it"
    )]
    PartitionMismatch { source_topic: String, target: String, source_partitions: u32, target_partitions: u32 },
    /// An offset-sync or checkpoint record that does not decode.
    #[error("corrupt mirror record: {0}")]
    CorruptRecord(String),
    #[error("cannot serve metrics on {address}: {reason}")]
    Listen { address: String, reason: String },
    #[error("{context}: {source}")]
    Client {
        context: String,
        #[source]
        source: Box<ClientError>,
    },
}

/// Adds what was being done to a client error.
pub(crate) trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, MirrorError>;
}

impl<T> Context<T> for Result<T, ClientError> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, MirrorError> {
        self.map_err(|source| MirrorError::Client { context: context(), source: Box::new(source) })
    }
}
