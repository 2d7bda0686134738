//! kmon's client library, used by the `kmon` CLI and the integration tests.
//!
//! - [`connection`]: opens a tonic channel to a bootstrap broker.
//! - [`admin`]: topics, offsets ([`OffsetSpec`]) and cluster metadata.
//! - [`producer`]: [`Producer`] batches records per partition and pipelines
//!   produce requests; [`partitioner`] picks partitions the way Kafka's
//!   default partitioner does.
//! - [`consumer`]: [`Consumer`] long-polls assigned partitions.
//! - [`batch`]: the Kafka RecordBatch v2 codec (pure, no I/O); the layout
//!   is documented there.
//! - [`types`]: the domain types; `convert` maps them to and from the
//!   generated protobuf types, which stop there.
//! - [`error`]: [`ClientError`]; a gRPC status becomes one in a single
//!   `From` impl that reads the stable `kmon-error` name.
//!
//! Data flow: `Producer::send` → partitioner → accumulator (encodes into a
//! batch) → sender task → Produce RPC; Fetch RPC → `batch` decoder →
//! `Consumer::poll` → [`ConsumerRecord`]s.

pub mod admin;
pub mod batch;
pub mod connection;
pub mod consumer;
mod convert;
pub mod error;
pub mod partitioner;
pub mod producer;
pub mod types;

pub use admin::Admin;
pub use consumer::{Consumer, ConsumerConfig};
pub use error::{ClientError, ErrorCode, ServerError};
pub use producer::{Producer, ProducerConfig, RecordHandle};
pub use types::{
    Acks, BrokerInfo, ClusterMetadata, ConsumerRecord, OffsetSpec, PartitionDescription,
    PartitionOffset, RecordMetadata, TopicDescription,
};
