//! The OpenAPI 3 document of the routes the proxy serves, at
//! `/openapi.json`.

use axum::Json;
use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn body(schema: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

pub(crate) async fn document() -> Json<Value> {
    let cluster = path_param("cluster_id", "The cluster id (`kmon`)");
    let topic = path_param("topic_name", "Topic name");
    let group = path_param("group_name", "Consumer group");
    let instance = path_param("instance", "Consumer instance id");
    let resource = json!({ "type": "object", "additionalProperties": true });
    let errors = |codes: &[(&str, &str)]| -> Value {
        codes
            .iter()
            .map(|(code, what)| (code.to_string(), error_response(what)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut paths = serde_json::Map::new();
    let mut add = |path: &str, item: Value| {
        paths.insert(path.to_owned(), item);
    };
    add(
        "/v3/clusters",
        json!({ "get": { "summary": "List clusters", "responses": { "200": ok("The cluster", resource.clone()) } } }),
    );
    add(
        "/v3/clusters/{cluster_id}",
        json!({ "get": { "summary": "Get the cluster", "parameters": [cluster],
        "responses": { "200": ok("The cluster", resource.clone()), "404": error_response("Unknown cluster") } } }),
    );
    add(
        "/v3/clusters/{cluster_id}/topics",
        json!({
        "get": { "summary": "List topics", "parameters": [cluster], "responses": { "200": ok("Topics", resource.clone()) } },
        "post": { "summary": "Create a topic", "parameters": [cluster], "requestBody": body("CreateTopicRequest"),
            "responses": { "201": ok("The new topic", resource.clone()),
                "400": error_response("Malformed JSON"), "409": error_response("Topic exists"),
                "422": error_response("Invalid name, partitions, replication factor or config") } } }),
    );
    add(
        "/v3/clusters/{cluster_id}/topics/{topic_name}",
        json!({
        "get": { "summary": "Get a topic", "parameters": [cluster, topic], "responses": { "200": ok("The topic", resource.clone()), "404": error_response("Unknown topic") } },
        "delete": { "summary": "Delete a topic", "parameters": [cluster, topic], "responses": { "204": { "description": "Deleted" }, "404": error_response("Unknown topic") } } }),
    );
    add(
        "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions",
        json!({
        "get": { "summary": "List a topic's partitions", "parameters": [cluster, topic], "responses": { "200": ok("Partitions", resource.clone()), "404": error_response("Unknown topic") } } }),
    );
    add(
        "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions/{partition_id}",
        json!({
        "get": { "summary": "Get a partition", "parameters": [cluster, topic, path_param("partition_id", "Partition number")],
            "responses": { "200": ok("The partition", resource.clone()), "404": error_response("Unknown topic or partition") } } }),
    );
    add(
        "/v3/clusters/{cluster_id}/topics/{topic_name}/records",
        json!({
        "post": { "summary": "Produce one record (acks=all, idempotent)", "parameters": [cluster, topic], "requestBody": body("ProduceRequest"),
            "responses": merge(json!({ "200": ok("Where the record landed", json!({ "$ref": "#/components/schemas/ProduceResponse" })) }),
                errors(&[("400", "Malformed JSON"), ("404", "Unknown topic"), ("413", "Body too large"), ("422", "Bad type, base64, partition or timestamp")])) } }),
    );
    add(
        "/v3/clusters/{cluster_id}/topics/{topic_name}/records:batch",
        json!({
        "post": { "summary": "Produce many records; each answered by its id", "parameters": [cluster, topic], "requestBody": body("BatchProduceRequest"),
            "responses": merge(json!({ "207": ok("successes and failures", resource.clone()) }),
                errors(&[("400", "Malformed JSON"), ("404", "Unknown topic"), ("413", "Body too large"), ("422", "No entries or too many")])) } }),
    );
    add(
        "/consumers/{group_name}",
        json!({
        "post": { "summary": "Create a consumer instance", "parameters": [group], "requestBody": body("CreateConsumerRequest"),
            "responses": { "200": ok("instance_id and base_uri", resource.clone()), "409": error_response("Name taken"), "422": error_response("Bad format or setting") } } }),
    );
    add(
        "/consumers/{group_name}/instances/{instance}",
        json!({
        "delete": { "summary": "Close a consumer instance", "parameters": [group, instance], "responses": { "204": { "description": "Closed" }, "404": error_response("Unknown instance") } } }),
    );
    add(
        "/consumers/{group_name}/instances/{instance}/subscription",
        json!({
        "post": { "summary": "Subscribe", "parameters": [group, instance], "requestBody": body("SubscriptionRequest"),
            "responses": { "204": { "description": "Subscribed" }, "404": error_response("Unknown instance"), "422": error_response("Neither or both of topics and topic_pattern") } },
        "get": { "summary": "The subscription", "parameters": [group, instance], "responses": { "200": ok("topics", resource.clone()) } } }),
    );
    add(
        "/consumers/{group_name}/instances/{instance}/records",
        json!({
        "get": { "summary": "Fetch records", "parameters": [group, instance,
            { "name": "timeout", "in": "query", "required": false, "description": "Milliseconds to wait (default 1000)", "schema": { "type": "integer" } }],
            "responses": { "200": ok("Records", json!({ "type": "array", "items": resource.clone() })), "404": error_response("Unknown instance"), "422": error_response("A record is not JSON (json format)") } } }),
    );
    add(
        "/consumers/{group_name}/instances/{instance}/offsets",
        json!({
        "post": { "summary": "Commit offsets (all fetched records without a body)", "parameters": [group, instance],
            "responses": { "204": { "description": "Committed" }, "404": error_response("Unknown instance") } } }),
    );
    add(
        "/metrics",
        json!({ "get": { "summary": "The proxy's Prometheus metrics", "responses": { "200": { "description": "Prometheus text" } } } }),
    );
    let data = json!({ "type": "object", "properties": {
        "type": { "type": "string", "enum": ["JSON", "STRING", "BINARY"] }, "data": {} } });
    Json(json!({
        "openapi": "3.0.3",
        "info": { "title": "kmon REST proxy", "version": env!("CARGO_PKG_VERSION"),
            "description": "Confluent REST Proxy v3 (cluster, topics, partitions, produce) and v2 consumer shapes over a kmon cluster." },
        "paths": paths,
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error_code", "message"],
                "properties": { "error_code": { "type": "integer" }, "message": { "type": "string" } } },
            "CreateTopicRequest": { "type": "object", "required": ["topic_name"], "properties": {
                "topic_name": { "type": "string" }, "partitions_count": { "type": "integer" }, "replication_factor": { "type": "integer" },
                "configs": { "type": "array", "items": { "type": "object", "properties": { "name": { "type": "string" }, "value": { "type": "string" } } } } } },
            "ProduceRequest": { "type": "object", "properties": {
                "partition_id": { "type": "integer" }, "key": data.clone(), "value": data,
                "headers": { "type": "array", "items": { "type": "object", "properties": { "name": { "type": "string" }, "value": { "type": "string", "format": "byte", "nullable": true } } } },
                "timestamp": { "description": "RFC 3339 text or milliseconds since the epoch" } } },
            "BatchProduceRequest": { "type": "object", "required": ["entries"], "properties": {
                "entries": { "type": "array", "items": { "allOf": [{ "$ref": "#/components/schemas/ProduceRequest" },
                    { "type": "object", "required": ["id"], "properties": { "id": { "type": "string" } } }] } } } },
            "ProduceResponse": { "type": "object", "properties": {
                "error_code": { "type": "integer" }, "cluster_id": { "type": "string" }, "topic_name": { "type": "string" },
                "partition_id": { "type": "integer" }, "offset": { "type": "integer" }, "timestamp": { "type": "string" } } },
            "CreateConsumerRequest": { "type": "object", "properties": {
                "name": { "type": "string" }, "format": { "type": "string", "enum": ["binary", "json"] },
                "auto.offset.reset": { "type": "string", "enum": ["earliest", "latest"] }, "auto.commit.enable": { "type": "string" } } },
            "SubscriptionRequest": { "type": "object", "properties": {
                "topics": { "type": "array", "items": { "type": "string" } }, "topic_pattern": { "type": "string" } } },
        } },
    }))
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}
