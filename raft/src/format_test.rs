use super::*;
use shale_common::SeededRng;
use shale_protocol::record_batch::batches;

#[test]
fn random_uuids_are_valid_kafka_ids() {
    let rng = SeededRng::new(7);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..500 {
        let s = random_uuid(&*rng);
        assert_eq!(s.len(), 22);
        assert!(!s.starts_with('-'));
        let id = kafka_uuid::decode(&s).unwrap();
        assert_eq!(id.get_version_num(), 4);
        assert!(seen.insert(s));
    }
    // Same seed, same ids.
    assert_eq!(
        random_uuid(&*SeededRng::new(1)),
        random_uuid(&*SeededRng::new(1))
    );
}

#[test]
fn format_writes_meta_properties_and_bootstrap() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("a"), root.path().join("b")];
    let rng = SeededRng::new(3);
    let cluster = random_uuid(&*rng);
    format_dirs(&dirs, &cluster, 1, &*rng).unwrap();
    let mut dir_ids = Vec::new();
    for d in &dirs {
        let meta = MetaProperties::read(d).unwrap().unwrap();
        assert_eq!(meta.cluster_id, cluster);
        assert_eq!(meta.node_id, 1);
        assert!(kafka_uuid::decode(&meta.directory_id).is_some());
        dir_ids.push(meta.directory_id);
        let text = fs::read_to_string(d.join("meta.properties")).unwrap();
        assert!(text.contains("version=1\n"));
        // bootstrap.checkpoint: header at 0, data at 1..=3, footer at 4, epoch 0.
        let bytes = fs::read(d.join(BOOTSTRAP_FILE)).unwrap();
        let all: Vec<_> = batches(bytes.into()).map(|b| b.unwrap()).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(
            all.iter()
                .map(|b| (b.base_offset(), b.is_control(), b.partition_leader_epoch()))
                .collect::<Vec<_>>(),
            vec![(0, true, 0), (1, false, 0), (4, true, 0)]
        );
        assert_eq!(bootstrap_records(d).unwrap(), default_bootstrap_records());
        assert!(!d.join(format!("{BOOTSTRAP_FILE}.tmp")).exists());
    }
    assert_ne!(dir_ids[0], dir_ids[1]);
    // The first data record is FeatureLevelRecord(metadata.version, 22), byte-exact.
    let first = default_bootstrap_records()[0].encode();
    assert_eq!(&first[..4], &[0x01, 0x0C, 0x00, 0x11]);
    // Refuses to format again, and touches nothing.
    let err = format_dirs(&dirs, &cluster, 1, &*rng).unwrap_err();
    assert!(matches!(err, RaftError::AlreadyFormatted { .. }), "{err}");
    assert!(err.to_string().contains("already formatted"));
}

#[test]
fn format_rejects_bad_arguments() {
    let root = tempfile::tempdir().unwrap();
    let rng = SeededRng::new(3);
    let dirs = vec![root.path().join("a")];
    assert!(matches!(
        format_dirs(&dirs, "not-a-uuid", 1, &*rng),
        Err(RaftError::InvalidArgument(_))
    ));
    let cluster = random_uuid(&*rng);
    assert!(format_dirs(&dirs, &cluster, -1, &*rng).is_err());
    assert!(format_dirs(&[], &cluster, 1, &*rng).is_err());
    assert!(!dirs[0].exists());
}

#[test]
fn ensure_formatted_formats_fresh_and_checks_existing() {
    let root = tempfile::tempdir().unwrap();
    let rng = SeededRng::new(5);
    let a = root.path().join("a");
    let cluster = ensure_formatted(std::slice::from_ref(&a), 2, &*rng).unwrap();
    assert_eq!(
        MetaProperties::read(&a).unwrap().unwrap().cluster_id,
        cluster
    );
    // Idempotent; a new empty dir joins the same cluster.
    let b = root.path().join("b");
    let dirs = vec![a.clone(), b.clone()];
    assert_eq!(ensure_formatted(&dirs, 2, &*rng).unwrap(), cluster);
    assert_eq!(
        MetaProperties::read(&b).unwrap().unwrap().cluster_id,
        cluster
    );
    assert_eq!(
        ensure_formatted_as(&dirs, Some(&cluster), 2, &*rng).unwrap(),
        cluster
    );
    // Mismatches.
    let err = ensure_formatted(&dirs, 3, &*rng).unwrap_err();
    assert!(matches!(
        err,
        RaftError::MetaPropertiesMismatch { key: "node.id", .. }
    ));
    let other = random_uuid(&*rng);
    let err = ensure_formatted_as(&dirs, Some(&other), 2, &*rng).unwrap_err();
    assert!(matches!(
        err,
        RaftError::MetaPropertiesMismatch {
            key: "cluster.id",
            ..
        }
    ));
    // Non-empty unformatted dir.
    let c = root.path().join("c");
    fs::create_dir_all(&c).unwrap();
    fs::write(c.join("junk"), b"x").unwrap();
    assert!(ensure_formatted(&[c], 2, &*rng).is_err());
}

#[test]
fn initial_controllers_parse_kafkas_syntax() {
    let dir = random_uuid(&*SeededRng::new(5));
    let parsed =
        parse_initial_controllers(&format!("1@h1:9093:{dir}, 2@[::1]:9094:{dir}"), "CTL").unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[1].id, 2);
    assert_eq!(
        parsed[1].endpoints,
        vec![("CTL".into(), "::1".into(), 9094)]
    );
    assert_eq!(
        kafka_uuid::encode(&parsed[0].directory_id),
        dir,
        "directory id kept"
    );
    for bad in [
        "",
        "1@h:9093",
        "x@h:1:{dir}",
        &format!("1@h:1:{dir},1@h:2:{dir}"),
    ] {
        assert!(parse_initial_controllers(bad, "CTL").is_err(), "{bad}");
    }
}

#[test]
fn a_standalone_format_writes_the_bootstrap_voters_and_a_single_node_starts_fresh() {
    use crate::controller::{Controller, ControllerOptions, MetadataLogTuning};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("meta");
    let rng = SeededRng::new(4);
    let cluster = random_uuid(&*rng);
    let endpoints = vec![("CONTROLLER".to_string(), "localhost".to_string(), 9093)];
    let initial = InitialVoters::Standalone(endpoints);
    format_dirs_dynamic(
        std::slice::from_ref(&dir),
        &dir,
        &cluster,
        7,
        &*rng,
        &initial,
    )
    .unwrap();
    assert_eq!(bootstrap_voters(&dir).unwrap(), Some(vec![7]));

    let opts = |node_id| ControllerOptions {
        metadata_log_dir: dir.clone(),
        node_id,
        endpoints: Vec::new(),
        rack: None,
        default_num_partitions: 1,
        default_replication_factor: 1,
        snapshot_every_records: 0,
    };
    let clock = shale_common::ManualClock::new(1_700_000_000_000);
    let c = Controller::open_with(
        opts(7),
        MetadataLogTuning::default(),
        clock,
        SeededRng::new(1),
    )
    .unwrap();
    // The bootstrap snapshot holds no records: the node bootstraps a fresh cluster.
    assert_eq!(c.image().metadata_version(), BOOTSTRAP_METADATA_VERSION);
    drop(c);

    // Formatted as one of several initial controllers: refused at start.
    let other = root.path().join("other");
    let voters =
        parse_initial_controllers(&format!("7@h:1:{cluster},8@h:2:{cluster}"), "CONTROLLER")
            .unwrap();
    let list = InitialVoters::List(voters);
    format_dirs_dynamic(
        std::slice::from_ref(&other),
        &other,
        &cluster,
        7,
        &*rng,
        &list,
    )
    .unwrap();
    let mut o = opts(7);
    o.metadata_log_dir = other;
    let clock = shale_common::ManualClock::new(1_700_000_000_000);
    let err = Controller::open_with(o, MetadataLogTuning::default(), clock, SeededRng::new(1));
    assert!(err.is_err());
}
