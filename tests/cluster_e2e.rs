//! End-to-end tests of the replicated cluster: three real `kmon broker`
//! processes, RF=3, min.insync.replicas=2, acks=all; brokers are killed
//! with SIGKILL, paused with SIGSTOP, and restarted.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kmon_client::{Acks, Admin, ErrorCode, Producer, ProducerConfig};

/// Fast failure detection for tests: 1 s sessions, 2 s replica lag.
const FAST: &[&str] = &[];

fn cluster() -> Cluster {
    Cluster::start_fast_failover(3)
}

async fn create_rf3(admin: &Admin, topic: &str, partitions: u32) {
    admin.create_topic(topic, partitions, 3, vec![("min.insync.replicas".into(), "2".into())]).await.unwrap();
}

async fn partition_state(admin: &Admin, topic: &str, partition: u32) -> kmon_client::PartitionDescription {
    admin.describe_topic(topic).await.unwrap().partitions[partition as usize].clone()
}

async fn wait_isr(
    admin: &Admin,
    topic: &str,
    partition: u32,
    len: usize,
    what: &str,
) -> kmon_client::PartitionDescription {
    wait_for_async(what, Duration::from_secs(30), || async {
        let p = admin.describe_topic(topic).await.ok()?.partitions[partition as usize].clone();
        (p.isr.len() == len && p.leader > 0).then_some(p)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_while_producing_loses_nothing_acknowledged_and_the_old_leader_rejoins() {
    let mut cluster = cluster();
    let admin = Admin::connect(&cluster.brokers[0].bootstrap()).await.unwrap();
    create_rf3(&admin, "failover", 1).await;
    let before = wait_isr(&admin, "failover", 0, 3, "a full ISR").await;
    let old_leader = before.leader;

    let mut config = ProducerConfig::new(cluster.bootstrap_except(&[old_leader]));
    config.acks = Acks::All;
    config.linger = Duration::from_millis(2);
    config.batch_size = 16 << 10;
    let producer = Producer::connect(config).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sender = tokio::spawn(async move {
        for i in 0u64..20_000 {
            let value = Bytes::from(format!("rec-{i}"));
            let Ok(handle) = producer.send("failover", None, value.clone()).await else { break };
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(meta) = handle.wait().await {
                    let _ = tx.send((meta.offset, value));
                }
            });
            if i % 200 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        producer.flush().await.ok();
    });
    // Let some records through, then kill the leader mid-stream.
    let mut acked = Vec::new();
    while acked.len() < 3_000 {
        acked.push(rx.recv().await.unwrap());
    }
    let killed_at = Instant::now();
    cluster.broker(old_leader).kill();
    let other = Admin::connect(&cluster.bootstrap_except(&[old_leader])).await.unwrap();
    let after = wait_for_async("a new leader", Duration::from_secs(20), || async {
        let p = partition_state(&other, "failover", 0).await;
        (p.leader > 0 && p.leader != old_leader).then_some(p)
    })
    .await;
    assert!(killed_at.elapsed() < Duration::from_secs(10), "new leader took {:?}", killed_at.elapsed());
    assert!(after.leader_epoch > before.leader_epoch);
    sender.await.unwrap();
    while let Ok(a) = rx.try_recv() {
        acked.push(a);
    }
    assert!(acked.len() > 3_000, "producing continued on the new leader");

    // Every acknowledged record is there, once per offset, in order.
    let records = consume_all(&cluster.bootstrap_except(&[old_leader]), "failover", 1).await;
    let stored: BTreeMap<i64, Bytes> = records.iter().map(|r| (r.offset, r.value.clone())).collect();
    assert_eq!(stored.len(), records.len(), "an offset was delivered twice");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "offsets are contiguous and in order");
    }
    for (offset, value) in &acked {
        assert_eq!(stored.get(offset), Some(value), "acknowledged record at {offset} lost or changed");
    }

    // The old leader comes back, catches up and rejoins the ISR.
    cluster.restart(old_leader);
    let rejoined = wait_isr(&other, "failover", 0, 3, "the restarted broker to rejoin the ISR").await;
    assert!(rejoined.isr.contains(&old_leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_follower_leaves_the_isr_and_returns() {
    let mut cluster = cluster();
    let admin = Admin::connect(&cluster.brokers[0].bootstrap()).await.unwrap();
    create_rf3(&admin, "pause", 1).await;
    let p = wait_isr(&admin, "pause", 0, 3, "a full ISR").await;
    let follower = *p.replicas.iter().find(|r| **r != p.leader).unwrap();
    cluster.broker(follower).signal("STOP");
    let watcher = Admin::connect(&cluster.bootstrap_except(&[follower])).await.unwrap();
    let shrunk = wait_isr(&watcher, "pause", 0, 2, "the paused follower to leave the ISR").await;
    assert!(!shrunk.isr.contains(&follower));
    // Produce while it is away: acks=all still works with 2 in sync.
    let mut config = ProducerConfig::new(cluster.bootstrap_except(&[follower]));
    config.acks = Acks::All;
    let producer = Producer::connect(config).await.unwrap();
    for i in 0..100 {
        producer.send("pause", None, Bytes::from(format!("p{i}"))).await.unwrap();
    }
    producer.flush().await.unwrap();
    cluster.broker(follower).signal("CONT");
    let back = wait_isr(&watcher, "pause", 0, 3, "the resumed follower to rejoin the ISR").await;
    assert!(back.isr.contains(&follower));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_down_acks_all_fails_with_not_enough_replicas_and_writes_nothing() {
    let mut cluster = cluster();
    let admin = Admin::connect(&cluster.brokers[0].bootstrap()).await.unwrap();
    create_rf3(&admin, "quorum", 1).await;
    let p = wait_isr(&admin, "quorum", 0, 3, "a full ISR").await;
    let followers: Vec<i32> = p.replicas.iter().copied().filter(|r| *r != p.leader).collect();
    let leader_addr = cluster.broker(p.leader).bootstrap();
    let mut config = ProducerConfig::new(leader_addr.clone());
    config.acks = Acks::All;
    config.delivery_timeout = Duration::from_secs(4);
    config.request_timeout = Duration::from_secs(1);
    let producer = Producer::connect(config).await.unwrap();
    producer.send("quorum", None, Bytes::from_static(b"before")).await.unwrap().wait().await.unwrap();
    for f in &followers {
        cluster.broker(*f).kill();
    }
    // Raw produce (no retries) until the leader notices that its followers
    // are gone (replica.lag.time.max.ms): from then on acks=all is refused
    // before anything is written.
    let mut raw = kmon_proto::v1::kmon_client::KmonClient::connect(format!("http://{leader_addr}")).await.unwrap();
    let leader_admin = Admin::connect(&leader_addr).await.unwrap();
    let produce = || kmon_proto::v1::ProduceRequest {
        acks: kmon_proto::v1::Acks::All as i32,
        timeout_ms: 500,
        partitions: vec![kmon_proto::v1::PartitionRecords {
            topic: "quorum".into(),
            partition: 0,
            records: kmon_client::batch::encode_batch(&[kmon_client::batch::Record {
                key: None,
                value: Bytes::from_static(b"refused"),
                timestamp_ms: 1,
                headers: vec![],
            }])
            .into(),
        }],
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let log_end = |admin: &Admin| {
        let admin = admin.clone();
        async move { admin.describe_topic("quorum").await.unwrap().partitions[0].log_end_offset }
    };
    loop {
        assert!(Instant::now() < deadline, "acks=all never failed with NOT_ENOUGH_REPLICAS");
        let end_before = log_end(&leader_admin).await;
        let status = raw.produce(produce()).await.expect_err("acks=all cannot succeed with two replicas down");
        if status.metadata().get("kmon-error").is_some_and(|v| v == "NOT_ENOUGH_REPLICAS") {
            assert!(status.message().contains("nothing was written"), "{}", status.message());
            assert_eq!(log_end(&leader_admin).await, end_before, "a refused batch must not be half-written");
            break;
        }
    }
    // Through the client library the error keeps its code.
    let handle = producer.send("quorum", None, Bytes::from_static(b"after")).await.unwrap();
    let _ = producer.flush().await;
    let err = handle.wait().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotEnoughReplicas), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_leader_sigkill_metadata_writes_resume_and_full_restart_keeps_everything() {
    let mut cluster = cluster();
    let admin = Admin::connect(&cluster.brokers[0].bootstrap()).await.unwrap();
    let meta = admin.metadata(&[]).await.unwrap();
    let controller = meta.controller_id;
    assert!(controller > 0, "a controller is elected");
    assert_eq!(meta.brokers.len(), 3);
    create_rf3(&admin, "kept", 3).await;
    let mut config = ProducerConfig::new(cluster.brokers[0].bootstrap());
    config.acks = Acks::All;
    let producer = Producer::connect(config).await.unwrap();
    for i in 0..300 {
        producer.send("kept", Some(Bytes::from(format!("k{i}"))), Bytes::from(format!("v{i}"))).await.unwrap();
    }
    producer.flush().await.unwrap();
    drop(producer);

    let killed_at = Instant::now();
    cluster.broker(controller).kill();
    let other = Admin::connect(&cluster.bootstrap_except(&[controller])).await.unwrap();
    let new_controller = wait_for_async("a new controller", Duration::from_secs(20), || async {
        let m = other.metadata(&[]).await.ok()?;
        (m.controller_id > 0 && m.controller_id != controller).then_some(m.controller_id)
    })
    .await;
    let failover = killed_at.elapsed();
    assert_ne!(new_controller, controller);
    // Metadata writes work again under the new controller.
    other.create_topic("after-failover", 1, 2, vec![]).await.unwrap();
    assert!(failover < Duration::from_secs(15), "controller failover took {failover:?}");

    // Full cluster restart: topics and data survive.
    cluster.restart_all();
    let admin = Admin::connect(&cluster.brokers[1].bootstrap()).await.unwrap();
    let names: Vec<String> = admin.list_topics().await.unwrap().into_iter().map(|t| t.name).collect();
    assert!(names.contains(&"kept".to_string()) && names.contains(&"after-failover".to_string()), "{names:?}");
    for p in 0..3 {
        wait_isr(&admin, "kept", p, 3, "full ISRs after restart").await;
    }
    // A restarted leader's high watermark starts from its last checkpoint;
    // "latest" is refused (retried) until its followers fetch and bring it
    // to the start of its epoch, so reading at once still gets everything.
    let records = consume_all(&cluster.brokers[1].bootstrap(), "kept", 3).await;
    assert_eq!(records.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_spreads_replicas_over_fault_and_update_domains() {
    let cluster = cluster();
    let admin = Admin::connect(&cluster.brokers[2].bootstrap()).await.unwrap();
    create_rf3(&admin, "placed", 6).await;
    let meta = admin.metadata(&["placed"]).await.unwrap();
    let domains: HashMap<i32, (String, String)> =
        meta.brokers.iter().map(|b| (b.id, (b.fault_domain.clone(), b.update_domain.clone()))).collect();
    let mut leaders: HashMap<i32, usize> = HashMap::new();
    for p in &meta.topics[0].partitions {
        let fds: std::collections::HashSet<_> = p.replicas.iter().map(|r| &domains[r].0).collect();
        let uds: std::collections::HashSet<_> = p.replicas.iter().map(|r| &domains[r].1).collect();
        assert_eq!((fds.len(), uds.len()), (3, 3), "partition {} replicas {:?}", p.partition, p.replicas);
        *leaders.entry(p.leader).or_default() += 1;
    }
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2], "leaders spread evenly");
    let _ = FAST;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_beyond_the_voters_join_as_learners_and_serve_metadata() {
    let cluster = Cluster::start(4, &[]);
    // Broker 4 is not a voter: its writes are forwarded, and it learns the
    // metadata as a Raft learner.
    let fourth = Admin::connect(&cluster.brokers[3].bootstrap()).await.unwrap();
    // RF 2: broker 4 (FD0/UD1) shares a domain with two of the three others,
    // so only pairs can include it without breaking the two-domain rule.
    fourth.create_topic("from-learner", 4, 2, vec![]).await.unwrap();
    let meta = wait_for_async("broker 4 to see all brokers alive", Duration::from_secs(20), || async {
        let m = fourth.metadata(&[]).await.ok()?;
        (m.brokers.len() == 4 && m.brokers.iter().all(|b| b.alive)).then_some(m)
    })
    .await;
    assert!(meta.topics.iter().any(|t| t.name == "from-learner"));
    assert!(meta.controller_id >= 1 && meta.controller_id <= 3, "the controller is a voter");
    // New topics use broker 4 too.
    let hosts_on_4 = meta.topics[0].partitions.iter().filter(|p| p.replicas.contains(&4)).count();
    assert!(hosts_on_4 > 0, "broker 4 holds replicas of new topics");
}

/// A topic deleted and created again under its name is a new topic (a new
/// topic id): none of the old records come back, on any replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_deleted_and_created_again_has_a_new_id_and_none_of_the_old_records() {
    let cluster = cluster();
    let bootstrap = cluster.brokers[0].bootstrap();
    let admin = Admin::connect(&bootstrap).await.unwrap();
    create_rf3(&admin, "again", 1).await;
    let producer = Producer::connect(ProducerConfig::new(bootstrap.clone())).await.unwrap();
    for i in 0..100 {
        producer.send("again", None, Bytes::from(format!("old-{i}"))).await.unwrap();
    }
    producer.flush().await.unwrap();
    let old_id = admin.describe_topic("again").await.unwrap().topic_id;
    assert_eq!(old_id.len(), 16, "{old_id:?}");

    // Back to back: a broker may see both changes in one metadata update.
    admin.delete_topic("again").await.unwrap();
    create_rf3(&admin, "again", 1).await;
    let described = wait_isr(&admin, "again", 0, 3, "the new topic in sync").await;
    let new_id = admin.describe_topic("again").await.unwrap().topic_id;
    assert!(new_id.len() == 16 && new_id != old_id, "{old_id} then {new_id}");
    for i in 0..10 {
        producer.send("again", None, Bytes::from(format!("new-{i}"))).await.unwrap();
    }
    producer.flush().await.unwrap();
    let values: Vec<String> = consume_all(&bootstrap, "again", 1)
        .await
        .iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect();
    assert_eq!(values, (0..10).map(|i| format!("new-{i}")).collect::<Vec<_>>());
    // Every replica's log is the new topic's: its id on disk, ten records.
    for id in &described.replicas {
        let file = cluster.root.path().join(format!("broker-{id}")).join("again-0").join("partition.metadata");
        // Written at the next flush (every second).
        wait_for("the new topic id on disk", Duration::from_secs(10), || {
            std::fs::read_to_string(&file).ok()?.contains(&format!("topic_id: {new_id}")).then_some(())
        });
    }
    wait_for_async("every replica at 10 records", Duration::from_secs(30), || async {
        let p = admin.describe_topic("again").await.ok()?.partitions[0].clone();
        (p.high_watermark == 10 && p.isr.len() == 3).then_some(())
    })
    .await;
    let text = kmon_ok(&bootstrap, &["topic", "describe", "again"], "");
    assert!(text.contains(&format!("TopicId: {new_id}")), "{text}");
}

/// Found by the chaos harness (issue 16, seed 1796527248873655545): the
/// leader, alone in its ISR, restarted with the torn tail of its log cut off
/// and led again at once; its followers truncated to its shorter log and the
/// last acknowledged batch was gone. The follower that left the ISR below
/// min.insync.replicas (an eligible leader replica, KIP-966) has every
/// acknowledged record: the partition waits for it and it leads.
///
/// Five brokers (voters 1–3) so that the metadata quorum lives through two
/// paused replicas: the partition is moved to [4, 5, 1] first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_in_sync_replica_back_with_a_torn_tail_does_not_lead_over_an_eligible_one() {
    let mut cluster = Cluster::start_fast_failover(5);
    let admin = Admin::connect(&cluster.brokers[1].bootstrap()).await.unwrap();
    create_rf3(&admin, "torn", 1).await;
    let placed = wait_isr(&admin, "torn", 0, 3, "a full ISR").await;
    let (leader, first_out, eligible) = (4, 5, 1);
    let target = vec![leader, first_out, eligible];
    if placed.replicas != target {
        let moves = [kmon_client::PartitionMove {
            topic: "torn".into(),
            partition: 0,
            from_replicas: placed.replicas.clone(),
            to_replicas: target.clone(),
            bytes_to_move: 0,
        }];
        admin.execute_reassignment(&moves, None).await.unwrap();
        wait_for_async("the move to [4, 5, 1]", Duration::from_secs(30), || async {
            let p = partition_state(&admin, "torn", 0).await;
            (p.replicas == target && p.leader == leader && p.isr.len() == 3).then_some(())
        })
        .await;
    }

    let mut config = ProducerConfig::new(cluster.brokers[1].bootstrap());
    config.acks = Acks::All;
    let producer = Producer::connect(config).await.unwrap();
    let mut acked: Vec<(i64, Bytes)> = Vec::new();
    let mut produce = async |from: u32| {
        for i in from..from + 20 {
            let value = Bytes::from(format!("rec-{i}"));
            let meta = producer.send("torn", None, value.clone()).await.unwrap().wait().await.unwrap();
            acked.push((meta.offset, value));
        }
    };
    produce(0).await;
    // One follower pauses: the ISR is at min.insync.replicas and acks=all goes on.
    cluster.broker(first_out).signal("STOP");
    wait_isr(&admin, "torn", 0, 2, "the first paused follower to leave the ISR").await;
    produce(20).await;
    // The other pauses too: the leader is alone, the one that left is eligible.
    cluster.broker(eligible).signal("STOP");
    let alone = wait_isr(&admin, "torn", 0, 1, "the second paused follower to leave the ISR").await;
    assert_eq!(alone.isr, vec![leader]);

    // The leader dies with the last, acknowledged batch torn.
    cluster.broker(leader).kill();
    let partition_dir = cluster.root.path().join(&cluster.layout_of(leader).data_dir).join("torn-0");
    let segment = segment_files(&partition_dir).pop().expect("a segment");
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 10).unwrap();
    cluster.broker(first_out).signal("CONT");
    cluster.restart(leader);
    assert!(cluster.broker(leader).stderr().contains("unclean shutdown"), "{}", cluster.logs());
    // Neither the cut log nor the follower that left at min.insync.replicas
    // (it may miss acknowledged records) leads: the partition waits.
    let offline = wait_for_async("the restarted leader to be registered", Duration::from_secs(20), || async {
        let p = partition_state(&admin, "torn", 0).await;
        (p.leader_epoch > alone.leader_epoch).then_some(p)
    })
    .await;
    assert_eq!(offline.leader, -1, "{offline:?}");
    assert_eq!(offline.elr, vec![eligible], "{offline:?}");

    let elections =
        |cluster: &Cluster| cluster.brokers[eligible as usize - 1].stderr().matches("became leader").count();
    let before = elections(&cluster);
    cluster.broker(eligible).signal("CONT");
    // It leads (and once the others caught up from it, the preferred
    // replica may take over again).
    wait_for("the eligible replica to lead", Duration::from_secs(20), || (elections(&cluster) > before).then_some(()));
    wait_isr(&admin, "torn", 0, 3, "every replica back in the ISR").await;
    let stored: BTreeMap<i64, Bytes> = consume_all(&cluster.brokers[1].bootstrap(), "torn", 1)
        .await
        .into_iter()
        .map(|r| (r.offset, r.value))
        .collect();
    for (offset, value) in &acked {
        assert_eq!(stored.get(offset), Some(value), "acknowledged record at {offset} lost or changed");
    }
}
