use super::*;
use crate::test_support::T0;
use crate::test_support::{heartbeat, join, open, topic_on};
use uuid::Uuid;

/// Brokers 1, 2, 3 and topic "t" with partition 0 on [1, 2, 3] (leader 1). Returns the epochs.
fn cluster(c: &Controller) -> [i64; 3] {
    let epochs = [join(c, 1), join(c, 2), join(c, 3)];
    topic_on(c, "t", &[1, 2, 3]);
    epochs
}

fn state(c: &Controller) -> (Uuid, PartitionImage) {
    let image = c.image();
    let t = image.topic("t").unwrap();
    (t.id, t.partitions[&0].clone())
}

/// The leader's change of partition 0 to `isr`, at the committed epochs.
fn change(c: &Controller, isr: &[(i32, i64)]) -> IsrChange {
    let (topic_id, p) = state(c);
    IsrChange {
        topic_id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: isr.to_vec(),
        leader_recovery_state: 0,
    }
}

fn ask(c: &Controller, from: (i32, i64), change: IsrChange) -> Result<IsrState, IsrError> {
    let req = AlterIsr {
        broker_id: from.0,
        broker_epoch: from.1,
        partitions: vec![change],
    };
    c.alter_partition(req).unwrap().remove(0)
}

#[test]
fn a_shrink_then_an_expansion_commit_and_bump_the_partition_epoch_only() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let [e1, e2, e3] = cluster(&c);
    let (_, before) = state(&c);
    assert_eq!((before.leader, before.isr.clone()), (1, vec![1, 2, 3]));

    let shrunk = ask(&c, (1, e1), change(&c, &[(1, e1), (2, e2)])).unwrap();
    let (_, after) = state(&c);
    assert_eq!(after.isr, vec![1, 2]);
    assert_eq!(after.leader_epoch, before.leader_epoch);
    assert_eq!(after.partition_epoch, before.partition_epoch + 1);
    let expected = IsrState {
        leader: 1,
        leader_epoch: before.leader_epoch,
        isr: vec![1, 2],
        partition_epoch: after.partition_epoch,
    };
    assert_eq!(shrunk, expected);

    let grown = ask(&c, (1, e1), change(&c, &[(1, e1), (2, e2), (3, e3)])).unwrap();
    assert_eq!(grown.isr, vec![1, 2, 3]);
    assert_eq!(state(&c).1.partition_epoch, before.partition_epoch + 2);

    // The same ISR again writes nothing and answers the committed state.
    let end = c.log_end_offset();
    let same = ask(&c, (1, e1), change(&c, &[(1, e1), (2, e2), (3, e3)])).unwrap();
    assert_eq!(same, grown);
    assert_eq!(c.log_end_offset(), end);
}

#[test]
fn stale_and_future_epochs_are_refused_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let [e1, e2, _] = cluster(&c);
    let isr = [(1, e1), (2, e2)];

    let mut old_partition = change(&c, &isr);
    old_partition.partition_epoch -= 1;
    let err = ask(&c, (1, e1), old_partition.clone());
    assert_eq!(err, Err(IsrError::InvalidUpdateVersion));

    let mut newer = change(&c, &isr);
    newer.partition_epoch += 1;
    assert_eq!(ask(&c, (1, e1), newer), Err(IsrError::ControllerBehind));
    let mut newer_leader = change(&c, &isr);
    newer_leader.leader_epoch += 1;
    assert_eq!(
        ask(&c, (1, e1), newer_leader),
        Err(IsrError::ControllerBehind)
    );

    let mut old_leader = old_partition;
    old_leader.leader_epoch -= 1;
    let err = ask(&c, (1, e1), old_leader);
    assert_eq!(err, Err(IsrError::FencedLeaderEpoch));

    // Broker 2 is no leader; broker 1 under a stale broker epoch is refused whole.
    let err = ask(&c, (2, e2), change(&c, &isr));
    assert_eq!(err, Err(IsrError::InvalidRequest));
    let req = AlterIsr {
        broker_id: 1,
        broker_epoch: e1 - 1,
        partitions: vec![change(&c, &isr)],
    };
    let whole = c.alter_partition(req);
    assert!(
        matches!(whole, Err(ControllerError::StaleBrokerEpoch { .. })),
        "{whole:?}"
    );
    assert_eq!(state(&c).1.isr, vec![1, 2, 3], "nothing was written");
}

#[test]
fn malformed_isrs_and_ineligible_members_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let [e1, e2, e3] = cluster(&c);
    let invalid = [
        vec![(2, e2), (3, e3)],
        vec![(1, e1), (1, e1)],
        vec![(1, e1), (4, -1)],
        vec![],
    ];
    for isr in invalid {
        let err = ask(&c, (1, e1), change(&c, &isr));
        assert_eq!(err, Err(IsrError::InvalidRequest), "{isr:?}");
    }
    // Broker 3 under another incarnation's epoch (KIP-903); -1 skips the check.
    let err = ask(&c, (1, e1), change(&c, &[(1, e1), (3, e3 + 1)]));
    assert_eq!(err, Err(IsrError::IneligibleReplica));
    assert!(ask(&c, (1, e1), change(&c, &[(1, e1), (3, -1)])).is_ok());

    let mut unknown = change(&c, &[(1, e1)]);
    unknown.topic_id = Uuid::from_u128(7);
    assert_eq!(ask(&c, (1, e1), unknown), Err(IsrError::UnknownTopicId));
    let mut unknown = change(&c, &[(1, e1)]);
    unknown.partition = 5;
    assert_eq!(ask(&c, (1, e1), unknown), Err(IsrError::UnknownPartition));
}

#[test]
fn a_fenced_member_cannot_rejoin() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let [e1, e2, e3] = cluster(&c);
    ask(&c, (1, e1), change(&c, &[(1, e1), (2, e2)])).unwrap();
    let mut hb = heartbeat(&c, 3, e3);
    hb.want_fence = true;
    c.broker_heartbeat(hb, T0 + 1).unwrap();
    assert!(c.image().brokers[&3].fenced);
    let err = ask(&c, (1, e1), change(&c, &[(1, e1), (2, e2), (3, e3)]));
    assert_eq!(err, Err(IsrError::IneligibleReplica));
}
