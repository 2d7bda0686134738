//! Partition sizes for the planner: each partition's size is its leader's
//! log size, so every broker plans with the same numbers. Partitions this
//! broker leads are measured locally; for the others, each leading broker
//! is asked once (`Metadata`, which reports the sizes of the logs a broker
//! hosts), concurrently, within [`ASK_TIMEOUT`]. When a leader cannot
//! answer (or a partition is offline), this broker's own replica is used
//! if it has one, else 0, and the note says how many sizes are estimates.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kmon_proto::v1::MetadataRequest;
use kmon_proto::v1::kmon_client::KmonClient;

use super::planner::PartitionSizes;
use crate::broker::Broker;
use crate::controller::state::{BrokerId, ClusterState};

/// Bound on asking one leader for its sizes.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// The sizes of the partition logs this broker hosts, of `topics` (empty:
/// every topic), read locally.
pub(crate) fn local_sizes(broker: &Broker, topics: &[String]) -> BTreeMap<(String, u32), u64> {
    broker
        .logs
        .all()
        .into_iter()
        .filter(|log| topics.is_empty() || topics.contains(&log.topic))
        .map(|log| ((log.topic.clone(), log.partition), log.size_bytes()))
        .collect()
}

/// Sizes of every partition of the cluster, and a note when some are
/// estimates.
pub async fn partition_sizes(broker: &Broker, state: &ClusterState) -> (PartitionSizes, Option<String>) {
    let me = broker.config.broker_id;
    let local = |topic: &str, partition: u32| broker.logs.get(topic, partition).map(|l| l.size_bytes());
    let mut sizes = PartitionSizes::new();
    let mut remote: BTreeMap<BrokerId, BTreeSet<(String, u32)>> = BTreeMap::new();
    for (topic, record) in &state.topics {
        for (index, p) in record.partitions.iter().enumerate() {
            let key = (topic.clone(), index as u32);
            if p.leader == me || !state.brokers.contains_key(&p.leader) {
                sizes.insert(key, local(topic, index as u32).unwrap_or(0));
            } else {
                remote.entry(p.leader).or_default().insert(key);
            }
        }
    }
    let asks = remote.keys().map(|id| ask_sizes(broker, &state.brokers[id].address, Vec::new()));
    let answers = futures::future::join_all(asks).await;
    let mut estimated = 0usize;
    for ((leader, wanted), answer) in remote.iter().zip(answers) {
        for key in wanted {
            let size = match answer.as_ref().ok().and_then(|a| a.get(key)) {
                Some(size) => *size,
                None => {
                    estimated += 1;
                    tracing::debug!(topic = %key.0, partition = key.1, leader, "partition size unknown; estimated");
                    local(&key.0, key.1).unwrap_or(0)
                }
            };
            sizes.insert(key.clone(), size);
        }
    }
    let note = (estimated > 0).then(|| {
        format!(
            "{estimated} partition size(s) could not be read from their leader and were planned \
             with this broker's replica size, or 0 where it has none"
        )
    });
    (sizes, note)
}

/// The sizes of the partition logs the broker at `address` hosts, of
/// `topics` (empty: every topic), over the channel this broker keeps to it.
pub(crate) async fn ask_sizes(
    broker: &Broker,
    address: &str,
    topics: Vec<String>,
) -> Result<BTreeMap<(String, u32), u64>, String> {
    let ask = async {
        let channel = broker.groups.remote_channel(address).map_err(|e| format!("{address}: {e}"))?;
        let response = KmonClient::new(channel)
            .metadata(MetadataRequest { topics })
            .await
            .map_err(|s| format!("{address}: {}", s.message()))?
            .into_inner();
        Ok(response
            .topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name;
                // Hosted partitions report a log end offset; others -1.
                t.partitions
                    .into_iter()
                    .filter(|p| p.log_end_offset >= 0)
                    .map(move |p| ((name.clone(), p.partition), p.size_bytes))
            })
            .collect())
    };
    match tokio::time::timeout(ASK_TIMEOUT, ask).await {
        Ok(result) => result,
        Err(_) => Err(format!("{address}: no answer within {ASK_TIMEOUT:?}")),
    }
}
