//! Starting and stopping a broker: bind, recover logs, serve gRPC and
//! `/metrics`, run the flush and retention loops, and on shutdown flush
//! every log.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::{BrokerConfig, FlushPolicy};
use crate::error::{BrokerError, Result};
use crate::metrics;
use crate::service::KmonService;

/// The line a broker prints on standard output once it serves, so scripts
/// and tests can learn the ports it bound.
pub const READY_PREFIX: &str = "kmon broker ready";

/// Runs a broker until `shutdown` is cancelled.
pub async fn run(config: BrokerConfig, shutdown: CancellationToken) -> Result<()> {
    config.validate()?;
    let bind = |addr: &str| {
        let addr = addr.to_string();
        async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|source| BrokerError::Storage {
                    context: format!("binding {addr}"),
                    source,
                })
        }
    };
    let grpc_listener = bind(&config.listen).await?;
    let metrics_listener = bind(&config.metrics_listen).await?;
    let address = grpc_listener
        .local_addr()
        .map_err(|source| BrokerError::Storage {
            context: "local address".into(),
            source,
        })?;
    let metrics_address = metrics_listener
        .local_addr()
        .map_err(|source| BrokerError::Storage {
            context: "local address".into(),
            source,
        })?;

    let started = std::time::Instant::now();
    let broker =
        tokio::task::spawn_blocking(move || Broker::open(config, address, metrics_address))
            .await
            .expect("recovery task panicked")?;
    let broker = Arc::new(broker);
    tracing::info!(
        partitions = broker.logs.all().len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "logs recovered"
    );

    let tasks = TaskTracker::new();
    tasks.spawn(flush_loop(broker.clone(), shutdown.clone()));
    tasks.spawn(retention_loop(broker.clone(), shutdown.clone()));
    tasks.spawn({
        let (metrics, logs, shutdown) = (
            broker.metrics.clone(),
            broker.logs.clone(),
            shutdown.clone(),
        );
        async move {
            if let Err(err) = metrics::serve(metrics_listener, metrics, logs, shutdown).await {
                tracing::error!(error = %err, "metrics server failed");
            }
        }
    });

    println!("{READY_PREFIX} grpc={address} metrics={metrics_address}");
    tracing::info!(%address, %metrics_address, "broker serving");

    let incoming = TcpListenerStream::new(grpc_listener).map(|conn| {
        if let Ok(stream) = &conn {
            let _ = stream.set_nodelay(true);
        }
        conn
    });
    let served = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .add_service(KmonService::new(broker.clone(), shutdown.clone()).into_server())
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    let logs = broker.logs.clone();
    tokio::task::spawn_blocking(move || logs.close_all())
        .await
        .expect("close task panicked");
    tracing::info!("broker stopped");
    served.map_err(|e| BrokerError::Storage {
        context: format!("gRPC server: {e}"),
        source: std::io::Error::other(e),
    })
}

async fn flush_loop(broker: Arc<Broker>, shutdown: CancellationToken) {
    if broker.config.log_flush_policy != FlushPolicy::Interval {
        return;
    }
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
    let mut tick = tokio::time::interval(Duration::from_millis(
        broker.config.log_retention_check_interval_ms,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let logs = broker.logs.clone();
                let _ = tokio::task::spawn_blocking(move || logs.retention_all()).await;
            }
            _ = shutdown.cancelled() => return,
        }
    }
}
