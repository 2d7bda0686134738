//! `kmon up`: a local multi-broker cluster, one `kmon broker` child process
//! per broker.
//!
//! Broker `i` (1-based) listens on gRPC port `base_port + i - 1` and
//! metrics port `base_metrics_port + i - 1` of 127.0.0.1, keeps its data in
//! `DIR/broker-i` and logs (its stderr) to `DIR/broker-i.log`. The first
//! `min(N, 5)` brokers are the controller voters; the others get the same
//! `--controller-voters` and join as learners. Fault and update domains
//! follow the layout (see [`Layout`]).
//!
//! The layout is written to `DIR/cluster.toml` on first start; a later
//! `kmon up` on the same DIR reads it back and restarts the same cluster
//! (same ids, ports, domains). A smaller `--brokers` is a scale-down,
//! refused with `InvalidKafkaScaleDownRequestErrorCode`; a larger one is a
//! scale-up: the new brokers take the next ids, ports and slots of the
//! layout, are added to `cluster.toml`, and join as learners of the same
//! quorum. If the cluster is running (under another `kmon up`), only the
//! new brokers are started, supervised by this process. New topics use the
//! new brokers at once; existing partitions move onto them with
//! `kmon rebalance execute`, or at once with `--rebalance`.
//!
//! Start-up: spawn every broker, wait for each one's
//! `kmon broker ready ...` line, then poll `Metadata` until there is a
//! controller and every broker is alive (deadline 60 s). Shutdown (Ctrl-C
//! or SIGTERM): SIGTERM to every broker, up to 10 s for each to exit, then
//! SIGKILL. A broker that dies on its own is reported; the others keep
//! running.
//!
//! One node agent (`kmon agent`) runs beside the brokers: it ships to
//! every broker in turn, serves `/metrics` on 127.0.0.1 at the first
//! broker's metrics port + 100 (or `--agent-metrics-port`), keeps its disk
//! buffer in `DIR/agent-buffer` and logs to `DIR/agent.log`. It starts once
//! the cluster is up and is stopped (SIGTERM) before the brokers.
//!
//! `kmon bench failover` reuses the layout, [`spawn`] and
//! [`wait_until_up`] to run its own cluster on free ports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kmon_broker::placement;
use kmon_client::Admin;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

const HOST: &str = "127.0.0.1";
const LAYOUT_FILE: &str = "cluster.toml";
const READY_PREFIX: &str = "kmon broker ready";
const AGENT_READY_PREFIX: &str = "kmon agent ready";
/// Bound on the agent's start-up.
const AGENT_START_DEADLINE: Duration = Duration::from_secs(20);
/// Small clusters run combined: every broker a voter, up to five (as KRaft
/// advises); brokers beyond that are learners.
const MAX_VOTERS: usize = 5;
/// Bound on start-up: every broker ready, a controller, all alive.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a broker gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often children are checked for an unexpected exit.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Where the cluster keeps its data, logs and `cluster.toml`.
    #[arg(long, env = "KMON_DATA_DIR", default_value = "kmon-data")]
    data_dir: PathBuf,
    /// Number of brokers (first start: default 3; later: more adds
    /// brokers, fewer is refused).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    brokers: Option<u32>,
    /// Once up, plan and execute a rebalance (e.g. onto added brokers).
    #[arg(long)]
    rebalance: bool,
    /// Replication throttle of that rebalance, e.g. 50MB/s (default: none).
    #[arg(long, requires = "rebalance", value_parser = super::format::parse_rate)]
    throttle: Option<u64>,
    /// gRPC port of broker 1; broker i gets PORT+i-1 (default 9092).
    #[arg(long)]
    base_port: Option<u16>,
    /// Metrics port of broker 1; broker i gets PORT+i-1 (default 9644).
    #[arg(long)]
    base_metrics_port: Option<u16>,
    /// Kafka-protocol port of broker 1; broker i gets PORT+i-1 (default 19092).
    #[arg(long)]
    base_kafka_port: Option<u16>,
    /// How brokers are spread over fault and update domains.
    #[arg(long, value_enum)]
    layout: Option<Layout>,
    /// Number of fault domains (default 3).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    fault_domains: Option<u32>,
    /// Number of update domains (default 3).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    update_domains: Option<u32>,
    /// The node agent's /metrics port (default: broker 1's metrics port + 100).
    #[arg(long)]
    agent_metrics_port: Option<u16>,
}

/// How brokers are placed on the fault domain × update domain grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Layout {
    /// Walk the grid's diagonals (`kmon_broker::placement::diagonal_walk`):
    /// with 3×3: 1 FD0/UD0, 2 FD1/UD1, 3 FD2/UD2, 4 FD0/UD1, ... so any F
    /// consecutive brokers span every fault domain and, when F == U, every
    /// update domain too.
    Diagonal,
    /// Row by row: for ud in 0..U, for fd in 0..F: (fd, ud).
    Rows,
}

/// `DIR/cluster.toml`: the cluster as first started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClusterLayout {
    /// The layout the domains were assigned with (informational).
    layout: Layout,
    /// `ID@HOST:PORT,...` of the controller voters.
    controller_voters: String,
    /// Grid size the domains were assigned on (absent in files written
    /// before scale-up existed: then the flags, or 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fault_domains: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    update_domains: Option<u32>,
    pub(super) brokers: Vec<BrokerLayout>,
}

/// One broker of `cluster.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BrokerLayout {
    pub(super) id: u32,
    /// gRPC `HOST:PORT`.
    pub(super) listen: String,
    /// Metrics `HOST:PORT`.
    metrics_listen: String,
    /// Kafka-protocol `HOST:PORT` (layouts written before the Kafka listener
    /// have none: broker i then gets the default 19092+i-1).
    #[serde(default)]
    pub(super) kafka_listen: String,
    fault_domain: String,
    update_domain: String,
    /// Data directory, relative to the cluster's directory.
    data_dir: PathBuf,
}

impl BrokerLayout {
    /// Moves the broker to other ports of 127.0.0.1 (benches pick free ones).
    pub(super) fn set_ports(&mut self, grpc: u16, metrics: u16) {
        self.listen = format!("{HOST}:{grpc}");
        self.metrics_listen = format!("{HOST}:{metrics}");
        self.kafka_listen = format!("{HOST}:0");
    }
}

/// Kafka clients' default port, for broker 1 of `kmon up`.
const BASE_KAFKA_PORT: u16 = 19092;

/// Fault and update domain numbers of the first `count` brokers.
pub(super) fn domains(layout: Layout, count: usize, fault_domains: u32, update_domains: u32) -> Vec<(u32, u32)> {
    let (f, u) = (fault_domains as usize, update_domains as usize);
    match layout {
        Layout::Diagonal => placement::diagonal_walk(count, f, u).map(|(fd, ud)| (fd as u32, ud as u32)).collect(),
        Layout::Rows => (0..count).map(|i| ((i % f) as u32, ((i / f) % u) as u32)).collect(),
    }
}

impl ClusterLayout {
    fn new(args: &UpArgs) -> anyhow::Result<Self> {
        let count = args.brokers.unwrap_or(3) as usize;
        let base_port = args.base_port.unwrap_or(9092);
        let base_metrics_port = args.base_metrics_port.unwrap_or(9644);
        let base_kafka_port = args.base_kafka_port.unwrap_or(BASE_KAFKA_PORT);
        let port = |base: u16, index: usize, what: &str| {
            u16::try_from(usize::from(base) + index)
                .with_context(|| format!("{what} port {base}+{index} is above 65535"))
        };
        let ports = (0..count)
            .map(|index| Ok((port(base_port, index, "gRPC")?, port(base_metrics_port, index, "metrics")?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut cluster = Self::on_ports(
            args.layout.unwrap_or(Layout::Diagonal),
            &ports,
            args.fault_domains.unwrap_or(3),
            args.update_domains.unwrap_or(3),
        )?;
        for (index, broker) in cluster.brokers.iter_mut().enumerate() {
            broker.kafka_listen = format!("{HOST}:{}", port(base_kafka_port, index, "Kafka")?);
        }
        cluster.check()?;
        Ok(cluster)
    }

    /// One broker per `(gRPC port, metrics port)` of 127.0.0.1, ids from 1;
    /// their Kafka listeners on any free port.
    pub(super) fn on_ports(
        layout: Layout,
        ports: &[(u16, u16)],
        fault_domains: u32,
        update_domains: u32,
    ) -> anyhow::Result<Self> {
        let grid = domains(layout, ports.len(), fault_domains, update_domains);
        let brokers: Vec<BrokerLayout> = grid
            .into_iter()
            .zip(ports)
            .enumerate()
            .map(|(index, ((fd, ud), (grpc, metrics)))| {
                let id = index as u32 + 1;
                BrokerLayout {
                    id,
                    listen: format!("{HOST}:{grpc}"),
                    metrics_listen: format!("{HOST}:{metrics}"),
                    kafka_listen: format!("{HOST}:0"),
                    fault_domain: format!("FD{fd}"),
                    update_domain: format!("UD{ud}"),
                    data_dir: PathBuf::from(format!("broker-{id}")),
                }
            })
            .collect();
        let controller_voters =
            brokers.iter().take(MAX_VOTERS).map(|b| format!("{}@{}", b.id, b.listen)).collect::<Vec<_>>().join(",");
        let cluster = ClusterLayout {
            layout,
            controller_voters,
            fault_domains: Some(fault_domains),
            update_domains: Some(update_domains),
            brokers,
        };
        cluster.check()?;
        Ok(cluster)
    }

    /// Adds brokers up to `count`: the next ids, the ports after broker 1's
    /// (broker i on base + i - 1), the next slots of the layout. Voters do
    /// not change: the new brokers join as learners.
    pub(super) fn grow(
        &mut self,
        count: usize,
        fault_domains: Option<u32>,
        update_domains: Option<u32>,
    ) -> anyhow::Result<Vec<BrokerLayout>> {
        let port_of = |address: &str| -> anyhow::Result<u16> {
            address.rsplit(':').next().and_then(|p| p.parse().ok()).with_context(|| format!("bad address {address}"))
        };
        let first = &self.brokers[0];
        let (base, base_metrics) = (port_of(&first.listen)?, port_of(&first.metrics_listen)?);
        let base_kafka = port_of(&first.kafka_listen)?;
        let fault_domains = self.fault_domains.or(fault_domains).unwrap_or(3);
        let update_domains = self.update_domains.or(update_domains).unwrap_or(3);
        let grid = domains(self.layout, count, fault_domains, update_domains);
        let mut added = Vec::new();
        for (index, (fd, ud)) in grid.into_iter().enumerate().skip(self.brokers.len()) {
            let id = index as u32 + 1;
            let port = |base: u16| {
                u16::try_from(usize::from(base) + index).with_context(|| format!("broker {id}'s port is above 65535"))
            };
            added.push(BrokerLayout {
                id,
                listen: format!("{HOST}:{}", port(base)?),
                metrics_listen: format!("{HOST}:{}", port(base_metrics)?),
                // Port 0 (a bench's cluster) stays "any free port".
                kafka_listen: format!("{HOST}:{}", if base_kafka == 0 { 0 } else { port(base_kafka)? }),
                fault_domain: format!("FD{fd}"),
                update_domain: format!("UD{ud}"),
                data_dir: PathBuf::from(format!("broker-{id}")),
            });
        }
        self.brokers.extend(added.iter().cloned());
        self.fault_domains = Some(fault_domains);
        self.update_domains = Some(update_domains);
        self.check()?;
        Ok(added)
    }

    fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(LAYOUT_FILE);
        let text = format!(
            "# Written by `kmon up` on first start (and when it adds brokers); `kmon up`\n\
             # on this directory restarts the same cluster from it.\n{}",
            toml::to_string(self)?
        );
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Ports must not collide (gRPC and metrics ranges may overlap).
    fn check(&self) -> anyhow::Result<()> {
        let mut seen = BTreeSet::new();
        for b in &self.brokers {
            for address in [&b.listen, &b.metrics_listen, &b.kafka_listen] {
                if address.ends_with(":0") {
                    continue;
                }
                if !seen.insert(address) {
                    bail!("address {address} would be used twice; choose other base ports");
                }
            }
        }
        Ok(())
    }

    /// Loads `DIR/cluster.toml` (growing it when `--brokers` asks for
    /// more), or writes it on first start. Returns the brokers added.
    fn load_or_create(args: &UpArgs) -> anyhow::Result<(Self, Vec<BrokerLayout>)> {
        let path = args.data_dir.join(LAYOUT_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut cluster: ClusterLayout =
                toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
            for (index, broker) in cluster.brokers.iter_mut().enumerate() {
                if broker.kafka_listen.is_empty() {
                    broker.kafka_listen = format!("{HOST}:{}", usize::from(BASE_KAFKA_PORT) + index);
                }
            }
            let mut added = Vec::new();
            if let Some(wanted) = args.brokers {
                check_broker_count(&args.data_dir, cluster.brokers.len(), wanted as usize)?;
                if wanted as usize > cluster.brokers.len() {
                    added = cluster.grow(wanted as usize, args.fault_domains, args.update_domains)?;
                    cluster.write(&args.data_dir)?;
                    eprintln!(
                        "kmon up: adding broker(s) {} to the cluster in {}",
                        added
                            .iter()
                            .map(|b| format!("{} ({}/{})", b.id, b.fault_domain, b.update_domain))
                            .collect::<Vec<_>>()
                            .join(", "),
                        args.data_dir.display()
                    );
                }
            }
            if args.base_port.is_some()
                || args.base_metrics_port.is_some()
                || args.base_kafka_port.is_some()
                || args.layout.is_some()
                || args.fault_domains.is_some()
                || args.update_domains.is_some()
            {
                eprintln!(
                    "kmon up: restarting the cluster as stored in {}; layout and port flags are ignored",
                    path.display()
                );
            }
            return Ok((cluster, added));
        }
        let cluster = ClusterLayout::new(args)?;
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
        cluster.write(&args.data_dir)?;
        Ok((cluster, Vec::new()))
    }
}

/// `--brokers` on an existing cluster: the same count restarts it, more
/// adds brokers; fewer is a scale-down, refused as the broker refuses
/// `RemoveBroker`.
fn check_broker_count(dir: &Path, stored: usize, wanted: usize) -> anyhow::Result<()> {
    if wanted < stored {
        let what = format!("restarting the cluster in {} with {wanted} of its {stored} brokers", dir.display());
        bail!("{}", kmon_broker::balance::scale_down::refusal(&what));
    }
    Ok(())
}

/// Whether broker 1 of the layout answers (the cluster runs under another
/// `kmon up`).
async fn is_running(cluster: &ClusterLayout) -> bool {
    let probe = async { Admin::connect(&cluster.brokers[0].listen).await?.metadata(&[]).await };
    matches!(tokio::time::timeout(Duration::from_secs(3), probe).await, Ok(Ok(_)))
}

/// A running `kmon broker` child (killed when dropped).
pub(super) struct BrokerChild {
    pub(super) layout: BrokerLayout,
    pub(super) log: PathBuf,
    pub(super) child: Child,
    /// Set once its exit was seen.
    exited: Option<ExitStatus>,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    crate::cmd::init_logging();
    let (cluster, added) = ClusterLayout::load_or_create(&args)?;
    let exe = std::env::current_exe().context("cannot find the kmon executable")?;
    let deadline = Instant::now() + START_DEADLINE;
    // Growing a running cluster: start only the new brokers (the other
    // `kmon up` keeps supervising the old ones and the agent).
    let running = !added.is_empty() && is_running(&cluster).await;
    let to_start = if running { added.clone() } else { cluster.brokers.clone() };

    // Signals first, so a Ctrl-C during start-up also stops the children.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    let mut children = Vec::with_capacity(to_start.len());
    let mut ready = Vec::with_capacity(to_start.len());
    for broker in &to_start {
        match spawn(&exe, &args.data_dir, &cluster, broker) {
            Ok((child, ready_line)) => {
                children.push(child);
                ready.push(ready_line);
            }
            Err(err) => {
                stop_all(&mut children).await;
                return Err(err);
            }
        }
    }

    let started = tokio::select! {
        result = wait_until_up(&cluster, &mut children, ready, deadline) => result,
        _ = term.recv() => Err(anyhow::anyhow!("interrupted during start-up")),
        _ = int.recv() => Err(anyhow::anyhow!("interrupted during start-up")),
    };
    if let Err(err) = started {
        stop_all(&mut children).await;
        return Err(err);
    }

    let mut agent = if running {
        None
    } else {
        match spawn_agent(&exe, &args, &cluster).await {
            Ok(agent) => Some(agent),
            Err(err) => {
                stop_all(&mut children).await;
                return Err(err);
            }
        }
    };

    println!("kmon cluster up: bootstrap {}", cluster.brokers[0].listen);
    println!(
        "Kafka clients: bootstrap.servers={} (e.g. kcat -b {} -L)",
        cluster.brokers.iter().map(|b| b.kafka_listen.as_str()).collect::<Vec<_>>().join(","),
        cluster.brokers[0].kafka_listen
    );
    print!("{}", render_table(&cluster));
    match &agent {
        Some(agent) => println!("node agent: metrics {} (log {})", agent.metrics, agent.log.display()),
        None => println!(
            "added broker(s) {} to the running cluster; this process supervises them",
            added.iter().map(|b| b.id.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
    println!("data and logs in {}; Ctrl-C to stop", args.data_dir.display());
    if !added.is_empty() && !args.rebalance {
        println!(
            "existing partitions stay where they are: `kmon rebalance plan` shows the imbalance, `kmon rebalance execute` fixes it"
        );
    }
    if args.rebalance {
        let bootstrap = cluster.brokers[0].listen.clone();
        let execute = super::rebalance::ExecuteArgs { topics: Vec::new(), throttle: args.throttle, no_wait: false };
        tokio::spawn(async move {
            let result = async {
                let admin = Admin::connect(&bootstrap).await?;
                super::rebalance::execute(&admin, &execute).await
            };
            if let Err(err) = result.await {
                eprintln!("kmon up: rebalance failed: {err:#}");
            }
        });
    }

    let mut watch = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = watch.tick() => report_exits(&mut children),
        }
    }
    match agent.as_mut() {
        Some(agent) => {
            eprintln!("kmon up: stopping the agent and {} brokers", children.len());
            agent.stop().await;
        }
        None => eprintln!("kmon up: stopping the {} brokers it added", children.len()),
    }
    stop_all(&mut children).await;
    Ok(())
}

/// The `kmon agent` child of `kmon up` (killed when dropped).
struct AgentChild {
    child: Child,
    metrics: String,
    log: PathBuf,
}

impl AgentChild {
    /// SIGTERM, up to [`STOP_GRACE`] to exit, then SIGKILL.
    async fn stop(&mut self) {
        sigterm(&mut self.child);
        if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
            eprintln!("kmon up: the agent did not stop within {STOP_GRACE:?}; killing it");
            let _ = self.child.kill().await;
        }
    }
}

/// Starts the node agent and waits for its ready line.
async fn spawn_agent(exe: &Path, args: &UpArgs, cluster: &ClusterLayout) -> anyhow::Result<AgentChild> {
    let port = match args.agent_metrics_port {
        Some(port) => port,
        None => {
            let first = &cluster.brokers[0].metrics_listen;
            let base: u16 = first.rsplit(':').next().and_then(|p| p.parse().ok()).context("broker 1's metrics port")?;
            base.checked_add(100).context("the agent's metrics port would be above 65535; use --agent-metrics-port")?
        }
    };
    let metrics = format!("{HOST}:{port}");
    let bootstrap = cluster.brokers.iter().map(|b| b.listen.as_str()).collect::<Vec<_>>().join(",");
    let log = args.data_dir.join("agent.log");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("agent")
        .args(["--bootstrap", &bootstrap])
        .args(["--metrics-listen", &metrics])
        .arg("--buffer-dir")
        .arg(args.data_dir.join("agent-buffer"))
        .env_remove("KMON_BOOTSTRAP")
        .env_remove("KMON_AGENT_METRICS_LISTEN")
        .env_remove("KMON_AGENT_BUFFER_DIR");
    let (mut child, rx) = start_child(command, stderr, AGENT_READY_PREFIX).context("cannot start the node agent")?;
    tokio::select! {
        line = rx => {
            if line.is_err() {
                let status = child.wait().await?;
                bail!("the node agent exited ({status}) before it was ready{}", log_tail(&log));
            }
        }
        status = child.wait() => bail!("the node agent exited ({}) before it was ready{}", status?, log_tail(&log)),
        () = tokio::time::sleep(AGENT_START_DEADLINE) => {
            bail!("the node agent was not ready within {AGENT_START_DEADLINE:?}{}", log_tail(&log))
        }
    }
    Ok(AgentChild { child, metrics, log })
}

/// Starts one broker; the receiver gets its ready line.
pub(super) fn spawn(
    exe: &Path,
    dir: &Path,
    cluster: &ClusterLayout,
    broker: &BrokerLayout,
) -> anyhow::Result<(BrokerChild, tokio::sync::oneshot::Receiver<String>)> {
    let data_dir = dir.join(&broker.data_dir);
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let log = dir.join(format!("broker-{}.log", broker.id));
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("broker")
        .args(["--id", &broker.id.to_string()])
        .args(["--fault-domain", &broker.fault_domain])
        .args(["--update-domain", &broker.update_domain])
        .args(["--controller-voters", &cluster.controller_voters])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", &broker.listen])
        .args(["--metrics-listen", &broker.metrics_listen])
        .args(["--kafka-listen", &broker.kafka_listen])
        .env_remove("KMON_BOOTSTRAP")
        .env_remove("KMON_KAFKA_LISTEN")
        .env_remove("KMON_DATA_DIR")
        .env_remove("KMON_LISTEN")
        .env_remove("KMON_METRICS_LISTEN")
        .env_remove("KMON_CONFIG");
    let (child, rx) =
        start_child(command, stderr, READY_PREFIX).with_context(|| format!("cannot start broker {}", broker.id))?;
    Ok((BrokerChild { layout: broker.clone(), log, child, exited: None }, rx))
}

/// Every broker printed its ready line, then `Metadata` shows a
/// controller and every broker alive.
pub(super) async fn wait_until_up(
    cluster: &ClusterLayout,
    children: &mut [BrokerChild],
    ready: Vec<tokio::sync::oneshot::Receiver<String>>,
    deadline: Instant,
) -> anyhow::Result<()> {
    for (child, ready) in children.iter_mut().zip(ready) {
        let id = child.layout.id;
        tokio::select! {
            line = ready => {
                if line.is_err() {
                    let status = child.child.wait().await?;
                    bail!("broker {id} exited ({status}) before it was ready{}", log_tail(&child.log));
                }
            }
            status = child.child.wait() => {
                let status = status?;
                bail!("broker {id} exited ({status}) before it was ready{}", log_tail(&child.log));
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                bail!("broker {id} was not ready within {START_DEADLINE:?}{}", log_tail(&child.log));
            }
        }
    }

    let bootstrap = &cluster.brokers[0].listen;
    let wanted: BTreeSet<i32> = cluster.brokers.iter().map(|b| b.id as i32).collect();
    let mut last;
    loop {
        match Admin::connect(bootstrap).await {
            Ok(admin) => match admin.metadata(&[]).await {
                Ok(metadata) => {
                    let alive: BTreeSet<i32> = metadata.brokers.iter().filter(|b| b.alive).map(|b| b.id).collect();
                    if metadata.controller_id >= 0 && wanted.is_subset(&alive) {
                        return Ok(());
                    }
                    let missing: Vec<String> = wanted.difference(&alive).map(i32::to_string).collect();
                    last = format!(
                        "controller {}, brokers not alive yet: {}",
                        if metadata.controller_id >= 0 { metadata.controller_id.to_string() } else { "none".into() },
                        if missing.is_empty() { "none".into() } else { missing.join(",") }
                    );
                }
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = err.to_string(),
        }
        for child in children.iter_mut() {
            if let Some(status) = child.child.try_wait()? {
                bail!("broker {} exited ({status}) during start-up{}", child.layout.id, log_tail(&child.log));
            }
        }
        if Instant::now() >= deadline {
            bail!("the cluster did not come up within {START_DEADLINE:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reports brokers that exited on their own (once each).
fn report_exits(children: &mut [BrokerChild]) {
    for child in children.iter_mut().filter(|c| c.exited.is_none()) {
        if let Ok(Some(status)) = child.child.try_wait() {
            child.exited = Some(status);
            eprintln!(
                "kmon up: broker {} ({}) exited unexpectedly ({status}); the others keep running{}",
                child.layout.id,
                child.layout.listen,
                log_tail(&child.log)
            );
        }
    }
}

/// Asks a child that is still running to stop (SIGTERM).
fn sigterm(child: &mut Child) {
    if let Ok(None) = child.try_wait()
        && let Some(pid) = child.id()
    {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// SIGTERM to every broker, then up to [`STOP_GRACE`] for each to exit,
/// then SIGKILL.
pub(super) async fn stop_all(children: &mut [BrokerChild]) {
    for child in children.iter_mut() {
        sigterm(&mut child.child);
    }
    let deadline = Instant::now() + STOP_GRACE;
    for child in children.iter_mut() {
        let id = child.layout.id;
        match tokio::time::timeout_at(deadline.into(), child.child.wait()).await {
            Ok(Ok(status)) if child.exited.is_none() => {
                eprintln!("kmon up: broker {id} stopped ({status})");
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!("kmon up: broker {id} did not stop within {STOP_GRACE:?}; killing it");
                let _ = child.child.kill().await;
            }
        }
    }
}

/// The last lines of a broker's log, for an error message.
pub(super) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(10)..];
    if tail.is_empty() {
        format!(" (log: {})", log.display())
    } else {
        format!("; last lines of {}:\n{}", log.display(), tail.join("\n"))
    }
}

fn render_table(cluster: &ClusterLayout) -> String {
    let mut rows = vec![[
        "ID".to_owned(),
        "GRPC".to_owned(),
        "METRICS".to_owned(),
        "KAFKA".to_owned(),
        "FD".to_owned(),
        "UD".to_owned(),
        "ROLE".to_owned(),
    ]];
    for (index, b) in cluster.brokers.iter().enumerate() {
        rows.push([
            b.id.to_string(),
            b.listen.clone(),
            b.metrics_listen.clone(),
            b.kafka_listen.clone(),
            b.fault_domain.clone(),
            b.update_domain.clone(),
            if index < MAX_VOTERS { "voter" } else { "learner" }.to_owned(),
        ]);
    }
    super::format::render_rows(&rows)
}

/// Spawns a child of `kmon up` logging to `stderr`, in its own process group
/// (a terminal's Ctrl-C reaches only `kmon up`, which then stops each child
/// with one clean SIGTERM), and watches its stdout for the ready line.
fn start_child(
    mut command: Command,
    stderr: std::fs::File,
    ready_prefix: &'static str,
) -> std::io::Result<(tokio::process::Child, tokio::sync::oneshot::Receiver<String>)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let rx = watch_ready_line(child.stdout.take().expect("stdout is piped"), ready_prefix);
    Ok((child, rx))
}

/// Reads a child's standard output and hands over the first line starting
/// with `prefix`; keeps reading after it so the pipe never fills.
fn watch_ready_line(
    stdout: tokio::process::ChildStdout,
    prefix: &'static str,
) -> tokio::sync::oneshot::Receiver<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with(prefix)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line);
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(brokers: Option<u32>) -> UpArgs {
        UpArgs {
            data_dir: PathBuf::from("unused"),
            brokers,
            rebalance: false,
            throttle: None,
            base_port: None,
            base_metrics_port: None,
            base_kafka_port: None,
            layout: None,
            fault_domains: None,
            update_domains: None,
            agent_metrics_port: None,
        }
    }

    #[test]
    fn layouts_of_the_grid() {
        assert_eq!(domains(Layout::Diagonal, 4, 2, 3), [(0, 0), (1, 1), (0, 1), (1, 2)]);
        assert_eq!(domains(Layout::Rows, 4, 3, 2), [(0, 0), (1, 0), (2, 0), (0, 1)]);
        assert_eq!(domains(Layout::Rows, 7, 3, 2)[6], (0, 0), "the grid starts again");
    }

    #[test]
    fn layout_ports_voters_and_domains() {
        let cluster = ClusterLayout::new(&args(Some(6))).unwrap();
        assert_eq!(
            cluster.controller_voters,
            "1@127.0.0.1:9092,2@127.0.0.1:9093,3@127.0.0.1:9094,4@127.0.0.1:9095,5@127.0.0.1:9096",
            "up to five voters; the sixth broker is a learner"
        );
        let b5 = &cluster.brokers[4];
        assert_eq!(b5.id, 5);
        assert_eq!(b5.listen, "127.0.0.1:9096");
        assert_eq!(b5.metrics_listen, "127.0.0.1:9648");
        assert_eq!((b5.fault_domain.as_str(), b5.update_domain.as_str()), ("FD1", "UD2"));
        assert_eq!(b5.data_dir, PathBuf::from("broker-5"));

        let one = ClusterLayout::new(&args(Some(1))).unwrap();
        assert_eq!(one.controller_voters, "1@127.0.0.1:9092");
        assert_eq!(ClusterLayout::new(&args(None)).unwrap().brokers.len(), 3);
    }

    #[test]
    fn colliding_ports_are_refused() {
        let mut overlap = args(Some(3));
        overlap.base_metrics_port = Some(9093);
        let err = ClusterLayout::new(&overlap).unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:9093"), "{err}");
        let mut high = args(Some(3));
        high.base_port = Some(65535);
        assert!(ClusterLayout::new(&high).is_err());
    }

    #[test]
    fn cluster_toml_round_trips_and_more_brokers_grow_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = args(Some(3));
        first.data_dir = dir.path().join("c");
        let (created, added) = ClusterLayout::load_or_create(&first).unwrap();
        assert!(added.is_empty());
        let mut again = args(None);
        again.data_dir = first.data_dir.clone();
        assert_eq!(ClusterLayout::load_or_create(&again).unwrap(), (created.clone(), vec![]));
        again.brokers = Some(6);
        let (grown, added) = ClusterLayout::load_or_create(&again).unwrap();
        assert_eq!(grown.brokers[..3], created.brokers[..], "the old brokers are kept as they were");
        assert_eq!(grown.controller_voters, created.controller_voters, "new brokers join as learners");
        let new: Vec<(u32, &str, &str, &str)> = added
            .iter()
            .map(|b| (b.id, b.listen.as_str(), b.fault_domain.as_str(), b.update_domain.as_str()))
            .collect();
        assert_eq!(
            new,
            [
                (4, "127.0.0.1:9095", "FD0", "UD1"),
                (5, "127.0.0.1:9096", "FD1", "UD2"),
                (6, "127.0.0.1:9097", "FD2", "UD0")
            ]
        );
        // Stored: the next start is the six-broker cluster.
        again.brokers = None;
        assert_eq!(ClusterLayout::load_or_create(&again).unwrap(), (grown, vec![]));
    }

    #[test]
    fn fewer_brokers_is_a_refused_scale_down_that_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = args(Some(4));
        first.data_dir = dir.path().join("c");
        let (created, _) = ClusterLayout::load_or_create(&first).unwrap();
        let toml_before = std::fs::read_to_string(first.data_dir.join(LAYOUT_FILE)).unwrap();
        let mut smaller = args(Some(2));
        smaller.data_dir = first.data_dir.clone();
        let err = ClusterLayout::load_or_create(&smaller).unwrap_err().to_string();
        assert!(err.starts_with("InvalidKafkaScaleDownRequestErrorCode: "), "{err}");
        assert!(err.contains("with 2 of its 4 brokers") && err.contains("Nothing was changed"), "{err}");
        assert!(err.contains("kmon rebalance plan"), "{err}");
        assert_eq!(std::fs::read_to_string(first.data_dir.join(LAYOUT_FILE)).unwrap(), toml_before);
        let mut again = args(None);
        again.data_dir = first.data_dir.clone();
        assert_eq!(ClusterLayout::load_or_create(&again).unwrap(), (created, vec![]));
    }
}
