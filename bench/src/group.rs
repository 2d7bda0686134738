//! `kmon bench group`: consumer-group rebalance times and group consume
//! throughput, measured on a local cluster of real `kmon broker` processes.
//!
//! Set-up: 3 brokers on free ports of 127.0.0.1, started the way `kmon up`
//! does it (`kmon_cluster::spawn`, `kmon_cluster::wait_until_up`) in a fresh data directory,
//! and one topic with `--partitions` partitions, RF=3 and
//! `min.insync.replicas=2`.
//!
//! Rebalances: `--members` members of one group, each a child
//! `kmon consume --group` process (client defaults: eager `range`
//! assignor, 10 s session timeout, 3 s heartbeats, unless
//! `--session-timeout` / `--heartbeat-interval` say otherwise). Members
//! join one at a time, so each child's member id is the one `DescribeGroup`
//! shows new. Per run, one member (a different one each run):
//!
//! - **Leave**: SIGTERM; `kmon consume` then commits and sends LeaveGroup.
//! - **Kill**: SIGKILL; no LeaveGroup, so the coordinator only notices when
//!   the member's session expires.
//!
//! Measured: from the signal to the first `DescribeGroup` (polled every
//! [`DESCRIBE_INTERVAL`]) that shows the group Stable in a newer generation
//! with exactly the surviving members, owning every partition between them
//! (the coordinator's view once the leader's SyncGroup is in; the followers
//! get their part in their own SyncGroup answer, at about the same time).
//! A new member process then joins for the next run; that join (process
//! start to Stable) is timed too. Before each departure and each join the
//! bench waits a random fraction of the heartbeat interval (see
//! [`desync`]): the members' heartbeats are in phase with the end of the
//! previous rebalance, and acting right after it would measure the worst
//! case every time.
//!
//! Throughput: `--records` records of `--record-size` bytes are produced,
//! then read `--runs` times by the plain consumer (every partition
//! assigned at the earliest offset, as `kmon bench consume`) and by
//! `--members` [`GroupConsumer`]s of a new group (auto-commit on, earliest
//! reset, `max_poll_records` the client's unless `--max-poll-records`),
//! each on its own task in this
//! process. After a group run the committed offsets are checked to add up
//! to `--records`.
//!
//! One grep-able line per measurement, e.g.
//! `group rebalance, member left: median 1520 ms (min 310 ms, max 2980 ms) over 5 runs`.
//! Brokers and members are killed when the bench ends, also on error or
//! Ctrl-C, and the data directory is removed unless `--keep`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use kmon_client::{
    Acks, Admin, AutoOffsetReset, Consumer, ConsumerConfig, ErrorCode, GroupConsumer, GroupConsumerConfig,
    GroupDescription, OffsetSpec, Producer, ProducerConfig,
};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ScratchDir};

/// The topic every measurement uses.
const TOPIC: &str = "group-bench";
/// The group of the rebalance measurements.
const REBALANCE_GROUP: &str = "group-bench-rebalance";
/// How often `DescribeGroup` is polled while a rebalance is timed.
const DESCRIBE_INTERVAL: Duration = Duration::from_millis(5);
/// Bound on one rebalance or join; past it the run fails.
const REBALANCE_DEADLINE: Duration = Duration::from_secs(60);
/// How long a member process gets to exit after SIGTERM.
const MEMBER_STOP_GRACE: Duration = Duration::from_secs(15);
/// Bound on one throughput run without progress.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Records handed to the producer per `send_batch` call.
const CHUNK: u64 = 1000;

#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    /// Partitions of the bench topic.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: u32,
    /// Members of the group.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=20))]
    members: u32,
    /// Runs of each measurement (medians are reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Records produced for the throughput runs (0: skip them).
    #[arg(long, default_value_t = 3_000_000)]
    records: u64,
    /// Value size in bytes of the produced records (keyless).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Session timeout of the members (default: the client's, 10 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    session_timeout: Option<Duration>,
    /// Heartbeat interval of the members (default: the client's, 3 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    heartbeat_interval: Option<Duration>,
    /// Most records one group `poll` returns (default: the client's, 500).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_poll_records: Option<u64>,
    /// Skip the rebalance measurements.
    #[arg(long)]
    no_rebalance: bool,
    #[command(flatten)]
    scratch: ScratchDir,
}

pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    args.scratch.clone().run("group", |dir| async move { measure(&args, &dir).await }).await
}

async fn measure(args: &GroupArgs, dir: &Path) -> anyhow::Result<()> {
    let mut cluster = Cluster::start(dir, 3).await?;
    eprintln!("cluster of 3 brokers up in {}", dir.display());
    let admin = Admin::connect(&cluster.address(1)).await?;
    admin
        .create_topic(TOPIC, args.partitions, 3, vec![("min.insync.replicas".into(), "2".into())])
        .await
        .context("cannot create the bench topic")?;
    cluster.wait_until_healthy(TOPIC).await?;

    if !args.no_rebalance {
        rebalances(args, &cluster, &admin, dir).await?;
    }
    if args.records > 0 {
        throughput(args, &cluster, &admin).await?;
    }
    cluster.stop().await;
    Ok(())
}

/// The rebalance measurements: `runs` clean leaves, then `runs` kills.
async fn rebalances(args: &GroupArgs, cluster: &Cluster, admin: &Admin, dir: &Path) -> anyhow::Result<()> {
    let defaults = GroupConsumerConfig::new("", "");
    let session_timeout = args.session_timeout.unwrap_or(defaults.session_timeout);
    let heartbeat_interval = args.heartbeat_interval.unwrap_or(defaults.heartbeat_interval);
    let mut group = MemberGroup {
        exe: std::env::current_exe().context("cannot find the kmon executable")?,
        dir: dir.to_owned(),
        bootstrap: cluster.address(1),
        session_timeout,
        heartbeat_interval,
        partitions: args.partitions,
        members: Vec::new(),
        spawned: 0,
    };
    let mut joins = Vec::new();
    for _ in 0..args.members {
        group.join(admin).await?;
    }
    eprintln!(
        "{} members joined (session timeout {session_timeout:?}, heartbeat interval {heartbeat_interval:?})",
        args.members
    );

    let mut left = Vec::new();
    let mut killed = Vec::new();
    for (kind, times) in [(Departure::Leave, &mut left), (Departure::Kill, &mut killed)] {
        for run in 1..=args.runs {
            let index = (run as usize - 1) % group.members.len();
            desync(heartbeat_interval).await;
            let rebalance = group.depart(admin, index, kind).await?;
            desync(heartbeat_interval).await;
            let join = group.join(admin).await?;
            eprintln!(
                "run {run}: member {kind}: rebalance {} ms; a new member joined in {} ms",
                rebalance.as_millis(),
                join.as_millis()
            );
            times.push(rebalance);
            joins.push(join);
        }
    }
    group.stop_all().await;

    let settings = format!("session timeout {session_timeout:?}, heartbeat interval {heartbeat_interval:?}");
    let shape = format!("{} members, {} partitions", args.members, args.partitions);
    println!("group rebalance, member left: {} ({shape}, {settings})", stats(&mut left));
    println!("group rebalance, member killed: {} ({shape}, {settings})", stats(&mut killed));
    println!("group join, new member process to stable: {} ({shape}, {settings})", stats(&mut joins));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Departure {
    /// SIGTERM: the member commits and sends LeaveGroup.
    Leave,
    /// SIGKILL: the coordinator waits for the session timeout.
    Kill,
}

impl std::fmt::Display for Departure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Departure::Leave => "left",
            Departure::Kill => "killed",
        })
    }
}

/// A member process and the member id it got.
struct Member {
    child: Child,
    member_id: String,
}

/// The rebalance group's member processes, each `kmon consume --group`.
struct MemberGroup {
    exe: PathBuf,
    dir: PathBuf,
    bootstrap: String,
    session_timeout: Duration,
    heartbeat_interval: Duration,
    partitions: u32,
    members: Vec<Member>,
    /// Members started so far (names their logs).
    spawned: u32,
}

impl MemberGroup {
    /// Starts a member process and waits until the group is stable with it
    /// and every earlier member; returns the time that took.
    async fn join(&mut self, admin: &Admin) -> anyhow::Result<Duration> {
        let before = describe(admin).await?.map_or(-1, |d| d.generation_id);
        let mut expected: BTreeSet<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        self.spawned += 1;
        let log = self.dir.join(format!("member-{}.log", self.spawned));
        let stderr = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let started = Instant::now();
        let child = Command::new(&self.exe)
            .args(["consume", "--bootstrap", &self.bootstrap, "--topic", TOPIC, "--group", REBALANCE_GROUP])
            .args(["--session-timeout", &humantime::format_duration(self.session_timeout).to_string()])
            .args(["--heartbeat-interval", &humantime::format_duration(self.heartbeat_interval).to_string()])
            .env_remove("KMON_BOOTSTRAP")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a member process")?;
        let mut member = Member { child, member_id: String::new() };
        let deadline = started + REBALANCE_DEADLINE;
        let description = loop {
            if let Some(status) = member.child.try_wait()? {
                bail!("member process {} exited ({status}){}", self.spawned, kmon_cluster::log_tail(&log));
            }
            if let Some(d) = describe(admin).await?
                && d.generation_id > before
                && d.state == "Stable"
                && d.members.len() == expected.len() + 1
                && expected.iter().all(|id| d.members.iter().any(|m| &m.member_id == id))
                && owns_all(&d, self.partitions)
            {
                break d;
            }
            if Instant::now() > deadline {
                bail!(
                    "member {} did not join within {REBALANCE_DEADLINE:?}{}",
                    self.spawned,
                    kmon_cluster::log_tail(&log)
                );
            }
            tokio::time::sleep(DESCRIBE_INTERVAL).await;
        };
        let joined = started.elapsed();
        let new = description.members.iter().find(|m| !expected.contains(&m.member_id)).map(|m| m.member_id.clone());
        member.member_id = new.ok_or_else(|| anyhow!("no new member id"))?;
        expected.insert(member.member_id.clone());
        self.members.push(member);
        Ok(joined)
    }

    /// Signals member `index` to leave or kills it; returns the time from
    /// the signal to the survivors owning every partition in a stable
    /// generation.
    async fn depart(&mut self, admin: &Admin, index: usize, how: Departure) -> anyhow::Result<Duration> {
        let before = describe(admin).await?.ok_or_else(|| anyhow!("the group is gone"))?.generation_id;
        let mut member = self.members.remove(index);
        let survivors: BTreeSet<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        let signalled = Instant::now();
        match how {
            Departure::Leave => terminate(&member.child),
            Departure::Kill => member.child.start_kill().context("cannot kill a member")?,
        }
        let deadline = signalled + REBALANCE_DEADLINE;
        let settled = loop {
            if let Some(d) = describe(admin).await?
                && d.generation_id > before
                && d.state == "Stable"
                && d.members.len() == survivors.len()
                && d.members.iter().all(|m| survivors.contains(&m.member_id))
                && owns_all(&d, self.partitions)
            {
                break Instant::now();
            }
            if Instant::now() > deadline {
                bail!("the group did not rebalance within {REBALANCE_DEADLINE:?} after a member {how}");
            }
            tokio::time::sleep(DESCRIBE_INTERVAL).await;
        };
        match tokio::time::timeout(MEMBER_STOP_GRACE, member.child.wait()).await {
            Ok(Ok(status)) if how == Departure::Leave && !status.success() => {
                eprintln!("warning: the member that left exited with {status}");
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!("warning: the member that left did not exit within {MEMBER_STOP_GRACE:?}; killing it");
                let _ = member.child.kill().await;
            }
        }
        Ok(settled - signalled)
    }

    /// SIGTERM to every member (they leave), then wait for them.
    async fn stop_all(mut self) {
        for member in &self.members {
            terminate(&member.child);
        }
        for member in &mut self.members {
            if tokio::time::timeout(MEMBER_STOP_GRACE, member.child.wait()).await.is_err() {
                let _ = member.child.kill().await;
            }
        }
    }
}

/// Waits a random fraction of the heartbeat interval. A rebalance ends
/// right after the last member's heartbeat saw it start, so acting at once
/// after one would always land just after the members' heartbeats, and
/// every rebalance would take a whole heartbeat interval to be noticed.
async fn desync(heartbeat_interval: Duration) {
    let ms = heartbeat_interval.as_millis().max(1) as u64;
    tokio::time::sleep(Duration::from_millis(rand::random_range(0..ms))).await;
}

fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The rebalance group, `None` while the coordinator does not know it.
async fn describe(admin: &Admin) -> anyhow::Result<Option<GroupDescription>> {
    match admin.describe_group(REBALANCE_GROUP).await {
        Ok(d) => Ok(Some(d)),
        Err(err) if err.code() == Some(ErrorCode::GroupIdNotFound) => Ok(None),
        Err(err) => Err(err).context("DescribeGroup failed"),
    }
}

/// Every partition of the bench topic is assigned to a member, once.
fn owns_all(description: &GroupDescription, partitions: u32) -> bool {
    let mut owned = BTreeSet::new();
    for tp in description.members.iter().flat_map(|m| &m.assignment) {
        if tp.topic != TOPIC || !owned.insert(tp.partition) {
            return false;
        }
    }
    owned.len() == partitions as usize
}

/// Produces the records, then alternates plain and group runs.
async fn throughput(args: &GroupArgs, cluster: &Cluster, admin: &Admin) -> anyhow::Result<()> {
    let bootstrap = cluster.address(1);
    let produced = produce(&bootstrap, args.records, args.record_size).await?;
    eprintln!("produced {} records of {} bytes in {:.1} s", args.records, args.record_size, produced.as_secs_f64());
    let mut plain = Vec::new();
    let mut grouped = Vec::new();
    for run in 1..=args.runs {
        let p = plain_run(&bootstrap, admin, args.records).await?;
        eprintln!("run {run}: plain consumer {}", p.describe(args.records, args.record_size));
        plain.push(p);
        let g = group_run(&bootstrap, admin, args, run).await?;
        eprintln!("run {run}: group of {} {}", args.members, g.describe(args.records, args.record_size));
        grouped.push(g);
    }
    let shape = format!("{} records of {} bytes, {} partitions", args.records, args.record_size, args.partitions);
    println!("plain consume (assign): {} ({shape})", ConsumeRun::median(&mut plain, args.records, args.record_size));
    println!(
        "group consume ({} members, auto-commit): {} ({shape})",
        args.members,
        ConsumeRun::median(&mut grouped, args.records, args.record_size)
    );
    Ok(())
}

async fn produce(bootstrap: &str, records: u64, record_size: usize) -> anyhow::Result<Duration> {
    let mut config = ProducerConfig::new(bootstrap);
    config.acks = Acks::All;
    let producer = Producer::connect(config).await?;
    let value: Vec<u8> = (0..record_size).map(|i| b'a' + (i % 26) as u8).collect();
    let start = Instant::now();
    let mut sent = 0;
    while sent < records {
        let n = CHUNK.min(records - sent);
        producer.send_batch(TOPIC, (0..n).map(|_| (None, value.as_slice()))).await?;
        sent += n;
    }
    producer.flush().await.context("producing the bench records failed")?;
    Ok(start.elapsed())
}

/// One throughput run.
#[derive(Debug, Clone, Copy)]
struct ConsumeRun {
    /// Start (connect) to the last record.
    total: Duration,
    /// Start to the first record (for the group: join, sync, offset fetch).
    first_record: Duration,
}

impl ConsumeRun {
    fn steady(&self) -> Duration {
        self.total.saturating_sub(self.first_record)
    }

    /// `R records/s, T MB/s (first record after F ms; from it on: R2 records/s)`
    fn describe(&self, records: u64, record_size: usize) -> String {
        let seconds = self.total.as_secs_f64().max(f64::EPSILON);
        let steady = self.steady().as_secs_f64().max(f64::EPSILON);
        format!(
            "{}, {:.1} MB/s (first record after {} ms; from it on {}, {:.1} MB/s)",
            crate::format_rate(records as f64 / seconds),
            records as f64 * record_size as f64 / 1e6 / seconds,
            self.first_record.as_millis(),
            crate::format_rate(records as f64 / steady),
            records as f64 * record_size as f64 / 1e6 / steady,
        )
    }

    /// The run of median total time, described, with the median of each
    /// figure (total, first record, steady) taken separately.
    fn median(runs: &mut [ConsumeRun], records: u64, record_size: usize) -> String {
        let mid = runs.len() / 2;
        let mut totals: Vec<Duration> = runs.iter().map(|r| r.total).collect();
        let mut firsts: Vec<Duration> = runs.iter().map(|r| r.first_record).collect();
        let mut steadies: Vec<Duration> = runs.iter().map(ConsumeRun::steady).collect();
        totals.sort();
        firsts.sort();
        steadies.sort();
        let median = ConsumeRun { total: totals[mid], first_record: firsts[mid] };
        let seconds = steadies[mid].as_secs_f64().max(f64::EPSILON);
        let all: Vec<String> =
            totals.iter().map(|t| crate::format_rate(records as f64 / t.as_secs_f64().max(f64::EPSILON))).collect();
        format!(
            "median {}, {:.1} MB/s (first record after {} ms; from it on {}, {:.1} MB/s) over {} runs [{}]",
            crate::format_rate(records as f64 / median.total.as_secs_f64().max(f64::EPSILON)),
            records as f64 * record_size as f64 / 1e6 / median.total.as_secs_f64().max(f64::EPSILON),
            median.first_record.as_millis(),
            crate::format_rate(records as f64 / seconds),
            records as f64 * record_size as f64 / 1e6 / seconds,
            runs.len(),
            all.join(", ")
        )
    }
}

/// Reads every record once with the plain consumer (all partitions
/// assigned at the earliest offset).
async fn plain_run(bootstrap: &str, admin: &Admin, records: u64) -> anyhow::Result<ConsumeRun> {
    let start = Instant::now();
    let mut consumer = Consumer::connect(ConsumerConfig::new(bootstrap)).await?;
    let topic = admin.describe_topic(TOPIC).await?;
    for partition in &topic.partitions {
        consumer.assign_at(TOPIC, partition.partition, OffsetSpec::Earliest).await?;
    }
    let mut received = 0u64;
    let mut first_record = None;
    let mut last_progress = Instant::now();
    while received < records {
        let polled = consumer.poll().await?;
        if polled.is_empty() {
            if last_progress.elapsed() > IDLE_TIMEOUT {
                bail!("plain consumer: only {received} of {records} records arrived");
            }
            continue;
        }
        first_record.get_or_insert_with(|| start.elapsed());
        last_progress = Instant::now();
        received += polled.len() as u64;
    }
    Ok(ConsumeRun { total: start.elapsed(), first_record: first_record.unwrap_or_default() })
}

/// Reads every record once with `members` group consumers of a new group
/// (each on its own task); checks the committed offsets afterwards.
async fn group_run(bootstrap: &str, admin: &Admin, args: &GroupArgs, run: u32) -> anyhow::Result<ConsumeRun> {
    let group_id = format!("group-bench-throughput-{run}");
    let received = Arc::new(AtomicU64::new(0));
    let done = CancellationToken::new();
    let start = Instant::now();
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let last = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = Vec::new();
    for _ in 0..args.members {
        let mut config = GroupConsumerConfig::new(bootstrap, group_id.clone());
        config.client_id = "kmon-bench-group".into();
        config.auto_offset_reset = AutoOffsetReset::Earliest;
        if let Some(max) = args.max_poll_records {
            config.max_poll_records = max as usize;
        }
        let (received, done, first, last) = (received.clone(), done.clone(), first.clone(), last.clone());
        let records = args.records;
        tasks.push(tokio::spawn(async move {
            let mut consumer = GroupConsumer::connect(config).await?;
            consumer.subscribe(vec![TOPIC.to_owned()]);
            let mut last_progress = Instant::now();
            loop {
                let polled = tokio::select! {
                    () = done.cancelled() => break,
                    polled = consumer.poll() => polled?,
                };
                if polled.is_empty() {
                    if last_progress.elapsed() > IDLE_TIMEOUT {
                        done.cancel();
                        bail!("a group member got no record for {IDLE_TIMEOUT:?}");
                    }
                    continue;
                }
                last_progress = Instant::now();
                let _ = first.set(Instant::now());
                let total = received.fetch_add(polled.len() as u64, Ordering::Relaxed) + polled.len() as u64;
                if total >= records {
                    let _ = last.set(Instant::now());
                    done.cancel();
                }
            }
            consumer.close().await?;
            anyhow::Ok(())
        }));
    }
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failure = Some(err),
            Err(err) => failure = Some(anyhow!("a group member panicked: {err}")),
        }
    }
    if let Some(err) = failure {
        return Err(err.context(format!("group {group_id}")));
    }
    let (Some(&first), Some(&last)) = (first.get(), last.get()) else {
        bail!("group {group_id}: not every record arrived");
    };
    let got = received.load(Ordering::Relaxed);
    let committed: i64 = admin.fetch_offsets(&group_id, &[]).await?.iter().filter_map(|c| c.offset).sum();
    if got != args.records || committed != args.records as i64 {
        eprintln!(
            "warning: group {group_id}: {got} records returned, committed offsets add up to {committed}, expected {}",
            args.records
        );
    }
    Ok(ConsumeRun { total: last - start, first_record: first - start })
}

/// `median X ms (min Y ms, max Z ms) over N runs [a, b, ...]`
fn stats(times: &mut [Duration]) -> String {
    let all: Vec<String> = times.iter().map(|t| t.as_millis().to_string()).collect();
    times.sort();
    let ms = |d: Duration| d.as_millis();
    format!(
        "median {} ms (min {} ms, max {} ms) over {} runs [{} ms]",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len(),
        all.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use kmon_client::{GroupMemberDescription, TopicPartition};

    use super::*;

    fn group(assignments: &[&[u32]]) -> GroupDescription {
        GroupDescription {
            group_id: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            status: "OK".into(),
            generation_id: 1,
            coordinator_id: 1,
            members: assignments
                .iter()
                .enumerate()
                .map(|(i, owned)| GroupMemberDescription {
                    member_id: format!("m{i}"),
                    group_instance_id: None,
                    client_id: "c".into(),
                    host: "h".into(),
                    assignment: owned.iter().map(|&p| TopicPartition::new(TOPIC, p)).collect(),
                })
                .collect(),
            partitions: Vec::new(),
        }
    }

    #[test]
    fn every_partition_owned_once() {
        assert!(owns_all(&group(&[&[0, 1], &[2, 3]]), 4));
        assert!(!owns_all(&group(&[&[0, 1], &[2]]), 4));
        assert!(!owns_all(&group(&[&[0, 1], &[1, 2, 3]]), 4));
    }

    #[test]
    fn stats_line() {
        let mut times: Vec<Duration> = [2300, 2100, 2500].map(Duration::from_millis).to_vec();
        assert_eq!(stats(&mut times), "median 2300 ms (min 2100 ms, max 2500 ms) over 3 runs [2300, 2100, 2500 ms]");
    }
}
