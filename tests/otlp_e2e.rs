//! OpenTelemetry export: a real `kmon broker` (and `kmon agent`) with
//! `--otlp-endpoint` sends spans and metrics to a test OTLP collector in
//! this process; a broker without the flag sends nothing; shutting down
//! with the collector gone does not hang.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tonic::{Request, Response, Status};

/// Everything the collector received.
#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.lock().unwrap().traces.push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.0.lock().unwrap().metrics.push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// A collector on 127.0.0.1:0, served by its own runtime until dropped.
struct TestCollector {
    endpoint: String,
    received: Collector,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestCollector {
    fn start() -> TestCollector {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Collector::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(received.clone()))
                .add_service(MetricsServiceServer::new(received.clone()))
                .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                }),
        );
        TestCollector { endpoint, received, stop: Some(stop), runtime: Some(runtime) }
    }

    fn with<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.received.0.lock().unwrap())
    }

    /// Stops serving: the port refuses connections from now on.
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for TestCollector {
    fn drop(&mut self) {
        self.stop();
    }
}

fn string_attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    })
}

fn resource_attr(resource: &Option<Resource>, key: &str) -> Option<String> {
    string_attr(&resource.as_ref()?.attributes, key)
}

/// Every (resource, metric) the collector holds, latest last.
fn metrics(received: &Received) -> Vec<(Option<Resource>, Metric)> {
    received
        .metrics
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| rm.scope_metrics.iter().flat_map(|sm| &sm.metrics).map(|m| (rm.resource.clone(), m.clone())))
        .collect()
}

/// The latest value of a counter or gauge data point with `labels`.
fn latest_value(received: &Received, service: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics(received)
        .into_iter()
        .filter(|(resource, m)| m.name == name && resource_attr(resource, "service.name").as_deref() == Some(service))
        .filter_map(|(_, m)| {
            let points = match m.data? {
                metric::Data::Sum(s) => s.data_points,
                metric::Data::Gauge(g) => g.data_points,
                _ => return None,
            };
            points.into_iter().find(|p| labels.iter().all(|(k, v)| string_attr(&p.attributes, k).as_deref() == Some(v)))
        })
        .filter_map(|p| match p.value? {
            number_data_point::Value::AsDouble(v) => Some(v),
            number_data_point::Value::AsInt(v) => Some(v as f64),
        })
        .next_back()
}

#[test]
fn broker_exports_spans_and_metrics_over_otlp_and_a_broker_without_the_flag_does_not() {
    let mut collector = TestCollector::start();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["--otlp-endpoint", &collector.endpoint, "--otlp-interval", "1s"],
    );
    let b = broker.bootstrap();
    kmon_ok(&b, &["topic", "create", "traced", "--partitions", "1"], "");
    kmon_ok(&b, &["produce", "--topic", "traced"], "a\nb\nc\nd\ne\n");

    // Spans: a `produce` span with the topic, from service kmon-broker.
    wait_for("a produce span with its topic", Duration::from_secs(30), || {
        collector.with(|r| {
            r.traces.iter().flat_map(|t| &t.resource_spans).find_map(|rs| {
                let service = resource_attr(&rs.resource, "service.name");
                let span = rs.scope_spans.iter().flat_map(|ss| &ss.spans).find(|s| {
                    s.name == "produce" && string_attr(&s.attributes, "topic").as_deref() == Some("traced")
                })?;
                assert_eq!(service.as_deref(), Some("kmon-broker"));
                assert_eq!(resource_attr(&rs.resource, "kmon.broker.id").as_deref(), Some("1"));
                Some(span.clone())
            })
        })
    });

    // Metrics: the produced count, as a monotonic cumulative sum, and the
    // request latency as a histogram.
    wait_for("messagesin_total = 5 over OTLP", Duration::from_secs(30), || {
        collector.with(|r| {
            latest_value(r, "kmon-broker", "kafka_server_brokertopicmetrics_messagesin_total", &[("topic", "traced")])
                .filter(|v| *v == 5.0)
        })
    });
    collector.with(|r| {
        let all = metrics(r);
        let (_, messages_in) =
            all.iter().find(|(_, m)| m.name == "kafka_server_brokertopicmetrics_messagesin_total").unwrap();
        let Some(metric::Data::Sum(sum)) = &messages_in.data else { panic!("not a sum: {messages_in:?}") };
        assert!(sum.is_monotonic, "{sum:?}");
        let histogram = all
            .iter()
            .filter(|(_, m)| m.name == "kafka_network_requestmetrics_totaltimems")
            .find_map(|(_, m)| match &m.data {
                Some(metric::Data::Histogram(h)) => {
                    h.data_points.iter().find(|p| string_attr(&p.attributes, "request").as_deref() == Some("Produce"))
                }
                _ => None,
            })
            .expect("a Produce latency histogram")
            .clone();
        assert!(histogram.count >= 1, "{histogram:?}");
        assert_eq!(histogram.bucket_counts.len(), histogram.explicit_bounds.len() + 1, "{histogram:?}");
        assert_eq!(histogram.bucket_counts.iter().sum::<u64>(), histogram.count, "{histogram:?}");
        assert!(histogram.explicit_bounds.iter().all(|b| b.is_finite()));
    });
    assert!(broker.stderr().contains("OTLP export on"), "{}", broker.stderr());

    // A broker without the flag exports nothing: while the first one
    // exports twice more, nothing arrives from broker 2.
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        let quiet_dir = tempfile::tempdir().unwrap();
        let quiet = BrokerProcess::start(&quiet_dir.path().join("data"), &["--id", "2"]);
        kmon_ok(&quiet.bootstrap(), &["topic", "create", "quiet", "--partitions", "1"], "");
        kmon_ok(&quiet.bootstrap(), &["produce", "--topic", "quiet"], "x\n");
        let seen = collector.with(|r| r.metrics.len());
        wait_for("two more exports from broker 1", Duration::from_secs(30), || {
            collector.with(|r| (r.metrics.len() >= seen + 2).then_some(()))
        });
        collector.with(|r| {
            let from_quiet = r
                .metrics
                .iter()
                .flat_map(|m| &m.resource_metrics)
                .map(|rm| &rm.resource)
                .chain(r.traces.iter().flat_map(|t| &t.resource_spans).map(|rs| &rs.resource))
                .any(|resource| resource_attr(resource, "kmon.broker.id").as_deref() == Some("2"));
            assert!(!from_quiet, "a broker without --otlp-endpoint exported");
        });
        assert!(!quiet.stderr().contains("OTLP export on"), "{}", quiet.stderr());
    }

    // Shutdown with the collector gone is bounded.
    collector.stop();
    let started = Instant::now();
    broker.terminate();
    assert!(started.elapsed() < Duration::from_secs(15), "shutdown took {:?}", started.elapsed());
}

#[test]
fn agent_exports_its_metrics_over_otlp() {
    let collector = TestCollector::start();
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    // An ephemeral port: the exporter learns the bound address from the agent.
    let metrics_listen = "127.0.0.1:0".to_string();
    let child = Command::new(KMON)
        .args(["agent", "--bootstrap", &broker.bootstrap(), "--metrics-listen", &metrics_listen])
        .args(["--interval", "200ms", "--node", "otlp-node"])
        .arg("--buffer-dir")
        .arg(dir.path().join("agent-buffer"))
        .args(["--otlp-endpoint", &collector.endpoint, "--otlp-interval", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kmon agent");
    let mut agent = KillOnDrop(child); // `kmon agent`
    wait_for("node_load1 from kmon-agent over OTLP", Duration::from_secs(30), || {
        collector.with(|r| {
            let found = metrics(r).into_iter().find(|(resource, m)| {
                m.name == "node_load1" && resource_attr(resource, "service.name").as_deref() == Some("kmon-agent")
            })?;
            assert_eq!(resource_attr(&found.0, "kmon.node").as_deref(), Some("otlp-node"));
            Some(())
        })
    });
    // Counters keep their `_total` name and are monotonic sums.
    wait_for("the agent's own counter", Duration::from_secs(30), || {
        collector.with(|r| latest_value(r, "kmon-agent", "kmon_agent_samples_shipped_total", &[]))
    });
    let _ = Command::new("kill").args(["-TERM", &agent.0.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while agent.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "agent did not stop within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
