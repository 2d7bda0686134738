//! InitProducerId: kmon has no idempotent or transactional producer yet
//! (issue: idempotent producer). ApiVersions does not list it, which stops
//! librdkafka at once; a client that sends it anyway (kafka-python) gets
//! UNSUPPORTED_VERSION, which it does not retry. `enable.idempotence=false`
//! works.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Client;

pub fn handle(req: InitProducerIdRequest, client: Client<'_>) -> InitProducerIdResponse {
    tracing::warn!(
        client = client.id,
        peer = %client.peer,
        transactional = req.transactional_id.is_some(),
        "InitProducerId refused: kmon has no idempotent or transactional producer yet; \
         set enable.idempotence=false in the client"
    );
    InitProducerIdResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}
