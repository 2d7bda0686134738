//! Domain types of consumer groups; `crate::convert` maps them from the
//! generated protobuf types.

use crate::types::TopicPartition;

/// A group as `ListGroups` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// Empty, PreparingRebalance, CompletingRebalance, Stable, Dead.
    pub state: String,
    pub protocol_type: String,
    /// Broker id of the coordinator.
    pub coordinator_id: i32,
    pub members: u32,
    /// Burrow-style lag status: OK, WARN, ERR.
    pub status: String,
}

/// `DescribeGroup`: state, members, and per-partition offsets and lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    /// The assignor in use (empty while the group has no generation).
    pub protocol: String,
    /// OK, WARN, ERR.
    pub status: String,
    pub generation_id: i32,
    pub coordinator_id: i32,
    pub members: Vec<GroupMemberDescription>,
    pub partitions: Vec<PartitionLag>,
}

impl GroupDescription {
    /// The group as `ListGroups` lists it (the same figures: state, member
    /// count, status).
    pub fn listing(&self) -> GroupListing {
        GroupListing {
            group_id: self.group_id.clone(),
            state: self.state.clone(),
            protocol_type: self.protocol_type.clone(),
            coordinator_id: self.coordinator_id,
            members: self.members.len() as u32,
            status: self.status.clone(),
        }
    }
}

/// `DescribeGroups`: many groups from one call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupDescriptions {
    /// Sorted by group id.
    pub groups: Vec<GroupDescription>,
    /// Coordinators that did not answer; their groups are missing.
    pub unavailable: Vec<UnavailableCoordinator>,
}

/// A coordinator `DescribeGroups` could not reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnavailableCoordinator {
    /// -1 when the offsets partition has no leader.
    pub broker_id: i32,
    pub address: String,
    pub error: String,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberDescription {
    pub member_id: String,
    /// Static members only.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<TopicPartition>,
}

/// Offsets and lag of one partition for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: u32,
    /// `None` when the group has committed nothing for the partition.
    pub committed_offset: Option<i64>,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// High watermark − committed offset (the whole high watermark when
    /// nothing was committed).
    pub lag: i64,
    /// OK, WARN, STALL, STOP, REWIND.
    pub status: String,
    /// Member id of the owner, `None` when unowned.
    pub owner: Option<String>,
}

/// A group's committed offset for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: u32,
    /// `None` when the group has committed nothing for the partition.
    pub offset: Option<i64>,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}
