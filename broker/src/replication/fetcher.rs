//! The follower side of replication: one loop per followed partition.
//!
//! 1. Truncate: ask the leader where our latest leader epoch ended
//!    (OffsetForLeaderEpoch) and cut everything after it, so records that
//!    a failed leader wrote but never replicated cannot survive.
//! 2. Fetch from our log end offset, append the leader's batches as they
//!    are, and follow the leader's high watermark. Repeat until the role
//!    changes (the token is cancelled).

use std::sync::Arc;
use std::time::Duration;

use kmon_proto::replication::v1::replication_client::ReplicationClient;
use kmon_proto::replication::v1::{OffsetForLeaderEpochRequest, ReplicaFetchRequest};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::partition::HostedPartition;
use super::throttle::Throttle;
use crate::controller::state::BrokerId;
use crate::metrics::BrokerMetrics;

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What a fetcher needs of its broker (rather than the replica manager
/// that spawns it): who it is, how much to ask for, the reassignment
/// throttle it copies at, and where to count the bytes.
#[derive(Debug, Clone)]
pub struct FetcherContext {
    pub broker_id: BrokerId,
    pub max_bytes: usize,
    pub max_wait: Duration,
    pub throttle: Arc<Throttle>,
    pub metrics: Arc<BrokerMetrics>,
}

pub async fn run(
    context: FetcherContext,
    hosted: Arc<HostedPartition>,
    leader_address: String,
    leader_epoch: i32,
    token: CancellationToken,
) {
    let FetcherContext { broker_id, max_bytes, max_wait, throttle, metrics } = context;
    let mut backoff = MIN_BACKOFF;
    let mut client: Option<ReplicationClient<Channel>> = None;
    let mut truncated = false;
    tracing::info!(
        topic = %hosted.topic, partition = hosted.partition, leader = %leader_address, leader_epoch,
        "following"
    );
    while !token.is_cancelled() {
        let step = async {
            let c = match &mut client {
                Some(c) => c,
                None => client.insert(connect(&leader_address).await?),
            };
            if !truncated {
                truncate_diverged(c, &hosted, leader_epoch).await?;
                truncated = true;
            }
            loop {
                // A replica being added copies at the reassignment's throttle.
                let throttled = hosted.being_added.load(std::sync::atomic::Ordering::Relaxed);
                let max_bytes = if throttled { throttle.chunk(max_bytes) } else { max_bytes };
                let request = ReplicaFetchRequest {
                    replica_id: broker_id,
                    topic: hosted.topic.clone(),
                    partition: hosted.partition,
                    offset: hosted.log.log_end_offset(),
                    leader_epoch,
                    max_bytes: max_bytes as u32,
                    max_wait_ms: max_wait.as_millis() as u32,
                };
                let response = c.replica_fetch(request).await?.into_inner();
                if !response.records.is_empty() {
                    let records = response.records.clone();
                    hosted
                        .log
                        .blocking(move |log| log.append_replicated(&records, leader_epoch))
                        .await
                        .map_err(|e| tonic::Status::internal(e.to_string()))?;
                }
                hosted.log.set_high_watermark(response.high_watermark.min(hosted.log.log_end_offset()));
                hosted.set_follower_lag(response.log_end_offset - hosted.log.log_end_offset());
                metrics.replication_bytes_in.inc_by(response.records.len() as u64);
                backoff = MIN_BACKOFF;
                if throttled {
                    tokio::time::sleep(throttle.consume(response.records.len())).await;
                }
                if token.is_cancelled() {
                    return Ok::<(), tonic::Status>(());
                }
            }
        };
        let result = tokio::select! {
            r = step => r,
            _ = token.cancelled() => return,
        };
        if let Err(status) = result {
            tracing::debug!(topic = %hosted.topic, partition = hosted.partition, error = %status.message(), "replica fetch failed");
            if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled) {
                client = None;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = token.cancelled() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

async fn connect(address: &str) -> Result<ReplicationClient<Channel>, tonic::Status> {
    let endpoint = crate::tls::peer_endpoint(address)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20));
    let channel = endpoint.connect().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    Ok(ReplicationClient::new(channel).max_decoding_message_size(64 << 20))
}

/// Cuts the records our log has beyond what the leader has for our latest
/// epoch (KIP-101 / KIP-279).
async fn truncate_diverged(
    client: &mut ReplicationClient<Channel>,
    hosted: &HostedPartition,
    current_leader_epoch: i32,
) -> Result<(), tonic::Status> {
    let Some(my_epoch) = hosted.log.latest_epoch() else {
        return Ok(()); // empty log: nothing can diverge
    };
    let answer = client
        .offset_for_leader_epoch(OffsetForLeaderEpochRequest {
            topic: hosted.topic.clone(),
            partition: hosted.partition,
            leader_epoch: my_epoch,
            current_leader_epoch,
        })
        .await?
        .into_inner();
    let my_end = if answer.leader_epoch >= 0 && answer.leader_epoch < my_epoch {
        hosted.log.end_offset_for_epoch(answer.leader_epoch).map_or(0, |(_, end)| end)
    } else {
        hosted.log.log_end_offset()
    };
    let target = answer.end_offset.min(my_end);
    if target < hosted.log.log_end_offset() {
        tracing::info!(
            topic = %hosted.topic, partition = hosted.partition, my_epoch,
            leader_epoch = answer.leader_epoch, truncate_to = target,
            "truncating records the leader does not have"
        );
        hosted
            .log
            .blocking(move |log| log.truncate_as_follower(target, current_leader_epoch))
            .await
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
    }
    Ok(())
}
