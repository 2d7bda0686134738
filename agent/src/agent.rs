//! Running the agent, as one readable sequence: check the config, bind
//! `/metrics`, open the disk buffer, then two loops until shutdown:
//!
//! - **collect**: on an interval stream: take the cluster sample (unless
//!   `cluster_sample` is off; see [`crate::collect::cluster`]), run every
//!   host collector (in a blocking task), publish the host series for
//!   `/metrics`, append the sample (host + cluster series) to the buffer,
//!   wake the shipper;
//! - **ship**: while the buffer has pending samples, ship a round and
//!   acknowledge it; after a failure, back off (see [`crate::ship`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kmon_proto::agent::v1::{Label, NodeSample, Series as PbSeries};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::buffer::DiskBuffer;
use crate::collect::cluster::{self, ClusterSampler};
use crate::collect::{self, Collect, Series};
use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::metrics::{self, AgentMetrics, Snapshot};
use crate::ship::{self, Shipper};

/// The line the agent prints on standard output once it serves `/metrics`.
pub const READY_PREFIX: &str = "kmon agent ready";

struct Shared {
    config: AgentConfig,
    metrics_address: String,
    buffer: Mutex<DiskBuffer>,
    own: AgentMetrics,
    snapshot: Arc<Snapshot>,
    wake_shipper: Notify,
}

/// Runs the agent until `shutdown` is cancelled.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    run_with(config, shutdown, |_| {}).await
}

/// Like [`run`]; `on_bound` learns the `/metrics` address actually bound
/// (the configured port may be 0), e.g. for an OTLP exporter that scrapes it.
pub async fn run_with(
    config: AgentConfig,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(std::net::SocketAddr),
) -> Result<(), AgentError> {
    config.validate()?;
    let listener = TcpListener::bind(&config.metrics_listen)
        .await
        .map_err(|source| AgentError::Bind { address: config.metrics_listen.clone(), source })?;
    let bound =
        listener.local_addr().map_err(|source| AgentError::Bind { address: config.metrics_listen.clone(), source })?;
    on_bound(bound);
    let (buffer, recovery) = DiskBuffer::open(&config.buffer_dir, config.buffer_max_bytes)?;
    if recovery.truncated_bytes > 0 {
        tracing::warn!(bytes = recovery.truncated_bytes, "disk buffer: recovered after a torn write");
    }
    let own = AgentMetrics::default();
    own.samples_buffered.set(buffer.pending() as i64);
    let snapshot = Arc::new(Snapshot::default());
    let registry = metrics::registry(&own, snapshot.clone());
    let shared = Arc::new(Shared {
        metrics_address: advertised(bound, &config.node),
        config,
        buffer: Mutex::new(buffer),
        own,
        snapshot,
        wake_shipper: Notify::new(),
    });

    let tasks = TaskTracker::new();
    tasks.spawn({
        let shutdown = shutdown.clone();
        async move {
            if let Err(err) = metrics::serve(listener, registry, shutdown).await {
                tracing::error!(error = %err, "metrics server failed");
            }
        }
    });
    tasks.spawn(collect_loop(shared.clone(), shutdown.clone()));
    tasks.spawn(ship_loop(shared.clone(), shutdown.clone()));
    println!("{READY_PREFIX} metrics={bound} node={}", shared.config.node);
    tracing::info!(metrics = %bound, node = %shared.config.node, bootstrap = ?shared.config.bootstrap, "agent running");
    tasks.close();
    tasks.wait().await;
    tracing::info!("agent stopped");
    Ok(())
}

/// `HOST:PORT` a scraper can use: the bound address, with the node name for
/// an unspecified IP.
fn advertised(bound: SocketAddr, node: &str) -> String {
    if bound.ip().is_unspecified() { format!("{node}:{}", bound.port()) } else { bound.to_string() }
}

async fn collect_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut collectors: Option<Vec<Box<dyn Collect>>> = Some(collect::all(&shared.config));
    for collector in collectors.iter().flatten() {
        shared.own.expect_collector(collector.name());
    }
    let mut sampler = shared.config.cluster_sample.then(|| ClusterSampler::new(shared.config.bootstrap.clone()));
    if sampler.is_some() {
        shared.own.expect_collector(cluster::NAME);
    }
    let mut tick = tokio::time::interval(shared.config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let cluster_series = match &mut sampler {
            Some(sampler) => {
                let (series, failed) = tokio::select! {
                    taken = sampler.sample() => taken,
                    _ = shutdown.cancelled() => return,
                };
                if let Some(err) = failed {
                    shared.own.scrape_error(cluster::NAME);
                    tracing::warn!(collector = cluster::NAME, error = %err, "cluster sample incomplete");
                }
                series
            }
            None => Vec::new(),
        };
        let mut taken = collectors.take().expect("collectors are returned after each run");
        let shared2 = shared.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let timestamp_ms = now_ms();
            let (series, failed) = collect::collect_all(&mut taken);
            for (collector, err) in &failed {
                shared2.own.scrape_error(collector);
                tracing::warn!(collector, error = %err, "collector failed");
            }
            // The cluster series are shipped only: Prometheus gets them from
            // the brokers themselves.
            let series = Arc::new(series);
            shared2.snapshot.replace(series.clone());
            let stored = store(&shared2, timestamp_ms, series.iter().chain(&cluster_series));
            (taken, stored)
        })
        .await;
        match joined {
            Ok((taken, stored)) => {
                collectors = Some(taken);
                if let Err(err) = stored {
                    tracing::error!(error = %err, "disk buffer: sample not stored");
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "collection task panicked; starting fresh collectors");
                collectors = Some(collect::all(&shared.config));
            }
        }
        shared.wake_shipper.notify_one();
    }
}

/// Appends one sample to the buffer (blocking: fsync).
fn store<'a>(shared: &Shared, timestamp_ms: i64, series: impl Iterator<Item = &'a Series>) -> Result<(), AgentError> {
    let mut buffer = shared.buffer.lock().unwrap_or_else(PoisonError::into_inner);
    let sample = NodeSample {
        node: shared.config.node.clone(),
        metrics_address: shared.metrics_address.clone(),
        sequence: buffer.next_sequence(),
        timestamp_ms,
        series: series.map(to_proto).collect(),
    };
    let dropped = buffer.push(&sample.encode_to_vec())?;
    if dropped > 0 {
        shared.own.samples_dropped.inc_by(dropped);
        tracing::warn!(dropped, "disk buffer full: dropped the oldest samples");
    }
    shared.own.samples_buffered.set(buffer.pending() as i64);
    Ok(())
}

fn to_proto(series: &Series) -> PbSeries {
    PbSeries {
        name: series.desc.name.to_owned(),
        labels: series
            .labels
            .iter()
            .map(|(name, value)| Label { name: (*name).to_owned(), value: value.clone() })
            .collect(),
        value: series.value,
    }
}

async fn ship_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut shipper = Shipper::new(shared.config.bootstrap.clone());
    let mut backoff = ship::FIRST_BACKOFF;
    loop {
        tokio::select! {
            _ = shared.wake_shipper.notified() => {}
            _ = shutdown.cancelled() => return,
        }
        // Drain the buffer round by round.
        loop {
            let pending = {
                let shared = shared.clone();
                tokio::task::spawn_blocking(move || {
                    let buffer = shared.buffer.lock().unwrap_or_else(PoisonError::into_inner);
                    buffer.read_pending(ship::ROUND_MAX_SAMPLES, ship::ROUND_MAX_BYTES)
                })
                .await
                .expect("buffer read task panicked")
            };
            let samples: Vec<NodeSample> = match pending {
                Ok(frames) => {
                    frames.into_iter().filter_map(|(_, bytes)| NodeSample::decode(bytes.as_slice()).ok()).collect()
                }
                Err(err) => {
                    tracing::error!(error = %err, "disk buffer: read failed");
                    break;
                }
            };
            let Some(last) = samples.last().map(|s| s.sequence) else { break };
            let count = samples.len() as u64;
            let broker = shipper.broker().to_owned();
            let shipped = tokio::select! {
                result = shipper.ship(samples) => result,
                _ = shutdown.cancelled() => return,
            };
            match shipped {
                Ok(_) => {
                    backoff = ship::FIRST_BACKOFF;
                    let shared2 = shared.clone();
                    let acked = tokio::task::spawn_blocking(move || {
                        let mut buffer = shared2.buffer.lock().unwrap_or_else(PoisonError::into_inner);
                        let result = buffer.ack(last);
                        shared2.own.samples_buffered.set(buffer.pending() as i64);
                        result
                    })
                    .await
                    .expect("buffer ack task panicked");
                    shared.own.samples_shipped.inc_by(count);
                    if let Err(err) = acked {
                        tracing::error!(error = %err, "disk buffer: ack not recorded (samples will be shipped again)");
                    }
                }
                Err(err) => {
                    shared.own.ship_errors.inc();
                    tracing::warn!(%broker, error = %err, retry_in = ?backoff, "shipping failed; samples stay buffered");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(ship::MAX_BACKOFF);
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as i64
}
