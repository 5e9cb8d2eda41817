//! Maps a user partition to its `__remote_log_metadata` partition exactly as Kafka's
//! `RemoteLogMetadataTopicPartitioner` does (KIP-405 §3.2), so a Shale broker and a Kafka broker
//! agree on where each partition's events live.
//!
//! `h = Objects.hash(Long.hashCode(lsb), Long.hashCode(msb), partition)` (note: lsb first), the
//! 4 bytes of `h` big-endian go through Kafka's murmur2, then `toPositive(m) % numPartitions`.

use crate::metadata::TopicIdPartition;

/// Kafka's `Utils.murmur2` (seed 0x9747b28c, little-endian words), as a signed 32-bit value.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let mut k = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = words.remainder();
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

/// Kafka's `Utils.toPositive`: clears the sign bit.
pub fn to_positive(v: i32) -> i32 {
    v & 0x7fff_ffff
}

/// Java `Long.hashCode`.
fn long_hash(v: i64) -> i32 {
    (v ^ ((v as u64) >> 32) as i64) as i32
}

/// Java `Objects.hash(lsbHash, msbHash, partition)` for a topic-id partition.
pub fn topic_id_partition_hash(tp: &TopicIdPartition) -> i32 {
    let (msb, lsb) = tp.topic_id.as_u64_pair();
    [long_hash(lsb as i64), long_hash(msb as i64), tp.partition]
        .into_iter()
        .fold(1i32, |acc, x| acc.wrapping_mul(31).wrapping_add(x))
}

/// The metadata partition that holds `tp`'s events; `num_partitions` must be positive (a
/// non-positive count maps everything to 0 rather than panicking).
pub fn metadata_partition(tp: &TopicIdPartition, num_partitions: i32) -> i32 {
    if num_partitions <= 0 {
        return 0;
    }
    let h = topic_id_partition_hash(tp);
    to_positive(murmur2(&h.to_be_bytes())) % num_partitions
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn kafka_murmur2_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                *expected,
                "{:?}",
                std::str::from_utf8(input)
            );
        }
    }

    #[test]
    fn kip405_partitioner_table() {
        let a = Uuid::from_u128(0x31627a1474df458cbaee3cf065d7aa49);
        let one = Uuid::from_u64_pair(0, 1);
        assert_eq!(
            shale_common::kafka_uuid::encode(&a),
            "MWJ6FHTfRYy67jzwZdeqSQ"
        );
        let rows = [
            (a, 0, 1_763_308_608, 42),
            (a, 1, 1_763_308_609, 45),
            (a, 7, 1_763_308_615, 26),
            (one, 0, 30_752, 35),
            (one, 7, 30_759, 46),
        ];
        for (id, partition, h32, expected) in rows {
            let tp = TopicIdPartition::new(id, "t", partition);
            assert_eq!(topic_id_partition_hash(&tp), h32, "{tp}");
            assert_eq!(metadata_partition(&tp, 50), expected, "{tp}");
        }
    }

    #[test]
    fn topic_name_does_not_matter_and_range_holds() {
        let id = Uuid::from_u128(0xdead_beef_0123_4567_89ab_cdef_0011_2233);
        for p in 0..200 {
            let a = metadata_partition(&TopicIdPartition::new(id, "a", p), 7);
            let b = metadata_partition(&TopicIdPartition::new(id, "b", p), 7);
            assert_eq!(a, b);
            assert!((0..7).contains(&a));
        }
        assert_eq!(metadata_partition(&TopicIdPartition::new(id, "a", 0), 0), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
    }
}
