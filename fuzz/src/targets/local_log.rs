//! The local-log targets. Their inputs start with a selector byte (kept from the seed by most
//! mutations) followed by file or batch bytes:
//!
//! * `local_log.files`: one log-dir file through the reader the broker uses for it — offset
//!   checkpoints, `meta.properties`, and `.index`, `.timeindex`, producer `.snapshot` and `.log`
//!   files through `shale dump-log`'s reader.
//! * `local_log.recovery`: a partition directory (several segments, indexes, producer snapshots,
//!   leader-epoch checkpoint) with one file replaced by the input, opened with `Log::open`
//!   (crash recovery when the selector says unclean) and read end to end.
//! * `local_log.append`: client batches appended to a temporary log (`compression.type` and the
//!   origin picked by the selector), then read back: whatever is accepted must read back as
//!   valid batches (raft-leader appends, which are trusted, go to a log of their own and are
//!   checked for framing and CRC only). The logs start afresh every 512 inputs.
//!
//! Files live under /dev/shm where it exists, so the disk is not the bottleneck.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use shale_common::ManualClock;
use shale_common::TopicPartition;
use shale_local_log::{
    dump_file, read_offset_checkpoint, AppendOrigin, Log, LogConfig, LogOpenOptions, MetaProperties,
};
use shale_protocol::record_batch::batches as split_batches;
use tempfile::TempDir;

use super::batches::{batch_seeds, built_batches, check_batch, client_batches};
use super::{fix_batch_crcs, Target};
use crate::rng::FuzzRng;
use crate::runner::Outcome;

const NOW_MS: i64 = 1_700_000_000_000;

fn scratch_dir() -> TempDir {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("shale-fuzz")
            .tempdir_in(shm)
    } else {
        tempfile::Builder::new().prefix("shale-fuzz").tempdir()
    };
    dir.unwrap_or_else(|e| panic!("cannot create a scratch directory: {e}"))
}

fn keep_selector(input: &mut [u8], seed: &[u8], rng: &mut FuzzRng) {
    if let (Some(i), Some(s)) = (input.first_mut(), seed.first()) {
        if rng.chance(15, 16) {
            *i = *s;
        }
    }
}

fn tagged(selector: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![selector];
    v.extend_from_slice(bytes);
    v
}

/// The file kinds of `local_log.files`, by selector.
const FILE_KINDS: [&str; 6] = [
    "recovery-point-offset-checkpoint",
    "meta.properties",
    "00000000000000000100.index",
    "00000000000000000100.timeindex",
    "00000000000000000100.snapshot",
    "00000000000000000100.log",
];

/// `local_log.files`.
#[derive(Debug)]
pub struct FilesTarget {
    seeds: Vec<Vec<u8>>,
    dir: TempDir,
}

impl FilesTarget {
    pub fn new() -> Self {
        let template = PartitionTemplate::build();
        let mut seeds = vec![
            tagged(0, b"0\n3\nevents 0 42\nevents 1 0\n__consumer_offsets 12 9000\n"),
            tagged(0, b"0\n0\n"),
            tagged(
                1,
                b"#\n#Tue Nov 14 22:13:20 UTC 2023\nnode.id=1\nversion=1\ncluster.id=abc\ndirectory.id=xyz\n",
            ),
        ];
        for (name, bytes) in &template.files {
            let kind = FILE_KINDS
                .iter()
                .position(|k| k.rsplit('.').next() == name.rsplit('.').next());
            if let Some(kind) = kind.filter(|k| *k >= 2) {
                seeds.push(tagged(kind as u8, bytes));
            }
        }
        FilesTarget {
            seeds,
            dir: scratch_dir(),
        }
    }
}

impl Default for FilesTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for FilesTarget {
    fn name(&self) -> &str {
        "local_log.files"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, seed: &[u8], rng: &mut FuzzRng) {
        keep_selector(input, seed, rng);
        if input.len() > 1 && input[0] == 5 {
            fix_batch_crcs(&mut input[1..]);
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let Some((&selector, body)) = input.split_first() else {
            return Ok(Outcome::Rejected);
        };
        let kind = FILE_KINDS[usize::from(selector) % FILE_KINDS.len()];
        let path = self.dir.path().join(kind);
        fs::write(&path, body).map_err(|e| format!("writing {}: {e}", path.display()))?;
        let ok = match selector as usize % FILE_KINDS.len() {
            0 => read_offset_checkpoint(&path).is_ok(),
            1 => MetaProperties::read(self.dir.path()).is_ok(),
            _ => dump_file(&path, true, &mut std::io::sink()).is_ok(),
        };
        Ok(if ok {
            Outcome::Accepted
        } else {
            Outcome::Rejected
        })
    }
}

/// The files of a small partition directory written by a real [`Log`].
#[derive(Debug)]
struct PartitionTemplate {
    files: Vec<(String, Vec<u8>)>,
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 64,
        ..LogConfig::default()
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("events", 0)
}

fn open_log(dir: PathBuf, clean: bool) -> shale_local_log::Result<Log> {
    let opts = LogOpenOptions {
        topic_id: None,
        recovery_point: 0,
        log_start_offset: 0,
        had_clean_shutdown: clean,
    };
    Log::open(dir, tp(), small_config(), opts, ManualClock::new(NOW_MS))
}

impl PartitionTemplate {
    fn build() -> Self {
        let dir = scratch_dir();
        let path = dir.path().join("events-0");
        let log = open_log(path.clone(), true)
            .unwrap_or_else(|e| panic!("cannot open the template log: {e}"));
        // Two leader epochs, a few segments, a producer with state; small batches of every
        // codec (the real client batches hold 90 KB of records each: too slow to recover per
        // input).
        let mut input = built_batches();
        input.extend(client_batches().into_iter().take(1));
        for (i, b) in input.into_iter().enumerate() {
            let origin = AppendOrigin::Client {
                leader_epoch: 1 + i as i32 / 4,
                verification: None,
            };
            let _ = log.append(Bytes::from(b), origin);
        }
        let _ = log.flush();
        let _ = log.close();
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&path)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        fs::read(e.path()).ok().map(|b| (name, b))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        PartitionTemplate { files }
    }
}

/// `local_log.recovery`.
#[derive(Debug)]
pub struct RecoveryTarget {
    seeds: Vec<Vec<u8>>,
    template: PartitionTemplate,
    dir: TempDir,
}

impl RecoveryTarget {
    pub fn new() -> Self {
        let template = PartitionTemplate::build();
        let seeds = template
            .files
            .iter()
            .enumerate()
            .flat_map(|(i, (_, bytes))| [tagged(i as u8, bytes), tagged(i as u8 | 0x80, bytes)])
            .collect();
        RecoveryTarget {
            seeds,
            template,
            dir: scratch_dir(),
        }
    }
}

impl Default for RecoveryTarget {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the whole log, batch by batch, checking each; bounded by the input size.
fn read_all(log: &Log) -> Result<(), String> {
    let mut offset = log.log_start_offset();
    for _ in 0..10_000 {
        let end = log.log_end_offset();
        if offset >= end {
            return Ok(());
        }
        let Ok(info) = log.read(offset, 1 << 20, end, true) else {
            return Ok(());
        };
        if info.records.is_empty() {
            return Ok(());
        }
        let mut next = offset;
        for b in split_batches(info.records).flatten() {
            let _ = check_batch(&b, false);
            next = next.max(b.next_offset());
        }
        if next <= offset {
            return Ok(());
        }
        offset = next;
    }
    Err(format!("reading the log did not end (at offset {offset})"))
}

impl Target for RecoveryTarget {
    fn name(&self) -> &str {
        "local_log.recovery"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, seed: &[u8], rng: &mut FuzzRng) {
        keep_selector(input, seed, rng);
        if input.len() > 1 && rng.chance(1, 2) {
            fix_batch_crcs(&mut input[1..]);
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let Some((&selector, body)) = input.split_first() else {
            return Ok(Outcome::Rejected);
        };
        let path = self.dir.path().join("events-0");
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        let replaced = usize::from(selector & 0x7f) % self.template.files.len().max(1);
        for (i, (name, bytes)) in self.template.files.iter().enumerate() {
            let bytes = if i == replaced { body } else { bytes };
            fs::write(path.join(name), bytes).map_err(|e| e.to_string())?;
        }
        let Ok(log) = open_log(path, selector & 0x80 == 0) else {
            return Ok(Outcome::Rejected);
        };
        read_all(&log)?;
        let _ = (log.offset_for_timestamp(0), log.offset_of_max_timestamp());
        let _ = (log.latest_epoch(), log.epoch_for_offset(5));
        let _ = log.close();
        Ok(Outcome::Accepted)
    }
}

/// `local_log.append`.
#[derive(Debug)]
pub struct AppendTarget {
    seeds: Vec<Vec<u8>>,
    dir: TempDir,
    logs: [Option<Log>; 2],
    inputs: u64,
}

impl AppendTarget {
    pub fn new() -> Self {
        let mut seeds = Vec::new();
        for (i, b) in batch_seeds().into_iter().enumerate() {
            seeds.push(tagged(i as u8, &b));
        }
        for b in client_batches() {
            seeds.push(tagged(4, &b));
        }
        AppendTarget {
            seeds,
            dir: scratch_dir(),
            logs: [None, None],
            inputs: 0,
        }
    }

    /// The client log (`raft == false`) or the metadata log: a partition log only ever gets
    /// client appends and the metadata log only raft-leader ones, so the two are kept apart.
    fn log(&mut self, raft: bool) -> Result<&Log, String> {
        if self.inputs & 511 == 0 {
            for old in self.logs.iter_mut().filter_map(Option::take) {
                let _ = old.close();
            }
        }
        self.inputs += 1;
        let slot = &mut self.logs[usize::from(raft)];
        if slot.is_none() {
            let path = self
                .dir
                .path()
                .join(if raft { "meta-0" } else { "events-0" });
            let _ = fs::remove_dir_all(&path);
            let log = open_log(path, true).map_err(|e| format!("opening the log: {e}"))?;
            *slot = Some(log);
        }
        slot.as_ref().ok_or_else(|| "no log".to_string())
    }
}

impl Default for AppendTarget {
    fn default() -> Self {
        Self::new()
    }
}

const COMPRESSION_TYPES: [&str; 4] = ["producer", "none", "lz4", "snappy"];

impl Target for AppendTarget {
    fn name(&self) -> &str {
        "local_log.append"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, seed: &[u8], rng: &mut FuzzRng) {
        keep_selector(input, seed, rng);
        if input.len() > 1 && rng.chance(7, 8) {
            fix_batch_crcs(&mut input[1..]);
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let Some((&selector, body)) = input.split_first() else {
            return Ok(Outcome::Rejected);
        };
        let log = self.log(selector & 4 != 0)?;
        let config = LogConfig {
            compression_type: COMPRESSION_TYPES[usize::from(selector & 3)].to_string(),
            ..small_config()
        };
        log.update_config(config);
        let origin = if selector & 4 != 0 {
            AppendOrigin::RaftLeader
        } else {
            AppendOrigin::Client {
                leader_epoch: i32::from(selector >> 4),
                verification: None,
            }
        };
        let Ok(info) = log.append(Bytes::copy_from_slice(body), origin) else {
            return Ok(Outcome::Rejected);
        };
        if info.first_offset < 0 {
            return Ok(Outcome::Accepted);
        }
        let read = log
            .read(info.first_offset, 1 << 20, log.log_end_offset(), true)
            .map_err(|e| format!("reading back offset {}: {e}", info.first_offset))?;
        // The raft leader's batches are trusted (only framing and CRC are checked), so only a
        // client batch must read back with valid records.
        let client = matches!(origin, AppendOrigin::Client { .. });
        let mut found = false;
        for b in split_batches(read.records) {
            let b = b.map_err(|e| format!("appended batch does not split: {e}"))?;
            let ours = b.base_offset() <= info.first_offset && info.first_offset <= b.last_offset();
            found |= ours;
            if !ours {
                continue;
            }
            b.verify_crc()
                .map_err(|e| format!("appended batch at {}: {e}", b.base_offset()))?;
            if client {
                b.records()
                    .map_err(|e| format!("appended batch at {}: {e}", b.base_offset()))?;
            }
        }
        if !found {
            return Err(format!(
                "appended offset {} is not in what reads back",
                info.first_offset
            ));
        }
        Ok(Outcome::Accepted)
    }
}
