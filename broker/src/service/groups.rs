//! The consumer-group RPCs: FindCoordinator, JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
//! DescribeGroup, DeleteGroup. Wire ↔ domain only; the coordinator
//! (`group::coordinator`) does the work. DescribeGroups, which gathers from
//! every coordinator, is in `describe_groups`.

use std::time::Duration;

use kmon_proto::v1::*;
use tonic::Status;

use crate::broker::Broker;
use crate::group::coordinator::GroupView;
use crate::group::membership::JoinRequest;

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

pub(super) async fn find_coordinator(
    broker: &Broker,
    req: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, Status> {
    let (node_id, address) = broker.groups.find_coordinator(&req.group_id).await?;
    Ok(FindCoordinatorResponse { node_id, address })
}

pub(super) async fn join(broker: &Broker, req: JoinGroupRequest, host: String) -> Result<JoinGroupResponse, Status> {
    let request = JoinRequest {
        member_id: req.member_id,
        instance_id: opt(&req.group_instance_id).map(Into::into),
        client_id: req.client_id,
        host,
        session_timeout: Duration::from_millis(u64::from(req.session_timeout_ms)),
        rebalance_timeout: Duration::from_millis(u64::from(req.rebalance_timeout_ms.max(req.session_timeout_ms))),
        protocol_type: req.protocol_type,
        protocols: req.protocols.into_iter().map(|p| (p.name, p.metadata)).collect(),
    };
    let outcome = broker.groups.join(&req.group_id, request).await?;
    Ok(JoinGroupResponse {
        generation_id: outcome.generation,
        protocol_name: outcome.protocol,
        leader: outcome.leader,
        member_id: outcome.member_id,
        members: outcome
            .members
            .into_iter()
            .map(|(member_id, instance, metadata)| JoinGroupMember {
                member_id,
                group_instance_id: instance.unwrap_or_default(),
                metadata,
            })
            .collect(),
        skip_assignment: outcome.skip_assignment,
    })
}

pub(super) async fn sync(broker: &Broker, req: SyncGroupRequest) -> Result<SyncGroupResponse, Status> {
    let assignments = req.assignments.into_iter().map(|a| (a.member_id, a.assignment)).collect();
    let (assignment, protocol_name) = broker
        .groups
        .sync(&req.group_id, &req.member_id, opt(&req.group_instance_id), req.generation_id, assignments)
        .await?;
    Ok(SyncGroupResponse { assignment, protocol_name })
}

pub(super) fn heartbeat(broker: &Broker, req: HeartbeatRequest) -> Result<HeartbeatResponse, Status> {
    broker.groups.heartbeat(&req.group_id, &req.member_id, opt(&req.group_instance_id), req.generation_id)?;
    Ok(HeartbeatResponse {})
}

pub(super) fn leave(broker: &Broker, req: LeaveGroupRequest) -> Result<LeaveGroupResponse, Status> {
    broker.groups.leave(&req.group_id, &req.member_id, opt(&req.group_instance_id))?;
    Ok(LeaveGroupResponse {})
}

pub(super) async fn commit(broker: &Broker, req: OffsetCommitRequest) -> Result<OffsetCommitResponse, Status> {
    let offsets = req.partitions.into_iter().map(|p| (p.topic, p.partition, p.offset, p.metadata)).collect();
    broker
        .groups
        .commit(&req.group_id, req.generation_id, &req.member_id, opt(&req.group_instance_id), offsets)
        .await?;
    Ok(OffsetCommitResponse {})
}

pub(super) fn fetch_offsets(broker: &Broker, req: OffsetFetchRequest) -> Result<OffsetFetchResponse, Status> {
    let wanted: Vec<(String, u32)> = req.partitions.into_iter().map(|tp| (tp.topic, tp.partition)).collect();
    let found = broker.groups.fetch_offsets(&req.group_id, &wanted)?;
    Ok(OffsetFetchResponse {
        partitions: found
            .into_iter()
            .map(|(topic, partition, value)| CommittedOffset {
                topic,
                partition,
                offset: value.as_ref().map_or(-1, |v| v.offset),
                metadata: value.as_ref().map(|v| v.metadata.clone()).unwrap_or_default(),
                commit_timestamp_ms: value.map_or(-1, |v| v.commit_timestamp_ms),
            })
            .collect(),
    })
}

pub(super) fn list(broker: &Broker) -> Result<ListGroupsResponse, Status> {
    let coordinator_id = broker.config.broker_id;
    Ok(ListGroupsResponse {
        groups: broker
            .groups
            .list_groups()
            .into_iter()
            .map(|(group_id, state, protocol_type, members, status)| GroupListing {
                group_id,
                state: state.as_str().into(),
                protocol_type,
                coordinator_id,
                members: members as u32,
                status: status.as_str().into(),
            })
            .collect(),
    })
}

pub(super) fn describe(broker: &Broker, req: DescribeGroupRequest) -> Result<DescribeGroupResponse, Status> {
    let view = broker.groups.describe(&req.group_id)?;
    Ok(description(view, broker.config.broker_id))
}

/// A group's view on the wire (`DescribeGroup`, and each group of
/// `DescribeGroups`).
pub(super) fn description(view: GroupView, coordinator_id: i32) -> DescribeGroupResponse {
    DescribeGroupResponse {
        group_id: view.group_id,
        state: view.state.as_str().into(),
        protocol_type: view.protocol_type,
        protocol: view.protocol,
        status: view.status.as_str().into(),
        generation_id: view.generation,
        coordinator_id,
        members: view
            .members
            .into_iter()
            .map(|m| GroupMemberDescription {
                member_id: m.member_id,
                group_instance_id: m.instance_id.unwrap_or_default(),
                client_id: m.client_id,
                host: m.host,
                assignment: m
                    .assignment
                    .into_iter()
                    .map(|(topic, partition)| TopicPartition { topic, partition })
                    .collect(),
            })
            .collect(),
        partitions: view
            .partitions
            .into_iter()
            .map(|p| PartitionLag {
                topic: p.topic,
                partition: p.partition,
                committed_offset: p.committed_offset,
                log_end_offset: p.log_end_offset,
                high_watermark: p.high_watermark,
                lag: p.lag,
                status: p.status.as_str().into(),
                owner: p.owner,
            })
            .collect(),
    }
}

pub(super) async fn delete(broker: &Broker, req: DeleteGroupRequest) -> Result<DeleteGroupResponse, Status> {
    broker.groups.delete(&req.group_id).await?;
    Ok(DeleteGroupResponse {})
}
