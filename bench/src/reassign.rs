//! `kmon bench reassign`: a scale-up rebalance on a local cluster of real
//! `kmon broker` processes, timed, with acks=all produce latency measured
//! while it copies.
//!
//! Each run: 3 brokers (FD0/UD0, FD1/UD1, FD2/UD2) in a fresh directory; a
//! topic of 12 partitions, RF 3, `min.insync.replicas=2`, filled with
//! `--size-mb` of 1 KiB records; 3 more brokers join (FD0/UD1, FD1/UD2,
//! FD2/UD0); a paced acks=all producer runs throughout; the planner's plan is
//! executed with `--throttle` and followed until nothing is pending.
//!
//! Reported per run and as medians: the bytes the plan copies, the time to
//! complete, the copy rate (bytes ÷ time, summed over the receiving
//! brokers), and the produce latency p50/p99 before and during the
//! reassignment (from the producer's acknowledgements).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use kmon_client::{Acks, Admin, Producer, ProducerConfig};

use crate::cluster::{Cluster, ScratchDir, each_run, median_by};

const TOPIC: &str = "reassign-bench";
/// Bound on one reassignment.
const DEADLINE: Duration = Duration::from_secs(600);

#[derive(Debug, clap::Args)]
pub struct ReassignArgs {
    /// Data in the topic before the brokers are added, MiB.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    size_mb: u64,
    /// Replication throttle of the reassignment, e.g. 20MB/s (per broker
    /// and direction); default: unthrottled.
    #[arg(long, value_parser = kmon_client::admin::parse_rate)]
    throttle: Option<u64>,
    /// Records per second the background acks=all producer sends.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Runs (medians are reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    #[command(flatten)]
    scratch: ScratchDir,
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
struct Run {
    bytes: u64,
    seconds: f64,
    p50_before_ms: f64,
    p99_before_ms: f64,
    p50_during_ms: f64,
    p99_during_ms: f64,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} MiB copied in {:.2} s ({:.1} MiB/s); produce p50/p99 {:.1}/{:.1} ms before, {:.1}/{:.1} ms during",
            self.bytes as f64 / MIB,
            self.seconds,
            self.bytes as f64 / MIB / self.seconds,
            self.p50_before_ms,
            self.p99_before_ms,
            self.p50_during_ms,
            self.p99_during_ms
        )
    }
}

pub async fn run(args: ReassignArgs) -> anyhow::Result<()> {
    args.scratch.clone().run("reassign", |dir| async move {
        let runs = each_run(&dir, args.runs, async |run_dir| measure(&args, run_dir).await).await?;
        let median = |f: fn(&Run) -> f64| median_by(&runs, f);
        println!(
            "median over {} run(s): {:.1} MiB in {:.2} s = {:.1} MiB/s; produce p99 {:.1} ms before, {:.1} ms during (throttle: {})",
            runs.len(),
            median(|r| r.bytes as f64 / MIB),
            median(|r| r.seconds),
            median(|r| r.bytes as f64 / MIB / r.seconds),
            median(|r| r.p99_before_ms),
            median(|r| r.p99_during_ms),
            args.throttle.map_or("none".to_owned(), |t| format!("{:.1} MB/s", t as f64 / 1e6)),
        );
        Ok(())
    })
    .await
}

const MIB: f64 = 1024.0 * 1024.0;

async fn measure(args: &ReassignArgs, dir: &Path) -> anyhow::Result<Run> {
    let mut cluster = Cluster::start(dir, 3).await?;
    let admin = cluster.admin(Some(1)).await?;
    admin.create_topic(TOPIC, 12, 3, vec![("min.insync.replicas".into(), "2".into())]).await?;
    let bootstrap = cluster.address(1);
    let producer =
        Arc::new(Producer::connect(ProducerConfig { acks: Acks::All, ..ProducerConfig::new(bootstrap) }).await?);
    let value = Bytes::from(vec![b'r'; 1024]);
    for i in 0..args.size_mb * 1024 {
        producer.send(TOPIC, Some(Bytes::from(i.to_string())), value.clone()).await?;
    }
    producer.flush().await?;
    cluster.add_brokers(3).await?;

    // Paced acks=all producer; latencies recorded with the phase they fall in.
    let during = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let latencies: Arc<Mutex<(Vec<f64>, Vec<f64>)>> = Arc::default();
    let load = tokio::spawn({
        let (producer, during, stop, latencies) = (producer.clone(), during.clone(), stop.clone(), latencies.clone());
        let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
        async move {
            let mut tick = tokio::time::interval(interval);
            let value = Bytes::from_static(b"probe");
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let sent = Instant::now();
                let Ok(handle) = producer.send(TOPIC, None, value.clone()).await else { continue };
                let (during, latencies) = (during.clone(), latencies.clone());
                tokio::spawn(async move {
                    if handle.wait().await.is_ok() {
                        let ms = sent.elapsed().as_secs_f64() * 1000.0;
                        let mut l = latencies.lock().expect("latencies");
                        if during.load(Ordering::Relaxed) { l.1.push(ms) } else { l.0.push(ms) }
                    }
                });
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;

    let plan = admin.plan_rebalance(&[TOPIC]).await?;
    if plan.moves.is_empty() {
        bail!("the planner moved nothing onto the new brokers");
    }
    during.store(true, Ordering::Relaxed);
    let started = Instant::now();
    admin.execute_reassignment(&plan.moves, args.throttle).await?;
    wait_done(&admin, started).await?;
    let seconds = started.elapsed().as_secs_f64();
    during.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    load.await?;
    producer.flush().await?;
    cluster.stop().await;

    let (mut before, mut while_moving) = std::mem::take(&mut *latencies.lock().expect("latencies"));
    Ok(Run {
        bytes: plan.bytes_to_move,
        seconds,
        p50_before_ms: percentile(&mut before, 0.50),
        p99_before_ms: percentile(&mut before, 0.99),
        p50_during_ms: percentile(&mut while_moving, 0.50),
        p99_during_ms: percentile(&mut while_moving, 0.99),
    })
}

async fn wait_done(admin: &Admin, started: Instant) -> anyhow::Result<()> {
    loop {
        if !admin.reassignment_status().await?.in_progress {
            return Ok(());
        }
        if started.elapsed() > DEADLINE {
            bail!("the reassignment did not finish within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}
