//! A synthetic, skewed cluster for benchmarking the planner (`cargo bench
//! -p kmon-broker --bench planner`), and the naive
//! round-robin reassignment it is compared with. Deterministic: the same
//! arguments give the same cluster.
//!
//! The shape: brokers laid over `fault_domains × update_domains` racks
//! along the diagonal (as `kmon up`: broker `i` is in
//! [`placement::diagonal_cell`]`(i)`), topics of RF 3 with various partition counts
//! created by the controller's own placement while only the first half of
//! the brokers existed (so the second half is empty: a scale-out), 1 % of
//! the partitions then reassigned by hand onto random old brokers (some
//! breaking the two-domain rule), and sizes from a fixed-seed heavy-tailed
//! distribution (per topic log-uniform 16 MiB..16 GiB, per partition
//! ×0.5..1.5, and in every third topic a key skew: partition `p` × 4 / (1 +
//! p mod 8)).

use std::collections::BTreeMap;

use super::planner::{PartitionSizes, Plan, measure};
use crate::controller::state::{BrokerId, BrokerRecord, ClusterState, MetadataCommand};
use crate::placement;

/// Brokers per fault domain × update domain grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub fault_domains: usize,
    pub update_domains: usize,
}

/// The synthetic cluster: metadata and partition sizes.
#[derive(Debug, Clone)]
pub struct Synthetic {
    pub state: ClusterState,
    pub sizes: PartitionSizes,
}

/// Partition counts topics draw from.
const TOPIC_PARTITIONS: [u32; 7] = [6, 12, 24, 48, 100, 200, 500];
/// Replication factor of every synthetic topic.
const REPLICATION_FACTOR: u32 = 3;
const MIB: u64 = 1 << 20;

/// `brokers` brokers (ids 1..=brokers) and `partitions` partitions of RF 3;
/// see the module docs for the shape.
pub fn skewed_cluster(brokers: u32, partitions: u32, layout: Layout, seed: u64) -> Synthetic {
    let mut rng = SplitMix64(seed);
    let mut state = ClusterState::default();
    let register = |state: &mut ClusterState, id: BrokerId| {
        let (fd, ud) = placement::diagonal_cell((id - 1) as usize, layout.fault_domains, layout.update_domains);
        state.apply(&MetadataCommand::RegisterBroker(BrokerRecord::local(id, fd, ud))).expect("registering a broker");
    };
    let old_brokers = (brokers / 2).max(REPLICATION_FACTOR.min(brokers)).max(1) as BrokerId;
    for id in 1..=old_brokers {
        register(&mut state, id);
    }
    let mut sizes = PartitionSizes::new();
    let mut created = 0u32;
    let mut topic = 0usize;
    while created < partitions {
        let count = TOPIC_PARTITIONS[rng.below(TOPIC_PARTITIONS.len() as u64) as usize].min(partitions - created);
        let name = format!("topic-{topic:03}");
        state
            .apply(&MetadataCommand::CreateTopic {
                name: name.clone(),
                partitions: count,
                replication_factor: REPLICATION_FACTOR.min(old_brokers as u32),
                configs: BTreeMap::new(),
                topic_id: topic as u64 + 1,
                min_insync_replicas: 0,
            })
            .expect("creating a topic");
        // Log-uniform between 16 MiB and 16 GiB: 2^(24..34).
        let base = (2f64.powf(24.0 + 10.0 * rng.unit()) as u64).max(MIB);
        let key_skew = topic.is_multiple_of(3);
        for p in 0..count {
            let jitter = 0.5 + rng.unit();
            let skew = if key_skew { 4.0 / (1.0 + f64::from(p % 8)) } else { 1.0 };
            sizes.insert((name.clone(), p), (base as f64 * jitter * skew) as u64);
        }
        created += count;
        topic += 1;
    }
    // Hand-made reassignments onto old brokers, some breaking the rule.
    let names: Vec<String> = state.topics.keys().cloned().collect();
    for name in &names {
        for p in &mut state.topics.get_mut(name).expect("topic").partitions {
            if rng.below(100) != 0 {
                continue;
            }
            let mut replicas: Vec<BrokerId> = Vec::new();
            while replicas.len() < p.replicas.len() {
                let b = 1 + rng.below(old_brokers as u64) as BrokerId;
                if !replicas.contains(&b) {
                    replicas.push(b);
                }
            }
            p.leader = replicas[0];
            p.isr = replicas.clone();
            p.replicas = replicas;
        }
    }
    for id in old_brokers + 1..=brokers as BrokerId {
        register(&mut state, id);
    }
    Synthetic { state, sizes }
}

/// The naive reassignment: partition `i` (counting every topic's partitions
/// in name order) on the live brokers `i, i + 1, …, i + RF − 1` (by id,
/// modulo their count), blind to domains, sizes and the current placement.
pub fn round_robin(state: &ClusterState) -> ClusterState {
    let live: Vec<BrokerId> = state.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect();
    let mut out = state.clone();
    if live.is_empty() {
        return out;
    }
    let mut i = 0usize;
    for record in out.topics.values_mut() {
        for p in &mut record.partitions {
            let rf = p.replicas.len().min(live.len());
            p.replicas = (0..rf).map(|k| live[(i + k) % live.len()]).collect();
            p.leader = p.replicas[0];
            p.isr = p.replicas.clone();
            i += 1;
        }
    }
    out
}

/// Bytes a reassignment from `before` to `after` copies: each partition's
/// size once per replica new to its list.
pub fn bytes_moved(before: &ClusterState, after: &ClusterState, sizes: &PartitionSizes) -> u64 {
    let mut total = 0u64;
    for (topic, record) in &after.topics {
        let Some(old) = before.topics.get(topic) else { continue };
        for (index, (new, old)) in record.partitions.iter().zip(&old.partitions).enumerate() {
            let added = new.replicas.iter().filter(|b| !old.replicas.contains(b)).count() as u64;
            let size = sizes.get(&(topic.clone(), index as u32)).copied().unwrap_or(0);
            total = total.saturating_add(size.saturating_mul(added));
        }
    }
    total
}

/// A markdown table of every goal's measure before, after `plan` (its
/// `plan` output is passed in) and after the naive [`round_robin`]
/// reassignment, with the bytes and partitions each moves.
pub fn comparison(cluster: &Synthetic, plan: &Plan) -> String {
    let naive = round_robin(&cluster.state);
    let before = measure(&cluster.state, &cluster.sizes);
    let after_naive = measure(&naive, &cluster.sizes);
    let mut out = String::from("| measure | before | planner | round-robin |\n|---|---|---|---|\n");
    for ((name, b), (goal, (_, n))) in before.iter().zip(plan.goals.iter().zip(&after_naive)) {
        out += &format!("| {name} | {b} | {} | {n} |\n", goal.after);
    }
    let moved_naive = bytes_moved(&cluster.state, &naive, &cluster.sizes);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let total: u64 = cluster.sizes.values().sum();
    out += &format!(
        "| bytes moved (GiB; data: {:.0} GiB × RF) | 0 | {:.1} | {:.1} |\n",
        gib(total),
        gib(plan.bytes_to_move),
        gib(moved_naive)
    );
    let changed_naive = cluster
        .state
        .topics
        .values()
        .zip(naive.topics.values())
        .flat_map(|(a, b)| a.partitions.iter().zip(&b.partitions))
        .filter(|(a, b)| a.replicas != b.replicas)
        .count();
    out += &format!("| partitions whose replica list changes | 0 | {} | {changed_naive} |\n", plan.moves.len());
    out
}

/// A small, fixed, dependency-free generator (SplitMix64): the bench's
/// input must not change with a `rand` upgrade.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::planner::{measure, plan};

    #[test]
    fn the_synthetic_cluster_is_deterministic_and_skewed() {
        let layout = Layout { fault_domains: 5, update_domains: 6 };
        let a = skewed_cluster(30, 1_000, layout, 7);
        let b = skewed_cluster(30, 1_000, layout, 7);
        assert_eq!(a.state, b.state);
        assert_eq!(a.sizes, b.sizes);
        assert_eq!(a.sizes.len(), 1_000);
        let goals: BTreeMap<&str, f64> = measure(&a.state, &a.sizes).into_iter().collect();
        assert!(goals["replicas_per_broker_skew"] >= 1.9, "{goals:?}");
        assert!(goals["two_domain_violations"] > 0.0, "{goals:?}");
    }

    #[test]
    fn round_robin_uses_every_live_broker_and_keeps_the_replication_factor() {
        let layout = Layout { fault_domains: 3, update_domains: 3 };
        let s = skewed_cluster(9, 90, layout, 1);
        let naive = round_robin(&s.state);
        for (old, new) in s.state.topics.values().zip(naive.topics.values()) {
            for (o, n) in old.partitions.iter().zip(&new.partitions) {
                assert_eq!(o.replicas.len(), n.replicas.len());
            }
        }
        let goals: BTreeMap<&str, f64> = measure(&naive, &s.sizes).into_iter().collect();
        assert_eq!(goals["replicas_per_broker_skew"], 1.0);
        assert!(bytes_moved(&s.state, &naive, &s.sizes) > 0);
        assert!(plan(&s.state, &s.sizes, &Default::default()).bytes_to_move > 0);
    }
}
