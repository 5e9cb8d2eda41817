//! The KRaft RPC targets: what a controller reads from its peers.
//!
//! * `kraft.request`: Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch, FetchSnapshot and
//!   DescribeQuorum request bodies through the wire adapter's decoders (`wire::decode_request`,
//!   `wire::decode_describe_quorum_request`), at every version it accepts.
//! * `kraft.response`: their responses through `wire::decode_response` (given the request that
//!   was sent) and `wire::decode_describe_quorum`.
//! * `kraft.entries`: Fetch records and `__cluster_metadata-0` bytes through
//!   `kraft::codec::decode_entries`; a decoded run must encode back to entries that decode equal.
//!
//! An input is `[api index, version, body…]`; the fixup keeps the api index and version in range
//! so mutations reach the body decoders. Seeds are the adapter's own encodings of a set of
//! messages (pre-votes, records with LeaderChange entries, diverging epochs, snapshot ids,
//! errors) at every version.

use bytes::Bytes;
use shale_broker::kraft::wire::{self, Endpoint, QuorumStatus, ReplicaStatus, WireContext};
use shale_protocol::kafka_protocol::messages::ApiKey;
use shale_raft::kraft::codec::{decode_entries, encode_entries};
use shale_raft::kraft::{
    Entry, FetchError, FetchRequest, FetchResponse, FetchResult, FetchSnapshotRequest,
    FetchSnapshotResponse, FetchSnapshotResult, LeaderChange, Message, Record, SnapshotId,
    VoteRequest, VoteResponse, UNKNOWN_HIGH_WATERMARK,
};
use uuid::Uuid;

use super::{maybe_fix_batch_crcs, outcome, Target};
use crate::rng::FuzzRng;
use crate::runner::Outcome;

/// The APIs an input's first byte picks from (DescribeQuorum last, at index 5).
const APIS: [ApiKey; 6] = wire::QUORUM_APIS;

fn ctx() -> WireContext {
    let mut ctx = WireContext::new("fuzz-cluster-id", 1, "CONTROLLER");
    for (id, port) in [(1, 9093), (2, 9094), (3, 9095)] {
        let host = "127.0.0.1".to_string();
        ctx.endpoints.insert(id, Endpoint { host, port });
    }
    ctx
}

fn entries() -> Vec<Entry> {
    let change = LeaderChange {
        leader_id: 2,
        voters: vec![1, 2, 3],
        granting_voters: vec![2, 3],
    };
    vec![
        Entry {
            epoch: 4,
            record: Record::LeaderChange(change),
        },
        Entry {
            epoch: 4,
            record: Record::Data(Bytes::from_static(b"\x01\x02\x00\x0btopic-a")),
        },
        Entry {
            epoch: 4,
            record: Record::Data(Bytes::from_static(b"")),
        },
    ]
}

/// The requests the seeds are built from, one per kind (and a pre-vote).
fn requests() -> Vec<Message> {
    vec![
        Message::Vote(VoteRequest {
            epoch: 5,
            candidate: 2,
            last_epoch: 4,
            end_offset: 120,
            pre_vote: false,
        }),
        Message::Vote(VoteRequest {
            epoch: 5,
            candidate: 2,
            last_epoch: 4,
            end_offset: 120,
            pre_vote: true,
        }),
        Message::BeginQuorumEpoch {
            epoch: 5,
            leader: 2,
        },
        Message::EndQuorumEpoch {
            epoch: 5,
            leader: 2,
            preferred_successors: vec![3, 1],
        },
        Message::Fetch(FetchRequest {
            seq: 9,
            epoch: 5,
            replica: 2,
            fetch_offset: 40,
            last_fetched_epoch: 4,
            high_watermark: UNKNOWN_HIGH_WATERMARK,
        }),
        Message::FetchSnapshot(FetchSnapshotRequest {
            seq: 3,
            epoch: 5,
            replica: 2,
            id: SnapshotId {
                end_offset: 100,
                epoch: 4,
            },
            position: 4096,
        }),
    ]
}

/// Answers to the requests above (several per kind).
fn answers(request: &Message) -> Vec<Message> {
    let leader = Some(2);
    match request {
        Message::Vote(v) => vec![Message::VoteResponse(VoteResponse {
            epoch: 5,
            leader,
            granted: true,
            pre_vote: v.pre_vote,
        })],
        Message::BeginQuorumEpoch { .. } => {
            vec![Message::BeginQuorumEpochResponse { epoch: 5, leader }]
        }
        Message::Fetch(f) => fetch_results()
            .into_iter()
            .map(|result| {
                Message::FetchResponse(FetchResponse {
                    seq: f.seq,
                    epoch: 5,
                    leader,
                    result,
                })
            })
            .collect(),
        Message::FetchSnapshot(f) => {
            let chunk = FetchSnapshotResult::Chunk {
                id: f.id,
                size: 8192,
                position: f.position,
                data: Bytes::from_static(b"snapshot bytes"),
            };
            [
                chunk,
                FetchSnapshotResult::Error(FetchError::SnapshotNotFound),
            ]
            .into_iter()
            .map(|result| {
                Message::FetchSnapshotResponse(FetchSnapshotResponse {
                    seq: f.seq,
                    epoch: 5,
                    leader,
                    result,
                })
            })
            .collect()
        }
        _ => Vec::new(),
    }
}

fn fetch_results() -> Vec<FetchResult> {
    vec![
        FetchResult::Records {
            base_offset: 40,
            entries: entries(),
            high_watermark: Some(41),
        },
        FetchResult::Diverging {
            epoch: 3,
            end_offset: 30,
        },
        FetchResult::Snapshot {
            id: SnapshotId {
                end_offset: 100,
                epoch: 4,
            },
        },
        FetchResult::Error(FetchError::FencedLeaderEpoch),
    ]
}

fn status() -> QuorumStatus {
    let replica = |id, leo| ReplicaStatus {
        id,
        directory_id: Uuid::nil(),
        log_end_offset: leo,
        last_fetch_timestamp: 1_700_000_000_000,
        last_caught_up_timestamp: 1_700_000_000_000,
    };
    QuorumStatus {
        leader_id: 2,
        leader_epoch: 5,
        high_watermark: 41,
        voters: vec![replica(2, 42), replica(1, 41), replica(3, -1)],
        observers: vec![replica(7, 40)],
    }
}

fn input(api: usize, version: i16, body: &[u8]) -> Vec<u8> {
    let mut v = vec![api as u8, version as u8];
    v.extend_from_slice(body);
    v
}

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = wire::supported_versions(api).unwrap_or((0, 0));
    min..=max
}

/// Keeps byte 0 an api index and byte 1 a version that api accepts (mostly).
fn fix_api_and_version(input: &mut Vec<u8>, rng: &mut FuzzRng) {
    while input.len() < 2 {
        input.push(0);
    }
    input[0] %= APIS.len() as u8;
    if rng.chance(7, 8) {
        let range = versions(APIS[input[0] as usize]);
        let span = (range.end() - range.start() + 1) as u8;
        input[1] = *range.start() as u8 + input[1] % span;
    }
}

fn split(input: &[u8]) -> Option<(usize, ApiKey, i16, Bytes)> {
    let [api, version, body @ ..] = input else {
        return None;
    };
    let index = *api as usize % APIS.len();
    Some((
        index,
        APIS[index],
        *version as i16,
        Bytes::copy_from_slice(body),
    ))
}

/// `kraft.request`.
#[derive(Debug)]
pub struct RequestTarget {
    seeds: Vec<Vec<u8>>,
    ctx: WireContext,
}

impl RequestTarget {
    pub fn new() -> Self {
        let ctx = ctx();
        let mut seeds = Vec::new();
        for msg in requests() {
            let api = wire::api_key_of(&msg);
            let index = APIS.iter().position(|a| *a == api).unwrap_or(0);
            for version in versions(api) {
                if let Ok(r) = wire::encode_request_at(1, &msg, version, &ctx) {
                    seeds.push(input(index, version, &r.body));
                }
            }
        }
        for version in versions(ApiKey::DescribeQuorum) {
            // An empty topic list and a garbage-free minimal body: the decoder's refusals.
            seeds.push(input(5, version, &[]));
        }
        RequestTarget { seeds, ctx }
    }
}

impl Default for RequestTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for RequestTarget {
    fn name(&self) -> &str {
        "kraft.request"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, _seed: &[u8], rng: &mut FuzzRng) {
        fix_api_and_version(input, rng);
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let Some((_, api, version, body)) = split(input) else {
            return Ok(Outcome::Rejected);
        };
        if api == ApiKey::DescribeQuorum {
            return Ok(outcome(&wire::decode_describe_quorum_request(
                version, body,
            )));
        }
        Ok(outcome(&wire::decode_request(
            api, version, body, 1, &self.ctx,
        )))
    }
}

/// `kraft.response`.
#[derive(Debug)]
pub struct ResponseTarget {
    seeds: Vec<Vec<u8>>,
    sent: Vec<Message>,
}

impl ResponseTarget {
    pub fn new() -> Self {
        let ctx = ctx();
        let sent = requests();
        let mut seeds = Vec::new();
        for (i, msg) in sent.iter().enumerate() {
            let api = wire::api_key_of(msg);
            for version in versions(api) {
                let Ok(r) = wire::encode_request_at(1, msg, version, &ctx) else {
                    continue;
                };
                let Ok(inbound) = wire::decode_request(api, version, r.body, 9, &ctx) else {
                    continue;
                };
                for answer in answers(msg) {
                    if let Ok(body) = wire::encode_response(&inbound, &answer, &ctx, 0) {
                        seeds.push(input(i, version, &body));
                    }
                }
            }
        }
        for version in versions(ApiKey::DescribeQuorum) {
            if let Ok(body) = wire::encode_describe_quorum(&status(), version, &ctx) {
                seeds.push(input(sent.len(), version, &body));
            }
        }
        ResponseTarget { seeds, sent }
    }
}

impl Default for ResponseTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for ResponseTarget {
    fn name(&self) -> &str {
        "kraft.response"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, _seed: &[u8], _rng: &mut FuzzRng) {
        while input.len() < 2 {
            input.push(0);
        }
        input[0] %= self.sent.len() as u8 + 1;
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let [which, version, body @ ..] = input else {
            return Ok(Outcome::Rejected);
        };
        let version = *version as i16;
        let body = Bytes::copy_from_slice(body);
        match self.sent.get(*which as usize) {
            Some(sent) => Ok(outcome(&wire::decode_response(sent, version, body))),
            None => Ok(outcome(&wire::decode_describe_quorum(version, body))),
        }
    }
}

/// `kraft.entries`.
#[derive(Debug)]
pub struct EntriesTarget {
    seeds: Vec<Vec<u8>>,
}

impl EntriesTarget {
    pub fn new() -> Self {
        let mut seeds = Vec::new();
        let all = entries();
        for n in 1..=all.len() {
            if let Ok(b) = encode_entries(40, &all[..n], 1_700_000_000_000) {
                seeds.push(b.to_vec());
            }
        }
        EntriesTarget { seeds }
    }
}

impl Default for EntriesTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for EntriesTarget {
    fn name(&self) -> &str {
        "kraft.entries"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, _seed: &[u8], rng: &mut FuzzRng) {
        maybe_fix_batch_crcs(input, rng);
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let Ok((Some(base), entries)) = decode_entries(Bytes::copy_from_slice(input)) else {
            return Ok(Outcome::Rejected);
        };
        let again = encode_entries(base, &entries, 0)
            .map_err(|e| format!("decoded entries do not encode: {e}"))?;
        match decode_entries(again) {
            Ok((Some(b), e)) if b == base && e == entries => Ok(Outcome::Accepted),
            other => Err(format!("round trip of {entries:?} gave {other:?}")),
        }
    }
}
