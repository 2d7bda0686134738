//! Goal 3, leaders: reorders replica lists (no data moves) so preferred
//! leaders spread per broker, then per fault domain, then per update
//! domain; chains of reorders where no single one helps.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use super::{MAX_MOVES, Model};
use crate::controller::state::BrokerId;

/// Bound on passes over the partitions when balancing leaders.
const MAX_LEADER_PASSES: usize = 100;

impl<'a> Model<'a> {
    /// Goal 3: preferred leaders per broker, then per fault domain, then
    /// per update domain, by reordering replicas: single reorders while
    /// one helps, then chains of them, then single reorders again.
    pub(super) fn balance_leaders(&mut self) {
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
