//! Goal 1, two domains (hard): each partition's replicas span min(#FD, RF)
//! fault domains and min(#UD, RF) update domains; a violating partition
//! gets the fewest replacements that fix it.

use super::{Criterion, Model};

impl<'a> Model<'a> {
    /// Goal 1: the fewest replacements that make each violating partition
    /// span the domains.
    pub(super) fn fix_domains(&mut self) {
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
}
