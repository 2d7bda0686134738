//! `kmon bench startup`: how long a broker takes to start over a large log
//! (recovery reads and CRC-checks every active segment), and how much
//! memory it holds when idle. Writes the log with the broker's own log code,
//! then starts real `kmon broker` processes on it and times the moment each
//! reports ready.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use kmon_broker::BrokerConfig;
use kmon_broker::log::PartitionLog;

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
        anyhow::bail!("{} exists; pass a new directory (it is removed afterwards)", data_dir.display());
    }
    let result = tokio::task::spawn_blocking(move || measure(&args)).await?;
    if !result.as_ref().map(|keep| *keep).unwrap_or(false) {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result.map(|_| ())
}

fn measure(args: &StartupArgs) -> anyhow::Result<bool> {
    let written = write_log(args)?;
    eprintln!("wrote {:.0} MiB of log in {} partitions", written as f64 / (1 << 20) as f64, args.partitions);
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..args.runs {
        let (elapsed, rss_kb) = start_once(&args.data_dir)?;
        times.push(elapsed);
        rss.push(rss_kb);
    }
    let empty = args.data_dir.with_extension("empty");
    let (_, idle_empty_kb) = start_once(&empty)?;
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
    Ok(args.keep)
}

/// Fills `partitions` logs with 100-byte records in 1 MiB batches.
fn write_log(args: &StartupArgs) -> anyhow::Result<u64> {
    let config = BrokerConfig::default();
    let log_config = Arc::new(config.default_log_config());
    std::fs::create_dir_all(&args.data_dir)?;
    let records: Vec<kmon_client::batch::Record> = (0..9000)
        .map(|i| kmon_client::batch::Record {
            key: None,
            value: Bytes::from(format!("{i:0100}")),
            timestamp_ms: 1_700_000_000_000 + i,
            headers: vec![],
        })
        .collect();
    let batch = kmon_client::batch::encode_batch(&records);
    let target = args.size_mb << 20;
    let mut written = 0u64;
    let logs: Vec<PartitionLog> = (0..args.partitions)
        .map(|p| {
            PartitionLog::open("bench", p, &args.data_dir.join(format!("bench-{p}")), log_config.clone())
                .map(|(l, _)| l)
        })
        .collect::<Result<_, _>>()?;
    'fill: loop {
        for log in &logs {
            if written >= target {
                break 'fill;
            }
            log.append(BytesMut::from(&batch[..]), 0)?;
            written += batch.len() as u64;
        }
    }
    for log in &logs {
        log.close()?;
    }
    Ok(written)
}

/// Starts `kmon broker` on `dir`, waits for its ready line, lets it idle a
/// moment, reads its RSS and kills it (SIGKILL: the next start must recover).
fn start_once(dir: &std::path::Path) -> anyhow::Result<(Duration, u64)> {
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
    let mut ready = false;
    for line in BufReader::new(stdout).lines() {
        if line?.starts_with(kmon_broker::READY_PREFIX) {
            ready = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    if !ready {
        let _ = child.kill();
        anyhow::bail!("broker exited before it was ready");
    }
    std::thread::sleep(Duration::from_secs(1));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    child.kill()?;
    child.wait()?;
    Ok((elapsed, rss_kb))
}
