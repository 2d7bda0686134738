//! Partition replication, as Kafka does it.
//!
//! - [`manager`]: which partitions this broker hosts and in which role,
//!   driven by the cluster metadata; produce (acks) and fetch on the leader;
//!   ISR changes proposed to the controller.
//! - [`partition`]: one hosted partition: follower progress, high
//!   watermark, ISR expand/shrink decisions.
//! - [`fetcher`]: the follower loop: truncate by leader epoch, then pull.
//! - [`lifecycle`]: registration, heartbeats and fencing.
//! - [`throttle`]: the rate limit on a reassignment's copying.
//! - [`reassignment`]: the active controller's driver that completes
//!   reassignments once their new replicas are in sync.

pub mod fetcher;
pub mod lifecycle;
pub mod manager;
pub mod partition;
pub mod reassignment;
pub mod throttle;

pub use manager::{AppendOutcome, ReplicaManager, RequiredAcks};
