//! The cluster sample: the cluster's own history (throughput, lag per
//! group, under-replicated partitions, ISR sizes, partitions per broker),
//! taken by the agent beside the host figures and shipped in the same
//! `NodeSample`, so `__kmon_node_metrics` holds both and `kmon report` can
//! chart them over time.
//!
//! Every interval, from the bootstrap brokers (tried in turn):
//!
//! 1. `Metadata` (any broker): partitions with their replicas, leader and
//!    ISR → `kmon_cluster_*` (cluster totals, and replicas/leaders per
//!    broker). Computed here from one consistent view, so it does not
//!    matter which broker is controller.
//! 2. `GET /metrics` of every alive broker (the `metrics_address` that
//!    `Metadata` gives) → the broker's all-topics
//!    `kafka_server_brokertopicmetrics_{bytesin,bytesout,messagesin}_total`
//!    counters, labelled `broker`, and the group coordinators'
//!    `kafka_consumergroup_lag_sum{consumergroup,topic}`.
//!
//! The counters stay raw (readers take rates between samples, per broker,
//! so a broker restart only costs one interval). A broker whose scrape
//! fails is left out of that sample and the failure is returned, so the
//! agent counts `kmon_agent_scrape_errors_total{collector="cluster"}`;
//! what was gathered is still shipped.
//!
//! Cardinality: `broker` ≤ brokers; `consumergroup,topic` ≤ committed
//! (group, topic) pairs. Nothing per partition.
//!
//! These series are shipped only, never served on the agent's `/metrics`:
//! Prometheus scrapes the brokers for them already. With several agents
//! (one per node), pass `--no-cluster-sample` to all but one or two;
//! `kmon report` charts one agent's cluster sample.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use kmon_client::prom::{self, Sample};
use kmon_client::{Admin, ClusterMetadata};

use super::{CollectError, Series};
use crate::metrics::{
    CLUSTER_BROKER_LEADERS, CLUSTER_BROKER_REPLICAS, CLUSTER_BYTES_IN, CLUSTER_BYTES_OUT, CLUSTER_GROUP_LAG,
    CLUSTER_ISR_MIN, CLUSTER_ISR_REPLICAS, CLUSTER_MESSAGES_IN, CLUSTER_OFFLINE, CLUSTER_PARTITIONS, CLUSTER_REPLICAS,
    CLUSTER_UNDER_REPLICATED,
};

/// The `collector` label of the sampler's scrape errors.
pub const NAME: &str = "cluster";
/// Bound on each call (Metadata, one scrape).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Takes cluster samples; keeps its admin connection between them.
#[derive(Debug)]
pub struct ClusterSampler {
    bootstrap: Vec<String>,
    current: usize,
    admin: Option<Admin>,
}

impl ClusterSampler {
    pub fn new(bootstrap: Vec<String>) -> Self {
        ClusterSampler { bootstrap, current: 0, admin: None }
    }

    /// One cluster sample: the series taken, and what failed (nothing at
    /// all without `Metadata`; only the brokers not scraped otherwise).
    pub async fn sample(&mut self) -> (Vec<Series>, Option<CollectError>) {
        let metadata = match self.metadata().await {
            Ok(metadata) => metadata,
            Err(err) => {
                // Next time: the next bootstrap broker, on a fresh connection.
                self.admin = None;
                self.current = (self.current + 1) % self.bootstrap.len().max(1);
                return (Vec::new(), Some(err));
            }
        };
        let mut out = from_metadata(&metadata);
        let brokers: Vec<(i32, String)> = metadata
            .brokers
            .iter()
            .filter(|b| b.alive && !b.metrics_address.is_empty())
            .map(|b| (b.id, b.metrics_address.clone()))
            .collect();
        let scrapes = join_all(
            brokers
                .iter()
                .map(|(id, address)| async move { (*id, prom::scrape(address, &WANTED, CALL_TIMEOUT).await) }),
        )
        .await;
        let mut failed = Vec::new();
        let mut scraped = Vec::new();
        for (id, result) in scrapes {
            match result {
                Ok(samples) => scraped.push((id, samples)),
                Err(err) => failed.push(format!("broker {id}: {err}")),
            }
        }
        out.extend(from_scrapes(&scraped));
        let error = (!failed.is_empty()).then(|| CollectError(format!("scraping {}", failed.join("; "))));
        (out, error)
    }

    async fn metadata(&mut self) -> Result<ClusterMetadata, CollectError> {
        let admin = match &self.admin {
            Some(admin) => admin,
            None => {
                let broker = self.bootstrap.get(self.current).cloned().unwrap_or_default();
                let admin = tokio::time::timeout(CALL_TIMEOUT, Admin::connect(&broker))
                    .await
                    .map_err(|_| CollectError(format!("connecting to {broker}: timed out")))?
                    .map_err(|err| CollectError(format!("connecting to {broker}: {err}")))?;
                self.admin.insert(admin)
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, admin.metadata(&[]))
            .await
            .map_err(|_| CollectError("Metadata: timed out".into()))?
            .map_err(|err| CollectError(format!("Metadata: {err}")))
    }
}

/// The `kmon_cluster_*` series of one `Metadata` answer.
pub fn from_metadata(metadata: &ClusterMetadata) -> Vec<Series> {
    let mut partitions = 0u64;
    let mut under_replicated = 0u64;
    let mut offline = 0u64;
    let mut replicas = 0u64;
    let mut isr_replicas = 0u64;
    let mut isr_min: Option<usize> = None;
    let mut per_broker: BTreeMap<i32, (u64, u64)> = metadata.brokers.iter().map(|b| (b.id, (0, 0))).collect();
    for partition in metadata.topics.iter().flat_map(|t| &t.partitions) {
        partitions += 1;
        replicas += partition.replicas.len() as u64;
        isr_replicas += partition.isr.len() as u64;
        isr_min = Some(isr_min.map_or(partition.isr.len(), |m| m.min(partition.isr.len())));
        if partition.isr.len() < partition.replicas.len() {
            under_replicated += 1;
        }
        if partition.leader < 0 {
            offline += 1;
        } else {
            per_broker.entry(partition.leader).or_default().1 += 1;
        }
        for replica in &partition.replicas {
            per_broker.entry(*replica).or_default().0 += 1;
        }
    }
    let mut out = vec![
        Series::new(&CLUSTER_PARTITIONS, vec![], partitions as f64),
        Series::new(&CLUSTER_UNDER_REPLICATED, vec![], under_replicated as f64),
        Series::new(&CLUSTER_OFFLINE, vec![], offline as f64),
        Series::new(&CLUSTER_REPLICAS, vec![], replicas as f64),
        Series::new(&CLUSTER_ISR_REPLICAS, vec![], isr_replicas as f64),
    ];
    if let Some(min) = isr_min {
        out.push(Series::new(&CLUSTER_ISR_MIN, vec![], min as f64));
    }
    for (broker, (replicas, leaders)) in per_broker {
        out.push(Series::new(&CLUSTER_BROKER_REPLICAS, vec![("broker", broker.to_string())], replicas as f64));
        out.push(Series::new(&CLUSTER_BROKER_LEADERS, vec![("broker", broker.to_string())], leaders as f64));
    }
    out
}

/// What is asked of each broker's `/metrics` (it renders only these).
const WANTED: [&str; 4] =
    [CLUSTER_BYTES_IN.name, CLUSTER_BYTES_OUT.name, CLUSTER_MESSAGES_IN.name, CLUSTER_GROUP_LAG.name];

/// The series taken from the brokers' `/metrics`: each broker's all-topics
/// throughput counters, and every group's lag per topic (from its
/// coordinator; during a coordinator move two brokers may both report a
/// group for a moment: the larger figure is kept).
pub fn from_scrapes(scraped: &[(i32, Vec<Sample>)]) -> Vec<Series> {
    let mut out = Vec::new();
    let mut lag: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (broker, samples) in scraped {
        for sample in samples {
            let desc = match sample.name.as_str() {
                n if n == CLUSTER_BYTES_IN.name => &CLUSTER_BYTES_IN,
                n if n == CLUSTER_BYTES_OUT.name => &CLUSTER_BYTES_OUT,
                n if n == CLUSTER_MESSAGES_IN.name => &CLUSTER_MESSAGES_IN,
                n if n == CLUSTER_GROUP_LAG.name => {
                    if let (Some(group), Some(topic)) = (sample.label("consumergroup"), sample.label("topic")) {
                        let entry = lag.entry((group.to_owned(), topic.to_owned())).or_insert(sample.value);
                        *entry = entry.max(sample.value);
                    }
                    continue;
                }
                _ => continue,
            };
            // The all-topics series is the one without a `topic` label.
            if sample.label("topic").is_none() {
                out.push(Series::new(desc, vec![("broker", broker.to_string())], sample.value));
            }
        }
    }
    out.extend(lag.into_iter().map(|((group, topic), value)| {
        Series::new(&CLUSTER_GROUP_LAG, vec![("consumergroup", group), ("topic", topic)], value)
    }));
    out
}

#[cfg(test)]
mod tests {
    use kmon_client::{BrokerInfo, PartitionDescription, TopicDescription};

    use super::*;

    fn broker(id: i32) -> BrokerInfo {
        BrokerInfo {
            id,
            address: format!("127.0.0.1:{}", 9091 + id),
            metrics_address: format!("127.0.0.1:{}", 9643 + id),
            kafka_address: String::new(),
            fault_domain: String::new(),
            update_domain: String::new(),
            alive: true,
        }
    }

    fn partition(partition: u32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionDescription {
        PartitionDescription { partition, leader, replicas: replicas.to_vec(), isr: isr.to_vec(), ..Default::default() }
    }

    fn value(series: &[Series], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        series
            .iter()
            .find(|s| {
                s.desc.name == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.iter().any(|(k2, v2)| k2 == k && v2 == v))
            })
            .map(|s| s.value)
    }

    #[test]
    fn metadata_gives_isr_and_balance_figures() {
        let metadata = ClusterMetadata {
            brokers: vec![broker(1), broker(2), broker(3)],
            controller_id: 1,
            topics: vec![TopicDescription {
                name: "orders".into(),
                topic_id: String::new(),
                replication_factor: 3,
                configs: vec![],
                partitions: vec![
                    partition(0, 1, &[1, 2, 3], &[1, 2, 3]),
                    partition(1, 2, &[2, 3, 1], &[2, 3]),
                    partition(2, -1, &[3, 1, 2], &[]),
                ],
            }],
        };
        let series = from_metadata(&metadata);
        assert_eq!(value(&series, "kmon_cluster_partitions", &[]), Some(3.0));
        assert_eq!(value(&series, "kmon_cluster_underreplicated_partitions", &[]), Some(2.0));
        assert_eq!(value(&series, "kmon_cluster_offline_partitions", &[]), Some(1.0));
        assert_eq!(value(&series, "kmon_cluster_replicas", &[]), Some(9.0));
        assert_eq!(value(&series, "kmon_cluster_isr_replicas", &[]), Some(5.0));
        assert_eq!(value(&series, "kmon_cluster_isr_size_min", &[]), Some(0.0));
        assert_eq!(value(&series, "kmon_cluster_broker_replicas", &[("broker", "2")]), Some(3.0));
        assert_eq!(value(&series, "kmon_cluster_broker_leaders", &[("broker", "1")]), Some(1.0));
        assert_eq!(value(&series, "kmon_cluster_broker_leaders", &[("broker", "3")]), Some(0.0));
    }

    #[test]
    fn scrapes_keep_all_topic_counters_per_broker_and_lag_per_group() {
        let one = prom::parse(
            "kafka_server_brokertopicmetrics_bytesin_total 1000\n\
             kafka_server_brokertopicmetrics_bytesin_total{topic=\"orders\"} 900\n\
             kafka_server_brokertopicmetrics_bytesout_total 50\n\
             kafka_consumergroup_lag_sum{consumergroup=\"billing\",topic=\"orders\"} 7\n\
             kafka_server_replicamanager_leadercount 4\n",
        );
        let two = prom::parse(
            "kafka_server_brokertopicmetrics_bytesin_total 2000\n\
             kafka_consumergroup_lag_sum{consumergroup=\"billing\",topic=\"orders\"} 9\n",
        );
        let series = from_scrapes(&[(1, one), (2, two)]);
        assert_eq!(value(&series, "kafka_server_brokertopicmetrics_bytesin_total", &[("broker", "1")]), Some(1000.0));
        assert_eq!(value(&series, "kafka_server_brokertopicmetrics_bytesin_total", &[("broker", "2")]), Some(2000.0));
        assert_eq!(value(&series, "kafka_server_brokertopicmetrics_bytesout_total", &[("broker", "1")]), Some(50.0));
        assert_eq!(
            value(&series, "kafka_consumergroup_lag_sum", &[("consumergroup", "billing"), ("topic", "orders")]),
            Some(9.0)
        );
        assert!(series.iter().all(|s| s.desc.name != "kafka_server_replicamanager_leadercount"));
        assert_eq!(series.len(), 4);
    }
}
