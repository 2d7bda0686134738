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
//!    ReplicaDistribution before DiskUsageDistribution): repeatedly, from
//!    the most loaded broker, move one replica (or, when the domain rule
//!    allows no single move, 2..RF replicas of one partition together) to
//!    less loaded brokers, smallest partitions first, as long as that
//!    strictly lowers Σ replicas² over brokers (Σ bytes² breaks ties) and
//!    keeps the partition within the domain rule. Then the same for
//!    Σ bytes², keeping every broker's replica count within 1.1 × the mean
//!    (or what the first pass reached).
//! 3. **Leaders**: the first replica is the preferred leader. Reordering
//!    replicas (no data moves) lowers Σ leaders² per broker, then per fault
//!    domain, then per update domain.
//! 4. **Fewest bytes**: nothing moves unless it strictly improves a goal;
//!    moves of fewer replicas are tried before moves of more; small
//!    partitions are tried first.
//!
//! Placement targets are live (unfenced) brokers. Replica lists come from
//! the assignment, never from the ISR: an under-replicated partition keeps
//! every assigned replica (the HDInsight tool's known flaw, not repeated).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::controller::state::{BrokerId, ClusterState, spans_domains};

/// Bytes per partition, keyed by (topic, partition). Missing: 0.
pub type PartitionSizes = BTreeMap<(String, u32), u64>;

/// Safety bound on balancing moves (each one strictly lowers a finite
/// potential, so the loop ends anyway).
const MAX_MOVES: usize = 1_000_000;
/// Bound on passes over the partitions when balancing leaders.
const MAX_LEADER_PASSES: usize = 100;

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

/// What a replacement is for, and so which ones qualify and how they rank.
#[derive(Debug, Clone, Copy)]
enum Criterion {
    /// Goal 1: any replacement that makes the partition span the domains,
    /// ranked by (Δ Σ replicas², Δ Σ bytes²).
    Fix,
    /// Goal 2a: lowers (Δ Σ replicas², Δ Σ bytes²), onto brokers with
    /// fewer replicas than the source.
    Replicas,
    /// Goal 2b: lowers Σ bytes² onto brokers with fewer bytes than the
    /// source, keeping every count within `lower..=upper`.
    Bytes { lower: i64, upper: i64 },
}

/// Cruise Control's balance threshold (max / mean): goal 2b keeps replica
/// counts within it while it balances bytes.
const BALANCE_THRESHOLD: f64 = 1.1;

#[derive(Debug)]
struct Model<'a> {
    /// Every registered broker's (fault domain, update domain).
    domain: BTreeMap<BrokerId, (&'a str, &'a str)>,
    live: Vec<BrokerId>,
    /// Live brokers per (fault domain, update domain).
    racks: BTreeMap<(&'a str, &'a str), Vec<BrokerId>>,
    fault_domains: usize,
    update_domains: usize,
    parts: Vec<Part>,
    /// Replicas and bytes per broker (live brokers and any holding replicas).
    count: BTreeMap<BrokerId, i64>,
    bytes: BTreeMap<BrokerId, i64>,
    /// Mean replicas per broker (moves keep the total).
    mean_count: f64,
}

impl<'a> Model<'a> {
    fn new(state: &'a ClusterState, sizes: &PartitionSizes, topics: &BTreeSet<String>) -> Self {
        let domain: BTreeMap<BrokerId, (&str, &str)> =
            state.brokers.values().map(|b| (b.id, (b.fault_domain.as_str(), b.update_domain.as_str()))).collect();
        let live: Vec<BrokerId> = state.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect();
        let mut racks: BTreeMap<(&str, &str), Vec<BrokerId>> = BTreeMap::new();
        for id in &live {
            racks.entry(domain[id]).or_default().push(*id);
        }
        let fault_domains = live.iter().map(|b| domain[b].0).collect::<BTreeSet<_>>().len();
        let update_domains = live.iter().map(|b| domain[b].1).collect::<BTreeSet<_>>().len();
        let mut count: BTreeMap<BrokerId, i64> = live.iter().map(|b| (*b, 0)).collect();
        let mut bytes: BTreeMap<BrokerId, i64> = live.iter().map(|b| (*b, 0)).collect();
        let mut parts = Vec::new();
        for (topic, record) in &state.topics {
            let movable = topics.is_empty() || topics.contains(topic);
            for (index, p) in record.partitions.iter().enumerate() {
                let partition = index as u32;
                let size = sizes.get(&(topic.clone(), partition)).copied().unwrap_or(0);
                for r in &p.replicas {
                    *count.entry(*r).or_default() += 1;
                    *bytes.entry(*r).or_default() += clamp(size);
                }
                parts.push(Part {
                    topic: topic.clone(),
                    partition,
                    size,
                    movable,
                    original: p.replicas.clone(),
                    replicas: p.replicas.clone(),
                });
            }
        }
        let mean_count = count.values().sum::<i64>() as f64 / count.len().max(1) as f64;
        Model { domain, live, racks, fault_domains, update_domains, parts, count, bytes, mean_count }
    }

    fn spans(&self, replicas: &[BrokerId]) -> bool {
        spans_domains(replicas, &self.domain, self.fault_domains, self.update_domains)
    }

    /// Goal 1: the fewest replacements that make each violating partition
    /// span the domains.
    fn fix_domains(&mut self) {
        for p in 0..self.parts.len() {
            if !self.parts[p].movable || self.spans(&self.parts[p].replicas) {
                continue;
            }
            let rf = self.parts[p].replicas.len();
            if let Some(best) = (1..=rf).find_map(|k| self.best_replacement(p, k, None, Criterion::Fix)) {
                self.apply(p, &best);
            }
        }
    }

    /// Goal 2a: replica counts per broker (bytes break ties).
    fn balance_replicas(&mut self) {
        for _ in 0..MAX_MOVES {
            let Some((p, best)) = self.next_move(Criterion::Replicas) else { return };
            self.apply(p, &best);
        }
    }

    /// Goal 2b: bytes per broker, keeping every broker's replica count
    /// within [`BALANCE_THRESHOLD`] of the mean (or of what goal 2a
    /// reached, if wider).
    fn balance_bytes(&mut self) {
        if self.live.is_empty() {
            return;
        }
        let mean = self.mean_count;
        let max = self.count.values().copied().max().unwrap_or(0);
        let min = self.live.iter().map(|b| self.count[b]).min().unwrap_or(0);
        let upper = ((mean * BALANCE_THRESHOLD).ceil() as i64).max(max);
        let lower = ((mean / BALANCE_THRESHOLD).floor() as i64).min(min);
        for _ in 0..MAX_MOVES {
            let Some((p, best)) = self.next_move(Criterion::Bytes { lower, upper }) else { return };
            self.apply(p, &best);
        }
    }

    /// The first improving move under `criterion`: from the most loaded
    /// broker, fewest replicas first, smallest partition first.
    fn next_move(&self, criterion: Criterion) -> Option<(usize, Replacement)> {
        let min_count = self.live.iter().map(|b| self.count[b]).min()?;
        let mut sources: Vec<BrokerId> = self.count.keys().copied().collect();
        match criterion {
            Criterion::Replicas => sources.sort_by_key(|b| (Reverse(self.count[b]), Reverse(self.bytes[b]), *b)),
            _ => sources.sort_by_key(|b| (Reverse(self.bytes[b]), Reverse(self.count[b]), *b)),
        }
        for src in sources {
            let mut on_src: Vec<usize> = (0..self.parts.len())
                .filter(|&p| self.parts[p].movable && self.parts[p].replicas.contains(&src))
                .collect();
            // Smallest first; `parts` is already in (topic, partition) order.
            on_src.sort_by_key(|&p| self.parts[p].size);
            let max_rf = on_src.iter().map(|&p| self.parts[p].replicas.len()).max().unwrap_or(0);
            // With every count within one of the others, no move of
            // several replicas can lower Σ replicas².
            let max_k = match criterion {
                Criterion::Replicas if self.count[&src] - min_count < 2 => 1,
                _ => max_rf,
            };
            for k in 1..=max_k {
                for &p in &on_src {
                    if k > self.parts[p].replicas.len() {
                        continue;
                    }
                    if let Some(best) = self.best_replacement(p, k, Some(src), criterion) {
                        return Some((p, best));
                    }
                }
            }
        }
        None
    }

    /// The best way to replace `k` replicas of partition `p` (one of them
    /// `src`, when given) under `criterion`.
    fn best_replacement(&self, p: usize, k: usize, src: Option<BrokerId>, criterion: Criterion) -> Option<Replacement> {
        let part = &self.parts[p];
        // A partition spanning the domains must keep spanning them; one
        // that cannot (the cluster's shape) may move anyway.
        let must_span = matches!(criterion, Criterion::Fix) || self.spans(&part.replicas);
        let candidates = self.candidates(&part.replicas, k, |b| match criterion {
            Criterion::Fix => true,
            Criterion::Replicas => src.is_some_and(|s| self.count[&b] < self.count[&s]),
            Criterion::Bytes { upper, .. } => {
                src.is_some_and(|s| self.bytes[&b] < self.bytes[&s]) && self.count[&b] < upper
            }
        });
        let mut best: Option<Replacement> = None;
        for positions in combinations(part.replicas.len(), k) {
            let drops: Vec<BrokerId> = positions.iter().map(|&i| part.replicas[i]).collect();
            if src.is_some_and(|s| !drops.contains(&s)) {
                continue;
            }
            if let Criterion::Bytes { lower, .. } = criterion
                && drops.iter().any(|d| self.count[d] <= lower)
            {
                continue;
            }
            for picks in combinations(candidates.len(), k) {
                let adds: Vec<BrokerId> = picks.iter().map(|&i| candidates[i]).collect();
                let mut replicas = part.replicas.clone();
                for (&i, &a) in positions.iter().zip(&adds) {
                    replicas[i] = a;
                }
                if must_span && !self.spans(&replicas) {
                    continue;
                }
                let (dc, db) = self.score(part.size, &drops, &adds);
                let score = match criterion {
                    Criterion::Fix => (dc, db),
                    Criterion::Replicas if (dc, db) < (0, 0) => (dc, db),
                    Criterion::Bytes { .. } if db < 0 => (db, dc),
                    _ => continue,
                };
                if best.as_ref().is_none_or(|b| score < b.score) {
                    best = Some(Replacement { positions: positions.clone(), adds, score });
                }
            }
        }
        best
    }

    /// Live brokers not in `exclude` that pass `allowed`: up to `per_rack`
    /// least-loaded of each rack (brokers of one rack are interchangeable
    /// for the domain rule). By id.
    fn candidates(&self, exclude: &[BrokerId], per_rack: usize, allowed: impl Fn(BrokerId) -> bool) -> Vec<BrokerId> {
        let mut out = Vec::new();
        for members in self.racks.values() {
            let mut free: Vec<BrokerId> =
                members.iter().copied().filter(|b| !exclude.contains(b) && allowed(*b)).collect();
            free.sort_by_key(|b| (self.count[b], self.bytes[b], *b));
            out.extend(free.into_iter().take(per_rack));
        }
        out.sort_unstable();
        out
    }

    /// (Δ Σ replicas², Δ Σ bytes²) over brokers when a partition of `size`
    /// bytes moves off `drops` onto `adds` (disjoint).
    fn score(&self, size: u64, drops: &[BrokerId], adds: &[BrokerId]) -> (i128, i128) {
        let s = i128::from(clamp(size));
        let (mut dc, mut db) = (0i128, 0i128);
        for d in drops {
            let (c, b) = (i128::from(self.count[d]), i128::from(self.bytes[d]));
            dc += 1 - 2 * c;
            db += s * s - 2 * b * s;
        }
        for a in adds {
            let (c, b) = (i128::from(self.count[a]), i128::from(self.bytes[a]));
            dc += 2 * c + 1;
            db += 2 * b * s + s * s;
        }
        (dc, db)
    }

    fn apply(&mut self, p: usize, change: &Replacement) {
        let size = clamp(self.parts[p].size);
        for (&i, &add) in change.positions.iter().zip(&change.adds) {
            let old = std::mem::replace(&mut self.parts[p].replicas[i], add);
            *self.count.get_mut(&old).expect("counted broker") -= 1;
            *self.bytes.get_mut(&old).expect("counted broker") -= size;
            *self.count.entry(add).or_default() += 1;
            *self.bytes.entry(add).or_default() += size;
        }
    }

    /// Goal 3: preferred leaders per broker, then per fault domain, then
    /// per update domain, by reordering replicas.
    fn balance_leaders(&mut self) {
        let mut by_broker: BTreeMap<BrokerId, i64> = self.count.keys().map(|b| (*b, 0)).collect();
        let mut by_fd: BTreeMap<&str, i64> = BTreeMap::new();
        let mut by_ud: BTreeMap<&str, i64> = BTreeMap::new();
        for b in by_broker.keys() {
            if let Some((fd, ud)) = self.domain.get(b) {
                by_fd.insert(fd, 0);
                by_ud.insert(ud, 0);
            }
        }
        let domain = |b: &BrokerId| self.domain.get(b).copied().unwrap_or(("", ""));
        for part in &self.parts {
            if let Some(leader) = part.replicas.first() {
                *by_broker.entry(*leader).or_default() += 1;
                *by_fd.entry(domain(leader).0).or_default() += 1;
                *by_ud.entry(domain(leader).1).or_default() += 1;
            }
        }
        // Δ Σ x² of moving one unit from `from` to `to` (0 if the same key).
        fn delta<K: Ord>(map: &BTreeMap<K, i64>, from: K, to: K) -> i64 {
            if from == to {
                0
            } else {
                2 * (map.get(&to).copied().unwrap_or(0) - map.get(&from).copied().unwrap_or(0) + 1)
            }
        }
        for _ in 0..MAX_LEADER_PASSES {
            let mut changed = false;
            for part in self.parts.iter_mut().filter(|p| p.movable && p.replicas.len() > 1) {
                let current = part.replicas[0];
                let mut best: Option<(usize, (i64, i64, i64))> = None;
                for (i, r) in part.replicas.iter().enumerate().skip(1) {
                    let score = (
                        delta(&by_broker, current, *r),
                        delta(&by_fd, domain(&current).0, domain(r).0),
                        delta(&by_ud, domain(&current).1, domain(r).1),
                    );
                    if score < (0, 0, 0) && best.is_none_or(|(_, s)| score < s) {
                        best = Some((i, score));
                    }
                }
                if let Some((i, _)) = best {
                    let leader = part.replicas.remove(i);
                    part.replicas.insert(0, leader);
                    *by_broker.entry(current).or_default() -= 1;
                    *by_broker.entry(leader).or_default() += 1;
                    *by_fd.entry(domain(&current).0).or_default() -= 1;
                    *by_fd.entry(domain(&leader).0).or_default() += 1;
                    *by_ud.entry(domain(&current).1).or_default() -= 1;
                    *by_ud.entry(domain(&leader).1).or_default() += 1;
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// The goals' measures for the current assignment, in [`GOAL_NAMES`]
    /// order. Brokers measured: live ones and any holding replicas.
    fn measure(&self) -> [f64; 10] {
        let mut replicas: BTreeMap<BrokerId, u64> = self.count.keys().map(|b| (*b, 0)).collect();
        let mut bytes = replicas.clone();
        let mut leaders = replicas.clone();
        let mut violations = 0u64;
        for part in &self.parts {
            if !self.spans(&part.replicas) {
                violations += 1;
            }
            for r in &part.replicas {
                *replicas.entry(*r).or_default() += 1;
                *bytes.entry(*r).or_default() += part.size;
            }
            if let Some(leader) = part.replicas.first() {
                *leaders.entry(*leader).or_default() += 1;
            }
        }
        let by = |map: &BTreeMap<BrokerId, u64>, dim: fn((&'a str, &'a str)) -> &'a str| {
            let mut out: BTreeMap<&str, u64> = BTreeMap::new();
            for (b, v) in map {
                let key = self.domain.get(b).map_or("", |d| dim(*d));
                *out.entry(key).or_default() += v;
            }
            out
        };
        let fd = |d: (&'a str, &'a str)| d.0;
        let ud = |d: (&'a str, &'a str)| d.1;
        [
            violations as f64,
            skew(replicas.values()),
            skew(bytes.values()),
            skew(leaders.values()),
            skew(by(&leaders, fd).values()),
            skew(by(&leaders, ud).values()),
            skew(by(&replicas, fd).values()),
            skew(by(&replicas, ud).values()),
            skew(by(&bytes, fd).values()),
            skew(by(&bytes, ud).values()),
        ]
    }
}

/// max / mean, rounded to 4 decimals; 1.0 when there is nothing to balance.
fn skew<'v>(values: impl Iterator<Item = &'v u64>) -> f64 {
    let values: Vec<f64> = values.map(|v| *v as f64).collect();
    let sum: f64 = values.iter().sum();
    if values.is_empty() || sum == 0.0 {
        return 1.0;
    }
    let max = values.iter().copied().fold(0.0, f64::max);
    (max / (sum / values.len() as f64) * 10_000.0).round() / 10_000.0
}

fn clamp(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// Every k-subset of 0..n, in lexicographic order.
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    if k == 0 || k > n {
        return out;
    }
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        out.push(idx.clone());
        let Some(i) = (0..k).rev().find(|&i| idx[i] < n - k + i) else { return out };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::state::{BrokerRecord, MetadataCommand};

    fn register(s: &mut ClusterState, id: BrokerId, fd: usize, ud: usize) {
        s.apply(&MetadataCommand::RegisterBroker(BrokerRecord {
            id,
            address: format!("127.0.0.1:{}", 9000 + id),
            metrics_address: String::new(),
            fault_domain: format!("FD{fd}"),
            update_domain: format!("UD{ud}"),
            fenced: false,
        }))
        .unwrap();
    }

    /// Brokers 1..=n on the diagonal of a 3 × 3 grid (as `kmon up`).
    fn diagonal(s: &mut ClusterState, ids: std::ops::RangeInclusive<BrokerId>) {
        for id in ids {
            let i = id as usize - 1;
            register(s, id, i % 3, (i % 3 + i / 3) % 3);
        }
    }

    fn create(s: &mut ClusterState, name: &str, partitions: u32, rf: u32) {
        s.apply(&MetadataCommand::CreateTopic {
            name: name.into(),
            partitions,
            replication_factor: rf,
            configs: BTreeMap::new(),
        })
        .unwrap();
    }

    fn sizes(s: &ClusterState, size: impl Fn(&str, u32) -> u64) -> PartitionSizes {
        s.topics
            .iter()
            .flat_map(|(t, r)| (0..r.partitions.len() as u32).map(move |p| (t.clone(), p)))
            .map(|(t, p)| {
                let v = size(&t, p);
                ((t, p), v)
            })
            .collect()
    }

    fn goal(plan: &Plan, name: &str) -> (f64, f64) {
        let g = plan.goals.iter().find(|g| g.name == name).unwrap();
        (g.before, g.after)
    }

    /// The metadata with the plan's replica lists applied.
    fn applied(s: &ClusterState, plan: &Plan) -> ClusterState {
        let mut s = s.clone();
        for m in &plan.moves {
            s.topics.get_mut(&m.topic).unwrap().partitions[m.partition as usize].replicas = m.to_replicas.clone();
        }
        s
    }

    fn all_span(s: &ClusterState) -> bool {
        let domain: BTreeMap<BrokerId, (&str, &str)> =
            s.brokers.values().map(|b| (b.id, (b.fault_domain.as_str(), b.update_domain.as_str()))).collect();
        let fds = domain.values().map(|d| d.0).collect::<BTreeSet<_>>().len();
        let uds = domain.values().map(|d| d.1).collect::<BTreeSet<_>>().len();
        s.topics.values().flat_map(|t| &t.partitions).all(|p| spans_domains(&p.replicas, &domain, fds, uds))
    }

    #[test]
    fn a_balanced_cluster_gets_an_empty_plan() {
        let mut s = ClusterState::default();
        diagonal(&mut s, 1..=3);
        create(&mut s, "t", 6, 3);
        create(&mut s, "u", 3, 2);
        let plan = plan(&s, &sizes(&s, |_, p| 1000 + u64::from(p)), &BTreeSet::new());
        assert_eq!(plan.moves, vec![], "{plan:#?}");
        assert_eq!(plan.bytes_to_move, 0);
        assert_eq!(goal(&plan, "two_domain_violations"), (0.0, 0.0));
        assert_eq!(plan.goals.len(), GOAL_NAMES.len());
    }

    #[test]
    fn replicas_move_onto_new_brokers_keeping_both_domains() {
        let mut s = ClusterState::default();
        diagonal(&mut s, 1..=3);
        create(&mut s, "t", 12, 3);
        create(&mut s, "u", 6, 2);
        diagonal(&mut s, 4..=6);
        let input = sizes(&s, |t, p| if t == "t" { 100 * (u64::from(p) + 1) } else { 50 });
        let plan = plan(&s, &input, &BTreeSet::new());
        assert!(!plan.moves.is_empty());
        let after = applied(&s, &plan);
        assert!(all_span(&after), "{plan:#?}");
        for new in 4..=6 {
            assert!(plan.moves.iter().any(|m| m.to_replicas.contains(&new)), "nothing moved onto broker {new}");
        }
        let (before, after_skew) = goal(&plan, "replicas_per_broker_skew");
        assert_eq!(before, 2.0);
        assert!(after_skew <= 1.2, "replica skew after: {after_skew}");
        let (before, after_skew) = goal(&plan, "bytes_per_broker_skew");
        assert!(after_skew < before, "{before} -> {after_skew}");
        let (before, after_skew) = goal(&plan, "leaders_per_broker_skew");
        assert!(after_skew < before && after_skew <= 1.5, "{before} -> {after_skew}");
        assert_eq!(goal(&plan, "two_domain_violations"), (0.0, 0.0));
        assert_eq!(plan.bytes_to_move, plan.moves.iter().map(|m| m.bytes_to_move).sum::<u64>());
        // Every list keeps its replication factor.
        assert!(plan.moves.iter().all(|m| m.to_replicas.len() == m.from_replicas.len()));
    }

    #[test]
    fn small_partitions_move_first_and_only_selected_topics_move() {
        let mut s = ClusterState::default();
        diagonal(&mut s, 1..=3);
        create(&mut s, "big", 3, 1);
        create(&mut s, "small", 3, 1);
        // Two brokers in the racks of brokers 1 and 2: any single replica
        // may move there.
        register(&mut s, 4, 0, 0);
        register(&mut s, 5, 1, 1);
        let input = sizes(&s, |t, _| if t == "big" { 1 << 30 } else { 10 });
        let all = plan(&s, &input, &BTreeSet::new());
        assert!(!all.moves.is_empty());
        assert!(all.moves.iter().all(|m| m.topic == "small"), "{all:#?}");
        let only_big = plan(&s, &input, &BTreeSet::from(["big".to_string()]));
        assert!(only_big.moves.iter().all(|m| m.topic == "big"), "{only_big:#?}");
    }

    #[test]
    fn a_domain_violation_is_fixed_with_the_fewest_moves() {
        let mut s = ClusterState::default();
        diagonal(&mut s, 1..=4); // 4 is FD0/UD1
        create(&mut s, "t", 1, 3);
        // FD0, FD0, FD1: two fault domains where three are possible.
        s.topics.get_mut("t").unwrap().partitions[0].replicas = vec![1, 4, 2];
        let plan = plan(&s, &sizes(&s, |_, _| 7), &BTreeSet::new());
        assert_eq!(goal(&plan, "two_domain_violations"), (1.0, 0.0));
        assert_eq!(plan.moves.len(), 1);
        let m = &plan.moves[0];
        let mut set = m.to_replicas.clone();
        set.sort();
        assert_eq!(set, [1, 2, 3]);
        assert_eq!(m.bytes_to_move, 7, "one replica copied");
    }

    #[test]
    fn replica_lists_come_from_the_assignment_not_the_isr() {
        let mut s = ClusterState::default();
        diagonal(&mut s, 1..=3);
        create(&mut s, "t", 3, 3);
        let p = s.topics["t"].partitions[0].clone();
        s.apply(&MetadataCommand::AlterIsr {
            topic: "t".into(),
            partition: 0,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr: vec![p.leader],
        })
        .unwrap();
        let plan = plan(&s, &sizes(&s, |_, _| 1), &BTreeSet::new());
        assert_eq!(plan.moves, vec![], "an under-replicated partition keeps its replicas");
    }

    #[test]
    fn the_same_input_gives_the_same_plan() {
        let mut s = ClusterState::default();
        diagonal(&mut s, 1..=3);
        create(&mut s, "a", 7, 3);
        create(&mut s, "b", 5, 2);
        diagonal(&mut s, 4..=9);
        let input = sizes(&s, |t, p| (t.len() as u64 * 31 + u64::from(p) * 17) % 101);
        // The same sizes, inserted in another order.
        let mut reversed = PartitionSizes::new();
        for (k, v) in input.iter().rev() {
            reversed.insert(k.clone(), *v);
        }
        let first = plan(&s, &input, &BTreeSet::new());
        assert!(!first.moves.is_empty());
        assert_eq!(first, plan(&s, &input, &BTreeSet::new()));
        assert_eq!(first, plan(&s.clone(), &reversed, &BTreeSet::new()));
        assert!(all_span(&applied(&s, &first)));
    }

    #[test]
    fn combinations_are_lexicographic() {
        assert_eq!(combinations(4, 2), [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]);
        assert_eq!(combinations(2, 3), Vec::<Vec<usize>>::new());
    }
}
