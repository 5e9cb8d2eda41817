//! The simulated state machine's snapshot format: the applied entries, serialized losslessly
//! (epoch, then a data, LeaderChange or Voters record), so a snapshot can be compared with the
//! committed log, inside a Kafka checkpoint whose VotersRecord (KIP-853) holds the voter set in
//! force at its end when the log ever changed it, as the core expects.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use shale_raft::kraft::{Entry, LeaderChange, Record, Voter};

fn put_ids(b: &mut BytesMut, ids: &[i32]) {
    b.put_u32(ids.len() as u32);
    for id in ids {
        b.put_i32(*id);
    }
}

fn get_ids(b: &mut &[u8]) -> Option<Vec<i32>> {
    let n = get_u32(b)? as usize;
    (b.remaining() >= n * 4).then(|| (0..n).map(|_| b.get_i32()).collect())
}

fn get_u32(b: &mut &[u8]) -> Option<u32> {
    (b.remaining() >= 4).then(|| b.get_u32())
}

fn encode(entries: &[Entry]) -> Bytes {
    let mut b = BytesMut::new();
    for e in entries {
        b.put_i32(e.epoch);
        match &e.record {
            Record::Data(d) => {
                b.put_u8(0);
                b.put_u32(d.len() as u32);
                b.put_slice(d);
            }
            Record::LeaderChange(c) => {
                b.put_u8(1);
                b.put_i32(c.leader_id);
                put_ids(&mut b, &c.voters);
                put_ids(&mut b, &c.granting_voters);
            }
            Record::Voters(v) => {
                // The simulation's voters have no directory ids or endpoints.
                b.put_u8(2);
                put_ids(&mut b, &v.iter().map(|v| v.id).collect::<Vec<_>>());
            }
        }
    }
    b.freeze()
}

/// The voter set of the last Voters entry (None: the static set is in force).
pub fn last_voters(entries: &[Entry]) -> Option<Vec<i32>> {
    entries.iter().rev().find_map(|e| match &e.record {
        Record::Voters(v) => Some(v.iter().map(|v| v.id).collect()),
        _ => None,
    })
}

/// A snapshot of `entries` (non-empty): a checkpoint holding their encoding.
pub fn encode_snapshot(entries: &[Entry]) -> Bytes {
    let epoch = entries.last().map_or(0, |e| e.epoch);
    let voters: Option<Vec<Voter>> =
        last_voters(entries).map(|ids| ids.into_iter().map(Voter::by_id).collect());
    shale_raft::snapshot::encode_checkpoint(epoch, 0, 0, voters.as_deref(), &[encode(entries)])
        .expect("encodable checkpoint")
}

/// The entries of a snapshot, or None if it is malformed or its voter set is not the one its
/// entries end with.
pub fn decode_snapshot(data: &Bytes) -> Option<Vec<Entry>> {
    let (voters, values) = shale_raft::snapshot::checkpoint_contents(data.clone()).ok()?;
    let [value] = values.as_slice() else {
        return None;
    };
    let entries = decode(value)?;
    (voters == last_voters(&entries)).then_some(entries)
}

/// The entries in `data`, or None if it is not a well-formed snapshot.
fn decode(mut data: &[u8]) -> Option<Vec<Entry>> {
    let b = &mut data;
    let mut out = Vec::new();
    while b.has_remaining() {
        let epoch = get_u32(b)? as i32;
        if !b.has_remaining() {
            return None;
        }
        let record = match b.get_u8() {
            0 => {
                let n = get_u32(b)? as usize;
                if b.remaining() < n {
                    return None;
                }
                let d = Bytes::copy_from_slice(&b[..n]);
                b.advance(n);
                Record::Data(d)
            }
            1 => {
                let leader_id = get_u32(b)? as i32;
                let voters = get_ids(b)?;
                let granting_voters = get_ids(b)?;
                Record::LeaderChange(LeaderChange {
                    leader_id,
                    voters,
                    granting_voters,
                })
            }
            2 => Record::Voters(get_ids(b)?.into_iter().map(Voter::by_id).collect()),
            _ => return None,
        };
        out.push(Entry { epoch, record });
    }
    Some(out)
}
