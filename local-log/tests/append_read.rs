//! Append validation, offset assignment, reads, indexes and rolls.
mod common;

use std::fs;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use shale_common::ManualClock;
use shale_local_log::{AppendOrigin, LogConfig, LogError};
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::{TimestampType, BATCH_HEADER_LEN};

#[test]
fn append_assigns_offsets_in_header_only() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    let input = batch(3, T0, 10);
    let a = log.append(input.clone(), client()).unwrap();
    assert_eq!((a.first_offset, a.last_offset, a.record_count), (0, 2, 3));
    assert_eq!(a.log_append_time, -1);
    assert_eq!(a.max_timestamp, T0);
    let b = log.append(batch(2, T0 + 1, 10), client()).unwrap();
    assert_eq!((b.first_offset, b.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);
    let got = parse(log.read(0, 1 << 20, 5, false).unwrap().records);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].base_offset(), 3);
    assert_eq!(got[1].partition_leader_epoch(), 3);
    got[1].verify_crc().unwrap();
    // Only base offset and leader epoch changed; CRC region identical.
    assert_eq!(&got[0].as_bytes()[16..], &input[16..]);
    assert_eq!(log.latest_epoch(), Some(3));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 5)));
    // Bytes on disk are exactly the batches.
    let on_disk = fs::read(d.path().join("00000000000000000000.log")).unwrap();
    assert_eq!(on_disk.len(), got[0].size() + got[1].size());
    assert_eq!(&on_disk[..got[0].size()], &got[0].as_bytes()[..]);
}

#[test]
fn log_append_time_patches_timestamp_and_crc() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 5000);
    let cfg = LogConfig::default()
        .with_overrides([("message.timestamp.type", "LogAppendTime")])
        .unwrap();
    let log = open(d.path(), cfg, &clock, true);
    let a = log.append(batch(2, T0, 4), client()).unwrap();
    assert_eq!(a.log_append_time, T0 + 5000);
    let got = parse(log.read(0, 1 << 20, 2, false).unwrap().records);
    assert_eq!(got[0].timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(got[0].max_timestamp(), T0 + 5000);
    got[0].verify_crc().unwrap();
}

#[test]
fn client_validation_errors() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = LogConfig::default()
        .with_overrides([
            ("max.message.bytes", "200"),
            ("message.timestamp.before.max.ms", "1000"),
        ])
        .unwrap();
    let log = open(d.path(), cfg, &clock, true);
    // Non-zero base offset.
    let mut b = BatchBuilder::new(T0);
    b.base_offset = 7;
    b.push(T0, None, Some(Bytes::from_static(b"v")), vec![]);
    assert!(matches!(
        log.append(b.build().unwrap().into_bytes(), client()),
        Err(LogError::InvalidRecord { .. })
    ));
    // Too large.
    assert!(matches!(
        log.append(batch(1, T0, 300), client()),
        Err(LogError::RecordTooLarge { .. })
    ));
    // CRC.
    let mut bad = batch(1, T0, 5).to_vec();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(matches!(
        log.append(Bytes::from(bad), client()),
        Err(LogError::CorruptRecord { .. })
    ));
    // Control batch.
    let mut c = BatchBuilder::new(T0);
    c.is_control = true;
    c.push(T0, Some(Bytes::from_static(&[0, 0, 0, 1])), None, vec![]);
    assert!(matches!(
        log.append(c.build().unwrap().into_bytes(), client()),
        Err(LogError::InvalidRecord { .. })
    ));
    // Producer id without sequence.
    let mut p = BatchBuilder::new(T0);
    p.producer_id = 5;
    p.producer_epoch = 0;
    p.push(T0, None, None, vec![]);
    assert!(matches!(
        log.append(p.build().unwrap().into_bytes(), client()),
        Err(LogError::InvalidRecord { .. })
    ));
    // Too old timestamp.
    assert!(matches!(
        log.append(batch(1, T0 - 5000, 1), client()),
        Err(LogError::InvalidTimestamp { timestamp, .. }) if timestamp == T0 - 5000
    ));
    // Two batches from a client.
    let mut two = batch(1, T0, 1).to_vec();
    two.extend_from_slice(&batch(1, T0, 1));
    assert!(matches!(
        log.append(Bytes::from(two), client()),
        Err(LogError::InvalidRecord { .. })
    ));
    // Truncated trailing batch is ignored; empty input appends nothing.
    let full = batch(1, T0, 1);
    let a = log.append(full.slice(..full.len() - 3), client()).unwrap();
    assert_eq!(a.first_offset, -1);
    assert_eq!(log.log_end_offset(), 0);
    // Record set larger than segment.bytes.
    log.update_config(
        LogConfig::default()
            .with_overrides([("segment.bytes", "100")])
            .unwrap(),
    );
    assert!(matches!(
        log.append(batch(3, T0, 50), client()),
        Err(LogError::RecordListTooLarge { .. })
    ));
    // Compacted topic requires keys.
    log.update_config(
        LogConfig::default()
            .with_overrides([("cleanup.policy", "compact")])
            .unwrap(),
    );
    let mut nk = BatchBuilder::new(T0);
    nk.push(T0, None, Some(Bytes::from_static(b"v")), vec![]);
    assert!(matches!(
        log.append(nk.build().unwrap().into_bytes(), client()),
        Err(LogError::InvalidRecord { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn compressed_batch_is_kept_as_is() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    let mut b = BatchBuilder::new(T0);
    b.compression = shale_protocol::compression::Compression::Gzip;
    for i in 0..10 {
        b.push(
            T0 + i,
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from(vec![b'x'; 100])),
            vec![],
        );
    }
    let input = b.build().unwrap().into_bytes();
    let a = log.append(input.clone(), client()).unwrap();
    assert_eq!(
        (a.first_offset, a.last_offset, a.max_timestamp),
        (0, 9, T0 + 9)
    );
    let got = parse(log.read(0, 1 << 20, 10, false).unwrap().records);
    assert_eq!(
        &got[0].as_bytes()[BATCH_HEADER_LEN..],
        &input[BATCH_HEADER_LEN..]
    );
    assert_eq!(got[0].records().unwrap().len(), 10);
}

#[test]
fn raft_leader_appends_keep_epoch_and_accept_many_batches() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    let mut buf = Vec::new();
    for _ in 0..3 {
        let mut b = BatchBuilder::new(T0);
        b.partition_leader_epoch = 7;
        b.push(T0, None, Some(Bytes::from_static(b"m")), vec![]);
        b.push(T0, None, Some(Bytes::from_static(b"n")), vec![]);
        buf.extend_from_slice(&b.build().unwrap().into_bytes());
    }
    let a = log
        .append(Bytes::from(buf), AppendOrigin::RaftLeader)
        .unwrap();
    assert_eq!((a.first_offset, a.last_offset), (0, 5));
    let got = parse(log.read(0, 1 << 20, 6, false).unwrap().records);
    assert_eq!(
        got.iter().map(|b| b.base_offset()).collect::<Vec<_>>(),
        vec![0, 2, 4]
    );
    assert!(got.iter().all(|b| b.partition_leader_epoch() == 7));
    assert_eq!(log.epoch_entries(), vec![(7, 0)]);
}

#[test]
fn read_limits() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    let size = batch(2, T0, 100).len();
    for _ in 0..5 {
        log.append(batch(2, T0, 100), client()).unwrap();
    }
    let leo = log.log_end_offset();
    assert_eq!(leo, 10);
    // Fetch in the middle of a batch returns that whole batch.
    let r = parse(log.read(3, 1 << 20, leo, false).unwrap().records);
    assert_eq!(r[0].base_offset(), 2);
    assert_eq!(r.len(), 4);
    // max_bytes cuts at whole batches.
    let r = parse(log.read(0, size * 2 + 10, leo, false).unwrap().records);
    assert_eq!(r.len(), 2);
    // Too small without min_one_batch: nothing; with it: one batch.
    assert!(log.read(0, 10, leo, false).unwrap().records.is_empty());
    assert_eq!(parse(log.read(0, 10, leo, true).unwrap().records).len(), 1);
    // max_offset bound (exclusive).
    let r = parse(log.read(0, 1 << 20, 6, false).unwrap().records);
    assert_eq!(r.last().unwrap().last_offset(), 5);
    // At LEO: empty; beyond: out of range.
    let r = log.read(10, 1 << 20, leo, false).unwrap();
    assert!(r.records.is_empty());
    assert_eq!((r.log_start_offset, r.log_end_offset), (0, 10));
    assert!(matches!(
        log.read(11, 100, leo, false),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn sparse_offset_index_rule() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let size = batch(1, T0, 100).len();
    let cfg = LogConfig::default()
        .with_overrides([("index.interval.bytes", &*size.to_string())])
        .unwrap();
    let log = open(d.path(), cfg, &clock, true);
    for i in 0..5 {
        log.append(batch(1, T0 + i, 100), client()).unwrap();
    }
    log.roll().unwrap();
    // bytes since last entry: 0,S,2S(>S -> entry at batch 2),S,2S (entry at batch 4).
    let idx = fs::read(d.path().join("00000000000000000000.index")).unwrap();
    let pos2 = (2 * size) as u32;
    let pos4 = (4 * size) as u32;
    let mut expect = Vec::new();
    for (o, p) in [(2u32, pos2), (4, pos4)] {
        expect.extend_from_slice(&o.to_be_bytes());
        expect.extend_from_slice(&p.to_be_bytes());
    }
    assert_eq!(idx, expect);
    // Time index: entries at the same moments; the final one on roll has an equal timestamp
    // (T0+4 at offset 4) and is skipped by the strict-increase rule.
    let ti = fs::read(d.path().join("00000000000000000000.timeindex")).unwrap();
    assert_eq!(ti.len(), 2 * 12);
    assert_eq!(&ti[..8], &(T0 + 2).to_be_bytes());
    assert_eq!(&ti[12..20], &(T0 + 4).to_be_bytes());
    assert_eq!(&ti[20..24], &4u32.to_be_bytes());
    // The new active segment's indexes live in memory (no preallocated files, no descriptor):
    // their files start empty and hold exactly their entries once the segment is flushed.
    let active_index = d.path().join("00000000000000000005.index");
    assert_eq!(fs::metadata(&active_index).unwrap().len(), 0);
    log.append(batch(1, T0 + 5, 100), client()).unwrap();
    log.flush().unwrap();
    assert_eq!(fs::metadata(&active_index).unwrap().len(), 0);
    assert_eq!(
        fs::metadata(d.path().join("00000000000000000005.timeindex"))
            .unwrap()
            .len(),
        0
    );
    assert!(d.path().join("00000000000000000005.snapshot").exists());
    // Lookups through the sparse index still find every offset.
    for o in 0..5 {
        let r = parse(log.read(o, 1, 5, true).unwrap().records);
        assert_eq!(r[0].base_offset(), o);
    }
}

#[test]
fn roll_by_size_time_and_index_full() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let size = batch(1, T0, 100).len();
    let cfg = LogConfig::default()
        .with_overrides([("segment.bytes", &*(size * 2).to_string())])
        .unwrap();
    let log = open(d.path(), cfg, &clock, true);
    for _ in 0..5 {
        log.append(batch(1, T0, 100), client()).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);

    // Time: segment.ms measured from the first batch's timestamp to the incoming max timestamp.
    let d2 = tempfile::tempdir().unwrap();
    let cfg = LogConfig::default()
        .with_overrides([("segment.ms", "1000")])
        .unwrap();
    let log = open(d2.path(), cfg, &clock, true);
    log.append(batch(1, T0, 1), client()).unwrap();
    log.append(batch(1, T0 + 1000, 1), client()).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(batch(1, T0 + 1001, 1), client()).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    // Housekeeping rolls an idle segment once segment.ms has passed.
    clock.set_ms(T0 + 1001 + 1001);
    log.tick().unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 3]);
    clock.advance(Duration::from_secs(10));
    log.tick().unwrap(); // empty active segment: no roll
    assert_eq!(log.segment_count(), 3);

    // Offset index full: 36 bytes = 4 offset entries (the time index, 3 slots, stays at one
    // entry because every batch has the same timestamp). One entry per append after the first.
    let d3 = tempfile::tempdir().unwrap();
    let cfg = LogConfig::default()
        .with_overrides([("segment.index.bytes", "36"), ("index.interval.bytes", "0")])
        .unwrap();
    let log = open(d3.path(), cfg, &clock, true);
    for _ in 0..6 {
        log.append(batch(1, T0, 1), client()).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 5]);
    assert_eq!(
        fs::metadata(d3.path().join("00000000000000000000.index"))
            .unwrap()
            .len(),
        32
    );
    assert_eq!(all_batches(&log).len(), 6);

    // Time index full: 24 bytes = 2 slots, the last reserved; increasing timestamps.
    let d4 = tempfile::tempdir().unwrap();
    let cfg = LogConfig::default()
        .with_overrides([("segment.index.bytes", "24"), ("index.interval.bytes", "0")])
        .unwrap();
    let log = open(d4.path(), cfg, &clock, true);
    for i in 0..4 {
        log.append(batch(1, T0 + i, 1), client()).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn timestamps_lookup() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = LogConfig::default()
        .with_overrides([("segment.bytes", "300"), ("index.interval.bytes", "1")])
        .unwrap();
    let log = open(d.path(), cfg, &clock, true);
    let ts = [T0, T0 + 10, T0 + 50, T0 + 20, T0 + 50, T0 + 60];
    for t in ts {
        let mut b = BatchBuilder::new(t - 5);
        b.push(t - 5, None, Some(Bytes::from_static(b"a")), vec![]);
        b.push(t, None, Some(Bytes::from_static(b"b")), vec![]);
        log.append(b.build().unwrap().into_bytes(), client())
            .unwrap();
    }
    assert!(log.segment_count() > 1);
    let f = log.offset_for_timestamp(T0 + 8).unwrap().unwrap();
    assert_eq!(
        (f.timestamp, f.offset, f.leader_epoch),
        (T0 + 10, 3, Some(3))
    );
    let f = log.offset_for_timestamp(T0 + 45).unwrap().unwrap();
    assert_eq!((f.timestamp, f.offset), (T0 + 45, 4));
    assert!(log.offset_for_timestamp(T0 + 61).unwrap().is_none());
    let m = log.offset_of_max_timestamp().unwrap().unwrap();
    assert_eq!((m.timestamp, m.offset), (T0 + 60, 11));
}

/// The 70-byte batch of formats.md §9, appended with leader epoch -1, lands on disk byte for byte.
#[test]
fn formats_md_vector_is_stored_verbatim() {
    let hex = "00 00 00 00 00 00 00 00 00 00 00 3A FF FF FF FF 02 E9 9B 8D D8 00 00 00 00 00 00 \
               00 00 01 8B CF E5 68 00 00 00 01 8B CF E5 68 00 FF FF FF FF FF FF FF FF FF FF FF FF FF FF \
               00 00 00 01 10 00 00 00 02 6B 02 76 00";
    let v: Vec<u8> = hex
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    assert_eq!(v.len(), 70);
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    log.append(
        Bytes::from(v.clone()),
        AppendOrigin::Client {
            leader_epoch: -1,
            verification: None,
        },
    )
    .unwrap();
    // Second copy lands at offset 1: only the base offset differs.
    log.append(
        Bytes::from(v.clone()),
        AppendOrigin::Client {
            leader_epoch: -1,
            verification: None,
        },
    )
    .unwrap();
    let disk = fs::read(d.path().join("00000000000000000000.log")).unwrap();
    assert_eq!(&disk[..70], &v[..]);
    assert_eq!(&disk[70..78], &1i64.to_be_bytes());
    assert_eq!(&disk[78..], &v[8..]);
    assert_eq!(log.epoch_entries(), Vec::<(i32, i64)>::new());
}

#[test]
fn flush_messages_advances_recovery_point() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    log.append(batch(2, T0, 1), client()).unwrap();
    assert_eq!(
        log.recovery_point(),
        0,
        "default flush.messages never fsyncs per append"
    );
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 2);
    log.update_config(
        LogConfig::default()
            .with_overrides([("flush.messages", "3")])
            .unwrap(),
    );
    log.append(batch(2, T0, 1), client()).unwrap();
    assert_eq!(log.recovery_point(), 2);
    log.append(batch(1, T0, 1), client()).unwrap();
    assert_eq!(log.recovery_point(), 5);
    // flush.ms through tick.
    log.update_config(
        LogConfig::default()
            .with_overrides([("flush.ms", "1000")])
            .unwrap(),
    );
    log.append(batch(1, T0, 1), client()).unwrap();
    log.tick().unwrap();
    assert_eq!(log.recovery_point(), 5);
    clock.advance(Duration::from_millis(1000));
    log.tick().unwrap();
    assert_eq!(log.recovery_point(), 6);
}

#[test]
fn reads_run_concurrently_with_appends() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<shale_local_log::Log>();
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = LogConfig::default()
        .with_overrides([("segment.bytes", "2000"), ("index.interval.bytes", "200")])
        .unwrap();
    let log = std::sync::Arc::new(open(d.path(), cfg, &clock, true));
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut next = 0i64;
            while next < 400 {
                let leo = log.log_end_offset();
                let r = log.read(next, 10_000, leo, true).unwrap();
                for b in parse(r.records) {
                    b.verify_crc().unwrap();
                    assert!(b.base_offset() <= next && b.last_offset() >= next);
                    next = b.last_offset() + 1;
                }
                std::thread::yield_now();
            }
            next
        })
    };
    for _ in 0..200 {
        log.append(batch(2, T0, 30), client()).unwrap();
    }
    assert_eq!(reader.join().unwrap(), 400);
    assert!(log.segment_count() > 5);
}
