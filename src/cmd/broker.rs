//! `kmon broker`: run one broker. The TOML file (`--config`) is read first;
//! flags override it.

use std::path::PathBuf;

use kmon_broker::BrokerConfig;
use tokio_util::sync::CancellationToken;

use crate::telemetry::Otlp;

#[derive(Debug, clap::Args)]
pub(crate) struct BrokerArgs {
    /// Data directory; repeat for several (a new partition goes to the least used).
    #[arg(long = "data-dir", env = "KMON_DATA_DIR", value_delimiter = ',')]
    data_dirs: Vec<PathBuf>,
    /// gRPC listen address, HOST:PORT (port 0: any free port).
    #[arg(long, env = "KMON_LISTEN")]
    listen: Option<String>,
    /// Prometheus /metrics listen address, HOST:PORT.
    #[arg(long, env = "KMON_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Kafka wire-protocol listen address, HOST:PORT (port 0: any free port),
    /// for Kafka clients (librdkafka, Java, kafka-python, kcat).
    #[arg(long, env = "KMON_KAFKA_LISTEN")]
    kafka_listen: Option<String>,
    /// TOML configuration file (see --print-default-config).
    #[arg(long, env = "KMON_CONFIG")]
    config: Option<PathBuf>,
    /// This broker's id in the cluster.
    #[arg(long = "id", env = "KMON_BROKER_ID")]
    broker_id: Option<i32>,
    /// Fault domain (brokers that fail together), e.g. FD0.
    #[arg(long, env = "KMON_FAULT_DOMAIN")]
    fault_domain: Option<String>,
    /// Update domain (brokers rebooted together), e.g. UD0.
    #[arg(long, env = "KMON_UPDATE_DOMAIN")]
    update_domain: Option<String>,
    /// Metadata quorum voters, `id@host:port,...` (empty: a cluster of one).
    #[arg(long, env = "KMON_CONTROLLER_VOTERS")]
    controller_voters: Option<String>,
    /// fsync policy: `interval` (default) or `always`.
    #[arg(long, value_parser = ["interval", "always"])]
    flush_policy: Option<String>,
    /// PEM certificate chain of the gRPC listener (turns TLS on; reloaded
    /// on SIGHUP or when the file changes).
    #[arg(long, env = "KMON_TLS_CERT")]
    tls_cert: Option<String>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "KMON_TLS_KEY")]
    tls_key: Option<String>,
    /// PEM CA bundle: peers must present a certificate it signed (mutual TLS).
    #[arg(long, env = "KMON_TLS_CA")]
    tls_ca: Option<String>,
    /// Certificate subject → principal rules (`RULE:pattern/replacement/[LU]`, `DEFAULT`).
    #[arg(long, env = "KMON_TLS_PRINCIPAL_MAPPING_RULES")]
    tls_principal_mapping_rules: Option<String>,
    /// Principals every ACL check allows, `;`-separated (`User:admin;User:broker`).
    #[arg(long, env = "KMON_SUPER_USERS")]
    super_users: Option<String>,
    /// SASL the Kafka listener requires: `SCRAM-SHA-512` (users: `kmon user add`).
    #[arg(long, env = "KMON_KAFKA_SASL_MECHANISMS")]
    kafka_sasl_mechanisms: Option<String>,
    /// Print the default configuration as TOML and exit.
    #[arg(long)]
    print_default_config: bool,
    #[command(flatten)]
    otlp: crate::telemetry::OtlpArgs,
}

impl BrokerArgs {
    /// File first, then flags.
    pub(crate) fn into_config(self) -> anyhow::Result<BrokerConfig> {
        let mut config = match &self.config {
            Some(path) => BrokerConfig::from_toml_file(path)?,
            None => BrokerConfig::default(),
        };
        if !self.data_dirs.is_empty() {
            config.data_dirs = self.data_dirs;
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(metrics_listen) = self.metrics_listen {
            config.metrics_listen = metrics_listen;
        }
        if let Some(kafka_listen) = self.kafka_listen {
            config.kafka_listen = kafka_listen;
        }
        if let Some(id) = self.broker_id {
            config.broker_id = id;
        }
        if let Some(fd) = self.fault_domain {
            config.fault_domain = fd;
        }
        if let Some(ud) = self.update_domain {
            config.update_domain = ud;
        }
        if let Some(voters) = self.controller_voters {
            config.controller_voters = voters;
        }
        if let Some(endpoint) = self.otlp.otlp_endpoint {
            config.otlp_endpoint = endpoint;
        }
        if let Some(interval) = self.otlp.otlp_interval {
            config.otlp_interval_ms = interval.as_millis().max(1) as u64;
        }
        for (flag, key) in [
            (self.tls_cert, &mut config.tls_cert),
            (self.tls_key, &mut config.tls_key),
            (self.tls_ca, &mut config.tls_ca),
            (self.tls_principal_mapping_rules, &mut config.tls_principal_mapping_rules),
            (self.super_users, &mut config.super_users),
            (self.kafka_sasl_mechanisms, &mut config.kafka_sasl_mechanisms),
        ] {
            if let Some(value) = flag {
                *key = value;
            }
        }
        if let Some(policy) = self.flush_policy {
            config.log_flush_policy = toml::Value::String(policy).try_into()?;
        }
        config.validate()?;
        Ok(config)
    }
}

pub(crate) async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        print!("{}", BrokerConfig::default().to_toml());
        return Ok(());
    }
    let config = args.into_config()?;
    let otlp = (!config.otlp_endpoint.is_empty())
        .then(|| {
            let resource = vec![
                ("kmon.broker.id", config.broker_id.to_string()),
                ("kmon.fault_domain", config.fault_domain.clone()),
                ("kmon.update_domain", config.update_domain.clone()),
            ];
            let interval = std::time::Duration::from_millis(config.otlp_interval_ms);
            Otlp::new(&config.otlp_endpoint, interval, "kmon-broker", resource)
        })
        .transpose()?;
    let telemetry = crate::cmd::init_telemetry(otlp.as_ref())?;
    let shutdown = CancellationToken::new();
    let grace = std::time::Duration::from_millis(config.shutdown_grace_ms);
    tokio::spawn(cancel_on_signal(shutdown.clone(), grace));
    let mut exporter = None;
    let result = kmon_broker::server::run_with(config, shutdown.clone(), kmon_kafka::FRONTENDS, |broker| {
        exporter = otlp.as_ref().map(|otlp| {
            let render = move || {
                Some(kmon_broker::metrics::render(broker.as_ref(), kmon_broker::metrics::Format::PrometheusText, None))
            };
            crate::telemetry::spawn_metrics(otlp, render, shutdown.clone())
        });
    })
    .await;
    shutdown.cancel();
    if let Some(exporter) = exporter {
        let _ = exporter.await;
    }
    telemetry.shutdown().await;
    result?;
    Ok(())
}

/// SIGINT or SIGTERM starts a graceful shutdown; a second signal, or
/// `grace` passing without the broker having stopped, exits.
pub(crate) async fn cancel_on_signal(shutdown: CancellationToken, grace: std::time::Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down (signal again to exit at once)");
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => std::process::exit(130),
        _ = int.recv() => std::process::exit(130),
        _ = tokio::time::sleep(grace) => {
            tracing::error!(grace_ms = grace.as_millis() as u64, "did not stop within shutdown_grace_ms; exiting");
            std::process::exit(1);
        }
    }
}
