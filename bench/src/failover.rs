//! `kmon bench failover`: how long the cluster is unavailable when a broker
//! dies, measured on a local cluster of real `kmon broker` processes.
//!
//! Set-up: N brokers (default 3) on free ports of 127.0.0.1, laid out and
//! started the way `kmon up` does it (`kmon_cluster::spawn`, `kmon_cluster::wait_until_up`),
//! in a fresh data directory. A topic with RF=3 and
//! `min.insync.replicas=2`, and an acks=all producer that sends one record
//! at a time to partition 0 for the whole run.
//!
//! Each run then measures two failovers, restarting the killed broker (same
//! flags, ports and data) and waiting until every broker is alive and every
//! replica back in the ISR before going on:
//!
//! - **Leader failover**: SIGKILL the leader of partition 0 (from
//!   `Metadata`). Measured: from the kill to the first acks=all produce of
//!   partition 0 that succeeds. Probes are raw Produce RPCs sent to every
//!   surviving broker every [`PROBE_INTERVAL`] (so the client's retry
//!   backoff does not blur the figure). Also reported: when the
//!   background producer got its next acknowledgement, i.e. what an
//!   application sees with the client's default retries.
//! - **Controller failover**: SIGKILL the broker that is the Raft leader
//!   (`controller_id`). Measured: from the kill to the first metadata write
//!   that succeeds, a CreateTopic through a surviving broker; a new
//!   attempt starts every [`WRITE_PROBE_INTERVAL`] (distinct topic names,
//!   1 partition, RF=1) while earlier ones are still waiting.
//!
//! Each measurement prints one line, e.g.
//! `leader failover: median 2312 ms (min 2204 ms, max 2450 ms) over 5 runs`.
//! The brokers are killed when the bench ends, also on error or Ctrl-C, and
//! the data directory is removed unless `--keep`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kmon_client::batch::{Record, encode_batch};
use kmon_client::connection::KmonClient;
use kmon_client::{Acks, ClusterMetadata, Producer, ProducerConfig};
use kmon_proto::v1 as pb;

use crate::cluster::{Cluster, RECOVERY_DEADLINE, ScratchDir};

/// The topic the producer and the leader probes write to.
const TOPIC: &str = "failover-bench";
/// How often a produce probe is retried.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// How often a new metadata-write probe starts (each creates a topic, so
/// fewer than the produce probes).
const WRITE_PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// Bound on one failover; past it the run fails.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// Brokers in the local cluster (3 to 9; voters and learners as
    /// `kmon up` assigns them).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(3..=9))]
    brokers: u32,
    /// Failovers of each kind to time (medians are reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    #[command(flatten)]
    scratch: ScratchDir,
}

pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    args.scratch.clone().run("failover", |dir| async move { measure(&args, &dir).await }).await
}

async fn measure(args: &FailoverArgs, dir: &Path) -> anyhow::Result<()> {
    let mut cluster = Cluster::start(dir, args.brokers as usize).await?;
    eprintln!("cluster of {} brokers up in {}", args.brokers, dir.display());

    let admin = cluster.admin(None).await?;
    admin
        .create_topic(TOPIC, 3, 3, vec![("min.insync.replicas".into(), "2".into())])
        .await
        .context("cannot create the bench topic")?;
    cluster.wait_until_healthy(TOPIC).await?;

    let acks = Arc::new(Mutex::new(Vec::new()));
    let producer = BackgroundProducer::start(&cluster.address(1), acks.clone()).await?;

    let mut leader = Vec::new();
    let mut resumed = Vec::new();
    let mut also_controller = 0;
    let mut controller = Vec::new();
    for run in 1..=args.runs {
        producer.wait_for_ack().await?;
        let measured = leader_failover(&mut cluster, &acks).await?;
        eprintln!(
            "run {run}: leader failover {} ms, producer resumed after {} ms{}",
            measured.failover.as_millis(),
            measured.producer_resumed.as_millis(),
            if measured.was_controller { " (the leader was the controller too)" } else { "" }
        );
        leader.push(measured.failover);
        resumed.push(measured.producer_resumed);
        also_controller += u32::from(measured.was_controller);

        producer.wait_for_ack().await?;
        let failover = controller_failover(&mut cluster, run).await?;
        eprintln!("run {run}: controller failover {} ms", failover.as_millis());
        controller.push(failover);
    }
    producer.stop().await;
    cluster.stop().await;

    println!("leader failover: {}; in {also_controller} of them the leader was the controller too", stats(&mut leader));
    println!("leader failover, acks=all producer resumed: {}", stats(&mut resumed));
    println!("controller failover: {}", stats(&mut controller));
    Ok(())
}

/// What one leader failover measured.
struct LeaderFailover {
    /// Kill → first successful acks=all probe.
    failover: Duration,
    /// Kill → the background producer's first acknowledgement after its outage.
    producer_resumed: Duration,
    /// The killed leader was the controller too.
    was_controller: bool,
}

/// Kills partition 0's leader and times the failover.
async fn leader_failover(cluster: &mut Cluster, acks: &Mutex<Vec<Instant>>) -> anyhow::Result<LeaderFailover> {
    let metadata = cluster.admin(None).await?.metadata(&[TOPIC]).await?;
    let leader = partition_leader(&metadata, 0)?;
    let was_controller = i64::from(leader) == i64::from(metadata.controller_id);
    let survivors: Vec<String> = cluster.ids().filter(|&id| id != leader).map(|id| cluster.address(id)).collect();
    let mut probes = Vec::new();
    for address in &survivors {
        probes.push(kmon_client::connection::connect(address).await?);
    }
    let batch = Bytes::from(encode_batch(&[Record {
        key: None,
        value: Bytes::from_static(b"failover probe"),
        timestamp_ms: now_ms(),
        headers: vec![],
    }]));

    let killed_at = cluster.kill(leader).await?;
    let first_ok = first_successful_produce(probes, batch, killed_at).await?;
    let producer_resumed = producer_outage(acks, killed_at, first_ok).await?;
    cluster.restart(leader).await?;
    cluster.wait_until_healthy(TOPIC).await?;
    Ok(LeaderFailover { failover: first_ok - killed_at, producer_resumed, was_controller })
}

/// Kills the Raft leader; returns the time to the first successful
/// metadata write (CreateTopic through a surviving broker).
async fn controller_failover(cluster: &mut Cluster, run: u32) -> anyhow::Result<Duration> {
    let metadata = cluster.admin(None).await?.metadata(&[]).await?;
    let controller = u32::try_from(metadata.controller_id).map_err(|_| anyhow!("no controller"))?;
    let mut admins = Vec::new();
    for id in cluster.ids().filter(|&id| id != controller) {
        admins.push(cluster.admin(Some(id)).await?);
    }

    let killed_at = cluster.kill(controller).await?;
    let deadline = killed_at + FAILOVER_DEADLINE;
    let mut attempts = FuturesUnordered::new();
    let mut next = tokio::time::interval(WRITE_PROBE_INTERVAL);
    let mut started = 0usize;
    let mut last_error = String::from("none");
    let written = loop {
        tokio::select! {
            _ = next.tick() => {
                let admin = admins[started % admins.len()].clone();
                let name = format!("failover-probe-{run}-{started}");
                started += 1;
                attempts.push(async move {
                    admin.create_topic(&name, 1, 1, vec![]).await.map(|_| Instant::now())
                });
            }
            Some(result) = attempts.next() => match result {
                Ok(at) => break at,
                Err(err) => last_error = err.to_string(),
            },
            () = tokio::time::sleep_until(deadline.into()) => {
                bail!("no metadata write succeeded within {FAILOVER_DEADLINE:?} of killing controller {controller} (last error: {last_error})");
            }
        }
    };
    drop(attempts);
    cluster.restart(controller).await?;
    cluster.wait_until_healthy(TOPIC).await?;
    Ok(written - killed_at)
}

/// Sends the probe batch to every broker in `probes`, each retrying every
/// [`PROBE_INTERVAL`] until one succeeds; returns when it did.
async fn first_successful_produce(probes: Vec<KmonClient>, batch: Bytes, since: Instant) -> anyhow::Result<Instant> {
    let last_error = Arc::new(Mutex::new(String::from("none")));
    let mut tasks: FuturesUnordered<_> = probes
        .into_iter()
        .map(|mut client| {
            let batch = batch.clone();
            let last_error = last_error.clone();
            async move {
                loop {
                    let request = pb::ProduceRequest {
                        acks: pb::Acks::All as i32,
                        timeout_ms: FAILOVER_DEADLINE.as_millis() as u32,
                        partitions: vec![pb::PartitionRecords {
                            topic: TOPIC.into(),
                            partition: 0,
                            records: batch.clone(),
                        }],
                    };
                    match client.produce(request).await {
                        Ok(_) => return Instant::now(),
                        Err(status) => *last_error.lock().unwrap_or_else(|p| p.into_inner()) = status.message().into(),
                    }
                    tokio::time::sleep(PROBE_INTERVAL).await;
                }
            }
        })
        .collect();
    tokio::select! {
        Some(at) = tasks.next() => Ok(at),
        () = tokio::time::sleep_until((since + FAILOVER_DEADLINE).into()) => {
            let last = last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
            bail!("no acks=all produce succeeded within {FAILOVER_DEADLINE:?} (last error: {last})")
        }
    }
}

/// The background producer's outage after `killed_at`: the end of the
/// longest gap between its acknowledgements from `killed_at` on. Called
/// once the probes saw the new leader at `recovered`; waits until the
/// producer has an acknowledgement from after then.
async fn producer_outage(
    acks: &Mutex<Vec<Instant>>,
    killed_at: Instant,
    recovered: Instant,
) -> anyhow::Result<Duration> {
    let deadline = recovered + FAILOVER_DEADLINE;
    loop {
        {
            let acks = acks.lock().unwrap_or_else(|p| p.into_inner());
            if acks.last().is_some_and(|&at| at >= recovered)
                && let Some(end) = outage_end(&acks, killed_at)
            {
                return Ok(end - killed_at);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the acks=all producer got no acknowledgement within {FAILOVER_DEADLINE:?} of the new leader's first"
            );
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// The first acknowledgement after the longest gap that starts at or after
/// `since` (the gap from `since` to the first acknowledgement counts).
fn outage_end(acks: &[Instant], since: Instant) -> Option<Instant> {
    let mut previous = since;
    let mut best: Option<(Duration, Instant)> = None;
    for &at in acks.iter().filter(|&&at| at >= since) {
        let gap = at - previous;
        if best.is_none_or(|(longest, _)| gap > longest) {
            best = Some((gap, at));
        }
        previous = at;
    }
    best.map(|(_, at)| at)
}

/// An acks=all producer sending one record at a time to partition 0 and
/// noting when each is acknowledged.
struct BackgroundProducer {
    task: tokio::task::JoinHandle<()>,
    acks: Arc<Mutex<Vec<Instant>>>,
}

impl BackgroundProducer {
    async fn start(bootstrap: &str, acks: Arc<Mutex<Vec<Instant>>>) -> anyhow::Result<Self> {
        let mut config = ProducerConfig::new(bootstrap);
        config.acks = Acks::All;
        config.linger = Duration::ZERO;
        // Keep going through every failover: a batch only fails after this.
        config.delivery_timeout = Duration::from_secs(120);
        let producer = Producer::connect(config).await?;
        let noted = acks.clone();
        let task = tokio::spawn(async move {
            loop {
                let sent = producer.send_to(TOPIC, Some(0), None, b"background record").await;
                match sent {
                    Ok(handle) => {
                        if handle.wait().await.is_ok() {
                            noted.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
                        }
                    }
                    Err(_) => tokio::time::sleep(PROBE_INTERVAL).await,
                }
            }
        });
        Ok(BackgroundProducer { task, acks })
    }

    /// Waits for an acknowledgement after now (the producer is healthy).
    async fn wait_for_ack(&self) -> anyhow::Result<()> {
        let now = Instant::now();
        let deadline = now + RECOVERY_DEADLINE;
        loop {
            if self.acks.lock().unwrap_or_else(|p| p.into_inner()).last().is_some_and(|&at| at > now) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the acks=all producer got no acknowledgement within {RECOVERY_DEADLINE:?}");
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn partition_leader(metadata: &ClusterMetadata, partition: u32) -> anyhow::Result<u32> {
    let topic = metadata.topics.iter().find(|t| t.name == TOPIC).ok_or_else(|| anyhow!("no topic {TOPIC}"))?;
    let p = topic
        .partitions
        .iter()
        .find(|p| p.partition == partition)
        .ok_or_else(|| anyhow!("no partition {partition}"))?;
    u32::try_from(p.leader).map_err(|_| anyhow!("partition {partition} has no leader"))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `median X ms (min Y ms, max Z ms) over N runs`
fn stats(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_millis();
    format!(
        "median {} ms (min {} ms, max {} ms) over {} runs",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_ends_after_the_longest_gap() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        // A stale ack 1 ms after the kill, then 2 s of silence.
        let acks = [at(0), at(1), at(2001), at(2002), at(2003)];
        assert_eq!(outage_end(&acks, at(0)), Some(at(2001)));
        // No ack before the outage ends.
        assert_eq!(outage_end(&[at(1500), at(1501)], at(0)), Some(at(1500)));
        assert_eq!(outage_end(&[], at(0)), None);
    }

    #[test]
    fn stats_line() {
        let mut times: Vec<Duration> = [2300, 2100, 2500, 2200, 2400].map(Duration::from_millis).to_vec();
        assert_eq!(stats(&mut times), "median 2300 ms (min 2100 ms, max 2500 ms) over 5 runs");
    }
}
