//! v2 consumer instances (Confluent REST Proxy v2): `POST /consumers/{group}`
//! creates a member of the group, `.../subscription` subscribes it,
//! `GET .../records` polls, `POST .../offsets` commits, `DELETE` closes it.
//! Each instance is a `GroupConsumer` of kmon's client, kept here between
//! requests and closed when unused for the idle timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use kmon_client::{AutoOffsetReset, ConsumerRecord, GroupConsumer, GroupConsumerConfig, TopicPartition};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::error::RestError;
use crate::server::{JsonBody, Proxy, no_content, parse_json};

/// How an instance renders keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Bytes as base64 strings.
    Binary,
    /// Bytes parsed as JSON (an error names the record that is not JSON).
    Json,
}

pub(crate) struct Instance {
    consumer: Option<GroupConsumer>,
    format: Format,
    last_used: Instant,
}

#[derive(Deserialize)]
pub(crate) struct CreateInstance {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default, rename = "auto.offset.reset")]
    auto_offset_reset: Option<String>,
    #[serde(default, rename = "auto.commit.enable")]
    auto_commit_enable: Option<Value>,
}

/// (group, instance name).
type InstanceKey = (String, String);

/// Every open instance by (group, name).
pub(crate) type Instances = std::collections::HashMap<InstanceKey, Arc<Mutex<Instance>>>;

fn instance_url(proxy: &Proxy, group: &str, name: &str) -> String {
    format!("{}/consumers/{group}/instances/{name}", proxy.base_url)
}

/// `POST /consumers/{group}`: `{"instance_id", "base_uri"}`; 409 if an
/// instance of that name exists in the group.
pub(crate) async fn create(
    State(proxy): State<Arc<Proxy>>,
    Path(group): Path<String>,
    JsonBody(body): JsonBody<CreateInstance>,
) -> Result<Json<Value>, RestError> {
    let format = match body.format.as_deref().unwrap_or("binary") {
        "binary" => Format::Binary,
        "json" => Format::Json,
        other => {
            return Err(RestError::Unprocessable(format!(
                "format {other:?} is not supported (binary or json; avro/protobuf/jsonschema need a schema registry)"
            )));
        }
    };
    let mut config = GroupConsumerConfig::new(proxy.bootstrap.clone(), group.clone());
    config.client_id = "kmon-rest".into();
    if let Some(reset) = body.auto_offset_reset {
        config.auto_offset_reset = reset
            .parse::<AutoOffsetReset>()
            .map_err(|e| RestError::Unprocessable(format!("auto.offset.reset: {e}")))?;
    }
    config.auto_commit = match body.auto_commit_enable {
        None => true,
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => {
            return Err(RestError::Unprocessable(format!("auto.commit.enable must be true or false, not {other}")));
        }
    };
    let name = body.name.unwrap_or_else(|| format!("rest-consumer-{}", next_instance_number()));
    let key = (group.clone(), name.clone());
    let taken = || RestError::Conflict(format!("consumer instance {name:?} already exists in group {group:?}"));
    if proxy.consumers.lock().await.contains_key(&key) {
        return Err(taken());
    }
    // Connected without holding the instance table: other requests go on.
    let consumer = GroupConsumer::connect(config).await?;
    let mut consumers = proxy.consumers.lock().await;
    if consumers.contains_key(&key) {
        drop(consumers);
        let _ = consumer.close().await;
        return Err(taken());
    }
    consumers
        .insert(key, Arc::new(Mutex::new(Instance { consumer: Some(consumer), format, last_used: Instant::now() })));
    proxy.metrics.consumer_instances.set(consumers.len() as i64);
    Ok(Json(json!({ "instance_id": name, "base_uri": instance_url(&proxy, &group, &name) })))
}

fn next_instance_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn instance(proxy: &Proxy, key: InstanceKey) -> Result<Arc<Mutex<Instance>>, RestError> {
    proxy
        .consumers
        .lock()
        .await
        .get(&key)
        .cloned()
        .ok_or_else(|| RestError::NotFound(format!("consumer instance {:?} not found in group {:?}", key.1, key.0)))
}

/// The instance's consumer, marked used now.
fn consumer(instance: &mut Instance) -> Result<&mut GroupConsumer, RestError> {
    instance.last_used = Instant::now();
    instance.consumer.as_mut().ok_or_else(|| RestError::NotFound("the consumer instance was closed".into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Subscription {
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    topic_pattern: Option<String>,
}

pub(crate) async fn subscribe(
    State(proxy): State<Arc<Proxy>>,
    Path(key): Path<InstanceKey>,
    JsonBody(body): JsonBody<Subscription>,
) -> Result<Response, RestError> {
    let instance = instance(&proxy, key).await?;
    let mut instance = instance.lock().await;
    let consumer = consumer(&mut instance)?;
    match (body.topics.is_empty(), body.topic_pattern) {
        (false, None) => consumer.subscribe(body.topics),
        (true, Some(pattern)) => consumer.subscribe_pattern(&pattern)?,
        _ => return Err(RestError::Unprocessable("give either topics (a non-empty list) or topic_pattern".into())),
    }
    Ok(no_content())
}

pub(crate) async fn subscription(
    State(proxy): State<Arc<Proxy>>,
    Path(key): Path<InstanceKey>,
) -> Result<Json<Value>, RestError> {
    let instance = instance(&proxy, key).await?;
    let mut instance = instance.lock().await;
    Ok(Json(json!({ "topics": consumer(&mut instance)?.subscription() })))
}

#[derive(Deserialize)]
pub(crate) struct RecordsQuery {
    /// Milliseconds to wait for records (default 1000).
    #[serde(default)]
    timeout: Option<u64>,
}

/// Records a poll returns at most.
const MAX_RECORDS: usize = 500;

fn render(format: Format, bytes: &Bytes, what: &str, record: &ConsumerRecord) -> Result<Value, RestError> {
    Ok(match format {
        Format::Binary => Value::String(BASE64.encode(bytes)),
        Format::Json => serde_json::from_slice(bytes).map_err(|e| {
            RestError::Unprocessable(format!(
                "the {what} of {}-{} at offset {} is not JSON ({e}); read it with a binary-format instance",
                record.topic, record.partition, record.offset
            ))
        })?,
    })
}

/// `GET .../records`: the records that arrive within `timeout` (possibly
/// none, at most 500), as `[{topic, key, value, partition, offset,
/// timestamp}]`. (`max_bytes` is not supported: a polled record cannot be
/// put back.)
pub(crate) async fn records(
    State(proxy): State<Arc<Proxy>>,
    Path(key): Path<InstanceKey>,
    Query(query): Query<RecordsQuery>,
) -> Result<Json<Value>, RestError> {
    let instance = instance(&proxy, key).await?;
    let mut instance = instance.lock().await;
    let format = instance.format;
    let consumer = consumer(&mut instance)?;
    let deadline = Instant::now() + Duration::from_millis(query.timeout.unwrap_or(1000));
    let mut polled = Vec::new();
    // `poll_up_to` is cancel-safe: a timeout loses no record.
    while polled.is_empty() && Instant::now() < deadline {
        match tokio::time::timeout_at(deadline.into(), consumer.poll_up_to(MAX_RECORDS)).await {
            Ok(records) => polled = records?,
            Err(_) => break,
        }
    }
    let mut out = Vec::with_capacity(polled.len());
    for record in &polled {
        out.push(json!({
            "topic": &*record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp_ms,
            "key": record.key.as_ref().map(|k| render(format, k, "key", record)).transpose()?,
            "value": render(format, &record.value, "value", record)?,
        }));
    }
    proxy.metrics.records_consumed.inc_by(out.len() as u64);
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitRequest {
    offsets: Vec<CommitOffset>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitOffset {
    topic: String,
    partition: u32,
    /// The offset of the last record processed (the committed position is
    /// the next one, as the REST Proxy does).
    offset: i64,
}

/// `POST .../offsets`: commits the given offsets, or with no body every
/// record returned so far.
pub(crate) async fn commit(
    State(proxy): State<Arc<Proxy>>,
    Path(key): Path<InstanceKey>,
    body: Bytes,
) -> Result<Response, RestError> {
    if body.len() > proxy.max_body_bytes {
        return Err(RestError::PayloadTooLarge { limit: proxy.max_body_bytes });
    }
    let instance = instance(&proxy, key).await?;
    let mut instance = instance.lock().await;
    let consumer = consumer(&mut instance)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        consumer.commit().await?;
    } else {
        let request: CommitRequest = parse_json(&body)?;
        let offsets: BTreeMap<TopicPartition, i64> = request
            .offsets
            .into_iter()
            .map(|o| (TopicPartition { topic: o.topic, partition: o.partition }, o.offset + 1))
            .collect();
        consumer.commit_offsets(&offsets).await?;
    }
    Ok(no_content())
}

/// `DELETE .../instances/{instance}`: the member leaves its group.
pub(crate) async fn delete(
    State(proxy): State<Arc<Proxy>>,
    Path(key): Path<InstanceKey>,
) -> Result<Response, RestError> {
    let removed = {
        let mut consumers = proxy.consumers.lock().await;
        let removed = consumers.remove(&key);
        proxy.metrics.consumer_instances.set(consumers.len() as i64);
        removed
    };
    let instance = removed
        .ok_or_else(|| RestError::NotFound(format!("consumer instance {:?} not found in group {:?}", key.1, key.0)))?;
    close(&instance).await;
    Ok(no_content())
}

async fn close(instance: &Mutex<Instance>) {
    if let Some(consumer) = instance.lock().await.consumer.take()
        && let Err(err) = consumer.close().await
    {
        tracing::warn!(error = %err, "closing a consumer instance");
    }
}

/// Closes instances nobody used for `idle`, every quarter of it.
pub(crate) async fn close_idle(proxy: Arc<Proxy>, idle: Duration) {
    let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        let mut expired = Vec::new();
        {
            let mut consumers = proxy.consumers.lock().await;
            let mut keys = Vec::new();
            for (key, instance) in consumers.iter() {
                // An instance busy in a request is in use.
                if let Ok(i) = instance.try_lock()
                    && i.last_used.elapsed() >= idle
                {
                    keys.push(key.clone());
                }
            }
            for key in keys {
                if let Some(instance) = consumers.remove(&key) {
                    tracing::info!(group = %key.0, instance = %key.1, "closing an idle consumer instance");
                    expired.push(instance);
                }
            }
            proxy.metrics.consumer_instances.set(consumers.len() as i64);
        }
        for instance in expired {
            close(&instance).await;
        }
    }
}

/// Closes every instance (at shutdown).
pub(crate) async fn close_all(proxy: &Proxy) {
    let all: Vec<_> = proxy.consumers.lock().await.drain().map(|(_, i)| i).collect();
    for instance in all {
        close(&instance).await;
    }
}
