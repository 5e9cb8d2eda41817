use super::*;

fn enc32(v: i32) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_varint(&mut b, v);
    b.to_vec()
}

fn enc64(v: i64) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_varlong(&mut b, v);
    b.to_vec()
}

#[test]
fn known_encodings() {
    assert_eq!(enc32(0), [0x00]);
    assert_eq!(enc32(-1), [0x01]);
    assert_eq!(enc32(1), [0x02]);
    assert_eq!(enc32(8), [0x10]);
    assert_eq!(enc32(63), [0x7e]);
    assert_eq!(enc32(-64), [0x7f]);
    assert_eq!(enc32(64), [0x80, 0x01]);
    assert_eq!(enc32(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(enc32(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(
        enc64(i64::MIN),
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
    );
    // 2^31 ms is not representable as a varint but is as a varlong.
    assert_eq!(enc64(1 << 31), [0x80, 0x80, 0x80, 0x80, 0x10]);
}

#[test]
fn round_trip_and_sizes() {
    let mut vals32 = vec![0, 1, -1, 63, 64, -64, -65, 8191, 8192, i32::MAX, i32::MIN];
    for s in 0..31 {
        vals32.push(1 << s);
        vals32.push(-(1 << s));
        vals32.push((1 << s) - 1);
    }
    for v in vals32 {
        let e = enc32(v);
        assert_eq!(e.len(), varint_size(v), "size of {v}");
        let mut s = &e[..];
        assert_eq!(read_varint(&mut s).unwrap(), v);
        assert!(s.is_empty());
        // Every int is also a valid varlong with the same bytes.
        let mut s = &e[..];
        assert_eq!(read_varlong(&mut s).unwrap(), i64::from(v));
    }
    let mut vals64 = vec![0i64, -1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)];
    for s in 0..63 {
        vals64.push(1 << s);
        vals64.push(-(1 << s));
    }
    for v in vals64 {
        let e = enc64(v);
        assert_eq!(e.len(), varlong_size(v), "size of {v}");
        let mut s = &e[..];
        assert_eq!(read_varlong(&mut s).unwrap(), v);
        assert!(s.is_empty());
    }
}

#[test]
fn reader_advances_only_past_one_value() {
    let mut b = BytesMut::new();
    write_varint(&mut b, 300);
    write_varlong(&mut b, -5);
    b.extend_from_slice(&[0xaa]);
    let mut s = &b[..];
    assert_eq!(read_varint(&mut s).unwrap(), 300);
    assert_eq!(read_varlong(&mut s).unwrap(), -5);
    assert_eq!(s, &[0xaa]);
}

#[test]
fn truncated_and_too_long() {
    let mut s: &[u8] = &[];
    assert_eq!(read_varint(&mut s), Err(BatchError::Truncated));
    let mut s: &[u8] = &[0x80, 0x80];
    assert_eq!(read_varint(&mut s), Err(BatchError::Truncated));
    let mut s: &[u8] = &[0x80; 5];
    assert!(matches!(
        read_varint(&mut s),
        Err(BatchError::InvalidRecord(_))
    ));
    let mut s: &[u8] = &[0xff; 11];
    assert!(matches!(
        read_varlong(&mut s),
        Err(BatchError::InvalidRecord(_))
    ));
    // A failed read leaves the cursor where it was.
    let mut s: &[u8] = &[0x80, 0x80];
    let _ = read_varlong(&mut s);
    assert_eq!(s.len(), 2);
}

#[test]
fn fifth_byte_high_bits_are_dropped_like_java() {
    // 0x7f in the fifth group carries bits 28..34; Java's int shift keeps only 28..31.
    let mut s: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x7f];
    assert_eq!(read_varint(&mut s).unwrap(), i32::MIN);
}
