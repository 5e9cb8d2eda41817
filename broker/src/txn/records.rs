//! `__transaction_state` records, byte-compatible with Kafka's transaction coordinator
//! (formats.md §8): key = int16 version 0 + TransactionLogKey {transactional id}; value = int16
//! version + TransactionLogValue, version 0 (classic) or 1 (flexible, with the tagged previous /
//! next producer ids and the client's transaction version); a null value is the tombstone of an
//! expired transactional id. Both value versions decode.

use super::state::{TxnState, TxnValue};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::BTreeMap;

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Too short.
    #[error("record of __transaction_state is truncated")]
    Truncated,
    /// Invalid UTF-8, a negative length or an unknown state.
    #[error("record of __transaction_state is malformed: {0}")]
    Malformed(&'static str),
    /// A version this broker does not know.
    #[error("unknown {0} version {1} in __transaction_state")]
    UnknownVersion(&'static str, i16),
}

type R<T> = Result<T, RecordError>;

/// The key of transactional id `id`.
pub fn key(id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + id.len());
    b.put_i16(0);
    put_str(&mut b, id);
    b.freeze()
}

/// The transactional id of a key.
pub fn decode_key(mut b: &[u8]) -> R<String> {
    let version = get_i16(&mut b)?;
    if version != 0 {
        return Err(RecordError::UnknownVersion("key", version));
    }
    get_str(&mut b)
}

/// The value of `v`, in value version `version` (0 or 1).
pub fn value(v: &TxnValue, version: i16) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(version);
    b.put_i64(v.producer_id);
    b.put_i16(v.producer_epoch);
    b.put_i32(v.timeout_ms);
    b.put_i8(v.state as i8);
    let flexible = version >= 1;
    put_partitions(&mut b, v.state, &v.partitions, flexible);
    b.put_i64(v.update_ts);
    b.put_i64(v.start_ts);
    if flexible {
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if v.prev_producer_id != -1 {
            tags.push((0, v.prev_producer_id.to_be_bytes().to_vec()));
        }
        if v.next_producer_id != -1 {
            tags.push((1, v.next_producer_id.to_be_bytes().to_vec()));
        }
        if v.client_version != 0 {
            tags.push((2, v.client_version.to_be_bytes().to_vec()));
        }
        put_uvarint(&mut b, tags.len() as u32);
        for (tag, data) in tags {
            put_uvarint(&mut b, tag);
            put_uvarint(&mut b, data.len() as u32);
            b.put_slice(&data);
        }
    }
    b.freeze()
}

/// Partitions grouped by topic; null (version 0: length -1, version 1: 0) when Empty.
fn put_partitions(
    b: &mut BytesMut,
    state: TxnState,
    partitions: &BTreeMap<String, Vec<i32>>,
    flexible: bool,
) {
    if state == TxnState::Empty {
        match flexible {
            true => put_uvarint(b, 0),
            false => b.put_i32(-1),
        }
        return;
    }
    match flexible {
        true => put_uvarint(b, partitions.len() as u32 + 1),
        false => b.put_i32(partitions.len() as i32),
    }
    for (topic, ids) in partitions {
        match flexible {
            true => {
                put_uvarint(b, topic.len() as u32 + 1);
                b.put_slice(topic.as_bytes());
                put_uvarint(b, ids.len() as u32 + 1);
            }
            false => {
                put_str(b, topic);
                b.put_i32(ids.len() as i32);
            }
        }
        for &p in ids {
            b.put_i32(p);
        }
        if flexible {
            put_uvarint(b, 0);
        }
    }
}

/// Decodes a value (version 0 or 1).
pub fn decode_value(mut b: &[u8]) -> R<TxnValue> {
    let version = get_i16(&mut b)?;
    if !(0..=1).contains(&version) {
        return Err(RecordError::UnknownVersion("value", version));
    }
    let flexible = version == 1;
    let producer_id = get_i64(&mut b)?;
    let producer_epoch = get_i16(&mut b)?;
    let timeout_ms = get_i32(&mut b)?;
    need(b, 1)?;
    let state = TxnState::from_i8(b.get_i8()).ok_or(RecordError::Malformed("state"))?;
    let partitions = get_partitions(&mut b, flexible)?;
    let update_ts = get_i64(&mut b)?;
    let start_ts = get_i64(&mut b)?;
    let mut v = TxnValue {
        producer_id,
        prev_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        update_ts,
        start_ts,
        client_version: 0,
    };
    if flexible {
        let count = get_uvarint(&mut b)?;
        for _ in 0..count {
            let tag = get_uvarint(&mut b)?;
            let len = get_uvarint(&mut b)? as usize;
            need(b, len)?;
            let mut data = &b[..len];
            match (tag, len) {
                (0, 8) => v.prev_producer_id = data.get_i64(),
                (1, 8) => v.next_producer_id = data.get_i64(),
                (2, 2) => v.client_version = data.get_i16(),
                _ => {}
            }
            b.advance(len);
        }
    }
    Ok(v)
}

fn get_partitions(b: &mut &[u8], flexible: bool) -> R<BTreeMap<String, Vec<i32>>> {
    let count = match flexible {
        true => i64::from(get_uvarint(b)?) - 1,
        false => i64::from(get_i32(b)?),
    };
    let mut out = BTreeMap::new();
    for _ in 0..count.max(0) {
        let topic = match flexible {
            true => get_compact_str(b)?,
            false => get_str(b)?,
        };
        let n = match flexible {
            true => i64::from(get_uvarint(b)?) - 1,
            false => i64::from(get_i32(b)?),
        };
        if n < 0 || n as usize > b.len() / 4 {
            return Err(RecordError::Malformed("partition count"));
        }
        let ids: Vec<i32> = (0..n).map(|_| b.get_i32()).collect();
        if flexible {
            skip_tags(b)?;
        }
        out.insert(topic, ids);
    }
    Ok(out)
}

fn skip_tags(b: &mut &[u8]) -> R<()> {
    for _ in 0..get_uvarint(b)? {
        get_uvarint(b)?;
        let len = get_uvarint(b)? as usize;
        need(b, len)?;
        b.advance(len);
    }
    Ok(())
}

fn need(b: &[u8], n: usize) -> R<()> {
    match b.len() >= n {
        true => Ok(()),
        false => Err(RecordError::Truncated),
    }
}

fn get_i16(b: &mut &[u8]) -> R<i16> {
    need(b, 2)?;
    Ok(b.get_i16())
}

fn get_i32(b: &mut &[u8]) -> R<i32> {
    need(b, 4)?;
    Ok(b.get_i32())
}

fn get_i64(b: &mut &[u8]) -> R<i64> {
    need(b, 8)?;
    Ok(b.get_i64())
}

fn get_str(b: &mut &[u8]) -> R<String> {
    let len = get_i16(b)?;
    let len = usize::try_from(len).map_err(|_| RecordError::Malformed("string length"))?;
    take_str(b, len)
}

fn get_compact_str(b: &mut &[u8]) -> R<String> {
    let len = get_uvarint(b)?;
    let len = len
        .checked_sub(1)
        .ok_or(RecordError::Malformed("null string"))?;
    take_str(b, len as usize)
}

fn take_str(b: &mut &[u8], len: usize) -> R<String> {
    need(b, len)?;
    let s = std::str::from_utf8(&b[..len]).map_err(|_| RecordError::Malformed("utf-8"))?;
    let s = s.to_string();
    b.advance(len);
    Ok(s)
}

fn put_str(b: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    b.put_i16(len as i16);
    b.put_slice(&s.as_bytes()[..len]);
}

fn put_uvarint(b: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn get_uvarint(b: &mut &[u8]) -> R<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        need(b, 1)?;
        let byte = b.get_u8();
        v |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(RecordError::Malformed("varint"))
}

#[cfg(test)]
#[path = "records_test.rs"]
mod tests;
