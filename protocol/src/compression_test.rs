use super::*;
use shale_common::SeededRng;

/// `n` pseudo-random bytes, eight per RNG call (the seeded RNG is slow in debug builds).
fn random_bytes(rng: &dyn shale_common::Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(n);
    v
}
use std::io::Write;

fn samples() -> Vec<Vec<u8>> {
    let rng = SeededRng::new(7);
    let random = random_bytes(&*rng, 100_000);
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog. "
        .iter()
        .copied()
        .cycle()
        .take(300_000)
        .collect();
    vec![Vec::new(), vec![42], b"hello world".to_vec(), random, text]
}

#[test]
fn ids_names_attributes() {
    for (i, c) in Compression::ALL.into_iter().enumerate() {
        assert_eq!(c.id(), i as i16);
        assert_eq!(Compression::from_id(i as i16).unwrap(), c);
        assert_eq!(Compression::from_name(c.name()), Some(c));
        assert_eq!(c.to_string(), c.name());
        // Higher attribute bits do not affect the codec.
        assert_eq!(Compression::from_attributes(0x78 | i as i16).unwrap(), c);
    }
    let names: Vec<_> = Compression::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["none", "gzip", "snappy", "lz4", "zstd"]);
    for bad in [5i16, 6, 7] {
        assert_eq!(
            Compression::from_attributes(bad),
            Err(BatchError::UnknownCompression(bad))
        );
    }
    assert_eq!(Compression::from_name("LZ4"), None);
    assert_eq!(Compression::from_name("producer"), None);
    assert_eq!(Compression::default(), Compression::None);
}

#[test]
fn round_trip_every_codec() {
    for c in Compression::ALL {
        for input in samples() {
            let packed = compress(c, &input).unwrap();
            assert_eq!(
                decompress(c, &packed).unwrap(),
                input,
                "{c} len {}",
                input.len()
            );
            assert_eq!(decompress_limited(c, &packed, input.len()).unwrap(), input);
            if input.len() > 1 {
                assert!(matches!(
                    decompress_limited(c, &packed, input.len() - 1),
                    Err(BatchError::DecompressedTooLarge { codec, .. }) if codec == c
                ));
            }
        }
    }
}

#[test]
fn snappy_writes_java_xerial_framing() {
    let input: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
    let packed = compress(Compression::Snappy, &input).unwrap();
    assert_eq!(&packed[..8], &XERIAL_MAGIC);
    assert_eq!(&packed[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
    // Chunks of 32 KiB input each: 70 000 bytes → 3 chunks, each a raw snappy block.
    let mut rest = &packed[16..];
    let mut decoded = Vec::new();
    let mut chunks = 0;
    while !rest.is_empty() {
        let n = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let block = snap::raw::Decoder::new()
            .decompress_vec(&rest[4..4 + n])
            .unwrap();
        assert!(block.len() <= 32 * 1024);
        decoded.extend_from_slice(&block);
        rest = &rest[4 + n..];
        chunks += 1;
    }
    assert_eq!(chunks, 3);
    assert_eq!(decoded, input);
}

#[test]
fn snappy_reads_raw_framed_and_concatenated_xerial() {
    let input = b"raw snappy block, raw snappy block, raw snappy block".to_vec();
    let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
    assert_eq!(decompress(Compression::Snappy, &raw).unwrap(), input);

    let mut framed = snap::write::FrameEncoder::new(Vec::new());
    framed.write_all(&input).unwrap();
    let framed = framed.into_inner().unwrap();
    assert_eq!(decompress(Compression::Snappy, &framed).unwrap(), input);
    assert!(matches!(
        decompress_limited(Compression::Snappy, &framed, 10),
        Err(BatchError::DecompressedTooLarge { .. })
    ));

    let mut two = compress(Compression::Snappy, b"first ").unwrap();
    two.extend(compress(Compression::Snappy, b"second").unwrap());
    assert_eq!(
        decompress(Compression::Snappy, &two).unwrap(),
        b"first second"
    );

    // Header only (what an empty Java stream may look like) is empty.
    assert_eq!(
        decompress(Compression::Snappy, &XERIAL_MAGIC_WITH_VERSIONS).unwrap(),
        b""
    );
}

const XERIAL_MAGIC_WITH_VERSIONS: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];

#[test]
fn snappy_bad_xerial_streams_are_errors() {
    let good = compress(Compression::Snappy, b"some data some data some data").unwrap();
    for bad in [
        good[..10].to_vec(),                                   // truncated header
        good[..18].to_vec(),                                   // truncated chunk length
        good[..good.len() - 1].to_vec(),                       // truncated chunk
        [&good[..16], &[0xff, 0xff, 0xff, 0xff][..]].concat(), // negative chunk length
        [&good[..16], &[0, 0, 0, 2, 0xff, 0xff][..]].concat(), // garbage block
    ] {
        assert!(
            matches!(
                decompress(Compression::Snappy, &bad),
                Err(BatchError::Decompression { .. })
            ),
            "{bad:02x?}"
        );
    }
}

fn lz4_frame(info: lz4_flex::frame::FrameInfo, input: &[u8]) -> Vec<u8> {
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(input).unwrap();
    enc.finish().unwrap()
}

#[test]
fn lz4_reads_frames_with_optional_features() {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
    let input: Vec<u8> = (0..300_000u32)
        .map(|i| (i % 97) as u8 ^ (i / 1000) as u8)
        .collect();
    let variants = [
        FrameInfo::new(),
        FrameInfo::new().block_checksums(true),
        FrameInfo::new().content_checksum(true),
        FrameInfo::new().content_size(Some(input.len() as u64)),
        FrameInfo::new()
            .content_size(Some(input.len() as u64))
            .block_checksums(true)
            .content_checksum(true),
        FrameInfo::new().block_mode(BlockMode::Linked),
        FrameInfo::new().block_size(BlockSize::Max256KB),
        FrameInfo::new().block_size(BlockSize::Max4MB),
    ];
    for info in variants {
        let frame = lz4_frame(info.clone(), &input);
        assert_eq!(
            decompress(Compression::Lz4, &frame).unwrap(),
            input,
            "{info:?}"
        );
    }
    // Concatenated frames decode as one stream.
    let mut two = lz4_frame(FrameInfo::new(), b"ab");
    two.extend(lz4_frame(FrameInfo::new(), b"cd"));
    assert_eq!(decompress(Compression::Lz4, &two).unwrap(), b"abcd");
}

#[test]
fn lz4_writes_what_java_reads() {
    let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let frame = compress(Compression::Lz4, &input).unwrap();
    assert_eq!(&frame[..4], &[0x04, 0x22, 0x4D, 0x18]);
    // FLG: version 01, independent blocks, no block checksum, no content size/checksum.
    assert_eq!(frame[4], 0x60);
    // BD: 64 KiB maximum block size.
    assert_eq!(frame[5], 0x40);
    // Header checksum: second byte of xxh32 over FLG+BD.
    assert_eq!(frame[6], (twox_xxh32(&frame[4..6]) >> 8) as u8);
    // Ends with the EndMark and nothing else (no content checksum).
    assert_eq!(&frame[frame.len() - 4..], &[0, 0, 0, 0]);
}

/// Minimal xxHash32 (seed 0), enough to check the LZ4 header checksum in tests.
fn twox_xxh32(data: &[u8]) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    assert!(data.len() < 16);
    let mut h = P5.wrapping_add(data.len() as u32);
    let mut rest = data;
    while rest.len() >= 4 {
        let w = u32::from_le_bytes(rest[..4].try_into().unwrap());
        h = h
            .wrapping_add(w.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
        rest = &rest[4..];
    }
    for &b in rest {
        h = h
            .wrapping_add(u32::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

#[test]
fn decompression_bombs_are_refused() {
    let zeros = vec![0u8; 16 << 20];
    for c in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let bomb = compress(c, &zeros).unwrap();
        assert!(bomb.len() < (1 << 20), "{c}: {}", bomb.len());
        match decompress_limited(c, &bomb, 1 << 20) {
            Err(BatchError::DecompressedTooLarge { codec, limit }) => {
                assert_eq!((codec, limit), (c, 1 << 20));
            }
            other => panic!("{c}: {:?}", other.map(|v| v.len())),
        }
    }
    // A raw snappy block claiming 4 GiB is refused before any allocation.
    let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert!(matches!(
        decompress_limited(Compression::Snappy, &claim, 1 << 20),
        Err(BatchError::DecompressedTooLarge { .. })
    ));
    // A short block claiming far more than snappy can expand to is corrupt, under any limit.
    let claim = [0x80, 0x80, 0x40, 0x00, 0x00, 0x00]; // 1 MiB from 6 bytes
    assert!(matches!(
        decompress_limited(Compression::Snappy, &claim, 1 << 30),
        Err(BatchError::Decompression { .. })
    ));
    assert!(matches!(
        decompress_limited(Compression::None, &[1, 2, 3], 2),
        Err(BatchError::DecompressedTooLarge { .. })
    ));
}

#[test]
fn garbage_input_is_an_error_not_a_panic() {
    let rng = SeededRng::new(99);
    let prefixes: [&[u8]; 5] = [
        &[],
        &[0x1f, 0x8b, 0x08, 0x00],
        &XERIAL_MAGIC_WITH_VERSIONS,
        &[0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82],
        &[0x28, 0xB5, 0x2F, 0xFD],
    ];
    for _ in 0..400 {
        for c in Compression::ALL {
            for p in prefixes {
                let len = (rng.next_u64() % 200) as usize;
                let mut v = p.to_vec();
                v.extend(random_bytes(&*rng, len));
                let _ = decompress_limited(c, &v, 1 << 20);
            }
        }
    }
    // Truncations of valid streams are errors.
    for c in [
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
    ] {
        let packed = compress(c, &samples()[3]).unwrap();
        let cut = &packed[..packed.len() / 2];
        assert!(
            matches!(decompress(c, cut), Err(BatchError::Decompression { .. })),
            "{c}"
        );
    }
}
