//! The controller quorum: the cluster metadata ([`state::ClusterState`])
//! replicated by Raft (openraft 0.9) among the voter brokers; other brokers
//! follow as learners.
//!
//! ```text
//! Controller::write(cmd) ─▶ leader? ── yes ─▶ Raft::client_write ─▶ log (store.rs, fsync)
//!        │                     └─ no ─▶ ForwardWrite to the leader (service.rs) ─┘       │
//!        │                                 replicate: AppendEntries (network.rs ─▶ peers' service.rs)
//!        ◀──────── ApplyResult ◀── committed ─▶ StateMachineStore::apply ─▶ ClusterState::apply
//!                                                             └─▶ watch: Controller::state()
//! ```
//!
//! - [`state`]: the deterministic metadata state machine (`MetadataCommand` → `ApplyResult`).
//! - `store`: durable log, vote and snapshots under `<dir>/raft/` (layout in its docs).
//! - `network`: openraft's network over tonic to the peers' `ControllerQuorum` service.
//! - `service`: the `ControllerQuorum` gRPC service (internal, `proto/controller.proto`).
//! - `commit_latency`: the leader's mean commit time over a recent window, for metrics.
//! - this file: [`Controller`], the wiring ([`Controller::start`]) and the write path.

pub mod state;

mod commit_latency;
mod network;
mod service;
mod store;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kmon_proto::controller::v1::RaftPayload;
use kmon_proto::controller::v1::controller_quorum_client::ControllerQuorumClient;
use kmon_proto::controller::v1::controller_quorum_server::ControllerQuorumServer;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, Raft, RaftMetrics, ServerState};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

use commit_latency::CommitLatency;
pub use service::QuorumService;
use service::WriteRejection;
use state::{ApplyResult, BrokerId, ClusterState, LeaderElections, MetadataCommand};
use store::{CommittedIndex, DecidedElections};

openraft::declare_raft_types!(
    /// openraft's types for the controller quorum. NodeId is the broker id.
    pub(crate) TypeConfig:
        D = MetadataCommand,
        R = ApplyResult,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// How long [`Controller::write`] keeps retrying while there is no leader.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Upper bound of one forwarded write.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Configuration of this broker's member of the controller quorum.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This broker's id.
    pub node_id: BrokerId,
    /// Voters of the quorum: id -> gRPC address (`HOST:PORT`). Must contain
    /// node_id for a voter; a node not listed joins as a learner once the
    /// leader adds it.
    pub voters: BTreeMap<BrokerId, String>,
    /// Data directory; Raft state lives in `<dir>/raft/`.
    pub dir: PathBuf,
    /// Leader heartbeat interval, e.g. 100.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout, e.g. 300.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout, e.g. 600.
    pub election_timeout_max_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("invalid controller configuration: {0}")]
    Config(String),
    #[error("controller storage error: {context}")]
    Storage {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no controller leader elected within {waited:?} (last attempt: {last_error})")]
    NoLeader { waited: Duration, last_error: String },
    #[error("broker {this} is not the controller leader (leader: {leader:?}, address: {leader_address:?})")]
    NotLeader { this: BrokerId, leader: Option<BrokerId>, leader_address: Option<String> },
    #[error("write forwarded to controller leader {leader} failed: {message}")]
    Forward { leader: BrokerId, message: String },
    #[error("controller raft error: {0}")]
    Raft(String),
}

/// This node's role in the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftRole {
    Learner,
    Follower,
    Candidate,
    Leader,
    Shutdown,
}

impl RaftRole {
    /// The state's name as Kafka's RaftMetrics `current-state` gives it:
    /// a member that is not a voter is an observer; one that stops has
    /// resigned.
    pub fn kafka_name(self) -> &'static str {
        match self {
            RaftRole::Learner => "observer",
            RaftRole::Follower => "follower",
            RaftRole::Candidate => "candidate",
            RaftRole::Leader => "leader",
            RaftRole::Shutdown => "resigned",
        }
    }
}

/// A point-in-time view of the quorum from this node, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftStatus {
    pub node_id: BrokerId,
    pub role: RaftRole,
    pub leader: Option<BrokerId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// Leader changes (a new leader or a new term) seen by this node since it started.
    pub elections: u64,
    /// Whom this node voted for in the current term (itself as candidate
    /// or leader, the leader it follows), `None` before any vote.
    pub vote: Option<BrokerId>,
    /// Mean time for a command proposed here as leader to commit and
    /// apply, over the last 30 to 60 s; `None` when there was none.
    pub commit_latency_avg: Option<Duration>,
    /// Partition leader elections this node decided as the quorum leader
    /// since it started.
    pub leader_elections: LeaderElections,
    pub voters: Vec<BrokerId>,
    pub learners: Vec<BrokerId>,
}

/// This broker's member of the controller quorum. Cheap to clone.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("node_id", &self.inner.id).field("leader", &self.leader_id()).finish()
    }
}

struct Inner {
    id: BrokerId,
    node_id: u64,
    raft: Raft<TypeConfig>,
    state: watch::Receiver<Arc<ClusterState>>,
    committed: CommittedIndex,
    elections: Arc<AtomicU64>,
    commit_latency: Arc<CommitLatency>,
    decided_elections: Arc<DecidedElections>,
    /// The configured voters (id → address): where a broker that is not a
    /// voter sends its first writes, before the leader has added it as a
    /// learner and it knows who leads.
    configured_voters: BTreeMap<u64, String>,
    /// A leader named by a voter that refused a forwarded write.
    leader_hint: Mutex<Option<u64>>,
    /// Clients for ForwardWrite, by leader id, with the address they target.
    forward_clients: Mutex<HashMap<u64, (String, ControllerQuorumClient<Channel>)>>,
    shutdown: CancellationToken,
}

/// Outcome of one write attempt.
enum Attempt {
    Retry(String),
    Fail(ControllerError),
}

fn node_id(id: BrokerId) -> Result<u64, ControllerError> {
    u64::try_from(id).map_err(|_| ControllerError::Config(format!("broker id {id} must not be negative")))
}

fn broker_id(node: u64) -> BrokerId {
    BrokerId::try_from(node).unwrap_or(BrokerId::MAX)
}

impl Controller {
    /// Opens storage and builds the Raft node: config → log store + state
    /// machine + network → `Raft::new`. If the cluster was never initialized
    /// and this node is the lowest-id voter, it initializes the cluster with
    /// all voters ("already initialized" is not an error). Restarts never
    /// re-initialize: the membership is in the log or snapshot. Serve
    /// [`Controller::service`] on the broker's gRPC port.
    pub async fn start(config: ControllerConfig) -> Result<Controller, ControllerError> {
        let this = node_id(config.node_id)?;
        let raft_config = Config {
            cluster_name: "kmon-controller".into(),
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            // In JSON a byte of snapshot takes up to 4; keep chunks well
            // under the gRPC message limit.
            snapshot_max_chunk_size: 512 * 1024,
            ..Config::default()
        }
        .validate()
        .map_err(|e| ControllerError::Config(e.to_string()))?;
        let mut voters = BTreeMap::new();
        for (id, address) in &config.voters {
            voters.insert(node_id(*id)?, BasicNode::new(address));
        }
        let configured_voters: BTreeMap<u64, String> =
            voters.iter().map(|(id, node)| (*id, node.addr.clone())).collect();
        let Some(&lowest_voter) = voters.keys().next() else {
            return Err(ControllerError::Config("the controller quorum needs at least one voter".into()));
        };

        let dir = config.dir.join("raft");
        let (log_store, state_machine) = store::open(&dir).map_err(|source| ControllerError::Storage {
            context: format!("opening controller storage in {}", dir.display()),
            source,
        })?;
        let state = state_machine.subscribe();
        let committed = log_store.committed_index_handle();
        let decided_elections = state_machine.count_decided_elections(this, &log_store);
        let network = network::Network::new(this);
        let raft = Raft::new(this, Arc::new(raft_config), network, log_store, state_machine)
            .await
            .map_err(|e| ControllerError::Raft(e.to_string()))?;

        let initialized = raft.is_initialized().await.map_err(|e| ControllerError::Raft(e.to_string()))?;
        if !initialized && this == lowest_voter {
            tracing::info!(node_id = this, voters = ?voters.keys().collect::<Vec<_>>(), "initializing the controller quorum");
            match raft.initialize(voters).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(ControllerError::Raft(format!("initializing the quorum: {e}"))),
            }
        }

        let shutdown = CancellationToken::new();
        let elections = Arc::new(AtomicU64::new(0));
        tokio::spawn(count_elections(raft.metrics(), elections.clone(), shutdown.clone()));
        tokio::spawn(halt_on_fatal(raft.metrics(), shutdown.clone()));
        tracing::info!(node_id = this, initialized, dir = %dir.display(), "controller started");
        Ok(Controller {
            inner: Arc::new(Inner {
                id: config.node_id,
                node_id: this,
                raft,
                state,
                committed,
                elections,
                commit_latency: Arc::new(CommitLatency::default()),
                decided_elections,
                configured_voters,
                leader_hint: Mutex::new(None),
                forward_clients: Mutex::new(HashMap::new()),
                shutdown,
            }),
        })
    }

    /// The tonic service to add to the broker's gRPC server (same port as the client API).
    pub fn service(&self) -> ControllerQuorumServer<QuorumService> {
        ControllerQuorumServer::new(QuorumService::new(self.inner.raft.clone(), self.inner.commit_latency.clone()))
            .max_decoding_message_size(network::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(network::MAX_MESSAGE_BYTES)
    }

    /// Proposes a metadata change through the Raft log and returns what the
    /// state machine made of it. On the leader it is proposed directly,
    /// elsewhere it is forwarded to the leader. While there is no leader,
    /// or the leader cannot be reached, it retries with backoff for up to
    /// 10 s, then fails with [`ControllerError::NoLeader`].
    ///
    /// A write whose forward failed halfway (timeout, leader shutting down)
    /// may have been applied: retried commands must tolerate that (creating
    /// a topic twice reports `TopicAlreadyExists`).
    pub async fn write(&self, command: MetadataCommand) -> Result<ApplyResult, ControllerError> {
        let started = Instant::now();
        let deadline = started + WRITE_DEADLINE;
        let mut backoff = FIRST_BACKOFF;
        let is_voter = self.inner.configured_voters.contains_key(&self.inner.node_id);
        let mut attempt_no = 0usize;
        loop {
            attempt_no += 1;
            let hint = *self.inner.leader_hint.lock().unwrap_or_else(PoisonError::into_inner);
            let mut leader = self.inner.raft.metrics().borrow().current_leader.or(hint);
            if leader.is_none() && !is_voter && !self.inner.configured_voters.is_empty() {
                // Not a member yet: ask the configured voters in turn.
                let voters: Vec<u64> = self.inner.configured_voters.keys().copied().collect();
                leader = Some(voters[attempt_no % voters.len()]);
            }
            let attempt = match leader {
                Some(leader) if leader == self.inner.node_id => {
                    match service::write_local(&self.inner.raft, &self.inner.commit_latency, command.clone()).await {
                        Ok(result) => return Ok(result),
                        Err(WriteRejection::NotLeader { .. }) => Attempt::Retry("leadership moved".into()),
                        Err(WriteRejection::Stopped) => {
                            Attempt::Fail(ControllerError::Raft("this controller is shutting down".into()))
                        }
                        Err(WriteRejection::Raft(message)) => Attempt::Fail(ControllerError::Raft(message)),
                    }
                }
                Some(leader) => match self.forward(leader, &command, deadline).await {
                    Ok(result) => return Ok(result),
                    Err(attempt) => attempt,
                },
                None => Attempt::Retry("no leader elected".into()),
            };
            match attempt {
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry(reason) => {
                    if Instant::now() + backoff > deadline {
                        return Err(ControllerError::NoLeader { waited: started.elapsed(), last_error: reason });
                    }
                    tracing::debug!(%reason, ?backoff, "controller write: retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Sends `command` to `leader` over ForwardWrite.
    async fn forward(&self, leader: u64, command: &MetadataCommand, deadline: Instant) -> Result<ApplyResult, Attempt> {
        let address = self
            .inner
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
            .or_else(|| self.inner.configured_voters.get(&leader).cloned());
        let Some(address) = address else {
            return Err(Attempt::Retry(format!("address of leader {leader} unknown")));
        };
        let mut client = self.forward_client(leader, &address)?;
        let json = serde_json::to_vec(command)
            .map_err(|e| Attempt::Fail(ControllerError::Raft(format!("cannot encode command: {e}"))))?;
        let timeout =
            deadline.saturating_duration_since(Instant::now()).clamp(Duration::from_millis(100), FORWARD_TIMEOUT);
        let mut request = tonic::Request::new(RaftPayload { json: json.into() });
        request.set_timeout(timeout);
        let leader_id = broker_id(leader);
        let response = match tokio::time::timeout(timeout, client.forward_write(request)).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) if status.code() == Code::Unavailable => {
                self.inner.forward_clients.lock().unwrap_or_else(PoisonError::into_inner).remove(&leader);
                return Err(Attempt::Retry(format!("leader {leader} at {address} unreachable: {}", status.message())));
            }
            Ok(Err(status)) => {
                return Err(Attempt::Fail(ControllerError::Forward {
                    leader: leader_id,
                    message: format!("{status} (the write may or may not have been applied)"),
                }));
            }
            Err(_) => {
                return Err(Attempt::Fail(ControllerError::Forward {
                    leader: leader_id,
                    message: format!("no answer within {timeout:?} (the write may or may not have been applied)"),
                }));
            }
        };
        let result: Result<ApplyResult, WriteRejection> = serde_json::from_slice(&response.json).map_err(|e| {
            Attempt::Fail(ControllerError::Forward { leader: leader_id, message: format!("undecodable response: {e}") })
        })?;
        match result {
            Ok(result) => Ok(result),
            Err(WriteRejection::NotLeader { leader: now }) => {
                *self.inner.leader_hint.lock().unwrap_or_else(PoisonError::into_inner) = now.filter(|n| *n != leader);
                Err(Attempt::Retry(format!("{leader} is not the leader (it names {now:?})")))
            }
            Err(WriteRejection::Stopped) => Err(Attempt::Retry(format!("leader {leader} is shutting down"))),
            Err(WriteRejection::Raft(message)) => {
                Err(Attempt::Fail(ControllerError::Forward { leader: leader_id, message }))
            }
        }
    }

    fn forward_client(&self, leader: u64, address: &str) -> Result<ControllerQuorumClient<Channel>, Attempt> {
        let mut clients = self.inner.forward_clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, client)) = clients.get(&leader)
            && cached == address
        {
            return Ok(client.clone());
        }
        let client = network::connect_lazy(address)
            .map_err(|e| Attempt::Fail(ControllerError::Config(format!("bad controller address {address}: {e}"))))?;
        clients.insert(leader, (address.to_string(), client.clone()));
        Ok(client)
    }

    /// The local copy of the metadata, updated after each apply on every node.
    pub fn state(&self) -> watch::Receiver<Arc<ClusterState>> {
        self.inner.state.clone()
    }

    pub fn leader_id(&self) -> Option<BrokerId> {
        self.inner.raft.metrics().borrow().current_leader.map(broker_id)
    }

    pub fn is_leader(&self) -> bool {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.inner.node_id)
    }

    /// Adds a non-voter broker as a learner (call on the leader when a
    /// broker registers that is not a voter). Idempotent; a known node with
    /// a new address gets its address updated.
    pub async fn add_learner(&self, id: BrokerId, address: String) -> Result<(), ControllerError> {
        let node = node_id(id)?;
        let (known, leader, leader_address) = {
            let metrics = self.inner.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            let known = membership.get_node(&node).map(|n| n.addr.clone());
            let leader_address = m.current_leader.and_then(|l| membership.get_node(&l)).map(|n| n.addr.clone());
            (known, m.current_leader, leader_address)
        };
        if known.as_deref() == Some(address.as_str()) {
            return Ok(());
        }
        if leader != Some(self.inner.node_id) {
            return Err(ControllerError::NotLeader {
                this: self.inner.id,
                leader: leader.map(broker_id),
                leader_address,
            });
        }
        let result = if known.is_some() {
            let nodes = BTreeMap::from([(node, BasicNode::new(&address))]);
            self.inner.raft.change_membership(ChangeMembers::SetNodes(nodes), true).await
        } else {
            self.inner.raft.add_learner(node, BasicNode::new(&address), false).await
        };
        match result {
            Ok(_) => {
                tracing::info!(learner = id, %address, "controller learner added");
                Ok(())
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(ControllerError::NotLeader {
                this: self.inner.id,
                leader: f.leader_id.map(broker_id),
                leader_address: f.leader_node.map(|n| n.addr),
            }),
            Err(e) => Err(ControllerError::Raft(format!("adding learner {id}: {e}"))),
        }
    }

    /// For metrics: role, leader, term, log indexes, elections seen.
    pub fn raft_status(&self) -> RaftStatus {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        RaftStatus {
            node_id: self.inner.id,
            role: match m.state {
                ServerState::Learner => RaftRole::Learner,
                ServerState::Follower => RaftRole::Follower,
                ServerState::Candidate => RaftRole::Candidate,
                ServerState::Leader => RaftRole::Leader,
                ServerState::Shutdown => RaftRole::Shutdown,
            },
            leader: m.current_leader.map(broker_id),
            term: m.current_term,
            last_log_index: m.last_log_index,
            committed_index: self.inner.committed.get(),
            applied_index: m.last_applied.map(|l| l.index),
            elections: self.inner.elections.load(Ordering::Relaxed),
            // Term 0 is before the quorum was initialized: nobody voted.
            vote: (m.vote.leader_id().term > 0).then(|| m.vote.leader_id().voted_for()).flatten().map(broker_id),
            commit_latency_avg: self.inner.commit_latency.average(),
            leader_elections: self.inner.decided_elections.get(),
            voters: membership.voter_ids().map(broker_id).collect(),
            learners: membership.learner_ids().map(broker_id).collect(),
        }
    }

    /// Stops the Raft node. Serving the service afterwards answers with
    /// "raft stopped" errors.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        if let Err(error) = self.inner.raft.shutdown().await {
            tracing::warn!(%error, "controller raft did not stop cleanly");
        }
        tracing::info!(node_id = self.inner.id, "controller stopped");
    }
}

/// Exits the process when the Raft core stopped on its own (a fatal error,
/// e.g. the controller storage could not write on a full disk): openraft
/// does not restart a stopped core, so the broker would run on without a
/// controller, never alive again to the cluster. Exiting lets a supervisor
/// (`kmon up`, systemd, the chaos harness) restart it once the cause is
/// fixed; the log says why.
async fn halt_on_fatal(mut metrics: watch::Receiver<RaftMetrics<u64, BasicNode>>, shutdown: CancellationToken) {
    loop {
        let fatal = metrics.borrow_and_update().running_state.clone().err();
        if let Some(fatal) = fatal {
            if shutdown.is_cancelled() {
                return;
            }
            tracing::error!(error = %fatal, "the controller's Raft stopped on a fatal error; exiting so the broker can be restarted");
            eprintln!("kmon broker: the controller's Raft stopped on a fatal error ({fatal}); exiting");
            std::process::exit(FATAL_EXIT_CODE);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
    }
}

/// Exit status of a broker whose controller stopped on a fatal error
/// (EX_SOFTWARE from sysexits.h).
pub const FATAL_EXIT_CODE: i32 = 70;

/// Counts leader changes seen in the metrics until shutdown.
async fn count_elections(
    mut metrics: watch::Receiver<RaftMetrics<u64, BasicNode>>,
    elections: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    let mut last: Option<(u64, u64)> = None;
    loop {
        {
            let m = metrics.borrow_and_update();
            if let Some(leader) = m.current_leader {
                let seen = Some((m.current_term, leader));
                if seen != last {
                    elections.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(leader, term = m.current_term, "controller leader elected");
                    last = seen;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
    }
}
