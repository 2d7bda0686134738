//! The HTTP server: routes, shared state, access log, start-up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kmon_client::{Admin, Producer, ProducerConfig};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::consumers::{self, Instances};
use crate::error::RestError;
use crate::metrics::Metrics;
use crate::{openapi, records, v3};

/// Printed on stdout once the proxy serves: `kmon rest ready http=ADDR`.
pub const READY_PREFIX: &str = "kmon rest ready";

/// The cluster id the proxy shows, the one kmon's Kafka listener reports
/// in its Metadata responses.
pub const CLUSTER_ID: &str = "kmon";

#[derive(Debug, Clone, clap::Args)]
pub struct RestArgs {
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, default_value_t = 8 << 20)]
    pub max_body_bytes: usize,
    /// A consumer instance not used for this long is closed (its group
    /// member leaves), as the REST Proxy's consumer.instance.timeout.ms.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub consumer_idle_timeout: Duration,
}

/// What every request shares.
pub struct Proxy {
    pub(crate) bootstrap: String,
    pub(crate) admin: Admin,
    /// One idempotent acks=all producer for every HTTP producer: records of
    /// concurrent requests share its batches.
    pub(crate) producer: Producer,
    pub(crate) consumers: Mutex<Instances>,
    pub(crate) metrics: Metrics,
    pub(crate) max_body_bytes: usize,
    pub(crate) base_url: String,
}

/// Connects to the cluster at `bootstrap`, serves until SIGINT/SIGTERM.
pub async fn run(bootstrap: &str, args: RestArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(bootstrap).await?;
    let producer = Producer::connect(ProducerConfig::new(bootstrap.to_owned())).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr()?;
    let proxy = Arc::new(Proxy {
        bootstrap: bootstrap.to_owned(),
        admin,
        producer,
        consumers: Mutex::new(Instances::new()),
        metrics: Metrics::new(),
        max_body_bytes: args.max_body_bytes,
        base_url: format!("http://{address}"),
    });
    tokio::spawn(consumers::close_idle(proxy.clone(), args.consumer_idle_timeout));
    println!("{READY_PREFIX} http={address}");
    tracing::info!(%address, bootstrap, "REST proxy serving");
    axum::serve(listener, router(proxy.clone())).with_graceful_shutdown(shutdown_signal()).await?;
    consumers::close_all(&proxy).await;
    proxy.producer.flush().await.ok();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub(crate) fn router(proxy: Arc<Proxy>) -> Router {
    let cluster = "/v3/clusters/{cluster_id}";
    let topic = "/v3/clusters/{cluster_id}/topics/{topic_name}";
    let instance = "/consumers/{group_name}/instances/{instance}";
    Router::new()
        .route("/", get(|| async { axum::Json(serde_json::json!({})) }))
        .route("/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics))
        .route("/v3/clusters", get(v3::list_clusters))
        .route(cluster, get(v3::get_cluster))
        .route(&format!("{cluster}/topics"), get(v3::list_topics).post(v3::create_topic))
        .route(topic, get(v3::get_topic).delete(v3::delete_topic))
        .route(&format!("{topic}/partitions"), get(v3::list_partitions))
        .route(&format!("{topic}/partitions/{{partition_id}}"), get(v3::get_partition))
        .route(&format!("{topic}/records"), post(records::produce))
        .route(&format!("{topic}/records:batch"), post(records::produce_batch))
        .route("/consumers/{group_name}", post(consumers::create))
        .route(instance, axum::routing::delete(consumers::delete))
        .route(&format!("{instance}/subscription"), post(consumers::subscribe).get(consumers::subscription))
        .route(&format!("{instance}/records"), get(consumers::records))
        .route(&format!("{instance}/offsets"), post(consumers::commit))
        .fallback(|| async { RestError::NotFound("no such resource".into()) })
        // The body limit is applied by `JsonBody` (to answer in JSON).
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(proxy.clone(), access_log))
        .with_state(proxy)
}

async fn metrics(State(proxy): State<Arc<Proxy>>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], proxy.metrics.render())
}

/// One log line and one observation per request.
async fn access_log(State(proxy): State<Arc<Proxy>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    proxy.metrics.observe(&route, &method, status, elapsed);
    tracing::info!(target: "kmon_rest::access", %method, %path, status, micros = elapsed.as_micros() as u64, "request");
    response
}

/// A JSON request body, refused with a JSON error when it is too large
/// (413), not JSON, or not the expected shape (400).
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Proxy>> for JsonBody<T> {
    type Rejection = RestError;

    async fn from_request(request: Request, proxy: &Arc<Proxy>) -> Result<Self, Self::Rejection> {
        let limit = proxy.max_body_bytes;
        let body =
            axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| RestError::PayloadTooLarge { limit })?;
        parse_json(&body).map(JsonBody)
    }
}

pub(crate) fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, RestError> {
    if body.is_empty() {
        return Err(RestError::BadRequest("empty request body: a JSON object is expected".into()));
    }
    serde_json::from_slice(body).map_err(|e| RestError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Checks the path's cluster id is this cluster's.
pub(crate) fn check_cluster(cluster_id: &str) -> Result<(), RestError> {
    if cluster_id == CLUSTER_ID {
        Ok(())
    } else {
        Err(RestError::NotFound(format!("cluster {cluster_id:?} not found (this proxy serves {CLUSTER_ID:?})")))
    }
}

/// 204 No Content.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
