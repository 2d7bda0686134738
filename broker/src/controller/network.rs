//! openraft's network over tonic: one lazily connected `ControllerQuorum`
//! client per peer, Raft messages as serde_json in `RaftPayload`.
//!
//! Errors are mapped so openraft retries: a peer that cannot be reached
//! (connection refused, transport failure) is `Unreachable` (openraft backs
//! off), an RPC that outlives `RPCOption::hard_ttl` is `Timeout`, a response
//! that cannot be decoded is a `NetworkError`, and an error of the remote
//! Raft node is a `RemoteError`.

use std::error::Error;
use std::time::Duration;

use kmon_proto::controller::v1::RaftPayload;
use kmon_proto::controller::v1::controller_quorum_client::ControllerQuorumClient;
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Code;
use tonic::transport::Channel;

use super::TypeConfig;

type NodeId = u64;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Raft messages are small, but a batch of entries or a snapshot chunk in
/// JSON can exceed tonic's 4 MiB default.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Builds a lazily connecting client for a peer's `HOST:PORT`.
pub(crate) fn connect_lazy(addr: &str) -> Result<ControllerQuorumClient<Channel>, tonic::transport::Error> {
    let endpoint = crate::tls::peer_endpoint(addr)?.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true);
    Ok(ControllerQuorumClient::new(endpoint.connect_lazy())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// Creates a [`PeerClient`] per replication target.
pub(crate) struct Network {
    node_id: NodeId,
}

impl Network {
    pub(crate) fn new(node_id: NodeId) -> Network {
        Network { node_id }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient { from: self.node_id, target, node: node.clone(), client: None }
    }
}

/// The connection to one peer; (re)connected on first use after a failure.
pub(crate) struct PeerClient {
    from: NodeId,
    target: NodeId,
    node: BasicNode,
    client: Option<ControllerQuorumClient<Channel>>,
}

#[derive(Clone, Copy)]
enum Method {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl Method {
    fn rpc_type(self) -> RPCTypes {
        match self {
            Method::AppendEntries => RPCTypes::AppendEntries,
            Method::Vote => RPCTypes::Vote,
            Method::InstallSnapshot => RPCTypes::InstallSnapshot,
        }
    }
}

impl PeerClient {
    async fn call<Req, Resp, E>(
        &mut self,
        method: Method,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let json = serde_json::to_vec(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let client = match &self.client {
            Some(client) => client.clone(),
            None => {
                let client = connect_lazy(&self.node.addr).map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
                self.client = Some(client.clone());
                client
            }
        };
        let ttl = option.hard_ttl();
        let mut grpc_request = tonic::Request::new(RaftPayload { json: json.into() });
        grpc_request.set_timeout(ttl);
        let call = async move {
            let mut client = client;
            match method {
                Method::AppendEntries => client.append_entries(grpc_request).await,
                Method::Vote => client.vote(grpc_request).await,
                Method::InstallSnapshot => client.install_snapshot(grpc_request).await,
            }
        };
        let timeout = || {
            RPCError::Timeout(Timeout { action: method.rpc_type(), id: self.from, target: self.target, timeout: ttl })
        };
        let response = match tokio::time::timeout(ttl, call).await {
            Err(_) => return Err(timeout()),
            Ok(Err(status)) => {
                tracing::debug!(target_node = self.target, addr = %self.node.addr, %status, "controller rpc failed");
                return Err(match status.code() {
                    Code::DeadlineExceeded => timeout(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled => {
                        // Start over with a fresh channel next time.
                        self.client = None;
                        RPCError::Unreachable(Unreachable::new(&status))
                    }
                    _ => RPCError::Network(NetworkError::new(&status)),
                });
            }
            Ok(Ok(response)) => response.into_inner(),
        };
        let result: Result<Resp, E> =
            serde_json::from_slice(&response.json).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Method::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call(Method::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Method::Vote, &rpc, &option).await
    }
}
