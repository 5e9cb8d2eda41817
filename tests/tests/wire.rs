//! Wire-level end-to-end tests against an in-process broker: produce/fetch round trips, restart,
//! long-poll wake-up and bad input. The Python suite covers the same ground with real clients.

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use shale_protocol::record_batch::{batches, RecordBatch};
use shale_tests::{
    batch, create_topic, fetch_request, frame_header, now_ms, produce, start_broker, topic_name,
    Client,
};

async fn fetch_all(c: &mut Client, topic: &str, offset: i64) -> Bytes {
    let resp = c
        .send(&fetch_request(topic, offset, 0), 11)
        .await
        .expect("fetch");
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.records.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_fetch_restart_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "rt", 1).await;
    let sent: Vec<RecordBatch> = (0..5).map(|i| batch(10, now_ms() + i * 100)).collect();
    for (i, b) in sent.iter().enumerate() {
        let resp = produce(&mut c, "rt", 0, b.as_bytes().clone()).await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "{:?}", p.error_message);
        assert_eq!(p.base_offset, i as i64 * 10);
    }
    let check = |records: Bytes| {
        let got: Vec<RecordBatch> = batches(records).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 5);
        for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
            assert_eq!(g.base_offset(), i as i64 * 10);
            g.verify_crc().unwrap();
            assert_eq!(g.records().unwrap(), s.records().unwrap());
            // Only the base offset and leader epoch (outside the CRC) may differ.
            assert_eq!(g.as_bytes()[16..], s.as_bytes()[16..]);
        }
    };
    check(fetch_all(&mut c, "rt", 0).await);
    drop(c);
    broker.shutdown().await.unwrap();

    let broker = start_broker(dir.path(), &[]).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    check(fetch_all(&mut c, "rt", 0).await);
    // ListOffsets: earliest 0, latest 50.
    for (ts, want) in [(-2i64, 0i64), (-1, 50)] {
        let mut p = ListOffsetsPartition::default();
        p.partition_index = 0;
        p.timestamp = ts;
        p.current_leader_epoch = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = topic_name("rt");
        t.partitions = vec![p];
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![t];
        let resp = c.send(&req, 7).await.unwrap();
        assert_eq!(resp.topics[0].partitions[0].offset, want, "timestamp {ts}");
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_fetch_is_woken_by_append() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "lp", 1).await;
    let mut fetcher = Client::connect(broker.addr).await.unwrap();
    // A 60 s long poll: if appends did not wake it, the test would hit its own timeout below.
    let waiting =
        tokio::spawn(async move { fetcher.send(&fetch_request("lp", 0, 60_000), 11).await });
    // Give the fetch a moment to park; correctness does not depend on it (it re-reads after registering).
    tokio::task::yield_now().await;
    produce(&mut c, "lp", 0, batch(3, now_ms()).into_bytes()).await;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(20), waiting)
        .await
        .expect("long poll was not woken by the append")
        .unwrap()
        .unwrap();
    let records = resp.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    assert!(!records.is_empty());
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_kafka_errors_or_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[("auto.create.topics.enable", "false")])
        .await
        .unwrap();
    let mut good = Client::connect(broker.addr).await.unwrap();
    create_topic(&mut good, "bad", 1).await;

    // A 2 GiB size prefix closes the connection before anything is allocated.
    let mut c = Client::connect(broker.addr).await.unwrap();
    c.write_raw(&0x7fff_fff0i32.to_be_bytes()).await.unwrap();
    assert!(c.is_closed().await);

    // Garbage closes the connection.
    let mut c = Client::connect(broker.addr).await.unwrap();
    c.write_raw(&[0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])
        .await
        .unwrap();
    assert!(c.is_closed().await);

    // ApiVersions v99: v0-shaped answer with UNSUPPORTED_VERSION and our list.
    let mut c = Client::connect(broker.addr).await.unwrap();
    let resp = c
        .round_trip(frame_header(18, 99, 7).freeze())
        .await
        .unwrap();
    assert_eq!(&resp[0..4], &7i32.to_be_bytes());
    assert_eq!(&resp[4..6], &35i16.to_be_bytes());

    // A corrupt CRC is CORRUPT_MESSAGE; a missing topic with auto-create off is UNKNOWN_TOPIC_OR_PARTITION.
    let mut corrupt = batch(2, now_ms()).into_bytes().to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let resp = produce(&mut good, "bad", 0, Bytes::from(corrupt)).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 2);
    let resp = produce(&mut good, "missing", 0, batch(1, now_ms()).into_bytes()).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 3);

    // The good connection still works.
    let resp = produce(&mut good, "bad", 0, batch(1, now_ms()).into_bytes()).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    broker.shutdown().await.unwrap();
}
