//! Clusters and topics for the tests of the state machine and of placement.

use std::collections::BTreeMap;

use super::*;

pub(crate) fn broker(id: BrokerId, fd: usize, ud: usize) -> MetadataCommand {
    MetadataCommand::RegisterBroker(BrokerRecord::local(id, fd, ud))
}

pub(crate) fn cluster(layout: &[(usize, usize)]) -> ClusterState {
    let mut s = ClusterState::default();
    for (i, (fd, ud)) in layout.iter().enumerate() {
        s.apply(&broker(i as BrokerId + 1, *fd, *ud)).unwrap();
    }
    s
}

pub(crate) fn create(s: &mut ClusterState, name: &str, partitions: u32, rf: u32) -> ApplyResult {
    s.apply(&MetadataCommand::CreateTopic {
        name: name.into(),
        partitions,
        replication_factor: rf,
        configs: BTreeMap::new(),
        topic_id: 1,
        min_insync_replicas: 0,
    })
}
