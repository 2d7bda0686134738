//! The proxy's own figures at `/metrics` (Prometheus text): requests per
//! route, method and status, their latency, records produced and consumer
//! instances open. Names are in METRICS.md under "REST proxy".

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// The route's pattern (`/v3/clusters/{cluster_id}/topics`), never the
    /// raw path, so topic names do not make new series.
    pub(crate) route: String,
    pub(crate) method: String,
    pub(crate) status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) route: String,
    pub(crate) method: String,
}

pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    pub(crate) records_produced: Counter,
    pub(crate) records_consumed: Counter,
    pub(crate) consumer_instances: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let records_produced = Counter::default();
        let records_consumed = Counter::default();
        let consumer_instances = Gauge::default();
        registry.register("kmon_rest_requests", "HTTP requests answered", requests.clone());
        registry.register("kmon_rest_request_duration_seconds", "Time to answer a request", latency.clone());
        registry.register(
            "kmon_rest_records_produced",
            "Records acknowledged to REST producers",
            records_produced.clone(),
        );
        registry.register("kmon_rest_records_consumed", "Records returned to REST consumers", records_consumed.clone());
        registry.register("kmon_rest_consumer_instances", "Consumer instances open", consumer_instances.clone());
        Metrics { registry, requests, latency, records_produced, records_consumed, consumer_instances }
    }

    pub(crate) fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels { route: route.to_owned(), method: method.to_owned(), status: status.to_string() };
        self.requests.get_or_create(&labels).inc();
        let route = RouteLabels { route: route.to_owned(), method: method.to_owned() };
        self.latency.get_or_create(&route).observe(elapsed.as_secs_f64());
    }

    pub(crate) fn render(&self) -> String {
        let mut body = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut body, &self.registry);
        body
    }
}
