//! Unit tests of the producer-state rules and the snapshot file format.

use super::*;

fn hdr(pid: i64, epoch: i16, seq: i32, count: i32, ts: i64) -> BatchHeader {
    let mut h = BatchHeader::default();
    h.set_producer(pid, epoch, seq);
    h.set_last_offset_delta(count - 1);
    h.set_record_count(count);
    h.set_max_timestamp(ts);
    h
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

#[test]
fn empty_snapshot_bytes_match_kafka() {
    let d = tempfile::tempdir().unwrap();
    let mut m = ProducerStateManager::new(d.path()).unwrap();
    assert_eq!(
        m.encode(),
        vec![0x00, 0x01, 0x48, 0x67, 0x4B, 0xC7, 0, 0, 0, 0]
    );
    m.take_snapshot().unwrap();
    assert_eq!(
        fs::read(d.path().join("00000000000000000000.snapshot")).unwrap(),
        vec![0x00, 0x01, 0x48, 0x67, 0x4B, 0xC7, 0, 0, 0, 0]
    );
}

#[test]
fn sequence_rules() {
    let d = tempfile::tempdir().unwrap();
    let mut m = ProducerStateManager::new(d.path()).unwrap();
    // Unknown producer: any sequence accepted.
    let h = hdr(7, 0, 0, 3, 100);
    assert_eq!(m.check(&tp(), &h).unwrap(), ProducerCheck::Ok);
    m.update(&h, 10, None);
    // Duplicate of the cached batch.
    match m.check(&tp(), &h).unwrap() {
        ProducerCheck::Duplicate(b) => {
            assert_eq!((b.first_offset(), b.last_offset), (10, 12));
        }
        other => panic!("{other:?}"),
    }
    // Gap.
    let gap = hdr(7, 0, 5, 1, 100);
    assert!(matches!(
        m.check(&tp(), &gap),
        Err(LogError::OutOfOrderSequence {
            expected: 3,
            found: 5,
            ..
        })
    ));
    // Next in sequence.
    let next = hdr(7, 0, 3, 2, 101);
    assert_eq!(m.check(&tp(), &next).unwrap(), ProducerCheck::Ok);
    m.update(&next, 13, None);
    // Epoch bump must restart at 0.
    assert!(matches!(
        m.check(&tp(), &hdr(7, 1, 5, 1, 0)),
        Err(LogError::OutOfOrderSequence { .. })
    ));
    let bumped = hdr(7, 1, 0, 1, 102);
    assert_eq!(m.check(&tp(), &bumped).unwrap(), ProducerCheck::Ok);
    m.update(&bumped, 15, None);
    // Old epoch is fenced (even for what used to be a duplicate).
    assert!(matches!(
        m.check(&tp(), &h),
        Err(LogError::InvalidProducerEpoch {
            current: 1,
            found: 0,
            ..
        })
    ));
    assert_eq!(m.map_end_offset(), 16);
    let e = m.entries();
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].producer_epoch, e[0].last_sequence, e[0].last_offset),
        (1, 0, 15)
    );
}

#[test]
fn only_five_batches_are_cached() {
    let d = tempfile::tempdir().unwrap();
    let mut m = ProducerStateManager::new(d.path()).unwrap();
    for i in 0..6 {
        m.update(&hdr(1, 0, i, 1, 0), i64::from(i), None);
    }
    assert!(matches!(
        m.check(&tp(), &hdr(1, 0, 0, 1, 0)),
        Err(LogError::OutOfOrderSequence { .. })
    ));
    assert!(matches!(
        m.check(&tp(), &hdr(1, 0, 1, 1, 0)).unwrap(),
        ProducerCheck::Duplicate(_)
    ));
}

#[test]
fn snapshot_round_trip_and_corruption() {
    let d = tempfile::tempdir().unwrap();
    let now = 1_000_000;
    let mut m = ProducerStateManager::new(d.path()).unwrap();
    m.update(&hdr(9, 2, 0, 4, now), 0, None);
    m.take_snapshot().unwrap();
    let bytes = fs::read(d.path().join(snapshot_file_name(4))).unwrap();
    assert_eq!(bytes.len(), 10 + 46);
    let e = decode_snapshot(Path::new("x"), &bytes).unwrap();
    assert_eq!(
        e[0],
        SnapshotEntry {
            producer_id: 9,
            epoch: 2,
            last_seq: 3,
            last_offset: 3,
            offset_delta: 3,
            timestamp: now,
            coordinator_epoch: -1,
            txn_first_offset: -1
        }
    );
    let mut m2 = ProducerStateManager::new(d.path()).unwrap();
    assert_eq!(m2.load_latest(100, now).unwrap(), Some(4));
    assert!(matches!(
        m2.check(&tp(), &hdr(9, 2, 0, 4, now)).unwrap(),
        ProducerCheck::Duplicate(_)
    ));
    // Expired producers are dropped on load.
    let mut m3 = ProducerStateManager::new(d.path()).unwrap();
    m3.load_latest(100, now + PRODUCER_ID_EXPIRATION_MS)
        .unwrap();
    assert!(m3.entries().is_empty());
    // A corrupt snapshot is deleted and an older one used.
    let mut m4 = ProducerStateManager::new(d.path()).unwrap();
    m4.set_map_end_offset(2);
    m4.take_snapshot().unwrap();
    let mut bad = bytes.clone();
    bad[20] ^= 0xFF;
    fs::write(d.path().join(snapshot_file_name(4)), bad).unwrap();
    let mut m5 = ProducerStateManager::new(d.path()).unwrap();
    assert_eq!(m5.load_latest(100, now).unwrap(), Some(2));
    assert!(!d.path().join(snapshot_file_name(4)).exists());
}

fn commit(coordinator_epoch: i32) -> ControlRecord {
    ControlRecord {
        version: 0,
        record_type: shale_protocol::record::CONTROL_TYPE_COMMIT,
        coordinator_epoch: Some(coordinator_epoch),
    }
}

#[test]
fn snapshot_with_an_open_transaction_is_byte_exact_and_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let mut m = ProducerStateManager::new(d.path()).unwrap();
    let ts = 1_700_000_000_000i64;
    // A committed transaction (coordinator epoch 7), then a new one opened at offset 13.
    let mut first = hdr(1000, 2, 0, 2, ts);
    first.set_transactional(true);
    m.update(&first, 10, None);
    let mut marker = hdr(1000, 2, -1, 1, ts + 1);
    marker.set_transactional(true);
    marker.set_control(true);
    let done = m.update(&marker, 12, Some(&commit(7))).unwrap();
    assert_eq!(
        (done.first_offset, done.last_offset, done.aborted),
        (10, 12, false)
    );
    let mut open = hdr(1000, 2, 2, 1, ts + 2);
    open.set_transactional(true);
    assert!(m.update(&open, 13, None).is_none());
    assert_eq!(m.entries()[0].current_txn_start_offset, 13);
    assert_eq!(m.entries()[0].coordinator_epoch, 7);
    let mut body = vec![0, 0, 0, 1]; // one entry
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0xE8]); // producer id 1000
    body.extend_from_slice(&[0, 2]); // epoch
    body.extend_from_slice(&[0, 0, 0, 2]); // last sequence
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 13]); // last offset
    body.extend_from_slice(&[0, 0, 0, 0]); // offset delta
    body.extend_from_slice(&(ts + 2).to_be_bytes()); // timestamp
    body.extend_from_slice(&[0, 0, 0, 7]); // coordinator epoch
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 13]); // current txn first offset
    assert_eq!(body.len(), 4 + ENTRY_SIZE);
    let mut want = vec![0, 1];
    want.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    want.extend_from_slice(&body);
    assert_eq!(m.encode(), want);
    m.set_map_end_offset(14);
    m.take_snapshot().unwrap();
    let mut loaded = ProducerStateManager::new(d.path()).unwrap();
    assert_eq!(loaded.load_latest(14, ts).unwrap(), Some(14));
    assert_eq!(loaded.entries(), m.entries());
    assert_eq!(loaded.txns().lock().ongoing(), vec![(1000, 13)]);
    assert_eq!(loaded.encode(), want);
}
