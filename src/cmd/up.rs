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
//! With `--secure`, the cluster runs with mutual TLS on gRPC, between
//! brokers and on the Kafka listeners, and with ACLs enforced: a local CA
//! and certificates are made in `DIR/tls` on first start and reused after
//! (see [`kmon_cluster::secure`]); `kmon up` prints the client settings. A
//! DIR started secure is not started again without `--secure`.
//!
//! The layout and the child processes are `kmon-cluster`'s (`cluster/`),
//! shared with the benches (`bench/`), which run their own clusters on
//! free ports.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kmon_client::Admin;
use kmon_cluster::process::{is_running, open_log, report_exits, sigterm};
use kmon_cluster::{
    ClusterLayout, HOST, Layout, LayoutRequest, MAX_VOTERS, START_DEADLINE, STOP_GRACE, Secure, log_tail, secure,
    spawn, start_child, stop_all, wait_until_up,
};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

/// Bound on the agent's start-up.
const AGENT_START_DEADLINE: Duration = Duration::from_secs(20);
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
    #[arg(long, requires = "rebalance", value_parser = kmon_client::admin::parse_rate)]
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
    /// Mutual TLS on every listener and ACLs on, with a local CA and
    /// certificates made in DIR/tls (once; reused on restart).
    #[arg(long)]
    secure: bool,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    crate::cmd::init_logging();
    if !args.secure && secure::is_secure(&args.data_dir) {
        bail!(
            "{} holds a cluster started with --secure (its CA is in {}); run `kmon up --secure`",
            args.data_dir.display(),
            args.data_dir.join(secure::TLS_DIR).display()
        );
    }
    let (cluster, added) = ClusterLayout::load_or_create(&layout_request(&args))?;
    let secure = if args.secure {
        let secure = Secure::prepare(&args.data_dir)?;
        // This process checks the cluster (and rebalances) as the admin.
        secure.use_admin_identity()?;
        Some(secure)
    } else {
        None
    };
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
        match spawn(&exe, &args.data_dir, &cluster, broker, secure.as_ref()) {
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
        match spawn_agent(&exe, &args, &cluster, secure.as_ref()).await {
            Ok(agent) => Some(agent),
            Err(err) => {
                stop_all(&mut children).await;
                return Err(err);
            }
        }
    };

    println!("kmon cluster up: bootstrap {}", cluster.brokers[0].listen);
    let servers = cluster.brokers.iter().map(|b| b.kafka_listen.as_str()).collect::<Vec<_>>().join(",");
    match &secure {
        None => {
            println!("Kafka clients: bootstrap.servers={servers} (e.g. kcat -b {} -L)", cluster.brokers[0].kafka_listen)
        }
        Some(_) => println!("Kafka clients: bootstrap.servers={servers} (with the TLS settings below)"),
    }
    print!("{}", render_table(&cluster));
    match &agent {
        Some(agent) => println!("node agent: metrics {} (log {})", agent.metrics, agent.log.display()),
        None => println!(
            "added broker(s) {} to the running cluster; this process supervises them",
            added.iter().map(|b| b.id.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
    if let Some(secure) = &secure {
        print!("{}", secure_instructions(secure, &cluster));
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

/// The layout part of `kmon up`'s flags.
fn layout_request(args: &UpArgs) -> LayoutRequest {
    LayoutRequest {
        data_dir: args.data_dir.clone(),
        brokers: args.brokers,
        base_port: args.base_port,
        base_metrics_port: args.base_metrics_port,
        base_kafka_port: args.base_kafka_port,
        layout: args.layout,
        fault_domains: args.fault_domains,
        update_domains: args.update_domains,
    }
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
async fn spawn_agent(
    exe: &Path,
    args: &UpArgs,
    cluster: &ClusterLayout,
    secure: Option<&Secure>,
) -> anyhow::Result<AgentChild> {
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
    let stderr = open_log(&log)?;
    let mut command = Command::new(exe);
    command
        .arg("agent")
        .args(["--bootstrap", &bootstrap])
        .args(["--metrics-listen", &metrics])
        .arg("--buffer-dir")
        .arg(args.data_dir.join("agent-buffer"))
        .env_remove("KMON_BOOTSTRAP")
        .env_remove("KMON_AGENT_METRICS_LISTEN")
        .env_remove("KMON_AGENT_BUFFER_DIR")
        .env_remove("KMON_TLS_CA")
        .env_remove("KMON_TLS_CERT")
        .env_remove("KMON_TLS_KEY");
    if let Some(secure) = secure {
        for (flag, path) in
            [("--tls-ca", &secure.agent.ca), ("--tls-cert", &secure.agent.cert), ("--tls-key", &secure.agent.key)]
        {
            command.arg(flag).arg(path.as_deref().context("the agent's TLS files")?);
        }
    }
    let (mut child, rx) =
        start_child(command, stderr, kmon_agent::READY_PREFIX).context("cannot start the node agent")?;
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

/// How to point kmon and Kafka clients at a secure cluster, as the admin.
fn secure_instructions(secure: &Secure, cluster: &ClusterLayout) -> String {
    let env: Vec<String> = secure.admin_env().iter().map(|(name, value)| format!("{name}={value}")).collect();
    let librdkafka = secure.admin_librdkafka();
    let kcat: Vec<String> = librdkafka.iter().map(|(name, value)| format!("-X {name}={value}")).collect();
    let properties: Vec<String> = librdkafka.iter().map(|(name, value)| format!("  {name}={value}\n")).collect();
    format!(
        "secure: mutual TLS on every listener, ACLs on; CA and certificates in {dir}\n\
         the admin ({admin}, a super user, as are the brokers and the agent) for kmon:\n\
         \x20 export {env}\n\
         for Kafka clients (librdkafka, kcat, confluent-kafka):\n\
         {properties}\
         \x20 e.g. kcat -b {kafka} {kcat} -L\n\
         other users: a certificate signed by {dir}/ca.crt (CN = the user name) and ACLs (`kmon acl add`)\n",
        dir = secure.dir.display(),
        admin = secure::ADMIN_PRINCIPAL,
        env = env.join(" "),
        properties = properties.concat(),
        kafka = cluster.brokers[0].kafka_listen,
        kcat = kcat.join(" "),
    )
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

#[cfg(test)]
mod tests {
    use kmon_cluster::{LAYOUT_FILE, domains};

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
            secure: false,
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
        let cluster = ClusterLayout::new(&layout_request(&args(Some(6)))).unwrap();
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

        let one = ClusterLayout::new(&layout_request(&args(Some(1)))).unwrap();
        assert_eq!(one.controller_voters, "1@127.0.0.1:9092");
        assert_eq!(ClusterLayout::new(&layout_request(&args(None))).unwrap().brokers.len(), 3);
    }

    #[test]
    fn colliding_ports_are_refused() {
        let mut overlap = args(Some(3));
        overlap.base_metrics_port = Some(9093);
        let err = ClusterLayout::new(&layout_request(&overlap)).unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:9093"), "{err}");
        let mut high = args(Some(3));
        high.base_port = Some(65535);
        assert!(ClusterLayout::new(&layout_request(&high)).is_err());
    }

    #[test]
    fn cluster_toml_round_trips_and_more_brokers_grow_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = args(Some(3));
        first.data_dir = dir.path().join("c");
        let (created, added) = ClusterLayout::load_or_create(&layout_request(&first)).unwrap();
        assert!(added.is_empty());
        let mut again = args(None);
        again.data_dir = first.data_dir.clone();
        assert_eq!(ClusterLayout::load_or_create(&layout_request(&again)).unwrap(), (created.clone(), vec![]));
        again.brokers = Some(6);
        let (grown, added) = ClusterLayout::load_or_create(&layout_request(&again)).unwrap();
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
        assert_eq!(ClusterLayout::load_or_create(&layout_request(&again)).unwrap(), (grown, vec![]));
    }

    #[test]
    fn fewer_brokers_is_a_refused_scale_down_that_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = args(Some(4));
        first.data_dir = dir.path().join("c");
        let (created, _) = ClusterLayout::load_or_create(&layout_request(&first)).unwrap();
        let toml_before = std::fs::read_to_string(first.data_dir.join(LAYOUT_FILE)).unwrap();
        let mut smaller = args(Some(2));
        smaller.data_dir = first.data_dir.clone();
        let err = ClusterLayout::load_or_create(&layout_request(&smaller)).unwrap_err().to_string();
        assert!(err.starts_with("InvalidKafkaScaleDownRequestErrorCode: "), "{err}");
        assert!(err.contains("with 2 of its 4 brokers") && err.contains("Nothing was changed"), "{err}");
        assert!(err.contains("kmon rebalance plan"), "{err}");
        assert_eq!(std::fs::read_to_string(first.data_dir.join(LAYOUT_FILE)).unwrap(), toml_before);
        let mut again = args(None);
        again.data_dir = first.data_dir.clone();
        assert_eq!(ClusterLayout::load_or_create(&layout_request(&again)).unwrap(), (created, vec![]));
    }
}
