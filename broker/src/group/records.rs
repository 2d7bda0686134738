//! What the coordinator writes to `__consumer_offsets`: one Kafka record
//! per committed offset or group change, key and value as JSON (readable
//! with `kmon consume`), encoded into RecordBatch v2 with the
//! kafka-protocol crate. A record with a null value is a tombstone: the
//! offset or group was deleted. The latest record per key wins, which is
//! what makes the topic compactable.
//!
//! Keys: `{"offset":{"group","topic","partition"}}` or
//! `{"group":{"group"}}`. Values: [`OffsetValue`] or [`GroupValue`].

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, Result};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKey {
    Offset { group: String, topic: String, partition: u32 },
    Group { group: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetValue {
    pub offset: i64,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A group's membership after a completed rebalance, so a new
/// coordinator knows the generation, the members and their assignments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberValue {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    /// The member's subscription (ConsumerProtocolSubscription bytes).
    pub subscription: Vec<u8>,
    /// Its assignment (ConsumerProtocolAssignment bytes).
    pub assignment: Vec<u8>,
}

/// One decoded record of the offsets topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Offset { group: String, topic: String, partition: u32, value: Option<OffsetValue> },
    Group { group: String, value: Option<GroupValue> },
}

fn json<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("records serialize"))
}

impl Entry {
    fn key_value(&self) -> (Bytes, Option<Bytes>) {
        match self {
            Entry::Offset { group, topic, partition, value } => (
                json(&RecordKey::Offset { group: group.clone(), topic: topic.clone(), partition: *partition }),
                value.as_ref().map(json),
            ),
            Entry::Group { group, value } => {
                (json(&RecordKey::Group { group: group.clone() }), value.as_ref().map(json))
            }
        }
    }
}

/// Encodes entries into one RecordBatch v2 (offsets assigned by the log).
pub fn encode(entries: &[Entry], timestamp_ms: i64) -> BytesMut {
    let records = entries.iter().map(|entry| {
        let (key, value) = entry.key_value();
        (Some(key), value)
    });
    BytesMut::from(&crate::log::batch::encode_records(records, timestamp_ms)[..])
}

/// Decodes every record of a run of batches; records that are not ours
/// (foreign keys) are skipped with a warning rather than stopping a load.
pub fn decode(batches: &Bytes) -> Result<Vec<(i64, Entry)>> {
    let records = crate::log::batch::decode_full(batches)
        .map_err(|fault| BrokerError::CorruptMessage(format!("__consumer_offsets batch: {fault}")))?;
    let mut out = Vec::new();
    for record in records {
        let Some(key) = record.key.as_ref() else { continue };
        let Ok(key) = serde_json::from_slice::<RecordKey>(key) else {
            tracing::warn!(offset = record.offset, "skipping a record with an unknown key in __consumer_offsets");
            continue;
        };
        let entry = match key {
            RecordKey::Offset { group, topic, partition } => {
                let value = match &record.value {
                    Some(v) => Some(serde_json::from_slice(v).map_err(|e| {
                        BrokerError::CorruptMessage(format!("offset record at {}: {e}", record.offset))
                    })?),
                    None => None,
                };
                Entry::Offset { group, topic, partition, value }
            }
            RecordKey::Group { group } => {
                let value =
                    match &record.value {
                        Some(v) => Some(serde_json::from_slice(v).map_err(|e| {
                            BrokerError::CorruptMessage(format!("group record at {}: {e}", record.offset))
                        })?),
                        None => None,
                    };
                Entry::Group { group, value }
            }
        };
        out.push((record.offset, entry));
    }
    Ok(out)
}

/// The `__consumer_offsets` partition of a group (Kafka's
/// `Utils.abs(groupId.hashCode()) % partitions`).
pub fn partition_for(group: &str, partitions: u32) -> u32 {
    kmon_proto::groups::coordinator_partition(group, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_codes() {
        use kmon_proto::groups::java_string_hashcode as java_hash_code;
        assert_eq!(java_hash_code("hello"), 99162322);
        assert_eq!(java_hash_code(""), 0);
        assert_eq!(java_hash_code("my-group-with-a-long-name-0123456789"), {
            let mut h: i32 = 0;
            for c in "my-group-with-a-long-name-0123456789".chars() {
                h = h.wrapping_mul(31).wrapping_add(c as i32);
            }
            h
        });
        assert!(partition_for("hello", 50) < 50);
        assert_eq!(partition_for("hello", 50), 99162322 % 50);
    }

    #[test]
    fn entries_round_trip_through_a_record_batch() {
        let entries = vec![
            Entry::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(OffsetValue { offset: 42, metadata: "m".into(), commit_timestamp_ms: 7 }),
            },
            Entry::Offset { group: "g".into(), topic: "t".into(), partition: 4, value: None },
            Entry::Group {
                group: "g".into(),
                value: Some(GroupValue {
                    protocol_type: "consumer".into(),
                    generation: 5,
                    protocol: Some("range".into()),
                    leader: Some("m1".into()),
                    members: vec![],
                }),
            },
        ];
        let batch = encode(&entries, 1000);
        crate::log::batch::validate_produced(&batch, 1 << 20).unwrap();
        let decoded = decode(&batch.freeze()).unwrap();
        assert_eq!(decoded.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), entries);
    }
}
