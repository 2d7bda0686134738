//! One consumer group's membership state machine, as Kafka's group
//! coordinator runs it. Pure state: the coordinator owns the I/O and calls
//! in under the group's lock with the current time.
//!
//! ```text
//! Empty ──join──▶ PreparingRebalance ──all joined / deadline──▶ CompletingRebalance
//!   ▲                  ▲    ▲                                        │ leader's SyncGroup
//!   └── last member ───┘    └──── join, leave, expiry ───── Stable ◀─┘
//! ```
//!
//! JoinGroup and SyncGroup are long polls: a member's request is parked as
//! a oneshot sender and answered when the phase completes.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::error::GroupError;
use super::records::{GroupValue, MemberValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a member asks for when it joins.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
}

/// The answer to a join.
#[derive(Debug, Clone)]
pub struct JoinOutcome {
    pub generation: i32,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// (member id, instance id, subscription) of every member, for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
    pub skip_assignment: bool,
}

pub type JoinReply = Result<JoinOutcome, GroupError>;
pub type SyncReply = Result<(Bytes, String), GroupError>;

/// Either an answer now, or one to wait for.
#[derive(Debug)]
pub enum Pending<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    joined: bool,
    join_waiter: Option<oneshot::Sender<JoinReply>>,
    sync_waiter: Option<oneshot::Sender<SyncReply>>,
}

impl Member {
    pub fn subscription(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

/// Settings the coordinator passes down.
#[derive(Debug, Clone, Copy)]
pub struct GroupTimings {
    /// An empty group waits this long for more members before the first
    /// rebalance completes (group.initial.rebalance.delay.ms).
    pub initial_rebalance_delay: Duration,
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id → member id of static members.
    pub static_members: HashMap<String, String>,
    rebalance_deadline: Option<Instant>,
    /// Not before this instant (initial rebalance delay of an empty group).
    rebalance_not_before: Option<Instant>,
    /// When the group last became empty.
    pub empty_since: Option<Instant>,
    next_member: u64,
}

impl Group {
    pub fn new(id: &str, now: Instant) -> Group {
        Group {
            id: id.into(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: String::new(),
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            rebalance_not_before: None,
            empty_since: Some(now),
            next_member: 0,
        }
    }

    /// Rebuilds a group from its last persisted membership (after a
    /// coordinator failover); members get a fresh session to reach us.
    pub fn restore(id: &str, value: &GroupValue, now: Instant) -> Group {
        let mut group = Group::new(id, now);
        group.generation = value.generation;
        group.protocol_type = value.protocol_type.clone();
        group.protocol = value.protocol.clone();
        group.leader = value.leader.clone();
        for m in &value.members {
            if let Some(instance) = &m.instance_id {
                group.static_members.insert(instance.clone(), m.member_id.clone());
            }
            let protocols = value.protocol.iter().map(|p| (p.clone(), Bytes::from(m.subscription.clone()))).collect();
            group.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    host: m.host.clone(),
                    session_timeout: Duration::from_millis(u64::from(m.session_timeout_ms)),
                    rebalance_timeout: Duration::from_millis(u64::from(m.rebalance_timeout_ms)),
                    protocols,
                    assignment: Bytes::from(m.assignment.clone()),
                    last_heartbeat: now,
                    joined: false,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
            group.empty_since = None;
        }
        group
    }

    /// The membership to persist after a completed rebalance.
    pub fn to_value(&self) -> GroupValue {
        GroupValue {
            protocol_type: self.protocol_type.clone(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    host: m.host.clone(),
                    session_timeout_ms: m.session_timeout.as_millis() as u32,
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u32,
                    subscription: self.protocol.as_deref().map(|p| m.subscription(p).to_vec()).unwrap_or_default(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        self.next_member += 1;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let prefix = if client_id.is_empty() { "consumer" } else { client_id };
        format!("{prefix}-{:x}-{}", nanos & 0xffff_ffff_ffff, self.next_member)
    }

    fn supports_common_protocol(&self, protocols: &[(String, Bytes)]) -> bool {
        self.members.values().all(|m| m.protocols.iter().any(|(n, _)| protocols.iter().any(|(p, _)| p == n)))
    }

    /// JoinGroup.
    pub fn join(&mut self, req: JoinRequest, now: Instant, timings: GroupTimings) -> Pending<JoinReply> {
        if self.state == GroupState::Dead {
            return Pending::Now(Err(GroupError::NotCoordinator));
        }
        if !self.members.is_empty() && req.protocol_type != self.protocol_type {
            return Pending::Now(Err(GroupError::InconsistentGroupProtocol(format!(
                "protocol type '{}' differs from the group's '{}'",
                req.protocol_type, self.protocol_type
            ))));
        }
        if !self.supports_common_protocol(&req.protocols) {
            return Pending::Now(Err(GroupError::InconsistentGroupProtocol(
                "no assignor in common with the group's members".into(),
            )));
        }
        // Static members: a known instance id keeps its place.
        let mut member_id = req.member_id.clone();
        if let Some(instance) = &req.instance_id
            && let Some(existing) = self.static_members.get(instance).cloned()
        {
            if !member_id.is_empty() && member_id != existing {
                return Pending::Now(Err(GroupError::FencedInstanceId(instance.clone())));
            }
            if member_id.is_empty() {
                // A restarted static member: new member id, same place.
                let new_id = self.new_member_id(&req.client_id);
                if let Some(mut old) = self.members.remove(&existing) {
                    if let Some(w) = old.join_waiter.take() {
                        let _ = w.send(Err(GroupError::FencedInstanceId(instance.clone())));
                    }
                    if let Some(w) = old.sync_waiter.take() {
                        let _ = w.send(Err(GroupError::FencedInstanceId(instance.clone())));
                    }
                    old.member_id = new_id.clone();
                    old.protocols = req.protocols.clone();
                    old.last_heartbeat = now;
                    old.client_id = req.client_id.clone();
                    old.host = req.host.clone();
                    self.members.insert(new_id.clone(), old);
                }
                if self.leader.as_deref() == Some(existing.as_str()) {
                    self.leader = Some(new_id.clone());
                }
                self.static_members.insert(instance.clone(), new_id.clone());
                if self.state == GroupState::Stable {
                    return Pending::Now(Ok(JoinOutcome {
                        generation: self.generation,
                        protocol: self.protocol.clone().unwrap_or_default(),
                        leader: self.leader.clone().unwrap_or_default(),
                        member_id: new_id,
                        members: Vec::new(),
                        skip_assignment: true,
                    }));
                }
                member_id = new_id;
            }
        }
        if member_id.is_empty() {
            member_id = self.new_member_id(&req.client_id);
        } else if !self.members.contains_key(&member_id) {
            return Pending::Now(Err(GroupError::UnknownMemberId(member_id)));
        }
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        let (tx, rx) = oneshot::channel();
        let protocols_changed;
        match self.members.get_mut(&member_id) {
            Some(m) => {
                protocols_changed = m.protocols != req.protocols;
                m.protocols = req.protocols;
                m.session_timeout = req.session_timeout;
                m.rebalance_timeout = req.rebalance_timeout;
                m.last_heartbeat = now;
                m.joined = true;
                if let Some(old) = m.join_waiter.replace(tx) {
                    let _ = old.send(Err(GroupError::RebalanceInProgress));
                }
            }
            None => {
                protocols_changed = true;
                self.members.insert(
                    member_id.clone(),
                    Member {
                        member_id: member_id.clone(),
                        instance_id: req.instance_id.clone(),
                        client_id: req.client_id,
                        host: req.host,
                        session_timeout: req.session_timeout,
                        rebalance_timeout: req.rebalance_timeout,
                        protocols: req.protocols,
                        assignment: Bytes::new(),
                        last_heartbeat: now,
                        joined: true,
                        join_waiter: Some(tx),
                        sync_waiter: None,
                    },
                );
            }
        }
        self.protocol_type = req.protocol_type;
        if protocols_changed {
            tracing::debug!(group = %self.id, member = %member_id, "member subscription changed");
        }
        self.prepare_rebalance(now, timings);
        self.try_complete_join(now);
        Pending::Wait(rx)
    }

    /// Starts a rebalance: every member must rejoin.
    pub fn prepare_rebalance(&mut self, now: Instant, timings: GroupTimings) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        // Members parked in SyncGroup must rejoin instead.
        for m in self.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(Err(GroupError::RebalanceInProgress));
            }
        }
        let was_empty = self.state == GroupState::Empty || self.members.values().all(|m| m.joined);
        self.state = GroupState::PreparingRebalance;
        let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::from_secs(5));
        self.rebalance_deadline = Some(now + timeout);
        self.rebalance_not_before = was_empty.then(|| now + timings.initial_rebalance_delay);
    }

    /// Completes the join phase once every member rejoined (or the deadline
    /// passed): bumps the generation and answers the parked joins.
    pub fn try_complete_join(&mut self, now: Instant) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        let all_joined = self.members.values().all(|m| m.joined);
        let deadline_passed = self.rebalance_deadline.is_some_and(|d| now >= d);
        let delay_over = self.rebalance_not_before.is_none_or(|t| now >= t);
        if !(deadline_passed || (all_joined && delay_over)) {
            return false;
        }
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self.members.values().filter(|m| !m.joined).map(|m| m.member_id.clone()).collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.rebalance_deadline = None;
        self.rebalance_not_before = None;
        if self.members.is_empty() {
            self.become_empty(now);
            return true;
        }
        self.generation += 1;
        let protocol = self.select_protocol();
        self.protocol = Some(protocol.clone());
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().expect("a member leads");
        let everyone: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.instance_id.clone(), m.subscription(&protocol)))
            .collect();
        self.state = GroupState::CompletingRebalance;
        let generation = self.generation;
        for m in self.members.values_mut() {
            m.joined = false;
            m.last_heartbeat = now;
            m.assignment = Bytes::new();
            if let Some(w) = m.join_waiter.take() {
                let members = if m.member_id == leader { everyone.clone() } else { Vec::new() };
                let _ = w.send(Ok(JoinOutcome {
                    generation,
                    protocol: protocol.clone(),
                    leader: leader.clone(),
                    member_id: m.member_id.clone(),
                    members,
                    skip_assignment: false,
                }));
            }
        }
        true
    }

    /// The first of the leader's (else first member's) assignors that
    /// every member supports.
    fn select_protocol(&self) -> String {
        let first = self.leader.as_ref().and_then(|l| self.members.get(l)).or_else(|| self.members.values().next());
        let candidates = first.map(|m| m.protocols.clone()).unwrap_or_default();
        candidates
            .iter()
            .map(|(n, _)| n.clone())
            .find(|n| self.members.values().all(|m| m.protocols.iter().any(|(p, _)| p == n)))
            .unwrap_or_default()
    }

    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        if let Some(instance) = instance_id
            && let Some(owner) = self.static_members.get(instance)
            && owner != member_id
        {
            return Err(GroupError::FencedInstanceId(instance.into()));
        }
        if !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId(member_id.into()));
        }
        Ok(())
    }

    /// SyncGroup.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Result<Pending<SyncReply>, GroupError> {
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration { given: generation, current: self.generation });
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Stable => {
                let m = &self.members[member_id];
                Ok(Pending::Now(Ok((m.assignment.clone(), self.protocol.clone().unwrap_or_default()))))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.last_heartbeat = now;
                    m.sync_waiter = Some(tx);
                }
                if self.leader.as_deref() == Some(member_id) {
                    let given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    let protocol = self.protocol.clone().unwrap_or_default();
                    for m in self.members.values_mut() {
                        m.assignment = given.get(&m.member_id).cloned().unwrap_or_default();
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(Ok((m.assignment.clone(), protocol.clone())));
                        }
                    }
                    self.state = GroupState::Stable;
                }
                Ok(Pending::Wait(rx))
            }
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId(member_id.into())),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        self.check_member(member_id, instance_id)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        if self.state == GroupState::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration { given: generation, current: self.generation });
        }
        Ok(())
    }

    /// LeaveGroup (by member id, or by instance id for static members).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        timings: GroupTimings,
    ) -> Result<(), GroupError> {
        let id = match instance_id {
            Some(instance) => self
                .static_members
                .get(instance)
                .cloned()
                .ok_or_else(|| GroupError::UnknownMemberId(instance.into()))?,
            None => member_id.to_string(),
        };
        if !self.members.contains_key(&id) {
            return Err(GroupError::UnknownMemberId(id));
        }
        self.remove_member(&id);
        self.after_membership_change(now, timings);
        Ok(())
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(Err(GroupError::UnknownMemberId(id.into())));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(Err(GroupError::UnknownMemberId(id.into())));
            }
            if let Some(instance) = &m.instance_id
                && self.static_members.get(instance).is_some_and(|owner| owner == id)
            {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    fn become_empty(&mut self, now: Instant) {
        self.state = GroupState::Empty;
        self.generation += 1;
        self.leader = None;
        self.protocol = None;
        self.empty_since = Some(now);
    }

    fn after_membership_change(&mut self, now: Instant, timings: GroupTimings) {
        if self.members.is_empty() {
            if self.state != GroupState::Empty {
                self.become_empty(now);
            }
            return;
        }
        self.prepare_rebalance(now, timings);
        self.try_complete_join(now);
    }

    /// Drops members whose session expired and moves a rebalance on when its
    /// deadline passed. Returns true when the group changed.
    pub fn expire(&mut self, now: Instant, timings: GroupTimings) -> bool {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && now.duration_since(m.last_heartbeat) > m.session_timeout)
            .map(|m| m.member_id.clone())
            .collect();
        let mut changed = false;
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(id);
            changed = true;
        }
        if changed {
            self.after_membership_change(now, timings);
        }
        changed | self.try_complete_join(now)
    }

    /// Which member owns which (topic, partition), from the assignments.
    pub fn owners(&self, decode: impl Fn(&Bytes) -> Vec<(String, u32)>) -> HashMap<(String, u32), String> {
        let mut owners = HashMap::new();
        for m in self.members.values() {
            for tp in decode(&m.assignment) {
                owners.insert(tp, m.member_id.clone());
            }
        }
        owners
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: GroupTimings = GroupTimings { initial_rebalance_delay: Duration::from_millis(0) };

    fn req(member: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            member_id: member.into(),
            instance_id: instance.map(Into::into),
            client_id: "c".into(),
            host: "127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
        }
    }

    fn answer<T: std::fmt::Debug>(p: Pending<T>) -> T {
        match p {
            Pending::Now(v) => v,
            Pending::Wait(mut rx) => rx.try_recv().expect("answered"),
        }
    }

    #[test]
    fn two_members_join_sync_and_rebalance_on_leave() {
        let now = Instant::now();
        let mut g = Group::new("g", now);
        let Pending::Wait(mut rx1) = g.join(req("", None), now, T) else { panic!() };
        // One member, delay 0: completes at once.
        let first = rx1.try_recv().unwrap().unwrap();
        assert_eq!(first.generation, 1);
        assert_eq!(first.leader, first.member_id);
        let a = first.member_id.clone();
        // A second member triggers a rebalance; the first must rejoin.
        let Pending::Wait(mut rx2) = g.join(req("", None), now, T) else { panic!() };
        assert!(rx2.try_recv().is_err(), "waits for the first member");
        assert_eq!(g.heartbeat(&a, None, 1, now), Err(GroupError::RebalanceInProgress));
        let again = answer(g.join(req(&a, None), now, T)).unwrap();
        let second = rx2.try_recv().unwrap().unwrap();
        assert_eq!(again.generation, 2);
        assert_eq!(again.members.len(), 2, "the leader sees every subscription");
        assert!(second.members.is_empty());
        // The leader's SyncGroup hands out assignments.
        let b = second.member_id.clone();
        let Ok(Pending::Wait(mut follower)) = g.sync(&b, None, 2, vec![], now) else { panic!() };
        let leader = answer(
            g.sync(
                &a,
                None,
                2,
                vec![(a.clone(), Bytes::from_static(b"A")), (b.clone(), Bytes::from_static(b"B"))],
                now,
            )
            .unwrap(),
        );
        assert_eq!(leader.unwrap().0, Bytes::from_static(b"A"));
        assert_eq!(follower.try_recv().unwrap().unwrap().0, Bytes::from_static(b"B"));
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(g.heartbeat(&b, None, 1, now), Err(GroupError::IllegalGeneration { given: 1, current: 2 }));
        g.heartbeat(&b, None, 2, now).unwrap();
        // The leader leaves: a rebalance with the remaining member.
        g.leave(&a, None, now, T).unwrap();
        assert_eq!(g.state, GroupState::PreparingRebalance);
        let solo = answer(g.join(req(&b, None), now, T)).unwrap();
        assert_eq!(solo.leader, b);
        assert_eq!(solo.generation, 3);
    }

    #[test]
    fn expired_sessions_leave_and_unknown_members_are_refused() {
        let now = Instant::now();
        let mut g = Group::new("g", now);
        let one = answer(g.join(req("", None), now, T)).unwrap();
        answer(g.sync(&one.member_id, None, 1, vec![(one.member_id.clone(), Bytes::new())], now).unwrap()).unwrap();
        assert!(g.expire(now + Duration::from_secs(11), T));
        assert_eq!(g.state, GroupState::Empty);
        assert!(matches!(g.heartbeat(&one.member_id, None, 1, now), Err(GroupError::UnknownMemberId(_))));
        assert!(matches!(answer(g.join(req("ghost", None), now, T)), Err(GroupError::UnknownMemberId(_))));
    }

    #[test]
    fn a_restarted_static_member_gets_its_assignment_back_without_a_rebalance() {
        let now = Instant::now();
        let mut g = Group::new("g", now);
        let one = answer(g.join(req("", Some("worker-1")), now, T)).unwrap();
        answer(g.sync(&one.member_id, None, 1, vec![(one.member_id.clone(), Bytes::from_static(b"P0"))], now).unwrap())
            .unwrap();
        // Restart: new process, empty member id, same instance id.
        let back = answer(g.join(req("", Some("worker-1")), now, T)).unwrap();
        assert!(back.skip_assignment);
        assert_eq!(back.generation, 1, "no rebalance");
        assert_ne!(back.member_id, one.member_id);
        let (assignment, _) = answer(g.sync(&back.member_id, Some("worker-1"), 1, vec![], now).unwrap()).unwrap();
        assert_eq!(assignment, Bytes::from_static(b"P0"));
        // The old incarnation is fenced.
        assert_eq!(
            g.heartbeat(&one.member_id, Some("worker-1"), 1, now),
            Err(GroupError::FencedInstanceId("worker-1".into()))
        );
    }
}
