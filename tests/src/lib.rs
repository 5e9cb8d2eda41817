//! Test support: an in-process broker on a temporary directory and a minimal raw Kafka client
//! (kafka-protocol's client side) for wire-level end-to-end tests.

use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, InitProducerIdRequest, ProduceRequest,
    ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use shale_broker::{BrokerConfig, RunningBroker};
use shale_protocol::record::{BatchBuilder, Header};
use shale_protocol::record_batch::RecordBatch;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts a broker on 127.0.0.1 with a free port, data under `dir`, plus `overrides`.
pub async fn start_broker(dir: &Path, overrides: &[(&str, &str)]) -> anyhow::Result<RunningBroker> {
    let mut props = BTreeMap::new();
    props.insert(
        "listeners".to_string(),
        "PLAINTEXT://127.0.0.1:0".to_string(),
    );
    props.insert("log.dirs".to_string(), dir.display().to_string());
    props.insert("shale.metrics.address".to_string(), String::new());
    for (k, v) in overrides {
        props.insert(k.to_string(), v.to_string());
    }
    let config = BrokerConfig::from_props(props)?;
    shale_broker::start(config).await
}

/// A raw Kafka connection.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    /// Connects.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        Ok(Client {
            stream,
            correlation_id: 0,
        })
    }

    /// Sends a request at `version` and decodes its response.
    pub async fn send<R: Request>(&mut self, req: &R, version: i16) -> anyhow::Result<R::Response> {
        self.correlation_id += 1;
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("unknown api key"))?;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = self.correlation_id;
        header.client_id = Some(StrBytes::from_static_str("shale-tests"));
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(version))?;
        req.encode(&mut body, version)?;
        let frame = self.round_trip(body.freeze()).await?;
        let mut frame = frame;
        let resp_header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))?;
        if resp_header.correlation_id != self.correlation_id {
            bail!(
                "correlation id {} != {}",
                resp_header.correlation_id,
                self.correlation_id
            );
        }
        let resp = R::Response::decode(&mut frame, version)?;
        Ok(resp)
    }

    /// Writes a raw frame (size prefix added) and reads one response frame (size prefix removed).
    pub async fn round_trip(&mut self, frame: Bytes) -> anyhow::Result<Bytes> {
        self.write_raw(&(frame.len() as i32).to_be_bytes()).await?;
        self.write_raw(&frame).await?;
        self.read_frame().await
    }

    /// Writes raw bytes.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await.context("write")
    }

    /// Reads one size-prefixed frame.
    pub async fn read_frame(&mut self) -> anyhow::Result<Bytes> {
        let size = self.stream.read_i32().await.context("read size")?;
        let mut buf = vec![0u8; size.max(0) as usize];
        self.stream
            .read_exact(&mut buf)
            .await
            .context("read frame")?;
        Ok(Bytes::from(buf))
    }

    /// True once the broker has closed the connection (reads EOF).
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(10), self.stream.read(&mut b))
                .await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Big-endian helper for hand-built frames.
pub fn frame_header(api_key: i16, version: i16, correlation_id: i32) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i16(api_key);
    b.put_i16(version);
    b.put_i32(correlation_id);
    b.put_i16(-1);
    b
}

/// Reads the correlation id at the front of a v0 response frame.
pub fn correlation_of(mut frame: Bytes) -> i32 {
    frame.get_i32()
}

// ---- request helpers shared by the wire-level tests ----

/// Record timestamps near the wall clock, so the default 7-day retention keeps them.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub fn batch(n: usize, ts: i64) -> RecordBatch {
    let mut b = BatchBuilder::new(ts);
    for i in 0..n {
        let headers = vec![
            Header {
                key: Bytes::from_static(b"dup"),
                value: Some(Bytes::from_static(b"1")),
            },
            Header {
                key: Bytes::from_static(b"dup"),
                value: Some(Bytes::from_static(b"2")),
            },
        ];
        b.push(
            ts + i as i64,
            Some(Bytes::from(format!("k{i}"))),
            Some(Bytes::from(format!("value-{i}"))),
            headers,
        );
    }
    b.build().expect("batch")
}

/// A transactional batch of `n` records ("txn-0", ...) from producer `producer_id`.
pub fn txn_batch(producer_id: i64, epoch: i16, sequence: i32, n: usize) -> Bytes {
    let ts = now_ms();
    let mut b = BatchBuilder::new(ts);
    b.producer_id = producer_id;
    b.producer_epoch = epoch;
    b.base_sequence = sequence;
    b.is_transactional = true;
    for i in 0..n {
        b.push(ts, None, Some(Bytes::from(format!("txn-{i}"))), vec![]);
    }
    b.build().expect("batch").into_bytes()
}

/// InitProducerId (v`version`) for transactional id `id`, retried while the coordinator loads:
/// the producer id and epoch.
pub async fn init_transactional(c: &mut Client, id: &str, version: i16) -> (i64, i16) {
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(id.to_string().into())))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let resp = c.send(&init, version).await.expect("init producer id");
        if resp.error_code == 0 {
            return (resp.producer_id.0, resp.producer_epoch);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            resp.error_code
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub async fn create_topic(c: &mut Client, name: &str, partitions: i32) {
    let mut t = CreatableTopic::default();
    t.name = topic_name(name);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 10_000;
    let resp = c.send(&req, 7).await.expect("create topics");
    assert_eq!(
        resp.topics[0].error_code, 0,
        "{:?}",
        resp.topics[0].error_message
    );
}

pub async fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> ProduceResponse {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = topic_name(topic);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 10_000;
    req.topic_data = vec![t];
    c.send(&req, 9).await.expect("produce")
}

pub fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    p.current_leader_epoch = -1;
    p.last_fetched_epoch = -1;
    p.log_start_offset = -1;
    let mut t = FetchTopic::default();
    t.topic = topic_name(topic);
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = 50 << 20;
    req.session_epoch = -1;
    req.topics = vec![t];
    req
}

/// `n` listeners on 127.0.0.1 with free ports, and those ports (quorum members each need their
/// address before any of them starts).
pub async fn loopback_listeners(n: usize) -> (Vec<tokio::net::TcpListener>, Vec<u16>) {
    let mut listeners = Vec::new();
    for _ in 0..n {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback listener");
        listeners.push(l);
    }
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().expect("listener address").port())
        .collect();
    (listeners, ports)
}
