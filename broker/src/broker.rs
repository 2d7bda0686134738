//! The broker's state and its operations in domain terms: topics, the logs
//! of their partitions, metrics. The gRPC layer (`service`) only converts
//! to and from the wire types.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::config::{BrokerConfig, LogConfig};
use crate::error::{BrokerError, Result};
use crate::log::{LogManager, PartitionLog};
use crate::metrics::BrokerMetrics;
use crate::topics::{MAX_PARTITIONS, TopicMeta, TopicStore};

/// The id of the only broker of a single-node cluster.
pub const SINGLE_NODE_ID: i32 = 0;

#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub logs: Arc<LogManager>,
    pub metrics: Arc<BrokerMetrics>,
    topics: Mutex<TopicStore>,
    default_log_config: LogConfig,
    /// Addresses actually bound (the config may ask for port 0).
    pub address: SocketAddr,
    pub metrics_address: SocketAddr,
}

/// A topic as `describe` reports it.
#[derive(Debug, Clone)]
pub struct TopicView {
    pub name: String,
    pub meta: TopicMeta,
    pub config: LogConfig,
    pub partitions: Vec<Arc<PartitionLog>>,
}

impl Broker {
    /// Opens the topic store and recovers every partition log.
    pub fn open(
        config: BrokerConfig,
        address: SocketAddr,
        metrics_address: SocketAddr,
    ) -> Result<Broker> {
        config.validate()?;
        let default_log_config = config.default_log_config();
        let first_dir = &config.data_dirs[0];
        std::fs::create_dir_all(first_dir).map_err(|source| BrokerError::Storage {
            context: format!("creating {}", first_dir.display()),
            source,
        })?;
        let topics = TopicStore::open(first_dir)?;
        let configs: BTreeMap<String, Arc<LogConfig>> = topics
            .iter()
            .map(|(name, meta)| {
                Ok((
                    name.clone(),
                    Arc::new(default_log_config.with_overrides(&meta.configs)?),
                ))
            })
            .collect::<Result<_>>()?;
        let logs = LogManager::open(&config.data_dirs, |topic| configs.get(topic).cloned())?;
        // Partitions whose directory is missing (a lost disk) come back empty
        // rather than leaving the topic unusable; say so loudly.
        for (name, meta) in topics.iter() {
            for partition in 0..meta.partitions {
                if logs.get(name, partition).is_none() {
                    tracing::warn!(topic = %name, partition, "partition log missing on disk: recreating it empty");
                    logs.create(name, partition, configs[name].clone())?;
                }
            }
        }
        Ok(Broker {
            config,
            logs: Arc::new(logs),
            metrics: Arc::new(BrokerMetrics::new()),
            topics: Mutex::new(topics),
            default_log_config,
            address,
            metrics_address,
        })
    }

    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicView> {
        let mut topics = self.topics.lock().expect("topics lock");
        topics.check_new(name)?;
        let partitions = if partitions == 0 {
            self.config.num_partitions
        } else {
            partitions
        };
        if partitions > MAX_PARTITIONS {
            return Err(BrokerError::InvalidPartitions(partitions));
        }
        let replication_factor = if replication_factor == 0 {
            self.config.default_replication_factor
        } else {
            replication_factor
        };
        // A single-node cluster has one broker to hold replicas.
        if replication_factor > 1 {
            return Err(BrokerError::InvalidReplicationFactor {
                requested: replication_factor,
                available: 1,
            });
        }
        let log_config = Arc::new(self.default_log_config.with_overrides(&configs)?);
        let meta = TopicMeta {
            partitions,
            replication_factor,
            configs,
        };
        // Metadata first: a crash between the two leaves a topic whose logs
        // are recreated empty at start-up, never logs without a topic.
        topics.insert(name, meta.clone())?;
        let mut logs = Vec::with_capacity(partitions as usize);
        for partition in 0..partitions {
            logs.push(self.logs.create(name, partition, log_config.clone())?);
        }
        tracing::info!(topic = %name, partitions, "created topic");
        Ok(TopicView {
            name: name.into(),
            meta,
            config: (*log_config).clone(),
            partitions: logs,
        })
    }

    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let mut topics = self.topics.lock().expect("topics lock");
        let meta = topics
            .remove(name)?
            .ok_or_else(|| BrokerError::UnknownTopic(name.into()))?;
        for partition in 0..meta.partitions {
            self.logs.delete(name, partition)?;
        }
        tracing::info!(topic = %name, "deleted topic");
        Ok(())
    }

    pub fn describe_topic(&self, name: &str) -> Result<TopicView> {
        let meta = self.topics.lock().expect("topics lock").get(name).cloned();
        let meta = meta.ok_or_else(|| BrokerError::UnknownTopic(name.into()))?;
        self.view(name, meta)
    }

    pub fn list_topics(&self) -> Result<Vec<TopicView>> {
        let metas: Vec<(String, TopicMeta)> = self
            .topics
            .lock()
            .expect("topics lock")
            .iter()
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect();
        metas
            .into_iter()
            .map(|(name, meta)| self.view(&name, meta))
            .collect()
    }

    fn view(&self, name: &str, meta: TopicMeta) -> Result<TopicView> {
        let config = self.default_log_config.with_overrides(&meta.configs)?;
        let partitions = (0..meta.partitions)
            .filter_map(|p| self.logs.get(name, p))
            .collect();
        Ok(TopicView {
            name: name.into(),
            meta,
            config,
            partitions,
        })
    }

    /// The log of a partition this broker leads.
    pub fn partition(&self, topic: &str, partition: u32) -> Result<Arc<PartitionLog>> {
        if let Some(log) = self.logs.get(topic, partition) {
            return Ok(log);
        }
        match self.topics.lock().expect("topics lock").get(topic) {
            Some(meta) => Err(BrokerError::UnknownPartition {
                topic: topic.into(),
                partition,
                partitions: meta.partitions,
            }),
            None => Err(BrokerError::UnknownTopic(topic.into())),
        }
    }
}
