//! Admin requests the driver needs around a run: create the topic when missing and wait for its
//! partitions, read partition offsets (ListOffsets), get a producer id (InitProducerId), and open
//! idle connections (ApiVersions, then silence).

use crate::wire::Conn;
use anyhow::{bail, Context};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, CreateTopicsRequest, InitProducerIdRequest, ListOffsetsRequest,
    MetadataRequest, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::time::{Duration, Instant};

/// TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// `ListOffsets` timestamp for the earliest offset.
pub const EARLIEST: i64 = -2;
/// `ListOffsets` timestamp for the latest offset.
pub const LATEST: i64 = -1;
/// `ListOffsets` timestamp for the earliest offset in the local tier (KIP-405).
pub const EARLIEST_LOCAL: i64 = -4;

/// A topic name for requests.
pub fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Number of partitions of `topic` per Metadata (`None` when it does not exist).
pub async fn partition_count(conn: &mut Conn, topic: &str) -> anyhow::Result<Option<usize>> {
    let mut t = MetadataRequestTopic::default();
    t.name = Some(topic_name(topic));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = false;
    let resp = conn.call(&req, 9).await.context("metadata")?;
    Ok(resp
        .topics
        .iter()
        .find(|t| t.error_code == 0 && t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))
        .map(|t| t.partitions.len()))
}

/// Creates `topic` with `partitions` unless it exists, then waits until Metadata shows it.
/// Returns the partition count the topic has.
pub async fn ensure_topic(
    conn: &mut Conn,
    topic: &str,
    partitions: i32,
    configs: &[(String, String)],
) -> anyhow::Result<usize> {
    if let Some(n) = partition_count(conn, topic).await? {
        return Ok(n);
    }
    let mut t = CreatableTopic::default();
    t.name = topic_name(topic);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    for (k, v) in configs {
        let mut c =
            kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default();
        c.name = StrBytes::from_string(k.clone());
        c.value = Some(StrBytes::from_string(v.clone()));
        t.configs.push(c);
    }
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let resp = conn.call(&req, 5).await.context("create topics")?;
    for t in &resp.topics {
        if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
            bail!(
                "create topic {topic}: error {} {:?}",
                t.error_code,
                t.error_message
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(n) = partition_count(conn, topic).await? {
            if n > 0 {
                return Ok(n);
            }
        }
        if Instant::now() > deadline {
            bail!("topic {topic} not visible in metadata after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Offsets of `partitions` of `topic` at `timestamp` (EARLIEST, LATEST, EARLIEST_LOCAL).
pub async fn list_offsets(
    conn: &mut Conn,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name(topic);
    for &p in partitions {
        let mut lp = ListOffsetsPartition::default();
        lp.partition_index = p;
        lp.timestamp = timestamp;
        lp.current_leader_epoch = -1;
        t.partitions.push(lp);
    }
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    let version = if timestamp == EARLIEST_LOCAL { 8 } else { 7 };
    let resp = conn.call(&req, version).await.context("list offsets")?;
    let mut out = Vec::with_capacity(partitions.len());
    for &p in partitions {
        let found = resp
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|lp| lp.partition_index == p)
            .with_context(|| format!("no ListOffsets answer for {topic}-{p}"))?;
        if found.error_code != 0 {
            bail!("list offsets {topic}-{p}: error {}", found.error_code);
        }
        out.push(found.offset);
    }
    Ok(out)
}

/// An idempotent producer id and epoch.
pub async fn init_producer_id(conn: &mut Conn) -> anyhow::Result<(i64, i16)> {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    let resp = conn.call(&req, 4).await.context("init producer id")?;
    if resp.error_code != 0 {
        bail!("init producer id: error {}", resp.error_code);
    }
    Ok((resp.producer_id.0, resp.producer_epoch))
}

/// Opens `n` connections that each complete one ApiVersions round trip and then stay idle.
pub async fn idle_connections(addr: &str, n: usize) -> anyhow::Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = Conn::connect(addr).await?;
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("shale-bench");
        req.client_software_version = StrBytes::from_static_str("0.1");
        c.call(&req, 3).await.context("api versions")?;
        conns.push(c);
    }
    Ok(conns)
}
