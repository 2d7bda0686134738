//! The consumer-group calls of [`Admin`]: each goes to the group's
//! coordinator (found and retried by `coordinator`), except `list_groups`,
//! which asks every broker (each answers the groups it coordinates) and
//! merges, and `describe_groups`, which asks any broker to gather them.

use std::collections::BTreeMap;

use futures::future::join_all;
use kmon_proto::v1 as pb;

use super::coordinator::Coordinator;
use super::member::NO_GENERATION;
use super::types::{CommittedOffset, GroupDescription, GroupDescriptions, GroupListing};
use crate::admin::Admin;
use crate::error::ClientError;
use crate::types::TopicPartition;

impl Admin {
    fn coordinator(&self, group_id: &str) -> Coordinator {
        Coordinator::new(self.router.clone(), group_id)
    }

    /// Every group of the cluster, sorted by id: `ListGroups` on every
    /// broker of `Metadata`, merged. Brokers that cannot be reached are
    /// skipped (their groups moved with the offsets partitions' leaders);
    /// if none answers, the last error is returned.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        let metadata = self.router.metadata(&[]).await?;
        let mut addresses: Vec<String> =
            metadata.brokers.iter().filter(|b| b.alive && !b.address.is_empty()).map(|b| b.address.clone()).collect();
        if addresses.is_empty() {
            addresses = metadata.brokers.iter().map(|b| b.address.clone()).filter(|a| !a.is_empty()).collect();
        }
        let calls = addresses.iter().map(|address| async move {
            let result = match self.router.client(address).await {
                Err(err) => Err(err),
                Ok(mut client) => client
                    .list_groups(pb::ListGroupsRequest {})
                    .await
                    .map(|response| response.into_inner().groups)
                    .map_err(ClientError::from),
            };
            if let Err(err) = &result {
                self.router.note_failure(address, err);
            }
            (address, result)
        });
        let mut merged: BTreeMap<String, GroupListing> = BTreeMap::new();
        let mut answered = false;
        let mut last_error = None;
        for (address, result) in join_all(calls).await {
            match result {
                Ok(groups) => {
                    answered = true;
                    for group in groups {
                        merged.entry(group.group_id.clone()).or_insert_with(|| group.into());
                    }
                }
                Err(err) => {
                    tracing::warn!(%address, error = %err, "a broker did not list its groups");
                    last_error = Some(err);
                }
            }
        }
        match (answered, last_error) {
            (false, Some(err)) => Err(err),
            _ => Ok(merged.into_values().collect()),
        }
    }

    /// State, members and per-partition lag of a group (GROUP_ID_NOT_FOUND
    /// for an unknown group).
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription, ClientError> {
        let request = pb::DescribeGroupRequest { group_id: group_id.to_owned() };
        let response = self
            .coordinator(group_id)
            .request(|mut client| {
                let request = request.clone();
                async move { client.describe_group(request).await }
            })
            .await?;
        Ok(response.into())
    }

    /// Every group of the cluster (`group_ids` empty) or the listed ones,
    /// described in one `DescribeGroups` call to any broker, which gathers
    /// from the other coordinators: one RPC instead of a `FindCoordinator`
    /// and a `DescribeGroup` per group. Coordinators that did not answer
    /// are named in `unavailable`; unknown ids are left out.
    pub async fn describe_groups(&self, group_ids: &[&str]) -> Result<GroupDescriptions, ClientError> {
        let request = pb::DescribeGroupsRequest {
            group_ids: group_ids.iter().map(|g| (*g).to_owned()).collect(),
            local_only: false,
        };
        let response = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.describe_groups(request).await }
            })
            .await?;
        Ok(response.into())
    }

    /// Deletes an empty group and its committed offsets (NON_EMPTY_GROUP
    /// while it has members, GROUP_ID_NOT_FOUND for an unknown group).
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ClientError> {
        let request = pb::DeleteGroupRequest { group_id: group_id.to_owned() };
        self.coordinator(group_id)
            .request(|mut client| {
                let request = request.clone();
                async move { client.delete_group(request).await }
            })
            .await?;
        Ok(())
    }

    /// The group's committed offsets for `partitions` (empty: every
    /// partition it has committed); `offset` is `None` where nothing was
    /// committed.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<CommittedOffset>, ClientError> {
        fetch_offsets(&self.coordinator(group_id), partitions).await
    }

    /// Sets the group's committed offsets (an admin commit: generation -1,
    /// no member id). The coordinator refuses it with NON_EMPTY_GROUP while
    /// the group has members.
    pub async fn reset_offsets(
        &self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        let request = commit_request(group_id, NO_GENERATION, "", None, offsets);
        self.coordinator(group_id)
            .request(|mut client| {
                let request = request.clone();
                async move { client.offset_commit(request).await }
            })
            .await?;
        Ok(())
    }
}

pub(crate) async fn fetch_offsets(
    coordinator: &Coordinator,
    partitions: &[TopicPartition],
) -> Result<Vec<CommittedOffset>, ClientError> {
    let request = pb::OffsetFetchRequest {
        group_id: coordinator.group_id().to_owned(),
        partitions: partitions.iter().map(Into::into).collect(),
    };
    let response = coordinator
        .request(|mut client| {
            let request = request.clone();
            async move { client.offset_fetch(request).await }
        })
        .await?;
    Ok(response.partitions.into_iter().map(Into::into).collect())
}

pub(crate) fn commit_request(
    group_id: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> pb::OffsetCommitRequest {
    pb::OffsetCommitRequest {
        group_id: group_id.to_owned(),
        generation_id: generation,
        member_id: member_id.to_owned(),
        group_instance_id: instance_id.unwrap_or_default().to_owned(),
        partitions: offsets
            .iter()
            .map(|(tp, &offset)| pb::OffsetCommitPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
                metadata: String::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_commit_has_no_generation_and_no_member() {
        let offsets = BTreeMap::from([(TopicPartition::new("t", 1), 42), (TopicPartition::new("t", 0), 7)]);
        let request = commit_request("g", NO_GENERATION, "", None, &offsets);
        assert_eq!(request.generation_id, -1);
        assert!(request.member_id.is_empty() && request.group_instance_id.is_empty());
        let sent: Vec<(u32, i64)> = request.partitions.iter().map(|p| (p.partition, p.offset)).collect();
        assert_eq!(sent, [(0, 7), (1, 42)]);
    }
}
