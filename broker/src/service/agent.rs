//! `kmon.agent.v1.NodeMetrics`: node agents ship their samples here.
//!
//! `Ship` is a client stream of samples (one shipping round of one agent).
//! Each sample is stored as a JSON record (key = node name) in the internal
//! topic [`NODE_METRICS_TOPIC`], which is created on first use through the
//! controller (1 partition, so every reader sees one node's samples in
//! order; replication factor min(3, live brokers); `cleanup.policy=delete`,
//! retention 7 days). The write goes through the ordinary Produce path: an
//! in-process `kmon_client::Producer` bootstrapped at this broker's own
//! address routes every record to the partition leader, wherever it is,
//! with `acks=all` and one batch in flight per partition, so the order is
//! kept and a leader change is retried like any client's. The stream is
//! acknowledged only once every sample in it is acknowledged; an error
//! fails the whole round and the agent ships it again (at least once:
//! readers drop duplicates by (node, sequence)).
//!
//! The record value:
//!
//! ```json
//! {"node": "host1", "metrics_address": "10.0.0.5:9744", "sequence": 42,
//!  "timestamp_ms": 1700000000000,
//!  "series": [{"name": "node_load1", "labels": {}, "value": 0.5}, ...]}
//! ```
//!
//! `ListAgents` answers from memory: the agents that shipped to this broker
//! since it started (a scraper merges the lists of every broker).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kmon_client::{Acks, Producer, ProducerConfig};
use kmon_proto::agent::v1::node_metrics_server::{NodeMetrics, NodeMetricsServer};
use kmon_proto::agent::v1::{AgentInfo, ListAgentsRequest, ListAgentsResponse, NodeSample, ShipAck};
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status, Streaming};

use crate::broker::Broker;
use crate::controller::state::acls::{AclOperation, Resource};
use crate::error::BrokerError;
use kmon_proto::node_sample::{StoredSample, StoredSeries};

/// The internal topic of node samples.
pub const NODE_METRICS_TOPIC: &str = kmon_proto::node_sample::TOPIC;
const RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone)]
pub struct AgentService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    broker: Arc<Broker>,
    agents: Mutex<BTreeMap<String, AgentInfo>>,
    producer: OnceCell<Producer>,
}

impl AgentService {
    pub fn new(broker: Arc<Broker>) -> Self {
        AgentService { inner: Arc::new(Inner { broker, agents: Mutex::default(), producer: OnceCell::new() }) }
    }

    pub fn into_server(self) -> NodeMetricsServer<Self> {
        NodeMetricsServer::new(self)
    }

    /// Creates the topic unless the metadata already has it.
    async fn ensure_topic(&self) -> Result<(), Status> {
        let broker = &self.inner.broker;
        let metadata = broker.metadata();
        if metadata.topics.contains_key(NODE_METRICS_TOPIC) {
            return Ok(());
        }
        let live = metadata.brokers.values().filter(|b| !b.fenced).count().max(1) as u32;
        let replication_factor = live.min(3);
        let configs = BTreeMap::from([
            ("cleanup.policy".to_owned(), "delete".to_owned()),
            ("retention.ms".to_owned(), RETENTION_MS.to_string()),
            ("min.insync.replicas".to_owned(), replication_factor.min(2).to_string()),
        ]);
        match broker.create_topic(NODE_METRICS_TOPIC, 1, replication_factor, configs).await {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn producer(&self) -> Result<&Producer, Status> {
        self.inner
            .producer
            .get_or_try_init(|| async {
                let mut address = self.inner.broker.address;
                if address.ip().is_unspecified() {
                    address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                let mut config = ProducerConfig::new(address.to_string());
                config.acks = Acks::All;
                config.linger = Duration::from_millis(1);
                config.max_in_flight_per_partition = 1;
                Producer::connect(config).await
            })
            .await
            .map_err(|err| Status::from(BrokerError::Unavailable(format!("node metrics producer: {err}"))))
    }

    fn remember(&self, sample: &NodeSample) {
        let mut agents = self.inner.agents.lock().unwrap_or_else(PoisonError::into_inner);
        agents.insert(
            sample.node.clone(),
            AgentInfo {
                node: sample.node.clone(),
                metrics_address: sample.metrics_address.clone(),
                last_seen_ms: now_ms(),
                last_sequence: sample.sequence,
            },
        );
    }
}

/// The stored record value (`kmon_proto::node_sample`, read by `kmon report`).
fn record_value(sample: &NodeSample) -> Vec<u8> {
    StoredSample {
        node: sample.node.clone(),
        metrics_address: sample.metrics_address.clone(),
        sequence: sample.sequence,
        timestamp_ms: sample.timestamp_ms,
        series: sample
            .series
            .iter()
            .map(|s| StoredSeries {
                name: s.name.clone(),
                labels: s.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                value: Some(s.value),
            })
            .collect(),
    }
    .to_json()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as i64
}

#[tonic::async_trait]
impl NodeMetrics for AgentService {
    #[tracing::instrument(skip_all, fields(node))]
    async fn ship(&self, req: Request<Streaming<NodeSample>>) -> Result<Response<ShipAck>, Status> {
        // An agent writes node samples: Write on their topic.
        self.inner.broker.authorizer.check(&req, AclOperation::Write, &Resource::topic(NODE_METRICS_TOPIC))?;
        let mut stream = req.into_inner();
        self.ensure_topic().await?;
        let producer = self.producer().await?;
        let mut handles = Vec::new();
        let mut last_sequence = 0;
        while let Some(sample) = stream.message().await? {
            tracing::Span::current().record("node", sample.node.as_str());
            let value = record_value(&sample);
            let handle = producer
                .send_to(NODE_METRICS_TOPIC, None, Some(sample.node.as_bytes()), &value)
                .await
                .map_err(|err| Status::from(BrokerError::Unavailable(format!("storing a node sample: {err}"))))?;
            handles.push(handle);
            last_sequence = sample.sequence;
            self.remember(&sample);
        }
        let accepted = handles.len() as u64;
        for handle in handles {
            handle
                .await
                .map_err(|err| Status::from(BrokerError::Unavailable(format!("storing a node sample: {err}"))))?;
        }
        Ok(Response::new(ShipAck { accepted, last_sequence }))
    }

    async fn list_agents(&self, req: Request<ListAgentsRequest>) -> Result<Response<ListAgentsResponse>, Status> {
        self.inner.broker.authorizer.check(&req, AclOperation::Describe, &Resource::cluster())?;
        let agents = self.inner.agents.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        Ok(Response::new(ListAgentsResponse { agents }))
    }
}
