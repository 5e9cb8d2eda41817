use super::*;

#[test]
fn offset_key_bytes() {
    let k = offset_key("g", "t", 3);
    assert_eq!(&k[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
}

#[test]
fn offset_value_v3_bytes() {
    let v = OffsetValue {
        offset: 5,
        leader_epoch: 2,
        metadata: "m".into(),
        commit_ts: 7,
        expire_ts: None,
    };
    let b = offset_value(&v);
    let want: Vec<u8> = [
        &[0u8, 3][..],
        &[0, 0, 0, 0, 0, 0, 0, 5],
        &[0, 0, 0, 2],
        &[0, 1, b'm'],
        &[0, 0, 0, 0, 0, 0, 0, 7],
    ]
    .concat();
    assert_eq!(&b[..], &want[..]);
    assert_eq!(
        decode(&offset_key("g", "t", 3), Some(&b)).unwrap(),
        Decoded::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(v)
        }
    );
}

#[test]
fn offset_value_v1_with_expiry() {
    let v = OffsetValue {
        offset: 1,
        leader_epoch: -1,
        metadata: String::new(),
        commit_ts: 2,
        expire_ts: Some(3),
    };
    let b = offset_value(&v);
    let want: Vec<u8> = [
        &[0u8, 1][..],
        &[0, 0, 0, 0, 0, 0, 0, 1],
        &[0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 2],
        &[0, 0, 0, 0, 0, 0, 0, 3],
    ]
    .concat();
    assert_eq!(&b[..], &want[..]);
    let Decoded::Offset { value, .. } = decode(&offset_key("g", "t", 0), Some(&b)).unwrap() else {
        panic!("not an offset");
    };
    assert_eq!(value, Some(v));
}

#[test]
fn offset_value_v4_flexible_decodes() {
    // v4: offset, epoch, compact metadata "ab", commit ts, empty tag section.
    let b: Vec<u8> = [
        &[0u8, 4][..],
        &[0, 0, 0, 0, 0, 0, 0, 9],
        &[0xff, 0xff, 0xff, 0xff],
        &[3, b'a', b'b'],
        &[0, 0, 0, 0, 0, 0, 0, 1],
        &[0],
    ]
    .concat();
    let Decoded::Offset { value, .. } = decode(&offset_key("g", "t", 0), Some(&b)).unwrap() else {
        panic!("not an offset");
    };
    let v = value.unwrap();
    assert_eq!(
        (v.offset, v.leader_epoch, v.metadata.as_str()),
        (9, -1, "ab")
    );
}

#[test]
fn group_key_and_value_v3_bytes() {
    assert_eq!(&group_key("ab")[..], &[0, 2, 0, 2, b'a', b'b']);
    let v = GroupValue {
        protocol_type: "c".into(),
        generation: 1,
        protocol: Some("r".into()),
        leader: None,
        state_ts: -1,
        members: vec![MemberValue {
            member_id: "m".into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            rebalance_timeout_ms: 2,
            session_timeout_ms: 3,
            subscription: Bytes::from_static(&[9]),
            assignment: Bytes::new(),
        }],
    };
    let b = group_value(&v);
    let want: Vec<u8> = [
        &[0u8, 3][..],
        &[0, 1, b'c'],
        &[0, 0, 0, 1],
        &[0, 1, b'r'],
        &[0xff, 0xff],
        &[0xff; 8],
        &[0, 0, 0, 1],
        &[0, 1, b'm'],
        &[0xff, 0xff],
        &[0, 1, b'c'],
        &[0, 1, b'h'],
        &[0, 0, 0, 2],
        &[0, 0, 0, 3],
        &[0, 0, 0, 1, 9],
        &[0, 0, 0, 0],
    ]
    .concat();
    assert_eq!(&b[..], &want[..]);
    assert_eq!(
        decode(&group_key("ab"), Some(&b)).unwrap(),
        Decoded::Group {
            group: "ab".into(),
            value: Some(v)
        }
    );
    assert_eq!(
        decode(&group_key("ab"), None).unwrap(),
        Decoded::Group {
            group: "ab".into(),
            value: None
        }
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    assert_eq!(decode(&[0], None), Err(RecordError::Truncated));
    assert_eq!(
        decode(&[0, 1, 0, 5, b'a'], None),
        Err(RecordError::Truncated)
    );
    assert!(decode(&offset_key("g", "t", 0), Some(&[0, 9])).is_err());
    assert!(decode(&group_key("g"), Some(&[0, 3, 0xff, 0xfe])).is_err());
    assert_eq!(decode(&[0, 5, 0, 0], None), Ok(Decoded::Other(5)));
}

#[test]
fn partition_uses_java_hash() {
    // "hello".hashCode() = 99162322; "" = 0.
    assert_eq!(java_hash("hello"), 99162322);
    assert_eq!(partition_for("hello", 50), 99162322 % 50);
    assert_eq!(partition_for("", 50), 0);
    // Non-BMP characters hash as two UTF-16 units: "😀" = 0xD83D, 0xDE00.
    assert_eq!(java_hash("😀"), 0xD83D * 31 + 0xDE00);
    // "polygenelubricants".hashCode() == Integer.MIN_VALUE, whose abs is taken as 0.
    assert_eq!(java_hash("polygenelubricants"), i32::MIN);
    assert_eq!(partition_for("polygenelubricants", 50), 0);
    // Negative hashes use the absolute value: "Aa-negative"? use a known negative one.
    let h = java_hash("console-consumer-12345");
    assert_eq!(
        partition_for("console-consumer-12345", 50),
        h.unsigned_abs() as i32 % 50
    );
}

/// `__consumer_offsets` records are read back from disk at start-up: whatever the bytes, decoding
/// answers `Ok` or `Err`, never panics or allocates by a length it has not got.
#[test]
fn mutated_records_decode_without_panic() {
    let rng = shale_common::SeededRng::new(9);
    let member = MemberValue {
        member_id: "member-1".into(),
        instance_id: Some("i".into()),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout_ms: 300_000,
        session_timeout_ms: 45_000,
        subscription: Bytes::from_static(&[0, 1, 0, 0, 0, 1, 0, 1, b't']),
        assignment: Bytes::from_static(&[0, 1, 0, 0, 0, 0]),
    };
    let group = GroupValue {
        protocol_type: "consumer".into(),
        generation: 7,
        protocol: Some("range".into()),
        leader: Some("member-1".into()),
        state_ts: 1,
        members: vec![member.clone(), member],
    };
    let offset = OffsetValue {
        offset: 42,
        leader_epoch: 3,
        metadata: "meta".into(),
        commit_ts: 5,
        expire_ts: None,
    };
    let seeds = [
        (offset_key("g", "topic", 1), Some(offset_value(&offset))),
        (group_key("g"), Some(group_value(&group))),
    ];
    let next = |n: usize| (rng.next_u64() % n.max(1) as u64) as usize;
    for _ in 0..50_000 {
        let (key, value) = &seeds[next(2)];
        let mut key = key.to_vec();
        let mut value = value.as_ref().map(|v| v.to_vec());
        for _ in 0..1 + next(4) {
            let target = if next(3) == 0 {
                &mut key
            } else {
                value.as_mut().unwrap()
            };
            match next(4) {
                0 if !target.is_empty() => target.truncate(next(target.len())),
                1 if !target.is_empty() => {
                    let i = next(target.len());
                    target[i] ^= 1 << next(8);
                }
                2 if !target.is_empty() => {
                    let i = next(target.len());
                    target[i] = [0, 0x7f, 0x80, 0xff][next(4)];
                }
                _ => target.extend_from_slice(&[0xff; 4]),
            }
        }
        let _ = decode(&key, value.as_deref());
    }
}
