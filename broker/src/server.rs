//! Starting and stopping a broker, as one readable sequence: bind, recover
//! logs, join the metadata quorum, serve gRPC (client API, quorum,
//! replication) and `/metrics`, register, then run the background loops
//! until shutdown flushes every log.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::controller::state::BrokerRecord;
use crate::controller::{Controller, ControllerConfig};
use crate::error::{BrokerError, Result};
use crate::group::GroupCoordinator;
use crate::log::LogManager;
use crate::metrics::timing::TimingLayer;
use crate::metrics::{self, BrokerMetrics};
use crate::replication::ReplicaManager;
use crate::replication::lifecycle::{self, Liveness};
use crate::replication::reassignment;
use crate::service::KmonService;
use crate::service::replication::ReplicationService;
use crate::tasks::Tasks;
use crate::tls::BrokerTls;
use tonic::service::interceptor::InterceptedService;

/// The line a broker prints on standard output once it serves and has
/// registered, so scripts and tests can learn the ports it bound.
pub const READY_PREFIX: &str = "kmon broker ready";
/// Where the metadata quorum keeps its Raft log and snapshots, inside the
/// first data directory.
pub const METADATA_DIR: &str = "__cluster_metadata";

/// Serves a protocol other than gRPC (the Kafka listener of `kmon-kafka`)
/// on a listener the broker bound, over the same broker, until `shutdown`;
/// with the broker's TLS when it has some.
pub type ServeFn = fn(TcpListener, Arc<Broker>, Option<Arc<BrokerTls>>, CancellationToken) -> BoxFuture<'static, ()>;

/// The protocols served beside gRPC; each listens only when its address is
/// configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Frontends {
    /// Serves `kafka_listen`.
    pub kafka: Option<ServeFn>,
}

/// Runs a broker until `shutdown` is cancelled.
pub async fn run(config: BrokerConfig, shutdown: CancellationToken) -> Result<()> {
    run_with(config, shutdown, Frontends::default(), |_| {}).await
}

/// [`run`], calling `on_start` with the broker once it exists (logs
/// recovered, quorum joined), before it serves: the hook for what lives
/// outside this crate and reads the broker, such as the OTLP metrics
/// exporter of the `kmon` binary. What it spawns should stop on `shutdown`.
pub async fn run_with(
    config: BrokerConfig,
    shutdown: CancellationToken,
    frontends: Frontends,
    on_start: impl FnOnce(Arc<Broker>),
) -> Result<()> {
    metrics::mark_process_start();
    config.validate()?;
    let kafka_serve = match (config.kafka_listen.is_empty(), frontends.kafka) {
        (true, _) => None,
        (false, Some(serve)) => Some(serve),
        (false, None) => {
            return Err(BrokerError::Config(format!(
                "kafka_listen: '{}' is set, but this program serves no Kafka listener (run `kmon broker`)",
                config.kafka_listen
            )));
        }
    };
    let tls = BrokerTls::from_config(&config)?;
    let grpc_listener = bind(&config.listen).await?;
    let metrics_listener = bind(&config.metrics_listen).await?;
    let kafka_listener = match kafka_serve {
        Some(_) => Some(bind(&config.kafka_listen).await?),
        None => None,
    };
    let address = local_addr(&grpc_listener)?;
    let metrics_address = local_addr(&metrics_listener)?;
    let kafka_address = kafka_listener.as_ref().map(local_addr).transpose()?;

    // 1. Recover every partition log found on disk (whatever the metadata
    //    says later, nothing stored is dropped here).
    let started = std::time::Instant::now();
    let data_dirs = config.data_dirs.clone();
    let default_log_config = Arc::new(config.default_log_config());
    let logs = tokio::task::spawn_blocking(move || LogManager::open(&data_dirs, |_| Some(default_log_config.clone())))
        .await
        .expect("recovery task panicked")?;
    let logs = Arc::new(logs);
    // Recovery cut a torn tail, or the last run was killed with appends not
    // yet synced (even with log_flush_policy = always: a follower's copies
    // are synced by the interval only): records this broker had may be
    // gone, so it registers as shut down uncleanly (see
    // `BrokerRecord::unclean_shutdown`).
    let unclean_shutdown = logs.recovery_cut_bytes() > 0 || !logs.clean_shutdown();
    if unclean_shutdown {
        tracing::warn!(
            cut_bytes = logs.recovery_cut_bytes(),
            clean_shutdown_marker = logs.clean_shutdown(),
            "unclean shutdown: recovery cut log tails or the last run did not close its logs"
        );
    }
    tracing::info!(partitions = logs.all().len(), elapsed_ms = started.elapsed().as_millis() as u64, "logs recovered");

    // 2. Join the metadata quorum (alone, when no voters are configured).
    let mut voters = config.voters()?;
    if voters.is_empty() {
        voters.insert(config.broker_id, address.to_string());
    }
    let controller = Controller::start(ControllerConfig {
        node_id: config.broker_id,
        voters: voters.clone(),
        dir: config.data_dirs[0].join(METADATA_DIR),
        heartbeat_interval_ms: 100,
        election_timeout_min_ms: 400,
        election_timeout_max_ms: 800,
    })
    .await
    .map_err(|e| BrokerError::Controller(e.to_string()))?;

    // 3. The broker itself. Everything it spawns from here on is tracked
    //    by `tasks` and stopped by `shutdown`.
    let tasks = Tasks::new(shutdown.clone());
    let metrics = Arc::new(BrokerMetrics::new(config.metrics_enabled));
    let replicas =
        Arc::new(ReplicaManager::new(config.clone(), logs.clone(), controller.clone(), metrics.clone(), tasks.clone()));
    let liveness = Arc::new(Liveness::default());
    let groups = Arc::new(GroupCoordinator::new(replicas.clone(), config.group_config()));
    let broker = Arc::new(Broker::new(
        config.clone(),
        logs,
        controller.clone(),
        replicas.clone(),
        liveness.clone(),
        groups.clone(),
        metrics,
        address,
        metrics_address,
    ));
    on_start(broker.clone());

    // 4. Serve: the client API, the quorum and replication share the port.
    let grpc = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .layer(TimingLayer::new(broker.metrics.clone()))
        .add_service(KmonService::new(broker.clone(), shutdown.clone()).into_server())
        // Only other brokers use these: ClusterAction on the cluster.
        .add_service(InterceptedService::new(controller.service(), broker.authorizer.cluster_action_interceptor()))
        .add_service(InterceptedService::new(
            ReplicationService::new(broker.clone()).into_server(),
            broker.authorizer.cluster_action_interceptor(),
        ))
        .add_service(crate::service::agent::AgentService::new(broker.clone()).into_server());
    let grpc = match tls.clone() {
        Some(tls) => {
            tasks.spawn(tls.clone().reload_loop(broker.metrics.clone(), shutdown.clone()));
            let incoming = tls.incoming(grpc_listener, broker.metrics.clone(), shutdown.clone());
            tokio::spawn(grpc.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()))
        }
        None => {
            let connections = broker.metrics.clone();
            let incoming = TcpListenerStream::new(grpc_listener).map(move |conn| {
                conn.map(|stream| {
                    let _ = stream.set_nodelay(true);
                    metrics::Counted::new(stream, connections.connection_opened(metrics::GRPC_LISTENER))
                })
            });
            tokio::spawn(grpc.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()))
        }
    };
    tasks.spawn({
        let (broker, shutdown) = (broker.clone(), shutdown.clone());
        async move {
            if let Err(err) = metrics::serve(metrics_listener, broker, shutdown).await {
                tracing::error!(error = %err, "metrics server failed");
            }
        }
    });
    if let (Some(serve), Some(listener)) = (kafka_serve, kafka_listener) {
        tasks.spawn(serve(listener, broker.clone(), tls, shutdown.clone()));
    }
    tasks.spawn(replicas.clone().metadata_loop());
    tasks.spawn(replicas.clone().isr_shrink_loop());
    tasks.spawn(groups.clone().metadata_loop());
    tasks.spawn(groups.clone().tick_loop());
    tasks.spawn(lifecycle::fencing_loop(
        controller.clone(),
        liveness.clone(),
        Duration::from_millis(config.broker_session_timeout_ms),
        shutdown.clone(),
    ));
    tasks.spawn(reassignment::completion_loop(controller.clone(), shutdown.clone()));
    tasks.spawn(learner_loop(controller.clone(), voters.keys().copied().collect(), shutdown.clone()));
    tasks.spawn(flush_loop(broker.clone(), shutdown.clone()));
    tasks.spawn(retention_loop(broker.clone(), shutdown.clone()));

    // 5. Register, then heartbeat.
    let record = BrokerRecord {
        id: config.broker_id,
        address: address.to_string(),
        metrics_address: metrics_address.to_string(),
        kafka_address: kafka_address.map(|a| a.to_string()).unwrap_or_default(),
        fault_domain: config.fault_domain.clone(),
        update_domain: config.update_domain.clone(),
        fenced: false,
        incarnation: replicas.incarnation,
        unclean_shutdown,
    };
    if lifecycle::register(&controller, record, &shutdown).await {
        tasks.spawn(lifecycle::heartbeat_loop(
            controller.clone(),
            liveness,
            config.broker_id,
            Duration::from_millis(config.broker_heartbeat_interval_ms),
            shutdown.clone(),
        ));
        let kafka = kafka_address.map(|a| format!(" kafka={a}")).unwrap_or_default();
        println!("{READY_PREFIX} grpc={address} metrics={metrics_address}{kafka} id={}", config.broker_id);
        tracing::info!(%address, %metrics_address, broker = config.broker_id, "broker serving");
    }

    let served = grpc.await.expect("gRPC server task panicked");
    tasks.stop().await;
    controller.shutdown().await;
    let logs = broker.logs.clone();
    tokio::task::spawn_blocking(move || logs.close_all()).await.expect("close task panicked");
    tracing::info!("broker stopped");
    served.map_err(|e| BrokerError::Storage { context: format!("gRPC server: {e}"), source: std::io::Error::other(e) })
}

async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| BrokerError::Storage { context: format!("binding {addr}"), source })
}

fn local_addr(listener: &TcpListener) -> Result<std::net::SocketAddr> {
    listener.local_addr().map_err(|source| BrokerError::Storage { context: "local address".into(), source })
}

/// On the active controller: brokers beyond the voters join the quorum as
/// learners, so they get the metadata too.
async fn learner_loop(controller: Controller, voters: std::collections::BTreeSet<i32>, shutdown: CancellationToken) {
    let mut added = std::collections::BTreeSet::new();
    let mut state = controller.state();
    loop {
        if controller.is_leader() {
            let brokers: Vec<(i32, String)> = state
                .borrow_and_update()
                .brokers
                .values()
                .filter(|b| !voters.contains(&b.id) && !added.contains(&b.id))
                .map(|b| (b.id, b.address.clone()))
                .collect();
            for (id, address) in brokers {
                match controller.add_learner(id, address).await {
                    Ok(()) => {
                        added.insert(id);
                    }
                    Err(err) => tracing::warn!(broker = id, error = %err, "adding learner failed"),
                }
            }
        } else {
            added.clear();
        }
        tokio::select! {
            _ = state.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Every flush interval: syncs what was appended since (all of it with the
/// `interval` policy; replicated appends with `always`) and saves new topic
/// ids.
async fn flush_loop(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(broker.config.flush_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let logs = broker.logs.clone();
                let _ = tokio::task::spawn_blocking(move || logs.flush_all()).await;
            }
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn retention_loop(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(broker.config.log_retention_check_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let logs = broker.logs.clone();
                let _ = tokio::task::spawn_blocking(move || logs.retention_all()).await;
                let max_idle = broker.config.producer_id_expiration_ms;
                let now = crate::log::partition::now_ms();
                let expired: usize = broker.logs.all().iter().map(|log| log.expire_producers(now, max_idle)).sum();
                if expired > 0 {
                    tracing::info!(expired, "forgot idle idempotent producers (producer_id_expiration_ms)");
                }
            }
            _ = shutdown.cancelled() => return,
        }
    }
}
