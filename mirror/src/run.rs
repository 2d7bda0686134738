//! `kmon mirror`'s flags, start-up (check both clusters, make the internal
//! topics, load the offset syncs), the `/metrics` server and shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use kmon_client::{Admin, Consumer, ConsumerConfig, ErrorCode, OffsetSpec, Producer, ProducerConfig, Security};
use tokio::sync::watch;

use crate::checkpoint::Checkpointer;
use crate::error::{Context, MirrorError};
use crate::metrics::Metrics;
use crate::policy::ReplicationPolicy;
use crate::replicator::Replicator;
use crate::sync::{OffsetSync, OffsetSyncStore};

/// Printed on stdout once the mirror runs: `kmon mirror ready metrics=ADDR`.
pub const READY_PREFIX: &str = "kmon mirror ready";

/// How long start-up waits for a cluster to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, clap::Args)]
pub struct MirrorArgs {
    /// Any broker of the source cluster (records are read there).
    #[arg(long)]
    pub source: String,
    /// Any broker of the target cluster (copies are written there).
    #[arg(long)]
    pub target: String,
    /// The source cluster's name: the default topic prefix, and part of
    /// the internal topics' names.
    #[arg(long, default_value = "source")]
    pub source_alias: String,
    /// The target cluster's name: topics named `<target-alias>.x` on the
    /// source came from the target and are not sent back (cycle guard).
    #[arg(long, default_value = "target")]
    pub target_alias: String,
    /// Topics to mirror: a regex matching whole names.
    #[arg(long, default_value = ".*")]
    pub topics: String,
    /// Topics not to mirror, though --topics matches them.
    #[arg(long)]
    pub topics_exclude: Option<String>,
    /// Prefix of the mirrored topics' names (default `<source-alias>.`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Consumer groups whose offsets are checkpointed and synced (regex).
    #[arg(long, default_value = ".*")]
    pub groups: String,
    /// Groups left out though --groups matches them.
    #[arg(long)]
    pub groups_exclude: Option<String>,
    /// Group on the source holding the mirror's position (default
    /// `kmon-mirror.<source-alias>.<target-alias>`).
    #[arg(long)]
    pub group: Option<String>,
    /// Commit the position this often: a SIGKILLed mirror copies at most
    /// this much again on restart.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub commit_interval: Duration,
    /// Write checkpoints and sync group offsets this often.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub checkpoint_interval: Duration,
    /// Look for new topics and partitions this often.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub refresh_interval: Duration,
    /// Do not commit translated offsets to the groups on the target
    /// (checkpoints are still written).
    #[arg(long = "no-sync-group-offsets", action = clap::ArgAction::SetFalse)]
    pub sync_group_offsets: bool,
    /// Replication factor of topics created on the target (0: the
    /// target's default).
    #[arg(long, default_value_t = 0)]
    pub replication_factor: u32,
    /// Address of the mirror's /metrics.
    #[arg(long, default_value = "127.0.0.1:9755")]
    pub metrics_listen: SocketAddr,
    /// CA bundle (PEM) the source brokers are checked against: TLS to the
    /// source (each cluster has its own settings, like MirrorMaker 2's
    /// `source.security.protocol`).
    #[arg(long, env = "KMON_SOURCE_TLS_CA")]
    pub source_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the source (mutual TLS).
    #[arg(long, env = "KMON_SOURCE_TLS_CERT", requires_all = ["source_tls_key", "source_tls_ca"])]
    pub source_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --source-tls-cert.
    #[arg(long, env = "KMON_SOURCE_TLS_KEY", requires = "source_tls_cert")]
    pub source_tls_key: Option<PathBuf>,
    /// SCRAM user on the source (use with TLS).
    #[arg(long, env = "KMON_SOURCE_SASL_USERNAME", requires = "source_sasl_password")]
    pub source_sasl_username: Option<String>,
    #[arg(long, env = "KMON_SOURCE_SASL_PASSWORD", hide_env_values = true, requires = "source_sasl_username")]
    pub source_sasl_password: Option<String>,
    /// CA bundle (PEM) the target brokers are checked against: TLS to the
    /// target.
    #[arg(long, env = "KMON_TARGET_TLS_CA")]
    pub target_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the target (mutual TLS).
    #[arg(long, env = "KMON_TARGET_TLS_CERT", requires_all = ["target_tls_key", "target_tls_ca"])]
    pub target_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --target-tls-cert.
    #[arg(long, env = "KMON_TARGET_TLS_KEY", requires = "target_tls_cert")]
    pub target_tls_key: Option<PathBuf>,
    /// SCRAM user on the target (use with TLS).
    #[arg(long, env = "KMON_TARGET_SASL_USERNAME", requires = "target_sasl_password")]
    pub target_sasl_username: Option<String>,
    #[arg(long, env = "KMON_TARGET_SASL_PASSWORD", hide_env_values = true, requires = "target_sasl_username")]
    pub target_sasl_password: Option<String>,
}

impl MirrorArgs {
    pub fn position_group(&self) -> String {
        self.group.clone().unwrap_or_else(|| format!("kmon-mirror.{}.{}", self.source_alias, self.target_alias))
    }

    /// TLS and credentials for the source cluster's connections.
    pub fn source_security(&self) -> Result<Security, MirrorError> {
        security(
            "source",
            self.source_tls_ca.as_deref(),
            self.source_tls_cert.as_deref().zip(self.source_tls_key.as_deref()),
            self.source_sasl_username.as_deref().zip(self.source_sasl_password.as_deref()),
        )
    }

    /// TLS and credentials for the target cluster's connections.
    pub fn target_security(&self) -> Result<Security, MirrorError> {
        security(
            "target",
            self.target_tls_ca.as_deref(),
            self.target_tls_cert.as_deref().zip(self.target_tls_key.as_deref()),
            self.target_sasl_username.as_deref().zip(self.target_sasl_password.as_deref()),
        )
    }

    fn policy(&self) -> Result<ReplicationPolicy, MirrorError> {
        ReplicationPolicy::new(
            &self.source_alias,
            &self.target_alias,
            self.prefix.as_deref(),
            &self.topics,
            self.topics_exclude.as_deref(),
            &self.groups,
            self.groups_exclude.as_deref(),
        )
    }
}

/// One cluster's [`Security`] from its flags; errors name the cluster.
fn security(
    role: &'static str,
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
    scram: Option<(&str, &str)>,
) -> Result<Security, MirrorError> {
    let bad = |source| MirrorError::Security { role, source: Box::new(source) };
    let mut security = Security::plaintext();
    if let Some(ca) = ca {
        security = security.with_tls(ca, identity.map(|(cert, _)| cert), identity.map(|(_, key)| key)).map_err(bad)?;
    }
    if let Some((user, password)) = scram {
        security = security.with_scram(user, password).map_err(bad)?;
    }
    Ok(security)
}

/// What the copy loop and the checkpointer share.
pub(crate) struct Mirror {
    pub(crate) args: MirrorArgs,
    pub(crate) policy: ReplicationPolicy,
    pub(crate) source: Admin,
    pub(crate) target: Admin,
    /// acks=all, idempotent: the copies, offset syncs and checkpoints.
    pub(crate) producer: Producer,
    pub(crate) store: Mutex<OffsetSyncStore>,
    pub(crate) metrics: Metrics,
}

/// Mirrors until SIGINT/SIGTERM, then commits what is copied and exits.
pub async fn run(args: MirrorArgs) -> Result<(), MirrorError> {
    let policy = args.policy()?;
    if args.commit_interval.is_zero() || args.checkpoint_interval.is_zero() || args.refresh_interval.is_zero() {
        return Err(MirrorError::BadArgument(
            "--commit-interval, --checkpoint-interval and --refresh-interval must be above zero".into(),
        ));
    }
    let (source_security, target_security) = (args.source_security()?, args.target_security()?);
    let source = connect("source", &args.source, &source_security).await?;
    let target = connect("target", &args.target, &target_security).await?;
    for topic in [policy.offset_syncs_topic(), policy.checkpoints_topic()] {
        ensure_internal_topic(&target, &topic).await?;
    }
    let store = load_offset_syncs(&args.target, &target_security, &policy.offset_syncs_topic()).await?;
    let producer = Producer::connect(ProducerConfig {
        security: Some(target_security),
        ..ProducerConfig::new(args.target.clone())
    })
    .await
    .context(|| format!("starting the producer to the target at {}", args.target))?;
    let consumer = Consumer::connect(ConsumerConfig {
        security: Some(source_security),
        ..ConsumerConfig::new(args.source.clone())
    })
    .await
    .context(|| format!("starting the consumer of the source at {}", args.source))?;
    let listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .map_err(|e| MirrorError::Listen { address: args.metrics_listen.to_string(), reason: e.to_string() })?;
    let address = listener
        .local_addr()
        .map_err(|e| MirrorError::Listen { address: args.metrics_listen.to_string(), reason: e.to_string() })?;
    let mirror = Arc::new(Mirror {
        args: args.clone(),
        policy,
        source,
        target,
        producer,
        store: Mutex::new(store),
        metrics: Metrics::new(),
    });
    let app = Router::new().route("/metrics", get(metrics)).with_state(mirror.clone());
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "metrics server stopped");
        }
    });
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: committing what is copied");
        let _ = stop_tx.send(true);
    });
    let checkpointer = tokio::spawn(Checkpointer::new(mirror.clone()).run(stop.clone()));
    println!("{READY_PREFIX} metrics={address}");
    tracing::info!(source = %args.source, target = %args.target, topics = %args.topics, "mirroring");
    let result = Replicator::new(mirror.clone(), consumer).run(stop).await;
    let _ = checkpointer.await;
    result
}

/// An admin client that has answered once (a cluster that does not answer
/// is reported by name at start, not retried forever).
async fn connect(role: &'static str, bootstrap: &str, security: &Security) -> Result<Admin, MirrorError> {
    let unreachable =
        |source| MirrorError::Unreachable { role, bootstrap: bootstrap.to_owned(), source: Box::new(source) };
    let attempt = async {
        let admin = Admin::connect_with(bootstrap, security).await?;
        admin.list_topics().await?;
        Ok(admin)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(result) => result.map_err(unreachable),
        Err(_) => Err(unreachable(kmon_client::ClientError::Timeout(CONNECT_TIMEOUT))),
    }
}

/// Makes an internal topic of one partition on the target if missing.
async fn ensure_internal_topic(target: &Admin, topic: &str) -> Result<(), MirrorError> {
    match target.create_topic(topic, 1, 0, Vec::new()).await {
        Ok(_) => Ok(()),
        Err(err) if err.code() == Some(ErrorCode::TopicAlreadyExists) => Ok(()),
        Err(err) => Err(err).context(|| format!("creating {topic} on the target")),
    }
}

/// Reads every offset sync written so far (by this mirror before a restart).
async fn load_offset_syncs(target: &str, security: &Security, topic: &str) -> Result<OffsetSyncStore, MirrorError> {
    let what = || format!("reading {topic} on the target");
    let config = ConsumerConfig { security: Some(security.clone()), ..ConsumerConfig::new(target) };
    let mut consumer = Consumer::connect(config).await.context(what)?;
    consumer.assign_at(topic, 0, OffsetSpec::Earliest).await.context(what)?;
    let end = consumer.admin().list_offset(topic, 0, OffsetSpec::Latest).await.context(what)?.offset.unwrap_or(0);
    let mut store = OffsetSyncStore::default();
    let mut loaded = 0u64;
    while consumer.position(topic, 0).unwrap_or(end) < end {
        for record in consumer.poll().await.context(what)? {
            let sync = OffsetSync::decode(record.key.as_deref().unwrap_or_default(), &record.value)?;
            store.apply(&sync);
            loaded += 1;
        }
    }
    tracing::info!(topic, loaded, "offset syncs loaded");
    Ok(store)
}

async fn metrics(State(mirror): State<Arc<Mirror>>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], mirror.metrics.render())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
