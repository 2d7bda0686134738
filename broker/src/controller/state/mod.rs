//! The cluster metadata state machine: brokers, topics, partition
//! assignments, leaders, leader epochs and ISRs. It is replicated by the
//! Raft quorum (`controller`); `apply` is deterministic, so every node that
//! applies the same commands holds the same state.
//!
//! Leader election happens here, inside `apply`: fencing a broker moves the
//! leadership of its partitions to another in-sync replica (new leader
//! epoch); a partition with no in-sync replica left goes offline (leader -1)
//! unless its topic allows unclean election.
//!
//! Files: `acls` (access control lists and Kafka's authorizer rules), `records` (brokers, topics, partitions, reassignments, the
//! [`ClusterState`] holding them and its read-only views), `commands`
//! ([`MetadataCommand`], its outcome and its errors), `apply` (what each
//! command does). Placement of new partitions is [`crate::placement`].

pub mod acls;
mod apply;
mod commands;
mod records;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use apply::LeaderElections;
pub use commands::{ApplyResult, CommandOutcome, MetadataCommand, MetadataError, ReplicaMove};
pub use records::{
    BrokerId, BrokerRecord, ClusterState, NO_LEADER, PartitionCounts, PartitionRecord, Reassignment, ReassignmentBatch,
    TopicRecord, TopicsSeen, other_topic,
};
