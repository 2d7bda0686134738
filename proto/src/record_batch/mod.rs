//! Kafka's RecordBatch v2: the one codec of kmon's record bytes. The
//! producer encodes with it, the broker checks and stamps batch headers with
//! it (never re-encoding a batch), consumers decode with it. Pure, no I/O.
//!
//! # Batch layout (all integers big-endian)
//!
//! ```text
//! offset  size  field
//!  0      8     baseOffset            0 from the producer; the broker assigns it
//!  8      4     batchLength           bytes after this field
//! 12      4     partitionLeaderEpoch  -1 from the producer; the broker stamps it
//! 16      1     magic                 2
//! 17      4     crc                   CRC-32C (Castagnoli) of bytes 21..end
//! 21      2     attributes            bits 0-2 compression (0 = none),
//!                                     bit 3 timestamp type (0 = CreateTime),
//!                                     bit 4 transactional, bit 5 control
//! 23      4     lastOffsetDelta       recordCount - 1
//! 27      8     baseTimestamp         first record's timestamp (ms)
//! 35      8     maxTimestamp          largest record timestamp (ms)
//! 43      8     producerId            -1 without idempotence
//! 51      2     producerEpoch         -1 without idempotence
//! 53      4     baseSequence          -1 without idempotence
//! 57      4     recordCount
//! 61      ...   records
//! ```
//!
//! Because the CRC starts at `attributes`, the broker may overwrite
//! `baseOffset` and `partitionLeaderEpoch` without recomputing it.
//!
//! # Record layout (varint = zig-zag LEB128, as Kafka/protobuf `sint`)
//!
//! ```text
//! length          varint   bytes after this field
//! attributes      int8     0
//! timestampDelta  varlong  timestamp - baseTimestamp
//! offsetDelta     varint   index in the batch
//! keyLength       varint   -1 = null key
//! key             bytes
//! valueLength     varint   -1 = null value (a tombstone)
//! value           bytes
//! headerCount     varint
//!   headerKeyLength varint, headerKey (UTF-8), headerValueLength varint
//!   (-1 = null), headerValue
//! ```
//!
//! - [`header`]: the 61-byte header: parse, validate (CRC, lengths,
//!   offsets), stamp, walk a run of batches.
//! - [`encode`]: [`BatchBuilder`], uncompressed batches as Kafka's Java
//!   producer writes them; hand-rolled for speed, cross-checked against
//!   kafka-protocol in both directions by the tests.
//! - [`decode`]: records back out of concatenated batches, compressed ones
//!   (written by Kafka clients) through kafka-protocol.

mod decode;
mod encode;
mod header;
mod varint;

pub use decode::{DecodedRecord, decode_batches, decode_batches_into, decode_full, next_offset};
pub use encode::{BatchBuilder, Header, Record, encode_batch, encode_full, encode_records, to_kafka_records};
pub use header::{
    BatchFault, BatchHeader, CRC_START, HEADER_LEN, LOG_OVERHEAD, MAGIC, assign_offset, first_record_at_or_after,
    iter_headers, parse_header, peek_size, validate,
};

/// The attribute bits of a batch.
pub mod attributes {
    /// Bits 0-2: the compression codec (0 = none).
    pub const COMPRESSION_MASK: i16 = 0x7;
    /// Bit 3: timestamps are LogAppendTime.
    pub const LOG_APPEND_TIME: i16 = 1 << 3;
    /// Bit 4: part of a transaction.
    pub const TRANSACTIONAL: i16 = 1 << 4;
    /// Bit 5: a control batch (transaction markers), not user records.
    pub const CONTROL: i16 = 1 << 5;
}

#[cfg(test)]
mod tests;
