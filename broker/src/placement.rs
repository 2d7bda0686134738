//! Placement over the fault domain × update domain grid, in one place for
//! the controller (replicas of new partitions), the rebalance planner,
//! `kmon up` / `kmon cluster add-broker` (which cell a new broker goes to)
//! and the test harness.
//!
//! The grid is walked along its diagonals ([`diagonal_walk`]): for shift in
//! 0..U, for fd in 0..F: `(fd, (fd + shift) % U)`. With 3 × 3: FD0/UD0,
//! FD1/UD1, FD2/UD2, FD0/UD1, ... so any F consecutive cells span every
//! fault domain and, when F == U, every update domain too.
//!
//! Replicas of a new partition ([`place`]): the racks (fault domain, update
//! domain) of live brokers are ordered by that walk, so neighbours differ in
//! both; each partition takes a window of RF racks whose domains are all
//! distinct (a small search: on a partly filled grid consecutive racks may
//! share a domain), starting one rack further per partition so leaders
//! spread evenly; within a rack the broker with the fewest replicas is used.
//! When the cluster's shape forbids it, a constraint is relaxed and the
//! returned note says which.

use std::collections::{BTreeMap, BTreeSet};

use crate::controller::state::{BrokerId, BrokerRecord, ClusterState, MetadataError};

/// The `index`-th cell `(fault domain, update domain)` of the diagonal walk
/// of a `fault_domains × update_domains` grid; the walk starts again after
/// F × U cells.
pub fn diagonal_cell(index: usize, fault_domains: usize, update_domains: usize) -> (usize, usize) {
    let (f, u) = (fault_domains.max(1), update_domains.max(1));
    let fd = index % f;
    (fd, (fd + index / f) % u)
}

/// The first `count` cells of the diagonal walk (see [`diagonal_cell`]).
pub fn diagonal_walk(
    count: usize,
    fault_domains: usize,
    update_domains: usize,
) -> impl Iterator<Item = (usize, usize)> {
    (0..count).map(move |i| diagonal_cell(i, fault_domains, update_domains))
}

/// Replica lists for `partitions` new partitions of replication factor
/// `rf` on the live brokers of `state` (see the module docs), and, when the
/// cluster's shape forced it, which constraint was relaxed.
pub fn place(
    state: &ClusterState,
    partitions: u32,
    rf: u32,
) -> Result<(Vec<Vec<BrokerId>>, Option<String>), MetadataError> {
    let live: Vec<&BrokerRecord> = state.brokers.values().filter(|b| !b.fenced).collect();
    if rf == 0 || rf as usize > live.len() {
        return Err(MetadataError::InvalidReplicationFactor { requested: rf, available: live.len() as u32 });
    }
    let racks = racks(&live);
    let mut load: BTreeMap<BrokerId, usize> = live.iter().map(|b| (b.id, 0)).collect();
    for topic in state.topics.values() {
        for p in &topic.partitions {
            for r in &p.replicas {
                if let Some(l) = load.get_mut(r) {
                    *l += 1;
                }
            }
        }
    }
    let existing: usize = state.topics.values().map(|t| t.partitions.len()).sum();
    let mut assignment = Vec::with_capacity(partitions as usize);
    let cell_of: BTreeMap<BrokerId, (&str, &str)> =
        live.iter().map(|b| (b.id, (b.fault_domain.as_str(), b.update_domain.as_str()))).collect();
    let cells: Vec<(&str, &str)> = racks.iter().map(|r| cell_of[&r[0]]).collect();
    for p in 0..partitions as usize {
        let start = (existing + p) % racks.len();
        let mut replicas: Vec<BrokerId> = Vec::with_capacity(rf as usize);
        // First choice: racks in walk order from `start` whose fault and
        // update domains are all distinct (a small search: on a partly
        // filled grid consecutive racks may share a domain).
        if let Some(chosen) = distinct_racks(&cells, start, rf as usize) {
            for index in chosen {
                let b = *racks[index].iter().min_by_key(|b| (load[b], **b)).expect("racks are not empty");
                replicas.push(b);
                *load.get_mut(&b).expect("live broker") += 1;
            }
        }
        // Otherwise walk the racks from `start`, three times with looser rules:
        // a new fault domain and a new update domain; then a new one of
        // either; then any broker not used yet. On a partly filled grid
        // consecutive racks may share a domain, so racks are skipped
        // rather than taken in a fixed window.
        for rule in [Spread::Both, Spread::Either, Spread::Any] {
            for step in 0..racks.len() {
                if replicas.len() == rf as usize {
                    break;
                }
                let rack = &racks[(start + step) % racks.len()];
                let (fd, ud) = cell_of[&rack[0]];
                let new_fd = replicas.iter().all(|r| cell_of[r].0 != fd);
                let new_ud = replicas.iter().all(|r| cell_of[r].1 != ud);
                let allowed = match rule {
                    Spread::Both => new_fd && new_ud,
                    Spread::Either => new_fd || new_ud,
                    Spread::Any => true,
                };
                if !allowed {
                    continue;
                }
                let pick = rack.iter().filter(|b| !replicas.contains(b)).min_by_key(|b| (load[b], **b)).copied();
                if let Some(b) = pick {
                    replicas.push(b);
                    *load.get_mut(&b).expect("live broker") += 1;
                }
            }
        }
        assignment.push(replicas);
    }
    let fds: BTreeSet<&str> = live.iter().map(|b| b.fault_domain.as_str()).collect();
    let uds: BTreeSet<&str> = live.iter().map(|b| b.update_domain.as_str()).collect();
    let mut notes = Vec::new();
    if fds.len() < rf as usize {
        notes.push(format!("fault-domain spread relaxed: {} fault domain(s) for replication factor {rf}", fds.len()));
    }
    if uds.len() < rf as usize {
        notes.push(format!("update-domain spread relaxed: {} update domain(s) for replication factor {rf}", uds.len()));
    }
    let violating = assignment.iter().filter(|r| !spans_domains(r, &cell_of, fds.len(), uds.len())).count();
    if violating > 0 {
        notes.push(format!(
            "{violating} partition(s) could not span min(#FD, RF) fault domains and min(#UD, RF) update domains with these brokers"
        ));
    }
    Ok((assignment, (!notes.is_empty()).then(|| notes.join("; "))))
}

/// Whether replicas span min(#FD, RF) fault domains and min(#UD, RF)
/// update domains.
pub fn spans_domains(
    replicas: &[BrokerId],
    domain_of: &BTreeMap<BrokerId, (&str, &str)>,
    fault_domains: usize,
    update_domains: usize,
) -> bool {
    let fds: BTreeSet<&str> = replicas.iter().filter_map(|r| domain_of.get(r).map(|d| d.0)).collect();
    let uds: BTreeSet<&str> = replicas.iter().filter_map(|r| domain_of.get(r).map(|d| d.1)).collect();
    fds.len() >= fault_domains.min(replicas.len()) && uds.len() >= update_domains.min(replicas.len())
}

/// Indexes of `count` racks, in walk order from `start`, with pairwise
/// distinct fault and update domains; None if there are none (or the
/// search budget runs out on a very large grid).
fn distinct_racks(cells: &[(&str, &str)], start: usize, count: usize) -> Option<Vec<usize>> {
    fn search(
        cells: &[(&str, &str)],
        order: &[usize],
        from: usize,
        count: usize,
        chosen: &mut Vec<usize>,
        budget: &mut usize,
    ) -> bool {
        if chosen.len() == count {
            return true;
        }
        for (position, &index) in order.iter().enumerate().skip(from) {
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            let (fd, ud) = cells[index];
            if chosen.iter().all(|c| cells[*c].0 != fd && cells[*c].1 != ud) {
                chosen.push(index);
                if search(cells, order, position + 1, count, chosen, budget) {
                    return true;
                }
                chosen.pop();
            }
        }
        false
    }
    let order: Vec<usize> = (0..cells.len()).map(|i| (start + i) % cells.len()).collect();
    let mut chosen = Vec::with_capacity(count);
    let mut budget = 10_000;
    search(cells, &order, 0, count, &mut chosen, &mut budget).then_some(chosen)
}

/// How strictly [`place`] spreads a partition's next replica.
#[derive(Debug, Clone, Copy)]
enum Spread {
    Both,
    Either,
    Any,
}

/// Racks (brokers sharing a fault domain and an update domain) in the
/// order of the [`diagonal_walk`] over the domains the brokers span
/// (sorted by name): for 3 × 3, FD0UD0, FD1UD1, FD2UD2, FD0UD1, FD1UD2,
/// FD2UD0, FD0UD2, FD1UD0, FD2UD1. Empty racks are skipped.
fn racks(live: &[&BrokerRecord]) -> Vec<Vec<BrokerId>> {
    let fds: Vec<&str> = live.iter().map(|b| b.fault_domain.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let uds: Vec<&str> = live.iter().map(|b| b.update_domain.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    diagonal_walk(fds.len() * uds.len(), fds.len(), uds.len())
        .map(|(fd, ud)| {
            live.iter()
                .filter(|b| b.fault_domain == fds[fd] && b.update_domain == uds[ud])
                .map(|b| b.id)
                .collect::<Vec<BrokerId>>()
        })
        .filter(|members| !members.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::state::CommandOutcome;
    use crate::controller::state::testing::{cluster, create};

    #[test]
    fn diagonal_walk_of_a_3x3_grid_starts_again_when_full() {
        let grid: Vec<(usize, usize)> = diagonal_walk(10, 3, 3).collect();
        assert_eq!(grid, [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (2, 0), (0, 2), (1, 0), (2, 1), (0, 0)]);
        assert_eq!(diagonal_walk(4, 2, 3).collect::<Vec<_>>(), [(0, 0), (1, 1), (0, 1), (1, 2)]);
    }

    #[test]
    fn racks_follow_the_diagonal_walk() {
        let layout: Vec<(usize, usize)> = (0..3).flat_map(|f| (0..3).map(move |u| (f, u))).collect();
        let s = cluster(&layout);
        let live: Vec<&BrokerRecord> = s.brokers.values().collect();
        let order: Vec<(String, String)> = racks(&live)
            .iter()
            .map(|r| (s.brokers[&r[0]].fault_domain.clone(), s.brokers[&r[0]].update_domain.clone()))
            .collect();
        let names: Vec<String> = order.iter().map(|(f, u)| format!("{f}{u}")).collect();
        assert_eq!(names, ["FD0UD0", "FD1UD1", "FD2UD2", "FD0UD1", "FD1UD2", "FD2UD0", "FD0UD2", "FD1UD0", "FD2UD1"]);
    }

    #[test]
    fn placement_spans_both_dimensions_and_spreads_leaders() {
        // kmon up's default: 3 brokers on the diagonal.
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
        let outcome = create(&mut s, "t", 6, 3).unwrap();
        assert_eq!(outcome, CommandOutcome::TopicCreated { placement_note: None });
        let t = &s.topics["t"];
        let mut leaders = BTreeMap::new();
        for p in &t.partitions {
            let set: BTreeSet<_> = p.replicas.iter().collect();
            assert_eq!(set.len(), 3);
            *leaders.entry(p.leader).or_insert(0) += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[test]
    fn placement_on_a_partly_filled_grid_still_spans_both_dimensions() {
        // Six brokers on a 3 × 3 grid: only the two full diagonals are valid
        // RF-3 replica sets; consecutive racks of the walk are not.
        let mut s = cluster(&[(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (2, 0)]);
        let outcome = create(&mut s, "t", 12, 3).unwrap();
        assert_eq!(outcome, CommandOutcome::TopicCreated { placement_note: None });
        let mut per_broker = BTreeMap::new();
        for p in &s.topics["t"].partitions {
            let mut sorted = p.replicas.clone();
            sorted.sort();
            assert!(sorted == [1, 2, 3] || sorted == [4, 5, 6], "{:?}", p.replicas);
            for r in &p.replicas {
                *per_broker.entry(*r).or_insert(0) += 1;
            }
        }
        assert_eq!(per_broker.values().copied().collect::<Vec<_>>(), vec![6; 6]);
    }

    #[test]
    fn placement_on_a_full_three_by_three_grid_never_repeats_a_domain() {
        let layout: Vec<(usize, usize)> = (0..3).flat_map(|f| (0..3).map(move |u| (f, u))).collect();
        let mut s = cluster(&layout);
        let outcome = create(&mut s, "t", 36, 3).unwrap();
        assert_eq!(outcome, CommandOutcome::TopicCreated { placement_note: None });
        let mut per_broker: BTreeMap<BrokerId, usize> = BTreeMap::new();
        for p in &s.topics["t"].partitions {
            for r in &p.replicas {
                *per_broker.entry(*r).or_default() += 1;
            }
        }
        assert_eq!(per_broker.values().copied().collect::<Vec<_>>(), vec![12; 9], "{per_broker:?}");
    }

    #[test]
    fn placement_says_which_dimension_was_relaxed() {
        // Two fault domains, three update domains, RF 3.
        let mut s = cluster(&[(0, 0), (1, 1), (0, 2), (1, 0)]);
        let CommandOutcome::TopicCreated { placement_note: Some(note) } = create(&mut s, "t", 4, 3).unwrap() else {
            panic!("expected a placement note");
        };
        assert!(note.contains("fault-domain spread relaxed: 2 fault domain(s)"), "{note}");
        assert!(!note.contains("update-domain spread relaxed"), "{note}");
        let big = create(&mut s, "u", 1, 5).unwrap_err();
        assert_eq!(big, MetadataError::InvalidReplicationFactor { requested: 5, available: 4 });
    }
}
