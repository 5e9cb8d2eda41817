//! Kafka's text checkpoint files (`<version>\n<count>\n<entry>\n…`) and the crash-safe way every
//! small text file in a log dir is written (tmp file, fsync, atomic rename, fsync of the parent).
//! Used for `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//! `replication-offset-checkpoint` and `leader-epoch-checkpoint` (formats.md §3.3).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use shale_common::TopicPartition;

use crate::error::{IoContext, LogError, Result};

/// Writes `bytes` to `path` atomically: `<path>.tmp`, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_file(path, bytes, true)
}

/// Replaces `path` by `bytes` through `<path>.tmp` and a rename, with fsyncs of the file before
/// the rename and of the directory after it only if `durable`. Without them a crash may leave an
/// empty or partial file: only for files that carry their own checksum (producer snapshots),
/// whose fsync someone queues for later.
pub(crate) fn replace_file(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .ctx(&tmp)?;
        f.write_all(bytes).ctx(&tmp)?;
        if durable {
            f.sync_all().ctx(&tmp)?;
        }
    }
    fs::rename(&tmp, path).ctx(path)?;
    match path.parent() {
        Some(parent) if durable => sync_dir(parent),
        _ => Ok(()),
    }
}

/// fsyncs a directory so renames/creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

/// Writes a checkpoint file with `version`, the line count and the lines.
pub(crate) fn write_lines(path: &Path, version: i32, lines: &[String]) -> Result<()> {
    let mut s = format!("{version}\n{}\n", lines.len());
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    write_atomic(path, s.as_bytes())
}

/// Reads a checkpoint file: `Ok(None)` if missing, no entries if empty; a version other than
/// `version`, a bad count or a line-count mismatch -> [`LogError::Corrupt`].
pub(crate) fn read_lines(path: &Path, version: i32) -> Result<Option<Vec<String>>> {
    match fs::read_to_string(path) {
        Ok(text) => parse_lines(path, &text, version).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(path, e)),
    }
}

/// [`read_lines`] on a checkpoint's `text` (`path` only names it in errors).
pub(crate) fn parse_lines(path: &Path, text: &str, version: i32) -> Result<Vec<String>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = text.lines();
    let v: i32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| LogError::corrupt(path, "missing or malformed version line"))?;
    if v != version {
        return Err(LogError::corrupt(
            path,
            format!("unexpected version {v}, expected {version}"),
        ));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| LogError::corrupt(path, "missing or malformed entry count"))?;
    let entries: Vec<String> = lines.map(str::to_string).collect();
    if entries.len() != count {
        return Err(LogError::corrupt(
            path,
            format!("expected {count} entries, found {}", entries.len()),
        ));
    }
    Ok(entries)
}

/// Reads a `topic partition offset` checkpoint (version 0). A missing file yields no entries.
pub fn read_offset_checkpoint(path: &Path) -> Result<HashMap<TopicPartition, i64>> {
    let mut out = HashMap::new();
    for line in read_lines(path, 0)?.unwrap_or_default() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let parsed = match f.as_slice() {
            [topic, part, off] => part
                .parse::<i32>()
                .ok()
                .zip(off.parse::<i64>().ok())
                .map(|(p, o)| (*topic, p, o)),
            _ => None,
        };
        let (topic, p, o) = parsed
            .ok_or_else(|| LogError::corrupt(path, format!("malformed entry line {line:?}")))?;
        out.insert(TopicPartition::new(topic, p), o);
    }
    Ok(out)
}

/// Writes a `topic partition offset` checkpoint (version 0), tmp + fsync + rename.
pub fn write_offset_checkpoint(path: &Path, entries: &[(TopicPartition, i64)]) -> Result<()> {
    let lines: Vec<String> = entries
        .iter()
        .map(|(tp, o)| format!("{} {} {}", tp.topic, tp.partition, o))
        .collect();
    write_lines(path, 0, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_checkpoint_bytes_match_kafka() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("recovery-point-offset-checkpoint");
        write_offset_checkpoint(
            &p,
            &[
                (TopicPartition::new("foo", 0), 42),
                (TopicPartition::new("bar", 3), 7),
            ],
        )
        .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"0\n2\nfoo 0 42\nbar 3 7\n");
        let m = read_offset_checkpoint(&p).unwrap();
        assert_eq!(m[&TopicPartition::new("foo", 0)], 42);
        assert_eq!(m[&TopicPartition::new("bar", 3)], 7);
        assert!(!d
            .path()
            .join("recovery-point-offset-checkpoint.tmp")
            .exists());
    }

    #[test]
    fn empty_and_missing_files_have_no_entries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cp");
        assert!(read_offset_checkpoint(&p).unwrap().is_empty());
        fs::write(&p, b"").unwrap();
        assert!(read_offset_checkpoint(&p).unwrap().is_empty());
    }

    #[test]
    fn malformed_files_are_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cp");
        for bad in [&b"1\n0\n"[..], b"0\n2\nfoo 0 1\n", b"0\n1\nfoo 0\n", b"x\n"] {
            fs::write(&p, bad).unwrap();
            assert!(
                matches!(read_offset_checkpoint(&p), Err(LogError::Corrupt { .. })),
                "{bad:?}"
            );
        }
    }
}
