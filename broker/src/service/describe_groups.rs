//! `DescribeGroups`: every group of the cluster (or the listed ones) in one
//! call, for `kmon tui` and `kmon status`.
//!
//! Groups live on their coordinators (the leaders of the `__consumer_offsets`
//! partitions), so the broker asked answers its own groups and asks every
//! other coordinator, concurrently, for theirs (`local_only`, so the call
//! does not fan out again). A coordinator that does not answer within
//! [`PEER_TIMEOUT`] is named in `unavailable`, and its groups are missing
//! from the answer rather than failing it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use kmon_proto::v1::kmon_client::KmonClient;
use kmon_proto::v1::{DescribeGroupsRequest, DescribeGroupsResponse, UnavailableCoordinator};
use tonic::Status;

use super::groups::description;
use crate::broker::Broker;
use crate::controller::state::NO_LEADER;
use crate::group::OFFSETS_TOPIC;
use crate::group::records::partition_for;

/// Bound on one other coordinator's answer: below the clients' own
/// timeouts (the TUI's is 2 s), so a dead peer costs a note, not the call.
const PEER_TIMEOUT: Duration = Duration::from_millis(1500);

pub(super) async fn handle(broker: &Broker, req: DescribeGroupsRequest) -> Result<DescribeGroupsResponse, Status> {
    let me = broker.config.broker_id;
    let local = || broker.groups.describe_many(&req.group_ids).into_iter().map(|v| description(v, me)).collect();
    if req.local_only {
        return Ok(DescribeGroupsResponse { groups: local(), unavailable: Vec::new() });
    }

    let (peers, mut unavailable) = coordinators(broker, &req.group_ids);
    let asked = peers.into_iter().filter(|(id, _)| *id != me).map(|(id, address)| {
        let request = DescribeGroupsRequest { group_ids: req.group_ids.clone(), local_only: true };
        async move {
            let call = async {
                let channel = broker.groups.remote_channel(&address).map_err(|e| e.to_string())?;
                let response = KmonClient::new(channel)
                    .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
                    .describe_groups(request)
                    .await
                    .map_err(|s| s.message().to_owned())?;
                Ok::<_, String>(response.into_inner().groups)
            };
            let result = match tokio::time::timeout(PEER_TIMEOUT, call).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {PEER_TIMEOUT:?}")),
            };
            (id, address, result)
        }
    });
    let mut groups: Vec<_> = local();
    for (broker_id, address, result) in join_all(asked).await {
        match result {
            Ok(theirs) => groups.extend(theirs),
            Err(error) => {
                tracing::debug!(broker_id, %address, %error, "a coordinator did not describe its groups");
                unavailable.push(UnavailableCoordinator { broker_id, address, error });
            }
        }
    }
    // A group whose offsets partition just moved may be answered twice.
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    groups.dedup_by(|a, b| a.group_id == b.group_id);
    Ok(DescribeGroupsResponse { groups, unavailable })
}

/// The coordinators to ask (broker id → address): the leaders of the
/// offsets partitions holding `group_ids` (every partition when empty);
/// partitions without a reachable leader come back as unavailable.
fn coordinators(broker: &Broker, group_ids: &[String]) -> (BTreeMap<i32, String>, Vec<UnavailableCoordinator>) {
    let state = broker.controller.state();
    let state = state.borrow();
    let Some(topic) = state.topics.get(OFFSETS_TOPIC) else {
        return (BTreeMap::new(), Vec::new());
    };
    let count = topic.partitions.len() as u32;
    let wanted: BTreeSet<u32> = if group_ids.is_empty() {
        (0..count).collect()
    } else {
        group_ids.iter().map(|g| partition_for(g, count)).collect()
    };
    let mut peers = BTreeMap::new();
    let mut unavailable = Vec::new();
    for p in wanted {
        let leader = topic.partitions[p as usize].leader;
        match state.brokers.get(&leader) {
            Some(b) if leader != NO_LEADER && !b.fenced => {
                peers.insert(leader, b.address.clone());
            }
            _ => unavailable.push(UnavailableCoordinator {
                broker_id: leader,
                address: String::new(),
                error: format!("{OFFSETS_TOPIC}-{p} has no live leader"),
            }),
        }
    }
    (peers, unavailable)
}
