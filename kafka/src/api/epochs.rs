//! OffsetForLeaderEpoch: where a leader epoch ended in the leader's log,
//! so a consumer that saw another leader can detect divergence (KIP-320).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kmon_broker::Broker;

use super::checked_leader_epoch;
use crate::error::error_code;

pub fn handle(broker: &Broker, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.as_str().to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let answer = EpochEndOffset::default().with_partition(p.partition);
                    match end_offset(broker, &name, p.partition, p.current_leader_epoch, p.leader_epoch) {
                        Ok((epoch, offset)) => answer.with_leader_epoch(epoch).with_end_offset(offset),
                        Err(code) => answer.with_error_code(code).with_leader_epoch(-1).with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic.topic).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

fn end_offset(broker: &Broker, topic: &str, partition: i32, current: i32, wanted: i32) -> Result<(i32, i64), i16> {
    let partition = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition.code())?;
    checked_leader_epoch(broker, topic, partition, current)?;
    broker.replicas.end_offset_for_epoch(topic, partition, wanted).map_err(|err| error_code(&err))
}
