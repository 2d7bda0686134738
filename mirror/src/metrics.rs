//! The mirror's figures at `/metrics` (Prometheus text). Where MM2 has the
//! figure the name is the one the JMX exporter gives MM2's MBean
//! (`kafka.connect.mirror:type=MirrorSourceConnector,...` →
//! `kafka_connect_mirror_source_connector_*`), labelled `source`,
//! `target`, `topic` (the target's name, as MM2's) and `partition`; the
//! rest are `kmon_mirror_*`. Names are in METRICS.md under "Mirror".

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PartitionLabels {
    pub(crate) source: String,
    pub(crate) target: String,
    pub(crate) topic: String,
    pub(crate) partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CheckpointLabels {
    pub(crate) source: String,
    pub(crate) target: String,
    pub(crate) group: String,
    pub(crate) topic: String,
    pub(crate) partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GroupLabels {
    pub(crate) source: String,
    pub(crate) target: String,
    pub(crate) group: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) record_count: Family<PartitionLabels, Gauge>,
    pub(crate) byte_count: Family<PartitionLabels, Gauge>,
    pub(crate) record_rate: Family<PartitionLabels, FloatGauge>,
    pub(crate) byte_rate: Family<PartitionLabels, FloatGauge>,
    pub(crate) replication_latency_ms: Family<PartitionLabels, FloatGauge>,
    pub(crate) replication_latency_ms_max: Family<PartitionLabels, FloatGauge>,
    pub(crate) lag: Family<PartitionLabels, Gauge>,
    pub(crate) checkpoint_latency_ms: Family<CheckpointLabels, FloatGauge>,
    pub(crate) checkpoint_latency_ms_max: Family<CheckpointLabels, FloatGauge>,
    pub(crate) checkpoints: Family<GroupLabels, Counter>,
    pub(crate) group_offsets_synced: Family<GroupLabels, Counter>,
    pub(crate) commits: Counter,
    pub(crate) produce_failures: Counter,
    pub(crate) last_commit_seconds: FloatGauge,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            record_count: Family::default(),
            byte_count: Family::default(),
            record_rate: Family::default(),
            byte_rate: Family::default(),
            replication_latency_ms: Family::default(),
            replication_latency_ms_max: Family::default(),
            lag: Family::default(),
            checkpoint_latency_ms: Family::default(),
            checkpoint_latency_ms_max: Family::default(),
            checkpoints: Family::default(),
            group_offsets_synced: Family::default(),
            commits: Counter::default(),
            produce_failures: Counter::default(),
            last_commit_seconds: FloatGauge::default(),
            registry: Registry::default(),
        };
        let source = "kafka_connect_mirror_source_connector";
        registry.register(
            format!("{source}_record_count"),
            "Records copied to the target (acknowledged)",
            metrics.record_count.clone(),
        );
        registry.register(
            format!("{source}_byte_count"),
            "Key and value bytes copied to the target",
            metrics.byte_count.clone(),
        );
        registry.register(
            format!("{source}_record_rate"),
            "Records copied per second (last rate window)",
            metrics.record_rate.clone(),
        );
        registry.register(
            format!("{source}_byte_rate"),
            "Key and value bytes copied per second (last rate window)",
            metrics.byte_rate.clone(),
        );
        registry.register(
            format!("{source}_replication_latency_ms"),
            "Record timestamp to its copy's acknowledgement, mean of the last commit round",
            metrics.replication_latency_ms.clone(),
        );
        registry.register(
            format!("{source}_replication_latency_ms_max"),
            "Record timestamp to its copy's acknowledgement, largest of the last commit round",
            metrics.replication_latency_ms_max.clone(),
        );
        registry.register(
            "kmon_mirror_lag_records",
            "Source records not yet copied: the source high watermark minus the copied position",
            metrics.lag.clone(),
        );
        let checkpoint = "kafka_connect_mirror_checkpoint_connector";
        registry.register(
            format!("{checkpoint}_checkpoint_latency_ms"),
            "Time to translate and write the group's last checkpoint",
            metrics.checkpoint_latency_ms.clone(),
        );
        registry.register(
            format!("{checkpoint}_checkpoint_latency_ms_max"),
            "Longest checkpoint write of the group since the mirror started",
            metrics.checkpoint_latency_ms_max.clone(),
        );
        registry.register("kmon_mirror_checkpoints", "Checkpoint records written", metrics.checkpoints.clone());
        registry.register(
            "kmon_mirror_group_offsets_synced",
            "Translated offsets committed to the group on the target",
            metrics.group_offsets_synced.clone(),
        );
        registry.register(
            "kmon_mirror_commits",
            "Positions committed on the source after the copies were acknowledged",
            metrics.commits.clone(),
        );
        registry.register(
            "kmon_mirror_produce_failures",
            "Commit rounds whose copies failed (the mirror went back to its committed position)",
            metrics.produce_failures.clone(),
        );
        registry.register(
            "kmon_mirror_last_commit_timestamp_seconds",
            "When the mirror last committed its position (Unix seconds)",
            metrics.last_commit_seconds.clone(),
        );
        Metrics { registry, ..metrics }
    }

    pub(crate) fn render(&self) -> String {
        let mut body = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut body, &self.registry);
        body
    }
}
