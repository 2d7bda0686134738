//! kmon's client library, used by the `kmon` CLI and the integration tests.
//!
//! - [`connection`]: opens tonic channels; a pool keeps one per broker;
//!   [`Security`] (TLS, SCRAM credentials) per client or for the process.
//! - `router`: which broker gets a request (any broker for admin and
//!   metadata, the partition leader for produce/fetch/offsets), over a
//!   `metadata` cache of brokers and partition leaders; `retry` is the
//!   backoff between tries.
//! - [`admin`]: topics, offsets ([`OffsetSpec`]) and cluster metadata.
//! - [`producer`]: [`Producer`] batches records per partition and pipelines
//!   produce requests; [`partitioner`] picks partitions the way Kafka's
//!   default partitioner does.
//! - [`consumer`]: [`Consumer`] long-polls assigned partitions.
//! - [`group`]: consumer groups: [`GroupConsumer`] (subscribe, poll,
//!   commit; join/sync/heartbeat with the group's coordinator), the
//!   assignors, and the group calls of [`Admin`].
//! - [`batch`]: the Kafka RecordBatch v2 codec (pure, no I/O); the layout
//!   is documented there.
//! - [`types`]: the domain types; `convert` maps them to and from the
//!   generated protobuf types, which stop there.
//! - [`prom`]: the Prometheus text format and a `GET /metrics` scrape
//!   (for tools that read the brokers' and agents' metrics).
//! - `requests`: how many RPCs a client has sent (every RPC takes its
//!   connection from the router, which counts them).
//! - [`error`]: [`ClientError`]; a gRPC status becomes one in a single
//!   `From` impl that reads the stable `kmon-error` name;
//!   [`ClientError::is_retriable`] says which failures are retried.
//!
//! Data flow: `Producer::send` → partitioner → accumulator (encodes into a
//! batch) → sender task (groups batches by leader) → Produce RPC to each
//! leader, retried after a metadata refresh on leader errors; Fetch RPC
//! per leader → `batch` decoder → `Consumer::poll` → [`ConsumerRecord`]s;
//! `GroupConsumer::poll` → (re)join → `Consumer::poll` on the owned
//! partitions → commit to the coordinator.

pub mod admin;
/// Kafka's RecordBatch v2 codec (kmon_proto's, shared with the broker).
pub use kmon_proto::record_batch as batch;
pub mod connection;
pub mod consumer;
mod convert;
pub mod error;
pub mod group;
mod metadata;
pub mod partitioner;
pub mod producer;
pub mod prom;
mod requests;
mod retry;
mod router;
pub mod types;

pub use admin::{AclBinding, Admin};
pub use connection::Security;
pub use consumer::{Consumer, ConsumerConfig};
pub use error::{ClientError, ErrorCode, ServerError};
pub use group::{
    Assignor, AutoOffsetReset, CommittedOffset, GroupConsumer, GroupConsumerConfig, GroupDescription,
    GroupDescriptions, GroupListing, GroupMemberDescription, PartitionLag, RebalanceProtocol, UnavailableCoordinator,
};
pub use producer::{OutgoingRecord, Producer, ProducerConfig, RecordHandle};
pub use types::{
    Acks, BalanceGoal, BrokerInfo, ClusterMetadata, ConsumerRecord, LeaderElection, OffsetSpec, PartitionDescription,
    PartitionMove, PartitionOffset, PartitionReassignment, ReassignmentStatus, RebalancePlan, RecordMetadata,
    TopicDescription, TopicPartition,
};
