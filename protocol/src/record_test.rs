use super::*;

fn b(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

fn encode(r: &Record) -> Vec<u8> {
    let mut out = BytesMut::new();
    r.encode(&mut out);
    assert_eq!(out.len(), r.encoded_len(), "encoded_len of {r:?}");
    out.to_vec()
}

#[test]
fn spec_vector_record() {
    let r = Record {
        key: b("k"),
        value: b("v"),
        ..Record::default()
    };
    let bytes = encode(&r);
    assert_eq!(
        bytes,
        [0x10, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x00]
    );
    assert_eq!(r.body_len(), 8);
    let mut buf = Bytes::from(bytes);
    assert_eq!(Record::decode(&mut buf).unwrap(), r);
    assert!(buf.is_empty());
}

#[test]
fn nulls_are_minus_one() {
    let r = Record::default();
    // length 6, attributes, ts 0, offset 0, key -1, value -1, 0 headers.
    assert_eq!(encode(&r), [0x0C, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00]);
    let h = Record {
        headers: vec![Header::new("a", None)],
        ..Record::default()
    };
    assert_eq!(
        encode(&h),
        [0x12, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x02, b'a', 0x01]
    );
}

#[test]
fn round_trip_assorted_records_back_to_back() {
    let records = vec![
        Record {
            attributes: 0,
            timestamp_delta: -1,
            offset_delta: 0,
            key: None,
            value: b("v"),
            headers: vec![
                Header::new("dup", b("1")),
                Header::new("dup", b("2")),
                Header::new("dup", None),
            ],
        },
        Record {
            timestamp_delta: 1 << 40,
            offset_delta: i32::MAX,
            key: Some(Bytes::new()),
            value: None,
            ..Record::default()
        },
        Record {
            timestamp_delta: i64::MIN,
            offset_delta: -7,
            key: Some(Bytes::from(vec![7u8; 300])),
            value: Some(Bytes::from(vec![9u8; 20_000])),
            headers: vec![Header::new("ключ", Some(Bytes::from(vec![1u8; 200])))],
            ..Record::default()
        },
    ];
    let mut out = BytesMut::new();
    for r in &records {
        r.encode(&mut out);
    }
    let mut buf = out.freeze();
    let start = buf.as_ptr_range();
    for r in &records {
        let got = Record::decode(&mut buf).unwrap();
        assert_eq!(&got, r);
        if let Some(v) = &got.value {
            if !v.is_empty() {
                assert!(start.contains(&v.as_ptr()), "value is a slice of the input");
            }
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn decode_errors_leave_input_untouched() {
    for bad in [
        &[][..],
        &[0x10, 0x00][..], // declared 8 bytes, 1 present
        &[0x01][..],       // negative length
        &[0x02, 0x00][..], // fields overrun the declared length
        &[0x0E, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00][..], // one unused byte
    ] {
        let mut buf = Bytes::copy_from_slice(bad);
        let err = Record::decode(&mut buf).unwrap_err();
        assert!(
            matches!(err, BatchError::InvalidRecord(_)),
            "{bad:02x?}: {err:?}"
        );
        assert_eq!(buf.len(), bad.len());
    }
}

#[test]
fn negative_key_lengths_read_as_null_like_kafka() {
    // keyLength -2 is read as null by Kafka (any negative size).
    let mut buf = Bytes::from_static(&[0x0C, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00]);
    let r = Record::decode(&mut buf).unwrap();
    assert_eq!(r.key, None);
    assert_eq!(r.value, None);
}

#[test]
fn builder_defaults_and_push() {
    let mut bb = BatchBuilder::new(1000);
    assert!(bb.is_empty());
    assert_eq!(bb.producer_id, -1);
    assert_eq!(bb.producer_epoch, -1);
    assert_eq!(bb.base_sequence, -1);
    assert_eq!(bb.partition_leader_epoch, -1);
    assert_eq!(bb.compression, Compression::None);
    assert_eq!(bb.timestamp_type, TimestampType::CreateTime);
    bb.push(990, None, b("a"), vec![]);
    bb.push(1_000 + (1 << 35), None, b("b"), vec![]);
    assert_eq!(bb.len(), 2);
    assert_eq!(bb.records()[0].timestamp_delta, -10);
    assert_eq!(bb.records()[1].timestamp_delta, 1 << 35);
    assert_eq!(bb.records()[1].offset_delta, 1);
    let batch = bb.build().unwrap();
    assert_eq!(batch.max_timestamp(), 1_000 + (1 << 35));
    assert_eq!(batch.base_timestamp(), 1000);
    assert_eq!(batch.last_offset_delta(), 1);
    assert_eq!(batch.record_count(), 2);
}

#[test]
fn push_record_keeps_offset_gaps() {
    let mut bb = BatchBuilder::new(0);
    bb.base_offset = 100;
    for delta in [0, 3, 9] {
        bb.push_record(Record {
            offset_delta: delta,
            key: b("k"),
            ..Record::default()
        });
    }
    let batch = bb.build().unwrap();
    assert_eq!(batch.last_offset_delta(), 9);
    assert_eq!(batch.last_offset(), 109);
    assert_eq!(batch.record_count(), 3);
    let deltas: Vec<_> = batch
        .records()
        .unwrap()
        .iter()
        .map(|r| r.offset_delta)
        .collect();
    assert_eq!(deltas, [0, 3, 9]);
}

#[test]
fn empty_builder_makes_a_61_byte_batch() {
    for codec in Compression::ALL {
        let mut bb = BatchBuilder::new(NO_TIMESTAMP);
        bb.compression = codec;
        let batch = bb.build().unwrap();
        if codec == Compression::None {
            assert_eq!(batch.size(), 61);
        }
        batch.verify_crc().unwrap();
        assert_eq!(batch.record_count(), 0);
        assert_eq!(batch.max_timestamp(), NO_TIMESTAMP);
        assert_eq!(batch.last_offset_delta(), 0);
        assert!(batch.records().unwrap().is_empty());
    }
}
