//! End-to-end tests of executing a rebalance over real `kmon broker`
//! processes: a 3-broker cluster grows to 6 brokers in 3 fault × 3 update
//! domains and the plan is executed under acks=all produce and a consuming
//! group, with the controller SIGKILLed mid-way; the throttle holds the
//! copy to its rate; cancel reverts; preferred leader election.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kmon_client::{Acks, Admin, Producer, ProducerConfig};

/// Fast failure detection: 1.5 s sessions, 2 s replica lag.
fn fast_config(root: &std::path::Path) -> String {
    let config = root.join("fast.toml");
    std::fs::write(
        &config,
        "broker_session_timeout_ms = 1500\nbroker_heartbeat_interval_ms = 200\nreplica_lag_time_max_ms = 2000\n",
    )
    .unwrap();
    config.to_str().unwrap().to_string()
}

fn status_json(bootstrap: &str) -> serde_json::Value {
    serde_json::from_str(&kmon_ok(bootstrap, &["rebalance", "status", "--json"], "")).expect("status JSON")
}

/// Replicas per broker ÷ mean, over the brokers given.
fn replica_skew(assignments: &[Vec<i32>], brokers: &[i32]) -> f64 {
    let mut count: BTreeMap<i32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for replicas in assignments {
        for r in replicas {
            *count.get_mut(r).expect("known broker") += 1;
        }
    }
    let total: usize = count.values().sum();
    *count.values().max().unwrap() as f64 / (total as f64 / brokers.len() as f64)
}

/// Whether `replicas` sit in distinct fault domains and distinct update domains.
fn spans_both(replicas: &[i32], domains: &BTreeMap<i32, (String, String)>) -> bool {
    let fds: BTreeSet<&String> = replicas.iter().map(|r| &domains[r].0).collect();
    let uds: BTreeSet<&String> = replicas.iter().map(|r| &domains[r].1).collect();
    fds.len() == replicas.len() && uds.len() == replicas.len()
}

/// The keys a group member printed (`key<TAB>value` lines).
fn keys_seen(member: &GroupConsumer) -> BTreeSet<String> {
    member.seen().iter().filter_map(|l| l.split_once('\t').map(|(k, _)| k.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_to_six_brokers_and_executing_the_plan_under_load_survives_a_controller_kill() {
    let scratch = tempfile::tempdir().unwrap();
    let config = fast_config(scratch.path());
    let mut cluster = Cluster::start(3, &["--config", &config]);
    let bootstrap = cluster.brokers[0].bootstrap();
    let admin = Admin::connect(&bootstrap).await.unwrap();
    // Skewed topics: different partition counts, replication factors and sizes.
    let min_isr = vec![("min.insync.replicas".to_string(), "2".to_string())];
    admin.create_topic("orders", 12, 3, min_isr.clone()).await.unwrap();
    admin.create_topic("events", 6, 3, min_isr).await.unwrap();
    admin.create_topic("audit", 4, 2, vec![]).await.unwrap();
    let producer =
        Producer::connect(ProducerConfig { acks: Acks::All, ..ProducerConfig::new(bootstrap.clone()) }).await.unwrap();
    let filler = Bytes::from(vec![b'x'; 1000]);
    for i in 0..6000 {
        let topic = if i % 3 == 0 { "events" } else { "orders" };
        producer.send(topic, Some(Bytes::from(format!("seed-{i}"))), filler.clone()).await.unwrap();
    }
    for i in 0..500 {
        producer.send("audit", Some(Bytes::from(format!("audit-{i}"))), filler.clone()).await.unwrap();
    }
    producer.flush().await.unwrap();
    let producer = Arc::new(producer);

    // Grow to six brokers: FD0/UD1, FD1/UD2, FD2/UD0 complete the 3 × 3 grid's diagonals.
    for expected in 4..=6 {
        assert_eq!(cluster.add_broker(&["--config", &config]), expected);
    }
    wait_for_async("six brokers alive", Duration::from_secs(30), || async {
        let m = admin.metadata(&[]).await.ok()?;
        (m.brokers.iter().filter(|b| b.alive).count() == 6).then_some(())
    })
    .await;
    let metadata = admin.metadata(&[]).await.unwrap();
    let domains: BTreeMap<i32, (String, String)> =
        metadata.brokers.iter().map(|b| (b.id, (b.fault_domain.clone(), b.update_domain.clone()))).collect();
    let cells: BTreeSet<&(String, String)> = domains.values().collect();
    assert_eq!(cells.len(), 6, "six distinct (FD, UD) cells: {domains:?}");
    // New topics use the new brokers at once.
    let fresh = admin.create_topic("fresh", 6, 3, vec![]).await.unwrap();
    assert!(fresh.partitions.iter().any(|p| p.replicas.iter().any(|r| *r > 3)), "{fresh:?}");
    assert!(fresh.partitions.iter().all(|p| spans_both(&p.replicas, &domains)), "{fresh:?}");

    // The plan: two-domain rule everywhere, replica skew under 1.2.
    let plan: serde_json::Value =
        serde_json::from_str(&kmon_ok(&bootstrap, &["rebalance", "plan", "--json"], "")).unwrap();
    let mut planned: BTreeMap<(String, u32), Vec<i32>> = BTreeMap::new();
    for topic in admin.list_topics().await.unwrap() {
        for p in &topic.partitions {
            planned.insert((topic.name.clone(), p.partition), p.replicas.clone());
        }
    }
    let initial = planned.clone();
    for m in plan["moves"].as_array().unwrap() {
        let to: Vec<i32> = m["to_replicas"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect();
        planned.insert((m["topic"].as_str().unwrap().to_string(), m["partition"].as_u64().unwrap() as u32), to);
    }
    for ((topic, partition), replicas) in &planned {
        if !topic.starts_with("__") {
            assert!(spans_both(replicas, &domains), "{topic}-{partition} -> {replicas:?} breaks the two-domain rule");
        }
    }
    let brokers: Vec<i32> = domains.keys().copied().collect();
    let all: Vec<Vec<i32>> = planned.values().cloned().collect();
    let skew_after = replica_skew(&all, &brokers);
    assert!(skew_after < 1.2, "replica skew after the plan {skew_after}: {plan:#}");
    assert!(plan["bytes_to_move"].as_u64().unwrap() > 1_000_000, "{plan:#}");

    // Load: acks=all producing, and a consuming group.
    let member =
        |b: &str| GroupConsumer::start_with(b, "orders", "billing", &["--print-key", "--session-timeout", "6s"]);
    let group = [member(&bootstrap), member(&bootstrap)];
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let load = tokio::spawn({
        let (producer, stop, acked) = (producer.clone(), stop.clone(), acked.clone());
        async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("live-{i}");
                let handle = producer.send("orders", Some(Bytes::from(key.clone())), Bytes::from_static(b"v")).await;
                if let Ok(handle) = handle {
                    let acked = acked.clone();
                    // Only acknowledged records count.
                    tokio::spawn(async move {
                        if handle.wait().await.is_ok() {
                            acked.lock().unwrap().push(key);
                        }
                    });
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    wait_for("the group consuming", Duration::from_secs(30), || {
        (group.iter().map(|m| keys_seen(m).len()).sum::<usize>() > 0).then_some(())
    });

    // Execute, throttled so it is still running when the controller dies.
    let out = kmon_ok(&bootstrap, &["rebalance", "execute", "--throttle", "500KB/s", "--no-wait"], "");
    assert!(out.contains("reassignment started"), "{out}");
    let status = status_json(&bootstrap);
    assert_eq!(status["in_progress"], true, "{status:#}");
    let overview = kmon_ok(&bootstrap, &["status"], "");
    assert!(overview.contains("Reassignment: ") && overview.contains("pending"), "{overview}");
    assert_eq!(status["throttle_bytes_per_sec"], 500_000, "{status:#}");
    let controller = admin.metadata(&[]).await.unwrap().controller_id;
    assert!((1..=3).contains(&controller), "a voter controls: {controller}");
    cluster.broker(controller).kill();
    let survivor = cluster.bootstrap_except(&[controller]);
    let admin2 = Admin::connect(&survivor).await.unwrap();
    wait_for_async("a new controller", Duration::from_secs(30), || async {
        let m = admin2.metadata(&[]).await.ok()?;
        (m.controller_id > 0 && m.controller_id != controller).then_some(())
    })
    .await;
    // Still in progress after the failover (the state is in the quorum).
    let during = status_json(&survivor);
    assert_eq!(during["in_progress"], true, "finished before the failover: throttle lower? {during:#}");
    assert_eq!(during["partitions_total"], status["partitions_total"], "{during:#}");
    cluster.restart(controller);
    wait_for("the reassignment to finish after the controller failover", Duration::from_secs(180), || {
        let s = status_json(&survivor);
        (s["in_progress"] == false).then_some(())
    });

    // Stop the load; everything acknowledged is in the log and was consumed.
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    if let Err(err) = producer.flush().await {
        let mut views = String::new();
        for b in &cluster.brokers {
            let out = kmon(&b.bootstrap(), &["topic", "describe", "orders"], "");
            views.push_str(&format!("--- via {}\n{}\n", b.bootstrap(), String::from_utf8_lossy(&out.stdout)));
        }
        panic!("flush failed: {err}\n{views}\n{}", cluster.logs());
    }
    let acked: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() > 100, "only {} records acknowledged during the reassignment", acked.len());
    let stored: BTreeSet<String> = consume_all(&survivor, "orders", 12)
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.key.unwrap().to_vec()).unwrap())
        .collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged records lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    wait_for("the group to consume every acknowledged record", Duration::from_secs(60), || {
        let seen: BTreeSet<String> = group.iter().flat_map(keys_seen).collect();
        acked.is_subset(&seen).then_some(())
    });

    // The cluster now has the planned assignment, in sync and preferred-led.
    wait_for_async("every partition in sync and led by its preferred replica", Duration::from_secs(60), || async {
        let topics = admin2.list_topics().await.ok()?;
        let mut current = Vec::new();
        for t in &topics {
            for p in &t.partitions {
                if p.isr.len() != p.replicas.len() || p.leader != p.replicas[0] {
                    return None;
                }
                if !t.name.starts_with("__") {
                    assert!(spans_both(&p.replicas, &domains), "{}-{}: {:?}", t.name, p.partition, p.replicas);
                }
                current.push(p.replicas.clone());
            }
        }
        Some(current)
    })
    .await;
    // The executed plan (planned again by the cluster at execute time, from
    // sizes that grew meanwhile) meets the same goals.
    let final_topics = admin2.list_topics().await.unwrap();
    let mut final_assignment: BTreeMap<(String, u32), Vec<i32>> = BTreeMap::new();
    for t in &final_topics {
        for p in &t.partitions {
            final_assignment.insert((t.name.clone(), p.partition), p.replicas.clone());
        }
    }
    let all: Vec<Vec<i32>> = final_assignment.values().cloned().collect();
    let skew_final = replica_skew(&all, &brokers);
    assert!(skew_final < 1.2, "replica skew after executing {skew_final}");
    let metrics = all_metrics(&cluster);
    assert!(metrics.contains("kmon_reassignment_partitions_pending 0"), "controller reports nothing pending");
    // Brokers that gave up replicas deleted their logs (the ones that stayed up).
    let mut moved_off = Vec::new();
    for (key, before) in &initial {
        for b in before.iter().filter(|b| !final_assignment[key].contains(b) && **b != controller) {
            moved_off.push((key.0.clone(), key.1, *b));
        }
    }
    assert!(!moved_off.is_empty());
    for (topic, partition, broker) in moved_off {
        let dir = cluster.root.path().join(format!("broker-{broker}")).join(format!("{topic}-{partition}"));
        wait_for(&format!("{} deleted", dir.display()), Duration::from_secs(20), || (!dir.exists()).then_some(()));
    }
}

/// All brokers' /metrics, concatenated.
fn all_metrics(cluster: &Cluster) -> String {
    cluster.brokers.iter().filter_map(|b| http_get(&b.metrics, "/metrics").map(|(_, body)| body)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throttle_holds_the_copy_to_its_rate_and_cancel_and_leader_election_work() {
    let mut cluster = Cluster::start(3, &[]);
    let bootstrap = cluster.brokers[0].bootstrap();
    let admin = Admin::connect(&bootstrap).await.unwrap();
    let topic = admin.create_topic("big", 1, 1, vec![]).await.unwrap();
    let from = topic.partitions[0].replicas[0];
    let to = (1..=3).find(|b| *b != from).unwrap();
    // Small batches: the copy moves in small steps.
    let config = ProducerConfig { batch_size: 64 * 1024, ..ProducerConfig::new(bootstrap.clone()) };
    let producer = Producer::connect(config).await.unwrap();
    let value = Bytes::from(vec![b'z'; 10_000]);
    for _ in 0..600 {
        producer.send("big", None, value.clone()).await.unwrap();
    }
    producer.flush().await.unwrap();
    let size = admin.describe_topic("big").await.unwrap().partitions[0].size_bytes;
    assert!(size > 5_500_000, "{size}");

    // Move the partition at 1 MB/s: the copy should take size / rate.
    let rate = 1_000_000.0;
    let moves = [kmon_client::PartitionMove {
        topic: "big".into(),
        partition: 0,
        from_replicas: vec![from],
        to_replicas: vec![to],
        bytes_to_move: size,
    }];
    admin.execute_reassignment(&moves, Some(rate as u64)).await.unwrap();
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = admin.reassignment_status().await.unwrap();
        let now = Instant::now();
        if !s.in_progress {
            samples.push((now, 0));
            break;
        }
        samples.push((now, s.bytes_left));
        assert!(now < deadline, "the copy did not finish: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // From the first sample showing progress to the first showing it done
    // (a window between two sampled steps of the copy would cut one step).
    let started = samples.iter().find(|(_, left)| *left < size).expect("progress seen");
    let done = samples.iter().find(|(_, left)| *left == 0).expect("completion seen");
    let copied = started.1 as f64;
    let seconds = done.0.duration_since(started.0).as_secs_f64();
    assert!(seconds > 2.0, "too few samples: {samples:?}");
    let measured = copied / seconds;
    eprintln!("throttle {rate} B/s: measured {measured:.0} B/s ({copied} bytes in {seconds:.2} s)");
    assert!(
        (0.8 * rate..=1.2 * rate).contains(&measured),
        "replication ran at {measured:.0} B/s for a throttle of {rate} B/s ({copied} bytes in {seconds:.2} s)"
    );
    let after = admin.describe_topic("big").await.unwrap().partitions[0].clone();
    assert_eq!((after.replicas.clone(), after.leader), (vec![to], to), "{after:?}");
    let records = consume_all(&bootstrap, "big", 1).await;
    assert_eq!(records.len(), 600);

    // Cancel: a slow move is reverted to its original replicas.
    let third = (1..=3).find(|b| *b != to && *b != from).unwrap();
    let moves = [kmon_client::PartitionMove {
        topic: "big".into(),
        partition: 0,
        from_replicas: vec![to],
        to_replicas: vec![third],
        bytes_to_move: size,
    }];
    admin.execute_reassignment(&moves, Some(100_000)).await.unwrap();
    let again = admin.execute_reassignment(&moves, None).await.unwrap_err();
    assert!(again.to_string().contains("already being reassigned"), "{again}");
    let text = kmon_ok(&bootstrap, &["rebalance", "status"], "");
    assert!(text.contains("reassignment in progress") && text.contains("big"), "{text}");
    let out = kmon_ok(&bootstrap, &["rebalance", "cancel"], "");
    assert!(out.contains("1 partition(s) back on their original replicas"), "{out}");
    let reverted = admin.describe_topic("big").await.unwrap().partitions[0].clone();
    assert_eq!(reverted.replicas, vec![to]);
    assert_eq!(status_json(&bootstrap)["in_progress"], false);
    let third_dir = cluster.root.path().join(format!("broker-{third}")).join("big-0");
    wait_for("the cancelled replica's log deleted", Duration::from_secs(20), || (!third_dir.exists()).then_some(()));
    // Bad input is named.
    let err = kmon_err(&bootstrap, &["rebalance", "execute", "--throttle", "fast"], "");
    assert!(err.contains("invalid rate \"fast\""), "{err}");
    let err = kmon_err(&bootstrap, &["rebalance", "cancel"], "");
    assert!(err.contains("no reassignment in progress"), "{err}");

    // Preferred leader election after a leader moved away.
    admin.create_topic("lead", 3, 3, vec![]).await.unwrap();
    let victim = admin.describe_topic("lead").await.unwrap().partitions[0].replicas[0];
    cluster.broker(victim).kill();
    let survivor = cluster.bootstrap_except(&[victim]);
    let admin2 = Admin::connect(&survivor).await.unwrap();
    wait_for_async("leadership moved off the killed broker", Duration::from_secs(30), || async {
        let t = admin2.describe_topic("lead").await.ok()?;
        (t.partitions[0].leader != victim && t.partitions[0].leader >= 0).then_some(())
    })
    .await;
    cluster.restart(victim);
    wait_for_async("the restarted broker back in sync", Duration::from_secs(30), || async {
        let t = admin2.describe_topic("lead").await.ok()?;
        t.partitions.iter().all(|p| p.isr.len() == 3).then_some(())
    })
    .await;
    let out = kmon_ok(&survivor, &["leader-election", "--preferred", "--topics", "lead"], "");
    assert!(out.contains("moved to their preferred replica"), "{out}");
    let t = admin2.describe_topic("lead").await.unwrap();
    assert!(t.partitions.iter().all(|p| p.leader == p.replicas[0]), "{t:?}");
    let err = kmon_err(&survivor, &["leader-election"], "");
    assert!(err.contains("--preferred"), "{err}");
}

/// A replica moved away (and a topic deleted) while its broker was down
/// leaves a stray log on that broker's disk: it is deleted when the broker
/// comes back and has caught up with the metadata, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_logs_of_a_broker_that_was_down_are_deleted_when_it_returns() {
    let mut cluster = Cluster::start(3, &[]);
    let bootstrap = cluster.brokers[0].bootstrap();
    let admin = Admin::connect(&bootstrap).await.unwrap();
    let moved = admin.create_topic("moved", 1, 2, vec![]).await.unwrap().partitions[0].clone();
    admin.create_topic("gone", 1, 3, vec![]).await.unwrap();
    let producer = Producer::connect(ProducerConfig::new(bootstrap.clone())).await.unwrap();
    for i in 0..100 {
        producer.send("moved", None, Bytes::from(format!("r{i}"))).await.unwrap();
    }
    producer.flush().await.unwrap();

    // The follower goes down; its replica moves to the third broker.
    let (leader, down) = (moved.leader, *moved.replicas.iter().find(|b| **b != moved.leader).unwrap());
    let third = (1..=3).find(|b| *b != leader && *b != down).unwrap();
    let dir = |topic: &str| cluster.root.path().join(format!("broker-{down}")).join(format!("{topic}-0"));
    let (moved_dir, gone_dir) = (dir("moved"), dir("gone"));
    assert!(moved_dir.exists() && gone_dir.exists(), "the replicas' logs are on disk before the move");
    cluster.broker(down).kill();
    let survivor = cluster.bootstrap_except(&[down]);
    let admin = Admin::connect(&survivor).await.unwrap();
    let target: Vec<i32> = moved.replicas.iter().map(|b| if *b == down { third } else { *b }).collect();
    let moves = [kmon_client::PartitionMove {
        topic: "moved".into(),
        partition: 0,
        from_replicas: moved.replicas.clone(),
        to_replicas: target.clone(),
        bytes_to_move: 0,
    }];
    admin.execute_reassignment(&moves, None).await.unwrap();
    wait_for_async("the replica moved off the broker that is down", Duration::from_secs(60), || async {
        let p = admin.describe_topic("moved").await.ok()?.partitions[0].clone();
        (p.replicas == target && p.isr.len() == 2).then_some(())
    })
    .await;
    admin.delete_topic("gone").await.unwrap();
    assert!(moved_dir.exists() && gone_dir.exists(), "a broker that is down deletes nothing");

    // Its metadata at restart still has both: once it catches up, the
    // moved replica and the deleted topic go.
    cluster.restart(down);
    wait_for("the logs moved away deleted", Duration::from_secs(30), || {
        (!moved_dir.exists() && !gone_dir.exists()).then_some(())
    });
    assert_eq!(consume_all(&survivor, "moved", 1).await.len(), 100, "nothing lost by the move");
    let t = admin.create_topic("after", 3, 3, vec![]).await.unwrap();
    assert!(t.partitions.iter().all(|p| p.replicas.contains(&down)));
    let after_dir = cluster.root.path().join(format!("broker-{down}")).join("after-0");
    wait_for("a new replica on the returned broker", Duration::from_secs(30), || after_dir.exists().then_some(()));

    // A log its metadata already says is not here (a crash between
    // applying the move and deleting the log leaves one): deleted at start,
    // once the broker's metadata includes its own new registration.
    cluster.broker(down).kill();
    let leader_copy = cluster.root.path().join(format!("broker-{leader}")).join("moved-0");
    let copied = std::process::Command::new("cp").arg("-r").arg(&leader_copy).arg(&moved_dir).status().unwrap();
    assert!(copied.success());
    cluster.restart(down);
    // The broker logs the deletion just after removing the directory: wait
    // for both, or the log may be read in between.
    wait_for("the stray log deleted", Duration::from_secs(30), || {
        (!moved_dir.exists() && cluster.broker(down).stderr().contains("deleted local log: stray log")).then_some(())
    });
    assert!(after_dir.exists(), "logs assigned to the broker stay");
    assert_eq!(consume_all(&survivor, "moved", 1).await.len(), 100, "the real replicas keep everything");
}
