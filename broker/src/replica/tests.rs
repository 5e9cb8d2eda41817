//! The replica manager driven by crafted metadata images: broker 1's view of partitions whose
//! leadership and replica sets move between brokers 1 and 2.

use super::*;
use crate::topic_metrics::TopicMetrics;
use bytes::Bytes;
use shale_common::ManualClock;
use shale_local_log::{AppendOrigin, LogManagerOptions};
use shale_protocol::record::BatchBuilder;
use shale_raft::PartitionImage;
use std::collections::BTreeMap;
use uuid::Uuid;

const ME: i32 = 1;

struct Fixture {
    _dir: tempfile::TempDir,
    rm: ReplicaManager,
}

pub(super) fn metrics() -> HostedMetrics {
    HostedMetrics {
        topics: Arc::new(TopicMetrics::new(10)),
        leaders: IntGauge::new("leaders", "leaders").unwrap(),
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let logs = LogManager::open(
        LogManagerOptions {
            log_dirs: vec![dir.path().to_path_buf()],
            default_config: LogConfig::default(),
            open_files_max: Some(1000),
        },
        ManualClock::new(1_000),
        &|_| None,
    )
    .unwrap();
    Fixture {
        _dir: dir,
        rm: ReplicaManager::new(ME, logs, LogConfig::default(), metrics()),
    }
}

/// An image with one topic `t` (id `id`) whose partition 0 has `replicas`, `leader` and epochs.
fn image(id: Uuid, replicas: &[i32], leader: i32, leader_epoch: i32, pe: i32) -> MetadataImage {
    let mut img = MetadataImage::empty("c");
    let part = PartitionImage {
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader,
        leader_epoch,
        partition_epoch: pe,
        ..Default::default()
    };
    let topic = TopicImage {
        name: "t".into(),
        id,
        partitions: BTreeMap::from([(0, part)]),
        configs: BTreeMap::new(),
    };
    img.topics.insert("t".into(), Arc::new(topic));
    img.topic_names_by_id.insert(id, "t".into());
    img
}

fn apply(rm: &ReplicaManager, img: MetadataImage) {
    rm.apply(Arc::new(img)).unwrap();
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn produce(p: &Partition, n: usize) {
    for i in 0..n {
        let mut b = BatchBuilder::new(1_000);
        b.push(1_000, None, Some(Bytes::from(format!("v{i}"))), vec![]);
        let batch = b.build().unwrap().into_bytes();
        let origin = AppendOrigin::Client {
            leader_epoch: p.leader_epoch(),
            verification: None,
        };
        p.log.append(batch, origin).unwrap();
    }
}

#[test]
fn a_partition_led_elsewhere_is_hosted_as_a_follower_of_that_leader() {
    let f = fixture();
    apply(&f.rm, image(Uuid::new_v4(), &[2, 1], 2, 4, 7));
    let p = f.rm.get(&tp()).expect("a replica here gets a local log");
    assert_eq!(
        p.role(),
        Role::Follower(FollowerState {
            leader_id: 2,
            leader_epoch: 4
        })
    );
    assert_eq!(p.partition_epoch(), 7);
    let refused = f.rm.get_leader(&tp()).unwrap_err();
    assert_eq!(
        refused,
        ReplicaError::NotLeader {
            leader_id: 2,
            leader_epoch: 4
        }
    );
    assert!(f.rm.leaders().is_empty());
}

#[test]
fn losing_and_regaining_leadership_keeps_the_log_and_its_data() {
    let f = fixture();
    let id = Uuid::new_v4();
    apply(&f.rm, image(id, &[1, 2], 1, 0, 0));
    let led = f.rm.get_leader(&tp()).unwrap();
    produce(&led, 3);
    apply(&f.rm, image(id, &[1, 2], 2, 1, 1));
    let follower = f.rm.get(&tp()).unwrap();
    assert!(!follower.is_leader());
    assert_eq!(
        follower.log.log_end_offset(),
        3,
        "leadership moved: data stays"
    );
    assert!(
        Arc::ptr_eq(&led.log, &follower.log),
        "the same log, not a new one"
    );
    assert!(matches!(
        f.rm.get_leader(&tp()),
        Err(ReplicaError::NotLeader { leader_id: 2, .. })
    ));
    apply(&f.rm, image(id, &[1, 2], 1, 2, 2));
    let again = f.rm.get_leader(&tp()).expect("serves again as leader");
    assert_eq!(again.leader_epoch(), 2);
    assert_eq!(again.log.log_end_offset(), 3);
    produce(&again, 1);
    assert_eq!(again.log.log_end_offset(), 4);
}

#[test]
fn an_image_older_than_the_partition_epoch_is_ignored() {
    let f = fixture();
    let id = Uuid::new_v4();
    apply(&f.rm, image(id, &[1, 2], 1, 5, 9));
    apply(&f.rm, image(id, &[1, 2], 2, 4, 8));
    assert_eq!(
        f.rm.get(&tp()).unwrap().role(),
        Role::Leader { leader_epoch: 5 }
    );
}

#[test]
fn a_role_change_wakes_waiting_requests() {
    let f = fixture();
    let id = Uuid::new_v4();
    apply(&f.rm, image(id, &[1, 2], 1, 0, 0));
    let p = f.rm.get(&tp()).unwrap();
    let mut waiter = crate::purgatory::Waiter::new();
    waiter.watch(p.progress());
    waiter.mark_seen();
    apply(&f.rm, image(id, &[1, 2], 2, 1, 1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let now = tokio::time::Instant::now();
    assert!(
        rt.block_on(waiter.wait_until(now)),
        "a waiter re-checks the role though no record was appended"
    );
}

#[test]
fn leaving_the_replica_set_deletes_the_local_log() {
    let f = fixture();
    let id = Uuid::new_v4();
    apply(&f.rm, image(id, &[1, 2], 1, 0, 0));
    produce(&f.rm.get(&tp()).unwrap(), 2);
    apply(&f.rm, image(id, &[2, 3], 2, 1, 1));
    assert!(f.rm.get(&tp()).is_none());
    assert!(f.rm.logs().get(&tp()).is_none(), "the log is deleted");
    assert!(matches!(
        f.rm.get_leader(&tp()),
        Err(ReplicaError::NotLeader { leader_id: 2, .. })
    ));
}

#[test]
fn deleting_the_topic_deletes_the_log() {
    let f = fixture();
    apply(&f.rm, image(Uuid::new_v4(), &[1], 1, 0, 0));
    let p = f.rm.get(&tp()).unwrap();
    produce(&p, 1);
    apply(&f.rm, MetadataImage::empty("c"));
    assert!(f.rm.get(&tp()).is_none());
    assert!(f.rm.logs().get(&tp()).is_none());
    assert!(
        p.progress().current().closed,
        "waiters on a deleted partition are released"
    );
    assert_eq!(f.rm.get_leader(&tp()).unwrap_err(), ReplicaError::Unknown);
}

#[test]
fn a_topic_recreated_under_a_new_id_gets_a_fresh_log() {
    let f = fixture();
    apply(&f.rm, image(Uuid::new_v4(), &[1], 1, 0, 0));
    produce(&f.rm.get(&tp()).unwrap(), 5);
    let new_id = Uuid::new_v4();
    apply(&f.rm, image(new_id, &[1], 1, 0, 0));
    let p = f.rm.get_leader(&tp()).unwrap();
    assert_eq!(p.topic_id, new_id);
    assert_eq!(
        p.log.log_end_offset(),
        0,
        "the old topic's records are gone"
    );
}

#[test]
fn the_delta_names_why_each_partition_goes() {
    let id = Uuid::new_v4();
    let hosted = HashMap::from([(tp(), id)]);
    let reason = |img: &MetadataImage| delta::local_changes(img, &hosted, ME).deletes;
    assert_eq!(
        reason(&MetadataImage::empty("c")),
        vec![(tp(), DeleteReason::TopicDeleted)]
    );
    let recreated = image(Uuid::new_v4(), &[1], 1, 0, 0);
    assert_eq!(
        reason(&recreated),
        vec![(tp(), DeleteReason::TopicRecreated)]
    );
    let away = image(id, &[2], 2, 0, 0);
    assert_eq!(reason(&away), vec![(tp(), DeleteReason::ReassignedAway)]);
    let moved = image(id, &[2, 1], 2, 1, 1);
    assert!(
        reason(&moved).is_empty(),
        "a leadership change deletes nothing"
    );
}

#[test]
fn an_image_older_than_the_applied_one_is_ignored() {
    let f = fixture();
    let mut newer = image(Uuid::new_v4(), &[1], 1, 0, 0);
    newer.last_offset = 10;
    apply(&f.rm, newer);
    let mut older = MetadataImage::empty("c");
    older.last_offset = 9;
    apply(&f.rm, older);
    assert!(
        f.rm.get_leader(&tp()).is_ok(),
        "a slower caller's image deletes nothing"
    );
}

#[test]
fn metrics_follow_the_hosted_partitions() {
    let f = fixture();
    let id = Uuid::new_v4();
    apply(&f.rm, image(id, &[1, 2], 1, 0, 0));
    assert_eq!(f.rm.metrics.leaders.get(), 1);
    assert!(f.rm.metrics.topics.topic("t").is_some());
    apply(&f.rm, image(id, &[1, 2], 2, 1, 1));
    assert_eq!(f.rm.metrics.leaders.get(), 0);
    assert!(
        f.rm.metrics.topics.topic("t").is_some(),
        "a follower's topic is still hosted"
    );
    apply(&f.rm, MetadataImage::empty("c"));
    assert!(f.rm.metrics.topics.topic("t").is_none());
}
