//! The set of partition logs in the broker's `log.dirs` and the log-dir level files:
//! `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//! `replication-offset-checkpoint` and the `.kafka_cleanshutdown` marker (formats.md §3).
//! New partitions go to the log dir holding the fewest partitions.
//!
//! Every log shares one open-files budget ([`OpenFiles`], `shale.log.open.files.max`): loading
//! refuses a set of partitions whose active segments alone would not fit in it, and callers
//! creating partitions reserve room first ([`LogManager::reserve`]). A partition whose creation
//! fails leaves no directory behind.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use shale_common::{Clock, TopicPartition};
use uuid::Uuid;

use crate::checkpoint::{read_offset_checkpoint, sync_dir, write_atomic, write_offset_checkpoint};
use crate::config::LogConfig;
use crate::error::{IoContext, LogError, Result};
use crate::files::{FileReservation, OpenFiles};
use crate::log::{Log, LogOpenOptions};
use crate::meta_properties::{CLEAN_SHUTDOWN_CONTENT, CLEAN_SHUTDOWN_MARKER};

/// `recovery-point-offset-checkpoint`.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// `log-start-offset-checkpoint`.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// `replication-offset-checkpoint`.
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
/// `cleaner-offset-checkpoint` (compacted logs: offset up to which each was cleaned).
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// The KRaft metadata partition dir, owned by the raft crate.
pub const METADATA_PARTITION_DIR: &str = "__cluster_metadata-0";

/// Options of the log manager.
#[derive(Clone, Debug)]
pub struct LogManagerOptions {
    /// The broker's `log.dirs`.
    pub log_dirs: Vec<PathBuf>,
    /// Config for partitions of unknown topics.
    pub default_config: LogConfig,
    /// Open-files budget (`shale.log.open.files.max`); `None` = derived from the process limit
    /// ([`crate::files::default_budget`]).
    pub open_files_max: Option<usize>,
}

#[derive(Debug)]
struct Entry {
    log: Arc<Log>,
    log_dir: PathBuf,
}

/// Size of the file system holding a log dir.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirSpace {
    /// Capacity of the file system in bytes.
    pub total_bytes: u64,
    /// Bytes an unprivileged writer may still use.
    pub usable_bytes: u64,
}

/// All partition logs of the broker.
#[derive(Debug)]
pub struct LogManager {
    opts: LogManagerOptions,
    clock: Arc<dyn Clock>,
    files: OpenFiles,
    logs: RwLock<BTreeMap<TopicPartition, Entry>>,
    strays: RwLock<Vec<TopicPartition>>,
}

fn is_partition_dir_name(name: &str) -> Option<TopicPartition> {
    if name == METADATA_PARTITION_DIR || name.starts_with('.') {
        return None;
    }
    if name.ends_with("-delete") || name.ends_with("-future") || name.ends_with("-stray") {
        return None;
    }
    TopicPartition::from_dir_name(name)
}

/// Partition directories in `log_dirs` (each will pin one file for its active segment).
fn count_partition_dirs(log_dirs: &[PathBuf]) -> Result<usize> {
    let mut n = 0;
    for log_dir in log_dirs {
        let entries = match fs::read_dir(log_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LogError::io(log_dir, e)),
        };
        for e in entries {
            let e = e.ctx(log_dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().ctx(&e.path())?.is_dir() && is_partition_dir_name(&name).is_some() {
                n += 1;
            }
        }
    }
    Ok(n)
}

impl LogManager {
    /// Reads (and deletes) each dir's clean-shutdown marker and checkpoints, removes `*-delete`
    /// dirs, and loads every `<topic>-<partition>` dir (not `__cluster_metadata-0`). Topics
    /// unknown to `configs` load with the default config and are listed as strays.
    pub fn open(
        opts: LogManagerOptions,
        clock: Arc<dyn Clock>,
        configs: &dyn Fn(&str) -> Option<(Uuid, LogConfig)>,
    ) -> Result<LogManager> {
        let files = OpenFiles::new(
            opts.open_files_max
                .unwrap_or_else(crate::files::default_budget),
        );
        let limit = crate::files::process_file_limit();
        if limit.is_some_and(|l| files.budget() as u64 >= l) {
            tracing::warn!(budget = files.budget(), process_limit = ?limit,
                "shale.log.open.files.max is not below the process limit (ulimit -n): sockets can run out of descriptors");
        }
        files.check_room(count_partition_dirs(&opts.log_dirs)?)?;
        let m = LogManager {
            opts,
            clock,
            files,
            logs: RwLock::new(BTreeMap::new()),
            strays: RwLock::new(Vec::new()),
        };
        for log_dir in &m.opts.log_dirs {
            m.load_dir(log_dir, configs)?;
        }
        tracing::info!(budget = m.files.budget(), open = m.files.open(), pinned = m.files.pinned(),
            process_limit = ?limit, "logs loaded");
        Ok(m)
    }

    /// Loads every partition of one log dir (see [`LogManager::open`]).
    fn load_dir(
        &self,
        log_dir: &Path,
        configs: &dyn Fn(&str) -> Option<(Uuid, LogConfig)>,
    ) -> Result<()> {
        fs::create_dir_all(log_dir).ctx(log_dir)?;
        let marker = log_dir.join(CLEAN_SHUTDOWN_MARKER);
        let clean = marker.exists();
        if clean {
            fs::remove_file(&marker).ctx(&marker)?;
            sync_dir(log_dir)?;
        }
        let recovery = read_offset_checkpoint(&log_dir.join(RECOVERY_POINT_CHECKPOINT))?;
        let starts = read_offset_checkpoint(&log_dir.join(LOG_START_OFFSET_CHECKPOINT))?;
        let cleaned = read_offset_checkpoint(&log_dir.join(CLEANER_OFFSET_CHECKPOINT))?;
        let hws = read_offset_checkpoint(&log_dir.join(REPLICATION_OFFSET_CHECKPOINT))?;
        for e in fs::read_dir(log_dir).ctx(log_dir)? {
            let e = e.ctx(log_dir)?;
            if !e.file_type().ctx(&e.path())?.is_dir() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with("-delete") {
                fs::remove_dir_all(e.path()).ctx(&e.path())?;
                continue;
            }
            let Some(tp) = is_partition_dir_name(&name) else {
                continue;
            };
            let (topic_id, config, known) = match configs(&tp.topic) {
                Some((id, c)) => (Some(id), c, true),
                None => (None, self.opts.default_config.clone(), false),
            };
            let open_opts = LogOpenOptions {
                topic_id,
                recovery_point: recovery.get(&tp).copied().unwrap_or(0),
                log_start_offset: starts.get(&tp).copied().unwrap_or(0),
                had_clean_shutdown: clean,
            };
            let log = Log::open_in(
                e.path(),
                tp.clone(),
                config,
                open_opts,
                self.clock.clone(),
                &self.files,
            )?;
            if let Some(&c) = cleaned.get(&tp) {
                log.set_cleaner_checkpoint(c);
            }
            if let Some(&hw) = hws.get(&tp) {
                log.set_high_watermark(hw);
            }
            if !known {
                self.strays.write().push(tp.clone());
            }
            let entry = Entry {
                log: Arc::new(log),
                log_dir: log_dir.to_path_buf(),
            };
            self.logs.write().insert(tp, entry);
        }
        Ok(())
    }

    /// The log of `tp`, if loaded.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.logs.read().get(tp).map(|e| e.log.clone())
    }

    /// Returns the existing log or creates the partition dir (in the log dir with the fewest
    /// partitions) with `partition.metadata`.
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<Arc<Log>> {
        let mut logs = self.logs.write();
        if let Some(e) = logs.get(tp) {
            return Ok(e.log.clone());
        }
        let mut counts: HashMap<&Path, usize> = self
            .opts
            .log_dirs
            .iter()
            .map(|d| (d.as_path(), 0))
            .collect();
        for e in logs.values() {
            if let Some(c) = counts.get_mut(e.log_dir.as_path()) {
                *c += 1;
            }
        }
        let log_dir = self
            .opts
            .log_dirs
            .iter()
            .min_by_key(|d| counts.get(d.as_path()).copied().unwrap_or(0))
            .cloned()
            .ok_or_else(|| LogError::InvalidConfig {
                key: "log.dirs".into(),
                value: String::new(),
                reason: "no log directory configured".into(),
            })?;
        let dir = log_dir.join(tp.to_string());
        let opts = LogOpenOptions {
            topic_id: Some(topic_id),
            recovery_point: 0,
            log_start_offset: 0,
            had_clean_shutdown: true,
        };
        let existed = dir.exists();
        let opened = Log::open_in(
            dir.clone(),
            tp.clone(),
            config,
            opts,
            self.clock.clone(),
            &self.files,
        );
        let log = match opened {
            Ok(log) => Arc::new(log),
            Err(e) => {
                // Leave nothing half-made behind for the next start to trip over.
                if !existed {
                    if let Err(rm) = fs::remove_dir_all(&dir) {
                        tracing::warn!(dir = %dir.display(), error = %rm, "could not remove a partition dir after a failed creation");
                    }
                }
                return Err(e);
            }
        };
        sync_dir(&log_dir)?;
        logs.insert(
            tp.clone(),
            Entry {
                log: log.clone(),
                log_dir,
            },
        );
        Ok(log)
    }

    /// The open-files budget shared by every log.
    pub fn open_files(&self) -> &OpenFiles {
        &self.files
    }

    /// Holds room in the open-files budget for the active segments of `partitions` new
    /// partitions until the guard is dropped (create their logs meanwhile);
    /// [`LogError::FileBudget`] if they do not fit.
    pub fn reserve(&self, partitions: usize) -> Result<FileReservation> {
        self.files.reserve(partitions)
    }

    /// Deletes the partition's directory and forgets the log.
    pub fn delete(&self, tp: &TopicPartition) -> Result<()> {
        let entry = self.logs.write().remove(tp);
        self.strays.write().retain(|s| s != tp);
        if let Some(e) = entry {
            e.log.delete()?;
        }
        Ok(())
    }

    /// All loaded logs.
    pub fn all_logs(&self) -> Vec<Arc<Log>> {
        self.logs.read().values().map(|e| e.log.clone()).collect()
    }

    /// Partitions found on disk whose topic `configs` did not know.
    pub fn stray_partitions(&self) -> Vec<TopicPartition> {
        self.strays.read().clone()
    }

    /// The configured log dirs.
    pub fn log_dirs(&self) -> Vec<PathBuf> {
        self.opts.log_dirs.clone()
    }

    /// Total and usable bytes of the file system holding `log_dir` (blocking: one `statvfs`).
    pub fn dir_space(log_dir: &Path) -> std::io::Result<DirSpace> {
        let st = rustix::fs::statvfs(log_dir)?;
        let frag = st.f_frsize;
        Ok(DirSpace {
            total_bytes: st.f_blocks.saturating_mul(frag),
            usable_bytes: st.f_bavail.saturating_mul(frag),
        })
    }

    /// The log dir holding `tp`.
    pub fn dir_of(&self, tp: &TopicPartition) -> Option<PathBuf> {
        self.logs.read().get(tp).map(|e| e.log_dir.clone())
    }

    /// Writes the three offset checkpoints of every log dir.
    pub fn write_checkpoints(&self) -> Result<()> {
        let logs = self.logs.read();
        for log_dir in &self.opts.log_dirs {
            let mut recovery = Vec::new();
            let mut starts = Vec::new();
            let mut hws = Vec::new();
            for (tp, e) in logs.iter().filter(|(_, e)| &e.log_dir == log_dir) {
                recovery.push((tp.clone(), e.log.recovery_point()));
                hws.push((tp.clone(), e.log.high_watermark()));
                // Tiered logs always (invariant 4): their start cannot be derived from local files.
                if e.log.is_tiered() || e.log.log_start_offset() > e.log.first_segment_base_offset()
                {
                    starts.push((tp.clone(), e.log.log_start_offset()));
                }
            }
            write_offset_checkpoint(&log_dir.join(RECOVERY_POINT_CHECKPOINT), &recovery)?;
            write_offset_checkpoint(&log_dir.join(LOG_START_OFFSET_CHECKPOINT), &starts)?;
            write_offset_checkpoint(&log_dir.join(REPLICATION_OFFSET_CHECKPOINT), &hws)?;
        }
        drop(logs);
        self.write_cleaner_checkpoints()
    }

    /// Writes `cleaner-offset-checkpoint` in every log dir (compacted logs with a checkpoint).
    pub fn write_cleaner_checkpoints(&self) -> Result<()> {
        let logs = self.logs.read();
        for log_dir in &self.opts.log_dirs {
            let entries: Vec<(TopicPartition, i64)> = logs
                .iter()
                .filter(|(_, e)| &e.log_dir == log_dir)
                .filter(|(_, e)| e.log.config_arc().cleanup_policy.compact)
                .filter(|(_, e)| e.log.cleaner_checkpoint() > 0)
                .map(|(tp, e)| (tp.clone(), e.log.cleaner_checkpoint()))
                .collect();
            let path = log_dir.join(CLEANER_OFFSET_CHECKPOINT);
            if entries.is_empty() && !path.exists() {
                continue;
            }
            write_offset_checkpoint(&path, &entries)?;
        }
        Ok(())
    }

    /// Retention + tick for every log, then one cleaner pass for each compacted log that is due
    /// (writing `cleaner-offset-checkpoint` if any ran). Errors of one log are logged, the first
    /// is returned.
    pub fn housekeeping(&self) -> Result<()> {
        let mut first_err = None;
        let mut cleaned = false;
        for log in self.all_logs() {
            let res = log
                .enforce_retention()
                .and_then(|_| log.tick())
                .and_then(|_| {
                    cleaned |= log.clean(false)?.is_some();
                    Ok(())
                });
            if let Err(e) = res {
                if matches!(e, LogError::Closed { .. }) {
                    continue;
                }
                tracing::warn!(tp = %log.topic_partition(), err = %e, "housekeeping failed");
                first_err.get_or_insert(e);
            }
        }
        if cleaned {
            if let Err(e) = self.write_cleaner_checkpoints() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Clean shutdown: close every log, write checkpoints, then the marker in each dir.
    pub fn shutdown(&self) -> Result<()> {
        for log in self.all_logs() {
            log.close()?;
        }
        self.write_checkpoints()?;
        for log_dir in &self.opts.log_dirs {
            write_atomic(&log_dir.join(CLEAN_SHUTDOWN_MARKER), CLEAN_SHUTDOWN_CONTENT)?;
        }
        Ok(())
    }
}
