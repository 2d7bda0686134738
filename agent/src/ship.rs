//! Shipping: one `Ship` client stream per round, carrying the oldest
//! unacknowledged samples of the buffer in sequence order; the broker's
//! `ShipAck` names the last one it stored, and the buffer forgets up to
//! there.
//!
//! The bootstrap brokers are tried in turn: a broker that cannot be reached
//! or fails a round is left for the next one, and the round is retried
//! after a backoff (250 ms, doubling, capped at 5 s; reset by a success).
//! Delivery is at least once: a round whose acknowledgement was lost is
//! shipped again, and readers drop duplicates by (node, sequence).

use std::time::Duration;

use kmon_proto::agent::v1::NodeSample;
use kmon_proto::agent::v1::node_metrics_client::NodeMetricsClient;
use tonic::transport::Channel;

use crate::error::AgentError;

/// Bound on connecting to one broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on one round (the broker waits for its replicas).
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most samples in one round.
pub const ROUND_MAX_SAMPLES: usize = 500;
/// About the most bytes in one round.
pub const ROUND_MAX_BYTES: usize = 4 << 20;
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Connection to the current broker of the bootstrap list.
#[derive(Debug)]
pub struct Shipper {
    bootstrap: Vec<String>,
    current: usize,
    client: Option<NodeMetricsClient<Channel>>,
}

impl Shipper {
    pub fn new(bootstrap: Vec<String>) -> Self {
        Shipper { bootstrap, current: 0, client: None }
    }

    /// The broker the next round goes to.
    pub fn broker(&self) -> &str {
        &self.bootstrap[self.current]
    }

    /// Ships one round; returns the last sequence the broker stored.
    pub async fn ship(&mut self, samples: Vec<NodeSample>) -> Result<u64, AgentError> {
        let result = self.try_ship(samples).await;
        if result.is_err() {
            // Next round: the next broker, on a fresh connection.
            self.client = None;
            self.current = (self.current + 1) % self.bootstrap.len();
        }
        result
    }

    async fn try_ship(&mut self, samples: Vec<NodeSample>) -> Result<u64, AgentError> {
        let broker = self.broker().to_owned();
        let client = match &mut self.client {
            Some(client) => client,
            None => {
                let endpoint = kmon_client::connection::endpoint(&broker)
                    .map_err(|e| AgentError::Unreachable { tried: broker.clone(), last: e.to_string() })?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .timeout(ROUND_TIMEOUT);
                let channel = endpoint
                    .connect()
                    .await
                    .map_err(|e| AgentError::Unreachable { tried: broker.clone(), last: e.to_string() })?;
                self.client.insert(NodeMetricsClient::new(channel))
            }
        };
        let expected = samples.last().map(|s| s.sequence);
        let ack = client
            .ship(tokio_stream::iter(samples))
            .await
            .map_err(|status| AgentError::Ship { broker: broker.clone(), status })?
            .into_inner();
        match expected {
            Some(expected) if ack.last_sequence != expected => Err(AgentError::Ship {
                broker,
                status: tonic::Status::data_loss(format!(
                    "acknowledged up to {}, sent up to {expected}",
                    ack.last_sequence
                )),
            }),
            _ => Ok(ack.last_sequence),
        }
    }
}
