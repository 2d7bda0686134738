use std::collections::BTreeMap;

use super::testing::{cluster, create};
use super::*;

#[test]
fn fencing_moves_leadership_within_the_isr_and_unfencing_restores_offline_partitions() {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
    create(&mut s, "t", 3, 3).unwrap();
    let p0 = s.topics["t"].partitions[0].clone();
    let old_leader = p0.leader;
    s.apply(&MetadataCommand::FenceBroker { id: old_leader }).unwrap();
    let p = &s.topics["t"].partitions[0];
    assert_ne!(p.leader, old_leader);
    assert!(p0.isr.contains(&p.leader));
    assert_eq!(p.leader_epoch, p0.leader_epoch + 1);
    assert!(!p.isr.contains(&old_leader));
    // Fence the rest: the last ISR member keeps its place, the partition goes offline.
    for id in [1, 2, 3] {
        if id != old_leader {
            s.apply(&MetadataCommand::FenceBroker { id }).unwrap();
        }
    }
    let p = s.topics["t"].partitions[0].clone();
    assert_eq!(p.leader, NO_LEADER);
    assert_eq!(p.isr.len(), 1);
    assert_eq!(s.partition_counts().offline, 3);
    // The old leader is not in the ISR: it cannot lead (no unclean election).
    s.apply(&MetadataCommand::UnfenceBroker { id: old_leader }).unwrap();
    assert_eq!(s.topics["t"].partitions[0].leader, NO_LEADER);
    s.apply(&MetadataCommand::UnfenceBroker { id: p.isr[0] }).unwrap();
    assert_eq!(s.topics["t"].partitions[0].leader, p.isr[0]);
}

/// Found by the chaos harness (issue 16, seed 1796439946208356335): a
/// leader killed and restarted within its session, its segment's tail torn,
/// kept leading at its old epoch and wrote new records at offsets already
/// acknowledged. A registration with a new incarnation now acts as a fence
/// first: out of every ISR, leaderships moved on with new epochs.
#[test]
fn a_restarted_broker_leaves_the_isr_and_its_leaderships() {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
    create(&mut s, "t", 3, 3).unwrap();
    let before = s.topics["t"].partitions[0].clone();
    let leader = before.leader;
    let mut again = s.brokers[&leader].clone();
    // The same incarnation registering again (a retried write) changes nothing.
    s.apply(&MetadataCommand::RegisterBroker(again.clone())).unwrap();
    assert_eq!(s.topics["t"].partitions[0], before);

    again.incarnation += 1;
    s.apply(&MetadataCommand::RegisterBroker(again)).unwrap();
    let p = &s.topics["t"].partitions[0];
    assert_ne!(p.leader, leader);
    assert!(before.isr.contains(&p.leader));
    assert_eq!(p.leader_epoch, before.leader_epoch + 1);
    assert!(!p.isr.contains(&leader), "ISR {:?} still holds the restarted broker", p.isr);
    assert!(!s.brokers[&leader].fenced);
    // Every other partition with the broker in its ISR dropped it too.
    assert!(s.topics["t"].partitions.iter().all(|p| !p.isr.contains(&leader)));
}

#[test]
fn unclean_election_picks_a_live_out_of_sync_replica_only_when_allowed() {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
    let mut configs = BTreeMap::new();
    configs.insert("unclean.leader.election.enable".to_string(), "true".to_string());
    s.apply(&MetadataCommand::CreateTopic {
        name: "u".into(),
        partitions: 1,
        replication_factor: 3,
        configs,
        topic_id: 7,
        min_insync_replicas: 0,
    })
    .unwrap();
    let p = s.topics["u"].partitions[0].clone();
    // Shrink the ISR to the leader alone, then fence the leader.
    s.apply(&MetadataCommand::AlterIsr {
        topic: "u".into(),
        partition: 0,
        leader: p.leader,
        leader_epoch: 0,
        partition_epoch: 0,
        isr: vec![p.leader],
    })
    .unwrap();
    s.apply(&MetadataCommand::FenceBroker { id: p.leader }).unwrap();
    let after = &s.topics["u"].partitions[0];
    assert_ne!(after.leader, NO_LEADER, "unclean election elects an out-of-sync replica");
    assert_ne!(after.leader, p.leader);
    assert_eq!(after.isr, vec![after.leader]);
}

#[test]
fn isr_changes_need_the_current_leader_and_epochs() {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
    create(&mut s, "t", 1, 3).unwrap();
    let p = s.topics["t"].partitions[0].clone();
    let follower = p.replicas[1];
    let shrink = |leader, leader_epoch, partition_epoch, isr: Vec<BrokerId>| MetadataCommand::AlterIsr {
        topic: "t".into(),
        partition: 0,
        leader,
        leader_epoch,
        partition_epoch,
        isr,
    };
    let smaller: Vec<BrokerId> = p.isr.iter().copied().filter(|b| *b != follower).collect();
    assert!(matches!(s.apply(&shrink(follower, 0, 0, smaller.clone())), Err(MetadataError::StaleIsrChange { .. })));
    assert_eq!(
        s.apply(&shrink(p.leader, 0, 0, smaller.clone())).unwrap(),
        CommandOutcome::IsrAltered { partition_epoch: 1 }
    );
    assert!(matches!(s.apply(&shrink(p.leader, 0, 0, p.isr.clone())), Err(MetadataError::StaleIsrChange { .. })));
    assert!(matches!(s.apply(&shrink(p.leader, 0, 1, vec![follower])), Err(MetadataError::InvalidIsr { .. })));
    s.apply(&shrink(p.leader, 0, 1, p.isr.clone())).unwrap();
    assert_eq!(s.topics["t"].partitions[0].isr, p.replicas);
}

fn start(s: &mut ClusterState, topic: &str, partition: u32, target: Vec<BrokerId>) -> ApplyResult {
    s.apply(&MetadataCommand::StartReassignment {
        moves: vec![ReplicaMove { topic: topic.into(), partition, target, bytes: 100 }],
        throttle_bytes_per_sec: Some(1000),
        now_ms: 1,
    })
}

fn join_isr(s: &mut ClusterState, topic: &str, partition: u32, broker: BrokerId) {
    let p = s.topics[topic].partitions[partition as usize].clone();
    let mut isr = p.isr.clone();
    isr.push(broker);
    s.apply(&MetadataCommand::AlterIsr {
        topic: topic.into(),
        partition,
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr,
    })
    .unwrap();
}

#[test]
fn reassignment_adds_then_removes_replicas_and_the_preferred_replica_leads() {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (2, 0)]);
    create(&mut s, "t", 1, 3).unwrap();
    let before = s.topics["t"].partitions[0].clone();
    assert_eq!(before.replicas, vec![1, 2, 3]);
    let outcome = start(&mut s, "t", 0, vec![4, 2, 6]).unwrap();
    assert_eq!(outcome, CommandOutcome::ReassignmentStarted { partitions: 1, bytes: 100 });
    let p = s.topics["t"].partitions[0].clone();
    // Target first, then the leaving originals; the leader has not moved.
    assert_eq!(p.replicas, vec![4, 2, 6, 1, 3]);
    assert_eq!(p.adding(), vec![4, 6]);
    assert_eq!(p.leader, 1);
    assert!(!p.is_under_replicated(), "new replicas do not count until they are in sync");
    assert_eq!(s.reassignment.as_ref().unwrap().throttle_bytes_per_sec, Some(1000));
    // Not ready until every target replica is in the ISR.
    let early = s.apply(&MetadataCommand::CompleteReassignment { topic: "t".into(), partition: 0 });
    assert!(
        matches!(early, Err(MetadataError::ReassignmentNotReady { ref waiting_for, .. }) if *waiting_for == vec![4, 6])
    );
    // A second move of the same partition is refused while it moves.
    assert!(matches!(start(&mut s, "t", 0, vec![5, 2, 6]), Err(MetadataError::ReassignmentInProgress { .. })));
    join_isr(&mut s, "t", 0, 4);
    join_isr(&mut s, "t", 0, 6);
    s.apply(&MetadataCommand::CompleteReassignment { topic: "t".into(), partition: 0 }).unwrap();
    let done = &s.topics["t"].partitions[0];
    assert_eq!(done.replicas, vec![4, 2, 6]);
    assert_eq!(done.isr, vec![4, 2, 6]);
    assert_eq!(done.leader, 4, "the preferred replica leads");
    assert_eq!(done.leader_epoch, before.leader_epoch + 1);
    assert!(done.reassignment.is_none());
    assert!(s.reassignment.is_none(), "the batch ends with its last partition");
}

#[test]
fn bad_reassignments_are_refused_whole() {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2), (0, 1)]);
    create(&mut s, "t", 2, 3).unwrap();
    let snapshot = s.clone();
    let moves = |target: Vec<BrokerId>| MetadataCommand::StartReassignment {
        moves: vec![
            ReplicaMove { topic: "t".into(), partition: 0, target: vec![4, 2, 3], bytes: 1 },
            ReplicaMove { topic: "t".into(), partition: 1, target, bytes: 1 },
        ],
        throttle_bytes_per_sec: None,
        now_ms: 0,
    };
    for (target, expected) in
        [(vec![9, 2, 3], "broker 9 is not registered"), (vec![4, 4, 3], "names a broker twice"), (vec![], "empty")]
    {
        let err = s.apply(&moves(target)).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
        assert_eq!(s, snapshot, "nothing applied");
    }
    s.apply(&MetadataCommand::FenceBroker { id: 4 }).unwrap();
    let (index, without_4) =
        s.topics["t"].partitions.iter().enumerate().find(|(_, p)| !p.replicas.contains(&4)).unwrap();
    let target = [vec![4], without_4.replicas[1..].to_vec()].concat();
    let err = start(&mut s, "t", index as u32, target).unwrap_err();
    assert!(err.to_string().contains("fenced"), "{err}");
    assert!(matches!(start(&mut s, "nope", 0, vec![1]), Err(MetadataError::UnknownTopic(_))));
}

#[test]
fn cancel_reverts_to_the_original_replicas() {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2), (0, 1)]);
    create(&mut s, "t", 1, 3).unwrap();
    start(&mut s, "t", 0, vec![4, 2, 3]).unwrap();
    join_isr(&mut s, "t", 0, 4);
    let outcome = s.apply(&MetadataCommand::CancelReassignment).unwrap();
    assert_eq!(outcome, CommandOutcome::ReassignmentCancelled { reverted: 1, kept: 0 });
    let p = &s.topics["t"].partitions[0];
    assert_eq!(p.replicas, vec![1, 2, 3]);
    assert_eq!(p.isr, vec![1, 2, 3]);
    assert_eq!(p.leader, 1);
    assert!(s.reassignment.is_none());
    assert_eq!(s.apply(&MetadataCommand::CancelReassignment), Err(MetadataError::NoReassignment(None)));
}

#[test]
fn preferred_leader_election_moves_only_eligible_partitions() {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
    create(&mut s, "t", 3, 3).unwrap();
    // Fence and unfence broker 1: it loses leadership and the ISR.
    s.apply(&MetadataCommand::FenceBroker { id: 1 }).unwrap();
    s.apply(&MetadataCommand::UnfenceBroker { id: 1 }).unwrap();
    let led_by_1 = s.topics["t"].partitions.iter().filter(|p| p.replicas[0] == 1).count() as u32;
    let outcome = s.apply(&MetadataCommand::ElectPreferredLeaders { topics: vec![] }).unwrap();
    assert_eq!(
        outcome,
        CommandOutcome::LeadersElected { moved: 0, already_preferred: 3 - led_by_1, not_eligible: led_by_1 }
    );
    // Back in the ISR, it leads its partitions again at once (kmon's
    // auto leader rebalance), with a new leader epoch: the explicit
    // election has nothing left to move.
    let epochs: Vec<i32> = s.topics["t"].partitions.iter().map(|p| p.leader_epoch).collect();
    for i in 0..3 {
        if s.topics["t"].partitions[i].replicas[0] == 1 {
            join_isr(&mut s, "t", i as u32, 1);
        }
    }
    assert!(s.topics["t"].partitions.iter().all(|p| p.leader == p.replicas[0]));
    for (p, before) in s.topics["t"].partitions.iter().zip(epochs) {
        assert_eq!(p.leader_epoch, if p.replicas[0] == 1 { before + 1 } else { before });
    }
    let outcome = s.apply(&MetadataCommand::ElectPreferredLeaders { topics: vec!["t".into()] }).unwrap();
    assert_eq!(outcome, CommandOutcome::LeadersElected { moved: 0, already_preferred: 3, not_eligible: 0 });
    assert!(matches!(
        s.apply(&MetadataCommand::ElectPreferredLeaders { topics: vec!["x".into()] }),
        Err(MetadataError::UnknownTopic(_))
    ));
}

#[test]
fn producer_ids_come_in_disjoint_blocks_and_transactional_ids_bump_their_epoch() {
    let mut s = cluster(&[(0, 0), (1, 1)]);
    let block = |s: &mut ClusterState, broker| s.apply(&MetadataCommand::AllocateProducerIds { broker, count: 1000 });
    assert_eq!(block(&mut s, 1), Ok(CommandOutcome::ProducerIdsAllocated { first: 0, count: 1000 }));
    assert_eq!(block(&mut s, 2), Ok(CommandOutcome::ProducerIdsAllocated { first: 1000, count: 1000 }));
    assert_eq!(block(&mut s, 9), Err(MetadataError::UnknownBroker(9)));
    let init = |s: &mut ClusterState, id: &str| {
        s.apply(&MetadataCommand::InitTransactionalProducer { transactional_id: id.into() })
    };
    assert_eq!(init(&mut s, "a"), Ok(CommandOutcome::ProducerIdAssigned { producer_id: 2000, epoch: 0 }));
    assert_eq!(init(&mut s, "a"), Ok(CommandOutcome::ProducerIdAssigned { producer_id: 2000, epoch: 1 }));
    assert_eq!(init(&mut s, "b"), Ok(CommandOutcome::ProducerIdAssigned { producer_id: 2001, epoch: 0 }));
    assert_eq!(block(&mut s, 1), Ok(CommandOutcome::ProducerIdsAllocated { first: 2002, count: 1000 }));
}

#[test]
fn elections_are_counted_when_a_partition_gets_a_new_live_leader() {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
    let mut counted = LeaderElections::default();
    let mut configs = BTreeMap::new();
    configs.insert("unclean.leader.election.enable".to_string(), "true".to_string());
    let create = MetadataCommand::CreateTopic {
        name: "u".into(),
        partitions: 1,
        replication_factor: 3,
        configs,
        topic_id: 7,
        min_insync_replicas: 0,
    };
    s.apply_counting(&create, &mut counted).unwrap();
    assert_eq!(counted, LeaderElections::default(), "a new partition's first leader is placed, not elected");
    let p = s.topics["u"].partitions[0].clone();
    // A clean election: the leader is fenced, an in-sync replica takes over.
    s.apply_counting(&MetadataCommand::FenceBroker { id: p.leader }, &mut counted).unwrap();
    assert_eq!(counted, LeaderElections { all: 1, unclean: 0 });
    let second = s.topics["u"].partitions[0].clone();
    // Shrink the ISR to the new leader alone and fence it too: with
    // unclean election on, the out-of-sync third replica leads.
    let alter = MetadataCommand::AlterIsr {
        topic: "u".into(),
        partition: 0,
        leader: second.leader,
        leader_epoch: second.leader_epoch,
        partition_epoch: second.partition_epoch,
        isr: vec![second.leader],
    };
    s.apply_counting(&alter, &mut counted).unwrap();
    assert_eq!(counted, LeaderElections { all: 1, unclean: 0 }, "an ISR change elects no one");
    s.apply_counting(&MetadataCommand::FenceBroker { id: second.leader }, &mut counted).unwrap();
    assert_eq!(counted, LeaderElections { all: 2, unclean: 1 });
    // Fencing the last one takes the partition offline: not an election.
    let third = s.topics["u"].partitions[0].leader;
    s.apply_counting(&MetadataCommand::FenceBroker { id: third }, &mut counted).unwrap();
    assert_eq!(s.topics["u"].partitions[0].leader, NO_LEADER);
    assert_eq!(counted, LeaderElections { all: 2, unclean: 1 });
    // The first leader comes back out of sync: unclean again.
    s.apply_counting(&MetadataCommand::UnfenceBroker { id: p.leader }, &mut counted).unwrap();
    assert_eq!(counted, LeaderElections { all: 3, unclean: 2 });
    // A preferred-leader election that moves nothing counts nothing.
    s.apply_counting(&MetadataCommand::ElectPreferredLeaders { topics: vec![] }, &mut counted).unwrap();
    assert_eq!(counted, LeaderElections { all: 3, unclean: 2 });
}

/// A topic "m" of one partition on brokers 1–3 with min.insync.replicas=2,
/// whose ISR the leader shrank to itself: the others are eligible.
fn shrunk_below_min_isr() -> (ClusterState, PartitionRecord) {
    let mut s = cluster(&[(0, 0), (1, 1), (2, 2)]);
    s.apply(&MetadataCommand::CreateTopic {
        name: "m".into(),
        partitions: 1,
        replication_factor: 3,
        configs: BTreeMap::new(),
        topic_id: 9,
        min_insync_replicas: 2,
    })
    .unwrap();
    let p = s.topics["m"].partitions[0].clone();
    let others: Vec<BrokerId> = p.replicas.iter().copied().filter(|b| *b != p.leader).collect();
    // At min.insync.replicas nobody is eligible yet: acks=all still succeeds,
    // so the one that left may miss acknowledged records.
    let alter = |s: &mut ClusterState, isr: Vec<BrokerId>| {
        let p = s.topics["m"].partitions[0].clone();
        s.apply(&MetadataCommand::AlterIsr {
            topic: "m".into(),
            partition: 0,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr,
        })
        .unwrap();
    };
    alter(&mut s, vec![p.leader, others[1]]);
    assert!(s.topics["m"].partitions[0].elr.is_empty());
    alter(&mut s, vec![p.leader]);
    let shrunk = s.topics["m"].partitions[0].clone();
    assert_eq!(shrunk.elr, vec![others[1]], "left below min.insync.replicas: eligible");
    (s, shrunk)
}

fn restart(s: &mut ClusterState, id: BrokerId, unclean_shutdown: bool) {
    let mut again = s.brokers[&id].clone();
    again.incarnation += 1;
    again.unclean_shutdown = unclean_shutdown;
    s.apply(&MetadataCommand::RegisterBroker(again)).unwrap();
}

/// Found by the chaos harness (issue 16, seed 1796527248873655545): the
/// last ISR member restarted with a torn tail cut off its log and was
/// elected again at once (an ISR of one); its follower truncated to the
/// shorter log and 3 acknowledged records were gone. The replica that left
/// the ISR below min.insync.replicas holds them and leads instead.
#[test]
fn the_last_isr_member_restarting_with_a_cut_log_yields_to_an_eligible_replica() {
    let (mut s, shrunk) = shrunk_below_min_isr();
    let eligible = shrunk.elr[0];
    restart(&mut s, shrunk.leader, true);
    let p = &s.topics["m"].partitions[0];
    assert_eq!(p.leader, eligible);
    assert_eq!(p.isr, vec![eligible]);
    assert!(p.leader_epoch > shrunk.leader_epoch);
    assert!(!p.elr.contains(&shrunk.leader), "an unclean broker is not eligible: {:?}", p.elr);

    // After a clean restart (nothing cut) the eligible replica leads too
    // (a restart fences first), and the restarted one stays eligible.
    let (mut s, shrunk) = shrunk_below_min_isr();
    restart(&mut s, shrunk.leader, false);
    let p = &s.topics["m"].partitions[0];
    assert_eq!(p.leader, eligible);
    assert_eq!(p.elr, vec![shrunk.leader]);
}

#[test]
fn without_a_live_eligible_replica_the_partition_waits_for_one() {
    // A clean restart leads again from its ISR of one.
    let (mut s, shrunk) = shrunk_below_min_isr();
    s.apply(&MetadataCommand::FenceBroker { id: shrunk.elr[0] }).unwrap();
    restart(&mut s, shrunk.leader, false);
    assert_eq!(s.topics["m"].partitions[0].leader, shrunk.leader);

    let (mut s, shrunk) = shrunk_below_min_isr();
    let eligible = shrunk.elr[0];
    s.apply(&MetadataCommand::FenceBroker { id: eligible }).unwrap();
    restart(&mut s, shrunk.leader, true);
    let p = s.topics["m"].partitions[0].clone();
    assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![]), "offline rather than led by a cut log");
    assert_eq!(s.partition_counts().offline, 1);
    // The third replica (at min.insync.replicas it may lack records) cannot lead either.
    let third = p.replicas.iter().copied().find(|b| *b != eligible && *b != shrunk.leader).unwrap();
    s.apply(&MetadataCommand::FenceBroker { id: third }).unwrap();
    s.apply(&MetadataCommand::UnfenceBroker { id: third }).unwrap();
    assert_eq!(s.topics["m"].partitions[0].leader, NO_LEADER);
    s.apply(&MetadataCommand::UnfenceBroker { id: eligible }).unwrap();
    let p = &s.topics["m"].partitions[0];
    assert_eq!((p.leader, p.isr.clone()), (eligible, vec![eligible]));
}

#[test]
fn an_eligible_replica_coming_back_leads_while_the_isr_is_fenced() {
    let (mut s, shrunk) = shrunk_below_min_isr();
    let eligible = shrunk.elr[0];
    s.apply(&MetadataCommand::FenceBroker { id: eligible }).unwrap();
    s.apply(&MetadataCommand::FenceBroker { id: shrunk.leader }).unwrap();
    assert_eq!(s.topics["m"].partitions[0].leader, NO_LEADER);
    s.apply(&MetadataCommand::UnfenceBroker { id: eligible }).unwrap();
    let p = &s.topics["m"].partitions[0];
    assert_eq!((p.leader, p.isr.clone(), p.elr.clone()), (eligible, vec![eligible], vec![shrunk.leader]));
}

#[test]
fn an_eligible_replica_takes_over_when_the_last_isr_member_is_fenced() {
    let (mut s, shrunk) = shrunk_below_min_isr();
    let eligible = shrunk.elr[0];
    s.apply(&MetadataCommand::FenceBroker { id: shrunk.leader }).unwrap();
    let p = s.topics["m"].partitions[0].clone();
    assert_eq!((p.leader, p.isr.clone()), (eligible, vec![eligible]));
    assert_eq!(p.elr, vec![shrunk.leader], "the fenced leader had every acknowledged record: eligible");
    // An ISR back at min.insync.replicas needs no eligible replicas.
    s.apply(&MetadataCommand::UnfenceBroker { id: shrunk.leader }).unwrap();
    s.apply(&MetadataCommand::AlterIsr {
        topic: "m".into(),
        partition: 0,
        leader: eligible,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr: vec![eligible, shrunk.leader],
    })
    .unwrap();
    assert!(s.topics["m"].partitions[0].elr.is_empty());
}
