//! CreateTopic, ListTopics, DescribeTopic, DeleteTopic.

use std::collections::BTreeMap;

use kmon_proto::v1::*;
use tonic::Status;

use crate::broker::{Broker, TopicView};
use crate::error::BrokerError;

pub(super) async fn create(broker: &Broker, req: CreateTopicRequest) -> Result<CreateTopicResponse, Status> {
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
    let view = broker.create_topic(&req.name, req.partitions, req.replication_factor, configs).await?;
    Ok(CreateTopicResponse {
        topic: Some(describe_view(&view)),
        placement_note: view.placement_note.unwrap_or_default(),
    })
}

pub(super) fn list(broker: &Broker) -> Result<ListTopicsResponse, Status> {
    Ok(ListTopicsResponse { topics: broker.list_topics().iter().map(describe_view).collect() })
}

pub(super) fn describe(broker: &Broker, req: DescribeTopicRequest) -> Result<DescribeTopicResponse, Status> {
    let view = broker.describe_topic(&req.name)?;
    Ok(DescribeTopicResponse { topic: Some(describe_view(&view)) })
}

pub(super) async fn delete(broker: &Broker, req: DeleteTopicRequest) -> Result<DeleteTopicResponse, Status> {
    broker.delete_topic(&req.name).await?;
    Ok(DeleteTopicResponse {})
}

/// Metadata for every partition; offsets and size only where this broker
/// hosts the partition (-1 elsewhere).
pub(super) fn describe_view(view: &TopicView) -> TopicDescription {
    TopicDescription {
        name: view.name.clone(),
        topic_id: topic_id_text(view.record.topic_id),
        replication_factor: view.record.replication_factor,
        configs: view.config.entries().into_iter().map(|(key, value)| TopicConfigEntry { key, value }).collect(),
        partitions: view
            .record
            .partitions
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let log = view.local_logs.get(&(index as u32));
                PartitionDescription {
                    partition: index as u32,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    elr: p.elr.clone(),
                    log_start_offset: log.map_or(-1, |l| l.log_start_offset()),
                    log_end_offset: log.map_or(-1, |l| l.log_end_offset()),
                    high_watermark: log.map_or(-1, |l| l.high_watermark()),
                    size_bytes: log.map_or(0, |l| l.size_bytes()),
                    data_dir: log.and_then(|l| l.dir().parent()).map(|d| d.display().to_string()).unwrap_or_default(),
                }
            })
            .collect(),
    }
}

/// A topic id as shown to users: 16 hex digits (empty when not recorded).
pub(super) fn topic_id_text(topic_id: u64) -> String {
    if topic_id == 0 { String::new() } else { format!("{topic_id:016x}") }
}
