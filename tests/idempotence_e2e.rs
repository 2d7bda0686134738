//! kmon's idempotent producer over real processes: three brokers, RF=3,
//! min.insync.replicas=2, acks=all; partition leaders are SIGKILLed and
//! SIGSTOPped 20 times while every 7th produce response is lost
//! (`KMON_FAULT_DROP_PRODUCE_RESPONSE_EVERY`), and every acknowledged
//! record must be read back exactly once, in order, at its offset.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use kmon_client::{Admin, Producer, ProducerConfig, RecordHandle};

const TOPIC: &str = "exactly";
const PARTITIONS: u32 = 2;

/// The live leader of `partition`, once there is one that is not `down`.
async fn live_leader(admin: &Admin, partition: u32, down: &[i32]) -> i32 {
    wait_for_async("a live leader", Duration::from_secs(30), || async {
        let p = admin.describe_topic(TOPIC).await.ok()?.partitions[partition as usize].clone();
        (p.leader > 0 && !down.contains(&p.leader)).then_some(p.leader)
    })
    .await
}

async fn wait_full_isr(admin: &Admin) {
    wait_for_async("every partition's ISR back to 3", Duration::from_secs(60), || async {
        let topic = admin.describe_topic(TOPIC).await.ok()?;
        topic.partitions.iter().all(|p| p.isr.len() == 3 && p.leader > 0).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_writes_each_acknowledged_record_once_in_order_through_20_leader_faults_and_lost_acks() {
    let mut cluster = Cluster::start_fast_failover_with_env(3, &[("KMON_FAULT_DROP_PRODUCE_RESPONSE_EVERY", "7")]);
    let bootstrap = cluster.brokers[0].bootstrap();
    let admin = Admin::connect(&bootstrap).await.unwrap();
    admin.create_topic(TOPIC, PARTITIONS, 3, vec![("min.insync.replicas".into(), "2".into())]).await.unwrap();
    wait_full_isr(&admin).await;

    let mut config = ProducerConfig::new(bootstrap.clone());
    config.linger = Duration::from_millis(2);
    config.batch_size = 16 << 10;
    config.request_timeout = Duration::from_secs(5);
    config.delivery_timeout = Duration::from_secs(120);
    assert!(config.idempotence, "idempotence is the default");
    let producer = Producer::connect(config).await.unwrap();

    // Numbered records, alternating partitions, about 5,000 a second.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut handles: Vec<(u64, RecordHandle)> = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    let value = format!("n-{n}");
                    let handle =
                        producer.send_to(TOPIC, Some((n % 2) as u32), None, value.as_bytes()).await.expect("buffered");
                    handles.push((n, handle));
                    n += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = producer.flush().await;
            handles
        }
    });

    // 20 faults on the leader of one partition or the other: SIGKILL and
    // restart, or SIGSTOP and SIGCONT once another broker leads.
    for round in 0..20u32 {
        let partition = round % PARTITIONS;
        let leader = live_leader(&admin_of(&cluster, &[]).await, partition, &[]).await;
        if round % 2 == 0 {
            cluster.broker(leader).kill();
        } else {
            cluster.broker(leader).signal("STOP");
        }
        let others = admin_of(&cluster, &[leader]).await;
        live_leader(&others, partition, &[leader]).await;
        if round % 2 == 0 {
            cluster.restart(leader);
        } else {
            cluster.broker(leader).signal("CONT");
        }
        wait_full_isr(&admin_of(&cluster, &[]).await).await;
    }
    stop.store(true, Ordering::Relaxed);
    let handles = sender.await.unwrap();

    // What was acknowledged, and where.
    let mut acked: HashMap<u64, (u32, i64)> = HashMap::new();
    let mut failed = Vec::new();
    for (n, handle) in handles {
        match handle.wait().await {
            Ok(meta) => {
                acked.insert(n, (meta.partition, meta.offset));
            }
            Err(err) => failed.push((n, err.to_string())),
        }
    }
    let dropped = cluster.logs().matches("fault injection").count();
    eprintln!(
        "idempotence: {} records acknowledged, {} failed ({:?}), {dropped} acknowledgements dropped",
        acked.len(),
        failed.len(),
        failed.first()
    );
    assert!(dropped > 0, "no acknowledgement was dropped: the fault was not injected");
    assert!(acked.len() > 10_000, "too few records acknowledged: {}", acked.len());

    // Read back: each partition in order, no record twice, every
    // acknowledged record at its offset.
    let records = consume_all(&cluster.bootstrap_except(&[]), TOPIC, PARTITIONS).await;
    let mut seen: BTreeMap<u64, (u32, i64)> = BTreeMap::new();
    let mut last: HashMap<u32, u64> = HashMap::new();
    for record in &records {
        let value = String::from_utf8_lossy(&record.value);
        let n: u64 = value.strip_prefix("n-").and_then(|n| n.parse().ok()).expect("n-<number>");
        if let Some(first) = seen.insert(n, (record.partition, record.offset)) {
            panic!("n-{n} is in the log twice: at {first:?} and at {:?}", (record.partition, record.offset));
        }
        if let Some(previous) = last.insert(record.partition, n) {
            assert!(previous < n, "partition {} holds n-{n} after n-{previous}", record.partition);
        }
    }
    for (n, at) in &acked {
        assert_eq!(seen.get(n), Some(at), "acknowledged record n-{n} is not where its acknowledgement said");
    }
    eprintln!("idempotence: read back {} records, every acknowledged one exactly once", records.len());
}

/// An admin client on a broker that is up and not in `down`.
async fn admin_of(cluster: &Cluster, down: &[i32]) -> Admin {
    Admin::connect(&cluster.bootstrap_except(down)).await.unwrap()
}
