//! Issue 16: fault injection with real network partitions. Three brokers,
//! each in a network namespace of its own, take ≥ 30 seeded random faults
//! (kill/restart, SIGSTOP, isolation, the controller's isolation, 2|1
//! split, bridge partition, netem, a full tmpfs disk, a torn segment tail)
//! while acks=all producers (min.insync.replicas=2, RF=3) write numbered
//! records; then the checker must be green: nothing acknowledged lost, no
//! duplicates, order kept, replicas byte-identical below the high
//! watermark, metrics and `kmon status` agreeing. A failure prints the seed
//! and the fault history; `KMON_CHAOS_SEED=S` replays a seed.
//!
//! Needs root (namespaces, nftables, tc, tmpfs): elsewhere it prints why
//! and passes. Processes, namespaces, the bridge and the tmpfs go away on
//! drop, also on panic.

use std::time::{Duration, Instant};

/// Faults per run. The issue asks for them within 3 minutes; the time is
/// printed (a figure, not an assertion: a loaded CI machine is slower).
const FAULTS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_thirty_faults() {
    if let Some(why) = kmon_chaos::net::unsupported() {
        eprintln!("SKIPPED chaos_e2e: {why}");
        return;
    }
    let seed = std::env::var("KMON_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    });
    eprintln!("chaos_e2e: seed {seed} (replay with KMON_CHAOS_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        kmon_chaos::ChaosConfig::new(env!("CARGO_BIN_EXE_kmon").into(), dir.path().to_owned(), FAULTS, seed);
    config.hold = (Duration::from_millis(800), Duration::from_millis(1500));
    config.recovery_deadline = Duration::from_secs(20);
    let started = Instant::now();
    let outcome = kmon_chaos::run(config).await;
    let elapsed = started.elapsed();
    // A red run keeps its broker logs and segments for whoever looks into it.
    let red = outcome.as_ref().map_or(true, |report| !report.green());
    let dir = if red { Some(dir.keep()) } else { None };
    if let Some(dir) = &dir {
        eprintln!("chaos_e2e: broker logs and data kept in {}", dir.display());
    }
    let report = outcome.unwrap_or_else(|err| panic!("chaos run failed (seed {seed}): {err:#}"));
    eprint!("{}", report.summary());
    eprintln!("chaos_e2e: {FAULTS} faults in {:.1} s", elapsed.as_secs_f64());
    assert!(report.green(), "the checker found problems; seed {seed}, history and problems above");
    assert_eq!(report.history.len(), FAULTS);
    assert_eq!(report.verdict.lost, 0, "seed {seed}");
    assert!(report.verdict.acked > 1000, "too few acknowledged records to mean anything: {}", report.verdict.acked);
}
