//! Kafka's "flexible" generated-message encoding (formats.md §0), the subset the metadata records
//! need: unsigned varints, fixed-width big-endian integers, UUIDs, compact (nullable) strings and
//! arrays, and tagged-field sections. A [`FlexWriter`] appends into `BytesMut`; a [`FlexReader`]
//! walks a byte slice and fails with [`RaftError::Decode`] (never panics) on short or bad input.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::error::RaftError;

/// Appends flexible-encoded fields.
#[derive(Debug, Default)]
pub(crate) struct FlexWriter {
    buf: BytesMut,
}

impl FlexWriter {
    pub(crate) fn new() -> Self {
        FlexWriter::default()
    }

    pub(crate) fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    pub(crate) fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    pub(crate) fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.buf.put_u8(u8::from(v));
    }

    pub(crate) fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    pub(crate) fn uuid(&mut self, v: &Uuid) {
        self.buf.put_slice(v.as_bytes());
    }

    /// Length prefix of a compact array/string: `len + 1`, 0 = null.
    fn compact_len(&mut self, len: Option<usize>) {
        self.uvarint(len.map_or(0, |l| l as u32 + 1));
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.compact_len(Some(s.len()));
        self.buf.put_slice(s.as_bytes());
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.compact_len(Some(b.len()));
        self.buf.put_slice(b);
    }

    pub(crate) fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.compact_len(None),
        }
    }

    pub(crate) fn i32_array(&mut self, v: &[i32]) {
        self.compact_len(Some(v.len()));
        v.iter().for_each(|x| self.i32(*x));
    }

    pub(crate) fn uuid_array(&mut self, v: &[Uuid]) {
        self.compact_len(Some(v.len()));
        v.iter().for_each(|x| self.uuid(x));
    }

    /// Array of structs: the count, then `each` per element (which must end the element with
    /// its own tag section).
    pub(crate) fn struct_array<T>(&mut self, v: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.compact_len(Some(v.len()));
        for x in v {
            each(self, x);
        }
    }

    /// A tagged-field section. `fields` must be in ascending tag order and hold only the fields
    /// whose value differs from the default.
    pub(crate) fn tags(&mut self, fields: &[(u32, Bytes)]) {
        self.uvarint(fields.len() as u32);
        for (tag, payload) in fields {
            self.uvarint(*tag);
            self.uvarint(payload.len() as u32);
            self.buf.put_slice(payload);
        }
    }

    /// An empty tagged-field section.
    pub(crate) fn no_tags(&mut self) {
        self.uvarint(0);
    }
}

/// Encodes one tagged value on its own, for [`FlexWriter::tags`].
pub(crate) fn tagged(f: impl FnOnce(&mut FlexWriter)) -> Bytes {
    let mut w = FlexWriter::new();
    f(&mut w);
    w.finish()
}

/// Reads flexible-encoded fields from a slice.
#[derive(Debug)]
pub(crate) struct FlexReader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> FlexReader<'a> {
    /// `what` names the message being read, for error messages.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        FlexReader { buf, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn err(&self, reason: impl std::fmt::Display) -> RaftError {
        RaftError::Decode(format!("{}: {reason}", self.what))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RaftError> {
        if self.buf.len() < n {
            return Err(self.err(format!(
                "truncated: needed {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RaftError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u32, RaftError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0];
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.err("unsigned varint longer than 5 bytes"))
    }

    pub(crate) fn i8(&mut self) -> Result<i8, RaftError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, RaftError> {
        Ok(self.take(1)?[0] != 0)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, RaftError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, RaftError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, RaftError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, RaftError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn uuid(&mut self) -> Result<Uuid, RaftError> {
        Ok(Uuid::from_bytes(self.array()?))
    }

    /// A compact length prefix: None for null.
    fn compact_len(&mut self) -> Result<Option<usize>, RaftError> {
        let raw = self.uvarint()?;
        let len = raw.checked_sub(1).map(|l| l as usize);
        if let Some(l) = len {
            // Every element takes at least one byte, so a count beyond the rest is corrupt.
            if l > self.buf.len() {
                return Err(self.err(format!(
                    "length {l} exceeds the {} bytes left",
                    self.buf.len()
                )));
            }
        }
        Ok(len)
    }

    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, RaftError> {
        match self.compact_len()? {
            None => Ok(None),
            Some(len) => {
                let raw = self.take(len)?;
                let s = std::str::from_utf8(raw).map_err(|e| self.err(e))?;
                Ok(Some(s.to_owned()))
            }
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, RaftError> {
        match self.compact_len()? {
            None => Err(self.err("null value for non-nullable bytes")),
            Some(len) => Ok(self.take(len)?.to_vec()),
        }
    }

    pub(crate) fn string(&mut self) -> Result<String, RaftError> {
        self.nullable_string()?
            .ok_or_else(|| self.err("null value for a non-nullable string"))
    }

    pub(crate) fn nullable_i32_array(&mut self) -> Result<Option<Vec<i32>>, RaftError> {
        match self.compact_len()? {
            None => Ok(None),
            Some(n) => (0..n)
                .map(|_| self.i32())
                .collect::<Result<_, _>>()
                .map(Some),
        }
    }

    pub(crate) fn i32_array(&mut self) -> Result<Vec<i32>, RaftError> {
        self.nullable_i32_array()?
            .ok_or_else(|| self.err("null value for a non-nullable array"))
    }

    pub(crate) fn nullable_uuid_array(&mut self) -> Result<Option<Vec<Uuid>>, RaftError> {
        match self.compact_len()? {
            None => Ok(None),
            Some(n) => (0..n)
                .map(|_| self.uuid())
                .collect::<Result<_, _>>()
                .map(Some),
        }
    }

    pub(crate) fn uuid_array(&mut self) -> Result<Vec<Uuid>, RaftError> {
        self.nullable_uuid_array()?
            .ok_or_else(|| self.err("null value for a non-nullable array"))
    }

    pub(crate) fn struct_array<T>(
        &mut self,
        mut each: impl FnMut(&mut Self) -> Result<T, RaftError>,
    ) -> Result<Vec<T>, RaftError> {
        let n = self
            .compact_len()?
            .ok_or_else(|| self.err("null value for a non-nullable array"))?;
        (0..n).map(|_| each(self)).collect()
    }

    /// Reads a tagged-field section, handing each known tag's payload to `on_tag` as a reader
    /// over exactly that payload (which must consume it all). Unknown tags are skipped, as
    /// Kafka keeps them only as opaque "unknown tagged fields".
    pub(crate) fn tags(
        &mut self,
        mut on_tag: impl FnMut(u32, &mut FlexReader<'a>) -> Result<bool, RaftError>,
    ) -> Result<(), RaftError> {
        let count = self.uvarint()?;
        let mut last: Option<u32> = None;
        for _ in 0..count {
            let tag = self.uvarint()?;
            if last.is_some_and(|l| tag <= l) {
                return Err(self.err(format!("tagged field {tag} out of order")));
            }
            last = Some(tag);
            let size = self.uvarint()? as usize;
            let mut sub = FlexReader::new(self.take(size)?, self.what);
            if on_tag(tag, &mut sub)? && sub.remaining() != 0 {
                return Err(self.err(format!("tagged field {tag} has trailing bytes")));
            }
        }
        Ok(())
    }

    /// A tag section where no tag is known.
    pub(crate) fn skip_tags(&mut self) -> Result<(), RaftError> {
        self.tags(|_, _| Ok(false))
    }

    pub(crate) fn expect_end(&self) -> Result<(), RaftError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err(format!("{} trailing bytes", self.buf.len())))
        }
    }
}
