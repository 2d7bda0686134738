//! `kmon bench startup`: how long a broker takes to start over a large log
//! (recovery reads and CRC-checks every active segment, producer states come
//! back from their snapshot), and how much memory it holds when idle. A real
//! `kmon broker` writes the log (topic `bench`, produced through the client,
//! so its metadata knows the partitions), is SIGKILLed, then new broker
//! processes start on it and each is timed to its ready line. Every start is
//! checked to still hold the whole log: a broker that dropped it would time
//! an empty start.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kmon_client::{Acks, Admin, Producer, ProducerConfig};

#[derive(Debug, clap::Args)]
pub struct StartupArgs {
    /// Where to write the log (created; removed afterwards unless --keep).
    #[arg(long, default_value = "kmon-bench-startup")]
    data_dir: PathBuf,
    /// Size of the log to start over, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mb: u64,
    /// Partitions the log is spread over.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Broker starts to time (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Keep the data directory.
    #[arg(long)]
    keep: bool,
}

pub async fn run(args: StartupArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone();
    if data_dir.exists() {
        bail!("{} exists; pass a new directory (it is removed afterwards)", data_dir.display());
    }
    let result = measure(&args).await;
    if !(result.is_ok() && args.keep) {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}

async fn measure(args: &StartupArgs) -> anyhow::Result<()> {
    let written = write_log(args).await?;
    eprintln!("wrote {:.0} MiB of log in {} partitions", written as f64 / (1 << 20) as f64, args.partitions);
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..args.runs {
        let dir = args.data_dir.clone();
        let (elapsed, rss_kb) = tokio::task::spawn_blocking(move || start_once(&dir, written)).await??;
        times.push(elapsed);
        rss.push(rss_kb);
    }
    let empty = args.data_dir.with_extension("empty");
    let (_, idle_empty_kb) = tokio::task::spawn_blocking({
        let empty = empty.clone();
        move || start_once(&empty, 0)
    })
    .await??;
    let _ = std::fs::remove_dir_all(&empty);
    times.sort();
    rss.sort();
    let median = times[times.len() / 2];
    println!(
        "startup: {:.0} MiB log, {} partitions, median {:.0} ms to ready over {} runs (min {:.0} ms, max {:.0} ms); \
         idle RSS {:.1} MB after start over the log, {:.1} MB empty",
        written as f64 / (1 << 20) as f64,
        args.partitions,
        median.as_secs_f64() * 1000.0,
        times.len(),
        times[0].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
        rss[rss.len() / 2] as f64 / 1024.0,
        idle_empty_kb as f64 / 1024.0,
    );
    Ok(())
}

/// A `kmon broker` on `dir` (ephemeral ports), up to its ready line:
/// the child, its gRPC address and the time it took.
fn start_broker(dir: &Path) -> anyhow::Result<(Child, String, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .args(["broker", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting kmon broker")?;
    let stdout = child.stdout.take().context("broker stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.starts_with(kmon_broker::READY_PREFIX) {
            let ready = kmon_cluster::ReadyLine::parse(&line)?;
            return Ok((child, ready.grpc, started.elapsed()));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!("broker exited before it was ready")
}

/// Has a broker write `size_mb` of 100-byte records to topic `bench`
/// (acks=1, no idempotence: plain bulk data), then SIGKILLs it, so the
/// first timed start recovers an unclean log. Returns the log's bytes.
async fn write_log(args: &StartupArgs) -> anyhow::Result<u64> {
    std::fs::create_dir_all(&args.data_dir)?;
    let dir = args.data_dir.clone();
    let (mut child, grpc, _) = tokio::task::spawn_blocking(move || start_broker(&dir)).await??;
    let result = async {
        Admin::connect(&grpc).await?.create_topic("bench", args.partitions, 1, vec![]).await?;
        let mut config = ProducerConfig::new(grpc.clone());
        config.acks = Acks::Leader;
        config.idempotence = false;
        let producer = Producer::connect(config).await?;
        let value = [b'x'; 100];
        let target = args.size_mb << 20;
        while log_bytes(&args.data_dir) < target {
            for _ in 0..100 {
                producer.send_batch("bench", (0..1000).map(|_| (None, value.as_slice()))).await?;
            }
            producer.flush().await.context("producing the log")?;
        }
        anyhow::Ok(())
    }
    .await;
    child.kill()?;
    child.wait()?;
    result?;
    Ok(log_bytes(&args.data_dir))
}

/// Bytes of the `bench` topic's partition logs under `dir`.
fn log_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("bench-"))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .filter(|f| f.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Starts a broker on `dir`, times its ready line, lets it idle a moment,
/// reads its RSS, checks it still holds the `expected` bytes of log, and
/// kills it (SIGKILL: the next start must recover).
fn start_once(dir: &Path, expected: u64) -> anyhow::Result<(Duration, u64)> {
    let (mut child, _, elapsed) = start_broker(dir)?;
    std::thread::sleep(Duration::from_secs(1));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    child.kill()?;
    child.wait()?;
    let kept = log_bytes(dir);
    if kept < expected {
        bail!(
            "the broker started with {kept} of the {expected} bytes of log it was given: the timing would not be of a start over the log"
        );
    }
    Ok((elapsed, rss_kb))
}
