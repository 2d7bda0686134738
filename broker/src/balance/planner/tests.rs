use super::model::combinations;
use super::*;
use crate::controller::state::{BrokerRecord, MetadataCommand, testing};
use crate::placement::spans_domains;

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
    testing::create(s, name, partitions, rf).unwrap();
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
