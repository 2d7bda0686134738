//! `POST /v3/clusters/{cluster_id}/topics/{topic}/records` (one record) and
//! `.../records:batch` (many, answered per entry with 207), in Confluent's
//! v3 shapes: keys and values typed JSON, STRING or BINARY (base64),
//! headers with base64 values, an optional partition and timestamp.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use kmon_client::batch::Header;
use kmon_client::{ErrorCode, OutgoingRecord, RecordHandle, RecordMetadata};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::RestError;
use crate::server::{CLUSTER_ID, JsonBody, Proxy, check_cluster};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProduceRequest {
    #[serde(default)]
    partition_id: Option<u32>,
    #[serde(default)]
    headers: Vec<HeaderData>,
    #[serde(default)]
    key: Option<Data>,
    #[serde(default)]
    value: Option<Data>,
    /// RFC 3339 (`2026-12-04T10:00:00.123Z`) or milliseconds since the epoch.
    #[serde(default)]
    timestamp: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderData {
    name: String,
    /// Base64, or null.
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Data {
    /// JSON (the default), STRING or BINARY.
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: Value,
}

/// A request turned into bytes, ready to send.
struct Encoded {
    partition: Option<u32>,
    timestamp_ms: Option<i64>,
    key: Option<(String, Vec<u8>)>,
    value: Option<(String, Vec<u8>)>,
    headers: Vec<Header>,
}

fn encode_data(what: &str, data: Data) -> Result<(String, Vec<u8>), RestError> {
    let kind = data.kind.as_deref().unwrap_or("JSON").to_ascii_uppercase();
    let bytes = match (kind.as_str(), data.data) {
        ("JSON", value) => serde_json::to_vec(&value).expect("a JSON value serialises"),
        ("STRING", Value::String(s)) => s.into_bytes(),
        ("STRING", other) => {
            return Err(RestError::Unprocessable(format!("{what}: type STRING needs a string as data, not {other}")));
        }
        ("BINARY", Value::String(s)) => BASE64
            .decode(s.as_bytes())
            .map_err(|e| RestError::Unprocessable(format!("{what}: data of type BINARY is not valid base64: {e}")))?,
        ("BINARY", other) => {
            return Err(RestError::Unprocessable(format!(
                "{what}: type BINARY needs a base64 string as data, not {other}"
            )));
        }
        (other, _) => {
            return Err(RestError::Unprocessable(format!(
                "{what}: unknown type {other:?} (JSON, STRING or BINARY; schema registry types are not supported)"
            )));
        }
    };
    Ok((kind, bytes))
}

fn parse_timestamp(value: Value) -> Result<i64, RestError> {
    match value {
        Value::Number(n) => {
            n.as_i64().ok_or_else(|| RestError::Unprocessable(format!("timestamp {n} is not whole milliseconds")))
        }
        Value::String(s) => {
            let at = humantime::parse_rfc3339_weak(&s)
                .map_err(|e| RestError::Unprocessable(format!("timestamp {s:?} is not RFC 3339: {e}")))?;
            Ok(at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
        }
        other => Err(RestError::Unprocessable(format!("timestamp must be RFC 3339 text or milliseconds, not {other}"))),
    }
}

fn encode(request: ProduceRequest) -> Result<Encoded, RestError> {
    let headers = request
        .headers
        .into_iter()
        .map(|h| {
            let value = match h.value {
                None => None,
                Some(v) => Some(BASE64.decode(v.as_bytes()).map_err(|e| {
                    RestError::Unprocessable(format!("header {:?}: value is not valid base64: {e}", h.name))
                })?),
            };
            Ok(Header { key: h.name, value: value.map(Into::into) })
        })
        .collect::<Result<Vec<_>, RestError>>()?;
    Ok(Encoded {
        partition: request.partition_id,
        timestamp_ms: request.timestamp.map(parse_timestamp).transpose()?,
        key: request.key.map(|k| encode_data("key", k)).transpose()?,
        value: request.value.map(|v| encode_data("value", v)).transpose()?,
        headers,
    })
}

/// Partitions of `topic` (404 if it does not exist), for checking a
/// requested partition before sending.
async fn partition_count(proxy: &Proxy, topic: &str) -> Result<u32, RestError> {
    match proxy.producer.partition_count(topic).await {
        Ok(n) => Ok(n),
        Err(e) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => {
            Err(RestError::NotFound(format!("This server does not host this topic-partition: topic {topic:?}")))
        }
        Err(e) => Err(e.into()),
    }
}

async fn send(proxy: &Proxy, topic: &str, count: u32, record: &Encoded) -> Result<RecordHandle, RestError> {
    if let Some(p) = record.partition
        && p >= count
    {
        return Err(RestError::Unprocessable(format!(
            "topic {topic:?} has {count} partitions, there is no partition {p}"
        )));
    }
    let outgoing = OutgoingRecord {
        partition: record.partition,
        timestamp_ms: record.timestamp_ms,
        key: record.key.as_ref().map(|(_, k)| k.as_slice()),
        // A record without a value is sent with an empty one.
        value: record.value.as_ref().map_or(&[][..], |(_, v)| v.as_slice()),
        headers: &record.headers,
    };
    Ok(proxy.producer.send_record(topic, &outgoing).await?)
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn typed_size(data: &Option<(String, Vec<u8>)>) -> Value {
    match data {
        Some((kind, bytes)) => json!({ "type": kind, "size": bytes.len() }),
        None => Value::Null,
    }
}

pub(crate) async fn produce(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    JsonBody(request): JsonBody<ProduceRequest>,
) -> Result<Json<Value>, RestError> {
    check_cluster(&cluster_id)?;
    let record = encode(request)?;
    let count = partition_count(&proxy, &topic).await?;
    let sent_at = now_ms();
    let metadata = send(&proxy, &topic, count, &record).await?.wait().await?;
    proxy.metrics.records_produced.inc();
    let mut answer = written(&topic, metadata, &record, sent_at);
    answer["error_code"] = json!(200);
    Ok(Json(answer))
}

/// The answer for one written record, as the Confluent proxy shapes it.
fn written(topic: &str, metadata: RecordMetadata, record: &Encoded, sent_at: i64) -> Value {
    json!({
        "cluster_id": CLUSTER_ID,
        "topic_name": topic,
        "partition_id": metadata.partition,
        "offset": metadata.offset,
        "timestamp": rfc3339(record.timestamp_ms.unwrap_or(sent_at)),
        "key": typed_size(&record.key),
        "value": typed_size(&record.value),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    entries: Vec<BatchEntry>,
}

#[derive(Deserialize)]
pub(crate) struct BatchEntry {
    id: String,
    #[serde(flatten)]
    request: Value,
}

/// Most entries one `records:batch` request may carry.
const MAX_BATCH_ENTRIES: usize = 10_000;

/// `POST .../records:batch`: every entry is sent, then each is answered in
/// `successes` or `failures` by its `id` (207 Multi-Status).
pub(crate) async fn produce_batch(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    JsonBody(batch): JsonBody<BatchRequest>,
) -> Result<Response, RestError> {
    check_cluster(&cluster_id)?;
    if batch.entries.is_empty() || batch.entries.len() > MAX_BATCH_ENTRIES {
        return Err(RestError::Unprocessable(format!(
            "entries: between 1 and {MAX_BATCH_ENTRIES} records, not {}",
            batch.entries.len()
        )));
    }
    let count = partition_count(&proxy, &topic).await?;
    let sent_at = now_ms();
    let mut pending = Vec::with_capacity(batch.entries.len());
    for entry in batch.entries {
        let sent = match serde_json::from_value::<ProduceRequest>(entry.request) {
            Err(e) => Err(RestError::BadRequest(format!("invalid entry: {e}"))),
            Ok(request) => match encode(request) {
                Err(e) => Err(e),
                Ok(record) => send(&proxy, &topic, count, &record).await.map(|h| (h, record)),
            },
        };
        pending.push((entry.id, sent));
    }
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    for (id, sent) in pending {
        let outcome = match sent {
            Ok((handle, record)) => handle.wait().await.map(|m| (m, record)).map_err(RestError::from),
            Err(e) => Err(e),
        };
        match outcome {
            Ok((metadata, record)) => {
                proxy.metrics.records_produced.inc();
                let mut answer = written(&topic, metadata, &record, sent_at);
                answer["id"] = json!(id);
                successes.push(answer);
            }
            Err(e) => failures.push(json!({ "id": id, "error_code": e.status().as_u16(), "message": e.to_string() })),
        }
    }
    Ok((StatusCode::MULTI_STATUS, Json(json!({ "successes": successes, "failures": failures }))).into_response())
}
