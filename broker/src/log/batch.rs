//! Record batches as the broker handles them: parsed, checked and stamped
//! in place, never re-encoded. The codec is `kmon_proto::record_batch`,
//! shared with the clients; this adds what only a broker checks of the
//! batch a producer sent.

pub use kmon_proto::record_batch::{
    BatchFault, BatchHeader, HEADER_LEN, LOG_OVERHEAD, assign_offset, decode_full, encode_full, encode_records,
    first_record_at_or_after, iter_headers, parse_header, peek_size, validate,
};

use crate::error::BrokerError;

/// Checks a batch a producer sent: exactly one valid batch, with records.
pub fn validate_produced(bytes: &[u8], max_message_bytes: usize) -> Result<BatchHeader, BrokerError> {
    if bytes.len() > max_message_bytes {
        return Err(BrokerError::MessageTooLarge { size: bytes.len(), max: max_message_bytes });
    }
    let header = validate(bytes).map_err(|fault| BrokerError::CorruptMessage(fault.to_string()))?;
    if header.size != bytes.len() {
        return Err(BrokerError::CorruptMessage(format!(
            "expected exactly one record batch per partition: batch is {} bytes, request carries {}",
            header.size,
            bytes.len()
        )));
    }
    if header.records_count == 0 {
        return Err(BrokerError::CorruptMessage("record batch holds no records".into()));
    }
    if header.last_offset_delta != header.records_count - 1 {
        return Err(BrokerError::CorruptMessage(format!(
            "last offset delta {} does not match {} records",
            header.last_offset_delta, header.records_count
        )));
    }
    Ok(header)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid batch of `count` records of `value_len` bytes, null keys.
    pub(crate) fn make_batch(count: i32, timestamp: i64, value_len: usize) -> Vec<u8> {
        let mut builder = kmon_proto::record_batch::BatchBuilder::with_capacity(0);
        for _ in 0..count {
            builder.append(timestamp, None, &vec![b'v'; value_len], &[]);
        }
        builder.finish()
    }

    #[test]
    fn a_produced_batch_is_one_whole_batch_within_the_size_limit() {
        let b = make_batch(3, 1_000, 10);
        let h = validate_produced(&b, 1 << 20).unwrap();
        assert_eq!((h.records_count, h.size), (3, b.len()));
        let mut two = b.clone();
        two.extend(&b);
        assert!(matches!(validate_produced(&two, 1 << 20), Err(BrokerError::CorruptMessage(_))));
        let mut flipped = b.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff;
        assert!(matches!(validate_produced(&flipped, 1 << 20), Err(BrokerError::CorruptMessage(_))));
        let big = make_batch(10, 0, 100);
        assert!(matches!(validate_produced(&big, 100), Err(BrokerError::MessageTooLarge { .. })));
    }
}
