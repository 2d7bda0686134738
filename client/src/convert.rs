//! Conversions between the generated protobuf types and the domain types:
//! generated types stop here.

use kmon_proto::v1 as pb;

use crate::group::types::{
    CommittedOffset, GroupDescription, GroupDescriptions, GroupListing, GroupMemberDescription, PartitionLag,
    UnavailableCoordinator,
};
use crate::types::{
    Acks, BalanceGoal, BrokerInfo, ClusterMetadata, OffsetSpec, PartitionDescription, PartitionMove, PartitionOffset,
    PartitionReassignment, ReassignmentStatus, RebalancePlan, TopicDescription, TopicPartition,
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
            topic_id: t.topic_id,
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
            elr: p.elr,
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
            kafka_address: b.kafka_address,
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

impl From<&TopicPartition> for pb::TopicPartition {
    fn from(tp: &TopicPartition) -> Self {
        pb::TopicPartition { topic: tp.topic.clone(), partition: tp.partition }
    }
}

impl From<pb::TopicPartition> for TopicPartition {
    fn from(tp: pb::TopicPartition) -> Self {
        TopicPartition { topic: tp.topic, partition: tp.partition }
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

impl From<pb::GroupListing> for GroupListing {
    fn from(g: pb::GroupListing) -> Self {
        GroupListing {
            group_id: g.group_id,
            state: g.state,
            protocol_type: g.protocol_type,
            coordinator_id: g.coordinator_id,
            members: g.members,
            status: g.status,
        }
    }
}

impl From<pb::GroupMemberDescription> for GroupMemberDescription {
    fn from(m: pb::GroupMemberDescription) -> Self {
        GroupMemberDescription {
            member_id: m.member_id,
            group_instance_id: non_empty(m.group_instance_id),
            client_id: m.client_id,
            host: m.host,
            assignment: m.assignment.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<pb::PartitionLag> for PartitionLag {
    fn from(p: pb::PartitionLag) -> Self {
        PartitionLag {
            topic: p.topic,
            partition: p.partition,
            committed_offset: (p.committed_offset >= 0).then_some(p.committed_offset),
            log_end_offset: p.log_end_offset,
            high_watermark: p.high_watermark,
            lag: p.lag,
            status: p.status,
            owner: non_empty(p.owner),
        }
    }
}

impl From<pb::DescribeGroupResponse> for GroupDescription {
    fn from(g: pb::DescribeGroupResponse) -> Self {
        GroupDescription {
            group_id: g.group_id,
            state: g.state,
            protocol_type: g.protocol_type,
            protocol: g.protocol,
            status: g.status,
            generation_id: g.generation_id,
            coordinator_id: g.coordinator_id,
            members: g.members.into_iter().map(Into::into).collect(),
            partitions: g.partitions.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<pb::DescribeGroupsResponse> for GroupDescriptions {
    fn from(r: pb::DescribeGroupsResponse) -> Self {
        GroupDescriptions {
            groups: r.groups.into_iter().map(Into::into).collect(),
            unavailable: r
                .unavailable
                .into_iter()
                .map(|u| UnavailableCoordinator { broker_id: u.broker_id, address: u.address, error: u.error })
                .collect(),
        }
    }
}

impl From<pb::CommittedOffset> for CommittedOffset {
    fn from(c: pb::CommittedOffset) -> Self {
        CommittedOffset {
            topic: c.topic,
            partition: c.partition,
            offset: (c.offset >= 0).then_some(c.offset),
            metadata: c.metadata,
            commit_timestamp_ms: c.commit_timestamp_ms,
        }
    }
}

impl From<pb::PlanRebalanceResponse> for RebalancePlan {
    fn from(r: pb::PlanRebalanceResponse) -> Self {
        RebalancePlan {
            moves: r
                .moves
                .into_iter()
                .map(|m| PartitionMove {
                    topic: m.topic,
                    partition: m.partition,
                    from_replicas: m.from_replicas,
                    to_replicas: m.to_replicas,
                    bytes_to_move: m.bytes_to_move,
                })
                .collect(),
            bytes_to_move: r.bytes_to_move,
            goals: r
                .goals
                .into_iter()
                .map(|g| BalanceGoal { name: g.name, before: g.before, after: g.after })
                .collect(),
            sizes_note: non_empty(r.sizes_note),
        }
    }
}

impl From<pb::ReassignmentStatusResponse> for ReassignmentStatus {
    fn from(r: pb::ReassignmentStatusResponse) -> Self {
        ReassignmentStatus {
            in_progress: r.in_progress,
            partitions_total: r.partitions_total,
            bytes_total: r.bytes_total,
            throttle_bytes_per_sec: (r.throttle_bytes_per_sec > 0).then_some(r.throttle_bytes_per_sec),
            started_ms: r.started_ms,
            pending: r
                .pending
                .into_iter()
                .map(|p| PartitionReassignment {
                    topic: p.topic,
                    partition: p.partition,
                    original: p.original,
                    target: p.target,
                    adding: p.adding,
                    removing: p.removing,
                    isr: p.isr,
                    leader: p.leader,
                    bytes: p.bytes,
                    bytes_left: p.bytes_left,
                })
                .collect(),
            bytes_left: r.bytes_left,
        }
    }
}
