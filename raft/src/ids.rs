//! Kafka's textual UUID form: URL-safe base64 of the 16 bytes (most significant long first)
//! without padding, 22 characters (`AAAAAAAAAAAAAAAAAAAAAQ` is UUID 0/1, the metadata topic id).

use uuid::Uuid;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The metadata topic's id, UUID 0/1.
pub const METADATA_TOPIC_ID: Uuid = Uuid::from_u128(1);

/// Renders `id` as Kafka's `Uuid.toString()` does.
pub fn uuid_to_base64(id: &Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let mut n = [0u8; 3];
        n[..chunk.len()].copy_from_slice(chunk);
        let v = (u32::from(n[0]) << 16) | (u32::from(n[1]) << 8) | u32::from(n[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (v >> (18 - 6 * i)) & 0x3f;
            out.push(ALPHABET[idx as usize] as char);
        }
    }
    out
}

/// Parses Kafka's 22-character UUID form; None if malformed.
pub fn uuid_from_base64(s: &str) -> Option<Uuid> {
    let s = s.as_bytes();
    if s.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(16);
    for &c in s {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // 22 chars = 132 bits: 128 data bits and 4 zero padding bits.
    if bits != 0 || out.len() != 16 {
        return None;
    }
    let mut arr = [0u8; 16];
    arr.copy_from_slice(&out);
    Some(Uuid::from_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_topic_id_string() {
        assert_eq!(uuid_to_base64(&METADATA_TOPIC_ID), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(uuid_to_base64(&Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            uuid_from_base64("AAAAAAAAAAAAAAAAAAAAAQ"),
            Some(METADATA_TOPIC_ID)
        );
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        for n in [
            0u128,
            1,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            let id = Uuid::from_u128(n);
            let s = uuid_to_base64(&id);
            assert_eq!(s.len(), 22);
            assert_eq!(uuid_from_base64(&s), Some(id));
        }
        assert_eq!(
            uuid_to_base64(&Uuid::from_u128(u128::MAX)),
            "_____________________w"
        );
        assert!(uuid_from_base64("short").is_none());
        assert!(uuid_from_base64("AAAAAAAAAAAAAAAAAAAAA!").is_none());
        assert!(uuid_from_base64("AAAAAAAAAAAAAAAAAAAAAB").is_none()); // non-zero pad bits
    }
}
