//! Three quorum members in one process talking Kafka's KRaft RPCs over real loopback TCP: a
//! leader is elected, appended records reach every member's state machine in order, a leader
//! that shuts down hands over to a new one, a restarted member catches up from its own log and
//! the leader's, and DescribeQuorum answers with the voters' progress.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::describe_quorum_request;
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, DescribeQuorumRequest, TopicName, VoteResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use parking_lot::Mutex;
use shale_broker::kraft::driver::{QuorumView, StateMachine};
use shale_broker::kraft::node::{QuorumNode, QuorumNodeConfig};
use shale_broker::kraft::peers::{read_response, request_frame, Peer};
use shale_broker::kraft::wire::{self, WireContext};
use shale_common::{SeededRng, SystemClock};
use shale_protocol::kafka_protocol::messages::ApiKey;
use shale_raft::kraft::{
    Entry, KRaftConfig, Message, NodeId, Record, RoleKind, Snapshot, VoteRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Applied data records, in order, as (offset, value).
#[derive(Clone, Debug, Default)]
struct Recorder(Arc<Mutex<Vec<(i64, Bytes)>>>);

impl StateMachine for Recorder {
    fn apply(&mut self, base_offset: i64, entries: &[Entry]) {
        let mut applied = self.0.lock();
        for (i, e) in entries.iter().enumerate() {
            if let Record::Data(v) = &e.record {
                applied.push((base_offset + i as i64, v.clone()));
            }
        }
    }

    fn load_snapshot(&mut self, _snapshot: &Snapshot) {
        panic!("no snapshots in this test");
    }
}

struct Member {
    id: NodeId,
    dir: tempfile::TempDir,
    applied: Recorder,
    node: Option<QuorumNode>,
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

async fn start(
    id: NodeId,
    dir: &std::path::Path,
    ports: &[u16],
    listener: TcpListener,
) -> (QuorumNode, Recorder) {
    let applied = Recorder::default();
    let cfg = QuorumNodeConfig {
        node_id: id,
        cluster_id: "kraft-quorum-test-cluster".into(),
        voters: voters(ports),
        bootstrap: Vec::new(),
        listener_name: "CONTROLLER".into(),
        dir: dir.to_path_buf(),
        raft: KRaftConfig::new(id, vec![1, 2, 3]),
        clock: SystemClock::new(),
        rng: SeededRng::new(id as u64),
        machine: Box::new(applied.clone()),
        dialer: shale_broker::tls::Dialer::plaintext(),
        tls: None,
    };
    (
        QuorumNode::start(cfg, Some(listener)).await.unwrap(),
        applied,
    )
}

/// Polls until `f` holds for the members' views, or fails after `limit`.
async fn until(members: &[Member], limit: Duration, what: &str, f: impl Fn(&[QuorumView]) -> bool) {
    let start = Instant::now();
    loop {
        let views: Vec<QuorumView> = members
            .iter()
            .filter_map(|m| m.node.as_ref().map(|n| n.view().borrow().clone()))
            .collect();
        if f(&views) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{what} not reached in {limit:?}: {views:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn agreed_leader(views: &[QuorumView]) -> Option<(NodeId, i32)> {
    let leader = views.iter().find(|v| v.role == RoleKind::Leader)?;
    let all_follow = views
        .iter()
        .all(|v| v.epoch == leader.epoch && v.leader == Some(leader.node_id));
    all_follow.then_some((leader.node_id, leader.epoch))
}

fn leader_of(members: &[Member]) -> &Member {
    members
        .iter()
        .find(|m| {
            m.node
                .as_ref()
                .is_some_and(|n| n.view().borrow().role == RoleKind::Leader)
        })
        .expect("a leader")
}

async fn append_batches(leader: &QuorumNode, from: usize, count: usize) -> i64 {
    let mut last = -1;
    for i in from..from + count {
        let records = (0..5).map(|j| Bytes::from(format!("r{i}-{j}"))).collect();
        last = leader.append(records).await.unwrap();
    }
    last
}

async fn until_applied(members: &[Member], want: usize) {
    let start = Instant::now();
    loop {
        let counts: Vec<usize> = members.iter().map(|m| m.applied.0.lock().len()).collect();
        if counts.iter().all(|c| *c == want) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "applied {counts:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first = members[0].applied.0.lock().clone();
    for m in &members[1..] {
        assert_eq!(
            *m.applied.0.lock(),
            first,
            "member {} applied a different log",
            m.id
        );
    }
    let values: Vec<&Bytes> = first.iter().map(|(_, v)| v).collect();
    let mut sorted = values.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), values.len(), "a record applied twice");
}

async fn describe_quorum(port: u16) -> wire::QuorumStatus {
    let version = 2;
    let partition = describe_quorum_request::PartitionData::default().with_partition_index(0);
    let topic = describe_quorum_request::TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![partition]);
    let request = DescribeQuorumRequest::default().with_topics(vec![topic]);
    let mut body = BytesMut::new();
    request.encode(&mut body, version).unwrap();
    let ctx = WireContext::new("kraft-quorum-test-cluster", -1, "CONTROLLER");
    let frame = request_frame(ApiKey::DescribeQuorum, version, 7, &ctx, &body).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&frame).await.unwrap();
    let body = read_response(&mut stream, ApiKey::DescribeQuorum, version, 7)
        .await
        .unwrap();
    wire::decode_describe_quorum(version, body).unwrap().status
}

/// ApiVersions on a controller listener lists the quorum's RPCs (what a Kafka peer or tool
/// asks first on a new connection).
async fn api_versions(port: u16) -> Vec<(i16, i16, i16)> {
    let version = 3;
    let mut body = BytesMut::new();
    ApiVersionsRequest::default()
        .encode(&mut body, version)
        .unwrap();
    let ctx = WireContext::new("kraft-quorum-test-cluster", -1, "CONTROLLER");
    let frame = request_frame(ApiKey::ApiVersions, version, 9, &ctx, &body).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&frame).await.unwrap();
    let mut body = read_response(&mut stream, ApiKey::ApiVersions, version, 9)
        .await
        .unwrap();
    let response = ApiVersionsResponse::decode(&mut body, version).unwrap();
    assert_eq!(response.error_code, 0);
    response
        .api_keys
        .iter()
        .map(|a| (a.api_key, a.min_version, a.max_version))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_replicate_hand_over_and_catch_up() {
    let (listeners, ports) = shale_tests::loopback_listeners(3).await;
    let mut members = Vec::new();
    let started = Instant::now();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as NodeId + 1;
        let dir = tempfile::tempdir().unwrap();
        let (node, applied) = start(id, dir.path(), &ports, listener).await;
        members.push(Member {
            id,
            dir,
            applied,
            node: Some(node),
        });
    }
    until(
        &members,
        Duration::from_secs(15),
        "a leader all follow",
        |v| v.len() == 3 && agreed_leader(v).is_some(),
    )
    .await;
    println!("first leader elected in {:?}", started.elapsed());
    let apis = api_versions(ports[0]).await;
    for (key, min, max) in [
        (18, 0, 4),
        (52, 0, 2),
        (53, 0, 1),
        (54, 0, 1),
        (1, 13, 18),
        (59, 0, 1),
        (55, 0, 2),
    ] {
        assert!(
            apis.contains(&(key, min, max)),
            "api {key} v{min}-{max} missing from {apis:?}"
        );
    }

    let last = append_batches(leader_of(&members).node.as_ref().unwrap(), 0, 20).await;
    until(
        &members,
        Duration::from_secs(15),
        "the appends committed",
        |v| v.iter().all(|v| v.high_watermark > last),
    )
    .await;
    until_applied(&members, 100).await;

    // Propagation: from an append at the leader until every member has applied it.
    let mut took = Vec::new();
    for i in 0..20 {
        let leader = leader_of(&members).node.as_ref().unwrap();
        let appended = Instant::now();
        leader
            .append(vec![Bytes::from(format!("p{i}"))])
            .await
            .unwrap();
        until_applied(&members, 101 + i).await;
        took.push(appended.elapsed());
    }
    took.sort();
    println!(
        "append to applied on all three: p50 {:?}, max {:?}",
        took[10], took[19]
    );

    let (leader_id, epoch) = {
        let views: Vec<QuorumView> = members
            .iter()
            .map(|m| m.node.as_ref().unwrap().view().borrow().clone())
            .collect();
        agreed_leader(&views).unwrap()
    };
    let status = describe_quorum(ports[leader_id as usize - 1]).await;
    assert_eq!((status.leader_id, status.leader_epoch), (leader_id, epoch));
    assert!(status.high_watermark > last);
    assert_eq!(status.voters.len(), 3);
    assert!(
        status.voters.iter().all(|r| r.log_end_offset > last),
        "{status:?}"
    );

    // The leader shuts down: the other two elect a new one in a later epoch.
    let old = members.iter_mut().find(|m| m.id == leader_id).unwrap();
    let handed = Instant::now();
    old.node.take().unwrap().shutdown().await;
    until(&members, Duration::from_secs(15), "a new leader", |v| {
        v.len() == 2 && agreed_leader(v).is_some_and(|(l, e)| l != leader_id && e > epoch)
    })
    .await;
    println!(
        "new leader after a graceful shutdown in {:?}",
        handed.elapsed()
    );
    let last = append_batches(leader_of(&members).node.as_ref().unwrap(), 20, 20).await;

    // The old leader restarts from its directory and catches up.
    let old = members.iter_mut().find(|m| m.id == leader_id).unwrap();
    let listener = TcpListener::bind(("127.0.0.1", ports[leader_id as usize - 1]))
        .await
        .unwrap();
    let (node, applied) = start(leader_id, old.dir.path(), &ports, listener).await;
    old.node = Some(node);
    old.applied = applied;
    until(
        &members,
        Duration::from_secs(15),
        "all three caught up",
        |v| v.len() == 3 && agreed_leader(v).is_some() && v.iter().all(|v| v.high_watermark > last),
    )
    .await;
    until_applied(&members, 220).await;

    // The leader halts without resigning (a crash): the others wait out their fetch timeout,
    // elect a new leader and go on committing; the halted node comes back and catches up.
    let views: Vec<QuorumView> = members
        .iter()
        .map(|m| m.node.as_ref().unwrap().view().borrow().clone())
        .collect();
    let (crashed, epoch) = agreed_leader(&views).unwrap();
    let victim = members.iter_mut().find(|m| m.id == crashed).unwrap();
    let halted = Instant::now();
    victim.node.take().unwrap().halt().await;
    until(
        &members,
        Duration::from_secs(15),
        "a leader after a crash",
        |v| v.len() == 2 && agreed_leader(v).is_some_and(|(l, e)| l != crashed && e > epoch),
    )
    .await;
    println!("new leader after a crash in {:?}", halted.elapsed());
    let last = append_batches(leader_of(&members).node.as_ref().unwrap(), 40, 20).await;
    let victim = members.iter_mut().find(|m| m.id == crashed).unwrap();
    let listener = TcpListener::bind(("127.0.0.1", ports[crashed as usize - 1]))
        .await
        .unwrap();
    let (node, applied) = start(crashed, victim.dir.path(), &ports, listener).await;
    victim.node = Some(node);
    victim.applied = applied;
    until(
        &members,
        Duration::from_secs(15),
        "all three caught up again",
        |v| v.len() == 3 && agreed_leader(v).is_some() && v.iter().all(|v| v.high_watermark > last),
    )
    .await;
    until_applied(&members, 320).await;
    for m in &mut members {
        m.node.take().unwrap().shutdown().await;
    }
}

/// Reads until the peer closes the connection (or fails after 5 s).
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_controller_listener_gets_an_error_or_a_close() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg_ports = vec![port];
    cfg_ports.extend([1, 2]); // voters 2 and 3 are never reachable
    let (node, _applied) = start(1, dir.path(), &cfg_ports, listener).await;

    // A vote from another cluster: INCONSISTENT_CLUSTER_ID, and the connection stays usable.
    let other = WireContext::new("another-cluster", 2, "CONTROLLER");
    let vote = Message::Vote(VoteRequest {
        epoch: 5,
        candidate: 2,
        last_epoch: 0,
        end_offset: 0,
        pre_vote: false,
    });
    let request = wire::encode_request(1, &vote, &other).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for correlation in [1, 2] {
        let frame = request_frame(
            request.api_key,
            request.version,
            correlation,
            &other,
            &request.body,
        )
        .unwrap();
        stream.write_all(&frame).await.unwrap();
        let mut body = read_response(&mut stream, ApiKey::Vote, request.version, correlation)
            .await
            .unwrap();
        let response = VoteResponse::decode(&mut body, request.version).unwrap();
        assert_eq!(response.error_code, 104, "INCONSISTENT_CLUSTER_ID");
    }

    // Garbage after a valid size, an API the controller listener does not serve, and a size
    // prefix far above the limit: each closes its connection.
    let mut produce = BytesMut::new();
    let header = (0i16, 9i16, 3i32); // Produce v9
    produce.extend_from_slice(&[0, 0, 0, 10]);
    produce.extend_from_slice(&header.0.to_be_bytes());
    produce.extend_from_slice(&header.1.to_be_bytes());
    produce.extend_from_slice(&header.2.to_be_bytes());
    produce.extend_from_slice(&[0, 0]);
    let frames: [&[u8]; 3] = [
        &[0, 0, 0, 12, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8],
        &produce,
        &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0],
    ];
    for frame in frames {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(frame).await.unwrap();
        assert!(
            closed(&mut stream).await,
            "connection not closed after {frame:?}"
        );
    }

    // The node still answers.
    let apis = api_versions(port).await;
    assert!(apis.contains(&(52, 0, 2)));
    node.shutdown().await;
}
