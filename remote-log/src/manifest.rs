//! [`SegmentManifest`]: the compact binary custom metadata of an uploaded segment (≤ 128 bytes).
//!
//! Format (version 1): `version:u8 | present:u8 (bit i = section i exists) | log_size:uvarint |
//! log_crc32c:u32 BE | 5 × section_len:uvarint` with sections in `.indexes` object order:
//! offset, timestamp, producer snapshot, leader epoch, transaction. The same bytes, followed by
//! their length as one byte, end the `.indexes` object so a segment without custom metadata can
//! still be read (HEAD + one GET of the footer).

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{RemoteLogError, Result};
use crate::rsm::IndexType;

const VERSION: u8 = 1;
const SECTIONS: usize = 5;

/// Where a segment's bytes and index sections are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentManifest {
    /// Size of the `.log` object.
    pub log_size: u64,
    /// CRC-32C of the `.log` object.
    pub log_crc: u32,
    /// Section lengths in object order; `None` = index absent.
    pub sections: [Option<u64>; SECTIONS],
}

/// Position of an index type inside the `.indexes` object.
pub fn object_slot(index: IndexType) -> usize {
    match index {
        IndexType::Offset => 0,
        IndexType::Timestamp => 1,
        IndexType::ProducerSnapshot => 2,
        IndexType::LeaderEpoch => 3,
        IndexType::Transaction => 4,
    }
}

fn put_uvarint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn get_uvarint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl SegmentManifest {
    /// Encodes to the custom-metadata form (at most 67 bytes).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        out.put_u8(VERSION);
        let mut present = 0u8;
        for (i, s) in self.sections.iter().enumerate() {
            if s.is_some() {
                present |= 1 << i;
            }
        }
        out.put_u8(present);
        put_uvarint(&mut out, self.log_size);
        out.put_u32(self.log_crc);
        for s in &self.sections {
            put_uvarint(&mut out, s.unwrap_or(0));
        }
        out.freeze()
    }

    /// Decodes [`Self::encode`] output; `what` names the segment in errors.
    pub fn decode(buf: &[u8], what: &str) -> Result<Self> {
        let bad = |d: &str| RemoteLogError::corrupt(format!("custom metadata of {what}"), d);
        if buf.len() < 2 || buf[0] != VERSION {
            return Err(bad("missing or unknown version"));
        }
        let present = buf[1];
        let mut pos = 2;
        let log_size = get_uvarint(buf, &mut pos).ok_or_else(|| bad("truncated log size"))?;
        let crc_bytes: [u8; 4] = buf
            .get(pos..pos + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("truncated crc"))?;
        pos += 4;
        let mut sections = [None; SECTIONS];
        for (i, s) in sections.iter_mut().enumerate() {
            let len = get_uvarint(buf, &mut pos).ok_or_else(|| bad("truncated section length"))?;
            *s = (present & (1 << i) != 0).then_some(len);
        }
        if pos != buf.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(SegmentManifest {
            log_size,
            log_crc: u32::from_be_bytes(crc_bytes),
            sections,
        })
    }

    /// Byte range of an index inside the `.indexes` object, `None` if the index is absent.
    pub fn section(&self, index: IndexType) -> Option<Range<u64>> {
        let slot = object_slot(index);
        let len = self.sections[slot]?;
        let start: u64 = self.sections[..slot].iter().map(|s| s.unwrap_or(0)).sum();
        Some(start..start + len)
    }

    /// Total length of all sections (the footer starts here).
    pub fn sections_len(&self) -> u64 {
        self.sections.iter().map(|s| s.unwrap_or(0)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stays_small() {
        let m = SegmentManifest {
            log_size: u64::MAX,
            log_crc: 0xdead_beef,
            sections: [Some(u64::MAX), Some(0), None, Some(12), None],
        };
        let enc = m.encode();
        assert!(enc.len() <= 67, "{}", enc.len());
        assert_eq!(SegmentManifest::decode(&enc, "s").unwrap(), m);
        assert_eq!(m.section(IndexType::ProducerSnapshot), None);
        assert_eq!(m.section(IndexType::Timestamp), Some(u64::MAX..u64::MAX));
    }

    #[test]
    fn sections_are_located_in_object_order() {
        let m = SegmentManifest {
            log_size: 10,
            log_crc: 1,
            sections: [Some(8), Some(12), Some(5), Some(20), Some(3)],
        };
        assert_eq!(m.section(IndexType::Offset), Some(0..8));
        assert_eq!(m.section(IndexType::Timestamp), Some(8..20));
        assert_eq!(m.section(IndexType::ProducerSnapshot), Some(20..25));
        assert_eq!(m.section(IndexType::LeaderEpoch), Some(25..45));
        assert_eq!(m.section(IndexType::Transaction), Some(45..48));
        assert_eq!(m.sections_len(), 48);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = SegmentManifest {
            log_size: 300,
            log_crc: 7,
            sections: [Some(1); 5],
        }
        .encode();
        for cut in 0..good.len() {
            assert!(SegmentManifest::decode(&good[..cut], "s").is_err());
        }
        assert!(SegmentManifest::decode(&[2, 0], "s").is_err());
        let mut long = good.to_vec();
        long.push(0);
        assert!(SegmentManifest::decode(&long, "s").is_err());
        assert!(SegmentManifest::decode(
            &[1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            "s"
        )
        .is_err());
    }
}
