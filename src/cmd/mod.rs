//! The command-line interface: one module per subcommand.

mod acl;
mod agent;
mod broker;
mod cluster;
mod consume;
mod dashboards;
mod format;
mod group;
mod leader_election;
mod produce;
mod rebalance;
mod report;
mod status;
mod topic;
mod tui;
mod up;
mod user;

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
    /// CA bundle (PEM) the brokers' certificates are checked against; turns
    /// TLS on for every connection.
    #[arg(long, env = "KMON_TLS_CA", global = true)]
    pub(crate) tls_ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) presented to brokers with mutual TLS.
    #[arg(long, env = "KMON_TLS_CERT", global = true, requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "KMON_TLS_KEY", global = true, requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// Authenticate as this SCRAM user (`kmon user add`), for brokers
    /// without a client certificate; use with TLS.
    #[arg(long, env = "KMON_SASL_USERNAME", global = true, requires = "sasl_password")]
    pub(crate) sasl_username: Option<String>,
    /// The SCRAM user's password.
    #[arg(long, env = "KMON_SASL_PASSWORD", global = true, hide_env_values = true, requires = "sasl_username")]
    pub(crate) sasl_password: Option<String>,
}

impl ClientArgs {
    /// Turns TLS on for this process when --tls-ca is given.
    pub(crate) fn apply_tls(&self) -> anyhow::Result<()> {
        if let Some(ca) = &self.tls_ca {
            kmon_client::connection::use_tls(ca, self.tls_cert.as_deref(), self.tls_key.as_deref())?;
        } else if self.tls_cert.is_some() {
            anyhow::bail!("--tls-cert needs --tls-ca (the CA bundle brokers are checked against)");
        }
        if let (Some(user), Some(password)) = (&self.sasl_username, &self.sasl_password) {
            kmon_client::connection::use_scram(user, password)?;
        }
        Ok(())
    }
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
    /// Add, list and remove access control lists (Kafka's kafka-acls.sh).
    Acl {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: acl::AclCommand,
    },
    /// Add, list and remove SASL/SCRAM-SHA-512 users of the Kafka listener.
    User {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Move leadership to the preferred replicas.
    LeaderElection {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: leader_election::LeaderElectionArgs,
    },
    /// Plan and execute rebalancing of replicas over brokers and domains.
    Rebalance {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: rebalance::RebalanceCommand,
    },
    /// Change the broker set (only refusals so far: scale-down is not
    /// supported).
    Cluster {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
    /// Export the Grafana dashboards, Prometheus rules and scrape configuration.
    Dashboards {
        #[command(subcommand)]
        command: dashboards::DashboardsCommand,
    },
    /// The live terminal view of brokers, ISR, lag, balance, nodes and alerts.
    Tui {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: tui::TuiArgs,
    },
    /// Draw time charts of the shipped history into a PNG or SVG.
    Report {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: report::ReportArgs,
    },
    /// An HTTP proxy with Confluent REST Proxy shapes (v3 topics and
    /// produce, v2 consumers) in front of the cluster.
    Rest {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: kmon_rest::RestArgs,
    },
    /// Copy topics from a source cluster to a target (MirrorMaker 2's
    /// job): renamed `<source-alias>.<topic>`, partitions, keys, headers
    /// and timestamps kept; checkpoints and group offset sync for failover.
    /// Plain-text connections only so far (no TLS flags).
    Mirror(kmon_mirror::MirrorArgs),
    /// Run an example stream-processing application (kmon-streams) as one
    /// instance, or measure word count's throughput.
    Streams {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: kmon_streams::cli::StreamsArgs,
    },
    /// Measure produce and consume throughput and latency.
    Bench {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: kmon_bench::BenchCommand,
    },
}

/// Logs to standard error; `RUST_LOG` sets the level (default `info`).
pub(crate) fn init_logging() {
    // Without an exporter nothing can fail.
    let _ = crate::telemetry::init(None);
}

/// Logs as [`init_logging`], and exports spans over OTLP when `otlp` is set
/// (see [`crate::telemetry`]); shut the result down before exiting.
pub(crate) fn init_telemetry(otlp: Option<&crate::telemetry::Otlp>) -> anyhow::Result<crate::telemetry::Telemetry> {
    crate::telemetry::init(otlp)
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(client) = cli.command.client_args() {
        client.apply_tls()?;
    }
    match cli.command {
        Command::Broker(args) => broker::run(args).await,
        Command::Up(args) => up::run(args).await,
        Command::Agent(args) => agent::run(args).await,
        Command::Status { client, args } => status::run(client, args).await,
        Command::Topic { client, command } => topic::run(client, command).await,
        Command::Produce { client, args } => produce::run(client, args).await,
        Command::Consume { client, args } => consume::run(client, args).await,
        Command::Group { client, command } => group::run(client, command).await,
        Command::LeaderElection { client, args } => leader_election::run(client, args).await,
        Command::Acl { client, command } => acl::run(client, command).await,
        Command::User { client, command } => user::run(client, command).await,
        Command::Rebalance { client, command } => rebalance::run(client, command).await,
        Command::Cluster { client, command } => cluster::run(client, command).await,
        Command::Tui { client, args } => tui::run(client, args).await,
        Command::Report { client, args } => report::run(client, args).await,
        Command::Bench { client, command } => kmon_bench::run(&client.bootstrap, command).await,
        Command::Dashboards { command } => dashboards::run(command),
        Command::Rest { client, args } => kmon_rest::run(&client.bootstrap, args).await,
        Command::Mirror(args) => {
            init_logging();
            Ok(kmon_mirror::run(args).await?)
        }
        Command::Streams { client, args } => {
            init_logging();
            kmon_streams::cli::run(&client.bootstrap, args).await
        }
    }
}

impl Command {
    /// The client options of a client command.
    fn client_args(&self) -> Option<&ClientArgs> {
        match self {
            Command::Status { client, .. }
            | Command::Topic { client, .. }
            | Command::Produce { client, .. }
            | Command::Consume { client, .. }
            | Command::Group { client, .. }
            | Command::LeaderElection { client, .. }
            | Command::Acl { client, .. }
            | Command::User { client, .. }
            | Command::Rebalance { client, .. }
            | Command::Cluster { client, .. }
            | Command::Tui { client, .. }
            | Command::Report { client, .. }
            | Command::Rest { client, .. }
            | Command::Streams { client, .. }
            | Command::Bench { client, .. } => Some(client),
            Command::Broker(_)
            | Command::Up(_)
            | Command::Agent(_)
            | Command::Mirror(_)
            | Command::Dashboards { .. } => None,
        }
    }
}
