//! Our own Fetch response encoder (versions 4..=18) that chains record `Bytes` instead of copying
//! them.
//!
//! Owns the Fetch response wire layout: flexible encoding from v12, topic ids instead of names
//! from v13, per-partition tagged fields diverging_epoch (0), current_leader (1), snapshot_id
//! (2) at v12+, and the top-level node_endpoints (0) tagged field at v16+. As in Apache Kafka's
//! generated code, a tagged field is written only when its value differs from its default
//! (struct fields all -1, node_endpoints empty); kafka-protocol 0.18 follows the same rule, and
//! the byte-equality tests in `fetch_writer_test.rs` check it for every version.
//!
//! The output is a list of chunks: the metadata is written into one buffer, frozen once, and cut
//! into slices around the record chunks, which are passed through untouched. Empty records are
//! written as an empty (length 0) field, never null — librdkafka rejects a null MessageSet.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;

use crate::codec::CodecError;

/// A Fetch response, ready to be framed by [`encode_fetch_response`].
#[derive(Debug, Clone, Default)]
pub struct FetchResponseData {
    pub throttle_time_ms: i32,
    /// Top-level error code (v7+).
    pub error_code: i16,
    /// Fetch session id (v7+; ignored below).
    pub session_id: i32,
    pub topics: Vec<FetchTopicData>,
    /// Endpoints of leaders named in `current_leader` (v16+; ignored below).
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// One topic of a Fetch response.
#[derive(Debug, Clone)]
pub struct FetchTopicData {
    /// Topic name, written below v13.
    pub topic: StrBytes,
    /// Topic id, written from v13.
    pub topic_id: uuid::Uuid,
    pub partitions: Vec<FetchPartitionData>,
}

/// One partition of a Fetch response. Use `..Default::default()` and set `last_stable_offset`,
/// `log_start_offset` and `preferred_read_replica` (-1 when unknown / none).
#[derive(Debug, Clone, Default)]
pub struct FetchPartitionData {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    /// Written from v5.
    pub log_start_offset: i64,
    /// `(epoch, end_offset)`, v12+ tagged field 0.
    pub diverging_epoch: Option<(i32, i64)>,
    /// `(leader_id, leader_epoch)`, v12+ tagged field 1.
    pub current_leader: Option<(i32, i32)>,
    /// `(end_offset, epoch)`, v12+ tagged field 2.
    pub snapshot_id: Option<(i64, i32)>,
    /// `(producer_id, first_offset)`; `None` is written as a null array.
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
    /// Written from v11.
    pub preferred_read_replica: i32,
    /// Chunks concatenated on the wire; an empty vec is an EMPTY records field, never null.
    pub records: Vec<Bytes>,
}

/// A broker endpoint in the v16+ `node_endpoints` tagged field.
#[derive(Debug, Clone)]
pub struct NodeEndpoint {
    pub node_id: i32,
    pub host: StrBytes,
    pub port: i32,
    pub rack: Option<StrBytes>,
}

/// Lowest and highest Fetch versions this writer encodes.
pub const MIN_VERSION: i16 = 4;
pub const MAX_VERSION: i16 = 18;

/// Encodes the whole response frame as chunks: chunk 0 = 4-byte size prefix + response header +
/// metadata up to the first records, then the record `Bytes` themselves with the metadata parts
/// in between. The chunks add up to `4 + size prefix` bytes. Empty chunks are never emitted.
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    data: &FetchResponseData,
) -> Result<Vec<Bytes>, CodecError> {
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(CodecError::UnsupportedVersion {
            api_key: ApiKey::Fetch as i16,
            version,
        });
    }
    let mut w = Writer {
        version,
        flexible: version >= 12,
        meta: BytesMut::with_capacity(256),
        splices: Vec::new(),
        records_len: 0,
    };
    w.meta.put_i32(0); // size prefix, patched below
    w.meta.put_i32(correlation_id);
    if w.flexible {
        w.meta.put_u8(0); // response header v1: no tagged fields
    }
    w.body(data)?;
    let size = w.meta.len() - 4 + w.records_len;
    let size = i32::try_from(size).map_err(|_| w.err(format!("response of {size} bytes")))?;
    w.meta[..4].copy_from_slice(&size.to_be_bytes());
    Ok(w.into_chunks())
}

/// Total frame length (size prefix included) of the chunks [`encode_fetch_response`] returns.
pub fn frame_len(chunks: &[Bytes]) -> usize {
    chunks.iter().map(Bytes::len).sum()
}

struct Writer<'a> {
    version: i16,
    flexible: bool,
    meta: BytesMut,
    /// (offset in `meta` where these records go, the record chunks).
    splices: Vec<(usize, &'a [Bytes])>,
    records_len: usize,
}

impl<'a> Writer<'a> {
    fn err(&self, reason: String) -> CodecError {
        CodecError::Malformed {
            api_key: ApiKey::Fetch as i16,
            version: self.version,
            reason,
        }
    }

    fn body(&mut self, data: &'a FetchResponseData) -> Result<(), CodecError> {
        self.meta.put_i32(data.throttle_time_ms);
        if self.version >= 7 {
            self.meta.put_i16(data.error_code);
            self.meta.put_i32(data.session_id);
        }
        self.array_len(data.topics.len())?;
        for topic in &data.topics {
            if self.version <= 12 {
                self.string(&topic.topic)?;
            } else {
                self.meta.put_slice(topic.topic_id.as_bytes());
            }
            self.array_len(topic.partitions.len())?;
            for p in &topic.partitions {
                self.partition(p)?;
            }
            if self.flexible {
                self.meta.put_u8(0); // topic tagged fields
            }
        }
        if self.flexible {
            if self.version >= 16 && !data.node_endpoints.is_empty() {
                let mut field = BytesMut::new();
                put_uvarint(&mut field, data.node_endpoints.len() as u64 + 1);
                for n in &data.node_endpoints {
                    field.put_i32(n.node_id);
                    put_compact_string(&mut field, Some(&n.host));
                    field.put_i32(n.port);
                    put_compact_string(&mut field, n.rack.as_ref());
                    field.put_u8(0);
                }
                self.meta.put_u8(1);
                self.tagged(0, &field);
            } else {
                self.meta.put_u8(0);
            }
        }
        Ok(())
    }

    fn partition(&mut self, p: &'a FetchPartitionData) -> Result<(), CodecError> {
        let m = &mut self.meta;
        m.put_i32(p.partition_index);
        m.put_i16(p.error_code);
        m.put_i64(p.high_watermark);
        m.put_i64(p.last_stable_offset);
        if self.version >= 5 {
            m.put_i64(p.log_start_offset);
        }
        match &p.aborted_transactions {
            None if self.flexible => m.put_u8(0),
            None => m.put_i32(-1),
            Some(txns) => {
                self.array_len(txns.len())?;
                for &(producer_id, first_offset) in txns {
                    self.meta.put_i64(producer_id);
                    self.meta.put_i64(first_offset);
                    if self.flexible {
                        self.meta.put_u8(0);
                    }
                }
            }
        }
        if self.version >= 11 {
            self.meta.put_i32(p.preferred_read_replica);
        }
        let len: usize = p.records.iter().map(Bytes::len).sum();
        if self.flexible {
            let len =
                u32::try_from(len + 1).map_err(|_| self.err(format!("{len} record bytes")))?;
            put_uvarint(&mut self.meta, u64::from(len));
        } else {
            let len = i32::try_from(len).map_err(|_| self.err(format!("{len} record bytes")))?;
            self.meta.put_i32(len);
        }
        if len > 0 {
            self.splices.push((self.meta.len(), &p.records));
            self.records_len += len;
        }
        if self.flexible {
            self.partition_tags(p);
        }
        Ok(())
    }

    /// Tagged fields 0..=2, each only when set to a non-default value (Kafka's rule: a struct
    /// field equal to a freshly built default struct, all -1 here, is omitted).
    fn partition_tags(&mut self, p: &FetchPartitionData) {
        let diverging = p.diverging_epoch.filter(|&v| v != (-1, -1));
        let leader = p.current_leader.filter(|&v| v != (-1, -1));
        let snapshot = p.snapshot_id.filter(|&v| v != (-1, -1));
        let count = diverging.is_some() as u8 + leader.is_some() as u8 + snapshot.is_some() as u8;
        self.meta.put_u8(count);
        if let Some((epoch, end_offset)) = diverging {
            let mut f = [0u8; 13];
            f[..4].copy_from_slice(&epoch.to_be_bytes());
            f[4..12].copy_from_slice(&end_offset.to_be_bytes());
            self.tagged(0, &f);
        }
        if let Some((leader_id, leader_epoch)) = leader {
            let mut f = [0u8; 9];
            f[..4].copy_from_slice(&leader_id.to_be_bytes());
            f[4..8].copy_from_slice(&leader_epoch.to_be_bytes());
            self.tagged(1, &f);
        }
        if let Some((end_offset, epoch)) = snapshot {
            let mut f = [0u8; 13];
            f[..8].copy_from_slice(&end_offset.to_be_bytes());
            f[8..12].copy_from_slice(&epoch.to_be_bytes());
            self.tagged(2, &f);
        }
    }

    fn tagged(&mut self, tag: u64, field: &[u8]) {
        put_uvarint(&mut self.meta, tag);
        put_uvarint(&mut self.meta, field.len() as u64);
        self.meta.put_slice(field);
    }

    fn array_len(&mut self, n: usize) -> Result<(), CodecError> {
        if self.flexible {
            let n = u32::try_from(n + 1).map_err(|_| self.err(format!("{n} array items")))?;
            put_uvarint(&mut self.meta, u64::from(n));
        } else {
            let n = i32::try_from(n).map_err(|_| self.err(format!("{n} array items")))?;
            self.meta.put_i32(n);
        }
        Ok(())
    }

    fn string(&mut self, s: &StrBytes) -> Result<(), CodecError> {
        if self.flexible {
            put_compact_string(&mut self.meta, Some(s));
        } else {
            let len = i16::try_from(s.len())
                .map_err(|_| self.err(format!("topic name of {} bytes", s.len())))?;
            self.meta.put_i16(len);
            self.meta.put_slice(s.as_bytes());
        }
        Ok(())
    }

    fn into_chunks(self) -> Vec<Bytes> {
        let meta = self.meta.freeze();
        let mut chunks = Vec::with_capacity(2 * self.splices.len() + 1);
        let mut from = 0;
        for (at, records) in self.splices {
            if at > from {
                chunks.push(meta.slice(from..at));
            }
            chunks.extend(records.iter().filter(|c| !c.is_empty()).cloned());
            from = at;
        }
        if meta.len() > from {
            chunks.push(meta.slice(from..));
        }
        chunks
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_compact_string(buf: &mut BytesMut, s: Option<&StrBytes>) {
    match s {
        None => buf.put_u8(0),
        Some(s) => {
            put_uvarint(buf, s.len() as u64 + 1);
            buf.put_slice(s.as_bytes());
        }
    }
}

#[cfg(test)]
#[path = "fetch_writer_test.rs"]
mod tests;
