use super::*;
use crate::record::BatchBuilder;

const T: i64 = 1_700_000_000_000;

/// formats.md §9: COMMIT marker, producer 1000 epoch 0, coordinator epoch 5.
const COMMIT_VECTOR: [u8; 78] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // base offset
    0x00, 0x00, 0x00, 0x42, // batch length 66
    0xFF, 0xFF, 0xFF, 0xFF, // leader epoch
    0x02, // magic
    0xFC, 0x84, 0xB0, 0x34, // crc
    0x00, 0x30, // attributes
    0x00, 0x00, 0x00, 0x00, // last offset delta
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00, // base timestamp
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00, // max timestamp
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xE8, // producer id
    0x00, 0x00, // producer epoch
    0xFF, 0xFF, 0xFF, 0xFF, // base sequence
    0x00, 0x00, 0x00, 0x01, // record count
    0x20, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
    0x00,
];

#[test]
fn commit_marker_matches_the_spec_vector() {
    let b = end_txn_marker(1000, 0, 5, true, T);
    assert_eq!(&b.as_bytes()[..], &COMMIT_VECTOR[..]);
    assert_eq!(b.size(), 78);
    b.verify_crc().unwrap();
    // Stamping offset and leader epoch leaves the CRC alone.
    let mut h = b.header();
    h.set_base_offset(42);
    h.set_partition_leader_epoch(7);
    let moved = b.with_header(&h).unwrap();
    moved.verify_crc().unwrap();
    assert_eq!(moved.crc(), 0xFC84_B034);
}

#[test]
fn abort_marker_differs_only_in_type_and_crc() {
    let b = end_txn_marker(1000, 0, 5, false, T);
    b.verify_crc().unwrap();
    let bytes = b.as_bytes();
    assert_eq!(bytes.len(), 78);
    for (i, (x, y)) in bytes.iter().zip(COMMIT_VECTOR.iter()).enumerate() {
        if (17..21).contains(&i) || i == 69 {
            continue;
        }
        assert_eq!(x, y, "byte {i}");
    }
    assert_eq!(bytes[69], 0x00);
    let c = control_record(&b).unwrap().unwrap();
    assert!(c.is_abort() && !c.is_commit() && c.is_end_txn_marker());
    assert_eq!(c.coordinator_epoch, Some(5));
}

#[test]
fn control_record_types() {
    let commit = end_txn_marker(9, 3, 17, true, T);
    assert_eq!(
        control_record_type(&commit),
        Some((CONTROL_TYPE_COMMIT, Some(17)))
    );
    let abort = end_txn_marker(9, 3, -1, false, T);
    assert_eq!(
        control_record_type(&abort),
        Some((CONTROL_TYPE_ABORT, Some(-1)))
    );
    // A data batch is not a control batch.
    let mut data = BatchBuilder::new(T);
    data.push(T, None, Some(Bytes::from_static(b"v")), vec![]);
    assert_eq!(control_record(&data.build().unwrap()).unwrap(), None);
    // KRaft control type: no coordinator epoch.
    let mut leader_change = BatchBuilder::new(T);
    leader_change.is_control = true;
    leader_change.push(
        T,
        Some(Bytes::from_static(&[0, 0, 0, 2])),
        Some(Bytes::from_static(&[0; 8])),
        vec![],
    );
    let c = control_record(&leader_change.build().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!((c.record_type, c.coordinator_epoch), (2, None));
    assert!(!c.is_end_txn_marker());
    // Marker value shorter than six bytes: no coordinator epoch.
    let mut short = BatchBuilder::new(T);
    short.is_control = true;
    short.push(
        T,
        Some(Bytes::from_static(&[0, 0, 0, 0])),
        Some(Bytes::from_static(&[0, 0, 0])),
        vec![],
    );
    assert_eq!(
        control_record_type(&short.build().unwrap()),
        Some((0, None))
    );
    // Short key or negative version: an error.
    let mut bad = BatchBuilder::new(T);
    bad.is_control = true;
    bad.push(T, Some(Bytes::from_static(&[0, 0])), None, vec![]);
    assert!(control_record(&bad.build().unwrap()).is_err());
    let mut neg = BatchBuilder::new(T);
    neg.is_control = true;
    neg.push(
        T,
        Some(Bytes::from_static(&[0xFF, 0xFF, 0, 1])),
        None,
        vec![],
    );
    assert!(control_record(&neg.build().unwrap()).is_err());
    assert_eq!(control_record_type(&neg.build().unwrap()), None);
}

#[test]
fn builder_marker_is_identical() {
    let mut b = BatchBuilder::new(T);
    b.producer_id = 1000;
    b.producer_epoch = 0;
    b.is_transactional = true;
    b.is_control = true;
    b.push(
        T,
        Some(Bytes::from_static(&[0, 0, 0, 1])),
        Some(Bytes::from_static(&[0, 0, 0, 0, 0, 5])),
        vec![],
    );
    assert_eq!(b.build().unwrap(), end_txn_marker(1000, 0, 5, true, T));
}
