//! Producer ids for idempotent producers (`InitProducerId`, gRPC and Kafka):
//! each broker takes blocks of ids from the metadata quorum (Kafka's
//! KIP-730) and hands them out one by one, so ids are unique across the
//! cluster and across restarts without a quorum write per producer. A
//! transactional id goes through the quorum every time: its epoch is
//! bumped there, which fences the previous instance.

use tokio::sync::Mutex;

use crate::controller::state::{BrokerId, CommandOutcome, MetadataCommand};
use crate::error::{BrokerError, Result};

/// Ids per block (Kafka's `ProducerIdManager` uses 1000).
pub const BLOCK_SIZE: u32 = 1000;

/// A producer's identity: id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub epoch: i16,
}

/// This broker's current block: `next..end`.
#[derive(Debug, Default)]
pub struct ProducerIds {
    block: Mutex<(i64, i64)>,
}

impl ProducerIds {
    /// A producer id and epoch for a new producer. `propose` writes a
    /// command through the metadata quorum.
    pub async fn init<F, Fut>(
        &self,
        broker: BrokerId,
        transactional_id: Option<&str>,
        propose: F,
    ) -> Result<ProducerIdentity>
    where
        F: Fn(MetadataCommand) -> Fut,
        Fut: std::future::Future<Output = Result<CommandOutcome>>,
    {
        if let Some(id) = transactional_id {
            let command = MetadataCommand::InitTransactionalProducer { transactional_id: id.to_string() };
            return match propose(command).await? {
                CommandOutcome::ProducerIdAssigned { producer_id, epoch } => {
                    Ok(ProducerIdentity { producer_id, epoch })
                }
                other => Err(unexpected(other)),
            };
        }
        // Held across the quorum write: one refill at a time.
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            match propose(MetadataCommand::AllocateProducerIds { broker, count: BLOCK_SIZE }).await? {
                CommandOutcome::ProducerIdsAllocated { first, count } => *block = (first, first + i64::from(count)),
                other => return Err(unexpected(other)),
            }
        }
        let producer_id = block.0;
        block.0 += 1;
        Ok(ProducerIdentity { producer_id, epoch: 0 })
    }
}

fn unexpected(outcome: CommandOutcome) -> BrokerError {
    BrokerError::Internal(format!("the quorum answered a producer-id request with {outcome:?}"))
}
