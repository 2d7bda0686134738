//! kmon-rest: `kmon rest`, an HTTP proxy in front of a kmon cluster with
//! the shapes of Confluent's REST Proxy, so tools that speak HTTP (curl,
//! scripts, web back ends) can produce and consume without a Kafka client.
//!
//! - [`server`]: the axum router, the shared [`server::Proxy`] state (one
//!   idempotent acks=all producer, an admin client, the consumer
//!   instances), the access log and start-up ([`run`]).
//! - `v3`: the v3 resources: clusters, topics (list, get, create, delete),
//!   partitions; `records`: `POST .../records` and `.../records:batch`
//!   (JSON, string and base64 binary keys and values, headers, partition
//!   choice, timestamps).
//! - `consumers`: v2 consumer instances (create, subscribe, fetch records,
//!   commit offsets, delete), each a group member of kmon's client, closed
//!   after an idle timeout.
//! - `error`: [`RestError`], every failure as `{"error_code", "message"}`
//!   with its HTTP status, made in one place.
//! - `metrics`: request counts and latency per route and status at
//!   `/metrics`; `openapi`: the OpenAPI document at `/openapi.json`.

mod consumers;
mod error;
mod metrics;
mod openapi;
mod records;
pub mod server;
mod v3;

pub use error::RestError;
pub use server::{READY_PREFIX, RestArgs, run};
