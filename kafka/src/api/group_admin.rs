//! ListGroups (the groups this broker coordinates, as in Kafka: admin
//! clients ask every broker), DescribeGroups and DeleteGroups (on each
//! group's coordinator).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse,
};
use kmon_broker::controller::state::acls::{AclOperation, Resource};
use kmon_broker::group::GroupError;
use kmon_broker::{Broker, BrokerError};

use super::text;
use crate::error::error_code;

/// Groups listed: those the principal may Describe (all of them with
/// Describe on the cluster), as Kafka.
pub fn list(broker: &Broker, req: ListGroupsRequest, principal: &str) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.as_str().to_lowercase()).collect();
    let everything = broker.authorizer.allows(principal, AclOperation::Describe, &Resource::cluster());
    let groups = broker
        .groups
        .list_groups()
        .into_iter()
        .filter(|(_, state, ..)| states.is_empty() || states.contains(&state.as_str().to_lowercase()))
        .filter(|(group, ..)| {
            everything || broker.authorizer.allows(principal, AclOperation::Describe, &Resource::group(group))
        })
        .map(|(group_id, state, protocol_type, ..)| {
            ListedGroup::default()
                .with_group_id(GroupId(text(group_id)))
                .with_protocol_type(text(protocol_type))
                .with_group_state(text(state.as_str()))
                .with_group_type(text("classic"))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub fn describe(broker: &Broker, req: DescribeGroupsRequest, principal: &str) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|group_id| {
            let group = group_id.0.as_str();
            let described = broker
                .authorizer
                .authorize(principal, AclOperation::Describe, &Resource::group(group))
                .and_then(|()| broker.groups.describe(group));
            match described {
                Ok(view) => DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_group_state(text(view.state.as_str()))
                    .with_protocol_type(text(view.protocol_type))
                    .with_protocol_data(text(view.protocol))
                    .with_members(
                        view.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(text(m.member_id))
                                    .with_group_instance_id(m.instance_id.map(text))
                                    .with_client_id(text(m.client_id))
                                    .with_client_host(text(format!("/{}", m.host)))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment_bytes)
                            })
                            .collect(),
                    ),
                // Kafka describes a group it does not know as Dead, without error.
                Err(BrokerError::Group(GroupError::GroupIdNotFound(_))) => {
                    DescribedGroup::default().with_group_id(group_id).with_group_state(text("Dead"))
                }
                Err(err) => DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(error_code(&err))
                    .with_error_message(Some(text(err.to_string()))),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn delete(broker: &Broker, req: DeleteGroupsRequest, principal: &str) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for group_id in req.groups_names {
        let group = group_id.0.as_str();
        let deleted = match broker.authorizer.authorize(principal, AclOperation::Delete, &Resource::group(group)) {
            Ok(()) => broker.groups.delete(group).await,
            Err(err) => Err(err),
        };
        let code = deleted.err().map_or(0, |err| error_code(&err));
        results.push(DeletableGroupResult::default().with_group_id(group_id).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}
