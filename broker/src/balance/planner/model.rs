//! The planner's model of the cluster: partitions with their replica
//! lists, replicas and bytes per broker, the domain rule, replacing
//! replicas and the goals' measures. The goals' phases change it only
//! through [`Model::apply`].

use std::collections::{BTreeMap, BTreeSet};

use super::{Criterion, Model, Part, PartitionSizes, Replacement, clamp};
use crate::controller::state::{BrokerId, ClusterState};
use crate::placement::spans_domains;

impl<'a> Model<'a> {
    pub(super) fn new(state: &'a ClusterState, sizes: &PartitionSizes, topics: &BTreeSet<String>) -> Self {
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
    pub(super) fn reaches(&self, src: BrokerId, dst: BrokerId) -> bool {
        let rack = self.rack_of.get(&dst);
        rack.zip(self.reach.get(&src)).is_some_and(|(r, reach)| reach[*r] > 0)
    }

    pub(super) fn spans(&self, replicas: &[BrokerId]) -> bool {
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

    pub(super) fn is_live(&self, broker: BrokerId) -> bool {
        self.live.binary_search(&broker).is_ok()
    }

    /// Partition `p`'s replica list with `from` replaced by `to`.
    pub(super) fn replaced(&self, p: usize, from: BrokerId, to: BrokerId) -> Vec<BrokerId> {
        self.parts[p].replicas.iter().map(|&b| if b == from { to } else { b }).collect()
    }

    /// Whether replica `from` of partition `p` may move to `to`: a live
    /// broker not in the list yet, and the list still spans the domains if
    /// it did (one that cannot, by the cluster's shape, may move anyway).
    pub(super) fn can_replace(&self, p: usize, from: BrokerId, to: BrokerId) -> bool {
        let replicas = &self.parts[p].replicas;
        !replicas.contains(&to)
            && self.is_live(to)
            && (!self.spans(replicas) || self.spans(&self.replaced(p, from, to)))
    }

    /// The best way to replace `k` replicas of partition `p` (one of them
    /// `src`, when given) under `criterion`.
    pub(super) fn best_replacement(
        &self,
        p: usize,
        k: usize,
        src: Option<BrokerId>,
        criterion: Criterion,
    ) -> Option<Replacement> {
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

    pub(super) fn apply(&mut self, p: usize, change: &Replacement) {
        let mut replicas = self.parts[p].replicas.clone();
        for (&i, &add) in change.positions.iter().zip(&change.adds) {
            replicas[i] = add;
        }
        self.set_replicas(p, replicas);
    }

    /// Gives movable partition `p` a new replica list, keeping the counts,
    /// bytes and `hosted` index up to date.
    pub(super) fn set_replicas(&mut self, p: usize, replicas: Vec<BrokerId>) {
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

    /// The goals' measures for the current assignment, in [`GOAL_NAMES`]
    /// order. Brokers measured: live ones and any holding replicas.
    pub(super) fn measure(&self) -> [f64; 10] {
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
pub(super) fn skew<'v>(values: impl Iterator<Item = &'v u64>) -> f64 {
    let values: Vec<f64> = values.map(|v| *v as f64).collect();
    let sum: f64 = values.iter().sum();
    if values.is_empty() || sum == 0.0 {
        return 1.0;
    }
    let max = values.iter().copied().fold(0.0, f64::max);
    (max / (sum / values.len() as f64) * 10_000.0).round() / 10_000.0
}

/// Every k-subset of 0..n, in lexicographic order.
pub(super) fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
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
