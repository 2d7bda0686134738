//! Consumer groups, as Kafka's group protocol.
//!
//! - `coordinator`: finds a group's coordinator (`FindCoordinator` on any
//!   broker) and sends group RPCs to it, re-finding it on
//!   NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE and backing off on
//!   COORDINATOR_LOAD_IN_PROGRESS.
//! - `member`: the member's state (member id, generation, whether it must
//!   rejoin) and what each group error means for it (pure).
//! - [`assignor`]: `range`, `roundrobin`, `cooperative-sticky` (pure).
//! - `protocol`: the consumer protocol (subscription and assignment bytes
//!   inside JoinGroup / SyncGroup) (pure).
//! - [`consumer`]: [`GroupConsumer`]: subscribe, poll, commit, close.
//! - `admin`: group calls of [`crate::Admin`] (list, describe one or all
//!   in one call, delete, fetch and reset offsets).
//! - [`types`]: the group domain types.
//!
//! Data flow of [`GroupConsumer::poll`]: rejoin if needed (eager: commit
//! and revoke everything first) → JoinGroup (long poll) → the leader runs
//! the assignor → SyncGroup → revoke what was taken away (commit first;
//! cooperative: rejoin at once) → start what was added at its committed
//! offset or `auto_offset_reset` → auto-commit if due → fetch (the plain
//! [`crate::Consumer`] on the owned partitions), cut short when the
//! background heartbeat task reports a rebalance.

mod admin;
pub mod assignor;
pub mod consumer;
mod coordinator;

mod member;
mod protocol;
pub mod types;

pub use assignor::{Assignor, RebalanceProtocol};
pub use consumer::{AutoOffsetReset, GroupConsumer, GroupConsumerConfig};
pub use types::{
    CommittedOffset, GroupDescription, GroupDescriptions, GroupListing, GroupMemberDescription, PartitionLag,
    UnavailableCoordinator,
};
