use std::fs;
use std::path::Path;

use super::*;
use crate::batch::{data_batch, decode_batch, MetadataBatch};
use crate::format::format_dirs;
use crate::metadata_log::{MetadataLog, METADATA_PARTITION_DIR};
use crate::snapshot;
use shale_common::{ManualClock, SeededRng};
use shale_protocol::record_batch::batches;

const CLUSTER: &str = "MkU3OEVBNTcwNTJENDM2Qg";

fn opts(dir: &Path, snapshot_every: u64) -> ControllerOptions {
    ControllerOptions {
        metadata_log_dir: dir.to_path_buf(),
        node_id: 1,
        endpoints: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092,
            security_protocol: 0,
        }],
        rack: None,
        default_num_partitions: 1,
        default_replication_factor: 1,
        snapshot_every_records: snapshot_every,
    }
}

fn format(dir: &Path) {
    format_dirs(&[dir.to_path_buf()], CLUSTER, 1, &*SeededRng::new(9)).unwrap();
}

fn open_with(dir: &Path, snapshot_every: u64, tuning: MetadataLogTuning, seed: u64) -> Controller {
    Controller::open_with(
        opts(dir, snapshot_every),
        tuning,
        ManualClock::new(1_700_000_000_000),
        SeededRng::new(seed),
    )
    .unwrap()
}

fn open(dir: &Path, seed: u64) -> Controller {
    open_with(dir, 0, MetadataLogTuning::default(), seed)
}

fn spec(name: &str, partitions: i32) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: -1,
        assignments: vec![],
        configs: vec![],
    }
}

/// The image without what every start changes (broker epoch/incarnation, offsets, epoch).
fn stable(image: &MetadataImage) -> MetadataImage {
    let mut i = image.clone();
    i.last_offset = 0;
    i.epoch = 0;
    for b in i.brokers.values_mut() {
        b.epoch = 0;
        b.incarnation_id = Uuid::nil();
    }
    i
}

fn log_batches(dir: &Path) -> Vec<MetadataBatch> {
    let part = dir.join(METADATA_PARTITION_DIR);
    let mut logs: Vec<_> = fs::read_dir(&part)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.iter()
        .flat_map(|p| {
            batches(fs::read(p).unwrap().into()).map(|b| decode_batch(&b.unwrap()).unwrap())
        })
        .collect()
}

#[test]
fn fresh_open_writes_leader_change_bootstrap_and_registration() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    let img = c.image();
    assert_eq!(img.cluster_id, CLUSTER);
    assert_eq!(img.metadata_version(), 22);
    assert_eq!(img.features["group.version"], 1);
    assert_eq!(img.features["transaction.version"], 2);
    let b = &img.brokers[&1];
    assert!(!b.fenced);
    assert_eq!(b.epoch, 4);
    assert_eq!(b.endpoints[0].port, 9092);
    assert_eq!((img.last_offset, img.epoch), (4, 1));
    assert_eq!(c.epoch(), 1);
    let all = log_batches(dir.path());
    assert_eq!(all.len(), 3);
    assert!(
        matches!(&all[0], MetadataBatch::Control { base_offset: 0, epoch: 1, types, .. } if types == &[2])
    );
    assert!(matches!(
        &all[1],
        MetadataBatch::Data {
            base_offset: 1,
            last_offset: 3,
            ..
        }
    ));
    assert!(
        matches!(&all[2], MetadataBatch::Data { base_offset: 4, records, .. }
        if matches!(&records[0], MetadataRecord::RegisterBroker(r) if r.broker_epoch == 4 && r.version == 3))
    );
    let qs =
        fs::read_to_string(dir.path().join(METADATA_PARTITION_DIR).join("quorum-state")).unwrap();
    assert_eq!(
        qs,
        r#"{"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[{"voterId":1}],"data_version":0}"#
    );
    let pm = fs::read_to_string(
        dir.path()
            .join(METADATA_PARTITION_DIR)
            .join("partition.metadata"),
    )
    .unwrap();
    assert_eq!(pm, "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ");
}

#[test]
fn open_requires_a_formatted_dir_with_our_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        Controller::open(opts(dir.path(), 0), ManualClock::new(0), SeededRng::new(1)).unwrap_err();
    assert!(matches!(err, RaftError::InvalidArgument(_)), "{err}");
    format_dirs(&[dir.path().to_path_buf()], CLUSTER, 2, &*SeededRng::new(1)).unwrap();
    let err =
        Controller::open(opts(dir.path(), 0), ManualClock::new(0), SeededRng::new(1)).unwrap_err();
    assert!(
        matches!(err, RaftError::MetaPropertiesMismatch { .. }),
        "{err}"
    );
}

#[test]
fn create_topic_writes_one_atomic_batch() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    let mut s = spec("orders", 3);
    s.configs = vec![("retention.ms".into(), "1000".into())];
    let created = c.create_topic(s, false).unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (3, 1));
    assert_eq!(created.configs["retention.ms"], "1000");
    let img = c.image();
    let t = img.topic("orders").unwrap();
    assert_eq!(t.id, created.topic_id);
    assert_eq!(img.topic_by_id(&created.topic_id).unwrap().name, "orders");
    assert_eq!(t.configs["retention.ms"], "1000");
    for p in 0..3 {
        let part = &t.partitions[&p];
        assert_eq!(
            (part.leader, part.leader_epoch, part.partition_epoch),
            (1, 0, 0)
        );
        assert_eq!(
            (part.replicas.clone(), part.isr.clone()),
            (vec![1], vec![1])
        );
    }
    let all = log_batches(dir.path());
    let MetadataBatch::Data { records, .. } = all.last().unwrap() else {
        panic!("expected a data batch");
    };
    assert_eq!(records.len(), 5);
    assert!(matches!(&records[0], MetadataRecord::Topic(r) if r.name == "orders"));
    assert!(matches!(&records[1], MetadataRecord::Config(r) if r.name == "retention.ms"));
    assert!(
        matches!(&records[2], MetadataRecord::Partition(r) if r.version == 1 && r.directories.len() == 1)
    );
    // Defaults: -1 partitions -> default_num_partitions.
    let d = c.create_topic(spec("dflt", -1), false).unwrap();
    assert_eq!(d.num_partitions, 1);
}

#[test]
fn create_topic_validation_errors() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    c.create_topic(spec("a.b", 1), false).unwrap();
    let leo = c.log_end_offset();
    let e = c.create_topic(spec("a.b", 1), false).unwrap_err();
    assert!(matches!(e, ControllerError::TopicAlreadyExists(_)));
    assert_eq!(e.to_string(), "Topic 'a.b' already exists.");
    assert!(
        matches!(c.create_topic(spec("a_b", 1), false), Err(ControllerError::InvalidTopic(m)) if m.contains("collides"))
    );
    assert!(matches!(
        c.create_topic(spec("bad name", 1), false),
        Err(ControllerError::InvalidTopic(_))
    ));
    assert!(matches!(
        c.create_topic(spec("..", 1), false),
        Err(ControllerError::InvalidTopic(_))
    ));
    assert!(matches!(
        c.create_topic(spec("z", 0), false),
        Err(ControllerError::InvalidPartitions(_))
    ));
    assert!(matches!(
        c.create_topic(spec("z", -2), false),
        Err(ControllerError::InvalidPartitions(_))
    ));
    let mut s = spec("z", 1);
    s.replication_factor = 3;
    let e = c.create_topic(s, false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered."
    );
    let mut s = spec("z", 1);
    s.configs = vec![("retention.ms".into(), "abc".into())];
    assert!(
        matches!(c.create_topic(s, false), Err(ControllerError::InvalidConfig { key, .. }) if key == "retention.ms")
    );
    let mut s = spec("z", 1);
    s.configs = vec![("no.such.config".into(), "1".into())];
    assert!(matches!(
        c.create_topic(s, false),
        Err(ControllerError::InvalidConfig { .. })
    ));
    let mut s = spec("z", 2);
    s.assignments = vec![(0, vec![1])];
    assert!(matches!(
        c.create_topic(s, false),
        Err(ControllerError::InvalidRequest(_))
    ));
    let mut s = spec("z", -1);
    s.assignments = vec![(0, vec![7])];
    assert!(matches!(
        c.create_topic(s, false),
        Err(ControllerError::InvalidReplicaAssignment(_))
    ));
    let mut s = spec("z", -1);
    s.assignments = vec![(0, vec![1, 1])];
    assert!(matches!(
        c.create_topic(s, false),
        Err(ControllerError::InvalidReplicaAssignment(_))
    ));
    let mut s = spec("z", -1);
    s.assignments = vec![(1, vec![1])];
    assert!(matches!(
        c.create_topic(s, false),
        Err(ControllerError::InvalidReplicaAssignment(_))
    ));
    // Nothing was written by the failures; validate-only writes nothing either.
    assert_eq!(c.log_end_offset(), leo);
    let v = c.create_topic(spec("z", 4), true).unwrap();
    assert_eq!((v.num_partitions, v.topic_id), (4, Uuid::nil()));
    assert_eq!(c.log_end_offset(), leo);
    assert!(c.image().topic("z").is_none());
    // A manual assignment works.
    let mut s = spec("m", -1);
    s.assignments = vec![(1, vec![1]), (0, vec![1])];
    assert_eq!(c.create_topic(s, false).unwrap().num_partitions, 2);
}

#[test]
fn delete_and_grow_topics() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    let a = c.create_topic(spec("a", 1), false).unwrap();
    let b = c.create_topic(spec("b", 1), false).unwrap();
    assert_eq!(c.delete_topic("a").unwrap(), a.topic_id);
    assert!(c.image().topic("a").is_none());
    assert!(matches!(
        c.delete_topic("a"),
        Err(ControllerError::UnknownTopic(_))
    ));
    assert_eq!(c.delete_topic_by_id(&b.topic_id).unwrap(), "b");
    assert!(matches!(
        c.delete_topic_by_id(&b.topic_id),
        Err(ControllerError::UnknownTopicId(_))
    ));
    // Re-create with the same name gets a new id.
    let a2 = c.create_topic(spec("a", 2), false).unwrap();
    assert_ne!(a2.topic_id, a.topic_id);
    c.create_partitions("a", 5, true).unwrap();
    assert_eq!(c.image().topic("a").unwrap().partitions.len(), 2);
    c.create_partitions("a", 5, false).unwrap();
    let img = c.image();
    let t = img.topic("a").unwrap();
    assert_eq!(
        t.partitions.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(t.partitions[&4].leader, 1);
    let e = c.create_partitions("a", 5, false).unwrap_err();
    assert_eq!(e.to_string(), "Topic already has 5 partition(s).");
    let e = c.create_partitions("a", 3, false).unwrap_err();
    assert!(matches!(e, ControllerError::InvalidPartitions(_)));
    assert!(matches!(
        c.create_partitions("nope", 3, false),
        Err(ControllerError::UnknownTopic(_))
    ));
}

#[test]
fn incremental_and_legacy_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    c.create_topic(spec("t", 1), false).unwrap();
    let topic = ConfigResource::Topic("t".into());
    c.alter_configs(
        topic.clone(),
        vec![
            AlterConfigOp::set("retention.ms", "5"),
            AlterConfigOp::append("cleanup.policy", "compact"),
        ],
        false,
    )
    .unwrap();
    let cfg = c.image().topic("t").unwrap().configs.clone();
    assert_eq!(cfg["retention.ms"], "5");
    assert_eq!(cfg["cleanup.policy"], "delete,compact");
    c.alter_configs(
        topic.clone(),
        vec![
            AlterConfigOp::delete("retention.ms"),
            AlterConfigOp::subtract("cleanup.policy", "delete"),
        ],
        false,
    )
    .unwrap();
    let cfg = c.image().topic("t").unwrap().configs.clone();
    assert!(!cfg.contains_key("retention.ms"));
    assert_eq!(cfg["cleanup.policy"], "compact");
    // Errors and no-ops.
    let leo = c.log_end_offset();
    let bad = |ops| c.alter_configs(topic.clone(), ops, false).unwrap_err();
    assert!(matches!(
        bad(vec![AlterConfigOp::set("retention.ms", "x")]),
        ControllerError::InvalidConfig { .. }
    ));
    assert!(matches!(
        bad(vec![AlterConfigOp::append("retention.ms", "1")]),
        ControllerError::InvalidConfig { .. }
    ));
    assert!(matches!(
        bad(vec![AlterConfigOp::delete("bogus")]),
        ControllerError::InvalidConfig { .. }
    ));
    assert!(matches!(
        bad(vec![
            AlterConfigOp::delete("retention.ms"),
            AlterConfigOp::set("retention.ms", "1")
        ]),
        ControllerError::InvalidRequest(_)
    ));
    assert!(matches!(
        c.alter_configs(ConfigResource::Topic("nope".into()), vec![], false),
        Err(ControllerError::UnknownTopic(_))
    ));
    c.alter_configs(
        topic.clone(),
        vec![AlterConfigOp::set("retention.ms", "9")],
        true,
    )
    .unwrap();
    c.alter_configs(
        topic.clone(),
        vec![AlterConfigOp::set("cleanup.policy", "compact")],
        false,
    )
    .unwrap();
    assert_eq!(c.log_end_offset(), leo);
    // Legacy replace: exactly the given set remains.
    c.replace_configs(
        topic.clone(),
        vec![("segment.bytes".into(), "1048576".into())],
        false,
    )
    .unwrap();
    let cfg = c.image().topic("t").unwrap().configs.clone();
    assert_eq!(
        cfg.into_iter().collect::<Vec<_>>(),
        vec![("segment.bytes".to_string(), "1048576".to_string())]
    );
    assert!(c
        .replace_configs(topic, vec![("segment.bytes".into(), "1".into())], false)
        .is_err());
    // Broker configs: cluster default and per broker.
    c.alter_configs(
        ConfigResource::Broker(None),
        vec![AlterConfigOp::set("log.retention.ms", "7")],
        false,
    )
    .unwrap();
    c.alter_configs(
        ConfigResource::Broker(Some(1)),
        vec![AlterConfigOp::set("log.cleaner.threads", "2")],
        false,
    )
    .unwrap();
    let img = c.image();
    assert_eq!(img.broker_configs[""]["log.retention.ms"], "7");
    assert_eq!(img.broker_configs["1"]["log.cleaner.threads"], "2");
    c.alter_configs(
        ConfigResource::Broker(None),
        vec![AlterConfigOp::delete("log.retention.ms")],
        false,
    )
    .unwrap();
    assert!(!c.image().broker_configs.contains_key(""));
}

#[test]
fn producer_id_blocks_are_unique_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    assert_eq!(c.allocate_producer_ids(1, None).unwrap(), (0, 1000));
    assert_eq!(c.allocate_producer_ids(1, None).unwrap(), (1000, 1000));
    assert!(matches!(
        c.allocate_producer_ids(5, None),
        Err(ControllerError::InvalidRequest(_))
    ));
    let epoch = c.image().brokers[&1].epoch;
    assert!(matches!(
        c.allocate_producer_ids(1, Some(epoch + 1)),
        Err(ControllerError::StaleBrokerEpoch { broker_id: 1, .. })
    ));
    assert_eq!(
        c.allocate_producer_ids(1, Some(epoch)).unwrap(),
        (2000, 1000)
    );
    drop(c);
    let c = open(dir.path(), 2);
    assert_eq!(c.allocate_producer_ids(1, None).unwrap(), (3000, 1000));
}

fn populate(c: &Controller) {
    let mut s = spec("orders", 3);
    s.configs = vec![("cleanup.policy".into(), "compact".into())];
    c.create_topic(s, false).unwrap();
    c.create_topic(spec("gone", 1), false).unwrap();
    c.create_topic(spec("logs", 2), false).unwrap();
    c.delete_topic("gone").unwrap();
    c.create_partitions("logs", 4, false).unwrap();
    c.alter_configs(
        ConfigResource::Broker(None),
        vec![AlterConfigOp::set("log.retention.ms", "1")],
        false,
    )
    .unwrap();
    c.allocate_producer_ids(1, None).unwrap();
}

#[test]
fn clean_restart_restores_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    populate(&c);
    let before = c.image();
    c.shutdown().unwrap();
    assert!(matches!(
        c.create_topic(spec("late", 1), false),
        Err(ControllerError::Storage(_))
    ));
    let snap = c.latest_snapshot().unwrap();
    assert_eq!(snap.end_offset, before.last_offset + 1);
    drop(c);
    let c = open(dir.path(), 2);
    assert_eq!(c.epoch(), 2);
    let after = c.image();
    assert_eq!(stable(&after), stable(&before));
    assert!(after.brokers[&1].epoch > before.brokers[&1].epoch);
    // Bootstrap records were not written a second time.
    let features = log_batches(dir.path())
        .iter()
        .filter(|b| matches!(b, MetadataBatch::Data { records, .. } if matches!(records[0], MetadataRecord::FeatureLevel(_))))
        .count();
    assert_eq!(features, 1);
}

#[test]
fn crash_restart_keeps_committed_operations() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    populate(&c);
    let before = c.image();
    drop(c); // no shutdown: no snapshot, no clean close
    assert!(
        snapshot::list_snapshots(&dir.path().join(METADATA_PARTITION_DIR))
            .unwrap()
            .is_empty()
    );
    let c = open(dir.path(), 2);
    assert_eq!(stable(&c.image()), stable(&before));
    drop(c);
    let c = open(dir.path(), 3);
    assert_eq!(c.epoch(), 3);
    assert_eq!(stable(&c.image()), stable(&before));
}

#[test]
fn periodic_snapshots_and_tail_replay() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let tuning = MetadataLogTuning {
        segment_bytes: 1024,
    };
    let c = open_with(dir.path(), 8, tuning.clone(), 1);
    for i in 0..10 {
        c.create_topic(spec(&format!("t{i}"), 2), false).unwrap();
    }
    let snap = c.latest_snapshot().expect("a snapshot was taken");
    let part = dir.path().join(METADATA_PARTITION_DIR);
    let snaps = snapshot::list_snapshots(&part).unwrap();
    assert_eq!(snaps, vec![snap]);
    let content = snapshot::read_batch_file(&part.join(snap.file_name())).unwrap();
    // More changes after the snapshot form the tail.
    c.delete_topic("t0").unwrap();
    c.alter_configs(
        ConfigResource::Topic("t1".into()),
        vec![AlterConfigOp::set("retention.ms", "3")],
        false,
    )
    .unwrap();
    let before = c.image();
    assert!(
        matches!(&content.records[0], MetadataRecord::FeatureLevel(f) if f.name == "metadata.version")
    );
    // The snapshot alone rebuilds the image as of its end offset.
    let at_snapshot = MetadataImage::empty(CLUSTER).apply(&content.records);
    assert!(at_snapshot.topic("t0").is_some());
    drop(c);
    let c = open_with(dir.path(), 8, tuning, 2);
    assert_eq!(stable(&c.image()), stable(&before));
    assert!(c.image().topic("t0").is_none());
}

#[test]
fn snapshot_truncates_log_start() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let tuning = MetadataLogTuning {
        segment_bytes: 1024,
    };
    let c = open_with(dir.path(), 0, tuning.clone(), 1);
    for i in 0..20 {
        c.create_topic(spec(&format!("t{i}"), 1), false).unwrap();
    }
    c.snapshot().unwrap();
    let before = c.image();
    c.shutdown().unwrap();
    drop(c);
    let log = MetadataLog::open(dir.path(), 1024, ManualClock::new(0)).unwrap();
    assert!(log.log_start_offset() > 0, "old segments deleted");
    drop(log);
    let c = open_with(dir.path(), 0, tuning, 2);
    assert_eq!(stable(&c.image()), stable(&before));
}

#[test]
fn unreadable_snapshot_falls_back_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    populate(&c);
    let before = c.image();
    c.shutdown().unwrap();
    let snap = c.latest_snapshot().unwrap();
    drop(c);
    let path = dir
        .path()
        .join(METADATA_PARTITION_DIR)
        .join(snap.file_name());
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    // A leftover partial file is removed at start.
    let part = dir
        .path()
        .join(METADATA_PARTITION_DIR)
        .join("00000000000000000001-0000000001-x.checkpoint.part");
    fs::write(&part, b"junk").unwrap();
    let c = open(dir.path(), 2);
    assert_eq!(stable(&c.image()), stable(&before));
    assert!(!part.exists());
}

#[test]
fn huge_creation_is_split_into_a_metadata_transaction() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    let created = c.create_topic(spec("big", 60_000), false).unwrap();
    assert_eq!(created.num_partitions, 60_000);
    assert_eq!(c.image().topic("big").unwrap().partitions.len(), 60_000);
    let all = log_batches(dir.path());
    let data: Vec<_> = all
        .iter()
        .filter_map(|b| match b {
            MetadataBatch::Data { records, .. } => Some(records),
            _ => None,
        })
        .collect();
    let n = data.len();
    assert!(n >= 4, "split into several batches");
    assert!(matches!(
        data[n - 2][0],
        MetadataRecord::BeginTransaction { .. }
    ));
    assert!(matches!(
        data[n - 1].last(),
        Some(MetadataRecord::EndTransaction)
    ));
    drop(c);
    let c = open(dir.path(), 2);
    assert_eq!(c.image().topic("big").unwrap().partitions.len(), 60_000);
}

#[test]
fn unfinished_transaction_is_aborted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    let c = open(dir.path(), 1);
    c.create_topic(spec("kept", 1), false).unwrap();
    drop(c);
    // A previous leader crashed in the middle of a metadata transaction.
    let log = MetadataLog::open(dir.path(), 1 << 30, ManualClock::new(0)).unwrap();
    let leo = log.log_end_offset();
    let half = vec![
        MetadataRecord::BeginTransaction { name: None },
        MetadataRecord::Topic(crate::records::TopicRecord {
            name: "half".into(),
            topic_id: Uuid::from_u128(77),
        }),
    ];
    log.append(data_batch(leo, 1, 0, &half).unwrap()).unwrap();
    log.flush().unwrap();
    log.close().unwrap();
    drop(log);
    let c = open(dir.path(), 2);
    let img = c.image();
    assert!(img.topic("half").is_none());
    assert!(img.topic("kept").is_some());
    let aborts = log_batches(dir.path())
        .iter()
        .filter(|b| {
            matches!(b, MetadataBatch::Data { records, .. }
            if matches!(records[0], MetadataRecord::AbortTransaction { .. }))
        })
        .count();
    assert_eq!(aborts, 1);
    // Later writes work normally.
    c.create_topic(spec("after", 1), false).unwrap();
    assert!(c.image().topic("after").is_some());
}

#[test]
fn lost_quorum_state_does_not_reuse_epochs() {
    let dir = tempfile::tempdir().unwrap();
    format(dir.path());
    drop(open(dir.path(), 1));
    drop(open(dir.path(), 2));
    let c = open(dir.path(), 3);
    assert_eq!(c.epoch(), 3);
    drop(c);
    fs::remove_file(dir.path().join(METADATA_PARTITION_DIR).join("quorum-state")).unwrap();
    let c = open(dir.path(), 4);
    assert_eq!(c.epoch(), 4);
    let epochs: Vec<i32> = log_batches(dir.path()).iter().map(|b| b.epoch()).collect();
    assert!(epochs.windows(2).all(|w| w[0] <= w[1]), "{epochs:?}");
}
