//! `kmon bench roll-stall`: how much one partition's segment rolls (an
//! fdatasync of the sealed segment plus two index fsyncs, under that
//! partition's lock) cost the produce requests of another partition.
//!
//! Each run: one `kmon broker` in a fresh directory; topic `roll-stall-a`
//! (1 partition, `segment.bytes` = `--segment-bytes`, 1 MiB by default) and
//! topic `roll-stall-b` (1 partition). A closed-loop acks=all producer to B
//! sends one record per request and waits for its acknowledgement:
//! `--warmup` seconds alone (the baseline), then `--seconds` while a second
//! producer writes A at `--rate-mb` MiB/s, so A rolls a segment every
//! `segment.bytes`. Reported per run and as medians: B's records/s and its
//! request latency p50/p99/max with A rolling (and p99 alone), and how many
//! segments A rolled.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use kmon_client::{Acks, Producer, ProducerConfig};

use crate::cluster::{Cluster, ScratchDir, each_run, median_by};

const ROLLING: &str = "roll-stall-a";
const PROBED: &str = "roll-stall-b";
/// Records written to A, bytes.
const A_RECORD: usize = 1024;

#[derive(Debug, clap::Args)]
pub struct RollStallArgs {
    /// `segment.bytes` of topic A: it rolls a segment every this many bytes.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..))]
    segment_bytes: u64,
    /// MiB/s written to topic A (paced; acks=1).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    rate_mb: u64,
    /// Seconds B is measured while A rolls.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Seconds B is measured alone first (the baseline).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    warmup: u64,
    /// Runs (medians are reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    #[command(flatten)]
    scratch: ScratchDir,
}

/// One run's figures; latencies in ms.
#[derive(Debug, Clone, Copy)]
struct Run {
    alone_p99: f64,
    records_per_s: f64,
    p50: f64,
    p99: f64,
    max: f64,
    rolls: usize,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "B {:.0} records/s, latency p50/p99/max {:.2}/{:.2}/{:.2} ms while A rolled {} segment(s) \
                         (p99 alone {:.2} ms)",
            self.records_per_s, self.p50, self.p99, self.max, self.rolls, self.alone_p99
        )
    }
}

pub async fn run(args: RollStallArgs) -> anyhow::Result<()> {
    args.scratch
        .clone()
        .run("roll-stall", |dir| async move {
            let runs = each_run(&dir, args.runs, async |run_dir| measure(&args, run_dir).await).await?;
            let median = |f: fn(&Run) -> f64| median_by(&runs, f);
            println!(
                "median over {} run(s): B {:.0} records/s, p50/p99/max {:.2}/{:.2}/{:.2} ms while A rolls \
             ({:.0} segment(s) per run; p99 alone {:.2} ms)",
                runs.len(),
                median(|r| r.records_per_s),
                median(|r| r.p50),
                median(|r| r.p99),
                median(|r| r.max),
                median(|r| r.rolls as f64),
                median(|r| r.alone_p99),
            );
            Ok(())
        })
        .await
}

async fn measure(args: &RollStallArgs, dir: &Path) -> anyhow::Result<Run> {
    let mut cluster = Cluster::start(dir, 1).await?;
    let admin = cluster.admin(Some(1)).await?;
    admin.create_topic(ROLLING, 1, 1, vec![("segment.bytes".into(), args.segment_bytes.to_string())]).await?;
    admin.create_topic(PROBED, 1, 1, vec![]).await?;
    let bootstrap = cluster.address(1);

    // B: one record per request, the next sent when the last is acknowledged.
    let probe = Producer::connect(ProducerConfig {
        acks: Acks::All,
        linger: Duration::ZERO,
        ..ProducerConfig::new(bootstrap.clone())
    })
    .await?;
    let value = Bytes::from_static(&[b'b'; 100]);
    let alone = probe_for(&probe, &value, Duration::from_secs(args.warmup)).await?;

    // A: paced writer, started only now so the baseline has it idle.
    let writer = Arc::new(
        Producer::connect(ProducerConfig { acks: Acks::Leader, ..ProducerConfig::new(bootstrap.clone()) }).await?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (writer, stop) = (writer.clone(), stop.clone());
        let per_second = (args.rate_mb << 20) as f64 / A_RECORD as f64;
        async move {
            let value = vec![b'a'; A_RECORD];
            let start = Instant::now();
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_secs_f64() * per_second) as u64;
                if due <= sent {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let records = (sent..due).map(|_| (None, &value[..]));
                writer.send_batch(ROLLING, records).await?;
                sent = due;
            }
            anyhow::Ok(())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rolling = probe_for(&probe, &value, Duration::from_secs(args.seconds)).await?;
    stop.store(true, Ordering::Relaxed);
    load.await??;
    writer.flush().await?;
    let rolls = count_segments(&dir.join("broker-1").join(format!("{ROLLING}-0")))?.saturating_sub(1);
    cluster.stop().await;

    let (mut alone, mut latencies) = (alone, rolling);
    Ok(Run {
        alone_p99: percentile(&mut alone, 0.99),
        records_per_s: latencies.len() as f64 / args.seconds as f64,
        p50: percentile(&mut latencies, 0.50),
        p99: percentile(&mut latencies, 0.99),
        max: percentile(&mut latencies, 1.0),
        rolls,
    })
}

/// Sends one record at a time to B for `length`; each request's latency, ms.
async fn probe_for(probe: &Producer, value: &Bytes, length: Duration) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < length {
        let sent = Instant::now();
        probe.send(PROBED, None, value.clone()).await?.wait().await?;
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

fn count_segments(dir: &Path) -> anyhow::Result<usize> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    Ok(entries.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().ends_with(".log")).count())
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}
