//! Broker metrics under the names the Prometheus JMX exporter's Kafka rules
//! give them, so existing dashboards work. Served at `/metrics` on
//! `metrics_listen` (OpenMetrics text).
//!
//! Label cardinality: `topic` (one per topic), `partition` (per partition on
//! the per-log gauges), `request` (a fixed set of RPC names).

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::log::LogManager;

pub const MESSAGES_IN: &str = "kafka_server_brokertopicmetrics_messagesin";
pub const BYTES_IN: &str = "kafka_server_brokertopicmetrics_bytesin";
pub const BYTES_OUT: &str = "kafka_server_brokertopicmetrics_bytesout";
pub const FAILED_PRODUCE: &str = "kafka_server_brokertopicmetrics_failedproducerequests";
pub const FAILED_FETCH: &str = "kafka_server_brokertopicmetrics_failedfetchrequests";
pub const REQUESTS: &str = "kafka_network_requestmetrics_requests";
pub const PARTITION_COUNT: &str = "kafka_server_replicamanager_partitioncount";
pub const LEADER_COUNT: &str = "kafka_server_replicamanager_leadercount";
pub const LOG_SIZE: &str = "kafka_log_log_size";
pub const LOG_START_OFFSET: &str = "kafka_log_log_logstartoffset";
pub const LOG_END_OFFSET: &str = "kafka_log_log_logendoffset";

type Labels = Vec<(&'static str, String)>;

/// Per-topic counters plus the all-topics series (no `topic` label), as the
/// JMX exporter emits them.
#[derive(Clone, Default)]
pub struct TopicCounter(Family<Labels, Counter>);

impl TopicCounter {
    pub fn inc_by(&self, topic: &str, n: u64) {
        self.0.get_or_create(&vec![("topic", topic.to_string())]).inc_by(n);
        self.0.get_or_create(&Vec::new()).inc_by(n);
    }
}

pub struct BrokerMetrics {
    registry: Registry,
    pub messages_in: TopicCounter,
    pub bytes_in: TopicCounter,
    pub bytes_out: TopicCounter,
    pub failed_produce: TopicCounter,
    pub failed_fetch: TopicCounter,
    pub requests: Family<Labels, Counter>,
    partition_count: Gauge,
    leader_count: Gauge,
    log_size: Family<Labels, Gauge<i64, std::sync::atomic::AtomicI64>>,
    log_start: Family<Labels, Gauge>,
    log_end: Family<Labels, Gauge>,
}

impl std::fmt::Debug for BrokerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerMetrics")
    }
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = BrokerMetrics {
            registry: Registry::default(),
            messages_in: TopicCounter::default(),
            bytes_in: TopicCounter::default(),
            bytes_out: TopicCounter::default(),
            failed_produce: TopicCounter::default(),
            failed_fetch: TopicCounter::default(),
            requests: Family::default(),
            partition_count: Gauge::default(),
            leader_count: Gauge::default(),
            log_size: Family::default(),
            log_start: Family::default(),
            log_end: Family::default(),
        };
        registry.register(
            MESSAGES_IN,
            "Records appended (BrokerTopicMetrics MessagesInPerSec)",
            m.messages_in.0.clone(),
        );
        registry.register(BYTES_IN, "Bytes produced (BrokerTopicMetrics BytesInPerSec)", m.bytes_in.0.clone());
        registry.register(BYTES_OUT, "Bytes fetched (BrokerTopicMetrics BytesOutPerSec)", m.bytes_out.0.clone());
        registry.register(FAILED_PRODUCE, "Failed produce requests", m.failed_produce.0.clone());
        registry.register(FAILED_FETCH, "Failed fetch requests", m.failed_fetch.0.clone());
        registry.register(REQUESTS, "Requests by type (RequestMetrics RequestsPerSec)", m.requests.clone());
        registry.register(PARTITION_COUNT, "Partitions on this broker", m.partition_count.clone());
        registry.register(LEADER_COUNT, "Partitions this broker leads", m.leader_count.clone());
        registry.register(LOG_SIZE, "Bytes of log on disk (Log Size)", m.log_size.clone());
        registry.register(LOG_START_OFFSET, "Log start offset (Log LogStartOffset)", m.log_start.clone());
        registry.register(LOG_END_OFFSET, "Log end offset (Log LogEndOffset)", m.log_end.clone());
        BrokerMetrics { registry, ..m }
    }

    pub fn request(&self, name: &'static str) {
        self.requests.get_or_create(&vec![("request", name.to_string())]).inc();
    }

    /// Refreshes the log gauges and renders everything.
    pub fn render(&self, logs: &LogManager) -> String {
        let all = logs.all();
        self.partition_count.set(all.len() as i64);
        self.leader_count.set(all.len() as i64);
        self.log_size.clear();
        self.log_start.clear();
        self.log_end.clear();
        for log in all {
            let labels = vec![("topic", log.topic.clone()), ("partition", log.partition.to_string())];
            self.log_size.get_or_create(&labels).set(log.size_bytes() as i64);
            self.log_start.get_or_create(&labels).set(log.log_start_offset());
            self.log_end.get_or_create(&labels).set(log.log_end_offset());
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("encoding to a String cannot fail");
        out
    }
}

/// Serves `/metrics` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<BrokerMetrics>,
    logs: Arc<LogManager>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            let logs = logs.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                    metrics.render(&logs),
                )
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
