//! A running application's figures ([`StreamsMetrics`]), served as
//! Prometheus text by [`StreamsMetrics::serve`] at `GET /metrics`. Kafka
//! Streams' JMX-exporter names where they exist, `kmon_streams_*`
//! otherwise; the table is in METRICS.md under "Streams".

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::error::StreamsError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PartitionLabels {
    pub(crate) topic: String,
    pub(crate) partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StoreLabels {
    pub(crate) store: String,
    pub(crate) partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    pub(crate) reason: &'static str,
}

/// Cheap to clone; every clone shares the figures.
#[derive(Clone)]
pub struct StreamsMetrics {
    registry: Arc<Registry>,
    pub(crate) process_total: Counter,
    pub(crate) process_rate: Gauge<f64, AtomicU64>,
    pub(crate) dropped: Family<ReasonLabels, Counter>,
    pub(crate) duplicates_skipped: Counter,
    pub(crate) expired_windows: Counter,
    pub(crate) records_lag: Family<PartitionLabels, Gauge>,
    pub(crate) restore_seconds: Family<StoreLabels, Gauge<f64, AtomicU64>>,
    pub(crate) restored_records: Counter,
    pub(crate) commits: Counter,
    pub(crate) active_tasks: Gauge,
}

impl Default for StreamsMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamsMetrics {
    pub fn new() -> StreamsMetrics {
        let mut registry = Registry::default();
        let m = StreamsMetrics {
            registry: Arc::new(Registry::default()),
            process_total: Counter::default(),
            process_rate: Gauge::default(),
            dropped: Family::default(),
            duplicates_skipped: Counter::default(),
            expired_windows: Counter::default(),
            records_lag: Family::default(),
            restore_seconds: Family::default(),
            restored_records: Counter::default(),
            commits: Counter::default(),
            active_tasks: Gauge::default(),
        };
        registry.register(
            "kafka_streams_stream_thread_metrics_process",
            "Input records processed",
            m.process_total.clone(),
        );
        registry.register(
            "kafka_streams_stream_thread_metrics_process_rate",
            "Input records processed per second over the last commit interval",
            m.process_rate.clone(),
        );
        registry.register(
            "kafka_streams_stream_task_metrics_dropped_records",
            "Records dropped: late for their window, or unreadable by their serde",
            m.dropped.clone(),
        );
        registry.register(
            "kmon_streams_duplicates_skipped",
            "Reprocessed records whose update was already in the state (see the at-least-once notes)",
            m.duplicates_skipped.clone(),
        );
        registry.register(
            "kmon_streams_expired_windows",
            "Windows purged from their store once stream time passed their start + retention",
            m.expired_windows.clone(),
        );
        registry.register(
            "kafka_consumer_consumer_fetch_manager_metrics_records_lag",
            "Records of an owned input partition not processed yet, at the last commit",
            m.records_lag.clone(),
        );
        registry.register(
            "kmon_streams_state_restore_seconds",
            "How long the last restore of a store's task took",
            m.restore_seconds.clone(),
        );
        registry.register(
            "kmon_streams_state_restored_records",
            "Changelog (or table topic) records read back into stores",
            m.restored_records.clone(),
        );
        registry.register(
            "kmon_streams_commits",
            "Commits: changelog flushed, then input offsets committed",
            m.commits.clone(),
        );
        registry.register("kmon_streams_active_tasks", "Input partitions this instance owns", m.active_tasks.clone());
        StreamsMetrics { registry: Arc::new(registry), ..m }
    }

    /// Records processed so far.
    pub fn processed(&self) -> u64 {
        self.process_total.get()
    }

    pub fn render(&self) -> String {
        let mut body = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut body, &self.registry);
        body
    }

    /// Serves `GET /metrics` on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) -> Result<(), StreamsError> {
        let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let metrics = self.clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], metrics.render()) }
            }),
        );
        axum::serve(listener, app).await.map_err(|source| StreamsError::Metrics { address, source })
    }
}
