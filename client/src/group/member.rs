//! The member's side of the group protocol as state (pure, no I/O):
//! member id, generation, phase, and whether it must rejoin. Shared by
//! `poll` (which joins) and the heartbeat task (which notices rebalances).
//!
//! What a group error means for the member (JoinGroup, SyncGroup,
//! Heartbeat, OffsetCommit):
//!
//! | error                              | member does                               |
//! |------------------------------------|-------------------------------------------|
//! | REBALANCE_IN_PROGRESS              | rejoin (same member id)                   |
//! | UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION | forget the generation (and the member id unless static), rejoin |
//! | FENCED_INSTANCE_ID                 | stop: another process has the instance id |
//! | anything else                      | nothing (the caller reports it)           |
//!
//! An error only counts if it answers a request of the member's current
//! generation: a heartbeat of generation 4 refused after `poll` already
//! joined generation 5 says nothing about generation 5.

use std::time::Instant;

use crate::error::{ClientError, ErrorCode};

/// Generation of a member outside any generation.
pub(crate) const NO_GENERATION: i32 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not in a generation (before the first join, after leaving).
    Unjoined,
    /// JoinGroup / SyncGroup in flight: no heartbeats.
    Rebalancing,
    /// In a generation with an assignment: heartbeats flow.
    Stable,
}

/// What an error made the member do; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaction {
    Rejoin,
    ResetAndRejoin,
    Fatal,
    None,
}

pub(crate) fn reaction(err: &ClientError) -> Reaction {
    match err.code() {
        Some(ErrorCode::RebalanceInProgress) => Reaction::Rejoin,
        Some(ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration) => Reaction::ResetAndRejoin,
        Some(ErrorCode::FencedInstanceId) => Reaction::Fatal,
        _ => Reaction::None,
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct MemberState {
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    pub(crate) instance_id: Option<String>,
    pub(crate) phase: Phase,
    /// Why the member must rejoin, if it must.
    pub(crate) rejoin: Option<String>,
    /// Set once the member may not go on (fenced).
    pub(crate) fatal: Option<ClientError>,
    /// When the application last called `poll`.
    pub(crate) last_poll: Instant,
}

impl MemberState {
    pub(crate) fn new(instance_id: Option<String>) -> Self {
        MemberState {
            member_id: String::new(),
            generation: NO_GENERATION,
            instance_id,
            phase: Phase::Unjoined,
            rejoin: None,
            fatal: None,
            last_poll: Instant::now(),
        }
    }

    /// Whether `poll` must (re)join before fetching.
    pub(crate) fn needs_join(&self) -> bool {
        self.phase != Phase::Stable || self.rejoin.is_some()
    }

    pub(crate) fn request_rejoin(&mut self, reason: impl Into<String>) {
        if self.rejoin.is_none() {
            self.rejoin = Some(reason.into());
        }
    }

    /// Leaves the generation; dynamic members also drop their member id.
    pub(crate) fn reset(&mut self) {
        self.generation = NO_GENERATION;
        if self.instance_id.is_none() {
            self.member_id.clear();
        }
        self.phase = Phase::Unjoined;
    }

    /// The JoinGroup / SyncGroup of `generation` completed.
    pub(crate) fn joined(&mut self, member_id: String, generation: i32) {
        self.member_id = member_id;
        self.generation = generation;
        self.phase = Phase::Stable;
        self.rejoin = None;
    }

    /// Applies `err`, the answer to a request made as `member_id` in
    /// `generation`; returns what it called for (`Reaction::None` when the
    /// member has moved on since).
    pub(crate) fn on_error(&mut self, generation: i32, member_id: &str, err: &ClientError) -> Reaction {
        if generation != self.generation || member_id != self.member_id {
            return Reaction::None;
        }
        let reaction = reaction(err);
        match reaction {
            Reaction::Rejoin => self.request_rejoin(err.to_string()),
            Reaction::ResetAndRejoin => {
                self.reset();
                self.request_rejoin(err.to_string());
            }
            Reaction::Fatal => self.fatal = Some(err.clone()),
            Reaction::None => {}
        }
        reaction
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServerError;

    fn error(code: ErrorCode) -> ClientError {
        ClientError::Server(ServerError {
            code: Some(code),
            status: tonic::Code::FailedPrecondition,
            message: format!("{code:?}"),
            log_start_offset: None,
            log_end_offset: None,
            leader: None,
        })
    }

    fn stable(instance_id: Option<&str>) -> MemberState {
        let mut state = MemberState::new(instance_id.map(str::to_owned));
        assert!(state.needs_join());
        state.joined("m-1".into(), 5);
        assert!(!state.needs_join());
        state
    }

    #[test]
    fn rebalance_in_progress_keeps_the_member_id() {
        let mut state = stable(None);
        assert_eq!(state.on_error(5, "m-1", &error(ErrorCode::RebalanceInProgress)), Reaction::Rejoin);
        assert!(state.needs_join());
        assert_eq!((state.member_id.as_str(), state.generation), ("m-1", 5));
        state.joined("m-1".into(), 6);
        assert!(!state.needs_join());
    }

    #[test]
    fn unknown_member_and_illegal_generation_reset_dynamic_members() {
        for code in [ErrorCode::UnknownMemberId, ErrorCode::IllegalGeneration] {
            let mut state = stable(None);
            assert_eq!(state.on_error(5, "m-1", &error(code)), Reaction::ResetAndRejoin);
            assert!(state.needs_join());
            assert_eq!((state.member_id.as_str(), state.generation, state.phase), ("", NO_GENERATION, Phase::Unjoined));

            // Static members keep their member id.
            let mut state = stable(Some("instance-a"));
            assert_eq!(state.on_error(5, "m-1", &error(code)), Reaction::ResetAndRejoin);
            assert_eq!((state.member_id.as_str(), state.generation), ("m-1", NO_GENERATION));
        }
    }

    #[test]
    fn fenced_is_fatal() {
        let mut state = stable(Some("instance-a"));
        assert_eq!(state.on_error(5, "m-1", &error(ErrorCode::FencedInstanceId)), Reaction::Fatal);
        assert_eq!(state.fatal.as_ref().and_then(ClientError::code), Some(ErrorCode::FencedInstanceId));
    }

    #[test]
    fn answers_to_an_older_generation_are_ignored() {
        let mut state = stable(None);
        assert_eq!(state.on_error(4, "m-1", &error(ErrorCode::IllegalGeneration)), Reaction::None);
        assert_eq!(state.on_error(5, "m-0", &error(ErrorCode::UnknownMemberId)), Reaction::None);
        assert!(!state.needs_join());
        assert_eq!(state.generation, 5);
    }

    #[test]
    fn other_errors_change_nothing() {
        let mut state = stable(None);
        assert_eq!(state.on_error(5, "m-1", &error(ErrorCode::NotCoordinator)), Reaction::None);
        assert_eq!(state.on_error(5, "m-1", &ClientError::InvalidArgument("x".into())), Reaction::None);
        assert!(!state.needs_join());
    }

    #[test]
    fn the_first_rejoin_reason_is_kept() {
        let mut state = stable(None);
        state.request_rejoin("metadata changed");
        state.request_rejoin("heartbeat");
        assert_eq!(state.rejoin.as_deref(), Some("metadata changed"));
    }
}
