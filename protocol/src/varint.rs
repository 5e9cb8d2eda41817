//! Kafka's zig-zag `varint` (i32, at most 5 bytes) and `varlong` (i64, at most 10 bytes), the
//! integer encodings used inside v2 records: readers over `&[u8]` cursors, writers into `BytesMut`.
//!
//! Decoding follows Kafka's `ByteUtils`: a value that still has the continuation bit set after its
//! maximum length is an error; excess high bits in the last group are dropped, as Java does.

use bytes::{BufMut, BytesMut};

use crate::record_batch::BatchError;

/// Longest encoding of a varint (i32).
pub const MAX_VARINT_LEN: usize = 5;
/// Longest encoding of a varlong (i64).
pub const MAX_VARLONG_LEN: usize = 10;

/// Reads an unsigned LEB128 value of at most `max_len` bytes and advances `buf` past it.
fn read_raw(buf: &mut &[u8], max_len: usize) -> Result<u64, BatchError> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(max_len) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    if buf.len() < max_len {
        Err(BatchError::Truncated)
    } else {
        Err(BatchError::InvalidRecord(format!(
            "variable-length integer longer than {max_len} bytes"
        )))
    }
}

/// Reads a zig-zag varint (Kafka `readVarint`) and advances `buf` past it.
pub fn read_varint(buf: &mut &[u8]) -> Result<i32, BatchError> {
    // Truncation to 32 bits mirrors Java's int shifts for an over-long fifth byte.
    let raw = read_raw(buf, MAX_VARINT_LEN)? as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zig-zag varlong (Kafka `readVarlong`) and advances `buf` past it.
pub fn read_varlong(buf: &mut &[u8]) -> Result<i64, BatchError> {
    let raw = read_raw(buf, MAX_VARLONG_LEN)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn write_raw(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn raw_size(v: u64) -> usize {
    // Number of 7-bit groups needed; zero still takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends `v` as a zig-zag varint.
pub fn write_varint(out: &mut BytesMut, v: i32) {
    write_raw(out, zigzag32(v));
}

/// Appends `v` as a zig-zag varlong.
pub fn write_varlong(out: &mut BytesMut, v: i64) {
    write_raw(out, zigzag64(v));
}

/// Encoded size of `v` as a zig-zag varint (1..=5).
pub fn varint_size(v: i32) -> usize {
    raw_size(zigzag32(v))
}

/// Encoded size of `v` as a zig-zag varlong (1..=10).
pub fn varlong_size(v: i64) -> usize {
    raw_size(zigzag64(v))
}

#[cfg(test)]
#[path = "varint_test.rs"]
mod tests;
