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
    let records = assorted_records();
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

// ---- Borrowed view walk vs `Bytes` walk ----

/// Runs both walks over `payload` and asserts they return the same result after the same
/// records, each view matching its `Record` field by field. Returns that result.
fn assert_walks_agree(payload: &[u8], count: usize) -> Result<(), BatchError> {
    let shared = Bytes::copy_from_slice(payload);
    let mut records = Vec::new();
    let by_bytes = for_each_in_payload(&shared, count, |r| {
        records.push(r.clone());
        Ok(())
    });
    let mut views = Vec::new();
    let by_view = for_each_view_in_payload(payload, count, |v| {
        views.push(*v);
        Ok(())
    });
    assert_eq!(by_view, by_bytes, "payload {payload:02x?}, count {count}");
    assert_eq!(views.len(), records.len(), "payload {payload:02x?}");
    for (v, r) in views.iter().zip(&records) {
        assert_eq!(v.attributes, r.attributes);
        assert_eq!(v.timestamp_delta, r.timestamp_delta);
        assert_eq!(v.offset_delta, r.offset_delta);
        assert_eq!(v.key, r.key.as_deref());
        assert_eq!(v.value, r.value.as_deref());
        assert_eq!(v.header_count, r.headers.len());
    }
    by_view
}

fn assorted_records() -> Vec<Record> {
    vec![
        Record {
            timestamp_delta: -1,
            key: None,
            value: b("v"),
            headers: vec![
                Header::new("dup", b("1")),
                Header::new("dup", b("2")),
                Header::new("dup", None),
                Header::new("", Some(Bytes::new())),
            ],
            ..Record::default()
        },
        Record {
            attributes: -3,
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
        Record::default(),
        Record {
            timestamp_delta: 63,
            offset_delta: -64,
            key: b("k"),
            value: b("v"),
            ..Record::default()
        },
    ]
}

fn encode_all(records: &[Record]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for r in records {
        r.encode(&mut out);
    }
    out.to_vec()
}

#[test]
fn view_walk_matches_bytes_walk_on_valid_payloads() {
    let records = assorted_records();
    let payload = encode_all(&records);
    assert_walks_agree(&payload, records.len()).unwrap();
    let mut views = Vec::new();
    for_each_view_in_payload(&payload, records.len(), |v| {
        views.push(*v);
        Ok(())
    })
    .unwrap();
    assert_eq!(views[0].key, None);
    assert_eq!(views[0].value, Some(&b"v"[..]));
    assert_eq!(views[0].header_count, 4);
    assert_eq!(views[1].key, Some(&[][..]));
    assert_eq!(views[1].value, None);
    assert_eq!(views[1].attributes, -3);
    assert_eq!(views[2].timestamp_delta, i64::MIN);
    assert_eq!(views[2].value.map(<[u8]>::len), Some(20_000));
    // The slices borrow the payload itself.
    let range = payload.as_ptr_range();
    assert!(range.contains(&views[2].key.unwrap().as_ptr()));
    // Empty payload, zero records.
    assert_walks_agree(&[], 0).unwrap();
    // Key and value length -2 read as null in both walks.
    assert_walks_agree(&[0x0C, 0x00, 0x00, 0x00, 0x03, 0x03, 0x00], 1).unwrap();
}

#[test]
fn view_walk_gives_the_same_errors_on_malformed_payloads() {
    let rec = [0x10, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x00];
    let cases: &[(&[u8], usize, &str)] = &[
        (&rec, 2, "holds only 1"),
        (&rec, 0, "9 bytes left after"),
        (
            &[0x10, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x00, 0x00],
            1,
            "1 bytes left after",
        ),
        (
            &[0x12, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x00],
            1,
            "only 8 remain",
        ),
        (
            &[0x0E, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x00],
            1,
            "ends before",
        ),
        (
            &[0x12, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x00, 0x00],
            1,
            "fields use 8",
        ),
        (&[0x01], 1, "negative record length"),
        (
            &[0x10, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x01],
            1,
            "negative header count",
        ),
        (
            &[
                0x14, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x02, 0x01, 0x01,
            ],
            1,
            "negative header key length",
        ),
        // Header key longer than the record.
        (
            &[0x12, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x02, 0x08],
            1,
            "ends before",
        ),
        (
            &[
                0x18, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            ],
            1,
            "longer than 10 bytes",
        ),
        (
            &[
                0x0E, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x01, 0x00,
            ],
            1,
            "longer than 5 bytes",
        ),
        // The record length varint itself runs off the payload.
        (&[0x80], 1, "ends before"),
    ];
    for &(payload, count, needle) in cases {
        match assert_walks_agree(payload, count) {
            Err(BatchError::InvalidRecord(msg)) => {
                assert!(msg.contains(needle), "{needle:?} not in {msg:?}")
            }
            other => panic!("{needle}: expected InvalidRecord, got {other:?}"),
        }
    }
    // A non-UTF-8 header key is accepted by both.
    assert_walks_agree(
        &[
            0x18, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x02, 0x76, 0x02, 0x02, 0xFF, 0x02, 0x61,
        ],
        1,
    )
    .unwrap();
}

#[test]
fn view_walk_agrees_on_every_truncation_count_and_byte_flip() {
    let records = assorted_records();
    let payload = encode_all(&records[..2]);
    let n = 2;
    for cut in 0..=payload.len() {
        for count in 0..=n + 1 {
            let _ = assert_walks_agree(&payload[..cut], count);
        }
    }
    // Every byte of a small payload set to a few interesting values.
    let payload = encode_all(&[records[0].clone(), records[4].clone()]);
    for i in 0..payload.len() {
        for v in [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF] {
            let mut p = payload.clone();
            p[i] = v;
            for count in 1..=3 {
                let _ = assert_walks_agree(&p, count);
            }
        }
    }
}

#[test]
fn view_walk_stops_at_the_callback_error() {
    let payload = encode_all(&assorted_records());
    let mut calls = 0;
    let err = for_each_view_in_payload(&payload, 5, |_| {
        calls += 1;
        Err(BatchError::InvalidRecord("stop".into()))
    });
    assert_eq!(err, Err(BatchError::InvalidRecord("stop".into())));
    assert_eq!(calls, 1);
}

#[test]
fn cursor_varint_fast_path_matches_the_general_decoder() {
    // Every one- and two-byte prefix, complete or not, alone and followed by more bytes.
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for b0 in 0..=255u8 {
        inputs.push(vec![b0]);
        inputs.push(vec![b0, 0x01, 0x7F]);
        for b1 in 0..=255u8 {
            inputs.push(vec![b0, b1]);
            inputs.push(vec![b0, b1, 0x81, 0x01]);
        }
    }
    inputs.push(vec![]);
    inputs.push(vec![0xFF; 11]);
    for input in &inputs {
        let mut s = &input[..];
        let want = read_varint(&mut s).map(|v| (v, input.len() - s.len()));
        let mut cur = SliceCursor::new(input);
        let got = cur.varint().map(|v| (v, cur.pos));
        assert_eq!(got, want, "varint {input:02x?}");
        let mut s = &input[..];
        let want = read_varlong(&mut s).map(|v| (v, input.len() - s.len()));
        let mut cur = SliceCursor::new(input);
        let got = cur.varlong().map(|v| (v, cur.pos));
        assert_eq!(got, want, "varlong {input:02x?}");
    }
}
