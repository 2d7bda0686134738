//! kmon's Kafka wire-protocol listener: Kafka clients (librdkafka, Java,
//! kafka-python, kcat) talk to a kmon broker unchanged, over the same
//! partition logs, replication, consumer groups and metrics as gRPC.
//!
//! Request path, top-down:
//!
//! ```text
//! TCP ─▶ server (size-prefixed frames, one request at a time per
//!        connection, as Kafka) ─▶ frame::decode_request (kafka-protocol,
//!        pure) ─▶ api::handle (one file per API) ─▶ kmon_broker::Broker
//!        ─▶ frame::encode_response ─▶ TCP
//! ```
//!
//! - [`server`]: accept loop, connections, metrics, shutdown.
//! - [`frame`]: the pure codec: frames ↔ typed requests and responses.
//! - [`versions`]: the APIs and versions served (what ApiVersions says).
//! - [`api`]: one module per Kafka API, converting to broker calls.
//! - [`error`]: the crate's error type and broker errors → Kafka codes.

pub mod api;
pub mod error;
pub mod frame;
pub mod server;
pub mod versions;

pub use error::{KafkaError, error_code};
pub use server::serve;

/// What `kmon broker` passes to `kmon_broker::server::run_with`: the Kafka
/// listener serves `kafka_listen`.
pub const FRONTENDS: kmon_broker::server::Frontends = kmon_broker::server::Frontends { kafka: Some(serve) };
