//! Group membership: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, on the same coordinator as gRPC members (the leader of the
//! group's `__consumer_offsets` partition), so a Kafka client and a kmon
//! client can be members of one group.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kmon_broker::Broker;
use kmon_broker::controller::state::acls::{AclOperation, Resource};
use kmon_broker::group::GroupError;
use kmon_broker::group::membership::JoinRequest;

use super::cluster::endpoint;
use super::{Client, text};
use crate::error::error_code;

/// FindCoordinator's key types.
const GROUP: i8 = 0;

struct Found {
    id: i32,
    host: String,
    port: i32,
}

async fn coordinator(broker: &Broker, principal: &str, key: &str, key_type: i8) -> Result<Found, (i16, String)> {
    if key_type != GROUP {
        return Err((
            ResponseError::CoordinatorNotAvailable.code(),
            "kmon has no transaction coordinator yet (transactions are not supported)".into(),
        ));
    }
    broker
        .authorizer
        .authorize(principal, AclOperation::Describe, &Resource::group(key))
        .map_err(|err| (error_code(&err), err.to_string()))?;
    let (id, _) = broker.groups.find_coordinator(key).await.map_err(|err| (error_code(&err), err.to_string()))?;
    let state = broker.metadata();
    match state.brokers.get(&id).and_then(endpoint) {
        Some(e) => Ok(Found { id, host: e.host, port: e.port }),
        None => Err((
            ResponseError::CoordinatorNotAvailable.code(),
            format!("coordinator broker {id} serves no Kafka listener right now"),
        )),
    }
}

pub async fn find_coordinator(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
    principal: &str,
) -> FindCoordinatorResponse {
    if version < 4 {
        return match coordinator(broker, principal, req.key.as_str(), req.key_type).await {
            Ok(f) => FindCoordinatorResponse::default()
                .with_node_id(BrokerId(f.id))
                .with_host(text(f.host))
                .with_port(f.port),
            Err((code, message)) => FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_error_message(Some(text(message)))
                .with_node_id(BrokerId(-1))
                .with_port(-1),
        };
    }
    let mut coordinators = Vec::with_capacity(req.coordinator_keys.len());
    for key in req.coordinator_keys {
        let answer = match coordinator(broker, principal, key.as_str(), req.key_type).await {
            Ok(f) => Coordinator::default().with_node_id(BrokerId(f.id)).with_host(text(f.host)).with_port(f.port),
            Err((code, message)) => Coordinator::default()
                .with_error_code(code)
                .with_error_message(Some(text(message)))
                .with_node_id(BrokerId(-1))
                .with_port(-1),
        };
        coordinators.push(answer.with_key(key));
    }
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

fn opt(s: &Option<StrBytes>) -> Option<&str> {
    s.as_ref().map(|s| s.as_str()).filter(|s| !s.is_empty())
}

pub async fn join(broker: &Broker, req: JoinGroupRequest, version: i16, client: Client<'_>) -> JoinGroupResponse {
    // v0 has no rebalance timeout: the session timeout bounds the rebalance.
    let rebalance_timeout = if version == 0 { req.session_timeout_ms } else { req.rebalance_timeout_ms };
    let request = JoinRequest {
        member_id: req.member_id.as_str().to_string(),
        instance_id: opt(&req.group_instance_id).map(Into::into),
        client_id: client.id.to_string(),
        host: client.peer.ip().to_string(),
        session_timeout: millis(req.session_timeout_ms),
        rebalance_timeout: millis(rebalance_timeout.max(req.session_timeout_ms)),
        protocol_type: req.protocol_type.as_str().to_string(),
        protocols: req.protocols.into_iter().map(|p| (p.name.as_str().to_string(), p.metadata)).collect(),
    };
    let group = req.group_id.0.as_str();
    let joined = match broker.authorizer.authorize(client.principal, AclOperation::Read, &Resource::group(group)) {
        Ok(()) => broker.groups.join(group, request).await,
        Err(err) => Err(err),
    };
    match joined {
        Ok(outcome) => JoinGroupResponse::default()
            .with_generation_id(outcome.generation)
            .with_protocol_type(Some(req.protocol_type))
            .with_protocol_name(Some(text(outcome.protocol)))
            .with_leader(text(outcome.leader))
            .with_member_id(text(outcome.member_id))
            .with_members(
                outcome
                    .members
                    .into_iter()
                    .map(|(member_id, instance, metadata)| {
                        JoinGroupResponseMember::default()
                            .with_member_id(text(member_id))
                            .with_group_instance_id(instance.map(text))
                            .with_metadata(metadata)
                    })
                    .collect(),
            ),
        Err(err) => JoinGroupResponse::default()
            .with_error_code(error_code(&err))
            .with_generation_id(-1)
            .with_protocol_name(Some(StrBytes::default()))
            .with_member_id(req.member_id),
    }
}

/// Read on the group: what sync, heartbeat and leave need (as Kafka).
fn may_read_group(broker: &Broker, principal: &str, group: &str) -> Result<(), kmon_broker::BrokerError> {
    broker.authorizer.authorize(principal, AclOperation::Read, &Resource::group(group))
}

pub async fn sync(broker: &Broker, req: SyncGroupRequest, principal: &str) -> SyncGroupResponse {
    let assignments = req.assignments.into_iter().map(|a| (a.member_id.as_str().to_string(), a.assignment)).collect();
    let group = req.group_id.0.as_str();
    let synced = match may_read_group(broker, principal, group) {
        Ok(()) => {
            let member = req.member_id.as_str();
            broker.groups.sync(group, member, opt(&req.group_instance_id), req.generation_id, assignments).await
        }
        Err(err) => Err(err),
    };
    match synced {
        Ok((assignment, protocol)) => SyncGroupResponse::default()
            .with_assignment(assignment)
            .with_protocol_type(req.protocol_type)
            .with_protocol_name(Some(text(protocol))),
        Err(err) => SyncGroupResponse::default().with_error_code(error_code(&err)),
    }
}

pub fn heartbeat(broker: &Broker, req: HeartbeatRequest, principal: &str) -> HeartbeatResponse {
    let group = req.group_id.0.as_str();
    let result = may_read_group(broker, principal, group).and_then(|()| {
        broker.groups.heartbeat(group, req.member_id.as_str(), opt(&req.group_instance_id), req.generation_id)
    });
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |err| error_code(&err)))
}

/// v0–v2 name one member; v3+ a batch, each answered on its own.
pub fn leave(broker: &Broker, req: LeaveGroupRequest, version: i16, principal: &str) -> LeaveGroupResponse {
    let group = req.group_id.0.as_str();
    if let Err(err) = may_read_group(broker, principal, group) {
        return LeaveGroupResponse::default().with_error_code(error_code(&err));
    }
    if version < 3 {
        let result = broker.groups.leave(group, req.member_id.as_str(), None);
        return LeaveGroupResponse::default().with_error_code(result.err().map_or(0, |err| error_code(&err)));
    }
    let mut top = 0;
    let members = req
        .members
        .into_iter()
        .map(|m| {
            let result = broker.groups.leave(group, m.member_id.as_str(), opt(&m.group_instance_id));
            let code = match result {
                Ok(()) => 0,
                Err(err) => {
                    // Errors about the group, not the member, go on top, as Kafka does.
                    if matches!(
                        &err,
                        kmon_broker::BrokerError::Group(
                            GroupError::NotCoordinator
                                | GroupError::CoordinatorNotAvailable(_)
                                | GroupError::CoordinatorLoadInProgress
                        )
                    ) {
                        top = error_code(&err);
                    }
                    error_code(&err)
                }
            };
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_error_code(top).with_members(members)
}
