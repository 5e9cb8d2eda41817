//! The fuzz targets: what each one decodes, from which seeds, and the registry by name.
//!
//! * `request.<ApiKey>` (one per served API, [`requests`]): `codec::decode_request` over header +
//!   body at every version the broker advertises, and the Produce v0–2 refusal path.
//! * `record_batch` ([`batches`]): the RecordBatch v2 splitter, view, CRC check, decompression
//!   of all four codecs and record iteration, from real librdkafka and kafka-python batches.
//! * `raft.record`, `raft.batch`, `raft.snapshot` ([`raft`]): KRaft metadata records, metadata
//!   log batches (data and control) and snapshot files.
//! * `kraft.request`, `kraft.response`, `kraft.entries` ([`kraft`]): the quorum's RPC bodies
//!   (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch, FetchSnapshot, DescribeQuorum) both ways,
//!   and metadata entries as record batches.
//! * `rlmm.record`, `rlmm.snapshot` ([`rlmm`]): `__remote_log_metadata` values and the local
//!   RLMM snapshot file.
//! * `local_log.files`, `local_log.recovery`, `local_log.append` ([`local_log`]): checkpoints,
//!   indexes and producer snapshots as `dump-log` and log loading read them, and the client append
//!   path (validate, append to a temporary log, read back).

pub mod batches;
mod captures;
pub mod kraft;
pub mod local_log;
pub mod raft;
pub mod requests;
mod requests_populated;
pub mod rlmm;

use crate::rng::FuzzRng;
use crate::runner::Outcome;
use shale_protocol::record_batch::{CRC_START, LOG_OVERHEAD};

/// A decoder under test.
pub trait Target {
    /// Its registry name.
    fn name(&self) -> &str;
    /// The seed corpus (non-empty).
    fn seeds(&self) -> &[Vec<u8>];
    /// Repairs, after mutation, what would stop most inputs at the door (a CRC, the api key and
    /// version), so that they reach the code behind it. `seed` is the input's first seed.
    fn fixup(&self, _input: &mut Vec<u8>, _seed: &[u8], _rng: &mut FuzzRng) {}
    /// Decodes `input`. `Err` is a property the target checks that failed; a panic is caught by
    /// the runner.
    fn run(&mut self, input: &[u8]) -> Result<Outcome, String>;
}

/// Every target name, in run order.
pub fn target_names() -> Vec<String> {
    let mut names = requests::names();
    names.extend(
        [
            "record_batch",
            "raft.record",
            "raft.batch",
            "raft.snapshot",
            "kraft.request",
            "kraft.response",
            "kraft.entries",
            "rlmm.record",
            "rlmm.snapshot",
            "local_log.files",
            "local_log.recovery",
            "local_log.append",
        ]
        .map(String::from),
    );
    names
}

/// Builds the target called `name`.
pub fn make_target(name: &str) -> Option<Box<dyn Target>> {
    if let Some(t) = requests::make(name) {
        return Some(Box::new(t));
    }
    Some(match name {
        "record_batch" => Box::new(batches::RecordBatchTarget::new()),
        "raft.record" => Box::new(raft::RecordTarget::new()),
        "raft.batch" => Box::new(raft::BatchTarget::new()),
        "raft.snapshot" => Box::new(raft::SnapshotTarget::new()),
        "kraft.request" => Box::new(kraft::RequestTarget::new()),
        "kraft.response" => Box::new(kraft::ResponseTarget::new()),
        "kraft.entries" => Box::new(kraft::EntriesTarget::new()),
        "rlmm.record" => Box::new(rlmm::RecordTarget::new()),
        "rlmm.snapshot" => Box::new(rlmm::SnapshotTarget::new()),
        "local_log.files" => Box::new(local_log::FilesTarget::new()),
        "local_log.recovery" => Box::new(local_log::RecoveryTarget::new()),
        "local_log.append" => Box::new(local_log::AppendTarget::new()),
        _ => return None,
    })
}

/// `Ok(Accepted)` or `Ok(Rejected)` from any result.
pub(crate) fn outcome<T, E>(r: &Result<T, E>) -> Outcome {
    if r.is_ok() {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

/// Walks concatenated v2 batches and, where a batch's length field fits the buffer, rewrites its
/// CRC to match its bytes.
pub(crate) fn fix_batch_crcs(buf: &mut [u8]) {
    let mut pos = 0;
    while buf.len() >= pos + LOG_OVERHEAD {
        let len = i32::from_be_bytes([buf[pos + 8], buf[pos + 9], buf[pos + 10], buf[pos + 11]]);
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        let end = pos + LOG_OVERHEAD + len;
        if len < CRC_START - LOG_OVERHEAD || end > buf.len() {
            return;
        }
        let crc = crc32c::crc32c(&buf[pos + CRC_START..end]);
        buf[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// With probability 3/4, [`fix_batch_crcs`]; the rest keep whatever CRC the mutation left.
pub(crate) fn maybe_fix_batch_crcs(input: &mut [u8], rng: &mut FuzzRng) {
    if rng.chance(3, 4) {
        fix_batch_crcs(input);
    }
}

/// Hex text (whitespace ignored) to bytes; the fixtures are checked in as hex.
pub(crate) fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| (c as char).to_digit(16).unwrap_or(0) as u8)
        .collect();
    digits
        .chunks(2)
        .map(|p| (p[0] << 4) | p.get(1).copied().unwrap_or(0))
        .collect()
}
