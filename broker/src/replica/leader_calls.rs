//! Requests one broker sends to the leader of a partition on another broker, as any Kafka client
//! would: an acks=all Produce, a consumer Fetch (up to the high watermark), ListOffsets and
//! OffsetForLeaderEpoch. Tiering uses them to reach `__remote_log_metadata` partitions led
//! elsewhere; a follower uses them to build its state from the remote tier.
//!
//! Every call names the topic (the versions chosen still carry topic names) and returns the
//! partition's Kafka error as an [`LeaderCallError::Refused`] code, so callers can tell a
//! leadership move from a broken connection.

use super::connection::BrokerConnection;
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use shale_raft::MetadataImage;

/// Fetch v12: the last version with topic names.
const FETCH_VERSION: i16 = 12;
/// Produce v9: flexible, topic names.
const PRODUCE_VERSION: i16 = 9;
/// ListOffsets v8: EARLIEST_LOCAL (-4) and the leader epoch of the answer.
const LIST_OFFSETS_VERSION: i16 = 8;
/// OffsetForLeaderEpoch v4: flexible, with a replica id.
const EPOCH_VERSION: i16 = 4;

/// Why a call to a leader failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderCallError {
    /// The partition has no live leader with an endpoint on the listener.
    #[error("{topic}-{partition} has no reachable leader")]
    NoLeader { topic: String, partition: i32 },
    /// The leader answered with a Kafka error code.
    #[error("{topic}-{partition}: the leader answered error {code}")]
    Refused {
        topic: String,
        partition: i32,
        code: i16,
    },
    /// The exchange itself failed (connection, timeout, malformed answer).
    #[error("{0:#}")]
    Io(#[from] anyhow::Error),
}

/// A partition and where its leader listens.
#[derive(Debug, Clone)]
pub struct LeaderOf {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub addr: (String, u16),
}

impl LeaderOf {
    /// The leader of `topic`-`partition` in `image`, reached on `listener`.
    pub fn find(
        image: &MetadataImage,
        topic: &str,
        partition: i32,
        listener: &str,
    ) -> Result<LeaderOf, LeaderCallError> {
        let no_leader = || LeaderCallError::NoLeader {
            topic: topic.to_string(),
            partition,
        };
        let leader = image
            .topic(topic)
            .and_then(|t| t.partitions.get(&partition))
            .map(|p| p.leader)
            .filter(|&l| l >= 0)
            .ok_or_else(no_leader)?;
        let endpoint = image
            .brokers
            .get(&leader)
            .and_then(|b| b.endpoints.iter().find(|e| e.name == listener))
            .ok_or_else(no_leader)?;
        Ok(LeaderOf {
            topic: topic.to_string(),
            partition,
            leader,
            addr: (endpoint.host.clone(), endpoint.port),
        })
    }

    fn refused(&self, code: i16) -> Result<(), LeaderCallError> {
        match code {
            0 => Ok(()),
            code => Err(LeaderCallError::Refused {
                topic: self.topic.clone(),
                partition: self.partition,
                code,
            }),
        }
    }

    fn name(&self) -> TopicName {
        TopicName(StrBytes::from_string(self.topic.clone()))
    }

    /// Sends `req` to the leader and decodes its answer.
    async fn exchange<Q: Encodable, R: Decodable>(
        &self,
        conn: &mut BrokerConnection,
        (api_key, version): (ApiKey, i16),
        req: &Q,
    ) -> Result<R, LeaderCallError> {
        let addr = (self.addr.0.as_str(), self.addr.1);
        Ok(conn.call(addr, api_key, version, req).await?)
    }

    /// This partition's entry among an answer's `entries` (`index` names each one's partition),
    /// or its error.
    fn pick<'a, P>(
        &self,
        mut entries: impl Iterator<Item = &'a P>,
        index: impl Fn(&P) -> i32,
        code: impl Fn(&P) -> i16,
    ) -> Result<&'a P, LeaderCallError> {
        let p = entries
            .find(|p| index(p) == self.partition)
            .ok_or_else(|| {
                LeaderCallError::Io(anyhow::anyhow!(
                    "the answer leaves out {}-{}",
                    self.topic,
                    self.partition
                ))
            })?;
        self.refused(code(p))?;
        Ok(p)
    }

    /// Appends `records` (one batch) with acks=all; the base offset it got.
    pub async fn produce(
        &self,
        conn: &mut BrokerConnection,
        records: Bytes,
        timeout_ms: i32,
    ) -> Result<i64, LeaderCallError> {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(timeout_ms)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(self.name())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(self.partition)
                    .with_records(Some(records))])]);
        let resp: ProduceResponse = self
            .exchange(conn, (ApiKey::Produce, PRODUCE_VERSION), &req)
            .await?;
        let entries = resp.responses.iter().flat_map(|t| &t.partition_responses);
        let p = self.pick(entries, |p| p.index, |p| p.error_code)?;
        Ok(p.base_offset)
    }

    /// Committed records from `offset` (at most about `max_bytes`) and the high watermark, as a
    /// consumer reads them.
    pub async fn fetch(
        &self,
        conn: &mut BrokerConnection,
        offset: i64,
        max_bytes: i32,
    ) -> Result<(Bytes, i64), LeaderCallError> {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(max_bytes)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(self.name())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(self.partition)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(offset)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(max_bytes)])]);
        let resp: FetchResponse = self
            .exchange(conn, (ApiKey::Fetch, FETCH_VERSION), &req)
            .await?;
        self.refused(resp.error_code)?;
        let entries = resp.responses.iter().flat_map(|t| &t.partitions);
        let p = self.pick(entries, |p| p.partition_index, |p| p.error_code)?;
        Ok((p.records.clone().unwrap_or_default(), p.high_watermark))
    }

    /// ListOffsets for `timestamp` (-1 latest committed, -4 earliest local, ...) as `replica`
    /// (-1 for a consumer): the offset and its leader epoch.
    pub async fn list_offset(
        &self,
        conn: &mut BrokerConnection,
        replica: i32,
        timestamp: i64,
    ) -> Result<(i64, i32), LeaderCallError> {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(replica))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(self.name())
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(self.partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp)])]);
        let resp: ListOffsetsResponse = self
            .exchange(conn, (ApiKey::ListOffsets, LIST_OFFSETS_VERSION), &req)
            .await?;
        let entries = resp.topics.iter().flat_map(|t| &t.partitions);
        let p = self.pick(entries, |p| p.partition_index, |p| p.error_code)?;
        Ok((p.offset, p.leader_epoch))
    }

    /// OffsetForLeaderEpoch as follower `replica`: the largest epoch <= `epoch` the leader
    /// knows and that epoch's end offset.
    pub async fn epoch_end(
        &self,
        conn: &mut BrokerConnection,
        replica: i32,
        epoch: i32,
    ) -> Result<(i32, i64), LeaderCallError> {
        let req = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(replica))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(self.name())
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(self.partition)
                    .with_current_leader_epoch(-1)
                    .with_leader_epoch(epoch)])]);
        let resp: OffsetForLeaderEpochResponse = self
            .exchange(conn, (ApiKey::OffsetForLeaderEpoch, EPOCH_VERSION), &req)
            .await?;
        let entries = resp.topics.iter().flat_map(|t| &t.partitions);
        let p = self.pick(entries, |p| p.partition, |p| p.error_code)?;
        Ok((p.leader_epoch, p.end_offset))
    }
}
