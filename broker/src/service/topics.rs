//! CreateTopic, ListTopics, DescribeTopic, DeleteTopic.

use std::collections::BTreeMap;

use kmon_proto::v1::*;
use tonic::Status;

use crate::broker::{Broker, SINGLE_NODE_ID, TopicView};
use crate::error::BrokerError;

pub(super) fn create(
    broker: &Broker,
    req: CreateTopicRequest,
) -> Result<CreateTopicResponse, Status> {
    let mut configs = BTreeMap::new();
    for entry in req.configs {
        if configs.insert(entry.key.clone(), entry.value).is_some() {
            return Err(BrokerError::InvalidConfig {
                key: entry.key,
                value: String::new(),
                reason: "given more than once".into(),
            }
            .into());
        }
    }
    let view = broker.create_topic(&req.name, req.partitions, req.replication_factor, configs)?;
    Ok(CreateTopicResponse {
        topic: Some(describe_view(broker, &view)),
    })
}

pub(super) fn list(broker: &Broker) -> Result<ListTopicsResponse, Status> {
    let topics = broker.list_topics()?;
    Ok(ListTopicsResponse {
        topics: topics.iter().map(|v| describe_view(broker, v)).collect(),
    })
}

pub(super) fn describe(
    broker: &Broker,
    req: DescribeTopicRequest,
) -> Result<DescribeTopicResponse, Status> {
    let view = broker.describe_topic(&req.name)?;
    Ok(DescribeTopicResponse {
        topic: Some(describe_view(broker, &view)),
    })
}

pub(super) fn delete(
    broker: &Broker,
    req: DeleteTopicRequest,
) -> Result<DeleteTopicResponse, Status> {
    broker.delete_topic(&req.name)?;
    Ok(DeleteTopicResponse {})
}

pub(super) fn describe_view(_broker: &Broker, view: &TopicView) -> TopicDescription {
    TopicDescription {
        name: view.name.clone(),
        replication_factor: view.meta.replication_factor,
        configs: view
            .config
            .entries()
            .into_iter()
            .map(|(key, value)| TopicConfigEntry { key, value })
            .collect(),
        partitions: view
            .partitions
            .iter()
            .map(|log| PartitionDescription {
                partition: log.partition,
                leader: SINGLE_NODE_ID,
                leader_epoch: 0,
                replicas: vec![SINGLE_NODE_ID],
                isr: vec![SINGLE_NODE_ID],
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
                high_watermark: log.high_watermark(),
                size_bytes: log.size_bytes(),
                data_dir: log
                    .dir()
                    .parent()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}
