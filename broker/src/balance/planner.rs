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

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::controller::state::{BrokerId, ClusterState};
use crate::placement::spans_domains;

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

/// A goal-2b step: new replica lists for one partition (a move, whose
/// first entry this is) or for two (a swap).
#[derive(Debug)]
struct Step {
    changes: Vec<(usize, Vec<BrokerId>)>,
    /// Net bytes leaving the heavy broker of the pair.
    transfer: i64,
    /// How much Σ bytes² over brokers drops.
    gain: i128,
    /// Bytes the step copies.
    cost: u64,
}

/// Goal 2b leaves brokers alone whose bytes differ by at most this share
/// of the mean: the last percent of balance is not worth copying data for.
const BYTES_TOLERANCE: f64 = 0.02;
/// How many of the light broker's smallest partitions goal 2b tries to
/// swap (a small partition makes a cheap swap).
const SWAP_CANDIDATES: usize = 8;
/// How many partners of each of those a list swap weighs.
const LIST_SWAP_PARTNERS: usize = 4;

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

impl<'a> Model<'a> {
    fn new(state: &'a ClusterState, sizes: &PartitionSizes, topics: &BTreeSet<String>) -> Self {
        let domain: BTreeMap<BrokerId, (&str, &str)> =
            state.brokers.values().map(|b| (b.id, (b.fault_domain.as_str(), b.update_domain.as_str()))).collect();
        fn index(names: BTreeSet<&str>) -> BTreeMap<&str, u32> {
            names.into_iter().zip(0..).collect()
        }
        let fd_ids = index(domain.values().map(|d| d.0).collect());
        let ud_ids = index(domain.values().map(|d| d.1).collect());
        let domain_ids = domain.iter().map(|(b, (fd, ud))| (*b, (fd_ids[fd], ud_ids[ud]))).collect();
        let live: Vec<BrokerId> = state.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect();
        let mut racks: BTreeMap<(&str, &str), Vec<BrokerId>> = BTreeMap::new();
        for id in &live {
            racks.entry(domain[id]).or_default().push(*id);
        }
        let fault_domains = live.iter().map(|b| domain[b].0).collect::<BTreeSet<_>>().len();
        let update_domains = live.iter().map(|b| domain[b].1).collect::<BTreeSet<_>>().len();
        let mut count: BTreeMap<BrokerId, i64> = live.iter().map(|b| (*b, 0)).collect();
        let mut bytes: BTreeMap<BrokerId, i64> = live.iter().map(|b| (*b, 0)).collect();
        let mut hosted: BTreeMap<BrokerId, BTreeSet<(u64, usize)>> = BTreeMap::new();
        let mut parts = Vec::new();
        for (topic, record) in &state.topics {
            let movable = topics.is_empty() || topics.contains(topic);
            for (index, p) in record.partitions.iter().enumerate() {
                let partition = index as u32;
                let size = sizes.get(&(topic.clone(), partition)).copied().unwrap_or(0);
                for r in &p.replicas {
                    *count.entry(*r).or_default() += 1;
                    *bytes.entry(*r).or_default() += clamp(size);
                    if movable {
                        hosted.entry(*r).or_default().insert((size, parts.len()));
                    }
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
        let rack_domains: Vec<(u32, u32)> = racks.keys().map(|(fd, ud)| (fd_ids[fd], ud_ids[ud])).collect();
        let rack_of =
            racks.values().enumerate().flat_map(|(r, members)| members.iter().map(move |b| (*b, r))).collect();
        let mut model = Model {
            domain,
            domain_ids,
            live,
            racks,
            fault_domains,
            update_domains,
            parts,
            count,
            bytes,
            hosted,
            rack_domains,
            rack_of,
            reach: BTreeMap::new(),
        };
        for p in 0..model.parts.len() {
            if model.parts[p].movable {
                let replicas = model.parts[p].replicas.clone();
                model.count_reach(&replicas, 1);
            }
        }
        model
    }

    /// Adds `sign` × the reach of a movable partition with `replicas` to
    /// each of its brokers' (see [`Model::reach`]).
    fn count_reach(&mut self, replicas: &[BrokerId], sign: i32) {
        let spans_now = self.spans(replicas);
        for (i, b) in replicas.iter().enumerate() {
            let others = replicas.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, o)| *o);
            let others: Vec<(u32, u32)> = others.filter_map(|o| self.domain_ids.get(&o).copied()).collect();
            let mut reach = self.reach.remove(b).unwrap_or_else(|| vec![0; self.rack_domains.len()]);
            for (r, rack) in self.rack_domains.iter().enumerate() {
                if !spans_now || self.spans_ids(others.iter().chain([rack]), replicas.len()) {
                    reach[r] = reach[r].saturating_add_signed(sign);
                }
            }
            self.reach.insert(*b, reach);
        }
    }

    /// Whether some movable partition on `src` could move that replica onto
    /// `dst`'s rack (`dst` live).
    fn reaches(&self, src: BrokerId, dst: BrokerId) -> bool {
        let rack = self.rack_of.get(&dst);
        rack.zip(self.reach.get(&src)).is_some_and(|(r, reach)| reach[*r] > 0)
    }

    fn spans(&self, replicas: &[BrokerId]) -> bool {
        let known: Vec<(u32, u32)> = replicas.iter().filter_map(|r| self.domain_ids.get(r).copied()).collect();
        let spans = self.spans_ids(known.iter(), replicas.len());
        debug_assert_eq!(spans, spans_domains(replicas, &self.domain, self.fault_domains, self.update_domains));
        spans
    }

    /// [`spans_domains`] over the (fault, update) domain ids of the known
    /// brokers of a list of `len` replicas, without allocating (it is the
    /// hot check).
    fn spans_ids<'d>(&self, domains: impl Iterator<Item = &'d (u32, u32)> + Clone, len: usize) -> bool {
        let distinct = |ids: &mut dyn Iterator<Item = u32>| {
            let (mut bits, mut more) = (0u64, Vec::new());
            for id in ids {
                match 1u64.checked_shl(id) {
                    Some(bit) => bits |= bit,
                    None if !more.contains(&id) => more.push(id),
                    None => {}
                }
            }
            bits.count_ones() as usize + more.len()
        };
        distinct(&mut domains.clone().map(|d| d.0)) >= self.fault_domains.min(len)
            && distinct(&mut domains.map(|d| d.1)) >= self.update_domains.min(len)
    }

    fn is_live(&self, broker: BrokerId) -> bool {
        self.live.binary_search(&broker).is_ok()
    }

    /// Partition `p`'s replica list with `from` replaced by `to`.
    fn replaced(&self, p: usize, from: BrokerId, to: BrokerId) -> Vec<BrokerId> {
        self.parts[p].replicas.iter().map(|&b| if b == from { to } else { b }).collect()
    }

    /// Whether replica `from` of partition `p` may move to `to`: a live
    /// broker not in the list yet, and the list still spans the domains if
    /// it did (one that cannot, by the cluster's shape, may move anyway).
    fn can_replace(&self, p: usize, from: BrokerId, to: BrokerId) -> bool {
        let replicas = &self.parts[p].replicas;
        !replicas.contains(&to)
            && self.is_live(to)
            && (!self.spans(replicas) || self.spans(&self.replaced(p, from, to)))
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
            let Some((p, best)) = self.next_replica_move() else { return };
            self.apply(p, &best);
        }
    }

    /// Goal 2a's next move. From the broker with the most replicas (then
    /// bytes) onto the one with the fewest (then bytes) that can take one:
    /// the single replica whose move leaves the two brokers' bytes closest
    /// (Σ bytes² lowest; the smaller partition on a tie). When no single
    /// replica can move (the domain rule), several replicas of one
    /// partition move together, the partition chosen the same way.
    fn next_replica_move(&self) -> Option<(usize, Replacement)> {
        let fewest = self.live.iter().map(|b| self.count[b]).min()?;
        // Only a broker with 2 more replicas than another can lower Σ replicas².
        let mut sources: Vec<BrokerId> = self.count.keys().copied().filter(|b| self.count[b] >= fewest + 2).collect();
        sources.sort_by_key(|b| (Reverse(self.count[b]), Reverse(self.bytes[b]), *b));
        let mut targets = self.live.clone();
        targets.sort_by_key(|b| (self.count[b], self.bytes[b], *b));
        let brokers = self.count.len() as f64;
        let mean_count = self.count.values().sum::<i64>() as f64 / brokers;
        let mean_bytes = self.bytes.values().sum::<i64>() as f64 / brokers;
        // The size that suits both ends: what `dst` lacks per replica it
        // lacks, and what `src` has too much per replica too many. Aiming
        // there leaves bytes near balance once counts are, so goal 2b has
        // little left to copy.
        let suited_size = |src: BrokerId, dst: BrokerId| {
            let per_replica = |bytes: f64, replicas: f64| (bytes / replicas.max(1.0)).max(0.0);
            let lacks = per_replica(mean_bytes - self.bytes[&dst] as f64, mean_count - self.count[&dst] as f64);
            let spare = per_replica(self.bytes[&src] as f64 - mean_bytes, self.count[&src] as f64 - mean_count);
            ((lacks + spare) / 2.0) as u64
        };
        for &src in &sources {
            for &dst in targets.iter().take_while(|d| self.count[*d] + 2 <= self.count[&src]) {
                if !self.reaches(src, dst) {
                    continue;
                }
                if let Some(p) = self.nearest(src, suited_size(src, dst), |p| self.can_replace(p, src, dst)) {
                    let position = self.parts[p].replicas.iter().position(|&b| b == src).expect("hosted replica");
                    return Some((p, Replacement { positions: vec![position], adds: vec![dst], score: (0, 0) }));
                }
            }
        }
        let max_rf = self.parts.iter().filter(|p| p.movable).map(|p| p.replicas.len()).max().unwrap_or(0);
        for k in 2..=max_rf {
            for &src in &sources {
                let mut best = None;
                let found = self.nearest(src, suited_size(src, targets[0]), |p| {
                    best = (self.parts[p].replicas.len() >= k)
                        .then(|| self.best_replacement(p, k, Some(src), Criterion::Replicas))
                        .flatten();
                    best.is_some()
                });
                if let (Some(p), Some(best)) = (found, best) {
                    return Some((p, best));
                }
            }
        }
        None
    }

    /// Goal 2b: bytes per broker, by moves that keep every live broker's
    /// replica count within the range goal 2a reached and by swaps, which
    /// change no count: until no two brokers differ by more than
    /// [`BYTES_TOLERANCE`] of the mean, or no step helps.
    fn balance_bytes(&mut self) {
        let counts = self.live.iter().map(|b| self.count[b]);
        let (Some(lower), Some(upper)) = (counts.clone().min(), counts.max()) else { return };
        let mean = self.bytes.values().sum::<i64>() as f64 / self.bytes.len().max(1) as f64;
        let tolerance = (mean * BYTES_TOLERANCE) as i64;
        for _ in 0..MAX_MOVES {
            let Some(step) = self.next_bytes_step(lower, upper, tolerance) else { return };
            for (p, replicas) in step.changes {
                self.set_replicas(p, replicas);
            }
        }
    }

    /// Goal 2b's next step: for the heaviest broker and the lightest (then
    /// the next pairs, by bytes, while they differ by more than
    /// `tolerance`), the best step between the two.
    fn next_bytes_step(&self, lower: i64, upper: i64, tolerance: i64) -> Option<Step> {
        let mut heavy: Vec<BrokerId> = self.count.keys().copied().collect();
        heavy.sort_by_key(|b| (Reverse(self.bytes[b]), *b));
        let mut light = self.live.clone();
        light.sort_by_key(|b| (self.bytes[b], *b));
        for &src in &heavy {
            for &dst in &light {
                if self.bytes[&src] - self.bytes[&dst] <= tolerance {
                    break;
                }
                if let Some(step) = self.best_bytes_step(src, dst, lower, upper, tolerance) {
                    return Some(step);
                }
            }
        }
        None
    }

    /// The steps that shift bytes from `src` to the lighter `dst`, each
    /// aiming at half their difference:
    /// - a move of one replica, when both counts stay within
    ///   `lower..=upper` (a broker that is not live may always lose one);
    /// - a swap: one of `dst`'s smallest partitions goes to `src` for a
    ///   bigger one of `src`'s;
    /// - a list swap, where the domain rule allows no replica swap (RF 3
    ///   over 3 × 3 domains pins a partition to a few broker triples): two
    ///   partitions of the same RF, one on `src` and one on `dst`, exchange
    ///   their whole replica lists, so every count stays and both keep
    ///   spanning the domains.
    ///
    /// A step must narrow the pair's difference by at least half the
    /// tolerance and lower Σ bytes²; of those reaching half the best
    /// possible gain, the one copying the fewest bytes wins, else the one
    /// with the most gain.
    fn best_bytes_step(&self, src: BrokerId, dst: BrokerId, lower: i64, upper: i64, tolerance: i64) -> Option<Step> {
        let gap = self.bytes[&src] - self.bytes[&dst];
        let half = u64::try_from(gap / 2).unwrap_or(0);
        let mut steps = Vec::new();
        let src_may_lose = !self.is_live(src) || self.count[&src] > lower;
        if src_may_lose
            && self.count[&dst] < upper
            && self.reaches(src, dst)
            && let Some(p) = self.nearest(src, half, |p| self.can_replace(p, src, dst))
        {
            steps.push(self.step(src, vec![(p, self.replaced(p, src, dst))]));
        }
        let smallest = self.hosted.get(&dst).into_iter().flatten().map(|&(_, q)| q);
        for q in smallest.filter(|&q| !self.parts[q].replicas.contains(&src)).take(SWAP_CANDIDATES) {
            let (small, small_list) = (self.parts[q].size, &self.parts[q].replicas);
            let wanted = small.saturating_add(half);
            if self.reaches(src, dst) && self.reaches(dst, src) && self.can_replace(q, dst, src) {
                let bigger = self.nearest(src, wanted, |p| self.parts[p].size > small && self.can_replace(p, src, dst));
                if let Some(p) = bigger {
                    steps.push(self.step(src, vec![(p, self.replaced(p, src, dst)), (q, self.replaced(q, dst, src))]));
                }
            }
            let exchangeable = |p: usize| {
                let list = &self.parts[p].replicas;
                self.parts[p].size > small
                    && list.len() == small_list.len()
                    && !list.contains(&dst)
                    && self.spans(list) == self.spans(small_list)
                    && small_list.iter().chain(list).all(|&b| self.is_live(b))
            };
            // A list swap also shifts bytes between the other brokers of
            // both lists, so a few partners are weighed, not just the
            // nearest.
            let mut partners = Vec::new();
            self.nearest(src, wanted, |p| {
                if exchangeable(p) {
                    partners.push(p);
                }
                partners.len() == LIST_SWAP_PARTNERS
            });
            for p in partners {
                steps.push(self.step(src, vec![(p, small_list.clone()), (q, self.parts[p].replicas.clone())]));
            }
        }
        let min_narrowing = (tolerance / 2).max(1);
        steps.retain(|s| s.gain > 0 && s.transfer.min(gap - s.transfer) >= min_narrowing);
        let best_possible = i128::from(gap) * i128::from(gap) / 2;
        let good_enough = (0..steps.len())
            .filter(|&i| 2 * steps[i].gain >= best_possible)
            .min_by_key(|&i| (steps[i].cost, Reverse(steps[i].gain)));
        let chosen =
            good_enough.or_else(|| (0..steps.len()).max_by_key(|&i| (steps[i].gain, Reverse(steps[i].cost))))?;
        Some(steps.swap_remove(chosen))
    }

    /// A step's effect: `changes` are (partition, new replica list); the
    /// transfer is counted out of `src`.
    fn step(&self, src: BrokerId, changes: Vec<(usize, Vec<BrokerId>)>) -> Step {
        let mut delta: BTreeMap<BrokerId, i64> = BTreeMap::new();
        let mut cost = 0u64;
        for (p, new) in &changes {
            let part = &self.parts[*p];
            let size = clamp(part.size);
            for b in part.replicas.iter().filter(|b| !new.contains(b)) {
                *delta.entry(*b).or_default() -= size;
            }
            for b in new.iter().filter(|b| !part.replicas.contains(b)) {
                *delta.entry(*b).or_default() += size;
                cost = cost.saturating_add(part.size);
            }
        }
        let gain = delta
            .iter()
            .map(|(b, d)| {
                let (x, d) = (i128::from(self.bytes.get(b).copied().unwrap_or(0)), i128::from(*d));
                -(2 * x * d + d * d)
            })
            .sum();
        let transfer = -delta.get(&src).copied().unwrap_or(0);
        Step { changes, transfer, gain, cost }
    }

    /// The movable partition on `broker` whose size is nearest `target`
    /// (the smaller on a tie) among those `accept` takes.
    fn nearest(&self, broker: BrokerId, target: u64, mut accept: impl FnMut(usize) -> bool) -> Option<usize> {
        let on_broker = self.hosted.get(&broker)?;
        let mut above = on_broker.range((target, 0)..);
        let mut below = on_broker.range(..(target, 0)).rev();
        let (mut up, mut down) = (above.next(), below.next());
        loop {
            let p = match (up, down) {
                (None, None) => return None,
                (Some(&(a, p)), Some(&(b, _))) if a - target < target - b => {
                    up = above.next();
                    p
                }
                (Some(&(_, p)), None) => {
                    up = above.next();
                    p
                }
                (_, Some(&(_, p))) => {
                    down = below.next();
                    p
                }
            };
            if accept(p) {
                return Some(p);
            }
        }
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
        });
        let mut best: Option<Replacement> = None;
        for positions in combinations(part.replicas.len(), k) {
            let drops: Vec<BrokerId> = positions.iter().map(|&i| part.replicas[i]).collect();
            if src.is_some_and(|s| !drops.contains(&s)) {
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
                let score = self.score(part.size, &drops, &adds);
                if matches!(criterion, Criterion::Replicas) && score.0 >= 0 {
                    continue;
                }
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
        let mut replicas = self.parts[p].replicas.clone();
        for (&i, &add) in change.positions.iter().zip(&change.adds) {
            replicas[i] = add;
        }
        self.set_replicas(p, replicas);
    }

    /// Gives movable partition `p` a new replica list, keeping the counts,
    /// bytes and `hosted` index up to date.
    fn set_replicas(&mut self, p: usize, replicas: Vec<BrokerId>) {
        debug_assert!(self.parts[p].movable);
        let old_list = self.parts[p].replicas.clone();
        self.count_reach(&old_list, -1);
        self.count_reach(&replicas, 1);
        let part = &mut self.parts[p];
        let (size, old) = (part.size, std::mem::replace(&mut part.replicas, replicas));
        let new = &self.parts[p].replicas;
        for b in old.iter().filter(|b| !new.contains(b)) {
            *self.count.get_mut(b).expect("counted broker") -= 1;
            *self.bytes.get_mut(b).expect("counted broker") -= clamp(size);
            self.hosted.get_mut(b).expect("hosting broker").remove(&(size, p));
        }
        for b in new.iter().filter(|b| !old.contains(b)) {
            *self.count.entry(*b).or_default() += 1;
            *self.bytes.entry(*b).or_default() += clamp(size);
            self.hosted.entry(*b).or_default().insert((size, p));
        }
    }

    /// Goal 3: preferred leaders per broker, then per fault domain, then
    /// per update domain, by reordering replicas: single reorders while
    /// one helps, then chains of them, then single reorders again.
    fn balance_leaders(&mut self) {
        let mut leaders = LeaderCounts::new(self);
        self.reorder_leaders(&mut leaders);
        if self.chain_leaders(&mut leaders) {
            self.reorder_leaders(&mut leaders);
        }
    }

    /// Passes over the partitions, making the replica that lowers
    /// (Σ leaders² per broker, per FD, per UD) most the first one.
    fn reorder_leaders(&mut self, leaders: &mut LeaderCounts<'a>) {
        for _ in 0..MAX_LEADER_PASSES {
            let mut changed = false;
            for p in 0..self.parts.len() {
                let part = &self.parts[p];
                if !part.movable || part.replicas.len() < 2 {
                    continue;
                }
                let current = part.replicas[0];
                let mut best: Option<(usize, (i64, i64, i64))> = None;
                for (i, r) in part.replicas.iter().enumerate().skip(1) {
                    let score = leaders.delta(current, *r);
                    if score < (0, 0, 0) && best.is_none_or(|(_, s)| score < s) {
                        best = Some((i, score));
                    }
                }
                if let Some((i, _)) = best {
                    self.make_leader(p, i, leaders);
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// Where no single reorder helps (each broker a reorder reaches has as
    /// many leaders as it would give), a chain: the broker with the most
    /// leaders hands one to a replica of a partition it leads, which hands
    /// one on, and so on to a broker with at least 2 fewer than the first
    /// (every broker between gives one and gets one). The chain goes to
    /// the reachable broker with the fewest leaders, the shortest way.
    /// Whether any chain was applied.
    fn chain_leaders(&mut self, leaders: &mut LeaderCounts<'a>) -> bool {
        let mut any = false;
        for _ in 0..MAX_MOVES {
            // Who can hand leadership to whom, through which partition.
            let mut links: BTreeMap<BrokerId, BTreeMap<BrokerId, usize>> = BTreeMap::new();
            for (p, part) in self.parts.iter().enumerate().filter(|(_, p)| p.movable && p.replicas.len() > 1) {
                for r in &part.replicas[1..] {
                    links.entry(part.replicas[0]).or_default().entry(*r).or_insert(p);
                }
            }
            let mut sources: Vec<BrokerId> = leaders.by_broker.keys().copied().collect();
            sources.sort_by_key(|b| (Reverse(leaders.by_broker[b]), *b));
            let chain = sources.iter().find_map(|&src| {
                let mut reached: BTreeMap<BrokerId, (usize, Option<(BrokerId, usize)>)> =
                    BTreeMap::from([(src, (0, None))]);
                let mut queue = std::collections::VecDeque::from([src]);
                while let Some(x) = queue.pop_front() {
                    let distance = reached[&x].0;
                    for (&y, &p) in links.get(&x).into_iter().flatten() {
                        if let std::collections::btree_map::Entry::Vacant(entry) = reached.entry(y) {
                            entry.insert((distance + 1, Some((x, p))));
                            queue.push_back(y);
                        }
                    }
                }
                let limit = leaders.by_broker[&src] - 2;
                let (&end, _) = reached
                    .iter()
                    .filter(|(b, _)| leaders.by_broker.get(b).copied().unwrap_or(0) <= limit)
                    .min_by_key(|(b, (distance, _))| {
                        (leaders.by_broker.get(b).copied().unwrap_or(0), *distance, **b)
                    })?;
                let mut chain = Vec::new();
                let mut at = end;
                while let Some((from, p)) = reached[&at].1 {
                    chain.push((p, at));
                    at = from;
                }
                Some(chain)
            });
            let Some(chain) = chain else { return any };
            for (p, to) in chain {
                let i = self.parts[p].replicas.iter().position(|&b| b == to).expect("a replica");
                self.make_leader(p, i, leaders);
            }
            any = true;
        }
        any
    }

    /// Moves replica `i` of partition `p` to the front: the preferred leader.
    fn make_leader(&mut self, p: usize, i: usize, leaders: &mut LeaderCounts<'a>) {
        let replicas = &mut self.parts[p].replicas;
        let (old, new) = (replicas[0], replicas.remove(i));
        replicas.insert(0, new);
        leaders.shift(old, new);
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

/// Preferred leaders per broker, fault domain and update domain, for goal 3.
#[derive(Debug)]
struct LeaderCounts<'a> {
    domain: BTreeMap<BrokerId, (&'a str, &'a str)>,
    by_broker: BTreeMap<BrokerId, i64>,
    by_fd: BTreeMap<&'a str, i64>,
    by_ud: BTreeMap<&'a str, i64>,
}

impl<'a> LeaderCounts<'a> {
    fn new(model: &Model<'a>) -> Self {
        let mut counts = LeaderCounts {
            domain: model.domain.clone(),
            by_broker: model.count.keys().map(|b| (*b, 0)).collect(),
            by_fd: BTreeMap::new(),
            by_ud: BTreeMap::new(),
        };
        for b in model.count.keys() {
            if let Some((fd, ud)) = model.domain.get(b) {
                counts.by_fd.insert(fd, 0);
                counts.by_ud.insert(ud, 0);
            }
        }
        for leader in model.parts.iter().filter_map(|p| p.replicas.first()) {
            let (fd, ud) = counts.domain_of(*leader);
            *counts.by_broker.entry(*leader).or_default() += 1;
            *counts.by_fd.entry(fd).or_default() += 1;
            *counts.by_ud.entry(ud).or_default() += 1;
        }
        counts
    }

    fn domain_of(&self, broker: BrokerId) -> (&'a str, &'a str) {
        self.domain.get(&broker).copied().unwrap_or(("", ""))
    }

    /// (Δ Σ leaders² per broker, per FD, per UD) if `from` hands one
    /// leadership to `to`.
    fn delta(&self, from: BrokerId, to: BrokerId) -> (i64, i64, i64) {
        // Δ Σ x² of moving one unit from `from` to `to` (0 if the same key).
        fn delta<K: Ord>(map: &BTreeMap<K, i64>, from: K, to: K) -> i64 {
            if from == to {
                0
            } else {
                2 * (map.get(&to).copied().unwrap_or(0) - map.get(&from).copied().unwrap_or(0) + 1)
            }
        }
        let (f, t) = (self.domain_of(from), self.domain_of(to));
        (delta(&self.by_broker, from, to), delta(&self.by_fd, f.0, t.0), delta(&self.by_ud, f.1, t.1))
    }

    fn shift(&mut self, from: BrokerId, to: BrokerId) {
        let (f, t) = (self.domain_of(from), self.domain_of(to));
        *self.by_broker.entry(from).or_default() -= 1;
        *self.by_broker.entry(to).or_default() += 1;
        *self.by_fd.entry(f.0).or_default() -= 1;
        *self.by_fd.entry(t.0).or_default() += 1;
        *self.by_ud.entry(f.1).or_default() -= 1;
        *self.by_ud.entry(t.1).or_default() += 1;
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
        s.apply(&MetadataCommand::RegisterBroker(BrokerRecord::local(id, fd, ud))).unwrap();
    }

    /// Brokers 1..=n on the diagonal of a 3 × 3 grid (as `kmon up`).
    fn diagonal(s: &mut ClusterState, ids: std::ops::RangeInclusive<BrokerId>) {
        for id in ids {
            let (fd, ud) = crate::placement::diagonal_cell(id as usize - 1, 3, 3);
            register(s, id, fd, ud);
        }
    }

    fn create(s: &mut ClusterState, name: &str, partitions: u32, rf: u32) {
        s.apply(&MetadataCommand::CreateTopic {
            name: name.into(),
            partitions,
            replication_factor: rf,
            configs: BTreeMap::new(),
            topic_id: 1,
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

    /// The e2e shape: 3 brokers on the diagonal (FD0/UD0, FD1/UD1,
    /// FD2/UD2) with skewed topics grow to 6 (FD0/UD1, FD1/UD2, FD2/UD0).
    /// An RF-3 partition then fits only {1, 2, 3} or {4, 5, 6}, so it moves
    /// whole; RF-2 partitions can move a replica at a time.
    #[test]
    fn growing_three_brokers_to_six_in_three_by_three_domains() {
        let mut s = ClusterState::default();
        for (id, fd, ud) in [(1, 0, 0), (2, 1, 1), (3, 2, 2)] {
            register(&mut s, id, fd, ud);
        }
        create(&mut s, "clicks", 12, 3);
        create(&mut s, "orders", 6, 3);
        create(&mut s, "logs", 8, 2);
        create(&mut s, "audit", 3, 2);
        for (id, fd, ud) in [(4, 0, 1), (5, 1, 2), (6, 2, 0)] {
            register(&mut s, id, fd, ud);
        }
        // Skewed: big and uneven partitions, a hot key in "clicks".
        let input = sizes(&s, |t, p| match t {
            "clicks" => (1 << 30) / (1 + u64::from(p % 4)),
            "orders" => 300 << 20,
            "logs" => (50 << 20) * (1 + u64::from(p)),
            _ => 1 << 20,
        });
        let plan = plan(&s, &input, &BTreeSet::new());
        let after = applied(&s, &plan);
        assert!(all_span(&after), "{plan:#?}");
        assert_eq!(goal(&plan, "two_domain_violations").1, 0.0);
        let (before, replicas) = goal(&plan, "replicas_per_broker_skew");
        assert!(before >= 2.0, "three brokers hold everything: {before}");
        assert!(replicas < 1.2, "replica skew {before} -> {replicas}");
        let (before, bytes) = goal(&plan, "bytes_per_broker_skew");
        assert!(bytes < before && bytes < 1.2, "bytes skew {before} -> {bytes}");
        // Leadership cannot pass between {1, 2, 3} and {4, 5, 6} when no
        // partition has replicas on both, so each side balances its own:
        // here 13 and 16 leaders, 5 and 6 at most (6 / (29 / 6) = 1.24).
        let (before, leaders) = goal(&plan, "leaders_per_broker_skew");
        assert!(leaders < before && leaders <= 1.25, "leader skew {before} -> {leaders}");
        for name in ["leaders_per_fault_domain_skew", "leaders_per_update_domain_skew"] {
            let (before, after) = goal(&plan, name);
            assert!(after <= before.max(1.2), "{name}: {before} -> {after}");
        }
        for new in 4..=6 {
            assert!(plan.moves.iter().any(|m| m.to_replicas.contains(&new)), "nothing moved onto broker {new}");
        }
        assert!(plan.moves.iter().all(|m| m.to_replicas.len() == m.from_replicas.len()));
        assert_eq!(plan, super::plan(&s, &input, &BTreeSet::new()), "deterministic");
    }

    #[test]
    fn a_swap_balances_bytes_when_no_replica_count_may_change() {
        let mut s = ClusterState::default();
        register(&mut s, 1, 0, 0);
        register(&mut s, 2, 0, 0);
        create(&mut s, "big", 2, 1);
        create(&mut s, "small", 2, 1);
        // Two replicas each: only an exchange keeps the counts.
        for (topic, broker) in [("big", 1), ("small", 2)] {
            for p in &mut s.topics.get_mut(topic).unwrap().partitions {
                p.replicas = vec![broker];
            }
        }
        let input = sizes(&s, |t, _| if t == "big" { 100 } else { 1 });
        let plan = plan(&s, &input, &BTreeSet::new());
        assert_eq!(goal(&plan, "replicas_per_broker_skew"), (1.0, 1.0));
        assert_eq!(goal(&plan, "bytes_per_broker_skew"), (1.9802, 1.0), "{plan:#?}");
        assert_eq!(plan.moves.len(), 2, "one big partition for one small: {plan:#?}");
        assert_eq!(plan.bytes_to_move, 101);
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
