//! The `ControllerQuorum` gRPC service: peers' Raft messages into the
//! local Raft node, and writes forwarded by followers to the leader.
//!
//! Payloads that cannot be decoded are `INVALID_ARGUMENT`; everything the
//! Raft node answers, errors included, travels back inside the payload.

use std::sync::Arc;

use kmon_proto::controller::v1::RaftPayload;
use kmon_proto::controller::v1::controller_quorum_server::ControllerQuorum;
use openraft::Raft;
use openraft::error::{ClientWriteError, Fatal, RaftError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use super::TypeConfig;
use super::commit_latency::CommitLatency;
use super::state::{ApplyResult, MetadataCommand};

/// Why the leader-side of a write did not reach the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WriteRejection {
    /// This node is not (or no longer) the leader; `leader` is who it
    /// believes leads, if anyone. The write was not applied: retry there.
    NotLeader { leader: Option<u64> },
    /// The Raft node is shutting down; whether a write in flight was
    /// applied is unknown.
    Stopped,
    /// The Raft node failed (stopped, storage error).
    Raft(String),
}

/// Proposes `command` on this node, which must be the leader; the time
/// it took to commit and apply goes into `latency`.
pub(crate) async fn write_local(
    raft: &Raft<TypeConfig>,
    latency: &CommitLatency,
    command: MetadataCommand,
) -> Result<ApplyResult, WriteRejection> {
    let started = std::time::Instant::now();
    match raft.client_write(command).await {
        Ok(response) => {
            latency.record(started.elapsed());
            Ok(response.data)
        }
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
            Err(WriteRejection::NotLeader { leader: forward.leader_id })
        }
        Err(RaftError::Fatal(Fatal::Stopped)) => Err(WriteRejection::Stopped),
        Err(error) => Err(WriteRejection::Raft(error.to_string())),
    }
}

/// The tonic service; see [`super::Controller::service`].
pub struct QuorumService {
    raft: Raft<TypeConfig>,
    latency: Arc<CommitLatency>,
}

impl QuorumService {
    pub(crate) fn new(raft: Raft<TypeConfig>, latency: Arc<CommitLatency>) -> QuorumService {
        QuorumService { raft, latency }
    }
}

fn decode<T: DeserializeOwned>(request: Request<RaftPayload>) -> Result<T, Status> {
    serde_json::from_slice(&request.into_inner().json)
        .map_err(|e| Status::invalid_argument(format!("undecodable controller payload: {e}")))
}

fn encode<T: Serialize>(response: &T) -> Result<Response<RaftPayload>, Status> {
    let json = serde_json::to_vec(response)
        .map_err(|e| Status::internal(format!("cannot encode controller response: {e}")))?;
    Ok(Response::new(RaftPayload { json: json.into() }))
}

#[tonic::async_trait]
impl ControllerQuorum for QuorumService {
    async fn append_entries(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        encode(&self.raft.append_entries(decode(request)?).await)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        encode(&self.raft.vote(decode(request)?).await)
    }

    async fn install_snapshot(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        encode(&self.raft.install_snapshot(decode(request)?).await)
    }

    async fn forward_write(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let command: MetadataCommand = decode(request)?;
        tracing::debug!(?command, "forwarded metadata write");
        encode(&write_local(&self.raft, &self.latency, command).await)
    }
}
