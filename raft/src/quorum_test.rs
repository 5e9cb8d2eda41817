use super::*;

fn engine() -> QuorumEngine {
    QuorumEngine::new(QuorumConfig {
        node_id: 1,
        voters: vec![1],
    })
}

fn state(epoch: i32, leader_id: i32, voted_id: i32) -> ElectionState {
    ElectionState {
        epoch,
        leader_id,
        voted_id,
        voters: vec![1],
    }
}

fn leader_change() -> BatchPayload {
    BatchPayload::LeaderChange(LeaderChange {
        leader_id: 1,
        voters: vec![1],
        granting_voters: vec![1],
    })
}

#[test]
fn fresh_start_bumps_epoch_and_leads() {
    let mut e = engine();
    let cmds = e
        .handle(Event::Start {
            stored: None,
            log_end_offset: 0,
            log_end_epoch: 0,
        })
        .unwrap();
    assert_eq!(
        cmds,
        vec![
            Command::WriteQuorumState(state(1, -1, 1)),
            Command::WriteQuorumState(state(1, 1, -1)),
            Command::AppendBatch {
                epoch: 1,
                base_offset: 0,
                payload: leader_change()
            },
            Command::Flush,
        ]
    );
    assert!(e.is_leader());
    assert_eq!(e.log_end_offset(), 1);
    // Nothing is committed until the epoch's first batch is durable.
    assert_eq!(e.handle(Event::Flushed { up_to: 0 }).unwrap(), vec![]);
    assert_eq!(
        e.handle(Event::Flushed { up_to: 1 }).unwrap(),
        vec![Command::Commit { up_to: 1 }]
    );
    assert_eq!(e.high_watermark(), 1);
}

#[test]
fn restart_resumes_from_stored_epoch_and_log_end() {
    let mut e = engine();
    let cmds = e
        .handle(Event::Start {
            stored: Some(state(7, 1, -1)),
            log_end_offset: 40,
            log_end_epoch: 6,
        })
        .unwrap();
    assert_eq!(
        cmds,
        vec![
            Command::WriteQuorumState(state(8, -1, 1)),
            Command::WriteQuorumState(state(8, 1, -1)),
            Command::AppendBatch {
                epoch: 8,
                base_offset: 40,
                payload: leader_change()
            },
            Command::Flush,
        ]
    );
    // Commit covers the previous epochs' tail too.
    assert_eq!(
        e.handle(Event::Flushed { up_to: 41 }).unwrap(),
        vec![Command::Commit { up_to: 41 }]
    );
}

#[test]
fn appends_commit_after_flush_and_apply_in_order() {
    let mut e = engine();
    e.handle(Event::Start {
        stored: None,
        log_end_offset: 0,
        log_end_epoch: 0,
    })
    .unwrap();
    e.handle(Event::Flushed { up_to: 1 }).unwrap();
    let recs = vec![MetadataRecord::NoOp, MetadataRecord::NoOp];
    let cmds = e
        .handle(Event::AppendRequested {
            records: recs.clone(),
        })
        .unwrap();
    assert_eq!(
        cmds,
        vec![
            Command::AppendBatch {
                epoch: 1,
                base_offset: 1,
                payload: BatchPayload::Records(recs.clone())
            },
            Command::Flush,
        ]
    );
    let more = vec![MetadataRecord::EndTransaction];
    e.handle(Event::AppendRequested {
        records: more.clone(),
    })
    .unwrap();
    assert_eq!(e.log_end_offset(), 4);
    // A flush covering only the first batch applies only it.
    assert_eq!(
        e.handle(Event::Flushed { up_to: 3 }).unwrap(),
        vec![
            Command::Commit { up_to: 3 },
            Command::Apply {
                epoch: 1,
                base_offset: 1,
                last_offset: 2,
                records: recs
            },
        ]
    );
    assert_eq!(
        e.handle(Event::Flushed { up_to: 4 }).unwrap(),
        vec![
            Command::Commit { up_to: 4 },
            Command::Apply {
                epoch: 1,
                base_offset: 3,
                last_offset: 3,
                records: more
            },
        ]
    );
    // A repeated flush changes nothing; an empty append emits nothing.
    assert_eq!(e.handle(Event::Flushed { up_to: 4 }).unwrap(), vec![]);
    assert_eq!(
        e.handle(Event::AppendRequested { records: vec![] })
            .unwrap(),
        vec![]
    );
}

#[test]
fn appends_before_start_or_double_start_fail() {
    let mut e = engine();
    assert!(e
        .handle(Event::AppendRequested {
            records: vec![MetadataRecord::NoOp]
        })
        .is_err());
    let start = Event::Start {
        stored: None,
        log_end_offset: 0,
        log_end_epoch: 0,
    };
    e.handle(start.clone()).unwrap();
    assert!(e.handle(start).is_err());
    let mut outsider = QuorumEngine::new(QuorumConfig {
        node_id: 2,
        voters: vec![1],
    });
    assert!(outsider
        .handle(Event::Start {
            stored: None,
            log_end_offset: 0,
            log_end_epoch: 0
        })
        .is_err());
}

#[test]
fn three_voters_stay_candidate_without_votes() {
    let mut e = QuorumEngine::new(QuorumConfig {
        node_id: 1,
        voters: vec![1, 2, 3],
    });
    let cmds = e
        .handle(Event::Start {
            stored: None,
            log_end_offset: 0,
            log_end_epoch: 0,
        })
        .unwrap();
    assert_eq!(cmds.len(), 1);
    assert_eq!(e.role(), &Role::Candidate { granted: vec![1] });
}

#[test]
fn quorum_state_json_is_kafkas_v0_shape() {
    let s = state(3, 1, -1);
    let json = s.to_json();
    assert_eq!(
        json,
        r#"{"clusterId":"","leaderId":1,"leaderEpoch":3,"votedId":-1,"appliedOffset":0,"currentVoters":[{"voterId":1}],"data_version":0}"#
    );
    assert_eq!(ElectionState::from_json(&json).unwrap(), s);
    let v1 = r#"{"leaderId":-1,"leaderEpoch":12,"votedId":2,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}"#;
    assert_eq!(
        ElectionState::from_json(v1).unwrap(),
        ElectionState {
            epoch: 12,
            leader_id: -1,
            voted_id: 2,
            voters: vec![]
        }
    );
    assert!(ElectionState::from_json("").is_err());
    assert!(ElectionState::from_json(r#"{"leaderEpoch":"x","data_version":0}"#).is_err());
    assert!(ElectionState::from_json(&json.replace(":0}", ":5}")).is_err());
}

#[test]
fn epoch_never_goes_back_when_quorum_state_is_lost() {
    let mut e = engine();
    let cmds = e
        .handle(Event::Start {
            stored: None,
            log_end_offset: 12,
            log_end_epoch: 4,
        })
        .unwrap();
    assert_eq!(cmds[0], Command::WriteQuorumState(state(5, -1, 1)));
    assert_eq!(e.epoch(), 5);
}
