//! Log cleaner: latest value per key, keyless records, tombstones and delete horizons, producer
//! batches, offsets and reads, the cleaner checkpoint, and crash recovery at each swap step.
mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use shale_common::{ManualClock, TopicPartition};
use shale_local_log::{Log, LogConfig, LogManager, LogManagerOptions};
use shale_protocol::record::BatchBuilder;
use uuid::Uuid;

fn compact(extra: &[(&str, &str)]) -> LogConfig {
    LogConfig::default()
        .with_overrides([
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1000"),
            ("delete.retention.ms", "1000"),
            ("file.delete.delay.ms", "0"),
        ])
        .unwrap()
        .with_overrides(extra.iter().copied())
        .unwrap()
}

/// One batch of `(key, value)` records (`None` key = keyless, `None` value = tombstone).
fn kv(records: &[(Option<&str>, Option<&str>)], ts: i64) -> Bytes {
    let mut b = BatchBuilder::new(ts);
    for (k, v) in records {
        b.push(
            ts,
            k.map(|k| Bytes::from(k.to_string())),
            v.map(|v| Bytes::from(v.to_string())),
            vec![],
        );
    }
    b.build().unwrap().into_bytes()
}

fn put(log: &Log, k: &str, v: Option<&str>) {
    log.append(kv(&[(Some(k), v)], T0), client()).unwrap();
}

/// `(offset, key, value)` of every record readable from the log start.
fn contents(log: &Log) -> Vec<(i64, Option<String>, Option<String>)> {
    let s = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let mut out = Vec::new();
    for b in all_batches(log) {
        for r in b.records().unwrap() {
            out.push((
                b.base_offset() + i64::from(r.offset_delta),
                s(&r.key),
                s(&r.value),
            ));
        }
    }
    out
}

/// Offsets 0..=9 over four segments, active segment last: a, b, a, keyless, c, b(tomb), a, d.
fn scenario(log: &Log) {
    put(log, "a", Some("a0")); // 0
    put(log, "b", Some("b1")); // 1
    log.roll().unwrap();
    put(log, "a", Some("a2")); // 2
                               // Keyless records are rejected from clients on compacted topics; write one unvalidated.
    log.append(
        kv(&[(None, Some("nokey"))], T0),
        shale_local_log::AppendOrigin::RaftLeader,
    )
    .unwrap(); // 3
    log.append(
        kv(&[(Some("c"), Some("c4")), (Some("x"), Some("x5"))], T0),
        client(),
    )
    .unwrap(); // 4, 5
    log.roll().unwrap();
    put(log, "b", None); // 6: tombstone
    put(log, "a", Some("a7")); // 7
    put(log, "d", Some("d8")); // 8
    log.roll().unwrap();
    put(log, "a", Some("active")); // 9: active segment, not cleaned
}

fn expected_after_first_pass() -> Vec<(i64, Option<String>, Option<String>)> {
    let o = |s: &str| Some(s.to_string());
    vec![
        (4, o("c"), o("c4")),
        (5, o("x"), o("x5")),
        (6, o("b"), None),
        (7, o("a"), o("a7")),
        (8, o("d"), o("d8")),
        (9, o("a"), o("active")),
    ]
}

#[test]
fn keeps_latest_value_per_key_drops_keyless_and_preserves_offsets() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), compact(&[]), &clock, true);
    scenario(&log);
    let leo = log.log_end_offset();
    let stats = log.clean(false).unwrap().expect("dirty ratio 1.0 is due");
    assert_eq!(stats.first_dirty_offset, 0);
    assert_eq!(stats.end_offset, 9);
    assert_eq!(stats.records_removed, 4);
    assert_eq!(stats.segments_cleaned, 3);
    assert!(stats.bytes_after < stats.bytes_before);
    assert_eq!(log.cleaner_checkpoint(), 9);
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(contents(&log), expected_after_first_pass());
    // Reads at removed offsets start at the next retained batch.
    let first = parse(log.read(0, 1 << 20, leo, true).unwrap().records);
    assert_eq!(first[0].base_offset(), 4);
    let at2 = parse(log.read(2, 1 << 20, leo, true).unwrap().records);
    assert_eq!(at2[0].base_offset(), 4);
    // Tombstone batch got a delete horizon = cleaning time + delete.retention.ms.
    let tomb = parse(log.read(6, 1 << 20, 7, true).unwrap().records);
    assert_eq!(tomb[0].delete_horizon_ms(), Some(T0 + 1000));
    tomb[0].verify_crc().unwrap();
    // Nothing new is dirty: not due again.
    assert_eq!(log.clean(false).unwrap(), None);
    // The result survives an unclean restart (indexes and batches re-validated).
    drop(log);
    let log = open(d.path(), compact(&[]), &clock, false);
    assert_eq!(contents(&log), expected_after_first_pass());
    assert_eq!(log.log_end_offset(), leo);
}

#[test]
fn tombstones_vanish_after_delete_retention() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), compact(&[]), &clock, true);
    scenario(&log);
    log.clean(false).unwrap().unwrap();
    clock.advance(Duration::from_millis(999));
    assert_eq!(log.clean(false).unwrap(), None, "horizon not reached");
    clock.advance(Duration::from_millis(1));
    let stats = log.clean(false).unwrap().expect("horizon passed");
    assert_eq!(stats.records_removed, 1);
    let got = contents(&log);
    assert!(
        got.iter().all(|(_, k, _)| k.as_deref() != Some("b")),
        "{got:?}"
    );
    assert_eq!(got.len(), 5);
    assert_eq!(log.clean(false).unwrap(), None, "no horizon left");
}

#[test]
fn producer_last_batch_is_kept_empty() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), compact(&[]), &clock, true);
    let mut b = BatchBuilder::new(T0);
    b.producer_id = 42;
    b.producer_epoch = 1;
    b.base_sequence = 0;
    b.push(
        T0,
        Some(Bytes::from_static(b"k")),
        Some(Bytes::from_static(b"p0")),
        vec![],
    );
    b.push(
        T0,
        Some(Bytes::from_static(b"k")),
        Some(Bytes::from_static(b"p1")),
        vec![],
    );
    log.append(b.build().unwrap().into_bytes(), client())
        .unwrap(); // 0, 1
    put(&log, "k", Some("later")); // 2
    put(&log, "z", Some("z")); // 3
    log.roll().unwrap();
    log.clean(true).unwrap().unwrap();
    let batches = all_batches(&log);
    let empty = &batches[0];
    assert_eq!(empty.base_offset(), 0);
    assert_eq!(empty.last_offset(), 1);
    assert_eq!(empty.record_count(), 0);
    assert_eq!(empty.producer_id(), 42);
    assert_eq!(empty.base_sequence(), 0);
    assert_eq!(empty.last_sequence(), 1);
    assert_eq!(empty.base_timestamp(), -1);
    assert_eq!(empty.max_timestamp(), T0);
    empty.verify_crc().unwrap();
    assert_eq!(batches.len(), 3);
    let p = log.producer_states();
    assert_eq!(p[0].last_sequence, 1);
}

#[test]
fn aborted_transactions_are_dropped() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), compact(&[]), &clock, true);
    let mut b = BatchBuilder::new(T0);
    b.producer_id = 7;
    b.producer_epoch = 0;
    b.base_sequence = 0;
    b.is_transactional = true;
    b.push(
        T0,
        Some(Bytes::from_static(b"t")),
        Some(Bytes::from_static(b"aborted")),
        vec![],
    );
    log.append(b.build().unwrap().into_bytes(), client())
        .unwrap(); // 0
    let mut m = BatchBuilder::new(T0);
    m.producer_id = 7;
    m.producer_epoch = 0;
    m.is_transactional = true;
    m.is_control = true;
    // ABORT marker: version 0, type 0; value: version 0, coordinator epoch 0.
    m.push(
        T0,
        Some(Bytes::from_static(&[0, 0, 0, 0])),
        Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        vec![],
    );
    log.append(
        m.build().unwrap().into_bytes(),
        shale_local_log::AppendOrigin::RaftLeader,
    )
    .unwrap(); // 1
    put(&log, "t", Some("kept")); // 2 (non-transactional, earlier value must not shadow)
    put(&log, "u", Some("u")); // 3
    log.roll().unwrap();
    // The aborted transaction stays unstable until the high watermark passes its marker.
    assert_eq!(log.first_unstable_offset(), Some(0));
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.first_unstable_offset(), None);
    let entry = shale_local_log::AbortedTxn {
        producer_id: 7,
        first_offset: 0,
        last_offset: 1,
        last_stable_offset: 2,
    };
    assert_eq!(log.collect_aborted_txns(0, 4).unwrap(), vec![entry]);
    log.clean(true).unwrap().unwrap();
    // The aborted batch stays header-only as producer 7's last, so its ABORT marker is not
    // removable: the marker is kept, and so is its .txnindex entry in the rewritten segment.
    assert_eq!(log.collect_aborted_txns(0, 4).unwrap(), vec![entry]);
    assert!(d.path().join("00000000000000000000.txnindex").exists());
    let got = contents(&log);
    assert!(
        got.iter().all(|(_, _, v)| v.as_deref() != Some("aborted")),
        "{got:?}"
    );
    assert!(got
        .iter()
        .any(|(o, _, v)| *o == 2 && v.as_deref() == Some("kept")));
}

#[test]
fn min_compaction_lag_holds_back_young_segments() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(
        d.path(),
        compact(&[("min.compaction.lag.ms", "5000")]),
        &clock,
        true,
    );
    scenario(&log);
    assert_eq!(log.clean(false).unwrap(), None);
    let forced = log.clean(true).unwrap().unwrap();
    assert_eq!(forced.end_offset, 0, "nothing old enough to map");
    clock.advance(Duration::from_millis(5001));
    let stats = log.clean(false).unwrap().unwrap();
    assert_eq!(stats.end_offset, 9);
}

#[test]
fn max_compaction_lag_forces_a_pass_below_the_ratio() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = compact(&[
        ("min.cleanable.dirty.ratio", "0.99"),
        ("max.compaction.lag.ms", "10000"),
    ]);
    let log = open(d.path(), cfg, &clock, true);
    scenario(&log);
    log.clean(true).unwrap().unwrap();
    put(&log, "a", Some("new")); // 10, dirty but tiny
    log.roll().unwrap();
    assert_eq!(log.clean(false).unwrap(), None);
    clock.advance(Duration::from_millis(10_001));
    // Tombstone horizon also passed by now; either way a pass must run.
    assert!(log.clean(false).unwrap().is_some());
    assert!(contents(&log)
        .iter()
        .all(|(o, _, v)| *o != 7 || v.is_none()));
}

#[test]
fn cleaner_checkpoint_is_written_by_housekeeping_and_restored() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = compact(&[]);
    let tp = TopicPartition::new("__consumer_offsets", 0);
    let mk = |clock: &Arc<ManualClock>| {
        let c = cfg.clone();
        let configs = move |_: &str| Some((Uuid::from_u128(3), c.clone()));
        LogManager::open(
            LogManagerOptions {
                log_dirs: vec![root.path().to_path_buf()],
                default_config: LogConfig::default(),
                open_files_max: None,
            },
            clock.clone(),
            &configs,
        )
        .unwrap()
    };
    let m = mk(&clock);
    let log = m
        .get_or_create(&tp, Uuid::from_u128(3), cfg.clone())
        .unwrap();
    scenario(&log);
    m.housekeeping().unwrap();
    let ck = fs::read_to_string(root.path().join("cleaner-offset-checkpoint")).unwrap();
    assert_eq!(ck, "0\n1\n__consumer_offsets 0 9\n");
    m.shutdown().unwrap();
    drop(log);
    drop(m);
    let m = mk(&clock);
    let log = m.get(&tp).unwrap();
    assert_eq!(log.cleaner_checkpoint(), 9);
    assert_eq!(contents(&log), expected_after_first_pass());
}

// ---- crash at each swap step -------------------------------------------------------------

const Z: &str = "00000000000000000000";

fn name(base: i64, ext: &str) -> String {
    format!("{base:020}{ext}")
}

/// Builds the scenario in `dir` and closes it cleanly; returns the segment bases.
fn build(dir: &Path, clock: &Arc<ManualClock>) -> Vec<i64> {
    let log = open(dir, compact(&[]), clock, true);
    scenario(&log);
    let bases = log.segment_base_offsets();
    log.close().unwrap();
    bases
}

/// Cleans a copy in `dir` and returns the bytes of its cleaned first segment `.log`.
fn cleaned_bytes(dir: &Path, clock: &Arc<ManualClock>) -> Vec<u8> {
    build(dir, clock);
    let log = open(dir, compact(&[]), clock, true);
    log.clean(true).unwrap().unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 9]);
    log.close().unwrap();
    fs::read(dir.join(name(0, ".log"))).unwrap()
}

fn reopen_and_check(dir: &Path, clock: &Arc<ManualClock>, expect_cleaned: bool) {
    let log = open(dir, compact(&[]), clock, false);
    assert_eq!(log.log_end_offset(), 10);
    let got = contents(&log);
    if expect_cleaned {
        assert_eq!(got, expected_after_first_pass());
        assert_eq!(log.segment_base_offsets(), vec![0, 9]);
    } else {
        assert_eq!(got.len(), 10, "all original records: {got:?}");
        assert_eq!(log.segment_base_offsets(), vec![0, 2, 6, 9]);
    }
    let f = files(dir);
    assert!(
        f.iter()
            .all(|n| !n.ends_with(".cleaned") && !n.ends_with(".swap")),
        "{f:?}"
    );
    // `.deleted` leftovers go in the background after the open.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while files(dir).iter().any(|n| n.ends_with(".deleted")) {
        assert!(std::time::Instant::now() < deadline, "{:?}", files(dir));
        std::thread::yield_now();
    }
    // The log stays writable and cleanable.
    put(&log, "e", Some("e"));
    log.roll().unwrap();
    log.clean(true).unwrap().unwrap();
}

#[test]
fn crash_while_writing_cleaned_rolls_back() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    build(d.path(), &clock);
    fs::write(d.path().join(name(0, ".log.cleaned")), b"partial").unwrap();
    fs::write(d.path().join(name(0, ".index.cleaned")), b"").unwrap();
    reopen_and_check(d.path(), &clock, false);
}

#[test]
fn crash_while_renaming_cleaned_to_swap_rolls_back() {
    let (ref_dir, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let cleaned = cleaned_bytes(ref_dir.path(), &clock);
    build(d.path(), &clock);
    fs::write(d.path().join(name(0, ".log.swap")), &cleaned).unwrap();
    fs::write(d.path().join(name(0, ".index.cleaned")), b"").unwrap();
    fs::write(d.path().join(name(0, ".timeindex.cleaned")), b"").unwrap();
    reopen_and_check(d.path(), &clock, false);
}

#[test]
fn crash_after_swap_files_complete_rolls_forward() {
    let (ref_dir, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let cleaned = cleaned_bytes(ref_dir.path(), &clock);
    build(d.path(), &clock);
    fs::write(d.path().join(name(0, ".log.swap")), &cleaned).unwrap();
    fs::write(d.path().join(name(0, ".index.swap")), b"").unwrap();
    reopen_and_check(d.path(), &clock, true);
}

#[test]
fn crash_while_renaming_old_segments_to_deleted_rolls_forward() {
    let (ref_dir, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let cleaned = cleaned_bytes(ref_dir.path(), &clock);
    build(d.path(), &clock);
    fs::write(d.path().join(name(0, ".log.swap")), &cleaned).unwrap();
    let p = d.path();
    fs::rename(
        p.join(format!("{Z}.log")),
        p.join(format!("{Z}.log.deleted")),
    )
    .unwrap();
    fs::rename(p.join(name(2, ".log")), p.join(name(2, ".log.deleted"))).unwrap();
    reopen_and_check(d.path(), &clock, true);
}

#[test]
fn crash_while_renaming_swap_to_final_rolls_forward() {
    let (ref_dir, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let cleaned = cleaned_bytes(ref_dir.path(), &clock);
    build(d.path(), &clock);
    let p = d.path();
    for base in [0, 2, 6] {
        for ext in [".log", ".index", ".timeindex"] {
            let _ = fs::rename(
                p.join(name(base, ext)),
                p.join(format!("{}.deleted", name(base, ext))),
            );
        }
    }
    fs::write(p.join(name(0, ".log")), &cleaned).unwrap();
    fs::write(p.join(name(0, ".index.swap")), b"").unwrap();
    fs::write(p.join(name(0, ".timeindex.swap")), b"").unwrap();
    reopen_and_check(d.path(), &clock, true);
}
