//! Kafka's textual UUID form (`Uuid.toString` / `Uuid.fromString`): the 16 bytes (most
//! significant long first) in URL-safe base64 without padding, 22 characters. Used for topic,
//! cluster, directory and remote segment ids wherever they appear as text.

use uuid::Uuid;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Length of the encoded form.
pub const ENCODED_LEN: usize = 22;

/// Renders `id` as Kafka's `Uuid.toString()` does.
pub fn encode(id: &Uuid) -> String {
    let bits = id.as_u128();
    // 21 full sextets (126 bits), then the last 2 bits in the top of a final sextet.
    let mut out = String::with_capacity(ENCODED_LEN);
    for i in 0..21 {
        let v = (bits >> (122 - 6 * i)) & 0x3f;
        out.push(char::from(ALPHABET[v as usize]));
    }
    out.push(char::from(ALPHABET[((bits & 0x3) << 4) as usize]));
    out
}

/// Parses Kafka's UUID text; `None` if it is not 22 base64url characters (optionally followed by
/// the `==` padding Kafka's decoder tolerates) or if the 4 unused trailing bits are not zero,
/// so that every accepted string is the one [`encode`] gives back.
pub fn decode(s: &str) -> Option<Uuid> {
    let s = s.strip_suffix("==").unwrap_or(s).as_bytes();
    if s.len() != ENCODED_LEN {
        return None;
    }
    let mut bits: u128 = 0;
    for &c in &s[..21] {
        bits = (bits << 6) | sextet(c)?;
    }
    let last = sextet(s[21])?;
    if last & 0xf != 0 {
        return None;
    }
    Some(Uuid::from_u128((bits << 2) | (last >> 4)))
}

fn sextet(c: u8) -> Option<u128> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u128::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kafka_strings() {
        let cases = [
            (0u128, "AAAAAAAAAAAAAAAAAAAAAA"),
            (1, "AAAAAAAAAAAAAAAAAAAAAQ"), // the metadata topic id, Uuid(0, 1)
            (u128::MAX, "_____________________w"),
            (
                0x3162_7a14_74df_458c_baee_3cf0_65d7_aa49,
                "MWJ6FHTfRYy67jzwZdeqSQ",
            ),
        ];
        for (n, text) in cases {
            let id = Uuid::from_u128(n);
            assert_eq!(encode(&id), text, "{n:#x}");
            assert_eq!(decode(text), Some(id), "{text}");
        }
    }

    #[test]
    fn round_trips() {
        for n in [
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128,
            0xfedc_ba98_7654_3210_0123_4567_89ab_cdef,
            0xdead_beef << 64,
            1 << 127,
        ] {
            let id = Uuid::from_u128(n);
            let s = encode(&id);
            assert_eq!(s.len(), ENCODED_LEN);
            assert_eq!(decode(&s), Some(id), "{s}");
        }
    }

    #[test]
    fn padding_is_tolerated() {
        assert_eq!(decode("AAAAAAAAAAAAAAAAAAAAAQ=="), Some(Uuid::from_u128(1)));
        assert_eq!(decode("AAAAAAAAAAAAAAAAAAAAAQ="), None);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAA",   // 21 chars
            "AAAAAAAAAAAAAAAAAAAAAAA", // 23 chars
            "AAAAAAAAAAAAAAAAAAAAA!",  // not in the alphabet
            "AAAAAAAAAAAAAAAAAAAA*Q",
            "AAAAAAAAAAAAAAAAAAAA+Q", // standard base64, not URL-safe
            "AAAAAAAAAAAAAAAAAAAAAB", // non-zero unused bits
            "AAAAAAAAAAAAAAAAAAAAAé",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
