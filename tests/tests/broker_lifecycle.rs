//! Three controller-only nodes (`controller_node::start`) in one process, and a broker played by
//! a raw TCP client on the controller listener: BrokerRegistration (62) makes broker 100 a
//! fenced registration at its broker epoch, a caught-up BrokerHeartbeat (63) unfences it on
//! every voter, a stale epoch is refused, a non-active controller answers NOT_CONTROLLER, and
//! once heartbeats stop the active controller fences it after `broker.session.timeout.ms`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, BrokerHeartbeatRequest, BrokerHeartbeatResponse,
    BrokerId, BrokerRegistrationRequest, BrokerRegistrationResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use shale_broker::kraft::controller_node::{self, RunningController};
use shale_broker::kraft::peers::{read_response, request_frame};
use shale_broker::kraft::wire::WireContext;
use shale_broker::BrokerConfig;
use shale_common::SeededRng;
use shale_protocol::kafka_protocol::messages::ApiKey;
use shale_raft::kraft::RoleKind;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const CLUSTER: &str = "MkU3OEVBNTcwNTJENDM2Qg";
const SESSION_TIMEOUT_MS: u64 = 1500;
const NOT_CONTROLLER: i16 = 41;
const STALE_BROKER_EPOCH: i16 = 77;

fn config(id: i32, ports: &[u16], dir: &std::path::Path) -> BrokerConfig {
    let voters: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect();
    let props: BTreeMap<String, String> = [
        ("process.roles", "controller".to_string()),
        ("node.id", id.to_string()),
        ("controller.quorum.voters", voters.join(",")),
        (
            "listeners",
            format!("CONTROLLER://127.0.0.1:{}", ports[id as usize - 1]),
        ),
        ("controller.listener.names", "CONTROLLER".to_string()),
        ("log.dirs", dir.display().to_string()),
        ("broker.session.timeout.ms", SESSION_TIMEOUT_MS.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    BrokerConfig::from_props(props).unwrap()
}

async fn poll<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends one request and returns the response body.
async fn call(port: u16, api_key: ApiKey, version: i16, body: &BytesMut) -> Bytes {
    let ctx = WireContext::new(CLUSTER, -1, "CONTROLLER");
    let frame = request_frame(api_key, version, 5, &ctx, body).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&frame).await.unwrap();
    read_response(&mut stream, api_key, version, 5)
        .await
        .unwrap()
}

async fn register(port: u16, incarnation: u128) -> BrokerRegistrationResponse {
    let version = 4;
    let listener = Listener::default()
        .with_name(StrBytes::from_static_str("PLAINTEXT"))
        .with_host(StrBytes::from_static_str("localhost"))
        .with_port(9100);
    let request = BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(100))
        .with_cluster_id(StrBytes::from_static_str(CLUSTER))
        .with_incarnation_id(uuid::Uuid::from_u128(incarnation))
        .with_listeners(vec![listener])
        .with_previous_broker_epoch(-1);
    let mut body = BytesMut::new();
    request.encode(&mut body, version).unwrap();
    let mut out = call(port, ApiKey::BrokerRegistration, version, &body).await;
    BrokerRegistrationResponse::decode(&mut out, version).unwrap()
}

async fn heartbeat(port: u16, epoch: i64, offset: i64) -> BrokerHeartbeatResponse {
    let version = 1;
    let request = BrokerHeartbeatRequest::default()
        .with_broker_id(BrokerId(100))
        .with_broker_epoch(epoch)
        .with_current_metadata_offset(offset);
    let mut body = BytesMut::new();
    request.encode(&mut body, version).unwrap();
    let mut out = call(port, ApiKey::BrokerHeartbeat, version, &body).await;
    BrokerHeartbeatResponse::decode(&mut out, version).unwrap()
}

async fn api_keys(port: u16) -> Vec<(i16, i16, i16)> {
    let version = 3;
    let mut body = BytesMut::new();
    ApiVersionsRequest::default()
        .encode(&mut body, version)
        .unwrap();
    let mut out = call(port, ApiKey::ApiVersions, version, &body).await;
    let response = ApiVersionsResponse::decode(&mut out, version).unwrap();
    response
        .api_keys
        .iter()
        .map(|a| (a.api_key, a.min_version, a.max_version))
        .collect()
}

/// Broker 100's (fenced, epoch) in a node's image.
fn broker_100(node: &RunningController) -> Option<(bool, i64)> {
    let image = node.controller().image();
    image.brokers.get(&100).map(|b| (b.fenced, b.epoch))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_registers_is_unfenced_by_heartbeats_and_fenced_when_they_stop() {
    // The nodes bind these ports themselves once the probe listeners are dropped.
    let (_, ports) = shale_tests::loopback_listeners(3).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = i as i32 + 1;
        let rng = SeededRng::new(id as u64);
        shale_raft::format_dirs(&[dir.path().to_path_buf()], CLUSTER, id, &*rng).unwrap();
        nodes.push(
            controller_node::start(config(id, &ports, dir.path()))
                .await
                .unwrap(),
        );
    }
    // The active controller: leading, and bootstrapped (its image has a metadata.version).
    let leader = poll("an active controller", || async {
        nodes.iter().position(|n| {
            n.view().borrow().role == RoleKind::Leader
                && n.controller()
                    .image()
                    .features
                    .contains_key("metadata.version")
        })
    })
    .await;
    let follower = (leader + 1) % 3;
    let (lport, fport) = (ports[leader], ports[follower]);

    let apis = api_keys(lport).await;
    assert!(
        apis.contains(&(62, 0, 4)) && apis.contains(&(63, 0, 1)),
        "{apis:?}"
    );

    // Only the active controller registers brokers.
    assert_eq!(register(fport, 1).await.error_code, NOT_CONTROLLER);
    assert!(broker_100(&nodes[follower]).is_none());

    // Registration (retried until the leader's activation completed): fenced, at its epoch.
    let epoch = poll("a registration", || async {
        let r = register(lport, 1).await;
        (r.error_code == 0).then_some(r.broker_epoch)
    })
    .await;
    assert!(epoch > 0);
    assert_eq!(broker_100(&nodes[leader]), Some((true, epoch)));
    let image = nodes[leader].controller().image();
    assert_eq!(
        image.last_offset, epoch,
        "the record sits at the broker epoch"
    );
    // A retry of the same incarnation keeps the epoch.
    let again = register(lport, 1).await;
    assert_eq!((again.error_code, again.broker_epoch), (0, epoch));

    // Not caught up yet: stays fenced.
    let hb = heartbeat(lport, epoch, epoch - 1).await;
    assert_eq!(
        (hb.error_code, hb.is_caught_up, hb.is_fenced),
        (0, false, true)
    );
    // Caught up to its registration: unfenced, on every voter.
    let last_contact = Instant::now();
    let hb = heartbeat(lport, epoch, epoch).await;
    assert_eq!(
        (hb.error_code, hb.is_caught_up, hb.is_fenced),
        (0, true, false)
    );
    assert_eq!(broker_100(&nodes[leader]), Some((false, epoch)));
    poll("the unfence on a follower", || async {
        (broker_100(&nodes[follower]) == Some((false, epoch))).then_some(())
    })
    .await;

    // Another incarnation's epoch is refused.
    let stale = heartbeat(lport, epoch - 1, epoch).await;
    assert_eq!(
        (stale.error_code, stale.is_fenced),
        (STALE_BROKER_EPOCH, true)
    );
    // A heartbeat on a follower: NOT_CONTROLLER.
    assert_eq!(
        heartbeat(fport, epoch, epoch).await.error_code,
        NOT_CONTROLLER
    );

    // Heartbeats stop: fenced one session timeout later (checked every second).
    poll("the fence of an expired session", || async {
        (broker_100(&nodes[leader]) == Some((true, epoch))).then_some(())
    })
    .await;
    assert!(last_contact.elapsed() >= Duration::from_millis(SESSION_TIMEOUT_MS));
    let hb = heartbeat(lport, epoch, epoch).await;
    assert_eq!(
        (hb.error_code, hb.is_fenced),
        (0, false),
        "a returning broker is unfenced"
    );

    for node in nodes {
        node.shutdown().await;
    }
}
