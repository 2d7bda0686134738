//! ListOffsets: the earliest offset (-2), the latest (-1: the high
//! watermark, refused as retriable OFFSET_NOT_AVAILABLE while a new leader's
//! high watermark is stale, KIP-207), or the first offset at or after a
//! timestamp; per partition, on its leader.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kmon_broker::{Broker, BrokerError};

use super::checked_leader_epoch;
use crate::error::error_code;
use kmon_broker::controller::state::acls::{AclOperation, Resource};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub fn handle(broker: &Broker, req: ListOffsetsRequest, principal: &str) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let answer = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    match offset(broker, principal, name, p.partition_index, p.timestamp, p.current_leader_epoch) {
                        Ok((offset, timestamp, epoch)) => {
                            answer.with_offset(offset).with_timestamp(timestamp).with_leader_epoch(epoch)
                        }
                        Err(code) => {
                            answer.with_error_code(code).with_offset(-1).with_timestamp(-1).with_leader_epoch(-1)
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn offset(
    broker: &Broker,
    principal: &str,
    topic: &str,
    partition: i32,
    timestamp: i64,
    leader_epoch: i32,
) -> Result<(i64, i64, i32), i16> {
    let partition = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition.code())?;
    let code = |err: BrokerError| error_code(&err);
    broker.authorizer.authorize(principal, AclOperation::Describe, &Resource::topic(topic)).map_err(code)?;
    let epoch = checked_leader_epoch(broker, topic, partition, leader_epoch)?;
    match timestamp {
        EARLIEST => Ok((broker.replicas.leader_log(topic, partition).map_err(code)?.log_start_offset(), -1, epoch)),
        LATEST => {
            Ok((broker.replicas.committed_leader_log(topic, partition).map_err(code)?.high_watermark(), -1, epoch))
        }
        t if t >= 0 => {
            let log = broker.replicas.committed_leader_log(topic, partition).map_err(code)?;
            match log.offset_for_timestamp(t).map_err(code)? {
                Some((offset, ts)) => Ok((offset, ts, epoch)),
                None => Ok((-1, -1, epoch)),
            }
        }
        // -3 (max timestamp) and the tiered-storage specs come with versions not served.
        _ => Err(ResponseError::InvalidRequest.code()),
    }
}
