//! ListOffsets: earliest, latest (high watermark) or the first offset at or
//! after a timestamp.

use kmon_proto::v1::*;
use tonic::Status;

use crate::broker::Broker;

pub(super) fn handle(broker: &Broker, req: ListOffsetsRequest) -> Result<ListOffsetsResponse, Status> {
    let mut out = Vec::with_capacity(req.partitions.len());
    for p in req.partitions {
        let log = match p.spec() {
            OffsetSpec::Latest | OffsetSpec::Timestamp => {
                broker.replicas.committed_leader_log(&p.topic, p.partition)?
            }
            OffsetSpec::Earliest | OffsetSpec::LogEnd => broker.replicas.leader_log(&p.topic, p.partition)?,
        };
        let (offset, timestamp_ms) = match p.spec() {
            OffsetSpec::Earliest => (log.log_start_offset(), -1),
            OffsetSpec::Latest => (log.high_watermark(), -1),
            OffsetSpec::LogEnd => (log.log_end_offset(), -1),
            OffsetSpec::Timestamp => log.offset_for_timestamp(p.timestamp_ms)?.unwrap_or((-1, -1)),
        };
        out.push(PartitionOffset { topic: p.topic, partition: p.partition, offset, timestamp_ms });
    }
    Ok(ListOffsetsResponse { partitions: out })
}
