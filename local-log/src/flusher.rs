//! The recovery point of a log and the one background thread, shared by every log of the
//! process, that makes rolled segments durable and then advances it.
//!
//! A roll seals the old segment without any fsync (`segment/durability.rs`) and queues a
//! [`FlushJob`]: fsync of every segment below the new one that is still above the recovery
//! point, of the producer snapshot written at the roll, and of the partition directory (the
//! new segment's files). Only when all of that succeeded does the recovery point move up to the
//! new segment's base offset, so a crash in between recovers those segments as it would any
//! unflushed data (Kafka schedules the same flush after a roll, `flushUptoOffsetExclusive`).
//!
//! A truncation lowers the recovery point and bumps its generation; a job queued before it
//! carries the old generation and so never raises the point over data it did not flush. A job
//! whose files are gone (segment deleted by retention, partition deleted) is dropped quietly;
//! any other failure is logged at ERROR and leaves the point where it was: the next start
//! recovers from there. If the thread cannot be started, jobs run on the caller's thread.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use shale_common::TopicPartition;

use crate::checkpoint::sync_dir;
use crate::error::{IoContext, LogError, Result};
use crate::segment::Segment;

/// Offset below which everything of a log is on disk, with a generation that truncations bump.
#[derive(Debug)]
pub(crate) struct RecoveryPoint {
    state: Mutex<PointState>,
}

#[derive(Clone, Copy, Debug)]
struct PointState {
    offset: i64,
    generation: u64,
}

/// The generation a [`FlushJob`] was queued in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generation(u64);

impl RecoveryPoint {
    pub(crate) fn new(offset: i64) -> RecoveryPoint {
        RecoveryPoint {
            state: Mutex::new(PointState {
                offset,
                generation: 0,
            }),
        }
    }

    pub(crate) fn get(&self) -> i64 {
        self.state.lock().offset
    }

    /// Moves the point up to `offset` (never down): everything below it was just flushed.
    pub(crate) fn advance_to(&self, offset: i64) {
        let mut st = self.state.lock();
        st.offset = st.offset.max(offset);
    }

    /// Moves the point down to `offset` (never up) for a truncation; flushes queued before no
    /// longer count.
    pub(crate) fn lower_to(&self, offset: i64) {
        let mut st = self.state.lock();
        st.offset = st.offset.min(offset);
        st.generation += 1;
    }

    pub(crate) fn generation(&self) -> Generation {
        Generation(self.state.lock().generation)
    }

    /// [`RecoveryPoint::advance_to`] unless a truncation happened since `generation`.
    fn advance_if(&self, generation: Generation, offset: i64) -> bool {
        let mut st = self.state.lock();
        if st.generation != generation.0 {
            return false;
        }
        st.offset = st.offset.max(offset);
        true
    }
}

/// The durable half of a roll.
#[derive(Debug)]
pub(crate) struct FlushJob {
    pub(crate) tp: TopicPartition,
    /// The partition directory (new segment files were created in it).
    pub(crate) dir: PathBuf,
    /// Segments below `up_to` still above the recovery point when the roll happened.
    pub(crate) segments: Vec<Arc<Segment>>,
    /// The producer snapshot written at the roll, if one was.
    pub(crate) snapshot: Option<PathBuf>,
    /// The new active segment's base offset.
    pub(crate) up_to: i64,
    pub(crate) recovery_point: Arc<RecoveryPoint>,
    pub(crate) generation: Generation,
}

impl FlushJob {
    fn sync_all(&self) -> Result<()> {
        for seg in &self.segments {
            match seg.sync_to_disk() {
                Err(e) if is_not_found(&e) => {}
                r => r?,
            }
        }
        if let Some(p) = &self.snapshot {
            std::fs::File::open(p).and_then(|f| f.sync_all()).ctx(p)?;
        }
        sync_dir(&self.dir)
    }

    fn run(self) {
        match self.sync_all() {
            Ok(()) => {
                if !self.recovery_point.advance_if(self.generation, self.up_to) {
                    tracing::debug!(tp = %self.tp, "log truncated during a roll flush");
                }
            }
            Err(e) if is_not_found(&e) => {
                tracing::debug!(tp = %self.tp, error = %e, "log files gone before their flush");
            }
            Err(e) => {
                tracing::error!(tp = %self.tp, up_to = self.up_to, error = %e,
                    "could not flush rolled segments; the recovery point stays behind");
            }
        }
    }
}

fn is_not_found(e: &LogError) -> bool {
    matches!(e, LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

static QUEUE: OnceLock<Option<Mutex<Sender<FlushJob>>>> = OnceLock::new();

fn start() -> Option<Mutex<Sender<FlushJob>>> {
    let (tx, rx) = channel::<FlushJob>();
    let spawned = std::thread::Builder::new()
        .name("shale-flusher".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job.run();
            }
        });
    match spawned {
        Ok(_) => Some(Mutex::new(tx)),
        Err(e) => {
            tracing::warn!(error = %e, "no background flusher; rolled segments are flushed inline");
            None
        }
    }
}

/// Queues `job` for the background flusher (runs it now if the thread could not start).
pub(crate) fn flush_later(job: FlushJob) {
    let sent = match QUEUE.get_or_init(start) {
        Some(tx) => tx.lock().send(job).map_err(|e| e.0),
        None => Err(job),
    };
    if let Err(job) = sent {
        job.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &std::path::Path, rp: &Arc<RecoveryPoint>, up_to: i64) -> FlushJob {
        FlushJob {
            tp: TopicPartition::new("t", 0),
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            snapshot: None,
            up_to,
            recovery_point: rp.clone(),
            generation: rp.generation(),
        }
    }

    #[test]
    fn a_finished_flush_advances_the_point_never_backwards() {
        let d = tempfile::tempdir().unwrap();
        let rp = Arc::new(RecoveryPoint::new(10));
        job(d.path(), &rp, 20).run();
        assert_eq!(rp.get(), 20);
        job(d.path(), &rp, 15).run();
        assert_eq!(rp.get(), 20);
    }

    #[test]
    fn a_flush_queued_before_a_truncation_does_not_count() {
        let d = tempfile::tempdir().unwrap();
        let rp = Arc::new(RecoveryPoint::new(10));
        let stale = job(d.path(), &rp, 30);
        rp.lower_to(5);
        stale.run();
        assert_eq!(
            rp.get(),
            5,
            "data above 5 was rewritten after that flush was queued"
        );
        job(d.path(), &rp, 8).run();
        assert_eq!(rp.get(), 8);
    }

    #[test]
    fn a_failed_flush_leaves_the_point_and_vanished_files_are_not_errors() {
        let d = tempfile::tempdir().unwrap();
        let rp = Arc::new(RecoveryPoint::new(10));
        let mut j = job(d.path(), &rp, 30);
        j.snapshot = Some(d.path().join("missing.snapshot"));
        j.run();
        assert_eq!(rp.get(), 10);
        let mut j = job(d.path(), &rp, 30);
        j.dir = d.path().join("gone");
        j.run();
        assert_eq!(rp.get(), 10);
    }
}
