//! Consumer groups, as Kafka runs them.
//!
//! - [`coordinator`]: the groups of the `__consumer_offsets` partitions this
//!   broker leads: load on leadership, join/sync/heartbeat/leave, commits
//!   written with acks=all, expiry, offsets retention, lag.
//! - [`membership`]: one group's membership state machine (pure).
//! - [`records`]: what is written to `__consumer_offsets`, and which
//!   partition a group lives on.
//! - [`lag`]: the Burrow-style lag evaluator.
//! - [`error`]: why a group request was refused.

pub mod coordinator;
pub mod error;
pub mod lag;
pub mod membership;
pub mod records;

pub use coordinator::{GroupConfig, GroupCoordinator, OFFSETS_TOPIC};
pub use error::GroupError;
