//! Kafka's default partitioner: murmur2 of the key for keyed records,
//! sticky partitioning for keyless ones.

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`,
/// little-endian 4-byte blocks, bit for bit as the Java client computes it.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let length = data.len();
    let mut h = SEED ^ (length as u32);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`).
pub fn to_positive(x: i32) -> i32 {
    x & 0x7fff_ffff
}

/// The partition Kafka's default partitioner picks for a keyed record.
///
/// # Panics
/// If `num_partitions` is 0.
pub fn partition_for_key(key: &[u8], num_partitions: u32) -> u32 {
    assert!(num_partitions > 0, "a topic has at least one partition");
    (to_positive(murmur2(key)) as u32) % num_partitions
}

/// Sticky partitioning for keyless records (KIP-480): every keyless record
/// of a topic goes to the same partition until the batch it is filling is
/// closed (sent), then a new partition is drawn at random, different from
/// the last one when there is more than one.
#[derive(Debug, Default, Clone)]
pub struct StickyPartitioner {
    current: Option<u32>,
}

impl StickyPartitioner {
    /// The partition for the next keyless record.
    pub fn partition(&mut self, num_partitions: u32) -> u32 {
        match self.current {
            Some(partition) if partition < num_partitions => partition,
            _ => self.pick(num_partitions),
        }
    }

    /// Tells the partitioner that the batch of `partition` was closed; if
    /// that is the sticky partition, a new one is drawn.
    pub fn batch_closed(&mut self, partition: u32, num_partitions: u32) {
        if self.current == Some(partition) {
            self.pick(num_partitions);
        }
    }

    fn pick(&mut self, num_partitions: u32) -> u32 {
        assert!(num_partitions > 0, "a topic has at least one partition");
        let partition = match self.current {
            Some(previous) if num_partitions > 1 && previous < num_partitions => {
                // Uniform over the other n-1 partitions.
                let draw = rand::random_range(0..num_partitions - 1);
                if draw >= previous { draw + 1 } else { draw }
            }
            _ => rand::random_range(0..num_partitions),
        };
        self.current = Some(partition);
        partition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2` cases.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: &[(&str, i32)] = &[
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()), *expected, "murmur2({input:?})");
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn partition_for_key_is_positive_murmur_mod_n() {
        // to_positive(-790332482) = 1357151166; % 10 = 6.
        assert_eq!(partition_for_key(b"foobar", 10), 6);
        assert_eq!(partition_for_key(b"abc", 7), 479_470_107 % 7);
        assert_eq!(partition_for_key(b"anything", 1), 0);
    }

    #[test]
    fn sticky_stays_until_its_batch_closes_then_moves() {
        let mut sticky = StickyPartitioner::default();
        let first = sticky.partition(4);
        for _ in 0..100 {
            assert_eq!(sticky.partition(4), first);
        }
        // Closing another partition's batch changes nothing.
        sticky.batch_closed((first + 1) % 4, 4);
        assert_eq!(sticky.partition(4), first);
        for _ in 0..100 {
            let before = sticky.partition(4);
            sticky.batch_closed(before, 4);
            let after = sticky.partition(4);
            assert_ne!(before, after);
            assert!(after < 4);
        }
    }

    #[test]
    fn sticky_with_one_partition_stays_on_it() {
        let mut sticky = StickyPartitioner::default();
        assert_eq!(sticky.partition(1), 0);
        sticky.batch_closed(0, 1);
        assert_eq!(sticky.partition(1), 0);
    }
}
