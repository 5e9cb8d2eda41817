//! Log cleaner and transactions: aborted data goes in the first pass, markers whose transaction
//! has no retained data get a delete horizon and go in a pass after it, with their `.txnindex`
//! entries; a marker holding a producer's state stays, and so does a COMMIT with live data.
mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use shale_common::{Clock, ManualClock};
use shale_local_log::{AbortedTxn, AppendOrigin, Log, LogConfig};
use shale_protocol::record::{control_record_type, end_txn_marker, BatchBuilder};
use shale_protocol::record_batch::RecordBatch;

const COORDINATOR: AppendOrigin = AppendOrigin::Coordinator { leader_epoch: 3 };
const RETENTION: i64 = 1000;

fn compact() -> LogConfig {
    LogConfig::default()
        .with_overrides([
            ("cleanup.policy", "compact"),
            ("segment.bytes", "100000"),
            ("delete.retention.ms", "1000"),
            ("file.delete.delay.ms", "0"),
        ])
        .unwrap()
}

/// One record `key = value` from producer `pid` (transactional or merely idempotent).
fn data(pid: i64, epoch: i16, seq: i32, txn: bool, key: &str, value: &str) -> Bytes {
    let mut b = BatchBuilder::new(T0);
    b.producer_id = pid;
    b.producer_epoch = epoch;
    b.base_sequence = seq;
    b.is_transactional = txn;
    b.push(
        T0,
        Some(Bytes::from(key.to_string())),
        Some(Bytes::from(value.to_string())),
        vec![],
    );
    b.build().unwrap().into_bytes()
}

fn put(log: &Log, key: &str, value: &str) {
    log.append(data(-1, -1, -1, false, key, value), client())
        .unwrap();
}

fn end_txn(log: &Log, pid: i64, epoch: i16, commit: bool) {
    let m = end_txn_marker(pid, epoch, 0, commit, T0).into_bytes();
    log.append(m, COORDINATOR).unwrap();
}

fn batch_at(log: &Log, offset: i64) -> Option<RecordBatch> {
    all_batches(log)
        .into_iter()
        .find(|b| b.base_offset() == offset)
}

/// `(type, producer id, delete horizon)` of each control batch, by offset.
fn markers(log: &Log) -> Vec<(i64, i16, i64, Option<i64>)> {
    all_batches(log)
        .iter()
        .filter(|b| b.is_control())
        .map(|b| {
            b.verify_crc().unwrap();
            let (ty, _) = control_record_type(b).expect("a whole marker");
            (b.base_offset(), ty, b.producer_id(), b.delete_horizon_ms())
        })
        .collect()
}

/// `(offset, value)` of every data record.
fn values(log: &Log) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for b in all_batches(log).iter().filter(|b| !b.is_control()) {
        for r in b.records().unwrap() {
            let v = r.value.map(|v| String::from_utf8_lossy(&v).into_owned());
            out.push((
                b.base_offset() + i64::from(r.offset_delta),
                v.unwrap_or_default(),
            ));
        }
    }
    out
}

fn txnindex_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.ends_with(".txnindex"))
        .collect()
}

/// Producer 1 commits `a` (superseded later) and `live`, then writes idempotently; producer 2
/// aborts `b`, then commits `c` (superseded later) with a bumped epoch, its last write.
fn two_producers(log: &Log) {
    log.append(data(1, 0, 0, true, "a", "a1"), client())
        .unwrap(); // 0
    end_txn(log, 1, 0, true); // 1
    log.append(data(2, 0, 0, true, "b", "b-aborted"), client())
        .unwrap(); // 2
    end_txn(log, 2, 0, false); // 3
    log.roll().unwrap();
    log.append(data(1, 0, 1, true, "live", "L"), client())
        .unwrap(); // 4
    end_txn(log, 1, 0, true); // 5
    put(log, "a", "a2"); // 6
    log.append(data(2, 0, 1, true, "c", "c1"), client())
        .unwrap(); // 7
    end_txn(log, 2, 1, true); // 8: epoch bump, producer 2 has no data offset any more
    log.roll().unwrap();
    log.append(data(1, 0, 2, false, "p", "p1"), client())
        .unwrap(); // 9
    put(log, "c", "c2"); // 10
    put(log, "z", "z"); // 11: last batch of the pass
    log.roll().unwrap();
    put(log, "act", "active"); // 12: active segment
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn markers_get_a_horizon_then_go_with_their_txnindex_entries() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), compact(), &clock, true);
    two_producers(&log);
    let entry = AbortedTxn {
        producer_id: 2,
        first_offset: 2,
        last_offset: 3,
        last_stable_offset: 4,
    };
    assert_eq!(log.collect_aborted_txns(0, 13).unwrap(), vec![entry]);
    let stats = log.clean(false).unwrap().expect("all dirty");
    assert_eq!(stats.records_removed, 3, "a1, b-aborted, c1");
    let h = Some(T0 + RETENTION);
    // ABORT and COMMIT markers without retained data carry a horizon but stay for now; the
    // COMMIT of `live` has none.
    assert_eq!(
        markers(&log),
        vec![(1, 1, 1, h), (3, 0, 2, h), (5, 1, 1, None), (8, 1, 2, h)]
    );
    let kept = |s: &[(i64, &str)]| s.iter().map(|(o, v)| (*o, v.to_string())).collect();
    let want: Vec<(i64, String)> = kept(&[
        (4, "L"),
        (6, "a2"),
        (9, "p1"),
        (10, "c2"),
        (11, "z"),
        (12, "active"),
    ]);
    assert_eq!(values(&log), want);
    // The ABORT marker is still there, so is its entry.
    assert_eq!(log.collect_aborted_txns(0, 13).unwrap(), vec![entry]);
    assert_eq!(txnindex_files(d.path()).len(), 1);
    assert_eq!(
        log.clean(false).unwrap(),
        None,
        "nothing dirty, horizon ahead"
    );

    clock.advance(Duration::from_millis(RETENTION as u64 - 1));
    assert_eq!(log.clean(false).unwrap(), None, "horizon not reached");
    clock.advance(Duration::from_millis(1));
    let stats = log.clean(false).unwrap().expect("a marker horizon passed");
    assert_eq!(stats.records_removed, 2, "the two markers");
    // COMMIT at 1 and ABORT at 3 are gone; 5 guards live data; 8 is producer 2's last batch.
    assert_eq!(markers(&log), vec![(5, 1, 1, None), (8, 1, 2, h)]);
    assert_eq!(values(&log), want);
    assert_eq!(log.collect_aborted_txns(0, 13).unwrap(), vec![]);
    assert!(txnindex_files(d.path()).is_empty(), "{:?}", files(d.path()));
    assert_eq!(
        log.clean(false).unwrap(),
        None,
        "a kept marker does not re-trigger"
    );
    let producers = log.producer_states();

    // A restart that rescans every segment finds the same log and producers.
    drop(log);
    let log = open(d.path(), compact(), &clock, false);
    assert_eq!(markers(&log), vec![(5, 1, 1, None), (8, 1, 2, h)]);
    assert_eq!(values(&log), want);
    assert_eq!(log.collect_aborted_txns(0, 13).unwrap(), vec![]);
    assert_eq!(log.producer_states(), producers);
}

#[test]
fn a_commit_with_live_data_stays_until_the_data_is_superseded() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), compact(), &clock, true);
    log.append(data(1, 0, 0, true, "k", "v"), client()).unwrap(); // 0
    end_txn(&log, 1, 0, true); // 1
    log.append(data(1, 0, 1, false, "q", "q"), client())
        .unwrap(); // 2: producer 1's last
    put(&log, "z", "z"); // 3
    log.roll().unwrap();
    put(&log, "act", "active"); // 4
    log.set_high_watermark(log.log_end_offset());
    for _ in 0..2 {
        log.clean(true).unwrap().unwrap();
        clock.advance(Duration::from_millis(RETENTION as u64 + 1));
    }
    log.clean(true).unwrap().unwrap();
    let commit = batch_at(&log, 1).expect("COMMIT kept");
    assert_eq!(commit.delete_horizon_ms(), None);
    assert!(values(&log).contains(&(0, "v".to_string())));

    // Once `k` is superseded its transaction has no data left: horizon, then gone.
    put(&log, "k", "v2"); // 5
    put(&log, "z", "z2"); // 6
    log.roll().unwrap();
    log.set_high_watermark(log.log_end_offset());
    let now = clock.now_ms();
    log.clean(true).unwrap().unwrap();
    let commit = batch_at(&log, 1).expect("stamped, not yet dropped");
    assert_eq!(commit.delete_horizon_ms(), Some(now + RETENTION));
    assert!(batch_at(&log, 0).is_none());
    clock.advance(Duration::from_millis(RETENTION as u64));
    log.clean(false).unwrap().expect("horizon passed");
    assert!(markers(&log).is_empty());
    assert!(values(&log).contains(&(5, "v2".to_string())));
}
