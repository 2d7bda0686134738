//! `kmon bench tui`: what `kmon tui` costs on a large cluster, and how fast
//! it answers keys.
//!
//! Set-up: `--brokers` `kmon broker` processes (default 3) on free ports of
//! 127.0.0.1, started as `kmon up` starts them, in a fresh data directory;
//! `--topics` topics of `--partitions` partitions each, replication factor
//! 1 (default 100 × 100 = 10,000 partitions); one record in every
//! partition; `--groups` groups (default 100), group *i* with an admin
//! commit on every partition of topic *i mod topics* (offset 1, or 0 — lag
//! 1 — for every tenth group). While measuring, a producer sends
//! `--produce-rate` records/s (keyless, round-robin over the topics) so
//! rates and lag move and every refresh redraws something.
//!
//! `kmon tui --refresh R` then runs in a detached tmux session of
//! `--width` × `--height` cells, as the pane's own process (so its pid is
//! the pane's), with `--timings` logging to a file (see
//! `kmon_tui::timings`).
//!
//! Measured:
//!
//! - **CPU**: `utime + stime` of the TUI process from `/proc/PID/stat`,
//!   sampled every second; the share of one core per one-second sample
//!   (median, mean, max), first `--duration` on the overview (the view it
//!   opens on), then `--view-duration` on each other view.
//! - **Memory**: `VmRSS` from `/proc/PID/status` at each sample (median,
//!   max) and `VmHWM` (peak) at the end.
//! - **Input latency**, `--keys` view switches at random moments (0.3–1.3 s
//!   apart, so they land at every phase of the refresh): *in the TUI*, from
//!   its input thread reading the key to the end of the first draw after
//!   the reducer handled it, i.e. the new view written and flushed to the
//!   terminal (its `key` timing lines); *outside*, from `tmux send-keys`
//!   to `tmux capture-pane` first showing the new view (polled without
//!   pause; includes tmux's own work and the capture, so an upper bound).
//! - **RPCs**: the TUI's own count per refresh (its `refresh` timing
//!   lines: RPCs sent by the client library plus `ListAgents`), and the
//!   brokers' `kafka_network_requestmetrics_requests_total` by request type
//!   over the overview window, per refresh: the TUI's calls and, for
//!   `DescribeGroups`, the calls between coordinators it causes.
//!
//! Brokers, producer and tmux are stopped when the bench ends, also on
//! error or Ctrl-C, and the data directory is removed unless `--keep`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use kmon_client::{Admin, Producer, ProducerConfig, TopicPartition};
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ScratchDir, median_by};

/// Bound on the set-up steps that wait for the cluster (leaders, groups,
/// the first screen).
const SETUP_DEADLINE: Duration = Duration::from_secs(120);
/// Refreshes left to run before measuring (connections made, history
/// filled, allocator warm).
const WARM_UP: Duration = Duration::from_secs(5);
/// Bound on one key's screen change.
const KEY_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct TuiBenchArgs {
    /// Brokers of the local cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=5))]
    brokers: u32,
    /// Topics (replication factor 1).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    topics: u32,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: u32,
    /// Consumer groups with committed offsets.
    #[arg(long, default_value_t = 100)]
    groups: u32,
    /// `kmon tui --refresh`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    refresh: Duration,
    /// Measurement on the overview.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Measurement on each other view (0s: skip them).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    view_duration: Duration,
    /// View switches timed for input latency.
    #[arg(long, default_value_t = 40)]
    keys: u32,
    /// Records/s produced while measuring (0: none).
    #[arg(long, default_value_t = 1000)]
    produce_rate: u64,
    /// Terminal width of the tmux session.
    #[arg(long, default_value_t = 200)]
    width: u16,
    /// Terminal height of the tmux session.
    #[arg(long, default_value_t = 50)]
    height: u16,
    #[command(flatten)]
    scratch: ScratchDir,
}

pub async fn run(args: TuiBenchArgs) -> anyhow::Result<()> {
    if !Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
        bail!("kmon bench tui drives the TUI under tmux, which is not installed");
    }
    args.scratch.clone().run("tui", |dir| async move { measure(&args, &dir).await }).await
}

fn topic_name(i: u32) -> String {
    format!("tui-bench-{i:03}")
}

async fn measure(args: &TuiBenchArgs, dir: &Path) -> anyhow::Result<()> {
    let mut cluster = Cluster::start(dir, args.brokers as usize).await?;
    let bootstrap = cluster.address(1);
    let admin = cluster.admin(Some(1)).await?;
    let total = args.topics * args.partitions;
    eprintln!("{} broker(s) up in {}; creating {total} partitions", args.brokers, dir.display());
    let started = Instant::now();
    for i in 0..args.topics {
        admin.create_topic(&topic_name(i), args.partitions, 1, Vec::new()).await?;
    }
    wait_for_leaders(&admin, total).await?;
    eprintln!("{total} partitions led after {:.1} s", started.elapsed().as_secs_f64());

    let producer = Producer::connect(ProducerConfig::new(bootstrap.clone())).await?;
    for i in 0..args.topics {
        for p in 0..args.partitions {
            producer.send_to(&topic_name(i), Some(p), None, b"tui-bench").await?;
        }
    }
    producer.flush().await.context("cannot write the first records")?;
    commit_groups(&admin, args).await?;
    eprintln!("{} groups committed; starting kmon tui", args.groups);

    let stop_producing = CancellationToken::new();
    let background = tokio::spawn(produce(producer, args.topics, args.produce_rate, stop_producing.clone()));
    let timings = dir.join("timings.log");
    let tmux = Tmux::start(args, &bootstrap, &timings)?;
    let result = measure_tui(args, &tmux, &admin, &timings, total).await;
    tmux.quit();
    stop_producing.cancel();
    let _ = background.await;
    cluster.stop().await;
    result
}

async fn wait_for_leaders(admin: &Admin, total: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETUP_DEADLINE;
    loop {
        let metadata = admin.metadata(&[]).await?;
        let led = metadata
            .topics
            .iter()
            .filter(|t| t.name.starts_with("tui-bench-"))
            .flat_map(|t| &t.partitions)
            .filter(|p| p.leader >= 0)
            .count();
        if led == total as usize {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {led} of {total} partitions have a leader after {SETUP_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Group *i* commits on every partition of topic *i mod topics*; every
/// tenth leaves lag 1. Waits until `DescribeGroups` shows them all.
async fn commit_groups(admin: &Admin, args: &TuiBenchArgs) -> anyhow::Result<()> {
    for g in 0..args.groups {
        let topic = topic_name(g % args.topics);
        let offset = if g % 10 == 0 { 0 } else { 1 };
        let offsets: BTreeMap<TopicPartition, i64> =
            (0..args.partitions).map(|p| (TopicPartition::new(&topic, p), offset)).collect();
        // The offsets topic's followers may still be catching up with the
        // creation of 10,000 partitions (NOT_ENOUGH_REPLICAS): retry.
        let deadline = Instant::now() + SETUP_DEADLINE;
        while let Err(err) = admin.reset_offsets(&format!("tui-bench-group-{g:03}"), &offsets).await {
            if Instant::now() > deadline {
                return Err(err).context("cannot commit the groups' offsets");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let deadline = Instant::now() + SETUP_DEADLINE;
    loop {
        let described = admin.describe_groups(&[]).await?;
        let seen = described.groups.iter().filter(|g| g.group_id.starts_with("tui-bench-group-")).count();
        if seen == args.groups as usize && described.unavailable.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("DescribeGroups shows {seen} of {} groups ({:?})", args.groups, described.unavailable);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Keyless records at `rate`/s, round-robin over the topics, in 10 ms steps.
async fn produce(producer: Producer, topics: u32, rate: u64, stop: CancellationToken) {
    if rate == 0 {
        return;
    }
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let topic = topic_name((sent % u64::from(topics)) as u32);
            if let Err(err) = producer.send_to(&topic, None, None, b"tui-bench-live").await {
                eprintln!("background producer: {err}");
                return;
            }
            sent += 1;
        }
    }
    let _ = producer.flush().await;
}

/// The TUI under a private tmux server; killed on drop.
struct Tmux {
    socket: String,
    pid: u32,
}

impl Tmux {
    fn start(args: &TuiBenchArgs, bootstrap: &str, timings: &Path) -> anyhow::Result<Tmux> {
        let exe = std::env::current_exe().context("cannot find the kmon executable")?;
        let mut tmux = Tmux { socket: format!("kmon-bench-tui-{}", std::process::id()), pid: 0 };
        // `exec`: the pane's process is kmon itself, not a shell around it.
        let command = format!(
            "exec {} tui --bootstrap {bootstrap} --refresh {} --timings {}",
            exe.display(),
            humantime::format_duration(args.refresh),
            timings.display()
        );
        let (width, height) = (args.width.to_string(), args.height.to_string());
        let out = tmux.run(&["new-session", "-d", "-s", "t", "-x", &width, "-y", &height, &command])?;
        if !out.status.success() {
            bail!("tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
        }
        // The pane lives on after kmon exits, so a failure shows on screen.
        tmux.run(&["set-option", "-t", "t", "remain-on-exit", "on"])?;
        let pid = tmux.display("#{pane_pid}")?;
        tmux.pid = pid.parse().with_context(|| format!("tmux pane pid {pid:?}"))?;
        // Until the pane's shell has exec'd, the pid runs tmux or sh.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let running = std::fs::read_link(format!("/proc/{}/exe", tmux.pid)).unwrap_or_default();
            if running == exe {
                break;
            }
            if Instant::now() > deadline {
                bail!("the pane runs {}, not {}; screen:\n{}", running.display(), exe.display(), tmux.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(tmux)
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().context("cannot run tmux")
    }

    fn display(&self, format: &str) -> anyhow::Result<String> {
        Ok(String::from_utf8_lossy(&self.run(&["display-message", "-p", "-t", "t", format])?.stdout).trim().to_owned())
    }

    fn send(&self, key: &str) -> anyhow::Result<()> {
        let out = self.run(&["send-keys", "-t", "t", key])?;
        if !out.status.success() {
            bail!("tmux send-keys {key}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    async fn wait_screen(&self, what: &str, check: impl Fn(&str) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + SETUP_DEADLINE;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}; screen:\n{screen}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn quit(&self) {
        let _ = self.send("q");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{}", self.pid)).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// One process's CPU time (clock ticks) and resident memory (kB).
#[derive(Debug, Clone, Copy)]
struct Usage {
    at: Instant,
    ticks: u64,
    rss_kb: u64,
}

fn usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("the TUI exited")?;
    // Fields after the command name (which may hold spaces) in parentheses;
    // utime and stime are fields 14 and 15, i.e. 12 and 13 after it.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| anyhow!("bad /proc stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    Ok(Usage { at: Instant::now(), ticks, rss_kb: status_kb(pid, "VmRSS:")? })
}

fn status_kb(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("the TUI exited")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU share of one core per one-second sample (%), and RSS samples (MB).
#[derive(Debug, Default)]
struct Window {
    cpu: Vec<f64>,
    rss_mb: Vec<f64>,
    /// Over the whole window (%).
    cpu_mean: f64,
}

async fn sample(pid: u32, length: Duration, hz: f64) -> anyhow::Result<Window> {
    let first = usage(pid)?;
    let mut previous = first;
    let mut window = Window::default();
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
    while previous.at.duration_since(first.at) + Duration::from_millis(500) < length {
        tick.tick().await;
        let now = usage(pid)?;
        let seconds = now.at.duration_since(previous.at).as_secs_f64();
        window.cpu.push((now.ticks - previous.ticks) as f64 / hz / seconds * 100.0);
        window.rss_mb.push(now.rss_kb as f64 / 1024.0);
        previous = now;
    }
    let seconds = previous.at.duration_since(first.at).as_secs_f64().max(f64::EPSILON);
    window.cpu_mean = (previous.ticks - first.ticks) as f64 / hz / seconds * 100.0;
    Ok(window)
}

/// The request types a TUI refresh may cause (the brokers' own traffic —
/// replication, the coordinators' offset lookups — and the bench's
/// producer are left out).
const TUI_REQUESTS: [&str; 5] = ["Metadata", "DescribeGroups", "ListGroups", "FindCoordinator", "PlanRebalance"];

/// A view: the key that shows it, its name, and a test for text only it
/// shows.
type View = (&'static str, &'static str, fn(&str) -> bool);

/// Every view of the TUI.
const VIEWS: [View; 6] = [
    ("1", "overview", |s| s.contains("Brokers ") && s.contains(" alive")),
    ("2", "topics", |s| s.contains(" Topics (")),
    ("3", "groups", |s| s.contains(" Consumer groups (")),
    ("4", "balance", |s| s.contains("Two-domain rule")),
    ("5", "nodes", |s| s.contains("No node agent") || s.contains(" Nodes (")),
    ("6", "alerts", |s| s.contains("newest first") || s.contains("none firing")),
];

async fn measure_tui(
    args: &TuiBenchArgs,
    tmux: &Tmux,
    admin: &Admin,
    timings: &Path,
    total: u32,
) -> anyhow::Result<()> {
    let hz = clock_ticks_per_second();
    // Every partition, `__consumer_offsets`' included.
    let all: usize = admin.metadata(&[]).await?.topics.iter().map(|t| t.partitions.len()).sum();
    let marker = format!("partitions {all}");
    tmux.wait_screen("the overview with every partition", |s| s.contains("LIVE") && s.contains(&marker)).await?;
    tokio::time::sleep(WARM_UP).await;

    let metrics: Vec<String> = admin.metadata(&[]).await?.brokers.iter().map(|b| b.metrics_address.clone()).collect();
    let requests_before = broker_requests(&metrics).await?;
    let refreshes_before = read_timings(timings).refreshes.len();
    let overview = sample(tmux.pid, args.duration, hz).await?;
    let requests_after = broker_requests(&metrics).await?;
    let log = read_timings(timings);
    let refreshes = (log.refreshes.len() - refreshes_before).max(1);

    let shape = format!(
        "{} broker(s), {total} partitions ({} topics × {}, RF 1), {} groups, refresh {}, {}×{} terminal",
        args.brokers,
        args.topics,
        args.partitions,
        args.groups,
        humantime::format_duration(args.refresh),
        args.width,
        args.height
    );
    println!("tui bench: {shape}");
    print_window("overview", &overview, args.duration);
    let mut views = Vec::new();
    if !args.view_duration.is_zero() {
        for (key, name, shows) in &VIEWS[1..] {
            tmux.send(key)?;
            tmux.wait_screen(name, shows).await?;
            let window = sample(tmux.pid, args.view_duration, hz).await?;
            print_window(name, &window, args.view_duration);
            views.push(window);
        }
        tmux.send("1")?;
        tmux.wait_screen("overview", VIEWS[0].2).await?;
    }

    let keys_before = read_timings(timings).keys.len();
    let mut outside = Vec::new();
    for i in 0..args.keys as usize {
        // Overview → another view → overview …: every key changes the view.
        let (key, name, shows) = if i % 2 == 0 { VIEWS[1 + (i / 2) % 5] } else { VIEWS[0] };
        tokio::time::sleep(Duration::from_millis(rand::random_range(300..1300))).await;
        let sent = Instant::now();
        tmux.send(key)?;
        loop {
            if shows(&tmux.screen()) {
                outside.push(sent.elapsed());
                break;
            }
            if sent.elapsed() > KEY_DEADLINE {
                bail!("key {key}: the {name} view did not show within {KEY_DEADLINE:?}");
            }
        }
    }
    let peak_mb = status_kb(tmux.pid, "VmHWM:")? as f64 / 1024.0;
    let log = read_timings(timings);
    let mut inside: Vec<Duration> = log.keys[keys_before..].to_vec();

    let mut rss: Vec<f64> = overview.rss_mb.iter().chain(views.iter().flat_map(|v| &v.rss_mb)).copied().collect();
    println!(
        "tui memory: VmRSS median {:.1} MB, max {:.1} MB over every sample; VmHWM (peak) {peak_mb:.1} MB",
        median_f64(&mut rss),
        rss.iter().copied().fold(0.0, f64::max)
    );
    println!("tui input, key read → frame flushed (in the TUI): {}", durations(&mut inside));
    println!("tui input, tmux send-keys → screen shows the view: {}", durations(&mut outside));
    let mut gathers: Vec<Duration> = log.refreshes.iter().map(|(d, _)| *d).collect();
    let mut rpcs: Vec<f64> = log.refreshes.iter().map(|(_, r)| *r as f64).collect();
    let max_rpcs = rpcs.iter().copied().fold(0.0, f64::max);
    println!(
        "tui refresh: gather (wall) {}; RPCs per refresh median {} max {max_rpcs} ({} refreshes)",
        durations(&mut gathers),
        median_f64(&mut rpcs),
        log.refreshes.len()
    );
    let mut draws = log.draws.clone();
    let mut data = log.data.clone();
    println!("tui draw (render + write): {}", durations(&mut draws));
    println!("tui absorbing a refresh (reducer): {}", durations(&mut data));
    let per_refresh: Vec<String> = requests_after
        .iter()
        .filter(|(request, _)| TUI_REQUESTS.contains(&request.as_str()))
        .filter_map(|(request, after)| {
            let delta = after - requests_before.get(request).copied().unwrap_or(0.0);
            (delta > 0.0).then(|| format!("{request} {:.2}", delta / refreshes as f64))
        })
        .collect();
    println!(
        "broker requests per TUI refresh (all brokers, overview window, {refreshes} refreshes): {}",
        per_refresh.join(", ")
    );
    Ok(())
}

fn print_window(name: &str, window: &Window, length: Duration) {
    let mut cpu = window.cpu.clone();
    let max = cpu.iter().copied().fold(0.0, f64::max);
    println!(
        "tui cpu, {name}: median {:.2} % of a core per 1 s sample (mean {:.2} %, max {max:.1} %, over {} s)",
        median_f64(&mut cpu),
        window.cpu_mean,
        length.as_secs()
    );
}

/// The lines of the TUI's timings file.
#[derive(Debug, Default)]
struct TimingsLog {
    keys: Vec<Duration>,
    draws: Vec<Duration>,
    data: Vec<Duration>,
    /// Gather time and RPCs.
    refreshes: Vec<(Duration, u64)>,
}

fn read_timings(path: &Path) -> TimingsLog {
    let mut log = TimingsLog::default();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let mut words = line.split_whitespace();
        let (Some(kind), Some(Ok(us))) = (words.next(), words.next().map(str::parse::<u64>)) else { continue };
        let took = Duration::from_micros(us);
        match kind {
            "key" => log.keys.push(took),
            "draw" => log.draws.push(took),
            "data" => log.data.push(took),
            "refresh" => {
                let rpcs = words.find_map(|w| w.strip_prefix("rpcs=")).and_then(|n| n.parse().ok()).unwrap_or(0);
                log.refreshes.push((took, rpcs));
            }
            _ => {}
        }
    }
    log
}

/// `kafka_network_requestmetrics_requests_total` by request type, summed
/// over the brokers.
async fn broker_requests(metrics: &[String]) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for address in metrics {
        let samples =
            kmon_tui::prom::scrape(address, &["kafka_network_requestmetrics_requests_total"], Duration::from_secs(10))
                .await
                .map_err(|e| anyhow!("scraping {address}: {e}"))?;
        for s in samples.iter().filter(|s| s.name == "kafka_network_requestmetrics_requests_total") {
            if let Some(request) = s.label("request") {
                *out.entry(request.to_owned()).or_default() += s.value;
            }
        }
    }
    Ok(out)
}

fn median_f64(values: &mut [f64]) -> f64 {
    median_by(values, |v| *v)
}

/// `median X ms, p90 …, max … (N)`.
fn durations(values: &mut [Duration]) -> String {
    if values.is_empty() {
        return "none".into();
    }
    values.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rank = |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    format!(
        "median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({} samples)",
        ms(values[values.len() / 2]),
        ms(rank(0.9)),
        ms(values[values.len() - 1]),
        values.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timings_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        std::fs::write(&path, "key 1500\ndraw 300\nrefresh 40000 rpcs=4\ndata 20\nbad\n").unwrap();
        let log = read_timings(&path);
        assert_eq!(log.keys, [Duration::from_micros(1500)]);
        assert_eq!(log.refreshes, [(Duration::from_millis(40), 4)]);
        assert_eq!((log.draws.len(), log.data.len()), (1, 1));
        let mut values = [Duration::from_millis(3), Duration::from_millis(1), Duration::from_millis(2)];
        assert_eq!(durations(&mut values), "median 2.00 ms, p90 3.00 ms, max 3.00 ms (3 samples)");
    }
}
