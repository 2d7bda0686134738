//! Balancing replicas over brokers, fault domains and update domains.
//!
//! - [`planner`]: the pure, deterministic reassignment planner (goals,
//!   their priority and the algorithm are in its module docs).
//! - [`sizes`]: the partition sizes it plans with, from each partition
//!   leader's log.
//! - [`synthetic`]: a skewed synthetic cluster and the naive round-robin
//!   reassignment, for the planner's benchmark.
//! - [`scale_down`]: why shrinking the broker set is refused, in the one
//!   message every entry point (RPC, `kmon cluster remove-broker`,
//!   `kmon up --brokers`) gives.
//!
//! Data flow: `PlanRebalance` RPC → `service::rebalance` → [`sizes`] (asks
//! the partition leaders) → [`planner::plan`] on this broker's copy of the
//! metadata → the plan, unchanged, on the wire. Planning changes nothing.

pub mod planner;
pub mod scale_down;
pub mod sizes;
pub mod synthetic;

pub use planner::{Goal, Move, PartitionSizes, Plan, plan};
