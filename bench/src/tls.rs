//! `kmon bench tls`: what TLS costs, measured in one run. Two local
//! clusters run side by side, one plain and one as `kmon up --secure` makes
//! it (mutual TLS on every connection, client ↔ broker and broker ↔ broker,
//! and ACLs on); each run produces then consumes the same records on each,
//! plain first then TLS, so both see the same machine load. Medians over
//! the runs, and the cost of TLS in percent of the plain figure, against the
//! target of at most 15 %.
//!
//! Each produce and consume is a `kmon bench produce|consume` child process
//! (TLS is per process in kmon's client: the secure one gets the admin's
//! `KMON_TLS_*`), timed as those benches time themselves.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use kmon_cluster::Secure;

use crate::cluster::{Cluster, ScratchDir, median_by};

/// The target: TLS costs at most this much throughput.
const TARGET_PERCENT: f64 = 15.0;

#[derive(Debug, clap::Args)]
pub struct TlsBenchArgs {
    /// Brokers per cluster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
    brokers: u32,
    /// Records produced and consumed per run and cluster.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Partitions of each run's topic (replication factor: the broker count, at most 3).
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    /// Produce acknowledgement level: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Runs (medians are reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    #[command(flatten)]
    scratch: ScratchDir,
}

/// One `kmon bench produce|consume` summary line, the figures compared.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    megabytes_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Reads `... 162.0 MB/s, latency p50 3.1 ms p99 9.8 ms ...`.
fn parse_summary(line: &str) -> Option<Figures> {
    let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let before = |unit: &str| words.iter().position(|w| *w == unit).and_then(|i| words.get(i.checked_sub(1)?));
    let after = |label: &str| words.iter().position(|w| *w == label).and_then(|i| words.get(i + 1));
    Some(Figures {
        megabytes_per_second: before("MB/s")?.parse().ok()?,
        p50_ms: after("p50")?.parse().ok()?,
        p99_ms: after("p99")?.parse().ok()?,
    })
}

struct Side {
    name: &'static str,
    bootstrap: String,
    /// `KMON_TLS_*` of the client, empty for plain text.
    env: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    produce: [Figures; 2],
    consume: [Figures; 2],
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |x: &Figures| format!("{:.1} MB/s p50 {:.2} ms", x.megabytes_per_second, x.p50_ms);
        write!(
            f,
            "produce plain {} | TLS {}; consume plain {} | TLS {}",
            show(&self.produce[0]),
            show(&self.produce[1]),
            show(&self.consume[0]),
            show(&self.consume[1])
        )
    }
}

pub async fn run(args: TlsBenchArgs) -> anyhow::Result<()> {
    args.scratch.clone().run("tls", |dir| async move { measure(&args, &dir).await }).await
}

fn topic(run: u32) -> String {
    format!("bench-tls-{run}")
}

async fn create_topics(cluster: &mut Cluster, args: &TlsBenchArgs) -> anyhow::Result<()> {
    let admin = cluster.admin(None).await?;
    for run in 0..args.runs {
        admin
            .create_topic(&topic(run), args.partitions, args.brokers.min(3), vec![])
            .await
            .context("cannot create the bench topic")?;
    }
    Ok(())
}

async fn measure(args: &TlsBenchArgs, dir: &Path) -> anyhow::Result<()> {
    let (plain_dir, secure_dir) = (dir.join("plain"), dir.join("secure"));
    for d in [&plain_dir, &secure_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    // Plain first: once this process's client turns TLS on, it stays on.
    let mut plain = Cluster::start(&plain_dir, args.brokers as usize).await?;
    create_topics(&mut plain, args).await?;
    let secure = Secure::prepare(&secure_dir)?;
    secure.use_admin_identity()?;
    let env = secure.admin_env().to_vec();
    let mut tls = Cluster::start_with(&secure_dir, args.brokers as usize, Some(secure)).await?;
    create_topics(&mut tls, args).await?;
    eprintln!(
        "two clusters of {} broker(s) up in {} (plain) and {} (TLS)",
        args.brokers,
        plain_dir.display(),
        secure_dir.display()
    );

    let sides = [
        Side { name: "plain", bootstrap: plain.address(1), env: Vec::new() },
        Side { name: "TLS", bootstrap: tls.address(1), env },
    ];
    let exe = std::env::current_exe().context("cannot find the kmon executable")?;
    let mut runs = Vec::new();
    for run in 0..args.runs {
        let topic = topic(run);
        let records = args.records.to_string();
        let record_size = args.record_size.to_string();
        let mut produce = [None; 2];
        for (i, side) in sides.iter().enumerate() {
            let bench = [
                "produce",
                "--topic",
                &topic,
                "--records",
                &records,
                "--record-size",
                &record_size,
                "--acks",
                &args.acks,
            ];
            produce[i] = Some(child_bench(&exe, side, &bench).await?);
        }
        let mut consume = [None; 2];
        for (i, side) in sides.iter().enumerate() {
            consume[i] = Some(child_bench(&exe, side, &["consume", "--topic", &topic, "--records", &records]).await?);
        }
        let figures = |x: [Option<Figures>; 2]| x.map(|f| f.expect("both sides measured"));
        let measured = Run { produce: figures(produce), consume: figures(consume) };
        println!("run {}: {measured}", run + 1);
        runs.push(measured);
    }
    plain.stop().await;
    tls.stop().await;

    println!(
        "tls: medians of {} runs, {} broker(s) per cluster, {} records of {} bytes, {} partitions, acks={}",
        args.runs, args.brokers, args.records, args.record_size, args.partitions, args.acks
    );
    for (what, pick) in [("produce", 0usize), ("consume", 1usize)] {
        let get = |run: &Run, side: usize| if pick == 0 { run.produce[side] } else { run.consume[side] };
        let mbs = |side| median_by(&runs, |r| get(r, side).megabytes_per_second);
        let p50 = |side| median_by(&runs, |r| get(r, side).p50_ms);
        let p99 = |side| median_by(&runs, |r| get(r, side).p99_ms);
        let cost = (1.0 - mbs(1) / mbs(0).max(f64::EPSILON)) * 100.0;
        let verdict = if cost <= TARGET_PERCENT { "met" } else { "MISSED" };
        println!(
            "  {what}: plain {:.1} MB/s, TLS {:.1} MB/s: TLS costs {cost:.1} % of throughput (target <= {TARGET_PERCENT} %: {verdict}); \
             latency p50 {:.2} -> {:.2} ms, p99 {:.2} -> {:.2} ms",
            mbs(0),
            mbs(1),
            p50(0),
            p50(1),
            p99(0),
            p99(1)
        );
    }
    Ok(())
}

/// Runs `kmon bench ARGS` against `side` and reads its summary line.
async fn child_bench(exe: &PathBuf, side: &Side, args: &[&str]) -> anyhow::Result<Figures> {
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("bench")
        .args(args)
        .env("KMON_BOOTSTRAP", &side.bootstrap)
        .env_remove("KMON_TLS_CA")
        .env_remove("KMON_TLS_CERT")
        .env_remove("KMON_TLS_KEY")
        .envs(side.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = command.output().await.with_context(|| format!("cannot run kmon bench {}", args[0]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("kmon bench {} ({}) failed: {}{}", args[0], side.name, stdout, String::from_utf8_lossy(&out.stderr));
    }
    stdout
        .lines()
        .find(|l| l.starts_with(args[0]))
        .and_then(parse_summary)
        .with_context(|| format!("no summary line in kmon bench {}'s output: {stdout}", args[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_line_of_produce_and_consume() {
        let line = "produce: 1000000 records, 100 bytes each, 1.62M records/s, 162.0 MB/s, \
                    latency p50 3.10 ms p99 9.8 ms p99.9 12.0 ms";
        assert_eq!(parse_summary(line), Some(Figures { megabytes_per_second: 162.0, p50_ms: 3.1, p99_ms: 9.8 }));
        assert_eq!(
            parse_summary("consume: 0 records, 0 bytes each, 0 records/s, 0.0 MB/s, latency p50 n/a p99 n/a"),
            None
        );
    }
}
