//! End-to-end tests of rebalance planning and the scale-down refusal over
//! real `kmon broker` processes: a 3-broker cluster with a topic grows a
//! fourth broker, and the plan moves replicas onto it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use kmon_client::{Admin, ErrorCode};

fn plan_json(bootstrap: &str) -> serde_json::Value {
    serde_json::from_str(&kmon_ok(bootstrap, &["rebalance", "plan", "--json"], "")).expect("plan JSON")
}

fn goal(plan: &serde_json::Value, name: &str) -> (f64, f64) {
    let g = plan["goals"].as_array().unwrap().iter().find(|g| g["name"] == name).unwrap();
    (g["before"].as_f64().unwrap(), g["after"].as_f64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_broker_gets_replicas_in_a_deterministic_plan_and_removing_a_broker_is_refused() {
    let mut cluster = Cluster::start(3, &[]);
    let bootstrap = cluster.brokers[0].bootstrap();
    // RF 2: with the 4th broker at FD0/UD1, pairs {4, 3} span both domains.
    kmon_ok(&bootstrap, &["topic", "create", "skewed", "--partitions", "6", "--replication-factor", "2"], "");
    // Keyed, so every partition gets data (and a size to plan with).
    let lines: String = (0..300).map(|i| format!("key-{i}:record-{i}\n")).collect();
    kmon_ok(&bootstrap, &["produce", "--topic", "skewed", "--key-separator", ":"], &lines);
    let new = cluster.add_broker(&[]);
    assert_eq!(new, 4);

    let admin = Admin::connect(&bootstrap).await.unwrap();
    wait_for_async("broker 4 alive", Duration::from_secs(30), || async {
        let m = admin.metadata(&[]).await.ok()?;
        m.brokers.iter().any(|b| b.id == 4 && b.alive).then_some(())
    })
    .await;

    let plan = plan_json(&bootstrap);
    let moves = plan["moves"].as_array().unwrap();
    assert!(
        moves.iter().any(|m| m["to_replicas"].as_array().unwrap().contains(&serde_json::json!(4))),
        "no replica moves onto broker 4: {plan:#}"
    );
    // Sizes come from the partition leaders, so moving data costs bytes.
    assert!(plan["bytes_to_move"].as_u64().unwrap() > 0, "{plan:#}");
    assert!(plan["sizes_note"].is_null(), "{plan:#}");
    let (before, after) = goal(&plan, "replicas_per_broker_skew");
    assert!(after < before, "replica skew {before} -> {after}");
    assert_eq!(goal(&plan, "two_domain_violations").1, 0.0);

    // The same on a second call and from every broker.
    assert_eq!(plan_json(&bootstrap), plan);
    // (Each broker's copy of the metadata may take a moment to include
    // broker 4.)
    for b in &cluster.brokers[1..] {
        let address = b.bootstrap();
        wait_for(&format!("the same plan from {address}"), Duration::from_secs(10), || {
            (plan_json(&address) == plan).then_some(())
        });
    }
    // The text form shows the moves and the goals.
    let text = kmon_ok(&bootstrap, &["rebalance", "plan", "--topics", "skewed"], "");
    assert!(text.contains("to reassign") && text.contains("replicas_per_broker_skew"), "{text}");
    // An unknown topic is an error.
    kmon_err(&bootstrap, &["rebalance", "plan", "--topics", "nope"], "");

    // Scale-down: refused, nothing changes.
    let topic_before = admin.describe_topic("skewed").await.unwrap();
    let stderr = kmon_err(&bootstrap, &["cluster", "remove-broker", "2"], "");
    assert!(stderr.contains("InvalidKafkaScaleDownRequestErrorCode"), "{stderr}");
    assert!(stderr.contains("Nothing was changed") && stderr.contains("kmon rebalance plan"), "{stderr}");
    let err = admin.remove_broker(2).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidKafkaScaleDownRequest), "{err}");

    let status: serde_json::Value =
        serde_json::from_str(&kmon_ok(&bootstrap, &["status", "--json"], "")).expect("status JSON");
    let ids: BTreeSet<i64> =
        status["brokers"].as_array().expect("brokers").iter().map(|b| b["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, BTreeSet::from([1, 2, 3, 4]), "{status:#}");
    let topic_after = admin.describe_topic("skewed").await.unwrap();
    let replicas =
        |t: &kmon_client::TopicDescription| t.partitions.iter().map(|p| p.replicas.clone()).collect::<Vec<_>>();
    assert_eq!(replicas(&topic_after), replicas(&topic_before));
    assert_eq!(plan_json(&bootstrap), plan, "planning and the refusal changed nothing");
}
