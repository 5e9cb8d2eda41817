//! Scripted tests of KIP-853 voter changes in the core: the leader's refusals, the new set in
//! force at once, a removed leader resigning only once its removal commits, the previous set
//! back after a truncation, and a snapshot carrying the set.

use super::tests::{data, elected_leader, fetch, msg, state};
use super::*;

fn ids(ids: &[NodeId]) -> Vec<Voter> {
    ids.iter().map(|id| Voter::by_id(*id)).collect()
}

fn change(n: &mut KRaft, c: VoterChange) -> Result<Vec<Command>, KRaftError> {
    n.handle(Event::ChangeVoters(c))
}

/// Leader 1 of epoch 2 (voters 1–3) with its LeaderChange at offset 1 committed by voter 2,
/// and observer 4 caught up.
fn committed_leader() -> KRaft {
    let mut n = elected_leader();
    n.handle(Event::Flushed { up_to: 2 }).unwrap();
    msg(&mut n, 2, fetch(1, 2, 2, 2));
    assert_eq!(n.high_watermark(), 2);
    msg(&mut n, 4, fetch(1, 4, 2, 2));
    n
}

#[test]
fn a_change_waits_for_the_leaders_first_commit_and_the_previous_change() {
    let mut n = elected_leader();
    assert_eq!(
        change(&mut n, VoterChange::Add(Voter::by_id(4))),
        Err(KRaftError::VoterChangePending),
        "nothing committed in this epoch yet"
    );
    let mut n = committed_leader();
    change(&mut n, VoterChange::Add(Voter::by_id(4))).unwrap();
    assert_eq!(n.voters(), &[1, 2, 3, 4], "in force once appended");
    assert_eq!(
        change(&mut n, VoterChange::Remove(3)),
        Err(KRaftError::VoterChangePending)
    );
    // Committed once a majority of the new set (3 of 4) holds it.
    n.handle(Event::Flushed { up_to: 3 }).unwrap();
    msg(&mut n, 2, fetch(2, 2, 3, 2));
    assert_eq!(n.high_watermark(), 2, "two of four is not a majority");
    msg(&mut n, 4, fetch(2, 4, 3, 2));
    assert_eq!(n.high_watermark(), 3);
    change(&mut n, VoterChange::Remove(3)).unwrap();
    assert_eq!(n.voters(), &[1, 2, 4]);
}

#[test]
fn duplicates_unknown_voters_laggards_and_the_last_voter_are_refused() {
    let mut n = committed_leader();
    assert_eq!(
        change(&mut n, VoterChange::Add(Voter::by_id(2))),
        Err(KRaftError::DuplicateVoter(2))
    );
    assert_eq!(
        change(&mut n, VoterChange::Remove(7)),
        Err(KRaftError::VoterNotFound(7))
    );
    assert_eq!(
        change(&mut n, VoterChange::Add(Voter::by_id(5))),
        Err(KRaftError::VoterNotCaughtUp(5)),
        "never fetched"
    );
    n.handle(Event::Tick {
        now_ms: 5_000 + 2_001,
    })
    .unwrap();
    assert_eq!(
        change(&mut n, VoterChange::Add(Voter::by_id(4))),
        Err(KRaftError::VoterNotCaughtUp(4)),
        "silent for a fetch timeout"
    );
}

#[test]
fn a_removed_leader_leads_until_its_removal_commits_then_resigns() {
    let mut n = committed_leader();
    change(&mut n, VoterChange::Remove(1)).unwrap();
    assert_eq!(n.voters(), &[2, 3]);
    assert_eq!(n.role(), RoleKind::Leader);
    n.handle(Event::Flushed { up_to: 3 }).unwrap();
    msg(&mut n, 2, fetch(2, 2, 3, 2));
    assert_eq!(
        n.role(),
        RoleKind::Leader,
        "the leader's own copy no longer counts"
    );
    let cmds = msg(&mut n, 3, fetch(1, 3, 3, 2));
    assert_eq!(n.high_watermark(), 3);
    assert_eq!(n.role(), RoleKind::Resigned);
    assert!(cmds.iter().any(|c| matches!(
        c,
        Command::Send {
            msg: Message::EndQuorumEpoch { .. },
            ..
        }
    )));
    // Outside the voter set it never campaigns again.
    n.handle(Event::Tick { now_ms: 60_000 }).unwrap();
    assert!(matches!(n.role(), RoleKind::Unattached), "{:?}", n.role());
}

#[test]
fn a_truncated_voters_entry_brings_the_previous_set_back() {
    let voters = Entry {
        epoch: 1,
        record: Record::Voters(ids(&[1, 2])),
    };
    let mut log = LogView::new(vec![data(1), voters, data(1)]);
    log.set_base_voters(ids(&[1, 2, 3]), false);
    assert_eq!(log.voters(), &[1, 2]);
    assert_eq!(log.dynamic_voters_at(0), None);
    assert_eq!(log.dynamic_voters_at(2), Some(&ids(&[1, 2])[..]));
    log.truncate(1);
    assert_eq!(log.voters(), &[1, 2, 3]);
}

#[test]
fn a_node_learns_the_voter_set_of_a_snapshot_and_of_the_log_after_a_prefix_deletion() {
    let mut four = Voter::by_id(4);
    four.endpoints = vec![("CONTROLLER".into(), "h4".into(), 9093)];
    let set = vec![Voter::by_id(2), Voter::by_id(3), four];
    let voters = Entry {
        epoch: 1,
        record: Record::Voters(set.clone()),
    };
    let mut log = LogView::new(vec![data(1), voters, data(1)]);
    log.set_base_voters(ids(&[1, 2, 3]), false);
    log.delete_prefix(2);
    let what = "the deleted entry's set is now the base";
    assert_eq!(log.voters(), &[2, 3, 4], "{what}");
    assert_eq!(log.dynamic_voters_at(2), Some(&set[..]));

    // A restarted node 4 adopts a snapshot whose VotersRecord names it: it is a voter, and
    // knows the voters' endpoints.
    let data = crate::snapshot::encode_checkpoint(1, 0, 0, Some(&set), &[]).unwrap();
    let snapshot = Snapshot {
        id: SnapshotId {
            end_offset: 3,
            epoch: 1,
        },
        data,
    };
    let cfg = KRaftConfig::new(4, vec![1, 2, 3]);
    let (n, _) = KRaft::restore(
        cfg,
        shale_common::SeededRng::new(1),
        0,
        Some(state(1, -1, -1)),
        Some(snapshot),
        LogView::new(Vec::new()),
    );
    assert!(n.is_voter(4));
    assert_eq!(n.voters(), &[2, 3, 4]);
    assert_eq!(n.log().voter_records(), &set[..]);
}
