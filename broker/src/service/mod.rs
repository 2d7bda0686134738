//! The gRPC API (`kmon.v1.Kmon`): one file per RPC, each converting wire
//! types to the broker's domain calls. Errors become statuses only in
//! `status`.

mod acls;
pub mod agent;
mod describe_groups;
mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod produce;
mod rebalance;
pub mod replication;
mod scram_users;
pub mod status;
mod topics;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kmon_proto::v1::kmon_server::{Kmon, KmonServer};
use kmon_proto::v1::*;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::broker::Broker;
use crate::controller::state::acls::{AclOperation, Resource, ResourceType};
use crate::metrics::RequestTiming;
use crate::metrics::timing::Arrived;

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

/// Time from the server receiving the request to its handler starting
/// (Kafka's RequestQueueTimeMs), from the timing layer's stamp.
fn queue_time<T>(req: &Request<T>, started: Instant) -> Duration {
    req.extensions().get::<Arrived>().map_or(Duration::ZERO, |a| started.saturating_duration_since(a.0))
}

impl KmonService {
    /// Refuses the request unless its principal may do `operation` on every
    /// resource (each named once, however often the request repeats it).
    fn authorize<'a, T>(
        &self,
        req: &Request<T>,
        operation: AclOperation,
        resources: impl IntoIterator<Item = Resource<'a>>,
    ) -> Result<(), Status> {
        let authorizer = &self.broker.authorizer;
        let resources: BTreeSet<(ResourceType, &str)> =
            resources.into_iter().map(|r| (r.resource_type, r.name)).collect();
        if resources.is_empty() {
            return Ok(());
        }
        let principal = authorizer.principal_of(req)?;
        for (resource_type, name) in resources {
            authorizer.authorize(&principal, operation, &Resource { resource_type, name })?;
        }
        Ok(())
    }

    fn authorize_create_topic(&self, req: &Request<CreateTopicRequest>) -> Result<(), Status> {
        let authorizer = &self.broker.authorizer;
        Ok(authorizer.authorize_create_topic(&authorizer.principal_of(req)?, &req.get_ref().name)?)
    }

    /// Counts a request and records its timing: `remote` is the part spent
    /// waiting on others (replicas, new data, the quorum).
    fn observe(&self, request: &'static str, queued: Duration, started: Instant, remote: Duration) {
        let handled = started.elapsed();
        let timing =
            RequestTiming { queue: queued, local: handled.saturating_sub(remote), remote: remote.min(handled) };
        self.broker.metrics.observe_request(request, timing);
    }
}

#[tonic::async_trait]
impl Kmon for KmonService {
    async fn create_topic(&self, req: Request<CreateTopicRequest>) -> Result<Response<CreateTopicResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize_create_topic(&req)?;
        let result = topics::create(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("CreateTopics", queued, started, started.elapsed());
        result
    }

    async fn list_topics(&self, req: Request<ListTopicsRequest>) -> Result<Response<ListTopicsResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        let principal = self.broker.authorizer.principal_of(&req)?;
        let result = topics::list(&self.broker).map(|mut list| {
            list.topics.retain(|t| {
                self.broker.authorizer.allows(&principal, AclOperation::Describe, &Resource::topic(&t.name))
            });
            Response::new(list)
        });
        self.observe("Metadata", queued, started, Duration::ZERO);
        result
    }

    async fn describe_topic(
        &self,
        req: Request<DescribeTopicRequest>,
    ) -> Result<Response<DescribeTopicResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, [Resource::topic(&req.get_ref().name)])?;
        let result = topics::describe(&self.broker, req.into_inner()).map(Response::new);
        self.observe("DescribeConfigs", queued, started, Duration::ZERO);
        result
    }

    async fn delete_topic(&self, req: Request<DeleteTopicRequest>) -> Result<Response<DeleteTopicResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Delete, [Resource::topic(&req.get_ref().name)])?;
        let result = topics::delete(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("DeleteTopics", queued, started, started.elapsed());
        result
    }

    async fn produce(&self, req: Request<ProduceRequest>) -> Result<Response<ProduceResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Write, req.get_ref().partitions.iter().map(|p| Resource::topic(&p.topic)))?;
        let mut remote = Duration::ZERO;
        let result = produce::handle(&self.broker, req.into_inner(), &mut remote).await;
        self.observe("Produce", queued, started, remote);
        if result.is_ok() && crate::fault::drop_this_produce_response() {
            tracing::warn!("fault injection: Produce written, its response dropped");
            return Err(Status::unavailable("fault injection: the produce response was dropped"));
        }
        result.map(Response::new)
    }

    async fn fetch(&self, req: Request<FetchRequest>) -> Result<Response<FetchResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Read, req.get_ref().partitions.iter().map(|p| Resource::topic(&p.topic)))?;
        let mut remote = Duration::ZERO;
        let result = fetch::handle(&self.broker, req.into_inner(), &self.shutdown, &mut remote).await;
        self.observe("Fetch", queued, started, remote);
        result.map(Response::new)
    }

    async fn init_producer_id(
        &self,
        req: Request<InitProducerIdRequest>,
    ) -> Result<Response<InitProducerIdResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        let result = self.broker.init_producer_id(req.into_inner().transactional_id.as_deref()).await;
        self.observe("InitProducerId", queued, started, started.elapsed());
        let identity = result?;
        Ok(Response::new(InitProducerIdResponse {
            producer_id: identity.producer_id,
            producer_epoch: i32::from(identity.epoch),
        }))
    }

    async fn list_offsets(&self, req: Request<ListOffsetsRequest>) -> Result<Response<ListOffsetsResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(
            &req,
            AclOperation::Describe,
            req.get_ref().partitions.iter().map(|p| Resource::topic(&p.topic)),
        )?;
        let result = list_offsets::handle(&self.broker, req.into_inner()).map(Response::new);
        self.observe("ListOffsets", queued, started, Duration::ZERO);
        result
    }

    async fn metadata(&self, req: Request<MetadataRequest>) -> Result<Response<MetadataResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, req.get_ref().topics.iter().map(|t| Resource::topic(t)))?;
        let principal = self.broker.authorizer.principal_of(&req)?;
        let result = metadata::handle(&self.broker, req.into_inner()).map(|mut metadata| {
            metadata.topics.retain(|t| {
                self.broker.authorizer.allows(&principal, AclOperation::Describe, &Resource::topic(&t.name))
            });
            Response::new(metadata)
        });
        self.observe("Metadata", queued, started, Duration::ZERO);
        result
    }

    async fn find_coordinator(
        &self,
        req: Request<FindCoordinatorRequest>,
    ) -> Result<Response<FindCoordinatorResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, [Resource::group(&req.get_ref().group_id)])?;
        let result = groups::find_coordinator(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("FindCoordinator", queued, started, Duration::ZERO);
        result
    }

    async fn join_group(&self, req: Request<JoinGroupRequest>) -> Result<Response<JoinGroupResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Read, [Resource::group(&req.get_ref().group_id)])?;
        let host = req.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default();
        let result = groups::join(&self.broker, req.into_inner(), host).await.map(Response::new);
        self.observe("JoinGroup", queued, started, Duration::ZERO);
        result
    }

    async fn sync_group(&self, req: Request<SyncGroupRequest>) -> Result<Response<SyncGroupResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Read, [Resource::group(&req.get_ref().group_id)])?;
        let result = groups::sync(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("SyncGroup", queued, started, Duration::ZERO);
        result
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Read, [Resource::group(&req.get_ref().group_id)])?;
        let result = groups::heartbeat(&self.broker, req.into_inner()).map(Response::new);
        self.observe("Heartbeat", queued, started, Duration::ZERO);
        result
    }

    async fn leave_group(&self, req: Request<LeaveGroupRequest>) -> Result<Response<LeaveGroupResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Read, [Resource::group(&req.get_ref().group_id)])?;
        let result = groups::leave(&self.broker, req.into_inner()).map(Response::new);
        self.observe("LeaveGroup", queued, started, Duration::ZERO);
        result
    }

    async fn offset_commit(&self, req: Request<OffsetCommitRequest>) -> Result<Response<OffsetCommitResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Read, [Resource::group(&req.get_ref().group_id)])?;
        self.authorize(&req, AclOperation::Read, req.get_ref().partitions.iter().map(|p| Resource::topic(&p.topic)))?;
        let result = groups::commit(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("OffsetCommit", queued, started, Duration::ZERO);
        result
    }

    async fn offset_fetch(&self, req: Request<OffsetFetchRequest>) -> Result<Response<OffsetFetchResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, [Resource::group(&req.get_ref().group_id)])?;
        self.authorize(
            &req,
            AclOperation::Describe,
            req.get_ref().partitions.iter().map(|p| Resource::topic(&p.topic)),
        )?;
        let result = groups::fetch_offsets(&self.broker, req.into_inner()).map(Response::new);
        self.observe("OffsetFetch", queued, started, Duration::ZERO);
        result
    }

    async fn list_groups(&self, req: Request<ListGroupsRequest>) -> Result<Response<ListGroupsResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        let principal = self.broker.authorizer.principal_of(&req)?;
        let result = groups::list(&self.broker).map(|mut list| {
            list.groups.retain(|g| {
                self.broker.authorizer.allows(&principal, AclOperation::Describe, &Resource::group(&g.group_id))
            });
            Response::new(list)
        });
        self.observe("ListGroups", queued, started, Duration::ZERO);
        result
    }

    async fn describe_group(
        &self,
        req: Request<DescribeGroupRequest>,
    ) -> Result<Response<DescribeGroupResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, [Resource::group(&req.get_ref().group_id)])?;
        let result = groups::describe(&self.broker, req.into_inner()).map(Response::new);
        self.observe("DescribeGroups", queued, started, Duration::ZERO);
        result
    }

    async fn describe_groups(
        &self,
        req: Request<DescribeGroupsRequest>,
    ) -> Result<Response<DescribeGroupsResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, req.get_ref().group_ids.iter().map(|g| Resource::group(g)))?;
        let result = describe_groups::handle(&self.broker, req.into_inner()).await.map(Response::new);
        // Waiting on the other coordinators counts as remote time.
        self.observe("DescribeGroups", queued, started, started.elapsed());
        result
    }

    async fn delete_group(&self, req: Request<DeleteGroupRequest>) -> Result<Response<DeleteGroupResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Delete, [Resource::group(&req.get_ref().group_id)])?;
        let result = groups::delete(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("DeleteGroups", queued, started, Duration::ZERO);
        result
    }

    async fn plan_rebalance(
        &self,
        req: Request<PlanRebalanceRequest>,
    ) -> Result<Response<PlanRebalanceResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, [Resource::cluster()])?;
        let result = rebalance::plan(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("PlanRebalance", queued, started, started.elapsed());
        result
    }

    async fn remove_broker(&self, req: Request<RemoveBrokerRequest>) -> Result<Response<RemoveBrokerResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, [Resource::cluster()])?;
        let result = rebalance::remove_broker(req.into_inner()).map(Response::new);
        self.observe("RemoveBroker", queued, started, Duration::ZERO);
        result
    }

    async fn execute_reassignment(
        &self,
        req: Request<ExecuteReassignmentRequest>,
    ) -> Result<Response<ExecuteReassignmentResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Alter, [Resource::cluster()])?;
        let result = rebalance::execute(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("AlterPartitionReassignments", queued, started, started.elapsed());
        result
    }

    async fn reassignment_status(
        &self,
        req: Request<ReassignmentStatusRequest>,
    ) -> Result<Response<ReassignmentStatusResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, [Resource::cluster()])?;
        let result = rebalance::status(&self.broker).await.map(Response::new);
        self.observe("ListPartitionReassignments", queued, started, started.elapsed());
        result
    }

    async fn cancel_reassignment(
        &self,
        req: Request<CancelReassignmentRequest>,
    ) -> Result<Response<CancelReassignmentResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Alter, [Resource::cluster()])?;
        let result = rebalance::cancel(&self.broker).await.map(Response::new);
        self.observe("AlterPartitionReassignments", queued, started, started.elapsed());
        result
    }

    async fn create_acls(&self, req: Request<CreateAclsRequest>) -> Result<Response<CreateAclsResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Alter, [Resource::cluster()])?;
        let result = acls::create(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("CreateAcls", queued, started, started.elapsed());
        result
    }

    async fn list_acls(&self, req: Request<ListAclsRequest>) -> Result<Response<ListAclsResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, [Resource::cluster()])?;
        let result = Response::new(acls::list(&self.broker));
        self.observe("DescribeAcls", queued, started, Duration::ZERO);
        Ok(result)
    }

    async fn delete_acls(&self, req: Request<DeleteAclsRequest>) -> Result<Response<DeleteAclsResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Alter, [Resource::cluster()])?;
        let result = acls::delete(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("DeleteAcls", queued, started, started.elapsed());
        result
    }

    async fn upsert_scram_user(
        &self,
        req: Request<UpsertScramUserRequest>,
    ) -> Result<Response<UpsertScramUserResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Alter, [Resource::cluster()])?;
        let result = scram_users::upsert(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("AlterUserScramCredentials", queued, started, started.elapsed());
        result
    }

    async fn delete_scram_user(
        &self,
        req: Request<DeleteScramUserRequest>,
    ) -> Result<Response<DeleteScramUserResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Alter, [Resource::cluster()])?;
        let result = scram_users::delete(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("AlterUserScramCredentials", queued, started, started.elapsed());
        result
    }

    async fn list_scram_users(
        &self,
        req: Request<ListScramUsersRequest>,
    ) -> Result<Response<ListScramUsersResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Describe, [Resource::cluster()])?;
        let result = Response::new(scram_users::list(&self.broker));
        self.observe("DescribeUserScramCredentials", queued, started, Duration::ZERO);
        Ok(result)
    }

    async fn elect_leaders(&self, req: Request<ElectLeadersRequest>) -> Result<Response<ElectLeadersResponse>, Status> {
        let started = Instant::now();
        let queued = queue_time(&req, started);
        self.authorize(&req, AclOperation::Alter, [Resource::cluster()])?;
        let result = rebalance::elect_leaders(&self.broker, req.into_inner()).await.map(Response::new);
        self.observe("ElectLeaders", queued, started, started.elapsed());
        result
    }
}
