//! The rebalance planner: pure and deterministic (no I/O, no clock, no
//! randomness; every iteration is over ordered maps with strict
//! tie-breaks), so the same metadata and sizes give the same plan on every
//! broker.
//!
//! Input: the cluster metadata, the size of every partition (bytes, one
//! number per partition: the leader's log) and the topics whose partitions
//! may move (empty: all). Balance is measured over the whole cluster; only
//! the selected topics move. Output: a [`Plan`] of replica lists to move to.
//!
//! Goals, in priority order (a later goal never undoes an earlier one):
//!
//! 1. **Two domains** (hard): each partition's replicas span min(#FD, RF)
//!    fault domains and min(#UD, RF) update domains, counted over live
//!    brokers. A violating partition gets the fewest replacements that fix
//!    it (1, then 2, ... replicas), on the least-loaded brokers; when the
//!    shape of the cluster makes it impossible, it is left as it is.
//! 2. **Replicas, then bytes, per broker** (as Cruise Control's
//!    ReplicaDistribution before DiskUsageDistribution).
//!    - 2a, replicas: repeatedly, from the broker with the most replicas
//!      onto the one with the fewest that can take one (at least 2 fewer,
//!      so Σ replicas² strictly drops), move the single replica whose size
//!      is nearest what suits both ends (the bytes the receiver lacks per
//!      replica it lacks, averaged with the bytes the giver has too many
//!      per replica too many), keeping the domain rule. That leaves bytes
//!      near balance once counts are. When the domain rule allows no single
//!      move (RF 3 over 3 × 3 domains pins a partition to its racks), 2..RF
//!      replicas of one partition move together.
//!    - 2b, bytes: between the heaviest broker and the lightest (then the
//!      next pairs, while they differ by more than 2 % of the mean), the
//!      best of: a move of one replica, if both replica counts stay within
//!      the range 2a reached; a *swap* (a bigger partition's replica goes
//!      to the light broker, a small partition's comes back, so no count
//!      changes); a *list swap* (two partitions of one RF exchange their
//!      whole replica lists, for where the domain rule allows no single
//!      swap). Each aims at half the pair's difference, must lower
//!      Σ bytes² and narrow the pair by at least 1 % of the mean; of those
//!      that get half the best possible gain, the one copying the fewest
//!      bytes wins.
//!
//!    Each broker keeps its partitions ordered by size, so a search starts
//!    at the size it wants, and counts per rack how many of them could
//!    move there under the domain rule, so broker pairs that cannot trade
//!    are skipped without looking at any partition: 10,000 partitions on
//!    30 brokers plan in well under a second (`cargo bench -p kmon-broker
//!    --bench planner`).
//! 3. **Leaders**: the first replica is the preferred leader. Reordering
//!    replicas (no data moves) lowers Σ leaders² per broker, then per fault
//!    domain, then per update domain; where no single reorder helps, a
//!    chain of them passes one leadership from the broker with the most
//!    through brokers that each give one and get one, to one with at
//!    least 2 fewer.
//! 4. **Fewest bytes**: nothing moves unless it improves a goal; moves of
//!    fewer replicas are tried before moves of more; swaps prefer the light
//!    broker's smallest partitions; bytes within 2 % of balance stay put.
//!
//! Placement targets are live (unfenced) brokers. Replica lists come from
//! the assignment, never from the ISR: an under-replicated partition keeps
//! every assigned replica (the HDInsight tool's known flaw, not repeated).
//!
//! Files, by phase: `model` (the model, the domain rule, replacements,
//! the measures), `domains` (goal 1), `replicas` (goal 2a), `bytes` (goal
//! 2b), `leaders` (goal 3); this file holds the plan's types and [`plan`].

mod bytes;
mod domains;
mod leaders;
mod model;
mod replicas;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::controller::state::{BrokerId, ClusterState};

/// Bytes per partition, keyed by (topic, partition). Missing: 0.
pub type PartitionSizes = BTreeMap<(String, u32), u64>;

/// Safety bound on balancing moves (each one strictly lowers a finite
/// potential, so the loop ends anyway).
const MAX_MOVES: usize = 1_000_000;

/// A reassignment: what to move, how much data that copies, and how each
/// goal looks before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Partitions whose replica list changes (set or order), by topic and
    /// partition.
    pub moves: Vec<Move>,
    /// Sum of the moves' `bytes_to_move`.
    pub bytes_to_move: u64,
    /// One entry per goal, in priority order (see [`GOAL_NAMES`]).
    pub goals: Vec<Goal>,
}

/// One partition's new replica list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub topic: String,
    pub partition: u32,
    pub from_replicas: Vec<BrokerId>,
    /// The first replica is the preferred leader.
    pub to_replicas: Vec<BrokerId>,
    /// Partition size × replicas new to the list (0 for a reorder).
    pub bytes_to_move: u64,
}

/// A goal's measure before and after the plan: the count of partitions
/// violating the two-domain rule, or a skew (max / mean; 1.0 is perfect).
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub name: &'static str,
    pub before: f64,
    pub after: f64,
}

/// Stable goal names, in the order of [`Plan::goals`].
pub const GOAL_NAMES: [&str; 10] = [
    "two_domain_violations",
    "replicas_per_broker_skew",
    "bytes_per_broker_skew",
    "leaders_per_broker_skew",
    "leaders_per_fault_domain_skew",
    "leaders_per_update_domain_skew",
    "replicas_per_fault_domain_skew",
    "replicas_per_update_domain_skew",
    "bytes_per_fault_domain_skew",
    "bytes_per_update_domain_skew",
];

/// Computes the plan. `topics` empty: every topic may move.
pub fn plan(state: &ClusterState, sizes: &PartitionSizes, topics: &BTreeSet<String>) -> Plan {
    let mut model = Model::new(state, sizes, topics);
    let before = model.measure();
    if !model.live.is_empty() {
        model.fix_domains();
        model.balance_replicas();
        model.balance_bytes();
        model.balance_leaders();
    }
    let after = model.measure();
    let moves: Vec<Move> = model
        .parts
        .iter()
        .filter(|p| p.replicas != p.original)
        .map(|p| {
            let new = p.replicas.iter().filter(|b| !p.original.contains(b)).count() as u64;
            Move {
                topic: p.topic.clone(),
                partition: p.partition,
                from_replicas: p.original.clone(),
                to_replicas: p.replicas.clone(),
                bytes_to_move: p.size.saturating_mul(new),
            }
        })
        .collect();
    let goals = GOAL_NAMES
        .iter()
        .zip(before.iter().zip(after))
        .map(|(name, (b, a))| Goal { name, before: *b, after: a })
        .collect();
    Plan { bytes_to_move: moves.iter().map(|m| m.bytes_to_move).sum(), moves, goals }
}

/// The goals' measures of the assignment as it stands, in [`GOAL_NAMES`]
/// order: to compare another reassignment (or none) with a plan.
pub fn measure(state: &ClusterState, sizes: &PartitionSizes) -> Vec<(&'static str, f64)> {
    let model = Model::new(state, sizes, &BTreeSet::new());
    GOAL_NAMES.iter().copied().zip(model.measure()).collect()
}

#[derive(Debug)]
struct Part {
    topic: String,
    partition: u32,
    size: u64,
    movable: bool,
    original: Vec<BrokerId>,
    replicas: Vec<BrokerId>,
}

/// A candidate change of one partition: replace the replicas at
/// `positions` by `adds`; lower `score` is better (see [`Criterion`]).
#[derive(Debug)]
struct Replacement {
    positions: Vec<usize>,
    adds: Vec<BrokerId>,
    score: (i128, i128),
}

/// What a replacement of replicas is for, and so which ones qualify and
/// how they rank.
#[derive(Debug, Clone, Copy)]
enum Criterion {
    /// Goal 1: any replacement that makes the partition span the domains,
    /// ranked by (Δ Σ replicas², Δ Σ bytes²).
    Fix,
    /// Goal 2a: strictly lowers Σ replicas² (Δ Σ bytes² breaks ties), onto
    /// brokers with fewer replicas than the source.
    Replicas,
}

#[derive(Debug)]
struct Model<'a> {
    /// Every registered broker's (fault domain, update domain).
    domain: BTreeMap<BrokerId, (&'a str, &'a str)>,
    /// The same as small numbers, for the checks in the hot loops.
    domain_ids: BTreeMap<BrokerId, (u32, u32)>,
    /// Live brokers, by id.
    live: Vec<BrokerId>,
    /// Live brokers per (fault domain, update domain).
    racks: BTreeMap<(&'a str, &'a str), Vec<BrokerId>>,
    fault_domains: usize,
    update_domains: usize,
    parts: Vec<Part>,
    /// Replicas and bytes per broker (live brokers and any holding replicas).
    count: BTreeMap<BrokerId, i64>,
    bytes: BTreeMap<BrokerId, i64>,
    /// Movable partitions on each broker by (size, index in `parts`): a
    /// search for a partition of a given size starts where it should.
    hosted: BTreeMap<BrokerId, BTreeSet<(u64, usize)>>,
    /// Racks of live brokers as (fault domain id, update domain id), and
    /// each live broker's rack (its index there).
    rack_domains: Vec<(u32, u32)>,
    rack_of: BTreeMap<BrokerId, usize>,
    /// Per broker and rack: how many movable partitions on the broker could
    /// move that replica onto a broker of the rack under the domain rule.
    /// A pair of brokers with none is skipped without looking at any
    /// partition (with RF 3 over 3 × 3 domains, most pairs).
    reach: BTreeMap<BrokerId, Vec<u32>>,
}

fn clamp(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}
