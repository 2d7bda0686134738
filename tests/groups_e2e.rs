//! Consumer groups over real processes: three `kmon consume --group`
//! processes share a topic, one is SIGKILLed, the coordinator's broker is
//! SIGKILLed, a stopped consumer shows STOP, offsets are reset.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "broker_session_timeout_ms = 1500\nbroker_heartbeat_interval_ms = 200\nreplica_lag_time_max_ms = 2000\n\
         offsets_topic_num_partitions = 3\ngroup_initial_rebalance_delay_ms = 300\ngroup_lag_stop_after_ms = 3000\n",
    )
    .unwrap();
    let path = config.to_str().unwrap().to_string();
    let mut cluster = Cluster::start(3, &["--config", &path]);
    // Restarts read the config file again.
    cluster.kept.push(dir);
    cluster
}

fn describe(bootstrap: &str, group: &str) -> Option<Value> {
    let out = kmon(bootstrap, &["group", "describe", group, "--json"], "");
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn produce(bootstrap: &str, topic: &str, from: usize, to: usize) {
    let input: String = (from..to).map(|i| format!("key-{}:record-{i}\n", i % 17)).collect();
    kmon_ok(bootstrap, &["produce", "--topic", topic, "--key-separator", ":", "--acks", "all"], &input);
}

fn assignment_sizes(desc: &Value) -> Vec<usize> {
    let mut sizes: Vec<usize> =
        desc["members"].as_array().unwrap().iter().map(|m| m["assignment"].as_array().unwrap().len()).collect();
    sizes.sort();
    sizes
}

fn all_seen(consumers: &[&GroupConsumer]) -> BTreeSet<String> {
    consumers.iter().flat_map(|c| c.seen()).collect()
}

fn expected(to: usize) -> BTreeSet<String> {
    (0..to).map(|i| format!("record-{i}")).collect()
}

#[test]
fn three_members_share_six_partitions_and_a_killed_member_skips_nothing() {
    let cluster = cluster();
    let b = cluster.brokers[0].bootstrap();
    kmon_ok(&b, &["topic", "create", "work", "--partitions", "6", "--replication-factor", "3"], "");
    produce(&b, "work", 0, 600);
    let mut c1 = GroupConsumer::start(&b, "work", "g1");
    let c2 = GroupConsumer::start(&b, "work", "g1");
    let c3 = GroupConsumer::start(&b, "work", "g1");
    let desc = wait_for("three members with two partitions each", Duration::from_secs(60), || {
        let d = describe(&b, "g1")?;
        (d["state"] == "Stable" && assignment_sizes(&d) == [2, 2, 2]).then_some(d)
    });
    // Never two members on one partition.
    let owned: Vec<(String, u64)> = desc["members"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["assignment"].as_array().unwrap().iter())
        .map(|tp| (tp["topic"].as_str().unwrap().to_string(), tp["partition"].as_u64().unwrap()))
        .collect();
    assert_eq!(owned.iter().collect::<BTreeSet<_>>().len(), 6);
    wait_for("all 600 records consumed", Duration::from_secs(60), || {
        (all_seen(&[&c1, &c2, &c3]) == expected(600)).then_some(())
    });

    // SIGKILL one member: its partitions move to the others within the
    // session timeout, and they resume from the committed offsets.
    c1.kill();
    produce(&b, "work", 600, 1200);
    wait_for("two members with three partitions each", Duration::from_secs(30), || {
        let d = describe(&b, "g1")?;
        (d["state"] == "Stable" && assignment_sizes(&d) == [3, 3]).then_some(())
    });
    wait_for("every record consumed, none skipped", Duration::from_secs(60), || {
        (all_seen(&[&c1, &c2, &c3]) == expected(1200)).then_some(())
    });
}

#[test]
fn commits_continue_after_the_coordinator_broker_dies_and_a_stopped_group_shows_stop() {
    let mut cluster = cluster();
    let b = cluster.brokers[0].bootstrap();
    kmon_ok(&b, &["topic", "create", "events", "--partitions", "3", "--replication-factor", "3"], "");
    produce(&b, "events", 0, 300);
    let mut consumer = GroupConsumer::start(&b, "events", "g2");
    let caught_up = |bootstrap: &str| {
        let d = describe(bootstrap, "g2")?;
        let parts = d["partitions"].as_array()?.clone();
        (parts.len() == 3 && parts.iter().all(|p| p["lag"] == 0 && p["committed_offset"].as_i64() >= Some(0)))
            .then_some(parts)
    };
    let before = wait_for("commits to reach the end", Duration::from_secs(60), || caught_up(&b));
    let before: HashMap<u64, i64> =
        before.iter().map(|p| (p["partition"].as_u64().unwrap(), p["committed_offset"].as_i64().unwrap())).collect();

    // Kill the coordinator's broker.
    let coordinator = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut raw = kmon_proto::v1::kmon_client::KmonClient::connect(format!("http://{b}")).await.unwrap();
            raw.find_coordinator(kmon_proto::v1::FindCoordinatorRequest { group_id: "g2".into() })
                .await
                .unwrap()
                .into_inner()
                .node_id
        })
    };
    cluster.broker(coordinator).kill();
    let other = cluster.bootstrap_except(&[coordinator]);
    produce(&other, "events", 300, 600);
    let after = wait_for("commits to continue on the new coordinator", Duration::from_secs(60), || {
        let parts = caught_up(&other)?;
        let total: i64 = parts.iter().map(|p| p["committed_offset"].as_i64().unwrap()).sum();
        (total == 600).then_some(parts)
    });
    for p in &after {
        let partition = p["partition"].as_u64().unwrap();
        assert!(p["committed_offset"].as_i64().unwrap() >= before[&partition], "committed offsets intact");
    }
    assert_eq!(all_seen(&[&consumer]), expected(600));

    // The consumer dies; records keep coming: lag grows and the status says STOP.
    consumer.kill();
    produce(&other, "events", 600, 900);
    let stopped = wait_for("STOP with growing lag", Duration::from_secs(60), || {
        let d = describe(&other, "g2")?;
        let parts = d["partitions"].as_array()?;
        let lag: i64 = parts.iter().map(|p| p["lag"].as_i64().unwrap_or(0)).sum();
        (lag == 300 && parts.iter().any(|p| p["status"] == "STOP")).then_some(d)
    });
    assert_eq!(stopped["status"], "ERR", "a stopped group is ERR");
    // `kmon status` carries the same data as the TUI: the group, its lag, an alert.
    let status: Value = serde_json::from_str(&kmon_ok(&other, &["status", "--json"], "")).unwrap();
    let g2 = status["groups"].as_array().unwrap().iter().find(|g| g["group"] == "g2").expect("g2 in status");
    assert_eq!(g2["lag"], 300);
    assert!(g2["status"] == "STOP" || g2["status"] == "ERR", "{g2}");
    assert!(
        status["alerts"].as_array().unwrap().iter().any(|a| a["message"].as_str().unwrap_or("").contains("g2")),
        "an alert names the stopped group: {status}"
    );
    // The coordinator's /metrics says the same, under kafka_exporter names.
    let coordinator_metrics = wait_for("the coordinator's metrics", Duration::from_secs(30), || {
        let rt = tokio::runtime::Runtime::new().ok()?;
        let id = rt.block_on(async {
            let mut raw = kmon_proto::v1::kmon_client::KmonClient::connect(format!("http://{other}")).await.ok()?;
            raw.find_coordinator(kmon_proto::v1::FindCoordinatorRequest { group_id: "g2".into() })
                .await
                .ok()
                .map(|r| r.into_inner().node_id)
        })?;
        Some(cluster.broker(id).metrics.clone())
    });
    wait_for("lag and STOP on /metrics", Duration::from_secs(30), || {
        let body = metrics_text(&coordinator_metrics)?;
        let lag: f64 = series(&body, "kafka_consumergroup_lag{consumergroup=\"g2\"").iter().sum();
        let stop = series(&body, "kmon_consumergroup_partition_status{consumergroup=\"g2\"").contains(&4.0);
        let err = series(&body, "kmon_consumergroup_status{consumergroup=\"g2\"") == [2.0];
        (lag == 300.0 && stop && err).then_some(())
    });
}

#[test]
fn reset_offsets_dry_run_execute_and_refusal_on_an_active_group() {
    let cluster = cluster();
    let b = cluster.brokers[1].bootstrap();
    kmon_ok(&b, &["topic", "create", "reset-me", "--partitions", "2", "--replication-factor", "3"], "");
    produce(&b, "reset-me", 0, 100);
    let mut consumer = GroupConsumer::start(&b, "reset-me", "g3");
    wait_for("the group to commit everything", Duration::from_secs(60), || {
        let d = describe(&b, "g3")?;
        let parts = d["partitions"].as_array()?;
        (parts.len() == 2 && parts.iter().all(|p| p["lag"] == 0 && p["committed_offset"].as_i64() > Some(0)))
            .then_some(())
    });
    // Refused while the group has a live member; nothing moves.
    let err = kmon_err(&b, &["group", "reset-offsets", "g3", "--topic", "reset-me", "--to-earliest", "--execute"], "");
    assert!(err.contains("active member") || err.contains("NON_EMPTY"), "{err}");
    let err = kmon_err(&b, &["group", "delete", "g3"], "");
    assert!(err.contains("active member") || err.contains("NON_EMPTY"), "{err}");
    consumer.stop();
    wait_for("the group to be empty", Duration::from_secs(30), || {
        let d = describe(&b, "g3")?;
        (d["state"] == "Empty").then_some(())
    });
    // A dry run changes nothing.
    let plan = kmon_ok(&b, &["group", "reset-offsets", "g3", "--topic", "reset-me", "--to-offset", "10"], "");
    assert!(plan.contains("10"), "{plan}");
    let d = describe(&b, "g3").unwrap();
    let committed: i64 =
        d["partitions"].as_array().unwrap().iter().map(|p| p["committed_offset"].as_i64().unwrap()).sum();
    assert_eq!(committed, 100);
    // --execute moves them.
    kmon_ok(&b, &["group", "reset-offsets", "g3", "--topic", "reset-me", "--to-earliest", "--execute"], "");
    let d = describe(&b, "g3").unwrap();
    assert!(d["partitions"].as_array().unwrap().iter().all(|p| p["committed_offset"] == 0));
    // Bad input: unknown group, unknown topic.
    let err = kmon_err(&b, &["group", "describe", "no-such-group"], "");
    assert!(err.contains("no-such-group"), "{err}");
    let err = kmon_err(&b, &["group", "reset-offsets", "g3", "--topic", "nope", "--to-earliest", "--execute"], "");
    assert!(err.contains("nope"), "{err}");
    // A consumer started now re-reads from the reset offsets.
    let again = GroupConsumer::start(&b, "reset-me", "g3");
    wait_for("records re-read after the reset", Duration::from_secs(60), || {
        (all_seen(&[&again]) == expected(100)).then_some(())
    });
    kmon_ok(&b, &["group", "list"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_group_requests_get_clear_errors_and_move_no_offset() {
    use kmon_proto::v1::kmon_client::KmonClient;
    use kmon_proto::v1::*;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.bootstrap();
    kmon_ok(&b, &["topic", "create", "t", "--partitions", "2"], "");
    let mut raw = KmonClient::connect(format!("http://{b}")).await.unwrap();
    let code = |s: &tonic::Status| s.metadata().get("kmon-error").map(|v| v.to_str().unwrap().to_string());
    // The offsets topic is created on first use: retry until a coordinator is there.
    wait_for_async("a coordinator", Duration::from_secs(30), || {
        let mut raw = raw.clone();
        async move { raw.find_coordinator(FindCoordinatorRequest { group_id: "g".into() }).await.ok() }
    })
    .await;
    let err = raw.find_coordinator(FindCoordinatorRequest { group_id: String::new() }).await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("INVALID_GROUP_ID"));
    let joined = wait_for_async("join", Duration::from_secs(30), || {
        let mut raw = raw.clone();
        async move {
            raw.join_group(JoinGroupRequest {
                group_id: "g".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                member_id: String::new(),
                group_instance_id: String::new(),
                protocol_type: "consumer".into(),
                protocols: vec![GroupProtocol { name: "range".into(), metadata: Default::default() }],
                client_id: "test".into(),
            })
            .await
            .ok()
        }
    })
    .await
    .into_inner();
    raw.sync_group(SyncGroupRequest {
        group_id: "g".into(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        group_instance_id: String::new(),
        assignments: vec![],
    })
    .await
    .unwrap();
    let commit = |generation: i32, member: &str, topic: &str, partition: u32, offset: i64| OffsetCommitRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: String::new(),
        partitions: vec![OffsetCommitPartition { topic: topic.into(), partition, offset, metadata: String::new() }],
    };
    raw.offset_commit(commit(joined.generation_id, &joined.member_id, "t", 0, 5)).await.unwrap();
    let err = raw.offset_commit(commit(joined.generation_id + 1, &joined.member_id, "t", 0, 9)).await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("ILLEGAL_GENERATION"), "{err}");
    let err = raw.offset_commit(commit(joined.generation_id, "nobody", "t", 0, 9)).await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("UNKNOWN_MEMBER_ID"), "{err}");
    let err = raw.offset_commit(commit(joined.generation_id, &joined.member_id, "t", 7, 9)).await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");
    assert!(err.message().contains("partition 7"), "{}", err.message());
    let err = raw.offset_commit(commit(-1, "", "t", 0, 0)).await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("NON_EMPTY_GROUP"), "{err}");
    let err = raw
        .heartbeat(HeartbeatRequest {
            group_id: "g".into(),
            generation_id: joined.generation_id,
            member_id: "nobody".into(),
            group_instance_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("UNKNOWN_MEMBER_ID"));
    let err = raw.describe_group(DescribeGroupRequest { group_id: "unknown-group".into() }).await.unwrap_err();
    assert!(matches!(code(&err).as_deref(), Some("GROUP_ID_NOT_FOUND") | Some("NOT_COORDINATOR")), "{err}");
    // None of the refused commits moved the committed offset.
    let fetched = raw
        .offset_fetch(OffsetFetchRequest {
            group_id: "g".into(),
            partitions: vec![
                TopicPartition { topic: "t".into(), partition: 0 },
                TopicPartition { topic: "t".into(), partition: 1 },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let offsets: Vec<i64> = fetched.partitions.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [5, -1]);
}

/// `/metrics` of a broker, as text.
fn metrics_text(address: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Values of the series whose line starts with `prefix` (name + first labels).
fn series(body: &str, prefix: &str) -> Vec<f64> {
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.trim().parse().ok()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_static_member_gets_its_partitions_back_without_a_rebalance() {
    use kmon_proto::v1::DescribeGroupRequest;
    use kmon_proto::v1::kmon_client::KmonClient;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.bootstrap();
    kmon_ok(&b, &["topic", "create", "static", "--partitions", "2"], "");
    produce(&b, "static", 0, 10);
    let args = ["--instance-id", "worker-1", "--session-timeout", "20s"];
    let mut first = GroupConsumer::start_with(&b, "static", "gs", &args);
    wait_for("the first incarnation to read everything", Duration::from_secs(60), || {
        (all_seen(&[&first]) == expected(10)).then_some(())
    });
    let raw = KmonClient::connect(format!("http://{b}")).await.unwrap();
    let describe = |mut raw: KmonClient<tonic::transport::Channel>| async move {
        raw.describe_group(DescribeGroupRequest { group_id: "gs".into() }).await.unwrap().into_inner()
    };
    let before = describe(raw.clone()).await;
    assert_eq!(before.state, "Stable");
    assert_eq!(before.members.len(), 1);
    assert_eq!(before.members[0].assignment.len(), 2);

    // SIGKILL: no LeaveGroup. The same instance id comes back well within
    // the session timeout and takes its place.
    first.kill();
    let second = GroupConsumer::start_with(&b, "static", "gs", &args);
    produce(&b, "static", 10, 20);
    wait_for("the restarted member to read the new records", Duration::from_secs(60), || {
        let seen: std::collections::BTreeSet<String> = second.seen().into_iter().collect();
        (10..20).all(|i| seen.contains(&format!("record-{i}"))).then_some(())
    });
    let after = describe(raw.clone()).await;
    assert_eq!(after.generation_id, before.generation_id, "no rebalance happened");
    assert_eq!(after.members.len(), 1);
    assert_eq!(after.members[0].group_instance_id, "worker-1");
    assert_ne!(after.members[0].member_id, before.members[0].member_id, "a new incarnation");
    assert_eq!(after.members[0].assignment.len(), 2, "its partitions back");
}

/// `DescribeGroups` (one call to any broker) answers, for groups spread
/// over every coordinator, exactly what `DescribeGroup` answers at each
/// group's coordinator; a list of ids narrows it; a dead coordinator is
/// named in `unavailable` rather than its groups silently missing, and
/// they come back once their offsets partitions have a new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_groups_gathers_every_coordinator_and_matches_describe_group() {
    use kmon_client::{Admin, GroupDescription, TopicPartition};
    let mut cluster = cluster();
    let b = cluster.broker(1).bootstrap();
    kmon_ok(&b, &["topic", "create", "batched", "--partitions", "4", "--replication-factor", "3"], "");
    produce(&b, "batched", 0, 40);
    let admin = Admin::connect(&b).await.unwrap();
    let mut ids: Vec<String> = (0..9).map(|i| format!("batched-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let offsets = (0..4).map(|p| (TopicPartition::new("batched", p), i as i64)).collect();
        admin.reset_offsets(id, &offsets).await.unwrap();
    }
    // One group with a live member: members, assignments and owners too.
    let live = GroupConsumer::start(&b, "batched", "batched-live");
    wait_for("the live member to read everything", Duration::from_secs(60), || {
        (all_seen(&[&live]) == expected(40)).then_some(())
    });
    ids.push("batched-live".into());
    ids.sort();

    // Both views are read close together; a lag window or the member's
    // auto-commit may move in between, so compare until they agree.
    let (batched, one_by_one) =
        wait_for_async("DescribeGroups to match DescribeGroup", Duration::from_secs(30), || {
            let (admin, ids) = (admin.clone(), ids.clone());
            async move {
                let all = admin.describe_groups(&[]).await.ok()?;
                assert!(all.unavailable.is_empty(), "{:?}", all.unavailable);
                let batched: Vec<GroupDescription> =
                    all.groups.into_iter().filter(|g| g.group_id.starts_with("batched-")).collect();
                let mut one_by_one = Vec::new();
                for id in &ids {
                    one_by_one.push(admin.describe_group(id).await.ok()?);
                }
                (batched == one_by_one).then_some((batched, one_by_one))
            }
        })
        .await;
    assert_eq!(batched.iter().map(|g| g.group_id.clone()).collect::<Vec<_>>(), ids);
    let coordinators: BTreeSet<i32> = one_by_one.iter().map(|g| g.coordinator_id).collect();
    assert!(coordinators.len() >= 2, "the groups live on several coordinators: {coordinators:?}");
    let live_view = batched.iter().find(|g| g.group_id == "batched-live").unwrap();
    assert_eq!((live_view.state.as_str(), live_view.members.len()), ("Stable", 1));
    assert!(live_view.partitions.iter().all(|p| p.owner.is_some()), "{live_view:?}");
    let reset = batched.iter().find(|g| g.group_id == "batched-3").unwrap();
    assert!(reset.partitions.iter().all(|p| p.committed_offset == Some(3)), "{reset:?}");

    let some = admin.describe_groups(&["batched-5", "batched-1", "no-such-group"]).await.unwrap();
    let named: Vec<&str> = some.groups.iter().map(|g| g.group_id.as_str()).collect();
    assert_eq!(named, ["batched-1", "batched-5"]);

    // A coordinator other than broker 1 dies: broker 1 still answers, naming
    // it until its offsets partitions move.
    let dead = *coordinators.iter().find(|&&c| c != 1).unwrap();
    let dead_groups: Vec<String> =
        one_by_one.iter().filter(|g| g.coordinator_id == dead).map(|g| g.group_id.clone()).collect();
    cluster.broker(dead).kill();
    let first = admin.describe_groups(&[]).await.unwrap();
    let present: BTreeSet<&str> = first.groups.iter().map(|g| g.group_id.as_str()).collect();
    let missing: Vec<&String> = ids.iter().filter(|id| !present.contains(id.as_str())).collect();
    assert!(
        missing.is_empty() || first.unavailable.iter().any(|u| u.broker_id == dead),
        "groups {missing:?} missing, unavailable {:?}",
        first.unavailable
    );
    wait_for_async("the dead coordinator's groups on new coordinators", Duration::from_secs(60), || {
        let admin = admin.clone();
        let dead_groups = dead_groups.clone();
        async move {
            let all = admin.describe_groups(&[]).await.ok()?;
            let back =
                dead_groups.iter().all(|id| all.groups.iter().any(|g| &g.group_id == id && g.coordinator_id != dead));
            (back && all.unavailable.is_empty()).then_some(())
        }
    })
    .await;
}

/// Deleting a topic removes the groups' committed offsets on it (with
/// tombstones, so they stay gone after a restart): a topic created again
/// under the name is not read from the old offsets.
#[test]
fn deleting_a_topic_removes_the_committed_offsets_on_it() {
    let mut cluster = cluster();
    let b = cluster.brokers[0].bootstrap();
    kmon_ok(&b, &["topic", "create", "doomed", "--partitions", "2", "--replication-factor", "3"], "");
    kmon_ok(&b, &["topic", "create", "kept", "--partitions", "1", "--replication-factor", "3"], "");
    produce(&b, "doomed", 0, 20);
    produce(&b, "kept", 0, 5);
    for topic in ["doomed", "kept"] {
        let args = ["consume", "--group", "g4", "--topic", topic, "--from-beginning", "--max-records", "5"];
        kmon_ok(&b, &args, "");
    }
    let topics_of = |d: &Value| -> BTreeSet<String> {
        d["partitions"].as_array().into_iter().flatten().filter_map(|p| p["topic"].as_str().map(String::from)).collect()
    };
    let committed = wait_for("offsets committed on both topics", Duration::from_secs(30), || {
        let d = describe(&b, "g4")?;
        (topics_of(&d).len() == 2).then_some(d)
    });
    assert!(topics_of(&committed).contains("doomed"), "{committed}");

    kmon_ok(&b, &["topic", "delete", "doomed"], "");
    wait_for("the offsets on the deleted topic removed", Duration::from_secs(30), || {
        let d = describe(&b, "g4")?;
        (topics_of(&d) == BTreeSet::from(["kept".to_string()])).then_some(())
    });
    // Persisted: a full restart reloads the group without them.
    cluster.restart_all();
    let b = cluster.brokers[0].bootstrap();
    kmon_ok(&b, &["topic", "create", "doomed", "--partitions", "2", "--replication-factor", "3"], "");
    let d = wait_for("the group reloaded", Duration::from_secs(60), || {
        let d = describe(&b, "g4")?;
        (!topics_of(&d).is_empty()).then_some(d)
    });
    assert_eq!(topics_of(&d), BTreeSet::from(["kept".to_string()]), "{d}");
}
