//! One chaos run, top to bottom: network and brokers up, topic created,
//! workload started; then fault after fault (apply, hold, heal, wait for
//! health and for every partition to acknowledge again); then everything
//! healed, the workload stopped, and the checker's verdict.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::availability::{self, Share};
use crate::checker::{self, Verdict};
use crate::faults::{self, Event, FaultKind};
use crate::hosts::Hosts;
use crate::workload::Workload;

pub const TOPIC: &str = "chaos";

/// What a run does.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// The `kmon` executable.
    pub exe: PathBuf,
    /// Scratch directory (data, logs); must exist.
    pub dir: PathBuf,
    pub faults: usize,
    pub seed: u64,
    pub brokers: usize,
    pub partitions: u32,
    /// Each fault is held for a random time in this range.
    pub hold: (Duration, Duration),
    /// Bound on the cluster getting healthy after a heal.
    pub recovery_deadline: Duration,
    pub kinds: Vec<FaultKind>,
    /// Each producer sends a record this often.
    pub send_interval: Duration,
}

impl ChaosConfig {
    pub fn new(exe: PathBuf, dir: PathBuf, faults: usize, seed: u64) -> ChaosConfig {
        ChaosConfig {
            exe,
            dir,
            faults,
            seed,
            brokers: 3,
            partitions: 3,
            hold: (Duration::from_millis(1000), Duration::from_millis(3000)),
            recovery_deadline: Duration::from_secs(30),
            kinds: FaultKind::ALL.to_vec(),
            send_interval: Duration::from_millis(10),
        }
    }
}

/// The outcome of a run.
#[derive(Debug)]
pub struct ChaosReport {
    pub seed: u64,
    pub history: Vec<Event>,
    pub verdict: Verdict,
    pub sent: u64,
    pub availability: BTreeMap<String, Share>,
    pub elapsed: Duration,
}

impl ChaosReport {
    pub fn green(&self) -> bool {
        self.verdict.problems.is_empty()
    }

    /// Seed, history, verdict and figures, for a person.
    pub fn summary(&self) -> String {
        let mut out = format!("seed {}\n", self.seed);
        for event in &self.history {
            out.push_str(&format!("{event}\n"));
        }
        let v = &self.verdict;
        out.push_str(&format!(
            "faults {}, sent {}, acknowledged {}, lost {}, duplicates {}, records in the logs {}, {:.0} s\n",
            self.history.len(),
            self.sent,
            v.acked,
            v.lost,
            v.duplicates,
            v.records,
            self.elapsed.as_secs_f64()
        ));
        for (kind, share) in &self.availability {
            out.push_str(&format!(
                "availability {kind}: {:.1}% of {} partition-windows of 100 ms\n",
                share.percent(),
                share.windows
            ));
        }
        let mut by_kind: BTreeMap<FaultKind, Vec<Duration>> = BTreeMap::new();
        for e in &self.history {
            if let Some(r) = e.recovery {
                by_kind.entry(e.fault.kind).or_default().push(r);
            }
        }
        let all: Vec<Duration> = by_kind.values().flatten().copied().collect();
        let ms = |d: Option<Duration>| d.map_or("n/a".into(), |d| format!("{} ms", d.as_millis()));
        for (kind, values) in &by_kind {
            out.push_str(&format!(
                "recovery after {kind}: p50 {} p99 {} max {} over {}\n",
                ms(availability::quantile(values, 0.5)),
                ms(availability::quantile(values, 0.99)),
                ms(values.iter().max().copied()),
                values.len()
            ));
        }
        out.push_str(&format!(
            "recovery after heal: p50 {} p99 {} over {}\n",
            ms(availability::quantile(&all, 0.5)),
            ms(availability::quantile(&all, 0.99)),
            all.len()
        ));
        if self.green() {
            out.push_str("checker: green\n");
        } else {
            out.push_str(&format!("checker: {} problem(s)\n", v.problems.len()));
            for p in &v.problems {
                out.push_str(&format!("  {p}\n"));
            }
        }
        out
    }
}

/// Runs the whole thing. Progress goes to stderr, one line per fault.
pub async fn run(config: ChaosConfig) -> anyhow::Result<ChaosReport> {
    eprintln!("kmon chaos: seed {}", config.seed);
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut hosts = Hosts::start(&config.exe, &config.dir, config.brokers).await?;
    let admin = hosts.admin().await?;
    admin
        .create_topic(TOPIC, config.partitions, 3, vec![("min.insync.replicas".into(), "2".into())])
        .await
        .context("cannot create the chaos topic")?;
    wait_healthy(&hosts, config.recovery_deadline).await.context("the topic did not become healthy")?;
    let workload = Workload::start(&hosts.address(1), TOPIC, config.partitions, config.send_interval).await?;
    let record = workload.record.clone();
    // Let the producers get going before the first fault.
    wait_acked_since(&record, Instant::now(), config.partitions, config.recovery_deadline).await;

    let t0 = Instant::now();
    let mut history: Vec<Event> = Vec::new();
    // A fault that could not be applied tested nothing: the run is not green.
    let mut unapplied: Vec<String> = Vec::new();
    let mut round: Vec<FaultKind> = Vec::new();
    for index in 1..=config.faults {
        let controller = match hosts.admin().await {
            Ok(admin) => admin.metadata(&[]).await.map(|m| m.controller_id).unwrap_or(1),
            Err(_) => 1,
        };
        let controller = u32::try_from(controller).unwrap_or(1).max(1);
        // Kinds come in shuffled rounds of all of them, so every kind is
        // injected ⌊faults / kinds⌋ times or more.
        if round.is_empty() {
            round = config.kinds.clone();
            round.shuffle(&mut rng);
        }
        let kind = round.pop().expect("a kind");
        let fault = faults::choose(&mut rng, kind, config.brokers as u32, controller, config.hold);
        let applied = t0.elapsed();
        let note = match faults::apply(&mut hosts, &fault, TOPIC).await {
            Ok(note) => note,
            Err(err) => {
                unapplied.push(format!("FAULT: fault {index} ({}) was not applied: {err:#}", fault.kind));
                format!("apply failed: {err:#}")
            }
        };
        let mut event = Event { index, fault: fault.clone(), applied, healed: None, recovery: None, note };
        tokio::time::sleep(fault.hold).await;
        if let Err(err) = faults::heal(&mut hosts, &fault).await {
            event.note.push_str(&format!(" heal failed: {err:#}"));
            // A broker that will not come back is restarted once more.
            let _ = hosts.restart(fault.target).await;
        }
        let healed = Instant::now();
        event.healed = Some(healed - t0);
        // A broker may exit on its own around a fault (a full disk stops its
        // Raft, and it exits to be restarted): the supervisor's job, done here.
        revive(&mut hosts, &mut event.note).await;
        let mut healthy = wait_healthy(&hosts, config.recovery_deadline).await;
        if healthy.is_err() && hosts.ids().collect::<Vec<_>>().into_iter().any(|id| !hosts.is_running(id)) {
            revive(&mut hosts, &mut event.note).await;
            healthy = wait_healthy(&hosts, config.recovery_deadline).await;
        }
        if let Err(err) = healthy {
            event.note.push_str(&format!(" not healthy after {:?}: {err:#}", config.recovery_deadline));
        }
        // A broker that exited on its own (a fatal error) is restarted, as
        // a supervisor would; the note says so.
        for id in hosts.ids().collect::<Vec<_>>() {
            if !hosts.is_running(id) {
                event.note.push_str(&format!(" broker {id} had exited; restarted"));
                if let Err(err) = hosts.restart(id).await {
                    event.note.push_str(&format!(" (restart failed: {err:#})"));
                }
                let _ = wait_healthy(&hosts, config.recovery_deadline).await;
            }
        }
        wait_acked_since(&record, healed, config.partitions, config.recovery_deadline).await;
        event.recovery = availability::recovery(healed, config.partitions, &record.acks.lock().expect("acks"));
        eprintln!("{event}");
        history.push(event);
    }
    let end = Instant::now();

    hosts.net.heal_all();
    for id in hosts.ids().collect::<Vec<_>>() {
        if !hosts.is_running(id) {
            let _ = hosts.restart(id).await;
        }
        let _ = hosts.pause(id, false);
    }
    let _ = wait_healthy(&hosts, config.recovery_deadline).await;
    let (record, stuck) = workload.stop().await;
    let sent = record.sent.load(std::sync::atomic::Ordering::Relaxed);
    let mut verdict = Verdict { problems: unapplied, ..Verdict::default() };
    for partition in stuck {
        verdict.problems.push(format!(
            "STUCK: the producer of partition {partition} still had records in flight {:?} after the heal",
            crate::workload::STOP_DEADLINE
        ));
    }
    if let Err(err) = wait_healthy(&hosts, config.recovery_deadline).await {
        verdict.problems.push(format!("HEALTH: the healed cluster is not healthy: {err:#}"));
    }
    let hwm = checker::check_reads(&hosts, TOPIC, config.partitions, &record, &mut verdict).await?;
    // Metrics are scraped on a timer in some brokers: give them a moment to settle.
    let settle = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let mut metrics = Verdict::default();
        checker::check_metrics(&hosts, &config.exe, TOPIC, &hwm, &mut metrics).await?;
        if metrics.problems.is_empty() || Instant::now() > settle {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    verdict.problems.extend(metrics.problems);
    hosts.stop_all().await;
    checker::check_replicas(&hosts, TOPIC, &hwm, &mut verdict)?;

    let acks = record.acks.lock().expect("acks").clone();
    let availability = availability::per_fault(t0, end, config.partitions, &acks, &history);
    Ok(ChaosReport { seed: config.seed, history, verdict, sent, availability, elapsed: started.elapsed() })
}

/// Restarts every broker whose process exited, noting which.
async fn revive(hosts: &mut Hosts, note: &mut String) {
    for id in hosts.ids().collect::<Vec<_>>() {
        if !hosts.is_running(id) {
            note.push_str(&format!(" broker {id} had exited: restarted"));
            if let Err(err) = hosts.restart(id).await {
                note.push_str(&format!(" (restart failed: {err:#})"));
            }
        }
    }
}

/// Every broker alive, a controller, every partition led with a full ISR.
pub async fn wait_healthy(hosts: &Hosts, deadline: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + deadline;
    loop {
        let problem = match health(hosts).await {
            Ok(None) => return Ok(()),
            Ok(Some(problem)) => problem,
            Err(err) => format!("{err:#}"),
        };
        if Instant::now() > until {
            anyhow::bail!("{problem}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn health(hosts: &Hosts) -> anyhow::Result<Option<String>> {
    let admin = hosts.admin().await?;
    let metadata = tokio::time::timeout(Duration::from_secs(2), admin.metadata(&[TOPIC])).await??;
    if metadata.controller_id < 0 {
        return Ok(Some("no controller".into()));
    }
    if let Some(b) = metadata.brokers.iter().find(|b| !b.alive) {
        return Ok(Some(format!("broker {} not alive", b.id)));
    }
    for topic in &metadata.topics {
        for p in &topic.partitions {
            if p.leader < 0 || p.isr.len() < p.replicas.len() {
                return Ok(Some(format!("partition {}: leader {}, ISR {:?}", p.partition, p.leader, p.isr)));
            }
        }
    }
    Ok(None)
}

/// Waits (bounded) until every partition had an acknowledgement at or after `since`.
async fn wait_acked_since(record: &crate::workload::Record, since: Instant, partitions: u32, deadline: Duration) {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if availability::recovery(since, partitions, &record.acks.lock().expect("acks")).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
