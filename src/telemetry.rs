//! OpenTelemetry export over OTLP/gRPC, off unless an endpoint is given
//! (`--otlp-endpoint` or `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! ```text
//! tracing ─┬─ fmt layer (EnvFilter, RUST_LOG) ─▶ stderr              (always)
//!          └─ tracing-opentelemetry layer ─▶ batch span processor ─▶ OTLP TraceService
//!
//! every interval: exposition text (the same as /metrics) ─▶ convert ─▶ OTLP MetricsService
//! ```
//!
//! - **Traces**: the kmon crates' spans (`produce`, `fetch`, `replica_fetch`,
//!   `join_group`, `sync_group`, … at DEBUG, so they cost nothing when no
//!   exporter is configured) go to a tracing-opentelemetry layer with its
//!   own filter; logs still go to stderr as before.
//! - **Metrics**: [`spawn_metrics`] renders the process's own exposition
//!   text every interval and sends it as one OTLP export ([`convert`] maps
//!   counters, gauges and histograms). The text is the single source of
//!   truth: the figures and names over OTLP are those of `/metrics`,
//!   including the state gauges computed at scrape time and the latency
//!   histograms, which the SDK's observable instruments could not carry
//!   (OpenTelemetry has no observable histogram) without a second copy of
//!   every metric.
//!
//! Shutdown: [`Telemetry::shutdown`] flushes the span processor on a plain
//! thread, bounded, so a collector that is gone cannot hold the process.

mod convert;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Instrumentation scope of everything kmon exports.
const SCOPE: &str = "kmon";
/// One export (spans or metrics) gives up after this long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the span flush may hold up the exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Exports larger than this are split (collectors accept 4 MiB by default).
const MAX_REQUEST_BYTES: usize = 3 << 20;
/// Default export interval of the metrics.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The OTLP flags `kmon broker` and `kmon agent` share.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct OtlpArgs {
    /// OTLP/gRPC collector, e.g. http://127.0.0.1:4317: export traces and metrics there (default: export nothing).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub(crate) otlp_endpoint: Option<String>,
    /// How often metrics are exported over OTLP, e.g. 10s [default: 10s, or the config file's].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) otlp_interval: Option<Duration>,
}

/// Where and what to export.
#[derive(Debug, Clone)]
pub(crate) struct Otlp {
    /// `http://host:port` of an OTLP/gRPC collector.
    pub(crate) endpoint: String,
    /// Metrics export interval.
    pub(crate) interval: Duration,
    /// `service.name`: `kmon-broker` or `kmon-agent`.
    pub(crate) service: &'static str,
    /// More resource attributes (broker id, node, domains).
    pub(crate) resource: Vec<(&'static str, String)>,
}

impl Otlp {
    /// Checks the endpoint is an `http(s)://host:port` URI.
    pub(crate) fn new(
        endpoint: &str,
        interval: Duration,
        service: &'static str,
        resource: Vec<(&'static str, String)>,
    ) -> anyhow::Result<Otlp> {
        let uri: tonic::codegen::http::Uri =
            endpoint.parse().with_context(|| format!("--otlp-endpoint '{endpoint}' is not a URI"))?;
        anyhow::ensure!(
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some(),
            "--otlp-endpoint '{endpoint}' must look like http://HOST:PORT"
        );
        anyhow::ensure!(!interval.is_zero(), "--otlp-interval must be > 0");
        Ok(Otlp { endpoint: endpoint.to_string(), interval, service, resource })
    }
}

/// What must be flushed at exit.
#[must_use = "call shutdown() so buffered spans are sent"]
pub(crate) struct Telemetry {
    tracer: Option<SdkTracerProvider>,
}

/// Installs the global subscriber: logs to stderr (`RUST_LOG`, default
/// `info`), plus span export when `otlp` is set.
pub(crate) fn init(otlp: Option<&Otlp>) -> anyhow::Result<Telemetry> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter);
    let Some(otlp) = otlp else {
        let _ = tracing_subscriber::registry().with(fmt).try_init();
        return Ok(Telemetry { tracer: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(otlp.endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("building the OTLP span exporter")?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(otlp.service)
        .with_attributes(otlp.resource.iter().map(|(k, v)| opentelemetry::KeyValue::new(*k, v.clone())))
        .build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    // kmon's spans (DEBUG and up) and, as span events, its INFO+ events;
    // nothing from the libraries (tonic, h2: the exporter's own traffic).
    let spans = tracing_subscriber::filter::filter_fn(|meta| {
        meta.target().starts_with("kmon")
            && (*meta.level() <= tracing::Level::INFO || (meta.is_span() && *meta.level() <= tracing::Level::DEBUG))
    })
    .with_max_level_hint(tracing::level_filters::LevelFilter::DEBUG);
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(SCOPE)).with_filter(spans);
    tracing_subscriber::registry().with(fmt).with(otel).try_init().context("installing the tracing subscriber")?;
    tracing::info!(endpoint = %otlp.endpoint, service = otlp.service, interval = ?otlp.interval, "OTLP export on");
    Ok(Telemetry { tracer: Some(provider) })
}

impl Telemetry {
    /// Flushes and stops the span exporter, waiting at most
    /// `SHUTDOWN_GRACE`. The flush blocks its thread while the exporter's
    /// channel runs on the runtime, so it goes to a plain thread (never the
    /// runtime's own: on a current-thread runtime that would deadlock).
    pub(crate) async fn shutdown(self) {
        let Some(provider) = self.tracer else { return };
        let (done, flushed) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = done.send(provider.shutdown());
        });
        match tokio::time::timeout(SHUTDOWN_GRACE, flushed).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => tracing::warn!(error = %err, "OTLP span exporter shutdown"),
            Ok(Err(_)) | Err(_) => tracing::warn!("OTLP span exporter did not stop in time; spans may be lost"),
        }
    }
}

/// Exports `render()`'s exposition text as OTLP metrics every
/// `otlp.interval` until `shutdown`, then once more (bounded). `render` runs
/// on a blocking thread; `None` means nothing to export this round.
pub(crate) fn spawn_metrics<F>(otlp: &Otlp, render: F, shutdown: CancellationToken) -> JoinHandle<()>
where
    F: Fn() -> Option<String> + Send + Sync + 'static,
{
    let otlp = otlp.clone();
    let render = std::sync::Arc::new(render);
    tokio::spawn(async move {
        let channel = match tonic::transport::Endpoint::from_shared(otlp.endpoint.clone()) {
            Ok(endpoint) => endpoint.timeout(EXPORT_TIMEOUT).connect_timeout(EXPORT_TIMEOUT).connect_lazy(),
            Err(err) => {
                tracing::error!(endpoint = %otlp.endpoint, error = %err, "OTLP metrics: bad endpoint; not exporting");
                return;
            }
        };
        let mut client = MetricsServiceClient::new(channel);
        let resource = PbResource {
            attributes: convert::attributes(
                std::iter::once(("service.name", otlp.service))
                    .chain(otlp.resource.iter().map(|(k, v)| (*k, v.as_str()))),
            ),
            ..Default::default()
        };
        let start_ns = now_ns();
        let mut failing = false;
        let mut tick = tokio::time::interval(otlp.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let last = tokio::select! {
                biased;
                _ = shutdown.cancelled() => true,
                _ = tick.tick() => false,
            };
            let render = render.clone();
            let metrics = tokio::task::spawn_blocking(move || {
                let text = render()?;
                let (metrics, skipped) = convert::to_otlp(&text, convert::Times { start_ns, now_ns: now_ns() });
                if skipped > 0 {
                    tracing::debug!(skipped, "OTLP metrics: exposition lines not understood");
                }
                Some(metrics)
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
            let export = export(&mut client, &resource, metrics);
            let result = if last {
                tokio::time::timeout(EXPORT_TIMEOUT, export).await.unwrap_or_else(|_| Err("timed out".into()))
            } else {
                tokio::select! {
                    result = export => result,
                    _ = shutdown.cancelled() => Ok(()),
                }
            };
            // One line when exporting starts failing and one when it recovers.
            match result {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(endpoint = %otlp.endpoint, "OTLP metrics export recovered");
                }
                Err(err) if !failing => {
                    failing = true;
                    tracing::warn!(endpoint = %otlp.endpoint, error = %err, "OTLP metrics export failed; will retry");
                }
                _ => {}
            }
            if last {
                return;
            }
        }
    })
}

/// Sends `metrics` in as few requests as fit under `MAX_REQUEST_BYTES`.
async fn export(
    client: &mut MetricsServiceClient<tonic::transport::Channel>,
    resource: &PbResource,
    metrics: Vec<Metric>,
) -> Result<(), String> {
    for batch in batches(metrics) {
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: SCOPE.into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    metrics: batch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let response = client.export(request).await.map_err(|status| status.to_string())?.into_inner();
        if let Some(partial) = response.partial_success
            && partial.rejected_data_points > 0
        {
            tracing::debug!(rejected = partial.rejected_data_points, message = %partial.error_message, "OTLP metrics: partly rejected");
        }
    }
    Ok(())
}

/// Groups whole metrics into requests of at most `MAX_REQUEST_BYTES` (a
/// single larger metric goes alone).
fn batches(metrics: Vec<Metric>) -> Vec<Vec<Metric>> {
    let mut out: Vec<Vec<Metric>> = Vec::new();
    let mut size = 0;
    for metric in metrics {
        let len = metric.encoded_len();
        match out.last_mut() {
            Some(batch) if size + len <= MAX_REQUEST_BYTES => {
                batch.push(metric);
                size += len;
            }
            _ => {
                out.push(vec![metric]);
                size = len;
            }
        }
    }
    out
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos() as u64
}

/// Where this process can scrape its own `/metrics` served on `listen`:
/// loopback for a wildcard address; `None` (with a warning) for port 0,
/// whose bound port is not known outside the agent.
pub(crate) fn local_scrape_address(listen: &str) -> Option<std::net::SocketAddr> {
    let mut addr: std::net::SocketAddr = listen.parse().ok()?;
    if addr.port() == 0 {
        tracing::warn!(%listen, "OTLP metrics export needs a fixed --metrics-listen port; exporting spans only");
        return None;
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Some(addr)
}

/// Reads `/metrics` of a server in this process over loopback HTTP/1.0 (the
/// agent's exposition, until the agent offers it directly). Blocking.
pub(crate) fn scrape_local(addr: std::net::SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, EXPORT_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(EXPORT_TIMEOUT)).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nAccept-Encoding: identity\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.split_whitespace().nth(1).filter(|code| *code == "200")?;
    Some(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        let ok = Otlp::new("http://127.0.0.1:4317", DEFAULT_INTERVAL, "kmon-broker", vec![]);
        assert!(ok.is_ok());
        for bad in ["127.0.0.1:4317", "ftp://x:1", "http://", "not a uri"] {
            assert!(Otlp::new(bad, DEFAULT_INTERVAL, "kmon-broker", vec![]).is_err(), "{bad}");
        }
        assert!(Otlp::new("http://127.0.0.1:4317", Duration::ZERO, "kmon-broker", vec![]).is_err());
    }

    #[test]
    fn large_exports_are_split() {
        let big = |name: &str| Metric {
            name: name.into(),
            description: "x".repeat(MAX_REQUEST_BYTES / 2),
            ..Default::default()
        };
        let small = |name: &str| Metric { name: name.into(), ..Default::default() };
        let sizes: Vec<usize> =
            batches(vec![small("a"), big("b"), big("c"), small("d")]).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2]);
        assert!(batches(vec![]).is_empty());
    }
}
