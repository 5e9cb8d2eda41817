use std::path::Path;

use shale_common::{ManualClock, SeededRng};
use uuid::Uuid;

use super::*;
use crate::controller::{ControllerOptions, MetadataLogTuning};
use crate::format::format_dirs;

const CLUSTER: &str = "MkU3OEVBNTcwNTJENDM2Qg";
const T0: u64 = 1_700_000_000_000;

fn open(dir: &Path, timeout_ms: u64) -> Controller {
    format_dirs(&[dir.to_path_buf()], CLUSTER, 1, &*SeededRng::new(9)).unwrap();
    let opts = ControllerOptions {
        metadata_log_dir: dir.to_path_buf(),
        node_id: 1,
        endpoints: vec![endpoint(9092)],
        rack: None,
        default_num_partitions: 1,
        default_replication_factor: 1,
        snapshot_every_records: 0,
    };
    Controller::open_with(
        opts,
        MetadataLogTuning::default(),
        ManualClock::new(T0 as i64),
        SeededRng::new(3),
    )
    .unwrap()
    .with_broker_session_timeout_ms(timeout_ms)
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        name: "PLAINTEXT".into(),
        host: "localhost".into(),
        port,
        security_protocol: 0,
    }
}

fn request(id: i32, incarnation: u128) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        broker_id: id,
        cluster_id: CLUSTER.into(),
        incarnation_id: Uuid::from_u128(incarnation),
        endpoints: vec![endpoint(9100)],
        rack: Some("r1".into()),
    }
}

fn hb(id: i32, epoch: i64, offset: i64) -> Heartbeat {
    Heartbeat {
        broker_id: id,
        broker_epoch: epoch,
        current_metadata_offset: offset,
        want_fence: false,
        want_shutdown: false,
    }
}

#[test]
fn registration_writes_a_fenced_record_at_its_epoch_and_a_retry_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 9000);
    let leo = c.log_end_offset();
    let epoch = c.register_broker(request(100, 1), T0).unwrap();
    assert_eq!(epoch, leo);
    let img = c.image();
    assert_eq!(
        img.last_offset, epoch,
        "the record sits at the broker epoch"
    );
    let b = &img.brokers[&100];
    assert!(b.fenced);
    assert_eq!((b.epoch, b.incarnation_id), (epoch, Uuid::from_u128(1)));
    assert_eq!(b.endpoints, vec![endpoint(9100)]);
    assert_eq!(b.rack.as_deref(), Some("r1"));

    // The same incarnation again: same epoch, nothing written.
    assert_eq!(c.register_broker(request(100, 1), T0 + 10).unwrap(), epoch);
    assert_eq!(c.image().last_offset, epoch);

    // Another incarnation of a fenced broker (no live session) registers anew.
    let epoch2 = c.register_broker(request(100, 2), T0 + 20).unwrap();
    assert!(epoch2 > epoch);
    assert_eq!(c.image().brokers[&100].epoch, epoch2);

    let mut other = request(101, 3);
    other.cluster_id = "other".into();
    let err = c.register_broker(other, T0).unwrap_err();
    assert!(
        matches!(err, ControllerError::InconsistentClusterId { .. }),
        "{err}"
    );
    assert!(!c.image().brokers.contains_key(&101));
}

#[test]
fn a_new_incarnation_is_refused_while_the_old_one_has_a_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1000);
    let epoch = c.register_broker(request(100, 1), T0).unwrap();
    let reply = c.broker_heartbeat(hb(100, epoch, epoch), T0).unwrap();
    assert!(!reply.is_fenced);
    let err = c.register_broker(request(100, 2), T0 + 500).unwrap_err();
    assert!(
        matches!(err, ControllerError::DuplicateBrokerRegistration(100)),
        "{err}"
    );
    // Once the session expired, the new incarnation takes over (fenced, new epoch).
    let epoch2 = c.register_broker(request(100, 2), T0 + 1001).unwrap();
    assert!(epoch2 > epoch);
    assert!(c.image().brokers[&100].fenced);
}

#[test]
fn heartbeats_with_a_stale_epoch_or_unknown_id_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 9000);
    let epoch = c.register_broker(request(100, 1), T0).unwrap();
    let err = c
        .broker_heartbeat(hb(100, epoch - 1, epoch), T0)
        .unwrap_err();
    assert!(
        matches!(err, ControllerError::StaleBrokerEpoch { broker_id: 100, sent, registered }
            if sent == epoch - 1 && registered == epoch),
        "{err}"
    );
    let err = c.broker_heartbeat(hb(7, 0, 0), T0).unwrap_err();
    assert!(
        matches!(err, ControllerError::BrokerIdNotRegistered(7)),
        "{err}"
    );
    assert!(c.image().brokers[&100].fenced);
}

#[test]
fn a_broker_is_unfenced_once_caught_up_to_its_registration() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 9000);
    let epoch = c.register_broker(request(100, 1), T0).unwrap();
    let reply = c.broker_heartbeat(hb(100, epoch, epoch - 1), T0).unwrap();
    let behind = HeartbeatReply {
        is_caught_up: false,
        is_fenced: true,
        should_shut_down: false,
    };
    assert_eq!(reply, behind);
    assert!(c.image().brokers[&100].fenced);

    let mut want_fence = hb(100, epoch, epoch);
    want_fence.want_fence = true;
    let reply = c.broker_heartbeat(want_fence, T0).unwrap();
    assert!(reply.is_caught_up && reply.is_fenced);

    let reply = c.broker_heartbeat(hb(100, epoch, epoch), T0 + 1).unwrap();
    assert!(reply.is_caught_up && !reply.is_fenced && !reply.should_shut_down);
    let img = c.image();
    assert!(!img.brokers[&100].fenced);
    assert_eq!(img.last_offset, epoch + 1, "one unfence record");
    // Unfenced already: nothing more is written.
    c.broker_heartbeat(hb(100, epoch, epoch + 1), T0 + 2)
        .unwrap();
    assert_eq!(c.image().last_offset, epoch + 1);
}

#[test]
fn an_expired_session_is_fenced_one_broker_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1000);
    let epoch = c.register_broker(request(100, 1), T0).unwrap();
    c.broker_heartbeat(hb(100, epoch, epoch), T0).unwrap();
    assert_eq!(c.fence_stale_brokers(T0 + 1000).unwrap(), None);
    c.broker_heartbeat(hb(100, epoch, epoch), T0 + 900).unwrap();
    // Broker 1 (registered at open, never heartbeating) expires first.
    assert_eq!(c.fence_stale_brokers(T0 + 1001).unwrap(), Some(1));
    assert_eq!(c.fence_stale_brokers(T0 + 1001).unwrap(), None);
    assert!(c.image().brokers[&1].fenced);
    assert!(!c.image().brokers[&100].fenced);

    assert_eq!(c.fence_stale_brokers(T0 + 1901).unwrap(), Some(100));
    assert!(c.image().brokers[&100].fenced);
    assert_eq!(c.fence_stale_brokers(T0 + 5000).unwrap(), None);

    // It comes back: the next caught-up heartbeat unfences it.
    let reply = c
        .broker_heartbeat(hb(100, epoch, epoch), T0 + 5000)
        .unwrap();
    assert!(!reply.is_fenced);
    assert!(!c.image().brokers[&100].fenced);
}

#[test]
fn want_shutdown_without_leaderships_fences_and_says_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 9000);
    let epoch = c.register_broker(request(100, 1), T0).unwrap();
    c.broker_heartbeat(hb(100, epoch, epoch), T0).unwrap();
    let mut bye = hb(100, epoch, epoch + 1);
    bye.want_shutdown = true;
    let reply = c.broker_heartbeat(bye, T0 + 1).unwrap();
    assert!(reply.should_shut_down && reply.is_fenced);
    assert!(c.image().brokers[&100].fenced);
}

/// Broker 100 registered and unfenced; topic "t" with one partition on broker 100 alone.
fn with_topic_on_100(c: &Controller) -> i64 {
    with_topic(c, vec![(0, vec![100])])
}

/// Broker 100 registered and unfenced; topic "t" placed as `assignments`. Returns its epoch.
fn with_topic(c: &Controller, assignments: Vec<(i32, Vec<i32>)>) -> i64 {
    let epoch = c.register_broker(request(100, 1), T0).unwrap();
    c.broker_heartbeat(hb(100, epoch, epoch), T0).unwrap();
    let spec = crate::controller::CreateTopicSpec {
        name: "t".into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments,
        configs: vec![],
    };
    c.create_topic(spec, false).unwrap();
    epoch
}

fn partition_0(c: &Controller) -> crate::image::PartitionImage {
    c.image().topic("t").unwrap().partitions[&0].clone()
}

#[test]
fn fencing_takes_leadership_away_and_unfencing_gives_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1000);
    let epoch = with_topic_on_100(&c);
    let before = partition_0(&c);
    assert_eq!(before.leader, 100);

    c.broker_heartbeat(hb(100, epoch, epoch), T0 + 10).unwrap();
    let mut fenced = Vec::new();
    while let Some(id) = c.fence_stale_brokers(T0 + 1500).unwrap() {
        fenced.push(id);
    }
    assert!(fenced.contains(&100), "{fenced:?}");
    let offline = partition_0(&c);
    assert_eq!((offline.leader, offline.isr.clone()), (-1, vec![100]));
    assert_eq!(offline.leader_epoch, before.leader_epoch + 1);

    let reply = c
        .broker_heartbeat(hb(100, epoch, c.log_end_offset()), T0 + 1600)
        .unwrap();
    assert!(!reply.is_fenced);
    let back = partition_0(&c);
    assert_eq!(back.leader, 100);
    assert_eq!(back.leader_epoch, before.leader_epoch + 2);
    assert!(back.partition_epoch > offline.partition_epoch);
}

#[test]
fn controlled_shutdown_moves_leadership_then_says_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 9000);
    let epoch = with_topic_on_100(&c);
    let mut bye = hb(100, epoch, c.log_end_offset());
    bye.want_shutdown = true;
    let reply = c.broker_heartbeat(bye, T0 + 1).unwrap();
    assert!(!reply.should_shut_down, "it led a partition");
    assert!(c.image().brokers[&100].in_controlled_shutdown);
    assert_eq!(partition_0(&c).leader, -1);

    // Every other active broker (here the controller's own, broker 1) has applied past the
    // shutdown offset.
    let leo = c.log_end_offset();
    let one = c.image().brokers[&1].epoch;
    c.broker_heartbeat(hb(1, one, leo), T0 + 2).unwrap();
    bye.current_metadata_offset = leo;
    let reply = c.broker_heartbeat(bye, T0 + 2).unwrap();
    assert!(reply.should_shut_down && reply.is_fenced);
}

#[test]
fn auto_rebalance_moves_leadership_back_to_the_preferred_replica() {
    use crate::image::PARTITION_RECORD_VERSION;
    use crate::records::PartitionChangeRecord;
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 9000);
    let placed = vec![(0, vec![100, 1]), (1, vec![100, 1]), (2, vec![1, 100])];
    let epoch = with_topic(&c, placed);
    assert_eq!(c.balance_leaders(1000).unwrap(), 0, "balanced at creation");

    // Leadership of partitions 0 and 1 moved to broker 1, both replicas still in the ISR.
    let id = c.image().topic("t").unwrap().id;
    let moved = (0..2).map(|p| {
        let mut change = PartitionChangeRecord::new(PARTITION_RECORD_VERSION, id, p);
        change.leader = 1;
        MetadataRecord::PartitionChange(change)
    });
    let moved: Vec<_> = moved.collect();
    c.write(|_| Ok((moved, ()))).unwrap();
    assert_eq!(partition_0(&c).leader, 1);

    assert_eq!(
        c.balance_leaders(1).unwrap(),
        1,
        "one election per round at most"
    );
    assert_eq!(c.balance_leaders(1000).unwrap(), 1);
    assert_eq!(c.balance_leaders(1000).unwrap(), 0);
    let t = c.image().topic("t").unwrap().clone();
    let leaders: Vec<i32> = t.partitions.values().map(|p| p.leader).collect();
    assert_eq!(leaders, vec![100, 100, 1]);

    // A preferred replica that is fenced is not elected.
    let mut change = PartitionChangeRecord::new(PARTITION_RECORD_VERSION, id, 0);
    change.leader = 1;
    c.write(|_| Ok((vec![MetadataRecord::PartitionChange(change)], ())))
        .unwrap();
    let mut fence = hb(100, epoch, c.log_end_offset());
    fence.want_fence = true;
    c.broker_heartbeat(fence, T0 + 1).unwrap();
    assert_eq!(c.balance_leaders(1000).unwrap(), 0);
}
