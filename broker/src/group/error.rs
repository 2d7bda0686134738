//! Why a group request was refused. Each maps to a stable wire code.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("this broker is not the coordinator of the group; find the coordinator again")]
    NotCoordinator,
    #[error("the group coordinator is not available yet: {0}")]
    CoordinatorNotAvailable(String),
    #[error("the group coordinator is loading the group's offsets; retry shortly")]
    CoordinatorLoadInProgress,
    #[error("the group is rebalancing; rejoin")]
    RebalanceInProgress,
    #[error("unknown member id '{0}' (it left or its session expired); rejoin with an empty member id")]
    UnknownMemberId(String),
    #[error("illegal generation {given}: the group is at generation {current}")]
    IllegalGeneration { given: i32, current: i32 },
    #[error("group.instance.id '{0}' is in use by another member (fenced)")]
    FencedInstanceId(String),
    #[error("unknown group '{0}'")]
    GroupIdNotFound(String),
    #[error("group '{group}' has {members} active member(s): {action} needs an empty group (stop its consumers first)")]
    NonEmptyGroup { group: String, members: usize, action: String },
    #[error("inconsistent group protocol: {0}")]
    InconsistentGroupProtocol(String),
    #[error("session timeout {given_ms} ms is outside the allowed {min_ms}..={max_ms} ms")]
    InvalidSessionTimeout { given_ms: u64, min_ms: u64, max_ms: u64 },
    #[error("invalid group id '{0}': it must not be empty")]
    InvalidGroupId(String),
}
