//! A partition this broker hosts as a follower, on the wire: Produce, Fetch and ListOffsets are
//! refused with NOT_LEADER_OR_FOLLOWER and, where the version has the fields, the current leader
//! and its endpoint (KIP-951); leadership coming back serves the same data again.
//!
//! The single-node controller refuses assignments naming unregistered brokers, so the test hands
//! the replica manager a crafted image — the one a multi-broker controller would publish after
//! moving leadership to broker 2 — exactly as the metadata path does after each change.

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_raft::{BrokerRegistration, Endpoint, MetadataImage, PartitionImage};
use shale_tests::{
    batch, create_topic, fetch_request, now_ms, produce, start_broker, topic_name, Client,
};
use std::sync::Arc;

const NOT_LEADER: i16 = 6;

/// The broker's current image with partition 0 of `topic` led by a registered broker 2 in
/// `leader_epoch` (or by this broker, 1, when `leader` is 1).
fn moved(image: &MetadataImage, topic: &str, leader: i32, leader_epoch: i32) -> MetadataImage {
    let mut img = image.clone();
    img.brokers.insert(
        2,
        BrokerRegistration {
            id: 2,
            epoch: 100,
            incarnation_id: uuid::Uuid::new_v4(),
            endpoints: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "broker2.test".into(),
                port: 9093,
                security_protocol: 0,
            }],
            rack: None,
            fenced: false,
            in_controlled_shutdown: false,
        },
    );
    let mut t = (**img.topics.get(topic).unwrap()).clone();
    t.partitions.insert(
        0,
        PartitionImage {
            replicas: vec![1, 2],
            // The leader alone: acks=all does not wait for a broker 2 that never fetches.
            isr: vec![leader],
            leader,
            leader_epoch,
            partition_epoch: leader_epoch,
            ..Default::default()
        },
    );
    img.topics.insert(topic.into(), Arc::new(t));
    img
}

async fn apply(broker: &shale_broker::RunningBroker, img: MetadataImage) {
    let b = broker.broker().clone();
    shale_common::blocking::spawn(move || b.replicas().apply(Arc::new(img)).unwrap())
        .await
        .unwrap();
}

/// A Fetch by topic id (v13+) from offset 0 that does not wait.
fn fetch(topic_id: uuid::Uuid, topic: &str) -> FetchRequest {
    let mut req = fetch_request(topic, 0, 0);
    req.topics[0].topic_id = topic_id;
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_partition_names_its_leader_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "moved", 1).await;
    let resp = produce(&mut c, "moved", 0, batch(3, now_ms()).as_bytes().clone()).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    let image = broker.broker().image();
    let topic_id = image.topic("moved").unwrap().id;
    apply(&broker, moved(&image, "moved", 2, 5)).await;

    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 1_000;
    let mut pd = produce_request::PartitionProduceData::default();
    pd.records = Some(batch(1, now_ms()).as_bytes().clone());
    let mut td = produce_request::TopicProduceData::default();
    td.name = topic_name("moved");
    td.partition_data = vec![pd];
    req.topic_data = vec![td];
    let resp = c.send(&req, 10).await.unwrap();
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, NOT_LEADER);
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (2, 5)
    );
    let ep = &resp.node_endpoints;
    assert_eq!(ep.len(), 1, "{ep:?}");
    assert_eq!(
        (ep[0].node_id.0, ep[0].host.as_str(), ep[0].port),
        (2, "broker2.test", 9093)
    );
    let old = c.send(&req, 9).await.unwrap();
    assert_eq!(
        old.responses[0].partition_responses[0].error_code,
        NOT_LEADER
    );

    // A consumer fetch with client metadata (v11+) is served by a follower (KIP-392); another
    // broker's replica fetch is not, and learns the leader.
    let resp = c.send(&fetch(topic_id, "moved"), 16).await.unwrap();
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);
    let mut from_replica = fetch(topic_id, "moved");
    from_replica.replica_state.replica_id = BrokerId(3);
    let resp = c.send(&from_replica, 16).await.unwrap();
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, NOT_LEADER);
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (2, 5)
    );
    assert_eq!(resp.node_endpoints.len(), 1);
    assert_eq!(
        resp.node_endpoints[0].host,
        StrBytes::from_static_str("broker2.test")
    );

    let mut lp = ListOffsetsPartition::default();
    lp.timestamp = -1;
    lp.current_leader_epoch = -1;
    let mut lt = ListOffsetsTopic::default();
    lt.name = topic_name("moved");
    lt.partitions = vec![lp];
    let mut lo = ListOffsetsRequest::default();
    lo.replica_id = BrokerId(-1);
    lo.topics = vec![lt];
    let resp = c.send(&lo, 7).await.unwrap();
    assert_eq!(resp.topics[0].partitions[0].error_code, NOT_LEADER);

    // Leadership comes back in a later epoch: the records produced before are all still there.
    apply(&broker, moved(&image, "moved", 1, 6)).await;
    let resp = c.send(&lo, 7).await.unwrap();
    let p = &resp.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset), (0, 3));
    let resp = c.send(&req, 10).await.unwrap();
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 3));
    assert!(resp.node_endpoints.is_empty());
    broker.shutdown().await.unwrap();
}
