//! `kmon agent`: run the node agent (see the `kmon-agent` crate): host
//! metrics on `--metrics-listen` under node_exporter names, shipped to the
//! cluster's `__kmon_node_metrics` topic with a sample of the cluster's own
//! figures (for `kmon report`), buffered on disk while no broker answers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use kmon_agent::AgentConfig;
use kmon_agent::config::{DEFAULT_BUFFER_BYTES, DEFAULT_DISK_DEVICE_EXCLUDE, DeviceExclude, default_node_name};
use tokio_util::sync::CancellationToken;

use crate::telemetry::{self, Otlp};

#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// Brokers to ship to, HOST:PORT; repeat or separate with commas (tried in turn).
    #[arg(long, env = "KMON_BOOTSTRAP", value_delimiter = ',', required = true)]
    bootstrap: Vec<String>,
    /// Where the agent serves /metrics, HOST:PORT (port 0: any free port).
    #[arg(long, env = "KMON_AGENT_METRICS_LISTEN", default_value = "127.0.0.1:9744")]
    metrics_listen: String,
    /// How often a sample is taken and shipped, e.g. 5s, 200ms.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// This node's name in the samples (default: the host name).
    #[arg(long, env = "KMON_NODE")]
    node: Option<String>,
    /// The disk buffer's directory.
    #[arg(long, env = "KMON_AGENT_BUFFER_DIR", default_value = "kmon-agent-buffer")]
    buffer_dir: PathBuf,
    /// Bound on the disk buffer; when full the oldest samples are dropped (and counted).
    #[arg(long, default_value_t = DEFAULT_BUFFER_BYTES)]
    buffer_max_bytes: u64,
    /// Do not take the cluster sample (throughput, lag per group, ISR and
    /// partitions per broker, from Metadata and the brokers' /metrics) that
    /// is shipped beside the host figures for `kmon report`; with one agent
    /// per node, one or two of them are enough.
    #[arg(long)]
    no_cluster_sample: bool,
    /// Block devices (names as in /proc/diskstats) left out of the
    /// node_disk_* series, a regex; the default is node_exporter's
    /// (partitions, ram, zram, loop, floppy), so whole disks and dm-N stay.
    /// An empty value leaves out nothing.
    #[arg(long, env = "KMON_AGENT_DISK_DEVICE_EXCLUDE", default_value = DEFAULT_DISK_DEVICE_EXCLUDE)]
    disk_device_exclude: DeviceExclude,
    /// CA bundle (PEM) the brokers' certificates are checked against; turns
    /// TLS on for shipping and the cluster sample.
    #[arg(long, env = "KMON_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// The agent's certificate (PEM), presented to brokers with mutual TLS.
    #[arg(long, env = "KMON_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "KMON_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    otlp: crate::telemetry::OtlpArgs,
}

pub(crate) async fn run(args: AgentArgs) -> anyhow::Result<()> {
    if let Some(ca) = &args.tls_ca {
        kmon_client::connection::use_tls(ca, args.tls_cert.as_deref(), args.tls_key.as_deref())?;
    }
    let node = args.node.unwrap_or_else(default_node_name);
    let otlp = match &args.otlp.otlp_endpoint {
        Some(endpoint) => Some(Otlp::new(
            endpoint,
            args.otlp.otlp_interval.unwrap_or(telemetry::DEFAULT_INTERVAL),
            "kmon-agent",
            vec![("kmon.node", node.clone())],
        )?),
        None => None,
    };
    let telemetry = crate::cmd::init_telemetry(otlp.as_ref())?;
    let config = AgentConfig {
        bootstrap: args.bootstrap.into_iter().map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()).collect(),
        metrics_listen: args.metrics_listen,
        interval: args.interval,
        node,
        buffer_dir: args.buffer_dir,
        buffer_max_bytes: args.buffer_max_bytes,
        cluster_sample: !args.no_cluster_sample,
        disk_device_exclude: args.disk_device_exclude,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            shutdown.cancel();
        }
    });
    // The exporter scrapes the agent's own /metrics at the address it bound
    // (which may be an ephemeral port), once the agent reports it.
    let bound: Arc<OnceLock<SocketAddr>> = Arc::new(OnceLock::new());
    let exporter = otlp.as_ref().map(|otlp| {
        let bound = bound.clone();
        telemetry::spawn_metrics(
            otlp,
            move || {
                bound
                    .get()
                    .and_then(|addr| telemetry::local_scrape_address(&addr.to_string()))
                    .and_then(telemetry::scrape_local)
            },
            shutdown.clone(),
        )
    });
    let result = kmon_agent::run_with(config, shutdown.clone(), move |addr| {
        let _ = bound.set(addr);
    })
    .await
    .context("agent failed");
    shutdown.cancel();
    if let Some(exporter) = exporter {
        let _ = exporter.await;
    }
    telemetry.shutdown().await;
    result
}
