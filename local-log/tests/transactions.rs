//! The partition side of transactions: markers, the last stable offset, `.txnindex`, recovery,
//! truncation and replication.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use shale_common::ManualClock;
use shale_local_log::{AbortedTxn, AppendOrigin, Log, LogConfig, LogError, LogOpenOptions};
use shale_protocol::record::{end_txn_marker, BatchBuilder};

const COORDINATOR: AppendOrigin = AppendOrigin::Coordinator { leader_epoch: 3 };

/// A transactional batch of `n` records from producer `pid`.
fn txn(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let mut b = BatchBuilder::new(T0);
    b.producer_id = pid;
    b.producer_epoch = epoch;
    b.base_sequence = seq;
    b.is_transactional = true;
    for _ in 0..n {
        b.push(
            T0,
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"v")),
            vec![],
        );
    }
    b.build().unwrap().into_bytes()
}

fn marker(pid: i64, epoch: i16, coordinator_epoch: i32, commit: bool) -> Bytes {
    end_txn_marker(pid, epoch, coordinator_epoch, commit, T0).into_bytes()
}

fn aborted(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: pid,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    }
}

fn txn_start(log: &Log, pid: i64) -> i64 {
    log.producer_states()
        .iter()
        .find(|p| p.producer_id == pid)
        .map_or(-2, |p| p.current_txn_start_offset)
}

fn txnindex(dir: &Path, base: i64) -> Option<Vec<u8>> {
    fs::read(dir.join(format!("{base:020}.txnindex"))).ok()
}

/// Producer 1: data at 0 and 2, ABORT at 4; producer 2: data at 1, COMMIT at 5; a plain batch
/// at 3. Checks the LSO at every step.
fn interleaved(log: &Log) {
    log.append(txn(1, 0, 0, 1), client()).unwrap(); // 0
    log.append(txn(2, 0, 0, 1), client()).unwrap(); // 1
    log.append(txn(1, 0, 1, 1), client()).unwrap(); // 2
    log.append(batch(1, T0, 1), client()).unwrap(); // 3
    assert_eq!((txn_start(log, 1), txn_start(log, 2)), (0, 1));
    log.set_high_watermark(4);
    assert_eq!(log.first_unstable_offset(), Some(0));
    assert_eq!(log.last_stable_offset(), 0);
    let info = log.append(marker(1, 0, 5, false), COORDINATOR).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (4, 4));
    assert_eq!((txn_start(log, 1), txn_start(log, 2)), (-1, 1));
    // Aborted, but its marker is not below the high watermark yet.
    assert_eq!(log.last_stable_offset(), 0);
    log.set_high_watermark(5);
    assert_eq!(log.last_stable_offset(), 1);
    log.append(marker(2, 0, 5, true), COORDINATOR).unwrap(); // 5
    assert_eq!(txn_start(log, 2), -1);
    assert_eq!(log.last_stable_offset(), 1);
    log.set_high_watermark(6);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), 6);
}

#[test]
fn interleaved_transactions_move_the_lso_and_index_the_abort() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    assert!(txnindex(d.path(), 0).is_none());
    interleaved(&log);
    // ABORT of producer 1 at 4: producer 2's transaction (first offset 1) was still open.
    let entry = aborted(1, 0, 4, 1);
    assert_eq!(log.collect_aborted_txns(0, 6).unwrap(), vec![entry]);
    assert_eq!(log.collect_aborted_txns(5, 6).unwrap(), vec![]);
    assert_eq!(log.collect_aborted_txns(0, 0).unwrap(), vec![]);
    let mut want = vec![0u8, 0];
    for v in [1i64, 0, 4, 1] {
        want.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(txnindex(d.path(), 0), Some(want));
    let mut dump = Vec::new();
    let path = d.path().join("00000000000000000000.txnindex");
    shale_local_log::dump_file(&path, false, &mut dump).unwrap();
    let dump = String::from_utf8(dump).unwrap();
    assert!(
        dump.ends_with(
            "version: 0 producerId: 1 firstOffset: 0 lastOffset: 4 lastStableOffset: 1\n"
        ),
        "{dump}"
    );
    let states = log.producer_states();
    assert!(states.iter().all(|p| p.coordinator_epoch == 5));
    // The markers carry the leader epoch and their assigned offsets.
    let batches = all_batches(&log);
    assert!(batches[4].is_control() && batches[4].partition_leader_epoch() == 3);
    assert_eq!(batches[5].base_offset(), 5);
}

fn verified(token: u64) -> AppendOrigin {
    AppendOrigin::Client {
        leader_epoch: 3,
        verification: Some(token),
    }
}

#[test]
fn a_marker_between_verification_and_append_voids_the_verification() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    // Verified, nothing in between: the batch opens its transaction.
    let guard = log.start_verification(1);
    log.append(txn(1, 0, 0, 1), verified(guard.token()))
        .unwrap();
    drop(guard);
    let guard = log.start_verification(1);
    log.append(marker(1, 0, 5, true), COORDINATOR).unwrap();
    // The transaction ended while the next batch was being verified: refused, not appended.
    let late = log.append(txn(1, 0, 1, 1), verified(guard.token()));
    assert!(
        matches!(late, Err(LogError::InvalidTxnState { producer_id: 1, .. })),
        "{late:?}"
    );
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    drop(guard);
    // Another producer's marker does not void producer 1's verification.
    let guard = log.start_verification(1);
    log.append(marker(2, 0, 5, false), COORDINATOR).unwrap();
    log.append(txn(1, 0, 1, 1), verified(guard.token()))
        .unwrap();
    drop(guard);
    // A released guard no longer verifies anything.
    log.append(marker(1, 0, 5, false), COORDINATOR).unwrap();
    let token = log.start_verification(1).token();
    let stale = log.append(txn(1, 0, 2, 1), verified(token));
    assert!(
        matches!(stale, Err(LogError::InvalidTxnState { .. })),
        "{stale:?}"
    );
    // Without a verification (the broker does not verify) nothing is checked.
    log.append(txn(1, 0, 2, 1), client()).unwrap();
}

#[test]
fn transaction_rules_on_produce_and_markers() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    log.append(txn(1, 0, 0, 1), client()).unwrap();
    // A non-transactional batch of a producer inside a transaction.
    assert!(matches!(
        log.append(pbatch(1, 0, 1, 1, T0), client()),
        Err(LogError::InvalidTxnState { producer_id: 1, .. })
    ));
    log.append(marker(1, 0, 5, false), COORDINATOR).unwrap();
    log.append(pbatch(1, 0, 1, 1, T0), client()).unwrap();
    log.append(txn(1, 0, 2, 1), client()).unwrap();
    // An older coordinator.
    assert!(matches!(
        log.append(marker(1, 0, 4, true), COORDINATOR),
        Err(LogError::TransactionCoordinatorFenced {
            current: 5,
            found: 4,
            ..
        })
    ));
    // A bumped producer epoch fences markers of the old one.
    log.append(txn(1, 1, 0, 1), client()).unwrap();
    assert!(matches!(
        log.append(marker(1, 0, 5, true), COORDINATOR),
        Err(LogError::InvalidProducerEpoch {
            current: 1,
            found: 0,
            ..
        })
    ));
    log.append(marker(1, 1, 6, true), COORDINATOR).unwrap();
    assert_eq!(txn_start(&log, 1), -1);
    // Clients cannot write markers.
    assert!(matches!(
        log.append(marker(1, 1, 6, true), client()),
        Err(LogError::InvalidRecord { .. })
    ));
    // Besides markers, the coordinator writes the group coordinator's transactional offsets: a
    // transactional batch of the producer, fenced by its epoch only. The broker writes them with
    // sequence 0 every time, which the client path would answer as a duplicate.
    let first = log.append(txn(1, 1, 0, 1), COORDINATOR).unwrap();
    assert_eq!((first.first_offset, first.last_offset), (6, 6));
    assert!(!first.duplicate);
    assert_eq!(txn_start(&log, 1), 6);
    let second = log.append(txn(1, 1, 0, 2), COORDINATOR).unwrap();
    assert_eq!((second.first_offset, second.last_offset), (7, 8));
    assert!(!second.duplicate);
    assert_eq!(txn_start(&log, 1), 6);
    assert!(matches!(
        log.append(txn(1, 0, 0, 1), COORDINATOR),
        Err(LogError::InvalidProducerEpoch {
            producer_id: 1,
            current: 1,
            found: 0,
            ..
        })
    ));
    // A coordinator data batch must be transactional and carry a producer id.
    assert!(matches!(
        log.append(pbatch(1, 1, 1, 1, T0), COORDINATOR),
        Err(LogError::InvalidRecord { .. })
    ));
    assert!(matches!(
        log.append(txn(-1, -1, -1, 1), COORDINATOR),
        Err(LogError::InvalidRecord { .. })
    ));
    assert!(matches!(
        log.append(pbatch(-1, -1, -1, 1, T0), COORDINATOR),
        Err(LogError::InvalidRecord { .. })
    ));
    let mut leader_change = BatchBuilder::new(T0);
    leader_change.producer_id = 1;
    leader_change.is_control = true;
    leader_change.push(T0, Some(Bytes::from_static(&[0, 0, 0, 2])), None, vec![]);
    assert!(matches!(
        log.append(leader_change.build().unwrap().into_bytes(), COORDINATOR),
        Err(LogError::InvalidRecord { .. })
    ));
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(txn_start(&log, 1), 6);
    // Aborting the transaction the coordinator's batches opened covers them; with the first
    // abort (offset 0), these are the only two aborted transactions: the rejected batches wrote
    // nothing.
    log.append(marker(1, 1, 6, false), COORDINATOR).unwrap();
    assert_eq!(txn_start(&log, 1), -1);
    let aborted_txns = log.collect_aborted_txns(0, 100).unwrap();
    assert_eq!(aborted_txns.len(), 2, "{aborted_txns:?}");
    assert_eq!(aborted_txns[0].first_offset, 0);
    assert_eq!(aborted_txns[1], aborted(1, 6, 9, 10));
}

/// Producer 1 at 0 and producer 2 at 1 open, roll at 2, producer 1 aborted at 2, producer 2
/// data at 3: the ABORT lands in segment 2 with last stable offset 1.
fn two_segments(log: &Log) {
    log.append(txn(1, 0, 0, 1), client()).unwrap();
    log.append(txn(2, 0, 0, 1), client()).unwrap();
    log.roll().unwrap();
    log.append(marker(1, 0, 5, false), COORDINATOR).unwrap();
    log.append(txn(2, 0, 1, 1), client()).unwrap();
}

fn unclean(dir: &Path, clock: &Arc<ManualClock>) -> Log {
    let opts = LogOpenOptions {
        recovery_point: 0,
        ..opts(false)
    };
    Log::open(
        dir.to_path_buf(),
        tp(),
        LogConfig::default(),
        opts,
        clock.clone(),
    )
    .unwrap()
}

#[test]
fn unclean_shutdown_rebuilds_txnindex_and_open_transactions_and_truncation_reopens() {
    for drop_snapshot in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        {
            let log = open(d.path(), LogConfig::default(), &clock, true);
            two_segments(&log);
            assert_eq!(
                log.collect_aborted_txns(0, 4).unwrap(),
                vec![aborted(1, 0, 2, 1)]
            );
            // No close: the process dies.
        }
        let written = txnindex(d.path(), 2).unwrap();
        fs::remove_file(d.path().join(format!("{:020}.txnindex", 2))).unwrap();
        if drop_snapshot {
            let _ = fs::remove_file(d.path().join(format!("{:020}.snapshot", 2)));
        }
        let log = unclean(d.path(), &clock);
        assert_eq!(log.log_end_offset(), 4);
        assert_eq!(
            txnindex(d.path(), 2),
            Some(written),
            "snapshot dropped: {drop_snapshot}"
        );
        assert!(txnindex(d.path(), 0).is_none());
        assert_eq!(
            log.collect_aborted_txns(0, 4).unwrap(),
            vec![aborted(1, 0, 2, 1)]
        );
        assert_eq!((txn_start(&log, 1), txn_start(&log, 2)), (-1, 1));
        log.set_high_watermark(4);
        assert_eq!(log.first_unstable_offset(), Some(1));
        assert_eq!(log.last_stable_offset(), 1);
        // Truncating below the ABORT marker removes its entry and reopens the transaction.
        log.truncate_to(2).unwrap();
        assert!(txnindex(d.path(), 2).is_none());
        assert_eq!(log.collect_aborted_txns(0, 4).unwrap(), vec![]);
        assert_eq!((txn_start(&log, 1), txn_start(&log, 2)), (0, 1));
        assert_eq!(log.first_unstable_offset(), Some(0));
        assert_eq!(log.last_stable_offset(), 0);
        // The follower then takes the leader's abort again.
        log.append(marker(1, 0, 5, false), COORDINATOR).unwrap();
        assert_eq!(
            log.collect_aborted_txns(0, 4).unwrap(),
            vec![aborted(1, 0, 2, 1)]
        );
        log.close().unwrap();
    }
}

#[test]
fn clean_reopen_reads_the_txnindex_and_the_open_transactions() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let log = open(d.path(), LogConfig::default(), &clock, true);
        two_segments(&log);
        log.close().unwrap();
    }
    let log = open(d.path(), LogConfig::default(), &clock, true);
    assert_eq!(
        log.collect_aborted_txns(1, 3).unwrap(),
        vec![aborted(1, 0, 2, 1)]
    );
    assert_eq!(txn_start(&log, 2), 1);
    log.set_high_watermark(4);
    assert_eq!(log.last_stable_offset(), 1);
    // Retention of the first segment renames its files; the txnindex of segment 2 stays.
    log.append(marker(2, 0, 5, true), COORDINATOR).unwrap();
    log.set_high_watermark(5);
    assert_eq!(log.last_stable_offset(), 5);
    assert_eq!(log.delete_records_before(2).unwrap(), 2);
    assert_eq!(
        log.collect_aborted_txns(2, 5).unwrap(),
        vec![aborted(1, 0, 2, 1)]
    );
    // Full truncation drops every segment's txnindex (renamed `.deleted` with its segment).
    log.truncate_fully_and_start_at(10).unwrap();
    assert!(txnindex(d.path(), 2).is_none());
    assert!(files(d.path())
        .iter()
        .any(|f| f == "00000000000000000002.txnindex.deleted"));
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn collect_stops_at_the_first_complete_segment() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    // Segment 0: producer 1 [0] aborted at 1 (LSO 2).
    log.append(txn(1, 0, 0, 1), client()).unwrap();
    log.append(marker(1, 0, 0, false), COORDINATOR).unwrap();
    log.roll().unwrap();
    // Segment 2: producer 2 [2] aborted at 3 (LSO 4); producer 3 [4] aborted at 5 (LSO 6).
    log.append(txn(2, 0, 0, 1), client()).unwrap();
    log.append(marker(2, 0, 0, false), COORDINATOR).unwrap();
    log.append(txn(3, 0, 0, 1), client()).unwrap();
    log.append(marker(3, 0, 0, false), COORDINATOR).unwrap();
    log.roll().unwrap();
    // Segment 6: producer 4 [6] aborted at 7 (LSO 8).
    log.append(txn(4, 0, 0, 1), client()).unwrap();
    log.append(marker(4, 0, 0, false), COORDINATOR).unwrap();
    let (a, b, c, e) = (
        aborted(1, 0, 1, 2),
        aborted(2, 2, 3, 4),
        aborted(3, 4, 5, 6),
        aborted(4, 6, 7, 8),
    );
    assert_eq!(log.collect_aborted_txns(0, 100).unwrap(), vec![a, b, c, e]);
    // Upper bound 3: segment 0's entry has LSO 2 < 3, segment 2's first entry has LSO 4 >= 3:
    // complete there, so producer 3's entry (first offset 4 >= 3 anyway) and segment 6 are
    // never looked at.
    assert_eq!(log.collect_aborted_txns(0, 3).unwrap(), vec![a, b]);
    // From offset 2 the walk starts in segment 2.
    assert_eq!(log.collect_aborted_txns(2, 7).unwrap(), vec![b, c, e]);
    assert_eq!(log.collect_aborted_txns(4, 6).unwrap(), vec![c]);
}

#[test]
fn replication_reproduces_the_leaders_txnindex_and_lso() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let leader = open(d.path(), LogConfig::default(), &clock, true);
    interleaved(&leader);
    leader.append(txn(3, 0, 0, 2), client()).unwrap(); // 6..7, left open
    leader.append(txn(4, 0, 0, 1), client()).unwrap(); // 8
    leader.append(marker(4, 0, 1, false), COORDINATOR).unwrap(); // 9, LSO 6
    let f = tempfile::tempdir().unwrap();
    let follower = open(f.path(), LogConfig::default(), &clock, true);
    let batches = all_batches(&leader);
    // The first half one batch per append, the rest in one append.
    for b in &batches[..5] {
        follower
            .append(b.as_bytes().clone(), AppendOrigin::Replication)
            .unwrap();
    }
    let mut rest = Vec::new();
    for b in &batches[5..] {
        rest.extend_from_slice(b.as_bytes());
    }
    follower
        .append(Bytes::from(rest), AppendOrigin::Replication)
        .unwrap();
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(txnindex(f.path(), 0), txnindex(d.path(), 0));
    assert_eq!(
        leader.collect_aborted_txns(0, 10).unwrap(),
        vec![aborted(1, 0, 4, 1), aborted(4, 8, 9, 6)]
    );
    assert_eq!(
        follower.collect_aborted_txns(0, 10).unwrap(),
        leader.collect_aborted_txns(0, 10).unwrap()
    );
    assert_eq!(follower.producer_states(), leader.producer_states());
    // The follower's high watermark rises as the leader's did (the leader is at 6 already).
    for (hw, lso) in [(0, 0), (3, 0), (5, 1), (6, 6), (9, 6), (10, 6)] {
        follower.set_high_watermark(hw);
        assert_eq!(follower.last_stable_offset(), lso, "hw {hw}");
        if hw >= 6 {
            leader.set_high_watermark(hw);
            assert_eq!(leader.last_stable_offset(), lso, "hw {hw}");
        }
    }
}

#[test]
fn tiering_never_offers_a_segment_reaching_the_lso() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let config = LogConfig::default()
        .with_overrides([("remote.storage.enable", "true")])
        .unwrap();
    let log = open(d.path(), config, &clock, true);
    log.append(batch(1, T0, 1), client()).unwrap(); // 0
    log.roll().unwrap();
    log.append(txn(1, 0, 0, 1), client()).unwrap(); // 1
    log.roll().unwrap();
    log.append(batch(1, T0, 1), client()).unwrap(); // 2
    log.roll().unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), 1);
    let bases: Vec<i64> = log
        .segments_to_copy(0, 3)
        .unwrap()
        .iter()
        .map(|s| s.base_offset)
        .collect();
    assert_eq!(bases, vec![0]);
    log.append(marker(1, 0, 0, true), COORDINATOR).unwrap(); // 3
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.segments_to_copy(0, 4).unwrap().len(), 3);
}
