//! Scripted unit tests of snapshots in the core: creation only up to the high watermark, the
//! prefix deleted after the snapshot is written, Fetch answered with the snapshot id below the
//! log start, chunked FetchSnapshot, installation on a follower, and adoption at restart.

use bytes::Bytes;
use shale_common::SeededRng;

use super::tests::{data, elected_leader, fetch, msg, state};
use super::*;

fn sid(end_offset: i64, epoch: i32) -> SnapshotId {
    SnapshotId { end_offset, epoch }
}

fn sent(cmds: &[Command]) -> Vec<Message> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Send { msg, .. } => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn chunk_req(seq: u64, id: SnapshotId, position: u64) -> Message {
    Message::FetchSnapshot(FetchSnapshotRequest {
        seq,
        epoch: 2,
        replica: 2,
        id,
        position,
    })
}

fn chunk_result(cmds: &[Command]) -> FetchSnapshotResult {
    match sent(cmds).pop() {
        Some(Message::FetchSnapshotResponse(r)) => r.result,
        other => panic!("expected a FetchSnapshot response, got {other:?}"),
    }
}

/// Leader of epoch 2 with offsets 0..2 committed and a snapshot "abcdefg" at 2.
fn leader_with_snapshot() -> KRaft {
    let mut n = elected_leader();
    n.cfg.fetch_snapshot_max_bytes = 3;
    n.handle(Event::Flushed { up_to: 2 }).unwrap();
    msg(&mut n, 2, fetch(1, 2, 2, 2));
    assert_eq!(n.high_watermark(), 2);
    let too_far = n.handle(Event::CreateSnapshot {
        end_offset: 3,
        data: Bytes::new(),
    });
    assert!(matches!(too_far, Err(KRaftError::InvalidSnapshot { .. })));
    let data = Bytes::from_static(b"abcdefg");
    let cmds = n
        .handle(Event::CreateSnapshot {
            end_offset: 2,
            data,
        })
        .unwrap();
    let snap = Snapshot {
        id: sid(2, 2),
        data: Bytes::from_static(b"abcdefg"),
    };
    assert_eq!(
        cmds,
        vec![
            Command::WriteSnapshot(snap),
            Command::DeleteLogPrefix { to: 2 }
        ],
        "the prefix goes only after the snapshot is written"
    );
    assert_eq!((n.log().start_offset(), n.log().end_offset()), (2, 2));
    n
}

#[test]
fn a_fetch_below_the_log_start_gets_the_snapshot_id() {
    let mut n = leader_with_snapshot();
    let result = |cmds: Vec<Command>| match sent(&cmds).pop() {
        Some(Message::FetchResponse(r)) => r.result,
        other => panic!("{other:?}"),
    };
    let below = result(msg(&mut n, 3, fetch(1, 3, 0, 0)));
    assert_eq!(below, FetchResult::Snapshot { id: sid(2, 2) });
    // At the log start but with another last epoch: the log there cannot be validated.
    let other_epoch = result(msg(&mut n, 3, fetch(2, 3, 2, 1)));
    assert_eq!(other_epoch, FetchResult::Snapshot { id: sid(2, 2) });
    let at_start = msg(&mut n, 3, fetch(3, 3, 2, 2));
    assert!(sent(&at_start).is_empty(), "caught up: the fetch is parked");
}

#[test]
fn fetch_snapshot_serves_position_based_chunks() {
    let mut n = leader_with_snapshot();
    let first = chunk_result(&msg(&mut n, 2, chunk_req(1, sid(2, 2), 0)));
    let expect = FetchSnapshotResult::Chunk {
        id: sid(2, 2),
        size: 7,
        position: 0,
        data: Bytes::from_static(b"abc"),
    };
    assert_eq!(first, expect);
    let last = chunk_result(&msg(&mut n, 2, chunk_req(2, sid(2, 2), 6)));
    assert!(matches!(last, FetchSnapshotResult::Chunk { ref data, .. } if data == "g"));
    let past = chunk_result(&msg(&mut n, 2, chunk_req(3, sid(2, 2), 7)));
    assert_eq!(
        past,
        FetchSnapshotResult::Error(FetchError::PositionOutOfRange)
    );
    let gone = chunk_result(&msg(&mut n, 2, chunk_req(4, sid(1, 1), 0)));
    assert_eq!(
        gone,
        FetchSnapshotResult::Error(FetchError::SnapshotNotFound)
    );
}

#[test]
fn a_follower_installs_a_fetched_snapshot_and_fetches_from_its_end() {
    let cfg = KRaftConfig::new(1, vec![1, 2, 3]);
    let log = LogView::new(vec![data(1)]);
    let (mut n, _) = KRaft::new(cfg, SeededRng::new(1), 0, Some(state(2, 3, -1)), log);
    let answer = |seq, result| {
        Message::FetchResponse(FetchResponse {
            seq,
            epoch: 2,
            leader: Some(3),
            result,
        })
    };
    let cmds = msg(
        &mut n,
        3,
        answer(1, FetchResult::Snapshot { id: sid(5, 2) }),
    );
    let Some(Message::FetchSnapshot(req)) = sent(&cmds).pop() else {
        panic!("{cmds:?}");
    };
    assert_eq!((req.id, req.position), (sid(5, 2), 0));
    let chunk = |seq, position: u64, data: &'static [u8]| {
        Message::FetchSnapshotResponse(FetchSnapshotResponse {
            seq,
            epoch: 2,
            leader: Some(3),
            result: FetchSnapshotResult::Chunk {
                id: sid(5, 2),
                size: 4,
                position,
                data: Bytes::from_static(data),
            },
        })
    };
    let cmds = msg(&mut n, 3, chunk(req.seq, 0, b"ab"));
    let Some(Message::FetchSnapshot(next)) = sent(&cmds).pop() else {
        panic!("{cmds:?}");
    };
    assert_eq!(next.position, 2);
    assert!(
        msg(&mut n, 3, chunk(req.seq, 0, b"ab")).is_empty(),
        "duplicate ignored"
    );
    let cmds = msg(&mut n, 3, chunk(next.seq, 2, b"cd"));
    let snap = Snapshot {
        id: sid(5, 2),
        data: Bytes::from_static(b"abcd"),
    };
    assert_eq!(
        cmds[..4],
        [
            Command::WriteSnapshot(snap.clone()),
            Command::ResetLog { start_offset: 5 },
            Command::LoadSnapshot(snap),
            Command::Commit { high_watermark: 5 },
        ]
    );
    let Some(Message::Fetch(f)) = sent(&cmds).pop() else {
        panic!("{cmds:?}");
    };
    assert_eq!((f.fetch_offset, f.last_fetched_epoch), (5, 2));
    assert_eq!((n.high_watermark(), n.log().start_offset()), (5, 5));
}

#[test]
fn restart_adopts_the_snapshot_and_fixes_the_log() {
    let snap = Snapshot {
        id: sid(3, 1),
        data: Bytes::from_static(b"s"),
    };
    let start = |entries: Vec<Entry>| {
        let cfg = KRaftConfig::new(1, vec![1, 2, 3]);
        let log = LogView::new(entries);
        let stored = Some(state(1, 2, -1));
        KRaft::restore(cfg, SeededRng::new(1), 0, stored, Some(snap.clone()), log)
    };
    // Crashed before the prefix was deleted: delete it now.
    let (n, cmds) = start(vec![data(1); 5]);
    assert_eq!(
        cmds[..3],
        [
            Command::DeleteLogPrefix { to: 3 },
            Command::LoadSnapshot(snap.clone()),
            Command::Commit { high_watermark: 3 },
        ]
    );
    assert_eq!((n.log().start_offset(), n.log().end_offset()), (3, 5));
    // Crashed while installing (the log ends below the snapshot): start empty at its end.
    let (n, cmds) = start(vec![data(1)]);
    assert_eq!(cmds[0], Command::ResetLog { start_offset: 3 });
    assert_eq!((n.log().start_offset(), n.log().last_epoch()), (3, 1));
    assert_eq!(n.high_watermark(), 3);
}
