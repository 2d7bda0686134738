//! One module per Kafka API (or per small family of them): each converts
//! the Kafka request to broker calls and the outcome to the Kafka response,
//! with errors per partition, member or resource as Kafka reports them.

pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod epochs;
pub mod fetch;
pub mod group_admin;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod sasl;
pub mod topics;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use kmon_broker::Broker;
use tokio_util::sync::CancellationToken;

use crate::frame::Request;

/// A handled request: its response (None: acks=0 produce, never answered)
/// and the time it waited on others (replicas, new data, the quorum).
#[derive(Debug)]
pub struct Handled {
    pub response: Option<ResponseKind>,
    pub remote: Duration,
}

/// Who sent the request.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub id: &'a str,
    pub peer: SocketAddr,
    /// What ACLs are checked against: `User:NAME` of the connection's
    /// client certificate (mutual TLS), else `User:ANONYMOUS`.
    pub principal: &'a str,
}

pub async fn handle(
    broker: &Broker,
    request: Request,
    peer: SocketAddr,
    principal: &str,
    shutdown: &CancellationToken,
) -> Handled {
    let Request { version, header, body, .. } = request;
    let client = Client { id: header.client_id.as_ref().map_or("", |c| c.as_str()), peer, principal };
    let mut remote = Duration::ZERO;
    let started = Instant::now();
    let response = match body {
        RequestKind::ApiVersions(_) => Some(ResponseKind::ApiVersions(api_versions::handle())),
        RequestKind::Metadata(r) => Some(ResponseKind::Metadata(metadata::handle(broker, r, version, principal))),
        RequestKind::Produce(r) => produce::handle(broker, r, principal, &mut remote).await.map(ResponseKind::Produce),
        RequestKind::Fetch(r) => {
            Some(ResponseKind::Fetch(fetch::handle(broker, r, principal, shutdown, &mut remote).await))
        }
        RequestKind::ListOffsets(r) => Some(ResponseKind::ListOffsets(list_offsets::handle(broker, r, principal))),
        RequestKind::OffsetForLeaderEpoch(r) => Some(ResponseKind::OffsetForLeaderEpoch(epochs::handle(broker, r))),
        RequestKind::FindCoordinator(r) => {
            Some(ResponseKind::FindCoordinator(groups::find_coordinator(broker, r, version, principal).await))
        }
        RequestKind::JoinGroup(r) => {
            let response = groups::join(broker, r, version, client).await;
            remote = started.elapsed();
            Some(ResponseKind::JoinGroup(response))
        }
        RequestKind::SyncGroup(r) => {
            let response = groups::sync(broker, r).await;
            remote = started.elapsed();
            Some(ResponseKind::SyncGroup(response))
        }
        RequestKind::Heartbeat(r) => Some(ResponseKind::Heartbeat(groups::heartbeat(broker, r))),
        RequestKind::LeaveGroup(r) => Some(ResponseKind::LeaveGroup(groups::leave(broker, r, version))),
        RequestKind::OffsetCommit(r) => {
            let response = offsets::commit(broker, r, principal).await;
            remote = started.elapsed();
            Some(ResponseKind::OffsetCommit(response))
        }
        RequestKind::OffsetFetch(r) => Some(ResponseKind::OffsetFetch(offsets::fetch(broker, r, version, principal))),
        RequestKind::ListGroups(r) => Some(ResponseKind::ListGroups(group_admin::list(broker, r))),
        RequestKind::DescribeGroups(r) => Some(ResponseKind::DescribeGroups(group_admin::describe(broker, r))),
        RequestKind::DeleteGroups(r) => {
            let response = group_admin::delete(broker, r).await;
            remote = started.elapsed();
            Some(ResponseKind::DeleteGroups(response))
        }
        RequestKind::CreateTopics(r) => {
            let response = topics::create(broker, r, principal).await;
            remote = started.elapsed();
            Some(ResponseKind::CreateTopics(response))
        }
        RequestKind::DeleteTopics(r) => {
            let response = topics::delete(broker, r, principal).await;
            remote = started.elapsed();
            Some(ResponseKind::DeleteTopics(response))
        }
        RequestKind::DescribeConfigs(r) => Some(ResponseKind::DescribeConfigs(configs::describe(broker, r))),
        RequestKind::DescribeCluster(r) => Some(ResponseKind::DescribeCluster(cluster::describe(broker, r))),
        RequestKind::InitProducerId(r) => {
            let response = producer_id::handle(broker, r, client).await;
            remote = started.elapsed();
            Some(ResponseKind::InitProducerId(response))
        }
        // `frame::decode_request` yields only the APIs of `versions::SERVED`;
        // the SASL ones are the connection's (`server`, `sasl`).
        other => unreachable!("unserved API decoded: {:?}", std::mem::discriminant(&other)),
    };
    Handled { response, remote }
}

pub(crate) fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: impl Into<String>) -> TopicName {
    TopicName(text(s))
}

/// This broker's leader epoch of a partition (-1 when it leads none),
/// checked against the one the client names (Kafka's fencing, KIP-320): an
/// older epoch is fenced; a newer one means this broker has not caught up
/// with the metadata yet. -1 from the client: no check.
pub(crate) fn checked_leader_epoch(broker: &Broker, topic: &str, partition: u32, requested: i32) -> Result<i32, i16> {
    use kafka_protocol::ResponseError as K;
    let current = broker.replicas.get(topic, partition).and_then(|h| h.leader_epoch()).unwrap_or(-1);
    match requested {
        r if r < 0 || r == current => Ok(current),
        r if r < current => Err(K::FencedLeaderEpoch.code()),
        _ => Err(K::UnknownLeaderEpoch.code()),
    }
}
