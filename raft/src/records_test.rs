use super::*;

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn round_trip(rec: MetadataRecord) -> Bytes {
    let bytes = rec.encode();
    let back = MetadataRecord::decode(&bytes).unwrap_or_else(|e| panic!("{rec:?}: {e}"));
    assert_eq!(back, rec);
    bytes
}

#[test]
fn feature_level_record_matches_kafka_bytes() {
    let rec = MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: "metadata.version".into(),
        feature_level: 22,
    });
    let mut expected = vec![0x01, 0x0C, 0x00, 0x11];
    expected.extend_from_slice(b"metadata.version");
    expected.extend_from_slice(&[0x00, 0x16, 0x00]);
    assert_eq!(expected.len(), 23);
    assert_eq!(&round_trip(rec)[..], &expected[..]);
}

#[test]
fn noop_record_is_four_bytes() {
    assert_eq!(
        &round_trip(MetadataRecord::NoOp)[..],
        &[0x01, 0x14, 0x00, 0x00]
    );
}

#[test]
fn topic_record_bytes() {
    let rec = MetadataRecord::Topic(TopicRecord {
        name: "t".into(),
        topic_id: uuid(1),
    });
    let mut expected = vec![0x01, 0x02, 0x00, 0x02, b't'];
    expected.extend_from_slice(&[0; 15]);
    expected.extend_from_slice(&[1, 0]);
    assert_eq!(&round_trip(rec)[..], &expected[..]);
}

#[test]
fn config_record_null_value_bytes() {
    let rec = MetadataRecord::Config(ConfigRecord {
        resource_type: CONFIG_RESOURCE_TOPIC,
        resource_name: "t".into(),
        name: "k".into(),
        value: None,
    });
    assert_eq!(
        &round_trip(rec)[..],
        &[0x01, 0x04, 0x00, 0x02, 0x02, b't', 0x02, b'k', 0x00, 0x00]
    );
}

fn partition(version: i16) -> PartitionRecord {
    PartitionRecord {
        version,
        partition_id: 3,
        topic_id: uuid(0xabcdef),
        replicas: vec![1, 2],
        isr: vec![1],
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader: 1,
        leader_recovery_state: 0,
        leader_epoch: 4,
        partition_epoch: 5,
        directories: if version >= 1 {
            vec![uuid(0), uuid(7)]
        } else {
            vec![]
        },
        eligible_leader_replicas: None,
        last_known_elr: None,
    }
}

#[test]
fn partition_record_v1_layout() {
    let bytes = round_trip(MetadataRecord::Partition(partition(1)));
    let mut expected = vec![0x01, 0x03, 0x01, 0, 0, 0, 3];
    expected.extend_from_slice(uuid(0xabcdef).as_bytes());
    expected.extend_from_slice(&[3, 0, 0, 0, 1, 0, 0, 0, 2]); // replicas
    expected.extend_from_slice(&[2, 0, 0, 0, 1]); // isr
    expected.extend_from_slice(&[1, 1]); // removing, adding
    expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 5]);
    expected.push(3);
    expected.extend_from_slice(uuid(0).as_bytes());
    expected.extend_from_slice(uuid(7).as_bytes());
    expected.push(0);
    assert_eq!(&bytes[..], &expected[..]);
}

#[test]
fn partition_record_all_versions_round_trip() {
    for v in 0..=2 {
        round_trip(MetadataRecord::Partition(partition(v)));
    }
    let mut p = partition(2);
    p.leader_recovery_state = 1;
    p.eligible_leader_replicas = Some(vec![2]);
    p.last_known_elr = Some(vec![]);
    let bytes = round_trip(MetadataRecord::Partition(p));
    // Tag section: 3 tags: (0, 1 byte), (1, array of one), (2, empty array).
    assert_eq!(
        &bytes[bytes.len() - 14..],
        &[3, 0, 1, 1, 1, 5, 2, 0, 0, 0, 2, 2, 1, 1]
    );
}

#[test]
fn partition_record_v0_accepts_null_adding_removing() {
    let good = MetadataRecord::Partition(partition(0)).encode();
    let mut bytes = good.to_vec();
    // Offsets: frame(3) + id(4) + uuid(16) + replicas(9) + isr(5) = 37 => removing at 37.
    bytes[37] = 0;
    bytes[38] = 0;
    let rec = MetadataRecord::decode(&bytes).unwrap();
    assert_eq!(rec, MetadataRecord::Partition(partition(0)));
}

#[test]
fn partition_change_record_round_trips() {
    for v in 0..=2 {
        let mut r = PartitionChangeRecord::new(v, uuid(9), 0);
        round_trip(MetadataRecord::PartitionChange(r.clone()));
        r.isr = Some(vec![1, 2]);
        r.leader = -1;
        r.replicas = Some(vec![1, 2, 3]);
        r.removing_replicas = Some(vec![3]);
        r.adding_replicas = Some(vec![]);
        r.leader_recovery_state = 0;
        if v >= 1 {
            r.directories = Some(vec![uuid(1), uuid(2), uuid(3)]);
        }
        if v >= 2 {
            r.eligible_leader_replicas = Some(vec![2]);
            r.last_known_elr = Some(vec![]);
        }
        round_trip(MetadataRecord::PartitionChange(r));
    }
    // Leader-only change: ids then one tag (1, 4 bytes).
    let mut r = PartitionChangeRecord::new(1, uuid(9), 2);
    r.leader = 5;
    let bytes = round_trip(MetadataRecord::PartitionChange(r));
    assert_eq!(&bytes[bytes.len() - 7..], &[1, 1, 4, 0, 0, 0, 5]);
}

fn register(version: i16) -> RegisterBrokerRecord {
    RegisterBrokerRecord {
        version,
        broker_id: 1,
        is_migrating_zk_broker: false,
        incarnation_id: uuid(42),
        broker_epoch: 7,
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092,
            security_protocol: 0,
        }],
        features: vec![BrokerFeature {
            name: "metadata.version".into(),
            min_supported_version: 7,
            max_supported_version: 22,
        }],
        rack: None,
        fenced: false,
        in_controlled_shutdown: false,
        log_dirs: if version >= 3 { vec![uuid(5)] } else { vec![] },
    }
}

#[test]
fn register_broker_all_versions_round_trip() {
    for v in 0..=3 {
        round_trip(MetadataRecord::RegisterBroker(register(v)));
    }
    let mut r = register(3);
    r.rack = Some("r1".into());
    r.is_migrating_zk_broker = true;
    r.in_controlled_shutdown = true;
    round_trip(MetadataRecord::RegisterBroker(r));
}

#[test]
fn register_broker_v3_tail_has_log_dirs_tag() {
    let bytes = round_trip(MetadataRecord::RegisterBroker(register(3)));
    // rack null, fenced false, in_controlled_shutdown false, 1 tag: (0, 17 bytes, array of 1 uuid)
    let tail = &bytes[bytes.len() - 23..];
    assert_eq!(&tail[..6], &[0, 0, 0, 1, 0, 17]);
    assert_eq!(tail[6], 2);
    assert_eq!(&tail[7..], uuid(5).as_bytes());
}

#[test]
fn every_other_record_round_trips() {
    let recs = vec![
        MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
            broker_id: 3,
            broker_epoch: 99,
        }),
        MetadataRecord::Config(ConfigRecord {
            resource_type: CONFIG_RESOURCE_BROKER,
            resource_name: "".into(),
            name: "log.retention.ms".into(),
            value: Some("1000".into()),
        }),
        MetadataRecord::FenceBroker(BrokerIdEpoch { id: 1, epoch: 2 }),
        MetadataRecord::UnfenceBroker(BrokerIdEpoch { id: 1, epoch: 2 }),
        MetadataRecord::RemoveTopic { topic_id: uuid(77) },
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 5,
            next_producer_id: 2000,
        }),
        MetadataRecord::ZkMigrationState { state: 0 },
        MetadataRecord::BeginTransaction { name: None },
        MetadataRecord::BeginTransaction {
            name: Some("txn".into()),
        },
        MetadataRecord::EndTransaction,
        MetadataRecord::AbortTransaction {
            reason: Some("why".into()),
        },
        MetadataRecord::AbortTransaction { reason: None },
    ];
    for r in recs {
        round_trip(r);
    }
    for v in 0..=2 {
        round_trip(MetadataRecord::BrokerRegistrationChange(
            BrokerRegistrationChangeRecord {
                version: v,
                broker_id: 1,
                broker_epoch: 3,
                fenced: -1,
                in_controlled_shutdown: if v >= 1 { 1 } else { 0 },
                log_dirs: if v >= 2 { vec![uuid(3)] } else { vec![] },
            },
        ));
    }
}

#[test]
fn begin_transaction_bytes() {
    let b = MetadataRecord::BeginTransaction {
        name: Some("x".into()),
    }
    .encode();
    assert_eq!(&b[..], &[0x01, 23, 0, 1, 0, 2, 2, b'x']);
    assert_eq!(
        &MetadataRecord::EndTransaction.encode()[..],
        &[0x01, 24, 0, 0]
    );
}

#[test]
fn decode_rejects_bad_input() {
    // Unknown api key.
    assert!(matches!(
        MetadataRecord::decode(&[0x01, 0x63, 0x00, 0x00]),
        Err(RaftError::UnknownRecordType { api_key: 0x63 })
    ));
    // Frame version 0.
    assert!(matches!(
        MetadataRecord::decode(&[0x00, 0x14, 0x00, 0x00]),
        Err(RaftError::Decode(_))
    ));
    // Unsupported version.
    assert!(matches!(
        MetadataRecord::decode(&[0x01, 0x14, 0x01, 0x00]),
        Err(RaftError::UnsupportedVersion { .. })
    ));
    // Trailing bytes.
    assert!(MetadataRecord::decode(&[0x01, 0x14, 0x00, 0x00, 0x00]).is_err());
    // Truncated at every length.
    let full = MetadataRecord::RegisterBroker(register(3)).encode();
    for n in 0..full.len() {
        assert!(MetadataRecord::decode(&full[..n]).is_err(), "prefix {n}");
    }
    // Huge array count.
    assert!(
        MetadataRecord::decode(&[0x01, 0x03, 0x00, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x0f]).is_err()
    );
}

#[test]
fn unknown_tags_are_skipped() {
    // NoOp with an unknown tag 5 of 2 bytes.
    let rec = MetadataRecord::decode(&[0x01, 0x14, 0x00, 0x01, 0x05, 0x02, 0xaa, 0xbb]).unwrap();
    assert_eq!(rec, MetadataRecord::NoOp);
    // Out-of-order tags are rejected.
    assert!(MetadataRecord::decode(&[0x01, 0x14, 0x00, 0x02, 5, 0, 4, 0]).is_err());
}

#[test]
fn scram_credential_records_bytes() {
    let rec = MetadataRecord::UserScramCredential(UserScramCredentialRecord {
        name: "alice".into(),
        mechanism: 1,
        salt: vec![1, 2],
        stored_key: vec![3],
        server_key: vec![4],
        iterations: 4096,
    });
    // frame version 1, api key 11, version 0; compact string, i8, three compact bytes, i32, tags.
    let mut expected = vec![0x01, 0x0B, 0x00, 0x06];
    expected.extend_from_slice(b"alice");
    expected.extend_from_slice(&[1, 0x03, 1, 2, 0x02, 3, 0x02, 4, 0, 0, 0x10, 0, 0]);
    assert_eq!(&round_trip(rec)[..], &expected[..]);
    let remove = MetadataRecord::RemoveUserScramCredential {
        name: "alice".into(),
        mechanism: 2,
    };
    let mut expected = vec![0x01, 0x16, 0x00, 0x06];
    expected.extend_from_slice(b"alice");
    expected.extend_from_slice(&[2, 0]);
    assert_eq!(&round_trip(remove)[..], &expected[..]);
}

#[test]
fn acl_records_bytes() {
    let rec = MetadataRecord::AccessControlEntry(AccessControlEntryRecord {
        id: uuid(1),
        resource_type: 2,
        resource_name: "t".into(),
        pattern_type: 3,
        principal: "User:a".into(),
        host: "*".into(),
        operation: 3,
        permission_type: 3,
    });
    // frame 1, api key 18, version 0; uuid, i8, string, i8, string, string, i8, i8, tags.
    let mut expected = vec![0x01, 0x12, 0x00];
    expected.extend_from_slice(&[0; 15]);
    expected.extend_from_slice(&[1, 2, 0x02, b't', 3, 0x07]);
    expected.extend_from_slice(b"User:a");
    expected.extend_from_slice(&[0x02, b'*', 3, 3, 0]);
    assert_eq!(&round_trip(rec)[..], &expected[..]);
    let remove = MetadataRecord::RemoveAccessControlEntry { id: uuid(1) };
    let mut expected = vec![0x01, 0x13, 0x00];
    expected.extend_from_slice(&[0; 15]);
    expected.extend_from_slice(&[1, 0]);
    assert_eq!(&round_trip(remove)[..], &expected[..]);
}

#[test]
fn client_quota_record_bytes() {
    let rec = MetadataRecord::ClientQuota(ClientQuotaRecord {
        entity: vec![
            ("user".into(), Some("a".into())),
            ("client-id".into(), None),
        ],
        key: "producer_byte_rate".into(),
        value: 1024.0,
        remove: false,
    });
    // frame 1, api key 14, version 0; entity array (2 entries + 1), each type, name, tags; key;
    // float64 1024.0 = 0x4090000000000000; remove; tags.
    let mut expected = vec![0x01, 0x0e, 0x00, 0x03, 0x05];
    expected.extend_from_slice(b"user");
    expected.extend_from_slice(&[0x02, b'a', 0, 0x0a]);
    expected.extend_from_slice(b"client-id");
    expected.extend_from_slice(&[0x00, 0, 0x13]);
    expected.extend_from_slice(b"producer_byte_rate");
    expected.extend_from_slice(&[0x40, 0x90, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&round_trip(rec)[..], &expected[..]);
}
