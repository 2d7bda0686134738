//! Topic administration, offsets and cluster metadata.

use kmon_proto::v1 as pb;

use crate::connection::{self, KmonClient};
use crate::convert::offset_spec;
use crate::error::ClientError;
use crate::types::{ClusterMetadata, OffsetSpec, PartitionOffset, TopicDescription};

/// Admin client. Cheap to clone (shares one connection).
#[derive(Debug, Clone)]
pub struct Admin {
    client: KmonClient,
}

impl Admin {
    /// Connects to a broker (`HOST:PORT`).
    pub async fn connect(bootstrap: &str) -> Result<Self, ClientError> {
        Ok(Admin::from_client(connection::connect(bootstrap).await?))
    }

    /// Wraps an existing connection.
    pub fn from_client(client: KmonClient) -> Self {
        Admin { client }
    }

    /// Creates a topic; `replication_factor` 0 means the broker default.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        configs: Vec<(String, String)>,
    ) -> Result<TopicDescription, ClientError> {
        let request = pb::CreateTopicRequest {
            name: name.to_owned(),
            partitions,
            replication_factor,
            configs: configs
                .into_iter()
                .map(|(key, value)| pb::TopicConfigEntry { key, value })
                .collect(),
        };
        let response = self.client.clone().create_topic(request).await?;
        topic_from(response.into_inner().topic, name)
    }

    pub async fn list_topics(&self) -> Result<Vec<TopicDescription>, ClientError> {
        let response = self
            .client
            .clone()
            .list_topics(pb::ListTopicsRequest {})
            .await?;
        Ok(response
            .into_inner()
            .topics
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, ClientError> {
        let request = pb::DescribeTopicRequest {
            name: name.to_owned(),
        };
        let response = self.client.clone().describe_topic(request).await?;
        topic_from(response.into_inner().topic, name)
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let request = pb::DeleteTopicRequest {
            name: name.to_owned(),
        };
        self.client.clone().delete_topic(request).await?;
        Ok(())
    }

    /// Resolves offsets of several partitions in one request.
    pub async fn list_offsets(
        &self,
        partitions: &[(&str, u32, OffsetSpec)],
    ) -> Result<Vec<PartitionOffset>, ClientError> {
        let request = pb::ListOffsetsRequest {
            partitions: partitions
                .iter()
                .map(|&(topic, partition, spec)| {
                    let (spec, timestamp_ms) = offset_spec(spec);
                    pb::ListOffsetsPartition {
                        topic: topic.to_owned(),
                        partition,
                        spec: spec.into(),
                        timestamp_ms,
                    }
                })
                .collect(),
        };
        let response = self.client.clone().list_offsets(request).await?;
        Ok(response
            .into_inner()
            .partitions
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Resolves one partition's offset.
    pub async fn list_offset(
        &self,
        topic: &str,
        partition: u32,
        spec: OffsetSpec,
    ) -> Result<PartitionOffset, ClientError> {
        self.list_offsets(&[(topic, partition, spec)])
            .await?
            .into_iter()
            .find(|p| p.topic == topic && p.partition == partition)
            .ok_or_else(|| {
                ClientError::InvalidArgument(format!(
                    "the broker returned no offset for {topic}-{partition}"
                ))
            })
    }

    /// Brokers and topics; an empty `topics` asks for every topic.
    pub async fn metadata(&self, topics: &[&str]) -> Result<ClusterMetadata, ClientError> {
        let request = pb::MetadataRequest {
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        };
        let response = self.client.clone().metadata(request).await?;
        Ok(response.into_inner().into())
    }
}

fn topic_from(
    topic: Option<pb::TopicDescription>,
    name: &str,
) -> Result<TopicDescription, ClientError> {
    topic.map(Into::into).ok_or_else(|| {
        ClientError::InvalidArgument(format!("the broker's answer for topic {name:?} was empty"))
    })
}
