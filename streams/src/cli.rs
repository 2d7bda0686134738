//! `kmon streams APP`: runs one of the example topologies ([`crate::apps`])
//! as an application instance until SIGINT/SIGTERM, with its `/metrics`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kmon_client::{Admin, Producer, ProducerConfig};

use crate::apps;
use crate::runtime::{KafkaStreams, StreamsConfig};
use crate::topology::StreamsBuilder;
use crate::window::TimeWindows;

/// The line printed on standard output once the instance runs:
/// `kmon streams ready metrics=ADDRESS` (`metrics=-` without an endpoint).
pub const READY_PREFIX: &str = "kmon streams ready";

#[derive(Debug, clap::Args)]
pub struct StreamsArgs {
    #[command(subcommand)]
    pub app: App,
    /// The application: its consumer group and the prefix of its internal
    /// topics (`<id>-<store>-changelog`, `<id>-<store>-repartition`).
    #[arg(long, global = true, default_value = "kmon-streams")]
    pub application_id: String,
    /// Between two commits (changelog flushed, then input offsets).
    #[arg(long, global = true, default_value = "1s", value_parser = humantime::parse_duration)]
    pub commit_interval: Duration,
    /// A silent instance leaves the group (its tasks move) after this long.
    #[arg(long, global = true, default_value = "6s", value_parser = humantime::parse_duration)]
    pub session_timeout: Duration,
    /// Serve Prometheus `/metrics` here (port 0: any free port).
    #[arg(long, global = true)]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, clap::Subcommand)]
pub enum App {
    /// Lines of --input → count per lowercase word → --output (word →
    /// count as a u64, big-endian), the count store's changelog behind it.
    WordCount {
        #[arg(long)]
        input: String,
        #[arg(long)]
        output: String,
    },
    /// Records `key → number` of --input → sum per key and hopping window
    /// on record time → --output keyed `key@window_start_ms`.
    WindowedSum {
        #[arg(long)]
        input: String,
        #[arg(long)]
        output: String,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        window: Duration,
        /// Hop; equal to --window: tumbling windows.
        #[arg(long, value_parser = humantime::parse_duration)]
        advance: Option<Duration>,
        /// Records later than window end + grace are dropped (and counted).
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        grace: Duration,
        /// How long after its start a window is kept in the store (default
        /// one day, at least window + grace).
        #[arg(long, value_parser = humantime::parse_duration)]
        retention: Option<Duration>,
    },
    /// Events of --input keyed by user, joined with the user's latest
    /// profile in --table → --output `event|profile` (`event|unknown`).
    Enrich {
        #[arg(long)]
        input: String,
        #[arg(long)]
        table: String,
        #[arg(long)]
        output: String,
    },
    /// Word count throughput on one instance: writes --records lines (8
    /// words each) to a fresh input topic, counts them, prints records/s.
    Bench {
        #[arg(long, default_value_t = 200_000)]
        records: u64,
        #[arg(long, default_value_t = 4)]
        partitions: u32,
    },
}

/// Builds the chosen topology and runs it until SIGINT/SIGTERM.
pub async fn run(bootstrap: &str, args: StreamsArgs) -> anyhow::Result<()> {
    let builder = StreamsBuilder::new(args.application_id.clone());
    match &args.app {
        App::WordCount { input, output } => apps::word_count(&builder, input, output),
        App::WindowedSum { input, output, window, advance, grace, retention } => {
            let windows = TimeWindows::hopping(*window, advance.unwrap_or(*window)).grace(*grace);
            apps::windowed_sum(&builder, input, output, retention.map_or(windows, |r| windows.retention(r)))
        }
        App::Enrich { input, table, output } => apps::enrich(&builder, input, table, output),
        App::Bench { records, partitions } => return bench(bootstrap, &args, *records, *partitions).await,
    }
    let mut config = StreamsConfig::new(bootstrap);
    config.commit_interval = args.commit_interval;
    config.session_timeout = args.session_timeout;
    let streams = KafkaStreams::new(&builder, config)?;
    let metrics_address = match args.metrics_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| anyhow::anyhow!("metrics endpoint on {address}: {e}"))?;
            let bound = listener.local_addr()?.to_string();
            tokio::spawn(streams.metrics().serve(listener));
            bound
        }
        None => "-".to_string(),
    };
    println!("{READY_PREFIX} application={} metrics={metrics_address}", args.application_id);
    streams.run(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// A bench line: 8 words of a vocabulary of 1,000.
fn bench_line(i: u64) -> String {
    (0..8).map(|j| format!("w{}", (i * 7 + j * 131) % 1000)).collect::<Vec<_>>().join(" ")
}

async fn bench(bootstrap: &str, args: &StreamsArgs, records: u64, partitions: u32) -> anyhow::Result<()> {
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis()
    );
    let input = format!("streams-bench-in-{run_id}");
    let output = format!("streams-bench-out-{run_id}");
    let admin = Admin::connect(bootstrap).await?;
    admin.create_topic(&input, partitions, 0, Vec::new()).await?;
    admin.create_topic(&output, partitions, 0, Vec::new()).await?;
    let producer = Producer::connect(ProducerConfig::new(bootstrap.to_owned())).await?;
    for i in 0..records {
        producer.send(&input, None, bench_line(i).into()).await?;
    }
    producer.flush().await?;
    let builder = StreamsBuilder::new(format!("{}-bench-{run_id}", args.application_id));
    apps::word_count(&builder, &input, &output);
    let mut config = StreamsConfig::new(bootstrap);
    config.commit_interval = args.commit_interval;
    let streams = KafkaStreams::new(&builder, config)?;
    let metrics = streams.metrics();
    let started = Instant::now();
    // Each line, then each of its 8 words read back from the repartition
    // topic, is a processed record; the run stops once all are.
    let target = records * 9;
    let counted = metrics.clone();
    streams
        .run(async move {
            while counted.processed() < target {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "word count, one instance: {records} lines ({} words) in {elapsed:.2} s (start-up and group join included): \
         {:.0} lines/s, {:.0} records/s processed (lines + repartitioned words)",
        records * 8,
        records as f64 / elapsed,
        target as f64 / elapsed
    );
    let _ = admin.delete_topic(&input).await;
    let _ = admin.delete_topic(&output).await;
    Ok(())
}
