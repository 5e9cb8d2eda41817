//! Startup handling of a cleaner swap interrupted by a crash (formats.md §2.5, Kafka's
//! `LogLoader.removeTempFilesAndCollectSwapFiles` + swap completion).
//!
//! The cleaner renames `.cleaned` → `.swap`, old segments → `.deleted`, then `.swap` → final.
//! At load, before segments are opened:
//! * every `*.cleaned` file is deleted (an unfinished rewrite); `.swap` files whose base offset is
//!   at or above the smallest `.cleaned` base belong to that unfinished step and are deleted too
//!   (roll back: the old segments are all still there);
//! * an index `.swap` is deleted (indexes of swapped segments are rebuilt by recovery);
//! * for each remaining `<base>.log.swap`: its index files are deleted, every regular segment file
//!   with a base in `[min swap base, max swap next offset)` is deleted (old segments the swap
//!   replaces), then `.swap` is stripped (roll forward). The segment then opens without an
//!   `.index` and is recovered, which rebuilds its indexes.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use shale_protocol::record_batch::{BatchHeader, BATCH_HEADER_LEN};

use crate::error::{IoContext, LogError, Result};

const INDEX_EXTS: [&str; 3] = [".index", ".timeindex", ".txnindex"];

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, e)),
    }
}

/// `(base offset, rest of the name after the first '.')` of a segment-like file name.
fn split_name(name: &str) -> Option<(i64, &str)> {
    let (stem, rest) = name.split_once('.')?;
    let base = stem.parse::<i64>().ok().filter(|b| *b >= 0)?;
    Some((base, rest))
}

/// Offset after the last whole batch of the `.log` file at `path` (its base if empty).
fn next_offset_of(path: &Path, base: i64) -> Result<i64> {
    let file = File::open(path).ctx(path)?;
    let len = file.metadata().ctx(path)?.len();
    let mut pos = 0u64;
    let mut next = base;
    let mut buf = [0u8; BATCH_HEADER_LEN];
    while pos + BATCH_HEADER_LEN as u64 <= len {
        file.read_exact_at(&mut buf, pos).ctx(path)?;
        let Ok(h) = BatchHeader::from_slice(&buf) else {
            break;
        };
        let size = h.size() as u64;
        if size < BATCH_HEADER_LEN as u64 || pos + size > len {
            break;
        }
        next = h.next_offset();
        pos += size;
    }
    Ok(next)
}

/// Rolls back or completes an interrupted swap in `dir` (see the module doc).
pub(crate) fn complete_swaps(dir: &Path) -> Result<()> {
    let mut cleaned = Vec::new();
    let mut swaps: Vec<(i64, String, PathBuf)> = Vec::new();
    for e in fs::read_dir(dir).ctx(dir)? {
        let e = e.ctx(dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((base, rest)) = split_name(&name) else {
            continue;
        };
        if rest.ends_with(".cleaned") {
            cleaned.push((base, e.path()));
        } else if let Some(kind) = rest.strip_suffix(".swap") {
            swaps.push((base, kind.to_string(), e.path()));
        }
    }
    let min_cleaned = cleaned.iter().map(|c| c.0).min().unwrap_or(i64::MAX);
    for (_, p) in &cleaned {
        remove(p)?;
    }
    let mut logs = Vec::new();
    for (base, kind, path) in swaps {
        if base >= min_cleaned || kind != "log" {
            remove(&path)?;
        } else {
            logs.push((base, path));
        }
    }
    if logs.is_empty() {
        return Ok(());
    }
    let min_base = logs.iter().map(|l| l.0).min().unwrap_or(0);
    let mut max_next = min_base;
    for (base, path) in &logs {
        max_next = max_next.max(next_offset_of(path, *base)?);
    }
    for e in fs::read_dir(dir).ctx(dir)? {
        let e = e.ctx(dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((base, rest)) = split_name(&name) else {
            continue;
        };
        let regular = rest == "log" || INDEX_EXTS.iter().any(|x| &x[1..] == rest);
        if regular && base >= min_base && (base < max_next || base == min_base) {
            remove(&e.path())?;
        }
    }
    for (base, path) in logs {
        tracing::info!(dir = %dir.display(), base, "completing an interrupted cleaner swap");
        let target = dir.join(crate::segment::file_name(base, ".log"));
        fs::rename(&path, &target).ctx(&path)?;
    }
    crate::checkpoint::sync_dir(dir)
}
