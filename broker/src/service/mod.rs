//! The gRPC API (`kmon.v1.Kmon`): one file per RPC, each converting wire
//! types to the broker's domain calls. Errors become statuses only in
//! `status`.

mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod produce;
pub mod replication;
pub mod status;
mod topics;

use std::sync::Arc;

use kmon_proto::v1::kmon_server::{Kmon, KmonServer};
use kmon_proto::v1::*;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::broker::Broker;

/// Largest gRPC message accepted or sent (a fetch response carries up to
/// `max_bytes` of batches).
pub const MAX_MESSAGE_BYTES: usize = 128 << 20;

#[derive(Debug, Clone)]
pub struct KmonService {
    broker: Arc<Broker>,
    shutdown: CancellationToken,
}

impl KmonService {
    pub fn new(broker: Arc<Broker>, shutdown: CancellationToken) -> Self {
        KmonService { broker, shutdown }
    }

    pub fn into_server(self) -> KmonServer<Self> {
        KmonServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES).max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl Kmon for KmonService {
    async fn create_topic(&self, req: Request<CreateTopicRequest>) -> Result<Response<CreateTopicResponse>, Status> {
        self.broker.metrics.request("CreateTopics");
        topics::create(&self.broker, req.into_inner()).await.map(Response::new)
    }

    async fn list_topics(&self, _req: Request<ListTopicsRequest>) -> Result<Response<ListTopicsResponse>, Status> {
        self.broker.metrics.request("Metadata");
        topics::list(&self.broker).map(Response::new)
    }

    async fn describe_topic(
        &self,
        req: Request<DescribeTopicRequest>,
    ) -> Result<Response<DescribeTopicResponse>, Status> {
        self.broker.metrics.request("DescribeConfigs");
        topics::describe(&self.broker, req.into_inner()).map(Response::new)
    }

    async fn delete_topic(&self, req: Request<DeleteTopicRequest>) -> Result<Response<DeleteTopicResponse>, Status> {
        self.broker.metrics.request("DeleteTopics");
        topics::delete(&self.broker, req.into_inner()).await.map(Response::new)
    }

    async fn produce(&self, req: Request<ProduceRequest>) -> Result<Response<ProduceResponse>, Status> {
        self.broker.metrics.request("Produce");
        produce::handle(&self.broker, req.into_inner()).await.map(Response::new)
    }

    async fn fetch(&self, req: Request<FetchRequest>) -> Result<Response<FetchResponse>, Status> {
        self.broker.metrics.request("Fetch");
        fetch::handle(&self.broker, req.into_inner(), &self.shutdown).await.map(Response::new)
    }

    async fn list_offsets(&self, req: Request<ListOffsetsRequest>) -> Result<Response<ListOffsetsResponse>, Status> {
        self.broker.metrics.request("ListOffsets");
        list_offsets::handle(&self.broker, req.into_inner()).map(Response::new)
    }

    async fn metadata(&self, req: Request<MetadataRequest>) -> Result<Response<MetadataResponse>, Status> {
        self.broker.metrics.request("Metadata");
        metadata::handle(&self.broker, req.into_inner()).map(Response::new)
    }

    async fn find_coordinator(
        &self,
        req: Request<FindCoordinatorRequest>,
    ) -> Result<Response<FindCoordinatorResponse>, Status> {
        self.broker.metrics.request("FindCoordinator");
        groups::find_coordinator(&self.broker, req.into_inner()).await.map(Response::new)
    }

    async fn join_group(&self, req: Request<JoinGroupRequest>) -> Result<Response<JoinGroupResponse>, Status> {
        self.broker.metrics.request("JoinGroup");
        let host = req.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default();
        groups::join(&self.broker, req.into_inner(), host).await.map(Response::new)
    }

    async fn sync_group(&self, req: Request<SyncGroupRequest>) -> Result<Response<SyncGroupResponse>, Status> {
        self.broker.metrics.request("SyncGroup");
        groups::sync(&self.broker, req.into_inner()).await.map(Response::new)
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        self.broker.metrics.request("Heartbeat");
        groups::heartbeat(&self.broker, req.into_inner()).map(Response::new)
    }

    async fn leave_group(&self, req: Request<LeaveGroupRequest>) -> Result<Response<LeaveGroupResponse>, Status> {
        self.broker.metrics.request("LeaveGroup");
        groups::leave(&self.broker, req.into_inner()).map(Response::new)
    }

    async fn offset_commit(&self, req: Request<OffsetCommitRequest>) -> Result<Response<OffsetCommitResponse>, Status> {
        self.broker.metrics.request("OffsetCommit");
        groups::commit(&self.broker, req.into_inner()).await.map(Response::new)
    }

    async fn offset_fetch(&self, req: Request<OffsetFetchRequest>) -> Result<Response<OffsetFetchResponse>, Status> {
        self.broker.metrics.request("OffsetFetch");
        groups::fetch_offsets(&self.broker, req.into_inner()).map(Response::new)
    }

    async fn list_groups(&self, _req: Request<ListGroupsRequest>) -> Result<Response<ListGroupsResponse>, Status> {
        self.broker.metrics.request("ListGroups");
        groups::list(&self.broker).map(Response::new)
    }

    async fn describe_group(
        &self,
        req: Request<DescribeGroupRequest>,
    ) -> Result<Response<DescribeGroupResponse>, Status> {
        self.broker.metrics.request("DescribeGroups");
        groups::describe(&self.broker, req.into_inner()).map(Response::new)
    }

    async fn delete_group(&self, req: Request<DeleteGroupRequest>) -> Result<Response<DeleteGroupResponse>, Status> {
        self.broker.metrics.request("DeleteGroups");
        groups::delete(&self.broker, req.into_inner()).await.map(Response::new)
    }
}
