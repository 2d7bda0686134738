//! Goal 2a, replicas per broker: from the broker with the most replicas
//! onto the one with the fewest that can take one, keeping the domain
//! rule (see the planner's module docs).

use std::cmp::Reverse;

use super::{Criterion, MAX_MOVES, Model, Replacement};
use crate::controller::state::BrokerId;

impl<'a> Model<'a> {
    /// Goal 2a: replica counts per broker (bytes break ties).
    pub(super) fn balance_replicas(&mut self) {
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
}
