//! Crate-private byte primitives for Kafka's flexible (KIP-482) encoding: fixed big-endian ints,
//! unsigned varints, compact strings/bytes, uuids and tagged-field sections. Used by `serde` for
//! `__remote_log_metadata` values and by `snapshot` for the local snapshot file.
//!
//! The reader never panics: every short read is a [`RlmmError::Serde`] naming the field.

use crate::error::{Result, RlmmError};
use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Appends an unsigned LEB128 varint.
pub(crate) fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Appends a uuid as 16 big-endian bytes (msb then lsb).
pub(crate) fn put_uuid(buf: &mut BytesMut, id: &Uuid) {
    buf.put_slice(id.as_bytes());
}

/// Appends a non-null compact string.
pub(crate) fn put_compact_string(buf: &mut BytesMut, s: &str) {
    put_uvarint(buf, s.len() as u32 + 1);
    buf.put_slice(s.as_bytes());
}

/// Appends nullable compact bytes (length + 1, 0 = null).
pub(crate) fn put_compact_nullable_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_uvarint(buf, 0),
        Some(b) => {
            put_uvarint(buf, b.len() as u32 + 1);
            buf.put_slice(b);
        }
    }
}

/// Appends an empty tagged-field section.
pub(crate) fn put_empty_tags(buf: &mut BytesMut) {
    put_uvarint(buf, 0);
}

/// A bounds-checked cursor over a byte slice.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(RlmmError::serde(format!(
                "truncated at byte {} reading {what}: need {n}, have {}",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn i8(&mut self, what: &str) -> Result<i8> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i16(&mut self, what: &str) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn uuid(&mut self, what: &str) -> Result<Uuid> {
        Ok(Uuid::from_bytes(self.array(what)?))
    }

    /// An unsigned varint of at most 5 bytes whose value fits in 32 bits (non-minimal forms are
    /// accepted, like Kafka's reader).
    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u32> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let b = self.u8(what)?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return u32::try_from(value)
                    .map_err(|_| RlmmError::serde(format!("varint {what} exceeds 32 bits")));
            }
        }
        Err(RlmmError::serde(format!(
            "varint {what} longer than 5 bytes"
        )))
    }

    /// Compact length: `None` for null (0), else the length, checked against what is left.
    fn compact_len(&mut self, what: &str) -> Result<Option<usize>> {
        let raw = self.uvarint(what)?;
        if raw == 0 {
            return Ok(None);
        }
        let len = (raw - 1) as usize;
        if len > self.remaining() {
            return Err(RlmmError::serde(format!(
                "truncated at byte {} reading {what}: length {len}, have {}",
                self.pos,
                self.remaining()
            )));
        }
        Ok(Some(len))
    }

    /// A non-null compact UTF-8 string of at most 32767 bytes.
    pub(crate) fn compact_string(&mut self, what: &str) -> Result<String> {
        let len = self
            .compact_len(what)?
            .ok_or_else(|| RlmmError::serde(format!("non-nullable string {what} is null")))?;
        if len > i16::MAX as usize {
            return Err(RlmmError::serde(format!("string {what} too long: {len}")));
        }
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| RlmmError::serde(format!("string {what} is not UTF-8")))
    }

    /// Nullable compact bytes.
    pub(crate) fn compact_nullable_bytes(&mut self, what: &str) -> Result<Option<Bytes>> {
        match self.compact_len(what)? {
            None => Ok(None),
            Some(len) => Ok(Some(Bytes::copy_from_slice(self.take(len, what)?))),
        }
    }

    /// A non-null compact array count.
    pub(crate) fn compact_array_len(&mut self, what: &str) -> Result<usize> {
        let raw = self.uvarint(what)?;
        if raw == 0 {
            return Err(RlmmError::serde(format!(
                "non-nullable array {what} is null"
            )));
        }
        let n = (raw - 1) as usize;
        // Every element takes at least one byte; refuse absurd counts before allocating.
        if n > self.remaining() {
            return Err(RlmmError::serde(format!(
                "array {what} claims {n} elements with {} bytes left",
                self.remaining()
            )));
        }
        Ok(n)
    }

    /// Skips a tagged-field section (unknown tags are dropped).
    pub(crate) fn skip_tags(&mut self, what: &str) -> Result<()> {
        let count = self.uvarint(what)?;
        for _ in 0..count {
            self.uvarint(what)?;
            let size = self.uvarint(what)? as usize;
            self.take(size, what)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trip_and_limits() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut b = BytesMut::new();
            put_uvarint(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(r.uvarint("v").unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        // Non-minimal encoding of 4 is accepted.
        assert_eq!(Reader::new(&[0x84, 0x00]).uvarint("v").unwrap(), 4);
        // Six bytes, or a fifth byte overflowing 32 bits, are rejected.
        assert!(Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00])
            .uvarint("v")
            .is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f])
            .uvarint("v")
            .is_err());
        assert!(Reader::new(&[0x80]).uvarint("v").is_err());
    }

    #[test]
    fn compact_fields() {
        let mut b = BytesMut::new();
        put_compact_string(&mut b, "foo");
        put_compact_nullable_bytes(&mut b, None);
        put_compact_nullable_bytes(&mut b, Some(b"ab"));
        put_empty_tags(&mut b);
        assert_eq!(&b[..], &[4, b'f', b'o', b'o', 0, 3, b'a', b'b', 0]);
        let mut r = Reader::new(&b);
        assert_eq!(r.compact_string("s").unwrap(), "foo");
        assert_eq!(r.compact_nullable_bytes("n").unwrap(), None);
        assert_eq!(r.compact_nullable_bytes("b").unwrap().unwrap(), &b"ab"[..]);
        r.skip_tags("t").unwrap();
        assert_eq!(r.remaining(), 0);
        assert!(Reader::new(&[0]).compact_string("s").is_err());
        assert!(Reader::new(&[0xff, 0xfe, 0x01])
            .compact_string("s")
            .is_err());
    }

    #[test]
    fn unknown_tags_are_skipped() {
        // two tags: (tag 1, 2 bytes), (tag 7, 0 bytes)
        let raw = [2, 1, 2, 0xaa, 0xbb, 7, 0, 9];
        let mut r = Reader::new(&raw);
        r.skip_tags("t").unwrap();
        assert_eq!(r.remaining(), 1);
        assert!(Reader::new(&[1, 1, 5, 0]).skip_tags("t").is_err());
    }
}
