//! Controllers on real tonic servers bound to 127.0.0.1:0: election,
//! forwarding, failover, restart from disk, learners.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::TcpListenerStream;

use super::state::{BrokerRecord, ClusterState, CommandOutcome, MetadataCommand};
use super::*;

const DEADLINE: Duration = Duration::from_secs(15);

/// A controller and the gRPC server that serves it.
struct Node {
    controller: Controller,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl Node {
    async fn start(id: BrokerId, listener: TcpListener, voters: &BTreeMap<BrokerId, String>, dir: &Path) -> Node {
        let controller = Controller::start(ControllerConfig {
            node_id: id,
            voters: voters.clone(),
            dir: dir.to_path_buf(),
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 200,
            election_timeout_max_ms: 400,
        })
        .await
        .expect("controller starts");
        Node::serve(controller, listener)
    }

    fn serve(controller: Controller, listener: TcpListener) -> Node {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let service = controller.service();
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Node { controller, addr, stop: Some(stop), server }
    }

    /// Stops the controller and its server (the node is gone for its peers).
    async fn stop(mut self) {
        self.controller.shutdown().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server).await.is_err() {
            self.server.abort();
        }
    }
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Polls `condition` until it holds, failing the test after [`DEADLINE`].
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every controller's state satisfies `condition`.
async fn wait_state(controllers: &[&Controller], what: &str, condition: impl Fn(&ClusterState) -> bool) {
    for c in controllers {
        let mut state = c.state();
        tokio::time::timeout(DEADLINE, state.wait_for(|s: &Arc<ClusterState>| condition(s)))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting on broker {} for {what}", c.raft_status().node_id))
            .expect("state channel open");
    }
}

/// The leader all `controllers` agree on.
async fn agreed_leader(controllers: &[&Controller]) -> BrokerId {
    let mut leader = None;
    wait_until("a leader all nodes agree on", || {
        let first = controllers[0].leader_id();
        leader = first;
        first.is_some()
            && controllers.iter().all(|c| c.leader_id() == first)
            && controllers.iter().filter(|c| c.is_leader()).count() == 1
    })
    .await;
    leader.unwrap()
}

fn register(id: BrokerId) -> MetadataCommand {
    MetadataCommand::RegisterBroker(BrokerRecord::local(id, id as usize, id as usize))
}

fn create_topic(name: &str, rf: u32) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: name.into(),
        partitions: 3,
        replication_factor: rf,
        configs: BTreeMap::new(),
        topic_id: 1,
        min_insync_replicas: 0,
    }
}

fn node_dir(root: &Path, id: BrokerId) -> PathBuf {
    root.join(format!("broker-{id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_forward_fail_over_and_recover() {
    let started = std::time::Instant::now();
    let root = tempfile::tempdir().unwrap();
    let mut listeners = BTreeMap::new();
    for id in 1..=3 {
        listeners.insert(id, bind().await);
    }
    let voters: BTreeMap<BrokerId, String> =
        listeners.iter().map(|(id, l)| (*id, l.local_addr().unwrap().to_string())).collect();
    let mut nodes = BTreeMap::new();
    for (id, listener) in listeners {
        nodes.insert(id, Node::start(id, listener, &voters, &node_dir(root.path(), id)).await);
    }
    let all: Vec<&Controller> = nodes.values().map(|n| &n.controller).collect();
    let leader = agreed_leader(&all).await;
    tracing::info!(leader, elapsed = ?started.elapsed(), "first leader");

    // A write from a follower is forwarded to the leader and reaches everyone.
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();
    for id in 1..=3 {
        assert_eq!(nodes[&follower].controller.write(register(id)).await.unwrap(), Ok(CommandOutcome::Done));
    }
    let created = nodes[&follower].controller.write(create_topic("t", 3)).await.unwrap();
    assert!(matches!(created, Ok(CommandOutcome::TopicCreated { .. })), "{created:?}");
    // The state machine's refusals come back as values.
    let again = nodes[&leader].controller.write(create_topic("t", 3)).await.unwrap();
    assert_eq!(again, Err(state::MetadataError::TopicAlreadyExists("t".into())));
    wait_state(&all, "topic t", |s| s.topics.contains_key("t") && s.brokers.len() == 3).await;
    let status = nodes[&leader].controller.raft_status();
    assert_eq!(status.role, RaftRole::Leader);
    assert_eq!(status.voters, vec![1, 2, 3]);
    assert!(status.elections >= 1 && status.term >= 1, "{status:?}");
    assert!(status.committed_index.is_some() && status.applied_index.is_some(), "{status:?}");

    // The leader goes away: the other two elect a new one and writes resume.
    let old_leader = nodes.remove(&leader).unwrap();
    let old_addr = old_leader.addr;
    old_leader.stop().await;
    let rest: Vec<&Controller> = nodes.values().map(|n| &n.controller).collect();
    let new_leader = agreed_leader(&rest).await;
    assert_ne!(new_leader, leader);
    tracing::info!(new_leader, elapsed = ?started.elapsed(), "failover leader");
    let follower = *nodes.keys().find(|id| **id != new_leader).unwrap();
    let created = nodes[&follower].controller.write(create_topic("t2", 2)).await.unwrap();
    assert!(matches!(created, Ok(CommandOutcome::TopicCreated { .. })), "{created:?}");
    wait_state(&rest, "topic t2", |s| s.topics.contains_key("t2")).await;

    // The old leader restarts from its directory on its old address: its
    // state comes back from disk before it talks to anyone, then it
    // catches up with what it missed.
    let restarted = Controller::start(ControllerConfig {
        node_id: leader,
        voters: voters.clone(),
        dir: node_dir(root.path(), leader),
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 200,
        election_timeout_max_ms: 400,
    })
    .await
    .unwrap();
    wait_state(&[&restarted], "topic t from disk", |s| s.topics.contains_key("t")).await;
    let listener = TcpListener::bind(old_addr).await.expect("rebind the old address");
    nodes.insert(leader, Node::serve(restarted, listener));
    let all: Vec<&Controller> = nodes.values().map(|n| &n.controller).collect();
    wait_state(&all, "topic t2 everywhere", |s| s.topics.contains_key("t2")).await;
    agreed_leader(&all).await;
    let states: Vec<Arc<ClusterState>> = all.iter().map(|c| c.state().borrow().clone()).collect();
    assert!(states.windows(2).all(|w| w[0] == w[1]), "all nodes hold the same metadata");

    for (_, node) in nodes {
        node.stop().await;
    }
    tracing::info!(elapsed = ?started.elapsed(), "three-node test done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_survives_restart_and_adds_a_learner() {
    let root = tempfile::tempdir().unwrap();
    let listener = bind().await;
    let voters = BTreeMap::from([(1, listener.local_addr().unwrap().to_string())]);
    let dir = node_dir(root.path(), 1);
    let node = Node::start(1, listener, &voters, &dir).await;
    wait_until("single node leads", || node.controller.is_leader()).await;
    node.controller.write(register(1)).await.unwrap().unwrap();
    node.controller.write(create_topic("t", 1)).await.unwrap().unwrap();
    let addr = node.addr;
    node.stop().await;

    // Restart: no re-initialization, the state is back, writes go on.
    let node = Node::start(1, TcpListener::bind(addr).await.unwrap(), &voters, &dir).await;
    wait_state(&[&node.controller], "topic t after restart", |s| s.topics.contains_key("t")).await;
    wait_until("single node leads again", || node.controller.is_leader()).await;
    node.controller.write(create_topic("u", 1)).await.unwrap().unwrap();

    // A broker that is not a voter follows as a learner.
    let learner_listener = bind().await;
    let learner_addr = learner_listener.local_addr().unwrap().to_string();
    let learner = Node::start(2, learner_listener, &voters, &node_dir(root.path(), 2)).await;
    node.controller.add_learner(2, learner_addr.clone()).await.unwrap();
    node.controller.add_learner(2, learner_addr).await.unwrap();
    wait_state(&[&learner.controller], "topics on the learner", |s| s.topics.contains_key("u")).await;
    assert_eq!(node.controller.raft_status().learners, vec![2]);
    assert_eq!(learner.controller.raft_status().role, RaftRole::Learner);
    // A learner's write is forwarded to the leader.
    learner.controller.write(register(2)).await.unwrap().unwrap();
    wait_state(&[&node.controller], "broker 2", |s| s.brokers.contains_key(&2)).await;
    learner.stop().await;
    node.stop().await;
}
