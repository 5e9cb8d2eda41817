//! `__consumer_offsets` record keys and values, byte-compatible with Kafka's group coordinator:
//! offset commits (key v1, value v3, or v1 with an explicit expire timestamp), group metadata
//! (key v2, value v3), tombstones as null values. Decoding accepts every classic version
//! (offset values 0–4, group values 0–4) and reports other record types as [`Decoded::Other`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A committed offset as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetValue {
    /// The committed offset.
    pub offset: i64,
    /// Leader epoch of the committed record (−1 none).
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: String,
    /// When it was committed.
    pub commit_ts: i64,
    /// Explicit expiry (OffsetCommit v2–4 retention time), if any.
    pub expire_ts: Option<i64>,
}

/// One member in a group metadata value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberValue {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Metadata of the selected protocol.
    pub subscription: Bytes,
    /// The member's assignment.
    pub assignment: Bytes,
}

/// A classic group's metadata value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupValue {
    /// Protocol type (`consumer`, `connect`, …).
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Selected protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group entered its state (−1 unknown).
    pub state_ts: i64,
    /// Members.
    pub members: Vec<MemberValue>,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Offset commit; `None` value = tombstone.
    Offset {
        /// Group.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Value.
        value: Option<OffsetValue>,
    },
    /// Group metadata; `None` value = the group was deleted.
    Group {
        /// Group.
        group: String,
        /// Value.
        value: Option<GroupValue>,
    },
    /// Any other record type (consumer/share groups): ignored.
    Other(i16),
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Too short.
    #[error("record of __consumer_offsets is truncated")]
    Truncated,
    /// Invalid UTF-8 or negative length.
    #[error("record of __consumer_offsets is malformed: {0}")]
    Malformed(&'static str),
    /// A version this broker does not know.
    #[error("unknown {0} version {1} in __consumer_offsets")]
    UnknownVersion(&'static str, i16),
}

fn put_str(out: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    out.put_i16(len as i16);
    out.put_slice(&s.as_bytes()[..len]);
}

fn put_opt_str(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

/// Offset commit key (record type 1).
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

/// Offset commit value: v3, or v1 when an explicit expire timestamp is set.
pub fn offset_value(v: &OffsetValue) -> Bytes {
    let mut b = BytesMut::new();
    match v.expire_ts {
        Some(expire) => {
            b.put_i16(1);
            b.put_i64(v.offset);
            put_str(&mut b, &v.metadata);
            b.put_i64(v.commit_ts);
            b.put_i64(expire);
        }
        None => {
            b.put_i16(3);
            b.put_i64(v.offset);
            b.put_i32(v.leader_epoch);
            put_str(&mut b, &v.metadata);
            b.put_i64(v.commit_ts);
        }
    }
    b.freeze()
}

/// Group metadata key (record type 2).
pub fn group_key(group: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(2);
    put_str(&mut b, group);
    b.freeze()
}

/// Group metadata value v3.
pub fn group_value(v: &GroupValue) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    put_str(&mut b, &v.protocol_type);
    b.put_i32(v.generation);
    put_opt_str(&mut b, v.protocol.as_deref());
    put_opt_str(&mut b, v.leader.as_deref());
    b.put_i64(v.state_ts);
    b.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_str(&mut b, &m.member_id);
        put_opt_str(&mut b, m.instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// A bounds-checked reader of generated-message fields.
struct Reader {
    buf: Bytes,
    flexible: bool,
}

impl Reader {
    fn need(&self, n: usize) -> Result<(), RecordError> {
        if self.buf.remaining() < n {
            return Err(RecordError::Truncated);
        }
        Ok(())
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }
    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            self.need(1)?;
            let b = self.buf.get_u8();
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::Malformed("varint too long"))
    }
    /// Length of a string/bytes/array; `None` for null.
    fn len(&mut self, wide: bool) -> Result<Option<usize>, RecordError> {
        let n: i64 = if self.flexible {
            self.uvarint()? as i64 - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if n < -1 {
            return Err(RecordError::Malformed("negative length"));
        }
        Ok((n >= 0).then_some(n as usize))
    }
    fn raw(&mut self, n: usize) -> Result<Bytes, RecordError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }
    fn opt_str(&mut self) -> Result<Option<String>, RecordError> {
        match self.len(false)? {
            None => Ok(None),
            Some(n) => {
                let raw = self.raw(n)?;
                String::from_utf8(raw.to_vec())
                    .map(Some)
                    .map_err(|_| RecordError::Malformed("invalid UTF-8"))
            }
        }
    }
    fn str(&mut self) -> Result<String, RecordError> {
        Ok(self.opt_str()?.unwrap_or_default())
    }
    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        match self.len(true)? {
            None => Ok(Bytes::new()),
            Some(n) => self.raw(n),
        }
    }
    fn tags(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.raw(size)?;
        }
        Ok(())
    }
}

/// Decodes one record of `__consumer_offsets`.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Decoded, RecordError> {
    let mut k = Reader {
        buf: Bytes::copy_from_slice(key),
        flexible: false,
    };
    let kind = k.i16()?;
    match kind {
        0 | 1 => {
            let group = k.str()?;
            let topic = k.str()?;
            let partition = k.i32()?;
            let value = value.map(decode_offset_value).transpose()?;
            Ok(Decoded::Offset {
                group,
                topic,
                partition,
                value,
            })
        }
        2 => {
            let group = k.str()?;
            let value = value.map(decode_group_value).transpose()?;
            Ok(Decoded::Group { group, value })
        }
        other => Ok(Decoded::Other(other)),
    }
}

fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue, RecordError> {
    let mut r = Reader {
        buf: Bytes::copy_from_slice(bytes),
        flexible: false,
    };
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnknownVersion("offset commit value", version));
    }
    r.flexible = version >= 4;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_ts = r.i64()?;
    let expire_ts = if version == 1 { Some(r.i64()?) } else { None };
    r.tags()?;
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_ts,
        expire_ts,
    })
}

fn decode_group_value(bytes: &[u8]) -> Result<GroupValue, RecordError> {
    let mut r = Reader {
        buf: Bytes::copy_from_slice(bytes),
        flexible: false,
    };
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnknownVersion("group metadata value", version));
    }
    r.flexible = version >= 4;
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.opt_str()?;
    let leader = r.opt_str()?;
    let state_ts = if version >= 2 { r.i64()? } else { -1 };
    let count = r.len(true)?.unwrap_or(0);
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = r.str()?;
        let instance_id = if version >= 3 { r.opt_str()? } else { None };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        r.tags()?;
        members.push(MemberValue {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                session_timeout_ms
            } else {
                rebalance_timeout_ms
            },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.tags()?;
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_ts,
        members,
    })
}

/// Java's `String.hashCode` over UTF-16 code units, with wrapping arithmetic.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// The `__consumer_offsets` partition of a group: `abs(hash) % partitions`, `abs(i32::MIN) = 0`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let h = java_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
#[path = "records_test.rs"]
mod tests;
