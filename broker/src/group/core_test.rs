use super::*;
use kafka_protocol::error::ResponseError as E;
use tokio::sync::oneshot::error::TryRecvError;

fn cfg(delay: i64) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: delay,
        ..GroupConfig::default()
    }
}

fn params(member: &str, instance: Option<&str>, protos: &[(&str, &[u8])]) -> JoinParams {
    JoinParams {
        group_id: "g".into(),
        member_id: member.into(),
        instance_id: instance.map(str::to_string),
        client_id: "c".into(),
        client_host: "/h".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protos
            .iter()
            .map(|(n, m)| (n.to_string(), Bytes::copy_from_slice(m)))
            .collect(),
        version: 9,
    }
}

const RANGE: &[(&str, &[u8])] = &[("range", b"r")];

fn now_reply<T: std::fmt::Debug>(r: Reply<T>) -> T {
    match r {
        Reply::Now(v) => v,
        Reply::Later(_) => panic!("expected an immediate reply"),
    }
}

fn later<T>(r: Reply<T>) -> oneshot::Receiver<T> {
    match r {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected a delayed reply"),
    }
}

use tokio::sync::oneshot;

/// KIP-394 round trip: returns the member id and the pending join.
fn join_new(g: &mut Groups, now: i64) -> (String, oneshot::Receiver<JoinResult>) {
    let first = now_reply(g.join(params("", None, RANGE), now));
    assert_eq!(first.error, E::MemberIdRequired.code());
    let id = first.member_id.clone();
    let rx = later(g.join(params(&id, None, RANGE), now));
    (id, rx)
}

type Pending = oneshot::Receiver<JoinResult>;

/// Two new members get their ids first, then both join (the first waits for the second).
fn join_two(g: &mut Groups, now: i64) -> (String, Pending, String, Pending) {
    let a = now_reply(g.join(params("", None, RANGE), now)).member_id;
    let b = now_reply(g.join(params("", None, RANGE), now)).member_id;
    let mut ra = later(g.join(params(&a, None, RANGE), now));
    assert!(matches!(ra.try_recv(), Err(TryRecvError::Empty)));
    let rb = later(g.join(params(&b, None, RANGE), now));
    (a, ra, b, rb)
}

fn done<T>(rx: &mut oneshot::Receiver<T>) -> T {
    rx.try_recv().expect("completed")
}

/// Applies every queued change as if its records had been written; returns the records.
fn settle(g: &mut Groups, now: i64) -> Vec<Write> {
    let mut written = Vec::new();
    for p in g.take_pending() {
        written.extend(p.writes.iter().cloned());
        g.apply(&p.group, p.change, Ok(()), now);
    }
    written
}

fn sync(
    g: &mut Groups,
    gen: i32,
    id: &str,
    assign: Vec<(String, Bytes)>,
    now: i64,
) -> Reply<SyncResult> {
    g.sync("g", gen, id, None, (None, None), assign, now)
}

/// Two members joined and synced at generation 1; returns (leader, follower).
fn stable_pair(g: &mut Groups) -> (String, String) {
    stable_pair_written(g).0
}

/// [`stable_pair`], and the records written on the way.
fn stable_pair_written(g: &mut Groups) -> ((String, String), Vec<Write>) {
    let (a, mut ra, b, mut rb) = join_two(g, 0);
    // Both joined, no initial delay configured: completes at once.
    let ja = done(&mut ra);
    let jb = done(&mut rb);
    assert_eq!((ja.generation, jb.generation), (1, 1));
    let (leader, follower) = if ja.leader == a { (a, b) } else { (b, a) };
    let mut fs = later(sync(g, 1, &follower, vec![], 1));
    let assign = vec![
        (leader.clone(), Bytes::from_static(b"L")),
        (follower.clone(), Bytes::from_static(b"F")),
    ];
    let mut ls = later(sync(g, 1, &leader, assign, 1));
    assert_eq!(g.state_of("g"), Some(GroupState::CompletingRebalance));
    let written = settle(g, 1);
    assert_eq!(done(&mut ls).assignment, Bytes::from_static(b"L"));
    assert_eq!(done(&mut fs).assignment, Bytes::from_static(b"F"));
    assert_eq!(g.state_of("g"), Some(GroupState::Stable));
    ((leader, follower), written)
}

#[test]
fn member_id_required_then_join_sync_heartbeat() {
    let mut g = Groups::new(cfg(0), 1);
    let ((leader, follower), writes) = stable_pair_written(&mut g);
    assert_eq!(g.heartbeat("g", 1, &leader, None, 2), 0);
    assert_eq!(
        g.heartbeat("g", 0, &leader, None, 2),
        E::IllegalGeneration.code()
    );
    assert_eq!(
        g.heartbeat("g", 1, "nobody", None, 2),
        E::UnknownMemberId.code()
    );
    assert_eq!(
        g.heartbeat("x", 1, &follower, None, 2),
        E::UnknownMemberId.code()
    );
    // The leader's group metadata was written to __consumer_offsets.
    let last = writes.last().expect("group record");
    assert_eq!(last.key, records::group_key("g"));
    let Decoded::Group { value: Some(v), .. } =
        records::decode(&last.key, last.value.as_deref()).unwrap()
    else {
        panic!("not a group record")
    };
    assert_eq!((v.generation, v.members.len()), (1, 2));
}

#[test]
fn old_versions_join_without_member_id_round_trip() {
    let mut g = Groups::new(cfg(0), 1);
    let mut p = params("", None, RANGE);
    p.version = 3;
    let mut rx = later(g.join(p, 0));
    let r = done(&mut rx);
    assert_eq!((r.error, r.generation), (0, 1));
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn invalid_join_inputs() {
    let mut g = Groups::new(cfg(0), 1);
    let mut p = params("", None, RANGE);
    p.session_timeout_ms = 10;
    assert_eq!(
        now_reply(g.join(p, 0)).error,
        E::InvalidSessionTimeout.code()
    );
    let mut p = params("", None, RANGE);
    p.group_id.clear();
    assert_eq!(now_reply(g.join(p, 0)).error, E::InvalidGroupId.code());
    assert_eq!(
        now_reply(g.join(params("", None, &[]), 0)).error,
        E::InconsistentGroupProtocol.code()
    );
    assert_eq!(
        now_reply(g.join(params("ghost", None, RANGE), 0)).error,
        E::UnknownMemberId.code()
    );
    // A protocol type mix is refused while the group has members.
    stable_pair(&mut g);
    let mut p = params("", None, RANGE);
    p.protocol_type = "connect".into();
    assert_eq!(
        now_reply(g.join(p, 5)).error,
        E::InconsistentGroupProtocol.code()
    );
    let p = params("", None, &[("roundrobin", b"x")]);
    assert_eq!(
        now_reply(g.join(p, 5)).error,
        E::InconsistentGroupProtocol.code()
    );
    assert_eq!(g.state_of("g"), Some(GroupState::Stable));
}

#[test]
fn protocol_selected_by_vote() {
    let mut g = Groups::new(cfg(0), 1);
    let both: &[(&str, &[u8])] = &[("roundrobin", b"1"), ("range", b"2")];
    let range_first: &[(&str, &[u8])] = &[("range", b"3"), ("roundrobin", b"4")];
    let a = now_reply(g.join(params("", None, both), 0)).member_id;
    let b = now_reply(g.join(params("", None, range_first), 0)).member_id;
    let c = now_reply(g.join(params("", None, range_first), 0)).member_id;
    let mut ra = later(g.join(params(&a, None, both), 0));
    let _rb = later(g.join(params(&b, None, range_first), 0));
    let _rc = later(g.join(params(&c, None, range_first), 0));
    let r = done(&mut ra);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    if r.leader == a {
        let mine = r.members.iter().find(|m| m.member_id == a).unwrap();
        assert_eq!(mine.metadata, Bytes::from_static(b"2"));
    }
}

#[test]
fn rebalance_when_a_member_joins_and_another_leaves() {
    let mut g = Groups::new(cfg(0), 1);
    let (leader, follower) = stable_pair(&mut g);
    // A third member joins: the group rebalances and waits for the others.
    let (c, mut rc) = join_new(&mut g, 10);
    assert_eq!(g.state_of("g"), Some(GroupState::PreparingRebalance));
    assert!(matches!(rc.try_recv(), Err(TryRecvError::Empty)));
    assert_eq!(
        g.heartbeat("g", 1, &leader, None, 11),
        E::RebalanceInProgress.code()
    );
    assert_eq!(
        now_reply(sync(&mut g, 1, &leader, vec![], 11)).error,
        E::RebalanceInProgress.code()
    );
    let mut rl = later(g.join(params(&leader, None, RANGE), 12));
    // The follower leaves instead of rejoining: the join completes with two members.
    assert_eq!(
        g.leave(
            "g",
            &[LeavingMember {
                member_id: follower.clone(),
                instance_id: None
            }],
            13
        ),
        Ok(vec![0])
    );
    let jl = done(&mut rl);
    let jc = done(&mut rc);
    assert_eq!((jl.generation, jc.generation), (2, 2));
    assert_eq!(jl.leader, leader);
    assert_eq!(jl.members.len(), 2);
    assert!(jc.members.is_empty());
    assert_eq!(jc.member_id, c);
    assert_eq!(
        g.heartbeat("g", 2, &follower, None, 14),
        E::UnknownMemberId.code()
    );
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let mut g = Groups::new(cfg(0), 1);
    let (leader, follower) = stable_pair(&mut g);
    let mut rl = later(g.join(params(&leader, None, &[("range", b"new")]), 100));
    assert_eq!(g.state_of("g"), Some(GroupState::PreparingRebalance));
    // The follower keeps heartbeating but never rejoins.
    for t in (1000..30_000).step_by(3000) {
        g.tick(100 + t);
        assert_eq!(
            g.heartbeat("g", 1, &follower, None, 100 + t),
            E::RebalanceInProgress.code()
        );
    }
    assert!(matches!(rl.try_recv(), Err(TryRecvError::Empty)));
    g.tick(100 + 30_000);
    let r = done(&mut rl);
    assert_eq!((r.generation, r.members.len()), (2, 1));
}

#[test]
fn session_expiry_removes_member_and_empties_group() {
    let mut g = Groups::new(cfg(0), 1);
    let (leader, follower) = stable_pair(&mut g);
    // Only the leader keeps heartbeating.
    g.tick(5_000);
    assert_eq!(g.heartbeat("g", 1, &leader, None, 5_000), 0);
    g.tick(10_001);
    assert_eq!(g.state_of("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(
        g.heartbeat("g", 1, &follower, None, 10_002),
        E::UnknownMemberId.code()
    );
    // The leader stops too: the group ends Empty at a new generation, persisted.
    g.tick(15_001);
    assert_eq!(g.state_of("g"), Some(GroupState::Empty));
    assert_eq!(g.generation_of("g"), Some(2));
    let writes = settle(&mut g, 15_001);
    assert!(writes.iter().any(|w| w.key == records::group_key("g")));
}

#[test]
fn sync_timeout_rebalances_without_lagging_members() {
    let mut g = Groups::new(cfg(0), 1);
    let (a, mut ra, b, mut rb) = join_two(&mut g, 0);
    let ja = done(&mut ra);
    done(&mut rb);
    let leader = ja.leader.clone();
    let other = if leader == a { b } else { a };
    // Only the follower syncs; the leader never sends its assignment.
    let mut fs = later(sync(&mut g, 1, &other, vec![], 1));
    g.tick(30_001);
    // The follower is still waiting for sync; the leader (lagging) was removed.
    assert_eq!(g.state_of("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(done(&mut fs).error, E::RebalanceInProgress.code());
}

#[test]
fn initial_rebalance_delay_waits_for_more_members() {
    let mut g = Groups::new(cfg(3000), 1);
    let (_a, mut ra) = join_new(&mut g, 0);
    assert!(matches!(ra.try_recv(), Err(TryRecvError::Empty)));
    g.tick(2000);
    let (_b, mut rb) = join_new(&mut g, 2000);
    g.tick(4000);
    assert!(
        matches!(ra.try_recv(), Err(TryRecvError::Empty)),
        "delay extended"
    );
    g.tick(5000);
    let (ja, jb) = (done(&mut ra), done(&mut rb));
    assert_eq!((ja.generation, jb.generation), (1, 1));
}

#[test]
fn group_max_size() {
    let mut g = Groups::new(
        GroupConfig {
            max_size: 2,
            ..cfg(0)
        },
        1,
    );
    stable_pair(&mut g);
    let r = now_reply(g.join(params("", None, RANGE), 5));
    assert_eq!(r.error, E::GroupMaxSizeReached.code());
    assert_eq!(g.state_of("g"), Some(GroupState::Stable));
}

#[test]
fn static_member_restart_without_rebalance_and_fencing() {
    let mut g = Groups::new(cfg(0), 1);
    let mut ra = later(g.join(params("", Some("i1"), RANGE), 0));
    let ja = done(&mut ra);
    assert_eq!(ja.error, 0);
    let old = ja.member_id.clone();
    later(sync(
        &mut g,
        1,
        &old,
        vec![(old.clone(), Bytes::from_static(b"A"))],
        1,
    ));
    settle(&mut g, 1);
    assert_eq!(g.state_of("g"), Some(GroupState::Stable));
    // Restart: same instance id, no member id → new id, same generation, no rebalance, once
    // the group record with the new id is written.
    let mut rj = later(g.join(params("", Some("i1"), RANGE), 100));
    assert!(matches!(rj.try_recv(), Err(TryRecvError::Empty)));
    let written = settle(&mut g, 100);
    assert_eq!(written.len(), 1);
    let r = done(&mut rj);
    assert_eq!(r.error, 0);
    assert_eq!(r.generation, 1);
    assert_ne!(r.member_id, old);
    assert!(r.skip_assignment, "v9 leader rejoin skips assignment");
    assert_eq!(g.state_of("g"), Some(GroupState::Stable));
    let new = r.member_id;
    // The new id gets the old assignment; the old id is fenced.
    let s = now_reply(g.sync("g", 1, &new, Some("i1"), (None, None), vec![], 101));
    assert_eq!(s.assignment, Bytes::from_static(b"A"));
    assert_eq!(
        g.heartbeat("g", 1, &old, Some("i1"), 102),
        E::FencedInstanceId.code()
    );
    assert_eq!(g.heartbeat("g", 1, &new, Some("i1"), 102), 0);
    assert_eq!(
        now_reply(g.join(params(&old, Some("i1"), RANGE), 103)).error,
        E::FencedInstanceId.code()
    );
    let leave = g.leave(
        "g",
        &[LeavingMember {
            member_id: old,
            instance_id: Some("i1".into()),
        }],
        104,
    );
    assert_eq!(leave, Ok(vec![E::FencedInstanceId.code()]));
    let leave = g.leave(
        "g",
        &[LeavingMember {
            member_id: String::new(),
            instance_id: Some("i1".into()),
        }],
        105,
    );
    assert_eq!(leave, Ok(vec![0]));
    assert_eq!(g.state_of("g"), Some(GroupState::Empty));
}

#[test]
fn commits_and_fetches_with_generation_checks() {
    let mut g = Groups::new(cfg(0), 1);
    let (leader, _) = stable_pair(&mut g);
    let e = |o| CommitEntry {
        topic: "t".into(),
        partition: 0,
        offset: o,
        leader_epoch: 3,
        metadata: Some("m".into()),
    };
    let who = |gen, id: &'static str| Committer {
        group_id: "g",
        generation: gen,
        member_id: id,
        instance_id: None,
        retention_ms: -1,
    };
    let leader: &'static str = Box::leak(leader.into_boxed_str());
    assert_eq!(g.commit(&who(1, leader), &[e(5)], 10), Ok(vec![0]));
    assert_eq!(
        g.commit(&who(0, leader), &[e(6)], 10),
        Err(E::IllegalGeneration.code())
    );
    assert_eq!(
        g.commit(&who(1, "x"), &[e(6)], 10),
        Err(E::UnknownMemberId.code())
    );
    assert_eq!(
        g.commit(&who(-1, ""), &[e(6)], 10),
        Err(E::UnknownMemberId.code())
    );
    let big = CommitEntry {
        metadata: Some("x".repeat(5000)),
        ..e(7)
    };
    assert_eq!(
        g.commit(&who(1, leader), &[big, e(8)], 10),
        Ok(vec![E::OffsetMetadataTooLarge.code(), 0])
    );
    settle(&mut g, 10);
    let f = g.fetch_offsets("g", Some(&[("t".into(), vec![0, 1])]));
    assert_eq!(
        f[0].1[0].1.as_ref().map(|v| (v.offset, v.leader_epoch)),
        Some((8, 3))
    );
    assert_eq!(f[0].1[1].1, None);
    assert_eq!(g.fetch_offsets("g", None)[0].1.len(), 1);
    assert!(g.fetch_offsets("nope", None).is_empty());
    // A non-empty group cannot be deleted, nor its subscribed offsets (metadata "r" is no
    // consumer subscription, so nothing counts as subscribed).
    assert_eq!(
        g.delete_groups(&["g".into()]),
        vec![E::NonEmptyGroup.code()]
    );
    assert_eq!(
        g.delete_groups(&["zz".into()]),
        vec![E::GroupIdNotFound.code()]
    );
}

#[test]
fn simple_consumer_commits_expire_and_group_is_removed() {
    let mut g = Groups::new(cfg(0), 1);
    let who = Committer {
        group_id: "s",
        generation: -1,
        member_id: "",
        instance_id: None,
        retention_ms: -1,
    };
    let e = CommitEntry {
        topic: "t".into(),
        partition: 2,
        offset: 42,
        leader_epoch: -1,
        metadata: None,
    };
    assert_eq!(g.commit(&who, std::slice::from_ref(&e), 1_000), Ok(vec![0]));
    settle(&mut g, 1_000);
    let member = Committer {
        generation: 3,
        ..who.clone()
    };
    assert_eq!(
        g.commit(&member, std::slice::from_ref(&e), 1_000),
        Err(E::UnknownMemberId.code())
    );
    let other = Committer {
        group_id: "other",
        ..member
    };
    assert_eq!(
        g.commit(&other, &[e], 1_000),
        Err(E::IllegalGeneration.code())
    );
    let retention = g.config().offsets_retention_ms;
    g.tick(1_000 + retention - 1);
    assert!(settle(&mut g, 1_000 + retention - 1).is_empty());
    assert_eq!(g.state_of("s"), Some(GroupState::Empty));
    g.tick(1_000 + retention + 600_000);
    let writes = settle(&mut g, 1_000 + retention + 600_000);
    assert_eq!(g.state_of("s"), None);
    assert_eq!(writes.len(), 1, "one offset tombstone, no group record");
    assert_eq!(writes[0].key, records::offset_key("s", "t", 2));
    assert_eq!(writes[0].value, None);
}

#[test]
fn explicit_retention_writes_v1_and_expires() {
    let mut g = Groups::new(cfg(0), 1);
    let who = Committer {
        group_id: "s",
        generation: -1,
        member_id: "",
        instance_id: None,
        retention_ms: 5_000,
    };
    let e = CommitEntry {
        topic: "t".into(),
        partition: 0,
        offset: 1,
        leader_epoch: -1,
        metadata: None,
    };
    g.commit(&who, &[e], 0).unwrap();
    let w = settle(&mut g, 0);
    assert_eq!(
        w[0].value.as_ref().map(|v| v[1]),
        Some(1),
        "value version 1"
    );
    g.tick(1);
    g.tick(600_001);
    settle(&mut g, 600_001);
    assert_eq!(g.state_of("s"), None);
}

#[test]
fn delete_group_and_offsets_write_tombstones() {
    let mut g = Groups::new(cfg(0), 1);
    let who = Committer {
        group_id: "s",
        generation: -1,
        member_id: "",
        instance_id: None,
        retention_ms: -1,
    };
    let e = |p| CommitEntry {
        topic: "t".into(),
        partition: p,
        offset: 1,
        leader_epoch: -1,
        metadata: None,
    };
    g.commit(&who, &[e(0), e(1)], 0).unwrap();
    settle(&mut g, 0);
    let r = g.delete_offsets("s", &[("t".into(), vec![0])]).unwrap();
    assert_eq!(r, vec![("t".to_string(), vec![(0, 0)])]);
    assert_eq!(settle(&mut g, 0)[0].value, None);
    assert_eq!(
        g.delete_offsets("nope", &[]),
        Err(E::GroupIdNotFound.code())
    );
    assert_eq!(
        g.delete_groups(&["s".into(), "s".into()]),
        vec![0, E::GroupIdNotFound.code()]
    );
    let w = settle(&mut g, 0);
    assert_eq!(w.len(), 2);
    assert_eq!(w[1].key, records::group_key("s"));
    assert!(w.iter().all(|w| w.value.is_none()));
    assert_eq!(g.list(&[]), vec![]);
}

#[test]
fn subscribed_topics_cannot_lose_offsets_while_group_is_active() {
    let mut g = Groups::new(cfg(0), 1);
    // ConsumerProtocolSubscription v0: version 0, topics ["t"], user data null.
    let sub: &[u8] = &[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
    let mut r = later(g.join(params("", Some("i"), &[("range", sub)]), 0));
    let j = done(&mut r);
    let id: &'static str = Box::leak(j.member_id.into_boxed_str());
    later(sync(&mut g, 1, id, vec![], 0));
    settle(&mut g, 0);
    let who = Committer {
        group_id: "g",
        generation: 1,
        member_id: id,
        instance_id: None,
        retention_ms: -1,
    };
    let e = |t: &str| CommitEntry {
        topic: t.into(),
        partition: 0,
        offset: 1,
        leader_epoch: -1,
        metadata: None,
    };
    g.commit(&who, &[e("t"), e("u")], 1).unwrap();
    settle(&mut g, 1);
    let r = g
        .delete_offsets("g", &[("t".into(), vec![0]), ("u".into(), vec![0])])
        .unwrap();
    assert_eq!(r[0].1, vec![(0, E::GroupSubscribedToTopic.code())]);
    assert_eq!(r[1].1, vec![(0, 0)]);
}

#[test]
fn list_and_describe() {
    let mut g = Groups::new(cfg(0), 1);
    stable_pair(&mut g);
    let l = g.list(&["stable".into()]);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].protocol_type, "consumer");
    assert!(g.list(&["Empty".into()]).is_empty());
    let d = g.describe("g").unwrap();
    assert_eq!(
        (d.state, d.protocol.as_str(), d.members.len()),
        (GroupState::Stable, "range", 2)
    );
    assert!(g.describe("nope").is_none());
}

#[test]
fn replay_rebuilds_groups_and_offsets() {
    let mut g = Groups::new(cfg(0), 1);
    let ((leader, _), mut writes) = stable_pair_written(&mut g);
    let leader: &'static str = Box::leak(leader.into_boxed_str());
    let who = Committer {
        group_id: "g",
        generation: 1,
        member_id: leader,
        instance_id: None,
        retention_ms: -1,
    };
    let e = CommitEntry {
        topic: "t".into(),
        partition: 0,
        offset: 9,
        leader_epoch: 1,
        metadata: Some("meta".into()),
    };
    g.commit(&who, &[e], 5).unwrap();
    g.commit(
        &Committer {
            group_id: "gone",
            generation: -1,
            member_id: "",
            ..who.clone()
        },
        &[CommitEntry {
            topic: "t".into(),
            partition: 1,
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        }],
        5,
    )
    .unwrap();
    writes.extend(settle(&mut g, 5));
    assert_eq!(g.delete_groups(&["gone".into()]), vec![0]);
    writes.extend(settle(&mut g, 5));
    let mut h = Groups::new(cfg(0), 2);
    for w in writes {
        h.replay(records::decode(&w.key, w.value.as_deref()).unwrap(), 100);
    }
    h.finish_replay();
    assert_eq!(h.state_of("g"), Some(GroupState::Stable));
    assert_eq!(h.generation_of("g"), Some(1));
    assert_eq!(h.state_of("gone"), None);
    let f = h.fetch_offsets("g", None);
    assert_eq!(f[0].1[0].1.as_ref().map(|v| v.offset), Some(9));
    // Loaded members keep working at their generation, and expire if they never come back.
    assert_eq!(h.heartbeat("g", 1, leader, None, 200), 0);
    h.tick(20_000);
    assert_eq!(h.state_of("g"), Some(GroupState::Empty));
}

#[test]
fn shutdown_answers_pending_joins() {
    let mut g = Groups::new(cfg(3000), 1);
    let (_a, mut ra) = join_new(&mut g, 0);
    assert!(matches!(ra.try_recv(), Err(TryRecvError::Empty)));
    g.fail_waiters();
    assert_eq!(done(&mut ra).error, E::NotCoordinator.code());
}

/// `params` with a rebalance timeout longer than the new-member join timeout.
fn slow_params(member: &str) -> JoinParams {
    JoinParams {
        rebalance_timeout_ms: 600_000,
        ..params(member, None, RANGE)
    }
}

/// A new member (KIP-394 round trip) with a long rebalance timeout, awaiting its join.
fn slow_member(g: &mut Groups, now: i64) -> (String, Pending) {
    let id = now_reply(g.join(slow_params(""), now)).member_id;
    let rx = later(g.join(slow_params(&id), now));
    (id, rx)
}

#[test]
fn new_member_that_never_completes_its_join_is_removed_after_five_minutes() {
    let mut g = Groups::new(cfg(0), 1);
    let (a, mut ra) = slow_member(&mut g, 0);
    assert_eq!(done(&mut ra).error, 0);
    later(sync(&mut g, 1, &a, vec![], 0));
    settle(&mut g, 0);
    assert_eq!(g.state_of("g"), Some(GroupState::Stable));
    // B joins at t=1000 and waits; A heartbeats but does not rejoin (long poll).
    let (b, mut rb) = slow_member(&mut g, 1_000);
    assert_eq!(g.state_of("g"), Some(GroupState::PreparingRebalance));
    let deadline = 1_000 + membership::NEW_MEMBER_JOIN_TIMEOUT_MS;
    let mut t = 1_000;
    while t < deadline - 1 {
        t = (t + 3_000).min(deadline - 1);
        assert_eq!(
            g.heartbeat("g", 1, &a, None, t),
            E::RebalanceInProgress.code()
        );
        g.tick(t);
        assert!(
            matches!(rb.try_recv(), Err(TryRecvError::Empty)),
            "B still waits at {t}"
        );
    }
    g.tick(deadline);
    let r = done(&mut rb);
    assert_eq!(
        (r.error, r.member_id.as_str()),
        (E::UnknownMemberId.code(), b.as_str())
    );
    // A rejoins: the rebalance completes without B.
    let mut ra = later(g.join(slow_params(&a), deadline + 1));
    let r = done(&mut ra);
    assert_eq!((r.error, r.generation, r.members.len()), (0, 2, 1));
}

#[test]
fn a_member_past_its_first_join_waits_out_a_long_rebalance() {
    let mut g = Groups::new(cfg(0), 1);
    let (a, mut ra) = slow_member(&mut g, 0);
    assert_eq!(done(&mut ra).error, 0);
    later(sync(&mut g, 1, &a, vec![], 0));
    settle(&mut g, 0);
    // A second member B completes a join too, then both are known members.
    let (b, mut rb) = slow_member(&mut g, 10);
    let mut ra = later(g.join(slow_params(&a), 10));
    assert_eq!((done(&mut ra).generation, done(&mut rb).generation), (2, 2));
    later(sync(&mut g, 2, &b, vec![], 11));
    let _ = sync(&mut g, 2, &a, vec![], 11);
    settle(&mut g, 11);
    assert_eq!(g.state_of("g"), Some(GroupState::Stable));
    // The leader A rejoins (rebalance); B keeps heartbeating and takes 6 minutes to rejoin.
    let mut ra = later(g.join(slow_params(&a), 1_000));
    let mut t = 1_000;
    while t < 1_000 + 360_000 {
        t += 3_000;
        assert_eq!(
            g.heartbeat("g", 2, &b, None, t),
            E::RebalanceInProgress.code()
        );
        g.tick(t);
    }
    assert!(
        matches!(ra.try_recv(), Err(TryRecvError::Empty)),
        "A not expired"
    );
    let mut rb = later(g.join(slow_params(&b), t));
    assert_eq!((done(&mut ra).generation, done(&mut rb).generation), (3, 3));
}

#[test]
fn unloading_a_partition_drops_its_groups_and_answers_their_waiters() {
    let mut g = Groups::new(cfg(3000), 1);
    let p = g.partition_for("g");
    g.own(p);
    assert!(g.owns("g"));
    let other = (0..1000)
        .map(|i| format!("other-{i}"))
        .find(|id| g.partition_for(id) != p)
        .unwrap();
    assert!(!g.owns(&other));
    let (_, mut rx) = join_new(&mut g, 0);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));

    g.unload(p);
    assert!(!g.owns("g"));
    assert_eq!(g.state_of("g"), None);
    assert_eq!(rx.try_recv().unwrap().error, E::NotCoordinator.code());
    assert!(g.owned_partitions().is_empty());
}
