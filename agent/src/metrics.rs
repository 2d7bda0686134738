//! Metric names (one constant each: dashboards and rules refer to exactly
//! these), the agent's own figures, and the `/metrics` server.
//!
//! Host figures keep node_exporter's names and labels so existing node
//! dashboards work. They are taken once per interval by the collectors and
//! kept as the latest [`Snapshot`]; a scrape renders that snapshot (a
//! scrape never triggers a collection). The agent's own figures are
//! `kmon_agent_*`; the broker processes it watches are `kmon_node_broker_*`.

use kmon_proto::metric_names as names;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::collect::Series;
use crate::error::AgentError;

/// Counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A metric's name (as exposed, counters ending in `_total`), help and type.
#[derive(Debug, PartialEq, Eq)]
pub struct Desc {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

macro_rules! desc {
    ($(#[$doc:meta])* $id:ident, $name:expr, $kind:ident, $help:literal) => {
        $(#[$doc])*
        pub const $id: Desc = Desc { name: $name, help: $help, kind: Kind::$kind };
    };
}

// File systems: labels device, mountpoint, fstype.
desc!(FILESYSTEM_SIZE, names::node::FILESYSTEM_SIZE, Gauge, "Filesystem size in bytes.");
desc!(FILESYSTEM_AVAIL, names::node::FILESYSTEM_AVAIL, Gauge, "Filesystem space available to non-root users in bytes.");
desc!(FILESYSTEM_FILES, names::node::FILESYSTEM_FILES, Gauge, "Filesystem total file nodes.");
desc!(FILESYSTEM_FILES_FREE, names::node::FILESYSTEM_FILES_FREE, Gauge, "Filesystem total free file nodes.");
desc!(FILESYSTEM_READONLY, names::node::FILESYSTEM_READONLY, Gauge, "Filesystem read-only status.");
// Disks: label device.
desc!(DISK_READ, names::node::DISK_READ, Counter, "The total number of bytes read successfully.");
desc!(DISK_WRITTEN, names::node::DISK_WRITTEN, Counter, "The total number of bytes written successfully.");
desc!(
    DISK_READS_COMPLETED,
    names::node::DISK_READS_COMPLETED,
    Counter,
    "The total number of reads completed successfully."
);
desc!(
    DISK_WRITES_COMPLETED,
    names::node::DISK_WRITES_COMPLETED,
    Counter,
    "The total number of writes completed successfully."
);
desc!(DISK_IO_TIME, names::node::DISK_IO_TIME, Counter, "Total seconds spent doing I/Os.");
// Network interfaces: label device.
desc!(NET_RX_BYTES, names::node::NET_RX_BYTES, Counter, "Network device statistic receive_bytes.");
desc!(NET_TX_BYTES, names::node::NET_TX_BYTES, Counter, "Network device statistic transmit_bytes.");
desc!(NET_RX_PACKETS, names::node::NET_RX_PACKETS, Counter, "Network device statistic receive_packets.");
desc!(NET_TX_PACKETS, names::node::NET_TX_PACKETS, Counter, "Network device statistic transmit_packets.");
desc!(NET_RX_ERRS, names::node::NET_RX_ERRS, Counter, "Network device statistic receive_errs.");
desc!(NET_TX_ERRS, names::node::NET_TX_ERRS, Counter, "Network device statistic transmit_errs.");
desc!(NET_RX_DROP, names::node::NET_RX_DROP, Counter, "Network device statistic receive_drop.");
desc!(NET_TX_DROP, names::node::NET_TX_DROP, Counter, "Network device statistic transmit_drop.");
desc!(NET_SPEED, names::node::NET_SPEED, Gauge, "Network device property: speed_bytes.");
// CPU: labels cpu, mode.
desc!(CPU_SECONDS, names::node::CPU_SECONDS, Counter, "Seconds the CPUs spent in each mode.");
// Memory and load: no labels.
desc!(MEM_TOTAL, names::node::MEM_TOTAL, Gauge, "Memory information field MemTotal_bytes.");
desc!(MEM_AVAILABLE, names::node::MEM_AVAILABLE, Gauge, "Memory information field MemAvailable_bytes.");
desc!(LOAD1, names::node::LOAD1, Gauge, "1m load average.");
desc!(LOAD5, names::node::LOAD5, Gauge, "5m load average.");
desc!(LOAD15, names::node::LOAD15, Gauge, "15m load average.");
// Local `kmon broker` processes: labels pid, broker.
desc!(BROKER_RSS, names::node::BROKER_RSS, Gauge, "Resident memory of a local kmon broker process.");
desc!(BROKER_CPU, names::node::BROKER_CPU, Counter, "User and system CPU time of a local kmon broker process.");

/// Every host metric, for the catalogue test.
pub const HOST_METRICS: &[&Desc] = &[
    &FILESYSTEM_SIZE,
    &FILESYSTEM_AVAIL,
    &FILESYSTEM_FILES,
    &FILESYSTEM_FILES_FREE,
    &FILESYSTEM_READONLY,
    &DISK_READ,
    &DISK_WRITTEN,
    &DISK_READS_COMPLETED,
    &DISK_WRITES_COMPLETED,
    &DISK_IO_TIME,
    &NET_RX_BYTES,
    &NET_TX_BYTES,
    &NET_RX_PACKETS,
    &NET_TX_PACKETS,
    &NET_RX_ERRS,
    &NET_TX_ERRS,
    &NET_RX_DROP,
    &NET_TX_DROP,
    &NET_SPEED,
    &CPU_SECONDS,
    &MEM_TOTAL,
    &MEM_AVAILABLE,
    &LOAD1,
    &LOAD5,
    &LOAD15,
    &BROKER_RSS,
    &BROKER_CPU,
];

// The cluster sample (`collect::cluster`): shipped to the cluster only,
// never served on the agent's /metrics (Prometheus scrapes the brokers for
// these, and a second copy would double every sum).
// From Metadata, once per cluster: no labels, or `broker`.
desc!(CLUSTER_PARTITIONS, names::cluster::PARTITIONS, Gauge, "Partitions in the cluster.");
desc!(
    CLUSTER_UNDER_REPLICATED,
    names::cluster::UNDER_REPLICATED,
    Gauge,
    "Partitions whose ISR is smaller than their replica set."
);
desc!(CLUSTER_OFFLINE, names::cluster::OFFLINE, Gauge, "Partitions without a leader.");
desc!(CLUSTER_REPLICAS, names::cluster::REPLICAS, Gauge, "Assigned replicas, summed over partitions.");
desc!(CLUSTER_ISR_REPLICAS, names::cluster::ISR_REPLICAS, Gauge, "In-sync replicas, summed over partitions.");
desc!(CLUSTER_ISR_MIN, names::cluster::ISR_MIN, Gauge, "The smallest ISR of any partition.");
desc!(CLUSTER_BROKER_REPLICAS, names::cluster::BROKER_REPLICAS, Gauge, "Replicas assigned to a broker.");
desc!(CLUSTER_BROKER_LEADERS, names::cluster::BROKER_LEADERS, Gauge, "Partitions a broker leads.");
// Scraped from every alive broker's /metrics under the broker's own names,
// labelled `broker` (the all-topics series).
desc!(CLUSTER_BYTES_IN, names::broker::BYTES_IN_TOTAL, Counter, "Bytes produced to a broker (all topics).");
desc!(
    CLUSTER_BYTES_OUT,
    names::broker::BYTES_OUT_TOTAL,
    Counter,
    "Bytes fetched by consumers from a broker (all topics)."
);
desc!(CLUSTER_MESSAGES_IN, names::broker::MESSAGES_IN_TOTAL, Counter, "Records produced to a broker (all topics).");
// Scraped from the group coordinators: labels consumergroup, topic.
desc!(CLUSTER_GROUP_LAG, names::broker::GROUP_LAG_SUM, Gauge, "A group's lag on a topic, in records.");

/// Every series of the cluster sample, for the catalogue test.
pub const CLUSTER_METRICS: &[&Desc] = &[
    &CLUSTER_PARTITIONS,
    &CLUSTER_UNDER_REPLICATED,
    &CLUSTER_OFFLINE,
    &CLUSTER_REPLICAS,
    &CLUSTER_ISR_REPLICAS,
    &CLUSTER_ISR_MIN,
    &CLUSTER_BROKER_REPLICAS,
    &CLUSTER_BROKER_LEADERS,
    &CLUSTER_BYTES_IN,
    &CLUSTER_BYTES_OUT,
    &CLUSTER_MESSAGES_IN,
    &CLUSTER_GROUP_LAG,
];

/// The agent's own figures (names without `_total`: prometheus-client adds
/// it to counters).
pub const SCRAPE_ERRORS: &str = "kmon_agent_scrape_errors";
pub const SAMPLES_SHIPPED: &str = "kmon_agent_samples_shipped";
pub const SAMPLES_BUFFERED: &str = "kmon_agent_samples_buffered";
pub const SAMPLES_DROPPED: &str = "kmon_agent_samples_dropped";
pub const SHIP_ERRORS: &str = "kmon_agent_ship_errors";

/// The agent's own counters and gauges.
#[derive(Debug, Default)]
pub struct AgentMetrics {
    /// By `collector` (one of the collector names, or `cluster`: bounded).
    pub scrape_errors: Family<Vec<(String, String)>, Counter>,
    pub samples_shipped: Counter,
    pub samples_buffered: Gauge,
    pub samples_dropped: Counter,
    pub ship_errors: Counter,
}

impl AgentMetrics {
    pub fn scrape_error(&self, collector: &str) {
        self.scrape_errors.get_or_create(&vec![("collector".to_owned(), collector.to_owned())]).inc();
    }

    /// Creates a collector's error count at 0, so dashboards and alerts see
    /// a zero series (not none) until it first fails.
    pub fn expect_collector(&self, collector: &str) {
        let _created = self.scrape_errors.get_or_create(&vec![("collector".to_owned(), collector.to_owned())]);
    }
}

/// The latest collection, rendered on every scrape.
#[derive(Debug, Default)]
pub struct Snapshot {
    series: Mutex<Arc<Vec<Series>>>,
}

impl Snapshot {
    pub fn replace(&self, series: Arc<Vec<Series>>) {
        *self.series.lock().unwrap_or_else(PoisonError::into_inner) = series;
    }

    pub fn get(&self) -> Arc<Vec<Series>> {
        self.series.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let series = self.get();
        // One descriptor per family, in the order families first appear.
        let mut order: Vec<&'static Desc> = Vec::new();
        for s in series.iter() {
            if !order.iter().any(|d| std::ptr::eq(*d, s.desc)) {
                order.push(s.desc);
            }
        }
        for desc in order {
            let (name, kind) = match desc.kind {
                Kind::Counter => (
                    desc.name.strip_suffix("_total").unwrap_or(desc.name),
                    prometheus_client::metrics::MetricType::Counter,
                ),
                Kind::Gauge => (desc.name, prometheus_client::metrics::MetricType::Gauge),
            };
            let mut family = encoder.encode_descriptor(name, desc.help, None, kind)?;
            for s in series.iter().filter(|s| std::ptr::eq(s.desc, desc)) {
                let labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let metric = family.encode_family(&labels)?;
                match desc.kind {
                    Kind::Counter => ConstCounter::new(s.value).encode(metric)?,
                    Kind::Gauge => ConstGauge::new(s.value).encode(metric)?,
                }
            }
        }
        Ok(())
    }
}

/// The registry behind `/metrics`: the host snapshot plus the agent's own.
pub fn registry(own: &AgentMetrics, snapshot: Arc<Snapshot>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    registry.register(SCRAPE_ERRORS, "Collector runs that failed, by collector", own.scrape_errors.clone());
    registry.register(SAMPLES_SHIPPED, "Samples acknowledged by the cluster", own.samples_shipped.clone());
    registry.register(
        SAMPLES_BUFFERED,
        "Samples in the disk buffer not yet acknowledged",
        own.samples_buffered.clone(),
    );
    registry.register(
        SAMPLES_DROPPED,
        "Samples dropped unshipped because the disk buffer was full",
        own.samples_dropped.clone(),
    );
    registry.register(
        SHIP_ERRORS,
        "Shipping rounds that failed (no broker, or a broker error)",
        own.ship_errors.clone(),
    );
    registry
}

/// Serves `GET /metrics` (OpenMetrics text) until `shutdown`.
pub async fn serve(listener: TcpListener, registry: Registry, shutdown: CancellationToken) -> Result<(), AgentError> {
    let registry = Arc::new(registry);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => (
                        axum::http::StatusCode::OK,
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    ),
                    Err(_) => (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                        "encoding failed\n".to_owned(),
                    ),
                }
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await.map_err(AgentError::Serve)
}
