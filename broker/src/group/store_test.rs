//! The write pipeline with an injected `__consumer_offsets`: a change takes effect only once its
//! records are appended, and a failed append leaves memory as the log has it.

use super::*;
use crate::group::{
    CommitEntry, Committer, GroupConfig, GroupState, JoinParams, JoinResult, Reply,
};
use crate::group::{SyncResult, Write};
use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// An in-memory `__consumer_offsets` that fails every append with `fail` while it is set.
#[derive(Default)]
struct FakeLog {
    fail: Mutex<Option<E>>,
    written: Mutex<Vec<Write>>,
}

impl FakeLog {
    fn failing(&self, e: Option<E>) {
        *self.fail.lock() = e;
    }

    fn take(&self) -> Vec<Write> {
        std::mem::take(&mut self.written.lock())
    }
}

impl OffsetsLog for FakeLog {
    fn append(
        &self,
        _partition: i32,
        writes: &[Write],
        _now: i64,
    ) -> Result<Option<Pending>, AppendError> {
        if let Some(error) = *self.fail.lock() {
            return Err(AppendError {
                error,
                detail: "injected failure".into(),
            });
        }
        self.written.lock().extend(writes.iter().cloned());
        Ok(None)
    }
}

fn coordinator() -> GroupCoordinator {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    };
    GroupCoordinator::new(config, 7)
}

fn params(member: &str, instance: Option<&str>) -> JoinParams {
    JoinParams {
        group_id: "g".into(),
        member_id: member.into(),
        instance_id: instance.map(str::to_string),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"r"))],
        version: 9,
    }
}

fn later<T>(r: Reply<T>) -> oneshot::Receiver<T> {
    match r {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected a delayed reply"),
    }
}

fn done<T>(rx: &mut oneshot::Receiver<T>) -> T {
    rx.try_recv().expect("completed")
}

/// A static member (instance "i") alone in a Stable group at generation 1; its member id.
fn stable_static(c: &GroupCoordinator, log: &FakeLog) -> String {
    let mut rx = later(c.with(|g| g.join(params("", Some("i")), 0)));
    let joined: JoinResult = done(&mut rx);
    let id = joined.member_id;
    let assignment = vec![(id.clone(), Bytes::from_static(b"A"))];
    let mut sync = later(c.with(|g| g.sync("g", 1, &id, None, (None, None), assignment, 1)));
    persist(c, log, 1);
    assert_eq!(done(&mut sync).error, 0);
    id
}

fn commit(c: &GroupCoordinator, group: &str, offset: i64, now: i64) -> Result<Vec<i16>, i16> {
    let who = Committer {
        group_id: group,
        generation: -1,
        member_id: "",
        instance_id: None,
        retention_ms: -1,
    };
    let entry = CommitEntry {
        topic: "t".into(),
        partition: 0,
        offset,
        leader_epoch: -1,
        metadata: None,
    };
    c.with(|g| g.commit(&who, &[entry], now))
}

fn committed(c: &GroupCoordinator, group: &str) -> Option<i64> {
    let f = c.with(|g| g.fetch_offsets(group, Some(&[("t".into(), vec![0])])));
    f[0].1[0].1.as_ref().map(|v| v.offset)
}

#[test]
fn a_failed_assignment_store_answers_every_member_and_rebalances() {
    let (c, log) = (coordinator(), FakeLog::default());
    let a = c.with(|g| g.join(params("", None), 0));
    let Reply::Now(a) = a else { panic!() };
    let b = c.with(|g| g.join(params("", None), 0));
    let Reply::Now(b) = b else { panic!() };
    let (a, b) = (a.member_id, b.member_id);
    let mut ra = later(c.with(|g| g.join(params(&a, None), 0)));
    let mut rb = later(c.with(|g| g.join(params(&b, None), 0)));
    let (ja, _) = (done(&mut ra), done(&mut rb));
    let (leader, follower) = if ja.leader == a { (a, b) } else { (b, a) };
    let assign = |l: &str, f: &str| {
        vec![
            (l.to_string(), Bytes::from_static(b"L")),
            (f.to_string(), Bytes::from_static(b"F")),
        ]
    };
    let sync = |id: &str, gen, assignment, now| {
        later(c.with(|g| g.sync("g", gen, id, None, (None, None), assignment, now)))
    };
    let mut fs = sync(&follower, 1, vec![], 1);
    let mut ls = sync(&leader, 1, assign(&leader, &follower), 1);
    log.failing(Some(E::KafkaStorageError));
    let persisted = persist(&c, &log, 1);
    assert_eq!(persisted.result_for("g"), Err(E::NotCoordinator.code()));
    let failed: (SyncResult, SyncResult) = (done(&mut ls), done(&mut fs));
    assert_eq!(failed.0.error, E::NotCoordinator.code());
    assert_eq!(failed.1.error, E::NotCoordinator.code());
    assert!(log.take().is_empty());
    // No assignment was kept; the group rebalances.
    c.with(|g| {
        let group = &g.groups["g"];
        assert_eq!(group.state, GroupState::PreparingRebalance);
        assert!(group.members.values().all(|m| m.assignment.is_empty()));
    });
    // Once the log works again the next generation is stored and applied.
    log.failing(None);
    let mut rl = later(c.with(|g| g.join(params(&leader, None), 2)));
    let mut rf = later(c.with(|g| g.join(params(&follower, None), 2)));
    assert_eq!((done(&mut rl).generation, done(&mut rf).generation), (2, 2));
    let mut fs = sync(&follower, 2, vec![], 3);
    let mut ls = sync(&leader, 2, assign(&leader, &follower), 3);
    assert_eq!(persist(&c, &log, 3).result_for("g"), Ok(()));
    assert_eq!(done(&mut ls).assignment, Bytes::from_static(b"L"));
    assert_eq!(done(&mut fs).assignment, Bytes::from_static(b"F"));
    assert_eq!(c.with(|g| g.state_of("g")), Some(GroupState::Stable));
    assert_eq!(log.take().len(), 1, "one group record");
}

#[test]
fn a_failed_commit_leaves_the_offsets_as_they_were() {
    let (c, log) = (coordinator(), FakeLog::default());
    assert_eq!(commit(&c, "s", 5, 0), Ok(vec![0]));
    assert_eq!(persist(&c, &log, 0).result_for("s"), Ok(()));
    assert_eq!(committed(&c, "s"), Some(5));
    for (cause, answer) in [
        (E::NotLeaderOrFollower, E::NotCoordinator),
        (E::UnknownTopicOrPartition, E::CoordinatorNotAvailable),
        (E::RecordListTooLarge, E::UnknownServerError),
    ] {
        log.failing(Some(cause));
        assert_eq!(commit(&c, "s", 9, 1), Ok(vec![0]));
        assert_eq!(persist(&c, &log, 1).result_for("s"), Err(answer.code()));
        assert_eq!(committed(&c, "s"), Some(5), "{cause:?}");
    }
    // A simple consumer's first commit creates its group only once written.
    assert_eq!(commit(&c, "new", 1, 2), Ok(vec![0]));
    assert!(persist(&c, &log, 2).result_for("new").is_err());
    assert_eq!(c.with(|g| g.state_of("new")), None);
    log.failing(None);
    assert_eq!(commit(&c, "new", 1, 3), Ok(vec![0]));
    persist(&c, &log, 3);
    assert_eq!(committed(&c, "new"), Some(1));
}

#[test]
fn a_failed_static_member_replacement_keeps_the_old_member_id() {
    let (c, log) = (coordinator(), FakeLog::default());
    let old = stable_static(&c, &log);
    log.take();
    let mut rj = later(c.with(|g| g.join(params("", Some("i")), 100)));
    log.failing(Some(E::KafkaStorageError));
    persist(&c, &log, 100);
    let r = done(&mut rj);
    assert_eq!(r.error, E::NotCoordinator.code());
    assert_eq!((r.member_id.as_str(), r.generation), ("", 1));
    assert_eq!(r.leader, old);
    assert_eq!(c.with(|g| g.heartbeat("g", 1, &old, Some("i"), 101)), 0);
    // Written: the new id replaces the old one, which is fenced.
    log.failing(None);
    let mut rj = later(c.with(|g| g.join(params("", Some("i")), 102)));
    persist(&c, &log, 102);
    let r = done(&mut rj);
    assert_eq!((r.error, r.skip_assignment), (0, true));
    let fenced = c.with(|g| g.heartbeat("g", 1, &old, Some("i"), 103));
    assert_eq!(fenced, E::FencedInstanceId.code());
    assert_eq!(
        c.with(|g| g.heartbeat("g", 1, &r.member_id, Some("i"), 103)),
        0
    );
    assert_eq!(log.take().len(), 1);
}

#[test]
fn failed_deletions_keep_groups_and_offsets() {
    let (c, log) = (coordinator(), FakeLog::default());
    commit(&c, "s", 5, 0).unwrap();
    persist(&c, &log, 0);
    assert_eq!(log.take().len(), 1);
    log.failing(Some(E::KafkaStorageError));
    let deleted = c.with(|g| g.delete_offsets("s", &[("t".into(), vec![0])]));
    assert_eq!(deleted, Ok(vec![("t".to_string(), vec![(0, 0)])]));
    assert!(persist(&c, &log, 1).result_for("s").is_err());
    assert_eq!(committed(&c, "s"), Some(5));
    assert_eq!(c.with(|g| g.delete_groups(&["s".into()])), vec![0]);
    assert!(persist(&c, &log, 1).result_for("s").is_err());
    assert_eq!(c.with(|g| g.state_of("s")), Some(GroupState::Empty));
    // Expiry retries at the next check once the log works again.
    let expired_at = c.with(|g| g.config().offsets_retention_ms) + 1;
    c.with(|g| g.tick(expired_at));
    persist(&c, &log, expired_at);
    assert_eq!(committed(&c, "s"), Some(5));
    log.failing(None);
    let next_check = expired_at + c.with(|g| g.config().offsets_retention_check_interval_ms);
    c.with(|g| g.tick(next_check));
    persist(&c, &log, next_check);
    assert_eq!(c.with(|g| g.state_of("s")), None);
    let tombstones = log.take();
    assert!(!tombstones.is_empty() && tombstones.iter().all(|w| w.value.is_none()));
}
