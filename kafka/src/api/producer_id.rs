//! InitProducerId: an id and epoch for an idempotent producer, from this
//! broker's block of the quorum's ids (`Broker::init_producer_id`). With a
//! transactional id the quorum bumps that id's epoch, fencing the previous
//! instance (transactions themselves are not served: their Produce is
//! refused). A producer that asks again with its current id and epoch
//! (KIP-360, after a sequence it gave up on) gets
//! the next epoch of the same id, so its sequences start again at 0.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kmon_broker::Broker;

use super::Client;
use crate::error::error_code;

pub async fn handle(broker: &Broker, req: InitProducerIdRequest, client: Client<'_>) -> InitProducerIdResponse {
    let transactional_id = req.transactional_id.as_ref().map(|id| id.0.as_str());
    let current = (req.producer_id.0, req.producer_epoch);
    // Write on some topic (Kafka's KIP-679), checked before an id is spent.
    let allowed = broker.authorizer.authorize_idempotent_write(client.principal);
    let identity = match (allowed, current) {
        (Err(err), _) => Err(err),
        (Ok(()), (id, epoch)) if transactional_id.is_none() && id >= 0 && (0..i16::MAX - 1).contains(&epoch) => {
            Ok(kmon_broker::producer_ids::ProducerIdentity { producer_id: id, epoch: epoch + 1 })
        }
        (Ok(()), _) => broker.init_producer_id(transactional_id).await,
    };
    match identity {
        Ok(identity) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(identity.producer_id))
            .with_producer_epoch(identity.epoch),
        Err(err) => {
            tracing::warn!(client = client.id, peer = %client.peer, error = %err, "InitProducerId failed");
            InitProducerIdResponse::default()
                .with_error_code(error_code(&err))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}
