//! The four record-batch codecs (gzip, snappy, lz4, zstd) and the attribute bits that name them.
//!
//! Framings, chosen so that Java clients, librdkafka and kafka-python can read what we write and we
//! can read what they write:
//! * gzip: a standard GZIP stream (concatenated members accepted on read).
//! * snappy: written in the xerial `SnappyOutputStream` framing that Java uses (8-byte magic,
//!   two int32 versions, then `int32 length + raw snappy block` chunks of at most 32 KiB input).
//!   Read: xerial framing, the official snappy framing format, or a bare raw snappy block.
//! * lz4: the standard LZ4 frame (magic 0x184D2204). Written with independent 64 KiB blocks and
//!   no checksums or content size, like Java's `Lz4BlockOutputStream`; any standard frame is read.
//! * zstd: standard zstd frames, decoded as a stream (no content-size assumption).
//!
//! Every decoder takes an output limit ([`decompress_limited`]) so a tiny "bomb" cannot make us
//! allocate unbounded memory.
//!
//! Levels (KIP-390's `compression.gzip.level` / `compression.zstd.level`) are taken by
//! [`compress_with_level`]; lz4 has a single level here (`lz4_flex` has no high-compression
//! mode), so `compression.lz4.level` does not change the output.

use std::fmt;
use std::io::{Read, Write};

use crate::record_batch::BatchError;

/// Mask of the compression bits in batch attributes.
pub const COMPRESSION_MASK: i16 = 0x07;

/// Default decompressed-size ceiling used by [`decompress`] and by record iteration (256 MiB).
pub const DEFAULT_MAX_DECOMPRESSED: usize = 256 << 20;

/// Magic that starts a xerial (Java `SnappyOutputStream`) stream.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// xerial header: magic + int32 version + int32 compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// Input bytes per xerial chunk, as Java's default `SnappyOutputStream` block size.
const XERIAL_BLOCK: usize = 32 * 1024;
/// Stream identifier chunk of the official snappy framing format.
const SNAPPY_FRAMED_MAGIC: [u8; 10] = [0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y'];

/// Upper bound on snappy's output/input ratio (a 3-byte copy element produces 64 bytes).
const SNAPPY_MAX_EXPANSION: usize = 22;

/// zlib's default level, what Kafka's gzip level -1 (`Deflater.DEFAULT_COMPRESSION`) means.
const GZIP_LEVEL: u32 = 6;
/// Kafka's default `compression.zstd.level`.
const ZSTD_LEVEL: i32 = 3;

/// A batch compression codec (attribute bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records stored as-is.
    #[default]
    None,
    /// GZIP stream.
    Gzip,
    /// Snappy (xerial framing).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard frame.
    Zstd,
}

impl Compression {
    /// All codecs, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec named by the low three bits of batch `attributes`.
    pub fn from_attributes(attrs: i16) -> Result<Self, BatchError> {
        Self::from_id(attrs & COMPRESSION_MASK)
    }

    /// The codec with Kafka id `id` (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn from_id(id: i16) -> Result<Self, BatchError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// Kafka's numeric id, as stored in the attribute bits.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Kafka's name for the codec: "none", "gzip", "snappy", "lz4", "zstd".
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Inverse of [`Compression::name`] (exact, lowercase, like Java's `CompressionType.forName`).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Decompresses `input` with [`DEFAULT_MAX_DECOMPRESSED`] as the output ceiling.
pub fn decompress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, BatchError> {
    decompress_limited(codec, input, DEFAULT_MAX_DECOMPRESSED)
}

/// Decompresses `input`, failing with [`BatchError::DecompressedTooLarge`] once the output would
/// exceed `max_out` bytes (the work done is bounded by `max_out`, not by the claimed size).
pub fn decompress_limited(
    codec: Compression,
    input: &[u8],
    max_out: usize,
) -> Result<Vec<u8>, BatchError> {
    match codec {
        Compression::None => {
            if input.len() > max_out {
                return Err(too_large(codec, max_out));
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_limited(
            codec,
            flate2::read::MultiGzDecoder::new(input),
            input.len(),
            max_out,
        ),
        Compression::Snappy => snappy_decompress(input, max_out),
        Compression::Lz4 => lz4_decompress(input, max_out),
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| decompression(codec, e))?;
            read_limited(codec, dec, input.len(), max_out)
        }
    }
}

/// Compresses `input` in the framing Java clients expect (see the module docs), at the codec's
/// default level.
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, BatchError> {
    compress_with_level(codec, input, None)
}

/// [`compress`] at `level` (`None`: the codec's default). gzip takes 1–9 (anything else, such as
/// Kafka's -1, means the default 6); zstd takes its own range (negative levels are its fast
/// modes; out-of-range values are clamped by zstd); none, snappy and lz4 ignore the level.
pub fn compress_with_level(
    codec: Compression,
    input: &[u8],
    level: Option<i32>,
) -> Result<Vec<u8>, BatchError> {
    let fail = |e: std::io::Error| BatchError::CompressionFailed {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(input.len() / 2 + 32),
                flate2::Compression::new(gzip_level(level)),
            );
            enc.write_all(input).map_err(fail)?;
            enc.finish().map_err(fail)
        }
        Compression::Snappy => snappy_xerial_compress(input),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(input.len() / 2 + 32),
            );
            enc.write_all(input).map_err(fail)?;
            enc.finish().map_err(|e| BatchError::CompressionFailed {
                codec,
                reason: e.to_string(),
            })
        }
        Compression::Zstd => {
            zstd::stream::encode_all(input, level.unwrap_or(ZSTD_LEVEL)).map_err(fail)
        }
    }
}

fn gzip_level(level: Option<i32>) -> u32 {
    match level {
        Some(l @ 1..=9) => l as u32,
        _ => GZIP_LEVEL,
    }
}

fn too_large(codec: Compression, limit: usize) -> BatchError {
    BatchError::DecompressedTooLarge { codec, limit }
}

fn decompression(codec: Compression, reason: impl fmt::Display) -> BatchError {
    BatchError::Decompression {
        codec,
        reason: reason.to_string(),
    }
}

/// Drains `reader` into a vector, reading at most one byte past `max_out`.
fn read_limited(
    codec: Compression,
    reader: impl Read,
    input_len: usize,
    max_out: usize,
) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(input_len.saturating_mul(4).min(max_out).min(1 << 20));
    let cap = u64::try_from(max_out).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| decompression(codec, e))?;
    if out.len() > max_out {
        return Err(too_large(codec, max_out));
    }
    Ok(out)
}

/// Decodes one or more concatenated LZ4 frames (librdkafka reads on until the input ends).
fn lz4_decompress(input: &[u8], max_out: usize) -> Result<Vec<u8>, BatchError> {
    let codec = Compression::Lz4;
    let mut out = Vec::new();
    let mut rest = input;
    loop {
        let mut dec = lz4_flex::frame::FrameDecoder::new(rest);
        let budget = max_out - out.len();
        let frame = read_limited(codec, &mut dec, rest.len(), budget).map_err(|e| match e {
            BatchError::DecompressedTooLarge { .. } => too_large(codec, max_out),
            other => other,
        })?;
        out.extend_from_slice(&frame);
        // The decoder reads exactly the bytes of one frame from the slice.
        let after = dec.into_inner();
        if after.len() == rest.len() && !rest.is_empty() {
            return Err(decompression(codec, "lz4 decoder made no progress"));
        }
        rest = after;
        if rest.is_empty() {
            return Ok(out);
        }
    }
}

fn snappy_decompress(input: &[u8], max_out: usize) -> Result<Vec<u8>, BatchError> {
    let codec = Compression::Snappy;
    if input.starts_with(&XERIAL_MAGIC) {
        snappy_xerial_decompress(input, max_out)
    } else if input.starts_with(&SNAPPY_FRAMED_MAGIC) {
        read_limited(
            codec,
            snap::read::FrameDecoder::new(input),
            input.len(),
            max_out,
        )
    } else {
        let mut out = Vec::new();
        snappy_raw_append(input, &mut out, max_out)?;
        Ok(out)
    }
}

/// Decodes one raw snappy block, appending to `out` without letting it grow past `max_out`.
fn snappy_raw_append(block: &[u8], out: &mut Vec<u8>, max_out: usize) -> Result<(), BatchError> {
    let codec = Compression::Snappy;
    let len = snap::raw::decompress_len(block).map_err(|e| decompression(codec, e))?;
    let start = out.len();
    if len > max_out.saturating_sub(start) {
        return Err(too_large(codec, max_out));
    }
    // Snappy expands at most ~21x (a 3-byte copy op yields 64 bytes); refuse larger claims before
    // zero-filling the output.
    if len
        > block
            .len()
            .saturating_mul(SNAPPY_MAX_EXPANSION)
            .saturating_add(64)
    {
        return Err(decompression(
            codec,
            format!(
                "block of {} bytes claims {len} decompressed bytes",
                block.len()
            ),
        ));
    }
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| decompression(codec, e))?;
    out.truncate(start + n);
    Ok(())
}

fn snappy_xerial_decompress(input: &[u8], max_out: usize) -> Result<Vec<u8>, BatchError> {
    let codec = Compression::Snappy;
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        // A stream may be a concatenation of xerial streams, each starting with its own header.
        if rest.starts_with(&XERIAL_MAGIC) {
            if rest.len() < XERIAL_HEADER_LEN {
                return Err(decompression(codec, "truncated xerial header"));
            }
            rest = &rest[XERIAL_HEADER_LEN..];
            continue;
        }
        let Some((len_bytes, after)) = rest.split_first_chunk::<4>() else {
            return Err(decompression(codec, "truncated xerial chunk length"));
        };
        let chunk_len = i32::from_be_bytes(*len_bytes);
        let chunk_len = usize::try_from(chunk_len).map_err(|_| {
            decompression(codec, format!("negative xerial chunk length {chunk_len}"))
        })?;
        if after.len() < chunk_len {
            return Err(decompression(
                codec,
                format!(
                    "xerial chunk of {chunk_len} bytes but only {} remain",
                    after.len()
                ),
            ));
        }
        let (chunk, tail) = after.split_at(chunk_len);
        snappy_raw_append(chunk, &mut out, max_out)?;
        rest = tail;
    }
    Ok(out)
}

fn snappy_xerial_compress(input: &[u8]) -> Result<Vec<u8>, BatchError> {
    let codec = Compression::Snappy;
    let mut out = Vec::with_capacity(
        XERIAL_HEADER_LEN
            + snap::raw::max_compress_len(input.len())
            + 4 * (input.len() / XERIAL_BLOCK + 1),
    );
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    let mut scratch = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK.min(input.len()))];
    for block in input.chunks(XERIAL_BLOCK) {
        let n = enc
            .compress(block, &mut scratch)
            .map_err(|e| BatchError::CompressionFailed {
                codec,
                reason: e.to_string(),
            })?;
        let n32 = i32::try_from(n).map_err(|_| BatchError::CompressionFailed {
            codec,
            reason: format!("snappy block of {n} bytes"),
        })?;
        out.extend_from_slice(&n32.to_be_bytes());
        out.extend_from_slice(&scratch[..n]);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "compression_test.rs"]
mod tests;
