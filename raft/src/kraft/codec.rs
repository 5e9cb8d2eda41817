//! The multi-voter core's [`Entry`]s as Kafka v2 record batches: the bytes `__cluster_metadata-0`
//! holds on disk and a KRaft Fetch response carries (formats.md §6.2). A run of data entries of
//! one epoch becomes one data batch (null keys, the entries' framed records as values, the epoch
//! as partition leader epoch); a LeaderChange or Voters entry becomes a control batch of its
//! own. Decoding checks each batch's CRC and refuses other control types.

use bytes::{Bytes, BytesMut};
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::{batches, RecordBatch, TimestampType};

use super::types::{Entry, Record};
use crate::batch::{
    control_batch, decode_leader_change, decode_voter_entries, leader_change_value,
    voters_entries_value, CONTROL_KRAFT_VOTERS, CONTROL_LEADER_CHANGE,
};
use crate::error::RaftError;

/// Encodes `entries`, the first at `base_offset`, as concatenated batches stamped `timestamp`.
pub fn encode_entries(
    base_offset: i64,
    entries: &[Entry],
    timestamp: i64,
) -> Result<Bytes, RaftError> {
    if base_offset < 0 || base_offset.checked_add(entries.len() as i64).is_none() {
        return Err(RaftError::InvalidArgument(format!(
            "{} entries cannot start at offset {base_offset}",
            entries.len()
        )));
    }
    let mut out = BytesMut::new();
    let mut offset = base_offset;
    for batch in entry_batches(offset, entries, timestamp) {
        let batch = batch?;
        offset = batch.last_offset() + 1;
        out.extend_from_slice(batch.as_bytes());
    }
    debug_assert_eq!(offset, base_offset + entries.len() as i64);
    Ok(out.freeze())
}

/// The batches of [`encode_entries`], one at a time (a log appends them one by one).
pub fn entry_batches(
    base_offset: i64,
    entries: &[Entry],
    timestamp: i64,
) -> impl Iterator<Item = Result<RecordBatch, RaftError>> + '_ {
    let mut rest = entries;
    let mut offset = base_offset;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let run = match first.record {
            Record::LeaderChange(_) | Record::Voters(_) => 1,
            Record::Data(_) => rest
                .iter()
                .take_while(|e| e.epoch == first.epoch && matches!(e.record, Record::Data(_)))
                .count(),
        };
        let (batch, tail) = rest.split_at(run);
        rest = tail;
        let base = offset;
        offset = offset.saturating_add(run as i64);
        Some(encode_run(base, batch, timestamp))
    })
}

fn encode_run(base_offset: i64, run: &[Entry], timestamp: i64) -> Result<RecordBatch, RaftError> {
    let epoch = run[0].epoch;
    match &run[0].record {
        Record::LeaderChange(change) => {
            let value = leader_change_value(change)?;
            return control_batch(base_offset, epoch, timestamp, CONTROL_LEADER_CHANGE, value);
        }
        Record::Voters(voters) => {
            let value = voters_entries_value(voters)?;
            return control_batch(base_offset, epoch, timestamp, CONTROL_KRAFT_VOTERS, value);
        }
        Record::Data(_) => {}
    }
    let mut b = BatchBuilder::new(timestamp);
    b.base_offset = base_offset;
    b.partition_leader_epoch = epoch;
    b.timestamp_type = TimestampType::CreateTime;
    for entry in run {
        if let Record::Data(value) = &entry.record {
            b.push(timestamp, None, Some(value.clone()), Vec::new());
        }
    }
    Ok(b.build()?)
}

/// Decodes concatenated batches into entries; returns the first batch's base offset (None when
/// `bytes` holds no complete batch). Batches must follow each other without gaps; a truncated
/// final batch (a Fetch response cut at its size limit) is ignored, as Kafka's clients do.
pub fn decode_entries(bytes: Bytes) -> Result<(Option<i64>, Vec<Entry>), RaftError> {
    let mut entries = Vec::new();
    let mut first = None;
    let mut next = None;
    for batch in batches(bytes) {
        let batch = batch?;
        batch.verify_crc()?;
        let base = batch.base_offset();
        if next.is_some_and(|n| n != base) {
            return Err(RaftError::Decode(format!(
                "metadata batch at offset {base} does not follow offset {}",
                next.unwrap_or_default() - 1
            )));
        }
        first.get_or_insert(base);
        next = Some(decode_batch_into(&batch, &mut entries)?);
    }
    Ok((first, entries))
}

/// Appends the batch's entries to `out`; returns the offset after the batch. Offsets must be
/// non-negative and every record's offset delta its position (Kafka's raft writes them so).
fn decode_batch_into(batch: &RecordBatch, out: &mut Vec<Entry>) -> Result<i64, RaftError> {
    let epoch = batch.partition_leader_epoch();
    let base = batch.base_offset();
    let delta = batch.last_offset_delta();
    let end = (base >= 0 && delta >= 0)
        .then(|| base.checked_add(i64::from(delta) + 1))
        .flatten()
        .ok_or_else(|| {
            RaftError::Decode(format!(
                "metadata batch at offset {base} with last offset delta {delta}"
            ))
        })?;
    let records = batch.records()?;
    if records.len() as i64 != end - base {
        return Err(RaftError::Decode(format!(
            "metadata batch at offset {base} holds {} records for {} offsets",
            records.len(),
            end - base
        )));
    }
    for (i, r) in records.into_iter().enumerate() {
        if r.offset_delta as usize != i {
            return Err(RaftError::Decode(format!(
                "metadata batch at offset {base}: record {i} has offset delta {}",
                r.offset_delta
            )));
        }
        let offset = base + i as i64;
        let record = if batch.is_control() {
            let key = r.key.as_deref().unwrap_or_default();
            let control_type = match key {
                [_, _, a, b, ..] => i16::from_be_bytes([*a, *b]),
                _ => -1,
            };
            let value = r.value.unwrap_or_default();
            match control_type {
                CONTROL_LEADER_CHANGE => Record::LeaderChange(decode_leader_change(value)?),
                CONTROL_KRAFT_VOTERS => Record::Voters(decode_voter_entries(value)?),
                _ => {
                    return Err(RaftError::Decode(format!(
                    "control record of type {control_type} at offset {offset} in the metadata log"
                )))
                }
            }
        } else {
            let value = r.value.ok_or_else(|| {
                RaftError::Decode(format!(
                    "metadata record at offset {offset} has a null value"
                ))
            })?;
            Record::Data(value)
        };
        out.push(Entry { epoch, record });
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kraft::types::Voter;
    use crate::quorum::LeaderChange;

    fn data(epoch: i32, v: &'static [u8]) -> Entry {
        Entry {
            epoch,
            record: Record::Data(Bytes::from_static(v)),
        }
    }

    fn change(epoch: i32, leader: i32) -> Entry {
        Entry {
            epoch,
            record: Record::LeaderChange(LeaderChange {
                leader_id: leader,
                voters: vec![1, 2, 3],
                granting_voters: vec![1, 2],
            }),
        }
    }

    #[test]
    fn a_voters_entry_is_a_kraft_voters_control_batch() {
        let voters = Entry {
            epoch: 4,
            record: Record::Voters(vec![
                Voter::by_id(1),
                Voter {
                    id: 3,
                    directory_id: uuid::Uuid::from_u128(9),
                    endpoints: vec![("CONTROLLER".into(), "h3".into(), 9093)],
                },
            ]),
        };
        let entries = vec![data(4, b"a"), voters, data(4, b"b")];
        let bytes = encode_entries(10, &entries, 7).unwrap();
        let shape: Vec<_> = batches(bytes.clone())
            .map(|b| {
                let b = b.unwrap();
                (b.base_offset(), b.is_control())
            })
            .collect();
        assert_eq!(shape, vec![(10, false), (11, true), (12, false)]);
        assert_eq!(decode_entries(bytes).unwrap(), (Some(10), entries));
    }

    #[test]
    fn entries_round_trip_through_batches() {
        let entries = vec![
            change(1, 1),
            data(1, b"a"),
            data(1, b"b"),
            data(2, b"c"),
            change(3, 2),
            data(3, b"d"),
        ];
        let bytes = encode_entries(40, &entries, 7).unwrap();
        let batches: Vec<_> = batches(bytes.clone()).map(Result::unwrap).collect();
        let shape: Vec<_> = batches
            .iter()
            .map(|b| {
                (
                    b.base_offset(),
                    b.last_offset(),
                    b.partition_leader_epoch(),
                    b.is_control(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (40, 40, 1, true),
                (41, 42, 1, false),
                (43, 43, 2, false),
                (44, 44, 3, true),
                (45, 45, 3, false)
            ]
        );
        assert_eq!(decode_entries(bytes).unwrap(), (Some(40), entries));
    }

    #[test]
    fn a_truncated_last_batch_is_ignored_and_gaps_are_refused() {
        let entries = vec![data(1, b"a"), data(2, b"b")];
        let bytes = encode_entries(0, &entries, 0).unwrap();
        let cut = bytes.slice(..bytes.len() - 3);
        assert_eq!(decode_entries(cut).unwrap(), (Some(0), vec![data(1, b"a")]));
        assert_eq!(decode_entries(Bytes::new()).unwrap(), (None, vec![]));

        let mut gap = BytesMut::from(&encode_entries(0, &entries[..1], 0).unwrap()[..]);
        gap.extend_from_slice(&encode_entries(5, &entries[1..], 0).unwrap());
        assert!(decode_entries(gap.freeze()).is_err());
    }

    #[test]
    fn offsets_out_of_range_are_errors_not_overflows() {
        // Found by the fuzzer (kraft.entries): a batch ending at i64::MAX. The base offset is
        // outside the CRC, so a peer can send any.
        let bytes = encode_entries(0, &[data(1, b"a")], 0).unwrap();
        for base in [i64::MAX, -5] {
            let mut patched = BytesMut::from(&bytes[..]);
            patched[..8].copy_from_slice(&base.to_be_bytes());
            assert!(decode_entries(patched.freeze()).is_err(), "base {base}");
        }
        assert!(encode_entries(i64::MAX, &[data(1, b"a")], 0).is_err());
        assert!(encode_entries(-1, &[data(1, b"a")], 0).is_err());
    }

    #[test]
    fn a_corrupt_batch_is_an_error() {
        let bytes = encode_entries(0, &[data(1, b"abc")], 0).unwrap();
        let mut bad = BytesMut::from(&bytes[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(decode_entries(bad.freeze()).is_err());
    }
}
