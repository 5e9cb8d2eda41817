//! Scripted unit tests of the multi-voter core: vote granting, pre-vote refusal, the
//! current-epoch rule for the high watermark, restart as Resigned, check-quorum.

use bytes::Bytes;
use shale_common::SeededRng;

use super::*;

pub(super) fn state(epoch: i32, leader: i32, voted: i32) -> ElectionState {
    ElectionState {
        epoch,
        leader_id: leader,
        voted_id: voted,
        voters: vec![1, 2, 3],
    }
}

pub(super) fn data(epoch: i32) -> Entry {
    Entry {
        epoch,
        record: Record::Data(Bytes::from_static(b"x")),
    }
}

fn node(id: NodeId, stored: ElectionState, log: Vec<Entry>) -> KRaft {
    let cfg = KRaftConfig::new(id, vec![1, 2, 3]);
    KRaft::new(cfg, SeededRng::new(1), 0, Some(stored), LogView::new(log)).0
}

pub(super) fn msg(n: &mut KRaft, from: NodeId, msg: Message) -> Vec<Command> {
    n.handle(Event::Message { from, msg }).unwrap()
}

fn vote(epoch: i32, candidate: NodeId, last_epoch: i32, end: i64, pre_vote: bool) -> Message {
    Message::Vote(VoteRequest {
        epoch,
        candidate,
        last_epoch,
        end_offset: end,
        pre_vote,
    })
}

fn granted(cmds: &[Command]) -> Option<bool> {
    cmds.iter().find_map(|c| match c {
        Command::Send {
            msg: Message::VoteResponse(r),
            ..
        } => Some(r.granted),
        _ => None,
    })
}

#[test]
fn one_vote_per_epoch_persisted_before_the_answer() {
    let mut n = node(1, state(0, -1, -1), vec![]);
    let cmds = msg(&mut n, 2, vote(1, 2, 0, 0, false));
    let write = cmds
        .iter()
        .position(|c| *c == Command::WriteQuorumState(state(1, -1, 2)));
    let send = cmds.iter().position(|c| matches!(c, Command::Send { .. }));
    assert!(write.is_some() && write < send, "{cmds:?}");
    assert_eq!(granted(&cmds), Some(true));
    assert_eq!(
        granted(&msg(&mut n, 3, vote(1, 3, 0, 0, false))),
        Some(false)
    );
    let again = msg(&mut n, 2, vote(1, 2, 0, 0, false));
    assert_eq!(granted(&again), Some(true));
    assert!(!again
        .iter()
        .any(|c| matches!(c, Command::WriteQuorumState(_))));
}

#[test]
fn a_candidate_with_a_stale_log_is_refused() {
    let mut n = node(1, state(2, -1, -1), vec![data(1), data(2)]);
    assert_eq!(
        granted(&msg(&mut n, 2, vote(3, 2, 1, 9, false))),
        Some(false)
    );
    assert_eq!(
        granted(&msg(&mut n, 3, vote(3, 3, 2, 1, false))),
        Some(false)
    );
    assert_eq!(
        n.epoch(),
        3,
        "a higher epoch is adopted even when the vote is refused"
    );
    assert_eq!(
        granted(&msg(&mut n, 3, vote(3, 3, 2, 2, false))),
        Some(true)
    );
}

/// Makes node 1 (log: one epoch-1 entry) leader of epoch 2 via a pre-vote and a vote.
pub(super) fn elected_leader() -> KRaft {
    let mut n = node(1, state(1, -1, -1), vec![data(1)]);
    n.handle(Event::Tick { now_ms: 5_000 }).unwrap();
    assert_eq!(n.role(), RoleKind::Prospective);
    let pre = VoteResponse {
        epoch: 1,
        leader: None,
        granted: true,
        pre_vote: true,
    };
    msg(&mut n, 2, Message::VoteResponse(pre));
    assert_eq!(n.role(), RoleKind::Candidate);
    let yes = VoteResponse {
        epoch: 2,
        leader: None,
        granted: true,
        pre_vote: false,
    };
    msg(&mut n, 2, Message::VoteResponse(yes));
    assert_eq!(n.role(), RoleKind::Leader);
    n
}

pub(super) fn fetch(seq: u64, replica: NodeId, offset: i64, last_epoch: i32) -> Message {
    Message::Fetch(FetchRequest {
        seq,
        epoch: 2,
        replica,
        fetch_offset: offset,
        last_fetched_epoch: last_epoch,
        high_watermark: super::types::UNKNOWN_HIGH_WATERMARK,
    })
}

fn commits(cmds: &[Command]) -> Vec<i64> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Commit { high_watermark } => Some(*high_watermark),
            _ => None,
        })
        .collect()
}

#[test]
fn high_watermark_waits_for_a_current_epoch_entry_on_a_majority() {
    let mut n = elected_leader();
    assert_eq!(n.log().end_offset(), 2, "LeaderChange appended at offset 1");
    n.handle(Event::Flushed { up_to: 2 }).unwrap();
    // Voter 2 holds the old-epoch entry only: a majority has offset 1, but that is older than
    // this epoch's start, so nothing commits (Raft's Figure 8).
    assert!(commits(&msg(&mut n, 2, fetch(1, 2, 1, 1))).is_empty());
    assert_eq!(n.high_watermark(), 0);
    assert_eq!(commits(&msg(&mut n, 2, fetch(2, 2, 2, 2))), vec![2]);
}

#[test]
fn a_diverging_follower_is_told_where_to_truncate_and_not_counted() {
    let mut n = elected_leader();
    n.handle(Event::Flushed { up_to: 2 }).unwrap();
    let cmds = msg(&mut n, 3, fetch(1, 3, 3, 1));
    let div = cmds.iter().any(|c| {
        matches!(
            c,
            Command::Send {
                msg: Message::FetchResponse(FetchResponse {
                    result: FetchResult::Diverging {
                        epoch: 1,
                        end_offset: 1
                    },
                    ..
                }),
                ..
            }
        )
    });
    assert!(div, "{cmds:?}");
    assert_eq!(n.high_watermark(), 0);
}

#[test]
fn a_follower_that_fetched_refuses_pre_votes() {
    let mut n = node(1, state(2, 3, -1), vec![data(1)]);
    assert_eq!(n.role(), RoleKind::Follower);
    assert_eq!(granted(&msg(&mut n, 2, vote(3, 2, 1, 1, true))), Some(true));
    let resp = FetchResponse {
        seq: 1,
        epoch: 2,
        leader: Some(3),
        result: FetchResult::Records {
            base_offset: 1,
            entries: vec![],
            high_watermark: None,
        },
    };
    msg(&mut n, 3, Message::FetchResponse(resp));
    assert_eq!(
        granted(&msg(&mut n, 2, vote(3, 2, 1, 1, true))),
        Some(false)
    );
    assert_eq!(n.epoch(), 2, "a pre-vote never changes the epoch");
}

#[test]
fn a_former_leader_restarts_resigned_and_cannot_vote_in_its_epoch() {
    let mut n = node(1, state(4, 1, 1), vec![data(4)]);
    assert_eq!(n.role(), RoleKind::Resigned);
    assert_eq!(
        granted(&msg(&mut n, 2, vote(4, 2, 4, 5, false))),
        Some(false)
    );
}

#[test]
fn a_leader_without_a_majority_of_fetches_resigns() {
    let mut n = elected_leader();
    n.handle(Event::Tick { now_ms: 7_000 }).unwrap();
    assert_eq!(n.role(), RoleKind::Leader);
    let cmds = n.handle(Event::Tick { now_ms: 8_001 }).unwrap();
    assert_eq!(n.role(), RoleKind::Resigned);
    assert!(cmds.iter().any(|c| matches!(
        c,
        Command::Send {
            msg: Message::EndQuorumEpoch { .. },
            ..
        }
    )));
}

fn with_hw(m: Message, high_watermark: i64) -> Message {
    match m {
        Message::Fetch(f) => Message::Fetch(FetchRequest {
            high_watermark,
            ..f
        }),
        other => other,
    }
}

/// The high watermark of each fetch answer sent.
fn fetch_answers(cmds: &[Command]) -> Vec<Option<i64>> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Send {
                msg: Message::FetchResponse(r),
                ..
            } => match &r.result {
                super::types::FetchResult::Records { high_watermark, .. } => Some(*high_watermark),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn an_empty_fetch_is_answered_at_once_while_the_fetcher_lags_the_high_watermark() {
    let mut n = elected_leader();
    n.handle(Event::Flushed { up_to: 2 }).unwrap();
    // Voter 2 at the log end commits offset 2; sending no high watermark (below Fetch v18) it
    // is parked, as Kafka parks it.
    let cmds = msg(&mut n, 2, fetch(1, 2, 2, 2));
    assert_eq!(commits(&cmds), vec![2]);
    assert!(fetch_answers(&cmds).is_empty());
    // Voter 3 is at the log end too but knows an older high watermark (KIP-1166): answered at
    // once with the new one instead of waiting out the fetch wait.
    let cmds = msg(&mut n, 3, with_hw(fetch(1, 3, 2, 2), 0));
    assert_eq!(fetch_answers(&cmds), vec![Some(2)]);
    // Knowing it, its next empty fetch is parked.
    let cmds = msg(&mut n, 3, with_hw(fetch(2, 3, 2, 2), 2));
    assert!(fetch_answers(&cmds).is_empty());
}
