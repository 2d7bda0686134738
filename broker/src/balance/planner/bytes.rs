//! Goal 2b, bytes per broker: moves, swaps and list swaps between the
//! heaviest and the lightest brokers, keeping replica counts where goal 2a
//! left them (see the planner's module docs).

use std::cmp::Reverse;
use std::collections::BTreeMap;

use super::{MAX_MOVES, Model, clamp};
use crate::controller::state::BrokerId;

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

impl<'a> Model<'a> {
    /// Goal 2b: bytes per broker, by moves that keep every live broker's
    /// replica count within the range goal 2a reached and by swaps, which
    /// change no count: until no two brokers differ by more than
    /// [`BYTES_TOLERANCE`] of the mean, or no step helps.
    pub(super) fn balance_bytes(&mut self) {
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
    pub(super) fn nearest(
        &self,
        broker: BrokerId,
        target: u64,
        mut accept: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
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
}
