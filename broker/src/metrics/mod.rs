//! Broker metrics under the names the Prometheus JMX exporter's usual Kafka
//! rules and kafka_exporter give them, so the dashboards and alert rules
//! people already run keep working; kmon's own figures are
//! `kmon_<subsystem>_<name>`. Every name is a constant here, and
//! `dashboards/METRICS.md` is the catalogue (JMX MBean, labels, who exports).
//!
//! - event metrics (counters, histograms) live in [`BrokerMetrics`] and move
//!   as things happen;
//! - state metrics (gauges) are computed at scrape time by [`collect`] from
//!   the broker's state: logs, hosted partitions, metadata, groups.
//!
//! Cluster-wide series are exported once per cluster: controller and
//! balance figures by the active controller, per-partition figures by the
//! partition's leader, consumer-group figures by the group's coordinator.
//!
//! `/metrics` speaks OpenMetrics when the scraper asks for it (`Accept:
//! application/openmetrics-text`) and the Prometheus text format 0.0.4
//! otherwise.

pub mod collect;
pub mod filter;
pub mod names;
pub mod timing;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use filter::NameFilter;
use names::*;

pub type Labels = Vec<(&'static str, String)>;

/// Per-topic counters plus the all-topics series (no `topic` label), as the
/// JMX exporter emits them.
#[derive(Clone)]
pub struct TopicCounter(Family<Labels, Counter>, bool);

impl TopicCounter {
    /// The all-topics series exists from the start, at 0 (as the JMX
    /// exporter shows it): rates have a baseline, and a scraper after only
    /// these counters finds them at the top of the page before any traffic.
    fn new(enabled: bool) -> Self {
        let family = Family::default();
        if enabled {
            drop(family.get_or_create(&Vec::new()));
        }
        TopicCounter(family, enabled)
    }

    /// Creates a topic's series at 0 if it does not exist yet.
    fn ensure(&self, topic: &str) {
        drop(self.0.get_or_create(&vec![("topic", topic.to_string())]));
    }

    pub fn inc_by(&self, topic: &str, n: u64) {
        if !self.1 {
            return;
        }
        self.0.get_or_create(&vec![("topic", topic.to_string())]).inc_by(n);
        self.0.get_or_create(&Vec::new()).inc_by(n);
    }
}

fn latency_family() -> Family<Labels, Histogram> {
    Family::new_with_constructor(|| {
        Histogram::new([
            0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0, 30000.0,
        ])
    })
}

/// The phases of a request, as Kafka's RequestMetrics splits them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestTiming {
    /// From the server receiving the request to its handler starting.
    pub queue: Duration,
    /// Time the broker worked on the request itself.
    pub local: Duration,
    /// Time it waited on others: followers for acks=all, new data for a
    /// long-poll fetch, the quorum for a metadata write.
    pub remote: Duration,
}

/// What a scrape reads of a broker. The metrics see this, not `Broker`
/// (which owns the metrics), so neither module imports the other.
pub trait MetricsSource: Send + Sync + 'static {
    fn metrics(&self) -> &BrokerMetrics;
    fn broker_id(&self) -> crate::controller::state::BrokerId;
    fn metadata(&self) -> Arc<crate::controller::state::ClusterState>;
    /// Whether this broker is the active controller (the quorum's leader).
    fn is_controller(&self) -> bool;
    fn hosted(&self) -> Vec<Arc<crate::replication::partition::HostedPartition>>;
    fn logs(&self) -> Vec<Arc<crate::log::PartitionLog>>;
    fn raft_status(&self) -> crate::controller::RaftStatus;
    /// This broker's domains and advertised address.
    fn info(&self) -> BrokerInfo;
    /// Data directories where an I/O error happened since start.
    fn offline_log_dirs(&self) -> usize;
    /// The groups this broker coordinates, with their lag.
    fn groups(&self) -> Vec<crate::group::coordinator::GroupView>;
}

/// What `kafka_broker_info` labels a broker with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerInfo {
    pub fault_domain: String,
    pub update_domain: String,
    /// The gRPC address the broker advertises (registers in the metadata).
    pub address: String,
}

/// An open connection, counted in the connection-count gauge while alive.
#[derive(Debug)]
pub struct ConnectionGuard {
    metrics: Arc<BrokerMetrics>,
    listener: &'static str,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.connections.get_or_create(&vec![("listener", self.listener.to_string())]).dec();
    }
}

/// The `listener` label of the gRPC port's connections (clients, peers'
/// replication and quorum traffic); the Kafka listener's is `PLAINTEXT`.
pub const GRPC_LISTENER: &str = "GRPC";

/// A stream counted in the connection-count gauge while it is open.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    _guard: ConnectionGuard,
}

impl<S> Counted<S> {
    pub fn new(inner: S, guard: ConnectionGuard) -> Self {
        Counted { inner, _guard: guard }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for Counted<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

pub struct BrokerMetrics {
    registry: Registry,
    pub messages_in: TopicCounter,
    pub bytes_in: TopicCounter,
    pub bytes_out: TopicCounter,
    pub failed_produce: TopicCounter,
    pub failed_fetch: TopicCounter,
    pub total_produce: TopicCounter,
    pub total_fetch: TopicCounter,
    pub replication_bytes_in: Counter,
    pub replication_bytes_out: Counter,
    requests: Family<Labels, Counter>,
    total_time: Family<Labels, Histogram>,
    queue_time: Family<Labels, Histogram>,
    send_time: Family<Labels, Histogram>,
    local_time: Family<Labels, Histogram>,
    remote_time: Family<Labels, Histogram>,
    pub isr_shrinks: Counter,
    pub isr_expands: Counter,
    /// Idempotent producers' retries answered with their first offsets.
    pub producer_duplicates: Counter,
    /// Produced batches refused for their sequence or epoch, by error.
    producer_sequence_errors: Family<Labels, Counter>,
    /// Open connections by listener name.
    connections: Family<Labels, Gauge>,
    /// notAfter of the certificate each TLS listener presents, Unix seconds.
    certificate_expiry: Family<Labels, Gauge>,
    /// Requests the ACLs refused, by principal and resource type.
    authorizer_denied: Family<Labels, Counter>,
    /// SASL authentications on the Kafka listener.
    failed_authentication: Counter,
    successful_authentication: Counter,
    /// Nanoseconds spent working on requests (for the idle ratio).
    busy_nanos: AtomicU64,
    idle_window: parking_lot::Mutex<(Instant, u64)>,
    /// Nanoseconds spent sending responses (for the network idle ratio).
    send_nanos: AtomicU64,
    network_window: parking_lot::Mutex<(Instant, u64)>,
    workers: u64,
    /// With metrics off (broker config `metrics_enabled = false`), events
    /// are not counted and `/metrics` says so: the baseline for measuring
    /// what metrics cost.
    pub enabled: bool,
}

impl std::fmt::Debug for BrokerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerMetrics")
    }
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        Self::new(true)
    }
}

impl BrokerMetrics {
    pub fn new(enabled: bool) -> Self {
        let mut registry = Registry::default();
        let m = BrokerMetrics {
            registry: Registry::default(),
            messages_in: TopicCounter::new(enabled),
            bytes_in: TopicCounter::new(enabled),
            bytes_out: TopicCounter::new(enabled),
            failed_produce: TopicCounter::new(enabled),
            failed_fetch: TopicCounter::new(enabled),
            total_produce: TopicCounter::new(enabled),
            total_fetch: TopicCounter::new(enabled),
            replication_bytes_in: Counter::default(),
            replication_bytes_out: Counter::default(),
            requests: Family::default(),
            total_time: latency_family(),
            queue_time: latency_family(),
            send_time: latency_family(),
            local_time: latency_family(),
            remote_time: latency_family(),
            isr_shrinks: Counter::default(),
            isr_expands: Counter::default(),
            producer_duplicates: Counter::default(),
            producer_sequence_errors: Family::default(),
            connections: Family::default(),
            certificate_expiry: Family::default(),
            authorizer_denied: Family::default(),
            failed_authentication: Counter::default(),
            successful_authentication: Counter::default(),
            busy_nanos: AtomicU64::new(0),
            idle_window: parking_lot::Mutex::new((Instant::now(), 0)),
            send_nanos: AtomicU64::new(0),
            network_window: parking_lot::Mutex::new((Instant::now(), 0)),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get() as u64),
            enabled,
        };
        registry.register(
            MESSAGES_IN,
            "Records appended (BrokerTopicMetrics MessagesInPerSec)",
            m.messages_in.0.clone(),
        );
        registry.register(BYTES_IN, "Bytes produced (BrokerTopicMetrics BytesInPerSec)", m.bytes_in.0.clone());
        registry.register(
            BYTES_OUT,
            "Bytes fetched by consumers (BrokerTopicMetrics BytesOutPerSec)",
            m.bytes_out.0.clone(),
        );
        registry.register(
            FAILED_PRODUCE,
            "Failed produce requests (FailedProduceRequestsPerSec)",
            m.failed_produce.0.clone(),
        );
        registry.register(FAILED_FETCH, "Failed fetch requests (FailedFetchRequestsPerSec)", m.failed_fetch.0.clone());
        registry.register(TOTAL_PRODUCE, "Produce requests (TotalProduceRequestsPerSec)", m.total_produce.0.clone());
        registry.register(TOTAL_FETCH, "Fetch requests (TotalFetchRequestsPerSec)", m.total_fetch.0.clone());
        registry.register(
            REPLICATION_BYTES_IN,
            "Bytes fetched from leaders (ReplicationBytesInPerSec)",
            m.replication_bytes_in.clone(),
        );
        registry.register(
            REPLICATION_BYTES_OUT,
            "Bytes sent to followers (ReplicationBytesOutPerSec)",
            m.replication_bytes_out.clone(),
        );
        registry.register(
            PRODUCER_DUPLICATES,
            "Batches an idempotent producer sent again (its acknowledgement was lost), answered with the offsets they got the first time and not written again",
            m.producer_duplicates.clone(),
        );
        registry.register(
            PRODUCER_SEQUENCE_ERRORS,
            "Produced batches refused for their producer sequence or epoch, by error (out_of_order_sequence_number, invalid_producer_epoch)",
            m.producer_sequence_errors.clone(),
        );
        registry.register(REQUESTS, "Requests by type (RequestMetrics RequestsPerSec)", m.requests.clone());
        registry.register(
            TOTAL_TIME_MS,
            "Request time in ms, from arrival to the last response byte handed to HTTP/2 (RequestMetrics TotalTimeMs)",
            m.total_time.clone(),
        );
        registry.register(
            QUEUE_TIME_MS,
            "Time from the server receiving a request to its handler starting, ms (RequestQueueTimeMs)",
            m.queue_time.clone(),
        );
        registry.register(
            RESPONSE_SEND_TIME_MS,
            "Time from the handler's answer to its last byte handed to HTTP/2, ms (ResponseSendTimeMs)",
            m.send_time.clone(),
        );
        registry.register(LOCAL_TIME_MS, "Time the broker worked on a request, ms (LocalTimeMs)", m.local_time.clone());
        registry.register(
            REMOTE_TIME_MS,
            "Time a request waited on replicas, new data or the quorum, ms (RemoteTimeMs)",
            m.remote_time.clone(),
        );
        registry.register(
            ISR_SHRINKS,
            "ISR shrinks proposed by this leader and accepted (IsrShrinksPerSec)",
            m.isr_shrinks.clone(),
        );
        registry.register(
            ISR_EXPANDS,
            "ISR expansions proposed by this leader and accepted (IsrExpandsPerSec)",
            m.isr_expands.clone(),
        );
        registry.register(
            CONNECTION_COUNT,
            "Open client connections by listener (socket-server-metrics connection-count)",
            m.connections.clone(),
        );
        registry.register(
            TLS_CERTIFICATE_EXPIRY,
            "When the certificate a TLS listener presents expires (notAfter), Unix seconds",
            m.certificate_expiry.clone(),
        );
        registry.register(
            AUTHORIZER_DENIED,
            "Requests refused by the ACLs, by principal and resource type (topic, group, cluster)",
            m.authorizer_denied.clone(),
        );
        registry.register(
            FAILED_AUTHENTICATION,
            "SASL authentications on the Kafka listener that failed",
            m.failed_authentication.clone(),
        );
        registry.register(
            SUCCESSFUL_AUTHENTICATION,
            "SASL authentications on the Kafka listener that succeeded",
            m.successful_authentication.clone(),
        );
        BrokerMetrics { registry, ..m }
    }

    /// Counts a produced batch refused for its sequence or epoch.
    pub fn producer_sequence_error(&self, error: &crate::log::producer_state::SequenceError) {
        use crate::log::producer_state::SequenceError;
        let name = match error {
            SequenceError::OutOfOrder { .. } => "out_of_order_sequence_number",
            SequenceError::InvalidEpoch { .. } => "invalid_producer_epoch",
        };
        self.producer_sequence_errors.get_or_create(&vec![("error", name.to_string())]).inc();
    }

    /// Notes the certificate a TLS listener presents; a reload replaces the
    /// listener's old series (its subject may have changed).
    pub fn set_certificate_expiry(&self, listener: &str, subject: &str, not_after: i64, old_subject: Option<&str>) {
        if let Some(old) = old_subject {
            self.certificate_expiry.remove(&vec![("listener", listener.to_string()), ("subject", old.to_string())]);
        }
        self.certificate_expiry
            .get_or_create(&vec![("listener", listener.to_string()), ("subject", subject.to_string())])
            .set(not_after);
    }

    /// Counts a request the ACLs refused. Principals come from certificates
    /// the cluster's CA signed (or ANONYMOUS), so the label stays bounded.
    /// Counts a SASL authentication on the Kafka listener.
    pub fn authentication(&self, succeeded: bool) {
        if succeeded { &self.successful_authentication } else { &self.failed_authentication }.inc();
    }

    pub fn authorizer_denied(&self, principal: &str, resource_type: &str) {
        self.authorizer_denied
            .get_or_create(&vec![
                ("principal", principal.to_string()),
                ("resource_type", resource_type.to_ascii_lowercase()),
            ])
            .inc();
    }

    /// Counts a connection opened on `listener` until the guard drops.
    pub fn connection_opened(self: &Arc<Self>, listener: &'static str) -> ConnectionGuard {
        self.connections.get_or_create(&vec![("listener", listener.to_string())]).inc();
        ConnectionGuard { metrics: self.clone(), listener }
    }

    /// Counts a request and its timing.
    pub fn observe_request(&self, request: &'static str, timing: RequestTiming) {
        if !self.enabled {
            return;
        }
        let labels = vec![("request", request.to_string())];
        self.requests.get_or_create(&labels).inc();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.queue_time.get_or_create(&labels).observe(ms(timing.queue));
        self.local_time.get_or_create(&labels).observe(ms(timing.local));
        self.remote_time.get_or_create(&labels).observe(ms(timing.remote));
        self.busy_nanos.fetch_add(timing.local.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Records the end of a response (from the timing layer): the time
    /// spent sending it and the request's total time.
    pub fn observe_response(&self, request: &'static str, send: Duration, total: Duration) {
        if !self.enabled {
            return;
        }
        let labels = vec![("request", request.to_string())];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.send_time.get_or_create(&labels).observe(ms(send));
        self.send_nanos.fetch_add(send.as_nanos() as u64, Ordering::Relaxed);
        self.total_time.get_or_create(&labels).observe(ms(total));
    }

    /// Share of request-handling capacity not used since the last scrape
    /// (RequestHandlerAvgIdlePercent): 1 − busy time ÷ (elapsed × workers).
    pub fn idle_ratio(&self) -> f64 {
        Self::idle_since_last(&self.busy_nanos, &self.idle_window, self.workers)
    }

    /// Share of time not spent sending responses since the last scrape
    /// (NetworkProcessorAvgIdlePercent): 1 − send time ÷ (elapsed × workers).
    pub fn network_idle_ratio(&self) -> f64 {
        Self::idle_since_last(&self.send_nanos, &self.network_window, self.workers)
    }

    fn idle_since_last(busy_nanos: &AtomicU64, window: &parking_lot::Mutex<(Instant, u64)>, workers: u64) -> f64 {
        let busy = busy_nanos.load(Ordering::Relaxed);
        let mut window = window.lock();
        let (since, busy_then) = *window;
        let elapsed = since.elapsed().as_nanos() as f64 * workers as f64;
        *window = (Instant::now(), busy);
        if elapsed <= 0.0 {
            return 1.0;
        }
        (1.0 - (busy - busy_then) as f64 / elapsed).clamp(0.0, 1.0)
    }

    /// Encodes the event metrics (OpenMetrics, without the `# EOF`).
    fn encode_events(&self, out: &mut String) {
        encode(out, &self.registry).expect("encoding to a String cannot fail");
        strip_eof(out);
    }
}

static PROCESS_START: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

/// Notes when the process started (the first call wins): `server::run_with`
/// calls it first thing, before recovering logs, so a restart shows at once
/// in `process_start_time_seconds`.
pub fn mark_process_start() {
    PROCESS_START.get_or_init(std::time::SystemTime::now);
}

/// When the process started, seconds since the Unix epoch.
pub fn process_start_time_seconds() -> f64 {
    let started = *PROCESS_START.get_or_init(std::time::SystemTime::now);
    started.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn strip_eof(out: &mut String) {
    if out.ends_with("# EOF\n") {
        out.truncate(out.len() - "# EOF\n".len());
    }
}

/// Which exposition format a scraper gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    PrometheusText,
}

impl Format {
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::PrometheusText,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Turns OpenMetrics text into the Prometheus text format 0.0.4: no `# EOF`
/// or `# UNIT`, and counters named by their `_total` series.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.insert(name.to_string());
        }
    }
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# TYPE ", "# HELP "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Serves `/metrics` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    broker: Arc<dyn MetricsSource>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    use axum::extract::RawQuery;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap, RawQuery(query): RawQuery| {
            let broker = broker.clone();
            async move {
                let only = match NameFilter::from_query(query.as_deref().unwrap_or("")) {
                    Ok(only) => only,
                    Err(message) => return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
                };
                let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
                let gzip = headers
                    .get(header::ACCEPT_ENCODING)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
                let body = tokio::task::spawn_blocking(move || {
                    let text = render(broker.as_ref(), format, only.as_ref());
                    if gzip { gzip_fast(text.as_bytes()) } else { text.into_bytes() }
                })
                .await
                .unwrap_or_default();
                let encoding = if gzip { "gzip" } else { "identity" };
                ([(header::CONTENT_TYPE, format.content_type()), (header::CONTENT_ENCODING, encoding)], body)
                    .into_response()
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// Prometheus asks for gzip: 10,000 partitions are ~6.5 MB of text, ~0.3 MB
/// compressed. The fastest level is plenty for such repetitive text.
fn gzip_fast(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 8), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

/// What a scrape returns: everything, or `only` the named metrics.
pub fn render(broker: &dyn MetricsSource, format: Format, only: Option<&NameFilter>) -> String {
    if !broker.metrics().enabled {
        return "# metrics are disabled on this broker (metrics_enabled = false)\n".into();
    }
    // As Kafka's per-topic meters, the failure counts of a topic this broker
    // leads exist at 0, so dashboards show a zero line, not no data. Done
    // here, per scrape (when asked for), rather than on every produce and
    // fetch.
    if only.is_none_or(|only| only.wants_any(&[FAILED_PRODUCE, FAILED_FETCH])) {
        let hosted = broker.hosted();
        let led: std::collections::BTreeSet<&str> =
            hosted.iter().filter(|h| h.leader_epoch().is_some()).map(|h| h.topic.as_str()).collect();
        for topic in led {
            broker.metrics().failed_produce.ensure(topic);
            broker.metrics().failed_fetch.ensure(topic);
        }
    }
    let mut out = String::with_capacity(64 << 10);
    broker.metrics().encode_events(&mut out);
    collect::encode_state(broker, &mut out, only);
    out.push_str("# EOF\n");
    let page = match format {
        Format::OpenMetrics => out,
        Format::PrometheusText => to_prometheus_text(&out),
    };
    match only {
        Some(only) => only.apply(&page),
        None => page,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counters_by_their_total_series() {
        let om = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total 3\n# TYPE g gauge\n# UNIT g bytes\ng 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total 3\n# TYPE g gauge\ng 1\n"
        );
        assert_eq!(Format::negotiate(Some("application/openmetrics-text;version=1.0.0")), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::PrometheusText);
        assert_eq!(Format::negotiate(None), Format::PrometheusText);
    }
}
