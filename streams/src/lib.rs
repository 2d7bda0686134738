//! kmon-streams: stream processing on kmon's client (Kafka Streams' job).
//!
//! - [`topology`]: the DSL: [`StreamsBuilder`] → [`KStream`] (map, filter,
//!   flat_map, join with a [`KTable`], to) → [`KGroupedStream`] (count,
//!   reduce, aggregate; [`TimeWindowedKStream`] per window) → [`KTable`].
//! - [`serde`]: the [`Serde`] trait; string, u64, bytes, JSON.
//! - [`window`]: tumbling and hopping [`TimeWindows`] with grace (pure).
//! - `store`: per-task in-memory stores, their changelog value layout and
//!   the origins that let a reprocessed record be recognised.
//! - `context`: what a processor sees (task, origin, stores, output).
//! - [`runtime`]: [`KafkaStreams`]: group membership, restore on
//!   assignment, processing, the commit (changelog + output flushed, then
//!   input offsets).
//! - [`metrics`]: [`StreamsMetrics`], served at `/metrics`.
//! - [`apps`]: the example topologies (word count, windowed sum,
//!   enrichment join) used by `examples/`, `kmon streams` and the benchmark.
//! - [`cli`]: `kmon streams` (run an example app; `bench`).
//! - [`error`]: [`StreamsError`], the crate's one error type.
//!
//! Data flow: input partition `p` (a task) → processors of its topic →
//! records to produce (outputs, repartition topics) and store updates →
//! at each commit: changed store entries → changelog partition `p` and the
//! table's downstream → producer flush → offset commit.
//!
//! Delivery: at least once, with aggregations made exact by origins; see
//! the README's "Stream processing" section for what can be duplicated.

pub mod apps;
pub mod cli;
mod context;
pub mod error;
pub mod metrics;
pub mod runtime;
pub mod serde;
mod store;
pub mod topology;
pub mod window;

pub use error::StreamsError;
pub use metrics::StreamsMetrics;
pub use runtime::{KafkaStreams, StreamsConfig};
pub use serde::{BytesSerde, JsonSerde, Serde, StringSerde, U64Serde};
pub use topology::{KGroupedStream, KStream, KTable, Record, StreamsBuilder, TimeWindowedKStream};
pub use window::{TimeWindows, Windowed};
