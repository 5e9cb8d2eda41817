use super::*;
use crate::controller_isr::{AlterIsr, IsrChange, IsrError};
use crate::test_support::{join, open, topic_on};

/// Brokers 1–4 and topic "t" with partition 0 on [1, 2, 3] (leader 1). Returns the epochs.
fn cluster(c: &Controller) -> Vec<i64> {
    let epochs = (1..=4).map(|id| join(c, id)).collect();
    topic_on(c, "t", &[1, 2, 3]);
    epochs
}

fn p0(c: &Controller) -> PartitionImage {
    c.image().topic("t").unwrap().partitions[&0].clone()
}

fn move_to(c: &Controller, target: Option<Vec<i32>>) -> Result<(), ReassignError> {
    let req = vec![("t".to_string(), vec![(0, target)])];
    let mut out = c.alter_reassignments(req, true).unwrap();
    out.remove(0).1.remove(0).1
}

/// The leader's AlterPartition for partition 0 with ISR `isr` (epochs unchecked).
fn isr_to(c: &Controller, isr: &[i32]) -> Result<crate::controller_isr::IsrState, IsrError> {
    let image = c.image();
    let t = image.topic("t").unwrap();
    let p = &t.partitions[&0];
    let leader = image.brokers[&p.leader].epoch;
    let req = AlterIsr {
        broker_id: p.leader,
        broker_epoch: leader,
        partitions: vec![IsrChange {
            topic_id: t.id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: isr.iter().map(|&r| (r, -1)).collect(),
            leader_recovery_state: 0,
        }],
    };
    c.alter_partition(req).unwrap().remove(0)
}

#[test]
fn a_move_adds_first_and_completes_when_the_new_replica_is_in_sync() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    cluster(&c);
    let before = p0(&c);
    move_to(&c, Some(vec![1, 2, 4])).unwrap();
    let moving = p0(&c);
    assert_eq!(moving.replicas, vec![1, 2, 4, 3]);
    assert_eq!(
        (
            moving.adding_replicas.clone(),
            moving.removing_replicas.clone()
        ),
        (vec![4], vec![3])
    );
    assert_eq!(moving.isr, vec![1, 2, 3]);
    assert_eq!(
        moving.leader_epoch, before.leader_epoch,
        "nothing removed yet"
    );
    let listed = c.list_reassignments(None);
    assert_eq!(listed["t"][0].adding, vec![4]);

    // Broker 4 catches up: the leader's expansion completes the move.
    let done = isr_to(&c, &[1, 2, 3, 4]).unwrap();
    let after = p0(&c);
    assert_eq!(
        (after.replicas.clone(), after.isr.clone()),
        (vec![1, 2, 4], vec![1, 2, 4])
    );
    assert!(after.adding_replicas.is_empty() && after.removing_replicas.is_empty());
    assert_eq!(after.leader, 1);
    assert_eq!(
        after.leader_epoch,
        before.leader_epoch + 1,
        "3 was removed: epoch bump"
    );
    assert_eq!(
        (done.isr, done.leader_epoch),
        (vec![1, 2, 4], after.leader_epoch)
    );
    assert!(c.list_reassignments(None).is_empty());
}

#[test]
fn moving_the_leader_away_elects_a_target_replica_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    cluster(&c);
    move_to(&c, Some(vec![4, 2, 3])).unwrap();
    assert_eq!(p0(&c).leader, 1);
    let err = isr_to(&c, &[1, 2, 3, 4]);
    assert_eq!(err, Err(IsrError::NewLeaderElected));
    let after = p0(&c);
    assert_eq!((after.replicas.clone(), after.leader), (vec![4, 2, 3], 4));
    assert_eq!(after.isr, vec![2, 3, 4]);
}

#[test]
fn a_move_among_in_sync_replicas_completes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    cluster(&c);
    move_to(&c, Some(vec![3, 2])).unwrap();
    let after = p0(&c);
    assert_eq!(
        (after.replicas.clone(), after.isr.clone()),
        (vec![3, 2], vec![2, 3])
    );
    assert_eq!(after.leader, 3, "the removed leader hands over");
    assert!(after.adding_replicas.is_empty());
    // The same replicas again: nothing to do.
    let end = c.log_end_offset();
    move_to(&c, Some(vec![3, 2])).unwrap();
    assert_eq!(c.log_end_offset(), end);
}

#[test]
fn cancelling_reverts_and_bad_targets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    cluster(&c);
    assert_eq!(
        move_to(&c, None),
        Err(ReassignError::NoReassignmentInProgress)
    );
    move_to(&c, Some(vec![1, 2, 4])).unwrap();
    move_to(&c, None).unwrap();
    let back = p0(&c);
    assert_eq!(
        (back.replicas.clone(), back.isr.clone()),
        (vec![1, 2, 3], vec![1, 2, 3])
    );
    assert!(back.adding_replicas.is_empty() && back.removing_replicas.is_empty());

    for bad in [vec![], vec![1, 1, 2], vec![1, 2, 7]] {
        let err = move_to(&c, Some(bad.clone()));
        assert!(
            matches!(err, Err(ReassignError::InvalidAssignment(_))),
            "{bad:?}: {err:?}"
        );
    }
    let req = vec![("t".to_string(), vec![(0, Some(vec![1, 2]))])];
    let out = c.alter_reassignments(req, false).unwrap();
    assert_eq!(out[0].1[0].1, Err(ReassignError::ReplicationFactorChange));
    let req = vec![
        ("nope".to_string(), vec![(0, Some(vec![1]))]),
        ("t".to_string(), vec![(5, Some(vec![1]))]),
    ];
    let out = c.alter_reassignments(req, true).unwrap();
    assert_eq!(out[0].1[0].1, Err(ReassignError::UnknownPartition));
    assert_eq!(out[1].1[0].1, Err(ReassignError::UnknownPartition));
}

#[test]
fn a_reassignment_survives_a_snapshot_of_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    cluster(&c);
    move_to(&c, Some(vec![1, 2, 4])).unwrap();
    let image = c.image();
    let t = image.topic("t").unwrap();
    let record = t.partitions[&0].to_record(t.id, 0);
    assert_eq!(
        (record.adding_replicas, record.removing_replicas),
        (vec![4], vec![3])
    );
}
