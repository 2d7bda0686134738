//! Conversions between the generated protobuf types and the domain types:
//! generated types stop here.

use kmon_proto::v1 as pb;

use crate::types::{
    Acks, BrokerInfo, ClusterMetadata, OffsetSpec, PartitionDescription, PartitionOffset, TopicDescription,
};

impl From<Acks> for pb::Acks {
    fn from(acks: Acks) -> Self {
        match acks {
            Acks::None => pb::Acks::None,
            Acks::Leader => pb::Acks::Leader,
            Acks::All => pb::Acks::All,
        }
    }
}

/// The `(spec, timestamp_ms)` pair of a `ListOffsetsPartition`.
pub(crate) fn offset_spec(spec: OffsetSpec) -> (pb::OffsetSpec, i64) {
    match spec {
        OffsetSpec::Earliest => (pb::OffsetSpec::Earliest, 0),
        OffsetSpec::Latest => (pb::OffsetSpec::Latest, 0),
        OffsetSpec::Timestamp(ms) => (pb::OffsetSpec::Timestamp, ms),
    }
}

impl From<pb::PartitionOffset> for PartitionOffset {
    fn from(p: pb::PartitionOffset) -> Self {
        PartitionOffset {
            topic: p.topic,
            partition: p.partition,
            offset: (p.offset >= 0).then_some(p.offset),
            timestamp_ms: p.timestamp_ms,
        }
    }
}

impl From<pb::TopicDescription> for TopicDescription {
    fn from(t: pb::TopicDescription) -> Self {
        TopicDescription {
            name: t.name,
            replication_factor: t.replication_factor,
            configs: t.configs.into_iter().map(|c| (c.key, c.value)).collect(),
            partitions: t.partitions.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<pb::PartitionDescription> for PartitionDescription {
    fn from(p: pb::PartitionDescription) -> Self {
        PartitionDescription {
            partition: p.partition,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            replicas: p.replicas,
            isr: p.isr,
            log_start_offset: p.log_start_offset,
            log_end_offset: p.log_end_offset,
            high_watermark: p.high_watermark,
            size_bytes: p.size_bytes,
            data_dir: p.data_dir,
        }
    }
}

impl From<pb::BrokerInfo> for BrokerInfo {
    fn from(b: pb::BrokerInfo) -> Self {
        BrokerInfo {
            id: b.id,
            address: b.address,
            metrics_address: b.metrics_address,
            fault_domain: b.fault_domain,
            update_domain: b.update_domain,
            alive: b.alive,
        }
    }
}

impl From<pb::MetadataResponse> for ClusterMetadata {
    fn from(m: pb::MetadataResponse) -> Self {
        ClusterMetadata {
            brokers: m.brokers.into_iter().map(Into::into).collect(),
            controller_id: m.controller_id,
            topics: m.topics.into_iter().map(Into::into).collect(),
        }
    }
}
