//! The command-line interface: one module per subcommand.

mod agent;
mod bench;
mod bench_cluster;
mod bench_failover;
mod bench_group;
mod bench_startup;
mod broker;
mod consume;
mod group;
mod produce;
mod status;
mod topic;
mod up;

use clap::{Parser, Subcommand};

/// kmon: a Kafka-style streaming broker cluster built to be operated well.
#[derive(Debug, Parser)]
#[command(name = "kmon", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every client command takes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClientArgs {
    /// Any broker of the cluster.
    #[arg(long, env = "KMON_BOOTSTRAP", default_value = "127.0.0.1:9092", global = true)]
    pub(crate) bootstrap: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker.
    Broker(broker::BrokerArgs),
    /// Run a local cluster on embedded defaults.
    Up(up::UpArgs),
    /// Run the node agent: host metrics, shipped to the cluster.
    Agent(agent::AgentArgs),
    /// Show the controller, the brokers and partition health.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: status::StatusArgs,
    },
    /// Create, list, describe and delete topics.
    Topic {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: topic::TopicCommand,
    },
    /// Produce one record per line of standard input.
    Produce {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: produce::ProduceArgs,
    },
    /// Consume records and print one line per record.
    Consume {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: consume::ConsumeArgs,
    },
    /// List, describe, reset the offsets of and delete consumer groups.
    Group {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: group::GroupCommand,
    },
    /// Measure produce and consume throughput and latency.
    Bench {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

/// Logs to standard error; `RUST_LOG` sets the level (default `info`).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Broker(args) => broker::run(args).await,
        Command::Up(args) => up::run(args).await,
        Command::Agent(args) => agent::run(args).await,
        Command::Status { client, args } => status::run(client, args).await,
        Command::Topic { client, command } => topic::run(client, command).await,
        Command::Produce { client, args } => produce::run(client, args).await,
        Command::Consume { client, args } => consume::run(client, args).await,
        Command::Group { client, command } => group::run(client, command).await,
        Command::Bench { client, command } => bench::run(client, command).await,
    }
}
