//! `kmon bench chaos --faults N [--seed S] [--keep]`: the long version of
//! the chaos e2e test (issue 16). Three brokers, each in a network
//! namespace of its own, under N seeded random faults (kill/restart,
//! SIGSTOP, isolation, the controller's isolation, 2|1 split, bridge
//! partition, netem, a full disk, a torn segment tail) while acks=all
//! producers write numbered records; then the checker (`kmon_chaos`).
//!
//! Prints the seed first, a line per fault, then the summary: faults,
//! acknowledged, lost (must be 0), duplicates, availability per fault kind
//! and recovery times. Needs root. Exits non-zero when the checker finds a
//! problem.

use std::time::Duration;

use anyhow::bail;

use crate::cluster::ScratchDir;

#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// Faults to inject, one after the other.
    #[arg(long, default_value_t = 300)]
    faults: usize,
    /// Seed of the fault choice (default: from the clock); printed first.
    #[arg(long)]
    seed: Option<u64>,
    /// Shortest and longest time a fault is held, in ms.
    #[arg(long, default_value_t = 1000)]
    min_hold_ms: u64,
    #[arg(long, default_value_t = 3000)]
    max_hold_ms: u64,
    /// Only these fault kinds, comma-separated (default: all): kill-restart,
    /// sigstop, isolate, isolate-controller, split-2|1, bridge, netem,
    /// disk-full, torn-write. For replaying a mix a run found suspect.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kinds: Vec<kmon_chaos::FaultKind>,
    #[command(flatten)]
    scratch: ScratchDir,
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    if let Some(why) = kmon_chaos::net::unsupported() {
        bail!("kmon bench chaos cannot run here: {why}");
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    println!("seed {seed}");
    let exe = std::env::current_exe()?;
    let faults = args.faults;
    let kinds = args.kinds;
    let hold = (Duration::from_millis(args.min_hold_ms), Duration::from_millis(args.max_hold_ms.max(args.min_hold_ms)));
    args.scratch
        .run("chaos", |dir| async move {
            let mut config = kmon_chaos::ChaosConfig::new(exe, dir, faults, seed);
            config.hold = hold;
            if !kinds.is_empty() {
                config.kinds = kinds;
            }
            let report = kmon_chaos::run(config).await?;
            print!("{}", report.summary());
            if !report.green() {
                bail!("the checker found problems (seed {seed}); see above");
            }
            Ok(())
        })
        .await
}

fn parse_kind(name: &str) -> Result<kmon_chaos::FaultKind, String> {
    kmon_chaos::FaultKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
        let known: Vec<&str> = kmon_chaos::FaultKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown fault kind {name:?}; known: {}", known.join(", "))
    })
}
