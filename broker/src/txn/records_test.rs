use super::*;
use crate::txn::state::{TxnState, TxnValue};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '|')
        .collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ongoing() -> TxnValue {
    let mut v = TxnValue::new(1000, 60_000, 1_700_000_000_000);
    v.producer_epoch = 2;
    v.state = TxnState::Ongoing;
    v.partitions.insert("foo".into(), vec![0, 1]);
    v.start_ts = 1_699_999_999_000;
    v
}

#[test]
fn key_is_version_zero_and_the_id() {
    assert_eq!(key("t1").to_vec(), hex("0000 0002 7431"));
    assert_eq!(decode_key(&hex("0000 0002 7431")).unwrap(), "t1");
    assert!(matches!(
        decode_key(&hex("0001 0002 7431")),
        Err(RecordError::UnknownVersion("key", 1))
    ));
}

#[test]
fn value_v0_matches_kafkas_layout() {
    let expected = hex(
        "0000 | 00000000000003E8 | 0002 | 0000EA60 | 01 | 00000001 | 0003 666F6F | 00000002 \
         00000000 00000001 | 0000018BCFE56800 | 0000018BCFE56418",
    );
    assert_eq!(value(&ongoing(), 0).to_vec(), expected);
    assert_eq!(decode_value(&expected).unwrap(), ongoing());
}

#[test]
fn empty_state_writes_null_partitions() {
    let mut v = TxnValue::new(7, 1000, 5);
    v.producer_epoch = 0;
    let b = value(&v, 0);
    assert_eq!(&b[17..21], &[0xFF; 4]);
    assert_eq!(decode_value(&b).unwrap(), v);
}

#[test]
fn value_v1_is_flexible_with_tagged_fields() {
    let mut v = TxnValue::new(7, 1000, 5);
    v.producer_epoch = 0;
    v.prev_producer_id = 5;
    let expected = hex(
        "0001 | 0000000000000007 | 0000 | 000003E8 | 00 | 00 | 0000000000000005 \
         FFFFFFFFFFFFFFFF | 01 00 08 0000000000000005",
    );
    assert_eq!(value(&v, 1).to_vec(), expected);
    assert_eq!(decode_value(&expected).unwrap(), v);
    let mut o = ongoing();
    o.client_version = 2;
    o.next_producer_id = 9;
    assert_eq!(decode_value(&value(&o, 1)).unwrap(), o);
}

#[test]
fn truncated_and_unknown_values_are_errors() {
    let b = value(&ongoing(), 0);
    for cut in [1, 5, 17, 30, b.len() - 1] {
        assert!(decode_value(&b[..cut]).is_err(), "cut at {cut}");
    }
    assert!(matches!(
        decode_value(&hex("0002")),
        Err(RecordError::UnknownVersion("value", 2))
    ));
    let mut bad_state = b.to_vec();
    bad_state[16] = 9;
    assert_eq!(
        decode_value(&bad_state),
        Err(RecordError::Malformed("state"))
    );
}
