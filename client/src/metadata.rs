//! The client's cached view of the cluster (pure, no I/O): brokers by id,
//! every partition's leader and leader epoch, partition counts.
//!
//! [`crate::router::Router`] fills it from `Metadata` answers, on demand
//! (an unknown topic or partition) and after a routing error. Any broker
//! answers `Metadata` from its local copy, which may lag: a partition's
//! entry is only replaced by one with the same or a newer leader epoch, so
//! a stale answer never moves a leader back.

use std::collections::HashMap;

use crate::types::{BrokerInfo, ClusterMetadata};

/// A partition's leader as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leader {
    /// Broker id; -1 while the partition is offline.
    pub(crate) id: i32,
    pub(crate) epoch: i32,
}

const OFFLINE: Leader = Leader { id: -1, epoch: -1 };

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct MetadataCache {
    brokers: HashMap<i32, BrokerInfo>,
    /// Topic → leaders indexed by partition number.
    topics: HashMap<String, Vec<Leader>>,
    /// Bumped by every [`MetadataCache::update`]; lets concurrent callers
    /// that saw the same failure share one refresh.
    generation: u64,
}

impl MetadataCache {
    /// Merges a full `Metadata` answer (every topic): brokers and the
    /// controller are replaced, topics missing from the answer are dropped
    /// (deleted), partitions keep the newer leader epoch. By reference: only
    /// brokers and leaders are kept, and cloning a whole answer of thousands
    /// of partitions for them cost more than they do.
    pub(crate) fn update(&mut self, metadata: &ClusterMetadata) {
        self.brokers = metadata.brokers.iter().map(|broker| (broker.id, broker.clone())).collect();
        let mut topics = HashMap::with_capacity(metadata.topics.len());
        for topic in &metadata.topics {
            let count = topic.partitions.iter().map(|p| p.partition as usize + 1).max().unwrap_or(0);
            let old = self.topics.get(&topic.name);
            let mut leaders = vec![OFFLINE; count];
            for p in &topic.partitions {
                let new = Leader { id: p.leader, epoch: p.leader_epoch };
                let known = old.and_then(|old| old.get(p.partition as usize));
                leaders[p.partition as usize] = match known {
                    Some(known) if known.epoch > new.epoch => *known,
                    _ => new,
                };
            }
            topics.insert(topic.name.clone(), leaders);
        }
        self.topics = topics;
        self.generation += 1;
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topics.get(topic).map(|leaders| leaders.len() as u32)
    }

    pub(crate) fn leader(&self, topic: &str, partition: u32) -> Option<Leader> {
        self.topics.get(topic).and_then(|leaders| leaders.get(partition as usize)).copied()
    }

    /// The gRPC address of the partition's leader, if it has one and the
    /// broker is known.
    pub(crate) fn leader_address(&self, topic: &str, partition: u32) -> Option<&str> {
        let leader = self.leader(topic, partition)?;
        self.brokers.get(&leader.id).map(|broker| broker.address.as_str()).filter(|address| !address.is_empty())
    }

    /// A broker said `address` leads the partition (`kmon-leader` on
    /// NOT_LEADER_OR_FOLLOWER): believe it until the next update with a
    /// newer epoch. Returns whether the address is a known broker.
    pub(crate) fn apply_leader_hint(&mut self, topic: &str, partition: u32, address: &str) -> bool {
        let Some(id) = self.brokers.values().find(|broker| broker.address == address).map(|broker| broker.id) else {
            return false;
        };
        match self.topics.get_mut(topic).and_then(|leaders| leaders.get_mut(partition as usize)) {
            Some(leader) => {
                leader.id = id;
                true
            }
            None => false,
        }
    }

    /// Addresses to ask for metadata: alive brokers first, in id order.
    pub(crate) fn broker_addresses(&self) -> Vec<String> {
        let mut brokers: Vec<&BrokerInfo> = self.brokers.values().collect();
        brokers.sort_by_key(|broker| (!broker.alive, broker.id));
        brokers.into_iter().map(|broker| broker.address.clone()).filter(|address| !address.is_empty()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PartitionDescription, TopicDescription};

    fn broker(id: i32, alive: bool) -> BrokerInfo {
        BrokerInfo {
            id,
            address: format!("127.0.0.1:{}", 9091 + id),
            metrics_address: String::new(),
            kafka_address: String::new(),
            fault_domain: String::new(),
            update_domain: String::new(),
            alive,
        }
    }

    fn partition(partition: u32, leader: i32, leader_epoch: i32) -> PartitionDescription {
        PartitionDescription {
            partition,
            leader,
            leader_epoch,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            elr: Vec::new(),
            log_start_offset: 0,
            log_end_offset: 0,
            high_watermark: 0,
            size_bytes: 0,
            data_dir: String::new(),
        }
    }

    fn metadata(topics: Vec<(&str, Vec<PartitionDescription>)>) -> ClusterMetadata {
        ClusterMetadata {
            brokers: vec![broker(1, true), broker(2, false), broker(3, true)],
            controller_id: 1,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| TopicDescription {
                    name: name.into(),
                    topic_id: String::new(),
                    replication_factor: 3,
                    configs: vec![],
                    partitions,
                })
                .collect(),
        }
    }

    #[test]
    fn leaders_and_counts_come_from_the_answer() {
        let mut cache = MetadataCache::default();
        assert_eq!(cache.partition_count("t"), None);
        cache.update(&metadata(vec![("t", vec![partition(1, 3, 0), partition(0, 2, 4), partition(2, -1, 1)])]));
        assert_eq!(cache.generation(), 1);
        assert_eq!(cache.partition_count("t"), Some(3));
        assert_eq!(cache.leader_address("t", 0), Some("127.0.0.1:9093"));
        assert_eq!(cache.leader_address("t", 1), Some("127.0.0.1:9094"));
        assert_eq!(cache.leader_address("t", 2), None, "offline");
        assert_eq!(cache.leader_address("t", 3), None, "no such partition");
        assert_eq!(
            cache.broker_addresses(),
            ["127.0.0.1:9092", "127.0.0.1:9094", "127.0.0.1:9093"],
            "alive brokers first"
        );
    }

    #[test]
    fn a_stale_answer_does_not_move_a_leader_back() {
        let mut cache = MetadataCache::default();
        cache.update(&metadata(vec![("t", vec![partition(0, 2, 5)])]));
        cache.update(&metadata(vec![("t", vec![partition(0, 1, 4)])]));
        assert_eq!(cache.leader("t", 0), Some(Leader { id: 2, epoch: 5 }));
        cache.update(&metadata(vec![("t", vec![partition(0, 3, 6)])]));
        assert_eq!(cache.leader("t", 0), Some(Leader { id: 3, epoch: 6 }));
    }

    #[test]
    fn deleted_topics_disappear() {
        let mut cache = MetadataCache::default();
        cache.update(&metadata(vec![("t", vec![partition(0, 1, 0)])]));
        cache.update(&metadata(vec![]));
        assert_eq!(cache.partition_count("t"), None);
    }

    #[test]
    fn a_leader_hint_names_a_known_broker() {
        let mut cache = MetadataCache::default();
        cache.update(&metadata(vec![("t", vec![partition(0, 1, 0)])]));
        assert!(cache.apply_leader_hint("t", 0, "127.0.0.1:9094"));
        assert_eq!(cache.leader("t", 0), Some(Leader { id: 3, epoch: 0 }));
        assert!(!cache.apply_leader_hint("t", 0, "10.0.0.1:1"));
        assert!(!cache.apply_leader_hint("other", 0, "127.0.0.1:9094"));
        assert_eq!(cache.leader("t", 0).unwrap().id, 3);
    }
}
