//! Which partition of `__consumer_offsets` holds a group (pure): Kafka's
//! `Utils.abs(groupId.hashCode()) % partitions`, so a group lands where a
//! Kafka cluster with the same partition count would put it.

/// Name of the internal topic holding committed offsets and group state.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over the
/// UTF-16 code units, wrapping on overflow.
pub fn java_string_hashcode(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The partition of [`OFFSETS_TOPIC`] (with `partitions` partitions) whose
/// leader coordinates `group_id`. Kafka's `Utils.abs` is `x & 0x7fffffff`
/// (so `i32::MIN` maps to 0, not to an overflow).
pub fn coordinator_partition(group_id: &str, partitions: u32) -> u32 {
    assert!(partitions > 0, "the offsets topic has at least one partition");
    (java_string_hashcode(group_id) & 0x7fff_ffff) as u32 % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_java_string_hashcode() {
        assert_eq!(java_string_hashcode(""), 0);
        assert_eq!(java_string_hashcode("a"), 97);
        assert_eq!(java_string_hashcode("hello"), 99_162_322);
        // Overflows i32 in Java too.
        assert_eq!(java_string_hashcode("hello world"), 1_794_106_052);
        assert_eq!(java_string_hashcode("console-consumer-12345"), 158_455_506);
        assert_eq!(java_string_hashcode("orders"), -1_008_770_331);
        // Beyond the BMP: two UTF-16 code units (0xD83D, 0xDE00).
        assert_eq!(java_string_hashcode("\u{1F600}"), 0xD83D * 31 + 0xDE00);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE in Java.
        assert_eq!(java_string_hashcode("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn partition_is_kafka_utils_abs_mod_n() {
        assert_eq!(coordinator_partition("hello", 50), 99_162_322 % 50);
        // Negative hash: the sign bit is masked, not negated.
        let masked = (-1_008_770_331i32 & 0x7fff_ffff) as u32;
        assert_eq!(coordinator_partition("orders", 50), masked % 50);
        assert_ne!(masked % 50, 1_008_770_331 % 50, "not Math.abs");
        assert_eq!(coordinator_partition("polygenelubricants", 50), 0);
        assert_eq!(coordinator_partition("anything", 1), 0);
    }
}
