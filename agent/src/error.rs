//! The agent's error type.

use std::path::PathBuf;

/// What can stop the agent from starting, or fail one step of its loops.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot bind {address}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("disk buffer {}: {context}", dir.display())]
    Buffer {
        dir: PathBuf,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("collector {collector}: {message}")]
    Collect { collector: &'static str, message: String },
    #[error("no broker reachable (tried {tried}): {last}")]
    Unreachable { tried: String, last: String },
    #[error("shipping to {broker} failed: {status}")]
    Ship {
        broker: String,
        #[source]
        status: tonic::Status,
    },
    #[error("metrics server: {0}")]
    Serve(#[source] std::io::Error),
}
