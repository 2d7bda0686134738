//! DescribeConfigs: a topic's effective log configs (overrides marked as
//! topic configs, the rest as defaults) and a broker's configuration under
//! Kafka's dotted names.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kmon_broker::Broker;
use kmon_broker::controller::state::acls::{AclOperation, Resource};

use super::text;
use crate::error::error_code;

/// Kafka's resource types and config sources.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Describe on the topic (on the cluster for a broker) is what a
/// principal needs (Kafka's DescribeConfigs operation, which kmon's ACLs
/// fold into Describe).
pub fn describe(broker: &Broker, req: DescribeConfigsRequest, principal: &str) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.as_str().to_string();
            let answer = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let allowed = |resource: Resource<'_>| {
                broker
                    .authorizer
                    .authorize(principal, AclOperation::Describe, &resource)
                    .map_err(|err| (error_code(&err), err.to_string()))
            };
            let entries = match resource.resource_type {
                TOPIC => allowed(Resource::topic(&name)).and_then(|()| topic_configs(broker, &name)),
                BROKER => allowed(Resource::cluster()).and_then(|()| broker_configs(broker, &name)),
                other => {
                    Err((ResponseError::InvalidRequest.code(), format!("resource type {other} has no configs in kmon")))
                }
            };
            match entries {
                Ok(entries) => {
                    let keys = resource.configuration_keys.as_ref();
                    let configs = entries
                        .into_iter()
                        .filter(|(key, ..)| keys.is_none_or(|keys| keys.iter().any(|k| k.as_str() == key)))
                        .map(|(key, value, source)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(text(key))
                                .with_value(Some(text(value)))
                                .with_config_source(source)
                        })
                        .collect();
                    answer.with_configs(configs)
                }
                Err((code, message)) => answer.with_error_code(code).with_error_message(Some(text(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

type Entries = Vec<(String, String, i8)>;

fn topic_configs(broker: &Broker, name: &str) -> Result<Entries, (i16, String)> {
    let view = broker.describe_topic(name).map_err(|err| (error_code(&err), err.to_string()))?;
    Ok(view
        .config
        .entries()
        .into_iter()
        .map(|(key, value)| {
            let source = if view.record.configs.contains_key(&key) { TOPIC_CONFIG } else { DEFAULT_CONFIG };
            (key, value, source)
        })
        .collect())
}

/// The broker's own settings (as `kmon broker --print-default-config`
/// shows them), keys with Kafka's dots: `log_segment_bytes` →
/// `log.segment.bytes`. An empty name asks for the cluster defaults.
fn broker_configs(broker: &Broker, name: &str) -> Result<Entries, (i16, String)> {
    let me = broker.config.broker_id.to_string();
    if !name.is_empty() && name != me {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!("this is broker {me}; ask broker {name} for its configs"),
        ));
    }
    let toml = broker.config.to_toml();
    let table: toml::Table = toml.parse().map_err(|e| (ResponseError::UnknownServerError.code(), format!("{e}")))?;
    Ok(table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            (key.replace('_', "."), value, STATIC_BROKER_CONFIG)
        })
        .collect())
}
