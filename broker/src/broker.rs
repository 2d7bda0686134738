//! The broker's state and its operations in domain terms: topics (through
//! the metadata quorum), the partitions it hosts, metrics. The gRPC layer
//! (`service`) only converts to and from the wire types.
//!
//! Which operation goes where:
//!
//! | operation                         | goes to                                  |
//! |-----------------------------------|------------------------------------------|
//! | create / delete topic             | metadata quorum (Raft log), any broker   |
//! | register, fence, unfence broker   | metadata quorum                          |
//! | ISR shrink / expand               | metadata quorum, proposed by the leader  |
//! | describe / list topics, Metadata  | local copy of the metadata, any broker   |
//! | produce, fetch, list offsets      | the partition leader                     |
//! | replica fetch, offset for epoch   | the partition leader (from followers)    |
//! | heartbeat                         | the active controller (Raft leader)      |
//! | find coordinator, list groups     | any broker                               |
//! | join/sync/heartbeat/leave, commit | the group coordinator: leader of the     |
//! | offset fetch, describe group      | group's `__consumer_offsets` partition   |

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kmon_tls::ScramCredential;

use crate::authorizer::Authorizer;
use crate::config::{BrokerConfig, LogConfig};
use crate::controller::Controller;
use crate::controller::state::acls::{self, AclBinding};
use crate::controller::state::{ClusterState, CommandOutcome, MetadataCommand, TopicRecord};
use crate::error::{BrokerError, Result};
use crate::group::GroupCoordinator;
use crate::log::{LogManager, PartitionLog};
use crate::metrics::BrokerMetrics;
use crate::producer_ids::{ProducerIdentity, ProducerIds};
use crate::replication::ReplicaManager;
use crate::replication::lifecycle::Liveness;
use crate::topics::{MAX_PARTITIONS, check_new_topic};

/// How long a topic admin call waits for its change to reach this broker's
/// copy of the metadata.
const METADATA_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub logs: Arc<LogManager>,
    pub metrics: Arc<BrokerMetrics>,
    pub controller: Controller,
    pub replicas: Arc<ReplicaManager>,
    pub liveness: Arc<Liveness>,
    pub groups: Arc<GroupCoordinator>,
    /// ACL checks of requests.
    pub authorizer: Arc<Authorizer>,
    /// This broker's block of producer ids.
    producer_ids: ProducerIds,
    default_log_config: LogConfig,
    /// Addresses actually bound (the config may ask for port 0).
    pub address: SocketAddr,
    pub metrics_address: SocketAddr,
}

fn acls_changed(outcome: CommandOutcome) -> Result<u32> {
    match outcome {
        CommandOutcome::AclsChanged { changed } => Ok(changed),
        other => Err(BrokerError::Internal(format!("unexpected outcome of an ACL change: {other:?}"))),
    }
}

/// A topic as `describe` reports it: the metadata plus, for partitions
/// hosted here, the local log.
#[derive(Debug, Clone)]
pub struct TopicView {
    pub name: String,
    pub record: TopicRecord,
    pub config: LogConfig,
    pub local_logs: BTreeMap<u32, Arc<PartitionLog>>,
    /// Set on creation when placement had to relax a domain constraint.
    pub placement_note: Option<String>,
}

impl Broker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: BrokerConfig,
        logs: Arc<LogManager>,
        controller: Controller,
        replicas: Arc<ReplicaManager>,
        liveness: Arc<Liveness>,
        groups: Arc<GroupCoordinator>,
        metrics: Arc<BrokerMetrics>,
        address: SocketAddr,
        metrics_address: SocketAddr,
    ) -> Broker {
        Broker {
            default_log_config: config.default_log_config(),
            authorizer: Arc::new(Authorizer::new(&config, replicas.incarnation, controller.state(), metrics.clone())),
            config,
            logs,
            metrics,
            controller,
            replicas,
            liveness,
            groups,
            producer_ids: ProducerIds::default(),
            address,
            metrics_address,
        }
    }

    /// An id and epoch for a new idempotent producer (`InitProducerId`);
    /// with a transactional id, that id's next epoch, which fences the
    /// previous instance.
    pub async fn init_producer_id(&self, transactional_id: Option<&str>) -> Result<ProducerIdentity> {
        let identity =
            self.producer_ids.init(self.config.broker_id, transactional_id, |command| self.propose(command)).await?;
        tracing::debug!(producer_id = identity.producer_id, epoch = identity.epoch, "producer id handed out");
        Ok(identity)
    }

    pub fn metadata(&self) -> Arc<ClusterState> {
        self.controller.state().borrow().clone()
    }

    /// Checks a new topic as `create_topic` would, without creating it
    /// (Kafka's `validate_only`): the partition count and replication factor
    /// it would get, defaults applied. How many brokers can hold it is the
    /// quorum's check, at creation.
    pub fn check_create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        configs: &BTreeMap<String, String>,
    ) -> Result<(u32, u32)> {
        check_new_topic(name, self.metadata().topics.keys())?;
        let partitions = if partitions == 0 { self.config.num_partitions } else { partitions };
        if partitions > MAX_PARTITIONS {
            return Err(BrokerError::InvalidPartitions(partitions));
        }
        let replication_factor =
            if replication_factor == 0 { self.config.default_replication_factor } else { replication_factor };
        let log_config = self.default_log_config.with_overrides(configs)?;
        if log_config.min_insync_replicas > replication_factor {
            return Err(BrokerError::InvalidConfig {
                key: "min.insync.replicas".into(),
                value: log_config.min_insync_replicas.to_string(),
                reason: format!(
                    "larger than the replication factor {replication_factor}: acks=all could never succeed"
                ),
            });
        }
        Ok((partitions, replication_factor))
    }

    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicView> {
        let (partitions, replication_factor) =
            self.check_create_topic(name, partitions, replication_factor, &configs)?;
        let min_insync_replicas = self.default_log_config.with_overrides(&configs)?.min_insync_replicas;
        let command = MetadataCommand::CreateTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs,
            topic_id: new_topic_id(),
            min_insync_replicas,
        };
        let outcome = self.propose(command).await?;
        let placement_note = match outcome {
            CommandOutcome::TopicCreated { placement_note } => placement_note,
            _ => None,
        };
        if let Some(note) = &placement_note {
            tracing::warn!(topic = %name, %note, "placement relaxed a domain constraint");
        }
        self.wait_for_metadata(|state| state.topics.contains_key(name)).await?;
        let mut view = self.describe_topic(name)?;
        view.placement_note = placement_note;
        tracing::info!(topic = %name, partitions, replication_factor, "created topic");
        Ok(view)
    }

    /// Proposes a metadata change through the quorum and returns what
    /// applying it produced.
    pub async fn propose(&self, command: MetadataCommand) -> Result<CommandOutcome> {
        Ok(self.controller.write(command).await.map_err(|e| BrokerError::Controller(e.to_string()))??)
    }

    /// Adds ACLs (each validated first: nothing is proposed if one is bad);
    /// returns how many were new. This broker's metadata has them on return.
    pub async fn create_acls(&self, acls: Vec<AclBinding>) -> Result<u32> {
        for acl in &acls {
            acls::validate(acl).map_err(|reason| BrokerError::InvalidRequest(format!("ACL {acl}: {reason}")))?;
        }
        let outcome = self.propose(MetadataCommand::CreateAcls { acls: acls.clone() }).await?;
        self.wait_for_metadata(|state| acls.iter().all(|a| state.acls.contains(a))).await?;
        acls_changed(outcome)
    }

    /// Removes exactly these ACLs; returns how many existed.
    pub async fn delete_acls(&self, acls: Vec<AclBinding>) -> Result<u32> {
        let outcome = self.propose(MetadataCommand::DeleteAcls { acls: acls.clone() }).await?;
        self.wait_for_metadata(|state| acls.iter().all(|a| !state.acls.contains(a))).await?;
        acls_changed(outcome)
    }

    /// Adds SCRAM user `user` or replaces its credential; whether it existed.
    pub async fn upsert_scram_user(&self, user: &str, credential: ScramCredential) -> Result<bool> {
        if user.is_empty() || user.chars().any(|c| c.is_control()) {
            return Err(BrokerError::InvalidRequest(format!("bad SCRAM user name {user:?}")));
        }
        let command = MetadataCommand::UpsertScramUser { user: user.into(), credential: credential.clone() };
        let outcome = self.propose(command).await?;
        self.wait_for_metadata(|state| state.scram_users.get(user) == Some(&credential)).await?;
        match outcome {
            CommandOutcome::ScramUserUpserted { replaced } => Ok(replaced),
            other => Err(BrokerError::Internal(format!("unexpected outcome of a SCRAM user change: {other:?}"))),
        }
    }

    pub async fn delete_scram_user(&self, user: &str) -> Result<()> {
        self.propose(MetadataCommand::DeleteScramUser { user: user.into() }).await?;
        self.wait_for_metadata(|state| !state.scram_users.contains_key(user)).await
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        self.propose(MetadataCommand::DeleteTopic { name: name.into() }).await?;
        self.wait_for_metadata(|state| !state.topics.contains_key(name)).await?;
        tracing::info!(topic = %name, "deleted topic");
        Ok(())
    }

    /// Waits until this broker's copy of the metadata satisfies `done`.
    async fn wait_for_metadata(&self, done: impl Fn(&ClusterState) -> bool) -> Result<()> {
        let mut state = self.controller.state();
        let wait = async {
            loop {
                if done(&state.borrow_and_update()) {
                    return true;
                }
                if state.changed().await.is_err() {
                    return false;
                }
            }
        };
        match tokio::time::timeout(METADATA_PROPAGATION_TIMEOUT, wait).await {
            Ok(true) => Ok(()),
            _ => Err(BrokerError::RequestTimedOut {
                what: "the metadata change to reach this broker".into(),
                waited_ms: METADATA_PROPAGATION_TIMEOUT.as_millis() as u64,
            }),
        }
    }

    pub fn describe_topic(&self, name: &str) -> Result<TopicView> {
        let state = self.metadata();
        let record = state.topics.get(name).ok_or_else(|| BrokerError::UnknownTopic(name.into()))?;
        Ok(self.view(name, record))
    }

    pub fn list_topics(&self) -> Vec<TopicView> {
        let state = self.metadata();
        state.topics.iter().map(|(name, record)| self.view(name, record)).collect()
    }

    fn view(&self, name: &str, record: &TopicRecord) -> TopicView {
        let config = self.default_log_config.with_overrides(&record.configs).unwrap_or(self.default_log_config.clone());
        let local_logs =
            (0..record.partitions.len() as u32).filter_map(|p| self.logs.get(name, p).map(|l| (p, l))).collect();
        TopicView { name: name.into(), record: record.clone(), config, local_logs, placement_note: None }
    }
}

/// A random topic id (0 means "unknown", so never 0).
pub fn new_topic_id() -> u64 {
    rand::random::<u64>().max(1)
}

impl crate::metrics::MetricsSource for Broker {
    fn metrics(&self) -> &BrokerMetrics {
        &self.metrics
    }

    fn broker_id(&self) -> i32 {
        self.config.broker_id
    }

    fn metadata(&self) -> Arc<ClusterState> {
        Broker::metadata(self)
    }

    fn is_controller(&self) -> bool {
        self.controller.is_leader()
    }

    fn hosted(&self) -> Vec<Arc<crate::replication::partition::HostedPartition>> {
        self.replicas.hosted()
    }

    fn logs(&self) -> Vec<Arc<PartitionLog>> {
        self.logs.all()
    }

    fn raft_status(&self) -> crate::controller::RaftStatus {
        self.controller.raft_status()
    }

    fn groups(&self) -> Vec<crate::group::coordinator::GroupView> {
        self.groups.snapshot()
    }

    fn info(&self) -> crate::metrics::BrokerInfo {
        crate::metrics::BrokerInfo {
            fault_domain: self.config.fault_domain.clone(),
            update_domain: self.config.update_domain.clone(),
            address: self.address.to_string(),
        }
    }

    fn offline_log_dirs(&self) -> usize {
        self.logs.failed_dir_count()
    }
}
