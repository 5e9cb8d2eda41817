use super::*;
use crate::records::{BrokerIdEpoch, UnregisterBrokerRecord};

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn broker(id_: i32, epoch: i64) -> MetadataRecord {
    MetadataRecord::RegisterBroker(
        BrokerRegistration {
            id: id_,
            epoch,
            incarnation_id: id(100 + id_ as u128),
            endpoints: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "localhost".into(),
                port: 9092,
                security_protocol: 0,
            }],
            rack: None,
            fenced: true,
            in_controlled_shutdown: false,
        }
        .to_record(),
    )
}

fn topic(name: &str, tid: u128, partitions: i32) -> Vec<MetadataRecord> {
    let mut v = vec![MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: id(tid),
    })];
    for p in 0..partitions {
        v.push(MetadataRecord::Partition(
            PartitionImage {
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                ..Default::default()
            }
            .to_record(id(tid), p),
        ));
    }
    v
}

fn config(rt: i8, res: &str, k: &str, v: Option<&str>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: rt,
        resource_name: res.into(),
        name: k.into(),
        value: v.map(str::to_owned),
    })
}

fn feature(name: &str, level: i16) -> MetadataRecord {
    MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: name.into(),
        feature_level: level,
    })
}

#[test]
fn replay_builds_topics_brokers_configs_features() {
    let mut recs = vec![feature("metadata.version", 22), feature("group.version", 1)];
    recs.push(broker(1, 5));
    recs.push(MetadataRecord::UnfenceBroker(BrokerIdEpoch {
        id: 1,
        epoch: 5,
    }));
    recs.extend(topic("a", 1, 2));
    recs.push(config(
        CONFIG_RESOURCE_TOPIC,
        "a",
        "retention.ms",
        Some("100"),
    ));
    recs.extend(topic("b", 2, 1));
    recs.push(config(
        CONFIG_RESOURCE_BROKER,
        "",
        "log.retention.ms",
        Some("5"),
    ));
    recs.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
        broker_id: 1,
        broker_epoch: 5,
        next_producer_id: 1000,
    }));
    let img = MetadataImage::empty("c1").apply(&recs);
    assert_eq!(img.metadata_version(), 22);
    assert_eq!(img.features.len(), 2);
    assert!(!img.brokers[&1].fenced);
    assert_eq!(img.topics.len(), 2);
    let a = img.topic("a").unwrap();
    assert_eq!(a.partitions.len(), 2);
    assert_eq!(a.configs["retention.ms"], "100");
    assert_eq!(img.topic_by_id(&id(2)).unwrap().name, "b");
    assert_eq!(img.broker_configs[""]["log.retention.ms"], "5");
    assert_eq!(img.next_producer_id, 1000);
    assert_eq!(img.last_offset, -1);

    // Delete "a", drop the broker default, change b's leader.
    let mut change = PartitionChangeRecord::new(1, id(2), 0);
    change.leader = -1;
    change.isr = Some(vec![]);
    let img2 = img.apply(&[
        MetadataRecord::RemoveTopic { topic_id: id(1) },
        config(CONFIG_RESOURCE_BROKER, "", "log.retention.ms", None),
        MetadataRecord::PartitionChange(change),
        MetadataRecord::FenceBroker(BrokerIdEpoch { id: 1, epoch: 5 }),
    ]);
    assert!(img2.topic("a").is_none());
    assert!(img2.topic_by_id(&id(1)).is_none());
    assert!(img2.broker_configs.is_empty());
    let p = &img2.topic("b").unwrap().partitions[&0];
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (-1, 1, 1));
    assert!(p.isr.is_empty());
    assert!(img2.brokers[&1].fenced);
    // The old image is untouched.
    assert!(img.topic("a").is_some());
    assert_eq!(img.topic("b").unwrap().partitions[&0].leader, 1);
    // Stale-epoch unregister does nothing, matching epoch removes.
    let img3 = img2.apply(&[MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
        broker_id: 1,
        broker_epoch: 4,
    })]);
    assert!(img3.brokers.contains_key(&1));
    let img4 = img3.apply(&[MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
        broker_id: 1,
        broker_epoch: 5,
    })]);
    assert!(img4.brokers.is_empty());
}

#[test]
fn to_records_rebuilds_the_same_image() {
    let mut recs = vec![feature("group.version", 1), feature("metadata.version", 22)];
    recs.push(broker(1, 3));
    recs.extend(topic("x", 7, 3));
    recs.push(config(
        CONFIG_RESOURCE_TOPIC,
        "x",
        "cleanup.policy",
        Some("compact"),
    ));
    recs.push(config(
        CONFIG_RESOURCE_BROKER,
        "1",
        "log.cleaner.threads",
        Some("2"),
    ));
    recs.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
        broker_id: 1,
        broker_epoch: 3,
        next_producer_id: 3000,
    }));
    let scram = |name: &str, mechanism| {
        MetadataRecord::UserScramCredential(UserScramCredentialRecord {
            name: name.into(),
            mechanism,
            salt: vec![1],
            stored_key: vec![2],
            server_key: vec![3],
            iterations: 4096,
        })
    };
    recs.extend([scram("alice", 1), scram("alice", 2), scram("bob", 1)]);
    recs.push(MetadataRecord::RemoveUserScramCredential {
        name: "alice".into(),
        mechanism: 2,
    });
    let acl = |n: u128| {
        MetadataRecord::AccessControlEntry(AccessControlEntryRecord {
            id: Uuid::from_u128(n),
            resource_type: 2,
            resource_name: "x".into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission_type: 3,
        })
    };
    recs.extend([acl(1), acl(2)]);
    recs.push(MetadataRecord::RemoveAccessControlEntry {
        id: Uuid::from_u128(1),
    });
    let img = MetadataImage::empty("c").apply(&recs);
    assert_eq!(img.acls.len(), 1);
    assert_eq!(img.scram.len(), 2);
    assert!(img.scram.contains_key(&("alice".to_string(), 1)));
    let snap = img.to_records();
    assert_eq!(snap[0], feature("metadata.version", 22));
    assert_eq!(snap[1], feature("group.version", 1));
    let rebuilt = MetadataImage::empty("c").apply(&snap);
    assert_eq!(rebuilt, img);
}

#[test]
fn transactions_apply_atomically() {
    let mut loader = MetadataLoader::new(MetadataImage::empty("c"));
    loader.apply_batch(0, 1, &[feature("metadata.version", 22)]);
    let mut first = vec![MetadataRecord::BeginTransaction { name: None }];
    first.extend(topic("t", 1, 1));
    loader.apply_batch(3, 1, &first);
    assert!(loader.in_transaction());
    assert!(loader.image().topic("t").is_none());
    assert_eq!(loader.image().last_offset, 0);
    loader.apply_batch(4, 2, &[MetadataRecord::EndTransaction]);
    assert!(!loader.in_transaction());
    let img = loader.image();
    assert!(img.topic("t").is_some());
    assert_eq!((img.last_offset, img.epoch), (4, 2));

    // Aborted transaction leaves no trace.
    let mut second = vec![MetadataRecord::BeginTransaction { name: None }];
    second.extend(topic("u", 2, 1));
    second.push(MetadataRecord::AbortTransaction { reason: None });
    loader.apply_batch(8, 2, &second);
    assert!(loader.image().topic("u").is_none());
    assert_eq!(loader.image().last_offset, 8);

    // MetadataImage::apply drops an unterminated transaction's records.
    let mut third = topic("v", 3, 1);
    third.push(MetadataRecord::BeginTransaction { name: None });
    third.extend(topic("w", 4, 1));
    let img = MetadataImage::empty("c").apply(&third);
    assert!(img.topic("v").is_some());
    assert!(img.topic("w").is_none());
}

#[test]
fn feature_level_zero_removes_feature() {
    let img = MetadataImage::empty("c").apply(&[feature("group.version", 1)]);
    let img = img.apply(&[feature("group.version", 0)]);
    assert!(img.features.is_empty());
}
