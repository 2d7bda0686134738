//! Confluent REST Proxy v3 resources: clusters, topics, partitions. Every
//! resource has `kind`, `metadata.self` (its URL) and links to related
//! resources as `{"related": URL}`, as the v3 API has them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kmon_client::{PartitionDescription, TopicDescription};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::RestError;
use crate::server::{CLUSTER_ID, JsonBody, Proxy, check_cluster, no_content};

fn cluster_url(proxy: &Proxy) -> String {
    format!("{}/v3/clusters/{CLUSTER_ID}", proxy.base_url)
}

fn list(kind: &str, url: String, data: Vec<Value>) -> Value {
    json!({ "kind": kind, "metadata": { "self": url, "next": null }, "data": data })
}

async fn cluster_resource(proxy: &Proxy) -> Result<Value, RestError> {
    let metadata = proxy.admin.metadata(&[]).await?;
    let url = cluster_url(proxy);
    Ok(json!({
        "kind": "KafkaCluster",
        "metadata": { "self": url, "resource_name": format!("crn:///kafka={CLUSTER_ID}") },
        "cluster_id": CLUSTER_ID,
        "controller": { "related": format!("{url}/brokers/{}", metadata.controller_id) },
        "brokers": { "related": format!("{url}/brokers") },
        "topics": { "related": format!("{url}/topics") },
        "consumer_groups": { "related": format!("{url}/consumer-groups") },
    }))
}

pub(crate) async fn list_clusters(State(proxy): State<Arc<Proxy>>) -> Result<Json<Value>, RestError> {
    let url = format!("{}/v3/clusters", proxy.base_url);
    Ok(Json(list("KafkaClusterList", url, vec![cluster_resource(&proxy).await?])))
}

pub(crate) async fn get_cluster(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
) -> Result<Json<Value>, RestError> {
    check_cluster(&cluster_id)?;
    Ok(Json(cluster_resource(&proxy).await?))
}

fn topic_resource(proxy: &Proxy, topic: &TopicDescription) -> Value {
    let url = format!("{}/topics/{}", cluster_url(proxy), topic.name);
    json!({
        "kind": "KafkaTopic",
        "metadata": { "self": url, "resource_name": format!("crn:///kafka={CLUSTER_ID}/topic={}", topic.name) },
        "cluster_id": CLUSTER_ID,
        "topic_name": topic.name,
        "is_internal": topic.name.starts_with("__"),
        "replication_factor": topic.replication_factor,
        "partitions_count": topic.partitions.len(),
        "partitions": { "related": format!("{url}/partitions") },
        "configs": { "related": format!("{url}/configs") },
        "partition_reassignments": { "related": format!("{url}/partitions/-/reassignment") },
    })
}

pub(crate) async fn list_topics(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
) -> Result<Json<Value>, RestError> {
    check_cluster(&cluster_id)?;
    let topics = proxy.admin.list_topics().await?;
    let data = topics.iter().map(|t| topic_resource(&proxy, t)).collect();
    Ok(Json(list("KafkaTopicList", format!("{}/topics", cluster_url(&proxy)), data)))
}

/// `GET .../topics/{topic}`; 404 with Confluent's message for an unknown one.
pub(crate) async fn describe(proxy: &Proxy, topic: &str) -> Result<TopicDescription, RestError> {
    match proxy.admin.describe_topic(topic).await {
        Ok(t) => Ok(t),
        Err(e) if e.code() == Some(kmon_client::ErrorCode::UnknownTopicOrPartition) => {
            Err(RestError::NotFound(format!("This server does not host this topic-partition: topic {topic:?}")))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn get_topic(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    check_cluster(&cluster_id)?;
    Ok(Json(topic_resource(&proxy, &describe(&proxy, &topic).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTopic {
    topic_name: String,
    #[serde(default)]
    partitions_count: Option<u32>,
    #[serde(default)]
    replication_factor: Option<u32>,
    #[serde(default)]
    configs: Vec<ConfigEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigEntry {
    name: String,
    value: String,
}

/// `POST .../topics`: 201 with the new topic (partitions 1 and the
/// cluster's default replication factor when not given).
pub(crate) async fn create_topic(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    JsonBody(body): JsonBody<CreateTopic>,
) -> Result<Response, RestError> {
    check_cluster(&cluster_id)?;
    let configs = body.configs.into_iter().map(|c| (c.name, c.value)).collect();
    let topic = proxy
        .admin
        .create_topic(
            &body.topic_name,
            body.partitions_count.unwrap_or(1),
            body.replication_factor.unwrap_or(0),
            configs,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(topic_resource(&proxy, &topic))).into_response())
}

pub(crate) async fn delete_topic(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
) -> Result<Response, RestError> {
    check_cluster(&cluster_id)?;
    describe(&proxy, &topic).await?;
    proxy.admin.delete_topic(&topic).await?;
    Ok(no_content())
}

fn partition_resource(proxy: &Proxy, topic: &str, p: &PartitionDescription) -> Value {
    let cluster = cluster_url(proxy);
    let url = format!("{cluster}/topics/{topic}/partitions/{}", p.partition);
    json!({
        "kind": "KafkaPartition",
        "metadata": {
            "self": url,
            "resource_name": format!("crn:///kafka={CLUSTER_ID}/topic={topic}/partition={}", p.partition),
        },
        "cluster_id": CLUSTER_ID,
        "topic_name": topic,
        "partition_id": p.partition,
        "leader": { "related": format!("{url}/replicas/{}", p.leader) },
        "replicas": { "related": format!("{url}/replicas") },
        "reassignment": { "related": format!("{url}/reassignment") },
    })
}

pub(crate) async fn list_partitions(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    check_cluster(&cluster_id)?;
    let described = describe(&proxy, &topic).await?;
    let data = described.partitions.iter().map(|p| partition_resource(&proxy, &topic, p)).collect();
    let url = format!("{}/topics/{topic}/partitions", cluster_url(&proxy));
    Ok(Json(list("KafkaPartitionList", url, data)))
}

pub(crate) async fn get_partition(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic, partition)): Path<(String, String, String)>,
) -> Result<Json<Value>, RestError> {
    check_cluster(&cluster_id)?;
    let id: u32 = partition
        .parse()
        .map_err(|_| RestError::BadRequest(format!("partition_id {partition:?} is not a partition number")))?;
    let described = describe(&proxy, &topic).await?;
    let p = described
        .partitions
        .iter()
        .find(|p| p.partition == id)
        .ok_or_else(|| RestError::NotFound(format!("topic {topic:?} has no partition {id}")))?;
    Ok(Json(partition_resource(&proxy, &topic, p)))
}
