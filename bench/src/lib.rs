//! kmon's benchmarks, a product of their own (see README.md beside this
//! file): `kmon bench produce|consume|startup|failover|group|reassign|tui|tls`
//! are thin entry points into this crate:
//! throughput, latency, start-up time, failover time, consumer-group
//! rebalances, scale-up reassignments, the TUI's cost, what TLS costs, and safety and
//! availability under injected faults (`chaos`, on `kmon_chaos`).
//!
//! `produce` and `consume` print one summary line, e.g.
//! `produce: 1000000 records, 100 bytes each, 1.62M records/s, 162.0 MB/s,
//! latency p50 3.1 ms p99 9.8 ms p99.9 12.0 ms` (on one line).
//!
//! Produce latency is per record: from the moment the record is handed to
//! the producer to its batch's acknowledgement (computed from the batch's
//! send → ack time and how long after the batch's first record this one
//! was sent). Without `--rate` the bench sends as fast as it can, so this
//! is mostly time queued in the producer's buffer; with `--rate N` sends
//! are paced to N records/s (in 1 ms steps) and the latency is the one
//! seen at that load. Consume latency is per fetch round trip.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use kmon_client::{Acks, Consumer, ConsumerConfig, OffsetSpec, Producer, ProducerConfig, RecordHandle};

pub mod chaos;
pub mod cluster;
pub mod failover;
pub mod group;
pub mod reassign;
pub mod roll_stall;
pub mod startup;
pub mod tls;
pub mod tui;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce N records of a given size to an existing topic.
    Produce(ProduceBenchArgs),
    /// Consume N records of a topic from its earliest offsets.
    Consume(ConsumeBenchArgs),
    /// Time a broker's start over a large log, and its idle memory.
    Startup(crate::startup::StartupArgs),
    /// Time partition-leader and controller failover on a local cluster of
    /// its own (3 `kmon broker` processes, SIGKILLed one at a time).
    Failover(crate::failover::FailoverArgs),
    /// Time consumer-group rebalances (a member leaving, a member killed)
    /// and compare group and plain consume throughput, on a local cluster
    /// of its own (3 `kmon broker` processes, `kmon consume --group`
    /// members).
    Group(crate::group::GroupArgs),
    /// Time a scale-up rebalance (3 brokers + 3 new ones) and the acks=all
    /// produce latency while it copies, on a local cluster of its own.
    Reassign(crate::reassign::ReassignArgs),
    /// acks=all produce latency to one partition while another rolls a
    /// segment every 1 MiB, on a broker of its own.
    RollStall(crate::roll_stall::RollStallArgs),
    /// CPU, memory and input latency of `kmon tui` (run under tmux) on a
    /// local cluster of its own with 10,000 partitions and 100 groups.
    Tui(crate::tui::TuiBenchArgs),
    /// Produce and consume throughput and latency with mutual TLS against
    /// without, on two local clusters of its own in the same run.
    Tls(crate::tls::TlsBenchArgs),
    /// Seeded random faults (kill, pause, partitions, netem, full disk,
    /// torn write) on 3 brokers in network namespaces, then a check that no
    /// acknowledged record was lost; availability per fault kind (root).
    Chaos(crate::chaos::ChaosArgs),
}

#[derive(Debug, clap::Args)]
pub struct ProduceBenchArgs {
    #[arg(long)]
    topic: String,
    /// Records to send.
    #[arg(long)]
    records: u64,
    /// Value size in bytes (keyless records).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Acknowledgement level: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = Acks::parse)]
    acks: Acks,
    /// Batch size in bytes (producer default if unset).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Linger in milliseconds (producer default if unset).
    #[arg(long)]
    linger_ms: Option<u64>,
    /// Produce requests in flight (producer default if unset).
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// Pace sending to this many records/s (default: as fast as possible).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
    /// Turn the idempotent producer off (one batch per partition in
    /// flight; the producer before idempotence).
    #[arg(long)]
    no_idempotence: bool,
    /// Batches of one partition in flight with idempotence (1 to 5,
    /// default 5): 1 measures what idempotence itself costs against
    /// `--no-idempotence`, which also sends one at a time.
    #[arg(long, conflicts_with = "no_idempotence", value_parser = clap::value_parser!(u64).range(1..=5))]
    max_in_flight_per_partition: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct ConsumeBenchArgs {
    #[arg(long)]
    topic: String,
    /// Records to read.
    #[arg(long)]
    records: u64,
    /// Give up when no record arrives for this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
}

pub async fn run(bootstrap: &str, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Produce(args) => produce(bootstrap, args).await,
        BenchCommand::Consume(args) => consume(bootstrap, args).await,
        BenchCommand::Startup(args) => crate::startup::run(args).await,
        BenchCommand::Failover(args) => crate::failover::run(args).await,
        BenchCommand::Group(args) => crate::group::run(args).await,
        BenchCommand::Reassign(args) => crate::reassign::run(args).await,
        BenchCommand::RollStall(args) => crate::roll_stall::run(args).await,
        BenchCommand::Tui(args) => crate::tui::run(args).await,
        BenchCommand::Chaos(args) => crate::chaos::run(args).await,
        BenchCommand::Tls(args) => crate::tls::run(args).await,
    }
}

/// Records handed to the producer per `send_batch` call.
const CHUNK: u64 = 1000;
/// Step of the `--rate` pacing.
const PACING_STEP: Duration = Duration::from_millis(1);

async fn produce(bootstrap: &str, args: ProduceBenchArgs) -> anyhow::Result<()> {
    let mut config = ProducerConfig::new(bootstrap.to_string());
    config.acks = args.acks;
    if let Some(batch_size) = args.batch_size {
        config.batch_size = batch_size;
    }
    if let Some(linger_ms) = args.linger_ms {
        config.linger = Duration::from_millis(linger_ms);
    }
    if let Some(max_in_flight) = args.max_in_flight {
        config.max_in_flight = max_in_flight;
    }
    config.idempotence = !args.no_idempotence;
    if let Some(n) = args.max_in_flight_per_partition {
        config.max_in_flight_per_partition = n as usize;
    }
    let producer = Producer::connect(config).await?;
    producer.partition_count(&args.topic).await.with_context(|| format!("cannot produce to topic {:?}", args.topic))?;
    let value: Vec<u8> = (0..args.record_size).map(|i| b'a' + (i % 26) as u8).collect();
    let progress = progress_bar(args.records);

    let start = Instant::now();
    let mut latencies = RecordLatencies::default();
    let mut sent = 0;
    while sent < args.records {
        let n = match args.rate {
            None => CHUNK.min(args.records - sent),
            Some(rate) => {
                // Records due by now at `rate`; wait for the next step if none.
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                let n = due.min(args.records).saturating_sub(sent).min(CHUNK);
                if n == 0 {
                    tokio::time::sleep(PACING_STEP).await;
                    continue;
                }
                n
            }
        };
        let sent_at = Instant::now();
        let handles = producer.send_batch(&args.topic, (0..n).map(|_| (None, value.as_slice()))).await?;
        latencies.sent(sent_at, handles);
        sent += n;
        progress.set_position(sent);
    }
    producer.flush().await.context("producing failed")?;
    let elapsed = start.elapsed();
    progress.finish_and_clear();

    let latencies = latencies.finish();
    let paced = match args.rate {
        Some(rate) => format!(" (paced at {})", format_rate(rate as f64)),
        None => String::new(),
    };
    println!("produce: {}{paced}", summary(args.records, args.record_size, elapsed, latencies));
    Ok(())
}

/// Per-record send → acknowledgement times, collected as batches complete.
///
/// The producer tells a batch's latency (its first record's send to its
/// acknowledgement); a later record of the batch waited that much less, by
/// the time between the batch's first send and its own.
#[derive(Default)]
struct RecordLatencies {
    /// Records not yet acknowledged, in send order, each with how long
    /// after its batch's first record it was sent.
    pending: VecDeque<(RecordHandle, Duration)>,
    /// Send time of the open batch's first record, indexed by partition.
    batch_start: Vec<Option<Instant>>,
    done: Vec<Duration>,
}

impl RecordLatencies {
    fn sent(&mut self, at: Instant, handles: Vec<RecordHandle>) {
        for handle in handles {
            let partition = handle.partition() as usize;
            if partition >= self.batch_start.len() {
                self.batch_start.resize(partition + 1, None);
            }
            let start = &mut self.batch_start[partition];
            if handle.is_first_in_batch() || start.is_none() {
                *start = Some(at);
            }
            let offset = at - start.unwrap_or(at);
            self.pending.push_back((handle, offset));
        }
        self.collect();
    }

    /// Moves the acknowledged records at the front into `done`.
    fn collect(&mut self) {
        while let Some((handle, offset)) = self.pending.front() {
            let Some(batch_latency) = handle.batch_latency() else { break };
            self.done.push(batch_latency.saturating_sub(*offset));
            self.pending.pop_front();
        }
    }

    /// Call after `flush`: every record is acknowledged (or failed).
    fn finish(mut self) -> Vec<Duration> {
        self.collect();
        self.done
    }
}

async fn consume(bootstrap: &str, args: ConsumeBenchArgs) -> anyhow::Result<()> {
    let mut consumer = Consumer::connect(ConsumerConfig::new(bootstrap.to_string())).await?;
    let topic = consumer
        .admin()
        .describe_topic(&args.topic)
        .await
        .with_context(|| format!("cannot consume topic {:?}", args.topic))?;
    for partition in &topic.partitions {
        consumer.assign_at(&args.topic, partition.partition, OffsetSpec::Earliest).await?;
    }
    let progress = progress_bar(args.records);

    let start = Instant::now();
    let mut received = 0u64;
    let mut bytes = 0u64;
    let mut latencies = Vec::new();
    let mut last_progress = Instant::now();
    while received < args.records {
        let records = consumer.poll().await?;
        if let Some(round_trip) = consumer.last_round_trip() {
            latencies.push(round_trip);
        }
        if records.is_empty() {
            if last_progress.elapsed() > args.idle_timeout {
                bail!("only {received} of {} records arrived; none in the last {:?}", args.records, args.idle_timeout);
            }
            continue;
        }
        last_progress = Instant::now();
        let take = records.len().min((args.records - received) as usize);
        bytes += records[..take].iter().map(|r| r.value.len() as u64).sum::<u64>();
        received += take as u64;
        progress.set_position(received);
    }
    let elapsed = start.elapsed();
    progress.finish_and_clear();
    let record_size = bytes.checked_div(received).unwrap_or(0) as usize;
    println!("consume: {}", summary(received, record_size, elapsed, latencies));
    Ok(())
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}") {
        bar.set_style(style);
    }
    bar
}

/// `N records, S bytes each, R records/s, T MB/s, latency p50 .. p99 .. p99.9 ..`
fn summary(records: u64, record_size: usize, elapsed: Duration, mut latencies: Vec<Duration>) -> String {
    let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
    let rate = records as f64 / seconds;
    let megabytes = records as f64 * record_size as f64 / 1e6 / seconds;
    latencies.sort();
    let percentile = |q: f64| {
        if latencies.is_empty() {
            return "n/a".to_owned();
        }
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        let ms = latencies[rank - 1].as_secs_f64() * 1e3;
        if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.1} ms") }
    };
    format!(
        "{records} records, {record_size} bytes each, {}, {megabytes:.1} MB/s, \
         latency p50 {} p99 {} p99.9 {}",
        format_rate(rate),
        percentile(0.5),
        percentile(0.99),
        percentile(0.999)
    )
}

/// A record rate for humans: 1.62M records/s, 2.5K records/s.
pub fn format_rate(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M records/s", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}K records/s", rate / 1e3)
    } else {
        format!("{rate:.0} records/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_is_greppable() {
        let latencies = (1..=1000).map(Duration::from_millis).collect();
        let line = summary(1_000_000, 100, Duration::from_millis(617), latencies);
        assert_eq!(
            line,
            "1000000 records, 100 bytes each, 1.62M records/s, 162.1 MB/s, \
             latency p50 500.0 ms p99 990.0 ms p99.9 999.0 ms"
        );
    }

    #[test]
    fn summary_without_latencies() {
        let line = summary(10, 5, Duration::from_secs(1), Vec::new());
        assert!(line.ends_with("latency p50 n/a p99 n/a p99.9 n/a"), "{line}");
    }
}
