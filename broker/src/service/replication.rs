//! The internal `Replication` service: follower fetches, leader-epoch
//! lookups and broker heartbeats.

use std::sync::Arc;
use std::time::Duration;

use kmon_proto::replication::v1::replication_server::{Replication, ReplicationServer};
use kmon_proto::replication::v1::*;
use tonic::{Request, Response, Status};

use crate::broker::Broker;

#[derive(Debug, Clone)]
pub struct ReplicationService {
    broker: Arc<Broker>,
}

impl ReplicationService {
    pub fn new(broker: Arc<Broker>) -> Self {
        ReplicationService { broker }
    }

    pub fn into_server(self) -> ReplicationServer<Self> {
        ReplicationServer::new(self)
            .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl Replication for ReplicationService {
    async fn replica_fetch(&self, req: Request<ReplicaFetchRequest>) -> Result<Response<ReplicaFetchResponse>, Status> {
        let r = req.into_inner();
        let max_wait = Duration::from_millis(u64::from(r.max_wait_ms.min(self.broker.config.fetch_max_wait_ms)));
        let read = self
            .broker
            .replicas
            .replica_fetch(
                r.replica_id,
                &r.topic,
                r.partition,
                r.offset,
                r.leader_epoch,
                r.max_bytes as usize,
                max_wait,
            )
            .await?;
        let log_end_offset = self.broker.replicas.leader_log(&r.topic, r.partition).map_or(-1, |l| l.log_end_offset());
        Ok(Response::new(ReplicaFetchResponse {
            records: read.records,
            high_watermark: read.high_watermark,
            log_end_offset,
            log_start_offset: read.log_start_offset,
        }))
    }

    async fn offset_for_leader_epoch(
        &self,
        req: Request<OffsetForLeaderEpochRequest>,
    ) -> Result<Response<OffsetForLeaderEpochResponse>, Status> {
        let r = req.into_inner();
        let (leader_epoch, end_offset) =
            self.broker.replicas.end_offset_for_epoch(&r.topic, r.partition, r.leader_epoch)?;
        Ok(Response::new(OffsetForLeaderEpochResponse { leader_epoch, end_offset }))
    }

    async fn broker_heartbeat(
        &self,
        req: Request<BrokerHeartbeatRequest>,
    ) -> Result<Response<BrokerHeartbeatResponse>, Status> {
        let r = req.into_inner();
        let accepted = self.broker.controller.is_leader();
        if accepted {
            self.broker.liveness.heartbeat(r.broker_id);
        }
        Ok(Response::new(BrokerHeartbeatResponse {
            accepted,
            controller_id: self.broker.controller.leader_id().unwrap_or(-1),
        }))
    }
}
