//! `cooperative-sticky`: keep what members own where that stays balanced,
//! move only the excess, and never hand a partition straight from one
//! member to another within one generation.
//!
//! 1. Ownership claims are checked: a claim on a partition that no longer
//!    exists, of a topic the member no longer subscribes to, or that a
//!    member with a newer generation also claims, is dropped (equal
//!    generations: the first member in member order keeps it).
//! 2. Each member keeps its valid owned partitions.
//! 3. Unowned partitions go, in order, to the least loaded subscribed
//!    member (ties: member order).
//! 4. While some member has at least two partitions more than another
//!    member that could take one of them, the highest of those partitions
//!    moves from the most loaded member to the least loaded one. Every
//!    move lowers the sum of squared loads, so this ends; with identical
//!    subscriptions it ends with loads differing by at most one.
//! 5. Incremental cooperative step: a partition whose new owner differs
//!    from its current (valid) owner is left out of this generation's
//!    assignment. The current owner sees it missing, revokes it and
//!    rejoins at once; in the next generation nobody owns it and step 3
//!    gives it to the member step 4 chose (the same computation).

use std::collections::{BTreeMap, BTreeSet};

use super::{Assignment, MemberSubscription};
use crate::types::TopicPartition;

pub(super) fn assign(partitions: &BTreeMap<String, u32>, members: &[&MemberSubscription], out: &mut Assignment) {
    let exists = |tp: &TopicPartition| partitions.get(&tp.topic).is_some_and(|&count| tp.partition < count);

    // 1. Valid current owners.
    let mut owner: BTreeMap<TopicPartition, (usize, i32)> = BTreeMap::new();
    for (index, member) in members.iter().enumerate() {
        for tp in &member.owned_partitions {
            if !exists(tp) || !member.subscribes(&tp.topic) {
                continue;
            }
            match owner.get(tp) {
                Some(&(_, generation)) if generation >= member.generation => {}
                _ => {
                    owner.insert(tp.clone(), (index, member.generation));
                }
            }
        }
    }

    // 2. Keep valid owned partitions.
    let mut loads: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); members.len()];
    for (tp, &(index, _)) in &owner {
        loads[index].insert(tp.clone());
    }

    // 3. Unowned partitions to the least loaded subscriber.
    for (topic, &count) in partitions {
        for partition in 0..count {
            let tp = TopicPartition::new(topic.clone(), partition);
            if owner.contains_key(&tp) {
                continue;
            }
            let least =
                (0..members.len()).filter(|&i| members[i].subscribes(topic)).min_by_key(|&i| (loads[i].len(), i));
            if let Some(index) = least {
                loads[index].insert(tp);
            }
        }
    }

    // 4. Move the excess.
    while let Some((from, to, tp)) = best_move(members, &loads) {
        loads[from].remove(&tp);
        loads[to].insert(tp);
    }

    // 5. Nothing goes straight from one member to another.
    for (index, member) in members.iter().enumerate() {
        let owned = out.entry(member.member_id.clone()).or_default();
        owned.extend(
            loads[index].iter().filter(|tp| owner.get(*tp).is_none_or(|&(current, _)| current == index)).cloned(),
        );
    }
}

/// The move step 4 makes next, if any: from the most loaded member that
/// has a partition some member with two fewer can take, the highest such
/// partition to the least loaded such member (ties: member order).
fn best_move(
    members: &[&MemberSubscription],
    loads: &[BTreeSet<TopicPartition>],
) -> Option<(usize, usize, TopicPartition)> {
    let mut by_load: Vec<usize> = (0..members.len()).collect();
    by_load.sort_by_key(|&i| (std::cmp::Reverse(loads[i].len()), i));
    for &from in &by_load {
        let mut best: Option<(usize, TopicPartition)> = None;
        for tp in loads[from].iter().rev() {
            let target = (0..members.len())
                .filter(|&to| loads[to].len() + 1 < loads[from].len() && members[to].subscribes(&tp.topic))
                .min_by_key(|&to| (loads[to].len(), to));
            if let Some(to) = target
                && best.as_ref().is_none_or(|(b, _)| loads[to].len() < loads[*b].len())
            {
                best = Some((to, tp.clone()));
            }
        }
        if let Some((to, tp)) = best {
            return Some((from, to, tp));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::test_support::*;
    use super::super::{Assignment, Assignor, MemberSubscription};

    /// What every member owns after syncing `assignment`: cooperative
    /// members keep what is still theirs, add what is new.
    fn next_subscriptions(
        members: &[MemberSubscription],
        assignment: &Assignment,
        generation: i32,
    ) -> Vec<MemberSubscription> {
        members
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.owned_partitions = assignment.get(&m.member_id).cloned().unwrap_or_default();
                m.generation = generation;
                m
            })
            .collect()
    }

    /// No partition is given to a member while another member owns it.
    fn check_no_straight_handover(assignment: &Assignment, members: &[MemberSubscription]) {
        for (member_id, assigned) in assignment {
            for tp in assigned {
                for other in members.iter().filter(|m| &m.member_id != member_id) {
                    assert!(
                        !other.owned_partitions.contains(tp),
                        "{tp} given to {member_id} while {} still owns it",
                        other.member_id
                    );
                }
            }
        }
    }

    /// Runs rebalances until no member has to revoke; returns the final
    /// assignment and the number of rounds.
    fn converge(
        partitions: &std::collections::BTreeMap<String, u32>,
        mut members: Vec<MemberSubscription>,
    ) -> (Assignment, usize) {
        for round in 1..10 {
            let assignment = Assignor::CooperativeSticky.assign(partitions, &members);
            check_valid(&assignment, &members);
            check_no_straight_handover(&assignment, &members);
            let revoked = members.iter().any(|m| {
                let new: BTreeSet<_> = assignment[&m.member_id].iter().collect();
                m.owned_partitions.iter().any(|tp| !new.contains(tp))
            });
            members = next_subscriptions(&members, &assignment, round as i32);
            if !revoked {
                return (assignment, round);
            }
        }
        panic!("did not converge");
    }

    #[test]
    fn a_new_member_takes_only_the_excess_in_two_rounds() {
        let partitions = topics(&[("t", 6)]);
        let a = owning(member("a", &["t"]), &[("t", 0), ("t", 1), ("t", 2)], 1);
        let b = owning(member("b", &["t"]), &[("t", 3), ("t", 4), ("t", 5)], 1);
        let c = member("c", &["t"]);
        let members = vec![a, b, c];

        let first = Assignor::CooperativeSticky.assign(&partitions, &members);
        // a and b keep two each; the partition each gives up is assigned to
        // nobody in this generation.
        assert_eq!(first["a"], tps(&[("t", 0), ("t", 1)]));
        assert_eq!(first["b"], tps(&[("t", 3), ("t", 4)]));
        assert!(first["c"].is_empty());

        let (last, rounds) = converge(&partitions, members);
        assert_eq!(rounds, 2);
        assert_eq!(last["a"], tps(&[("t", 0), ("t", 1)]));
        assert_eq!(last["b"], tps(&[("t", 3), ("t", 4)]));
        assert_eq!(last["c"], tps(&[("t", 2), ("t", 5)]));
    }

    #[test]
    fn a_leaving_member_s_partitions_go_to_the_others_at_once() {
        let partitions = topics(&[("t", 6)]);
        let a = owning(member("a", &["t"]), &[("t", 0), ("t", 1)], 3);
        let b = owning(member("b", &["t"]), &[("t", 2), ("t", 3)], 3);
        // c (owning 4 and 5) is gone.
        let assignment = Assignor::CooperativeSticky.assign(&partitions, &[a, b]);
        assert_eq!(assignment["a"], tps(&[("t", 0), ("t", 1), ("t", 4)]));
        assert_eq!(assignment["b"], tps(&[("t", 2), ("t", 3), ("t", 5)]));
    }

    #[test]
    fn balanced_ownership_is_kept_whole() {
        let partitions = topics(&[("t", 5), ("u", 2)]);
        let a = owning(member("a", &["t", "u"]), &[("t", 4), ("u", 0), ("t", 1)], 2);
        let b = owning(member("b", &["t", "u"]), &[("t", 0), ("t", 2)], 2);
        let c = owning(member("c", &["t", "u"]), &[("t", 3), ("u", 1)], 2);
        let members = vec![a.clone(), b.clone(), c.clone()];
        let assignment = Assignor::CooperativeSticky.assign(&partitions, &members);
        for m in &members {
            let mut owned = m.owned_partitions.clone();
            owned.sort();
            assert_eq!(assignment[&m.member_id], owned);
        }
    }

    #[test]
    fn stale_and_invalid_claims_are_dropped() {
        let partitions = topics(&[("t", 4)]);
        // Both claim t-0: the newer generation wins. t-9 does not exist,
        // u is not subscribed.
        let a = owning(member("a", &["t"]), &[("t", 0), ("t", 9), ("u", 0)], 4);
        let b = owning(member("b", &["t"]), &[("t", 0), ("t", 1)], 5);
        let assignment = Assignor::CooperativeSticky.assign(&partitions, &[a.clone(), b.clone()]);
        check_valid(&assignment, &[a, b]);
        assert_eq!(assignment["b"], tps(&[("t", 0), ("t", 1)]));
        assert_eq!(assignment["a"], tps(&[("t", 2), ("t", 3)]));
    }

    #[test]
    fn unequal_subscriptions_stay_valid_and_converge() {
        let partitions = topics(&[("t", 6), ("u", 3)]);
        let members = vec![
            owning(member("a", &["t", "u"]), &[("t", 0), ("t", 1), ("t", 2), ("t", 3), ("t", 4), ("t", 5)], 1),
            member("b", &["t"]),
            owning(member("c", &["u"]), &[("u", 0), ("u", 1), ("u", 2)], 1),
        ];
        let (last, _) = converge(&partitions, members);
        assert_eq!(counts(&last), [3, 3, 3]);
        assert!(last["b"].iter().all(|tp| tp.topic == "t"));
    }

    #[test]
    fn random_churn_never_has_two_owners_and_stays_balanced() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let partitions = topics(&[("t", 13), ("u", 7)]);
        let mut rng = StdRng::seed_from_u64(7);
        let mut members: Vec<MemberSubscription> = Vec::new();
        let mut next_id = 0;
        for _ in 0..200 {
            if members.is_empty() || (members.len() < 8 && rng.random_bool(0.5)) {
                members.push(member(&format!("m{next_id:03}"), &["t", "u"]));
                next_id += 1;
            } else {
                let index = rng.random_range(0..members.len());
                members.remove(index);
            }
            if members.is_empty() {
                continue;
            }
            let (last, rounds) = converge(&partitions, members.clone());
            assert!(rounds <= 2, "{rounds} rounds");
            let (min, max) = (counts(&last).into_iter().min().unwrap(), counts(&last).into_iter().max().unwrap());
            assert!(max - min <= 1, "{last:?}");
            let total: usize = counts(&last).iter().sum();
            assert_eq!(total, 20);
            members = next_subscriptions(&members, &last, 100);
        }
    }
}
