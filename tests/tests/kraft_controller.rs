//! The metadata controller over a three-voter KRaft quorum on loopback TCP: each node runs a
//! `QuorumNode`, the `MetadataApplier` state machine and a `Controller` committing through
//! `KRaftMetadataQuorum`. One becomes the active controller and bootstraps the cluster; topics
//! and configs created through it reach every node's image; a non-active node refuses with
//! NOT_CONTROLLER naming the leader; after the active node crashes another takes over with
//! nothing lost, and the crashed node restarts from its directory and converges.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shale_broker::kraft::metadata::{KRaftMetadataQuorum, MetadataApplier};
use shale_broker::kraft::node::{QuorumNode, QuorumNodeConfig};
use shale_broker::kraft::peers::Peer;
use shale_common::{SeededRng, SystemClock};
use shale_raft::format::default_bootstrap_records;
use shale_raft::image::REGISTER_BROKER_RECORD_VERSION;
use shale_raft::kraft::{KRaftConfig, NodeId};
use shale_raft::records::{BrokerEndpoint, RegisterBrokerRecord};
use shale_raft::{
    AlterConfigOp, ConfigResource, Controller, ControllerError, ControllerOptions, CreateTopicSpec,
    MetadataImage, MetadataQuorum, MetadataRecord,
};
use tokio::net::TcpListener;

const CLUSTER: &str = "MkU3OEVBNTcwNTJENDM2Qg";

struct Member {
    id: NodeId,
    dir: tempfile::TempDir,
    node: Option<QuorumNode>,
    quorum: Option<Arc<KRaftMetadataQuorum>>,
    controller: Option<Arc<Controller>>,
}

impl Member {
    fn controller(&self) -> Arc<Controller> {
        self.controller.clone().expect("running")
    }
}

fn voters(ports: &[u16]) -> Vec<Peer> {
    ports
        .iter()
        .enumerate()
        .map(|(i, port)| Peer {
            id: i as NodeId + 1,
            host: "127.0.0.1".into(),
            port: *port,
        })
        .collect()
}

async fn start(member: &mut Member, ports: &[u16], listener: TcpListener) {
    let id = member.id;
    let (machine, applied) = MetadataApplier::new(CLUSTER);
    let clock = SystemClock::new();
    let cfg = QuorumNodeConfig {
        node_id: id,
        cluster_id: CLUSTER.into(),
        voters: voters(ports),
        bootstrap: Vec::new(),
        listener_name: "CONTROLLER".into(),
        dir: member.dir.path().to_path_buf(),
        raft: KRaftConfig::new(id, vec![1, 2, 3]),
        clock: clock.clone(),
        rng: SeededRng::new(id as u64),
        machine: Box::new(machine),
        dialer: shale_broker::tls::Dialer::plaintext(),
        tls: None,
    };
    let node = QuorumNode::start(cfg, Some(listener)).await.unwrap();
    let quorum = Arc::new(
        KRaftMetadataQuorum::new(id, applied, node.handle(), clock, Duration::from_secs(5))
            .with_bootstrap(default_bootstrap_records()),
    );
    let opts = ControllerOptions {
        metadata_log_dir: member.dir.path().to_path_buf(),
        node_id: id,
        endpoints: Vec::new(),
        rack: None,
        default_num_partitions: 1,
        default_replication_factor: 1,
        snapshot_every_records: 0,
    };
    let controller = Controller::with_quorum(opts, quorum.clone(), SeededRng::new(100 + id as u64));
    member.node = Some(node);
    member.quorum = Some(quorum);
    member.controller = Some(Arc::new(controller));
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Polls the running members until one is the active controller; returns its id.
async fn active_controller(members: &[Member], limit: Duration) -> NodeId {
    let start = Instant::now();
    loop {
        for m in members.iter().filter(|m| m.controller.is_some()) {
            let c = m.controller();
            if blocking(move || c.check_active()).await.is_ok() {
                return m.id;
            }
        }
        assert!(start.elapsed() < limit, "no active controller in {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until every running member's image is the same and `f` holds for it.
async fn converged(members: &[Member], what: &str, f: impl Fn(&MetadataImage) -> bool) {
    let start = Instant::now();
    loop {
        let images: Vec<Arc<MetadataImage>> = members
            .iter()
            .filter(|m| m.controller.is_some())
            .map(|m| m.controller().image())
            .collect();
        if images.iter().all(|i| *i == images[0]) && f(&images[0]) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: images did not converge: {:?}",
            images
                .iter()
                .map(|i| (i.last_offset, i.topics.keys().collect::<Vec<_>>()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stands in for broker registration (not yet part of cluster mode): brokers 1-3.
async fn register_brokers(quorum: Arc<KRaftMetadataQuorum>) {
    let records = (1..=3)
        .map(|id| {
            MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                version: REGISTER_BROKER_RECORD_VERSION,
                broker_id: id,
                is_migrating_zk_broker: false,
                incarnation_id: uuid::Uuid::from_u128(id as u128),
                broker_epoch: id as i64,
                end_points: vec![BrokerEndpoint {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: 9090 + id as u16,
                    security_protocol: 0,
                }],
                features: Vec::new(),
                rack: None,
                fenced: false,
                in_controlled_shutdown: false,
                log_dirs: Vec::new(),
            })
        })
        .collect();
    blocking(move || quorum.commit(records)).await.unwrap();
}

fn spec(name: &str, partitions: i32, rf: i16, configs: &[(&str, &str)]) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        assignments: Vec::new(),
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

async fn create(c: Arc<Controller>, s: CreateTopicSpec) -> Result<uuid::Uuid, ControllerError> {
    blocking(move || c.create_topic(s, false))
        .await
        .map(|t| t.topic_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_over_three_voters_fails_over_without_losing_metadata() {
    let (listeners, ports) = shale_tests::loopback_listeners(3).await;
    let mut members = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut m = Member {
            id: i as NodeId + 1,
            dir: tempfile::tempdir().unwrap(),
            node: None,
            quorum: None,
            controller: None,
        };
        start(&mut m, &ports, listener).await;
        members.push(m);
    }

    let active = active_controller(&members, Duration::from_secs(15)).await;
    let leader = &members[active as usize - 1];
    register_brokers(leader.quorum.clone().unwrap()).await;
    let c = leader.controller();
    let t1 = create(c.clone(), spec("t1", 3, 3, &[])).await.unwrap();
    let t2 = create(
        c.clone(),
        spec("t2", 1, 2, &[("cleanup.policy", "compact")]),
    )
    .await
    .unwrap();
    let dup = create(c.clone(), spec("t1", 1, 1, &[])).await;
    assert!(
        matches!(dup, Err(ControllerError::TopicAlreadyExists(_))),
        "{dup:?}"
    );
    let alter = c.clone();
    blocking(move || {
        alter.alter_configs(
            ConfigResource::Topic("t1".into()),
            vec![AlterConfigOp::set("retention.ms", "1000")],
            false,
        )
    })
    .await
    .unwrap();
    converged(&members, "after the first writes", |i| {
        i.metadata_version() > 0
            && i.brokers.len() == 3
            && i.topic("t1").is_some_and(|t| {
                t.id == t1
                    && t.partitions.len() == 3
                    && t.partitions.values().all(|p| p.replicas.len() == 3)
                    && t.configs.get("retention.ms").map(String::as_str) == Some("1000")
            })
            && i.topic("t2").is_some_and(|t| {
                t.id == t2
                    && t.partitions.len() == 1
                    && t.configs.get("cleanup.policy").map(String::as_str) == Some("compact")
            })
    })
    .await;

    // A node that is not the active controller refuses and names the leader.
    for m in members.iter().filter(|m| m.id != active) {
        let refused = create(m.controller(), spec("nope", 1, 1, &[])).await;
        match refused {
            Err(ControllerError::NotController { leader }) => assert_eq!(leader, Some(active)),
            other => panic!("node {} answered {other:?}", m.id),
        }
    }

    // The active controller crashes: another takes over with everything committed.
    let victim = &mut members[active as usize - 1];
    victim.controller = None;
    victim.quorum = None;
    let halted = Instant::now();
    victim.node.take().unwrap().halt().await;
    let next = active_controller(&members, Duration::from_secs(15)).await;
    assert_ne!(next, active);
    println!(
        "new active controller after a crash in {:?}",
        halted.elapsed()
    );
    let c = members[next as usize - 1].controller();
    let image = c.image();
    assert_eq!(image.topic("t1").map(|t| t.id), Some(t1));
    assert_eq!(image.topic("t2").map(|t| t.id), Some(t2));
    let t3 = create(c.clone(), spec("t3", 2, 2, &[])).await.unwrap();
    let image = c.image();
    assert!(image.topic("t1").is_some() && image.topic("t2").is_some());
    assert_eq!(image.topic("t3").map(|t| t.partitions.len()), Some(2));

    // The crashed node restarts from its directory and converges.
    let listener = TcpListener::bind(("127.0.0.1", ports[active as usize - 1]))
        .await
        .unwrap();
    start(&mut members[active as usize - 1], &ports, listener).await;
    converged(&members, "after the restart", |i| {
        i.topic("t1").is_some_and(|t| t.id == t1)
            && i.topic("t2").is_some_and(|t| t.id == t2)
            && i.topic("t3").is_some_and(|t| t.id == t3)
    })
    .await;
    let restarted = members[active as usize - 1].controller();
    let refused = create(restarted, spec("nope", 1, 1, &[])).await;
    assert!(
        matches!(refused, Err(ControllerError::NotController { leader: Some(l) }) if l == next),
        "{refused:?}"
    );
    for m in &mut members {
        m.controller = None;
        m.node.take().unwrap().shutdown().await;
    }
}
