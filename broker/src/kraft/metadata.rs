//! The metadata controller over the multi-voter KRaft quorum: a [`StateMachine`] that decodes
//! committed entries into metadata records and applies them to a [`MetadataLoader`]
//! ([`MetadataApplier`]), and the [`MetadataQuorum`] backend the [`shale_raft::Controller`]
//! commits through ([`KRaftMetadataQuorum`]).
//!
//! Committing appends the encoded records to the driver as one batch (or a metadata
//! transaction over several, see [`atomic_chunks`]) and waits, on a `Condvar` since callers are
//! blocking threads, until the applier has applied the last one. Only the leader writes, and
//! only once it has applied an entry of its own epoch (its LeaderChange record): everything the
//! previous leaders committed is then in its image, as Kafka's controller waits for the raft
//! client to report it caught up to the epoch start before claiming leadership. A metadata
//! transaction a previous leader left open is aborted before the new leader's first write.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use shale_common::Clock;
use shale_raft::image::{MetadataImage, MetadataLoader};
use shale_raft::kraft::{Entry, NodeId, Record, RoleKind, Snapshot, SnapshotId};
use shale_raft::{atomic_chunks, ControllerError, MetadataQuorum, MetadataRecord, RaftError};
use tokio::sync::oneshot;

use super::driver::{DriverHandle, Input, QuorumView, StateMachine, VotersAt};

/// The longest a condition wait sleeps before the quorum view is looked at again.
const RECHECK: Duration = Duration::from_millis(20);

/// What has been applied, guarded by [`Applied::state`].
#[derive(Debug)]
struct AppliedState {
    loader: MetadataLoader,
    /// Offset of the last entry applied (-1 = none).
    offset: i64,
    /// Epoch of the last entry applied.
    epoch: i32,
    /// (epoch, first offset applied in it), one per epoch seen, ascending.
    epoch_starts: Vec<(i32, i64)>,
    /// A committed entry that could not be applied: the image is no longer trustworthy.
    fault: Option<String>,
}

impl AppliedState {
    /// The epoch of the applied entry at `offset`.
    fn epoch_of(&self, offset: i64) -> Option<i32> {
        self.epoch_starts
            .iter()
            .rev()
            .find(|(_, start)| *start <= offset)
            .map(|(e, _)| *e)
    }

    fn note_entry(&mut self, offset: i64, epoch: i32) {
        if self.epoch_starts.last().is_none_or(|(e, _)| *e != epoch) {
            self.epoch_starts.push((epoch, offset));
        }
        self.offset = offset;
        self.epoch = epoch;
    }
}

/// The applied metadata, shared between the driver thread and the controller's callers.
#[derive(Debug)]
pub struct Applied {
    state: Mutex<AppliedState>,
    changed: Condvar,
    /// The applied offset, for async watchers (a broker reconciling its partitions).
    offsets: tokio::sync::watch::Sender<i64>,
}

impl Applied {
    fn lock(&self) -> MutexGuard<'_, AppliedState> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest published image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.lock().loader.image()
    }

    /// Offset of the last entry applied (-1 = none).
    pub fn applied_offset(&self) -> i64 {
        self.lock().offset
    }

    /// Follows the applied offset.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<i64> {
        self.offsets.subscribe()
    }

    /// Wakes the blocking waiters and the async watchers.
    fn publish(&self, offset: i64) {
        self.changed.notify_all();
        self.offsets.send_replace(offset);
    }
}

/// When a node snapshots its metadata (Kafka's `metadata.log.max.record.bytes.between.snapshots`
/// and `metadata.log.max.snapshot.interval.ms`; 0 turns either off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub max_bytes_between: u64,
    pub max_interval_ms: u64,
}

impl SnapshotPolicy {
    /// Never snapshot.
    pub const NEVER: SnapshotPolicy = SnapshotPolicy {
        max_bytes_between: 0,
        max_interval_ms: 0,
    };
}

/// The [`StateMachine`] the driver hands committed entries to. Every node (voter or observer)
/// snapshots its own image by [`SnapshotPolicy`], as Kafka's nodes each do.
#[derive(Debug)]
pub struct MetadataApplier {
    applied: Arc<Applied>,
    cluster_id: String,
    policy: SnapshotPolicy,
    /// Bytes of data records applied since the last snapshot (or start).
    bytes_since_snapshot: u64,
    /// Wall time of the last snapshot (or of the first apply after start).
    last_snapshot_ms: Option<i64>,
}

impl MetadataApplier {
    /// Snapshots by `policy` (the default is [`SnapshotPolicy::NEVER`]).
    pub fn with_snapshots(mut self, policy: SnapshotPolicy) -> MetadataApplier {
        self.policy = policy;
        self
    }

    /// An applier starting from the empty image of `cluster_id`, and its shared state.
    pub fn new(cluster_id: &str) -> (MetadataApplier, Arc<Applied>) {
        let applied = Arc::new(Applied {
            state: Mutex::new(AppliedState {
                loader: MetadataLoader::new(MetadataImage::empty(cluster_id)),
                offset: -1,
                epoch: 0,
                epoch_starts: Vec::new(),
                fault: None,
            }),
            changed: Condvar::new(),
            offsets: tokio::sync::watch::channel(-1).0,
        });
        let machine = MetadataApplier {
            applied: applied.clone(),
            cluster_id: cluster_id.to_owned(),
            policy: SnapshotPolicy::NEVER,
            bytes_since_snapshot: 0,
            last_snapshot_ms: None,
        };
        (machine, applied)
    }
}

/// Applies a run of data records that share an epoch and end at `last_offset`.
fn flush_run(state: &mut AppliedState, run: &mut Vec<MetadataRecord>, last: Option<(i64, i32)>) {
    if let Some((last_offset, epoch)) = last {
        state.loader.apply_batch(last_offset, epoch, run);
    }
    run.clear();
}

impl StateMachine for MetadataApplier {
    fn apply(&mut self, base_offset: i64, entries: &[Entry]) {
        let mut state = self.applied.lock();
        let mut run = Vec::new();
        let mut run_end: Option<(i64, i32)> = None;
        for (i, entry) in entries.iter().enumerate() {
            let offset = base_offset + i as i64;
            if run_end.is_some_and(|(_, e)| e != entry.epoch) {
                flush_run(&mut state, &mut run, run_end.take());
            }
            match &entry.record {
                Record::Data(bytes) => match MetadataRecord::decode(bytes) {
                    Ok(record) => {
                        self.bytes_since_snapshot += bytes.len() as u64;
                        run.push(record);
                        run_end = Some((offset, entry.epoch));
                    }
                    Err(e) => {
                        tracing::error!(offset, error = %e, "undecodable committed metadata record");
                        state.fault.get_or_insert_with(|| {
                            format!("committed metadata record at offset {offset}: {e}")
                        });
                    }
                },
                Record::LeaderChange(_) | Record::Voters(_) => {
                    flush_run(&mut state, &mut run, run_end.take());
                    // Control records only move the image's offset forward.
                    state.loader.apply_batch(offset, entry.epoch, &[]);
                }
            }
            state.note_entry(offset, entry.epoch);
        }
        flush_run(&mut state, &mut run, run_end.take());
        let offset = state.offset;
        drop(state);
        self.applied.publish(offset);
    }

    fn load_snapshot(&mut self, snapshot: &Snapshot) {
        let SnapshotId { end_offset, epoch } = snapshot.id;
        let path = Path::new("metadata snapshot");
        let content = match shale_raft::snapshot::decode_batch_file(path, snapshot.data.clone()) {
            Ok(content) => content,
            Err(e) => {
                let why = format!("metadata snapshot {:?}: {e}", snapshot.id);
                tracing::error!("{why}");
                self.applied.lock().fault.get_or_insert(why);
                self.applied.changed.notify_all();
                return;
            }
        };
        let mut loader = MetadataLoader::new(MetadataImage::empty(self.cluster_id.as_str()));
        loader.apply_batch(end_offset - 1, epoch, &content.records);
        let mut state = self.applied.lock();
        state.loader = loader;
        state.offset = end_offset - 1;
        state.epoch = epoch;
        state.epoch_starts = vec![(epoch, end_offset - 1)];
        drop(state);
        self.bytes_since_snapshot = 0;
        tracing::info!(
            end_offset,
            epoch,
            records = content.records.len(),
            "metadata snapshot loaded"
        );
        self.applied.publish(end_offset - 1);
    }

    /// Due once enough record bytes or time has passed since the last snapshot, outside a
    /// metadata transaction: the whole image as a Kafka checkpoint file.
    fn snapshot_due(&mut self, now_ms: i64, voters_at: &VotersAt<'_>) -> Option<(i64, Bytes)> {
        let SnapshotPolicy {
            max_bytes_between,
            max_interval_ms,
        } = self.policy;
        let since = *self.last_snapshot_ms.get_or_insert(now_ms);
        let by_bytes = max_bytes_between > 0 && self.bytes_since_snapshot >= max_bytes_between;
        let by_time = max_interval_ms > 0
            && self.bytes_since_snapshot > 0
            && now_ms.saturating_sub(since) >= max_interval_ms as i64;
        if !(by_bytes || by_time) {
            return None;
        }
        let state = self.applied.lock();
        if state.loader.in_transaction() || state.offset < 0 || state.fault.is_some() {
            return None;
        }
        let image = state.loader.image();
        let (end_offset, epoch) = (state.offset + 1, state.epoch);
        drop(state);
        let values: Vec<Bytes> = image
            .to_records()
            .iter()
            .map(MetadataRecord::encode)
            .collect();
        let voters = voters_at(end_offset);
        let encoded = shale_raft::snapshot::encode_checkpoint(
            epoch,
            now_ms,
            now_ms,
            voters.as_deref(),
            &values,
        );
        match encoded {
            Ok(data) => {
                self.bytes_since_snapshot = 0;
                self.last_snapshot_ms = Some(now_ms);
                Some((end_offset, data))
            }
            Err(e) => {
                tracing::error!(error = %e, "encoding a metadata snapshot failed");
                None
            }
        }
    }
}

/// The controller's [`MetadataQuorum`] over a running quorum member.
#[derive(Debug)]
pub struct KRaftMetadataQuorum {
    node_id: NodeId,
    applied: Arc<Applied>,
    driver: DriverHandle,
    clock: Arc<dyn Clock>,
    /// How long a commit (or a new leader's catch-up) may take before a retriable error.
    timeout: Duration,
    /// Written by the first active controller of a fresh cluster (`bootstrap.checkpoint`).
    bootstrap: Vec<MetadataRecord>,
    stopped: AtomicBool,
}

impl KRaftMetadataQuorum {
    /// A backend committing through the driver of `driver`, whose state machine is the
    /// [`MetadataApplier`] that shares `applied`.
    pub fn new(
        node_id: NodeId,
        applied: Arc<Applied>,
        driver: DriverHandle,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> KRaftMetadataQuorum {
        KRaftMetadataQuorum {
            node_id,
            applied,
            driver,
            clock,
            timeout,
            bootstrap: Vec::new(),
            stopped: AtomicBool::new(false),
        }
    }

    /// The records an active controller writes when the committed metadata has no features
    /// yet (a fresh cluster): the bootstrap `metadata.version`, as Kafka's controller does.
    pub fn with_bootstrap(mut self, records: Vec<MetadataRecord>) -> KRaftMetadataQuorum {
        self.bootstrap = records;
        self
    }

    fn view(&self) -> QuorumView {
        self.driver.view.borrow().clone()
    }

    /// The view when this node leads and may be written to, else why not.
    fn leading(&self) -> Result<QuorumView, ControllerError> {
        let view = self.view();
        if view.stopped || self.stopped.load(Ordering::Acquire) {
            return Err(ControllerError::Storage(RaftError::Closed));
        }
        if view.role != RoleKind::Leader {
            return Err(ControllerError::NotController {
                leader: view.leader,
            });
        }
        if let Some(fault) = &self.applied.lock().fault {
            return Err(ControllerError::Storage(RaftError::Quorum(fault.clone())));
        }
        Ok(view)
    }

    /// Waits until `done` holds for the applied state (re-reading the view every
    /// [`RECHECK`]); `Ok(false)` on timeout.
    fn wait_for(
        &self,
        mut done: impl FnMut(&AppliedState, &QuorumView) -> Result<bool, ControllerError>,
    ) -> Result<bool, ControllerError> {
        let deadline = self.clock.monotonic() + self.timeout;
        let mut state = self.applied.lock();
        loop {
            let view = self.view();
            if view.stopped {
                return Err(ControllerError::Storage(RaftError::Closed));
            }
            if let Some(fault) = &state.fault {
                return Err(ControllerError::Storage(RaftError::Quorum(fault.clone())));
            }
            if done(&state, &view)? {
                return Ok(true);
            }
            let now = self.clock.monotonic();
            if now >= deadline {
                return Ok(false);
            }
            let wait = (deadline - now).min(RECHECK);
            state = match self.applied.changed.wait_timeout(state, wait) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Appends one batch and waits until it is applied; the batch must be applied in the epoch
    /// it was appended in, else it was lost to a new leader.
    fn commit_batch(&self, records: &[MetadataRecord]) -> Result<(), ControllerError> {
        let view = self.leading()?;
        let encoded: Vec<Bytes> = records.iter().map(MetadataRecord::encode).collect();
        let (reply, rx) = oneshot::channel();
        let closed = || ControllerError::Storage(RaftError::Closed);
        self.driver
            .inputs
            .send(Input::Append {
                records: encoded,
                reply,
            })
            .map_err(|_| closed())?;
        let last = match rx.blocking_recv().map_err(|_| closed())? {
            Ok(last) => last,
            Err(shale_raft::kraft::KRaftError::NotLeader { leader, .. }) => {
                return Err(ControllerError::NotController { leader })
            }
            Err(e) => return Err(ControllerError::Storage(RaftError::Quorum(e.to_string()))),
        };
        let epoch = view.epoch;
        let applied = self.wait_for(|state, _| Ok(state.offset >= last))?;
        if !applied {
            return Err(ControllerError::Timeout(format!(
                "metadata records up to offset {last} not committed within {:?}",
                self.timeout
            )));
        }
        if self.applied.lock().epoch_of(last) != Some(epoch) {
            return Err(ControllerError::NotController {
                leader: self.view().leader,
            });
        }
        Ok(())
    }
}

impl MetadataQuorum for KRaftMetadataQuorum {
    /// Leader only, once an entry of its own epoch is applied; aborts a metadata transaction
    /// a previous leader left open and bootstraps a fresh cluster.
    fn check_active(&self) -> Result<(), ControllerError> {
        let view = self.leading()?;
        let caught_up = self.wait_for(|state, now| {
            if now.role != RoleKind::Leader || now.epoch != view.epoch {
                return Err(ControllerError::NotController { leader: now.leader });
            }
            Ok(state.epoch == view.epoch)
        })?;
        if !caught_up {
            return Err(ControllerError::NotController {
                leader: Some(self.node_id),
            });
        }
        if self.applied.lock().loader.in_transaction() {
            // As Kafka's controller does when it takes over mid-transaction.
            self.commit_batch(&[MetadataRecord::AbortTransaction {
                reason: Some("controller failover".into()),
            }])?;
        }
        if !self.bootstrap.is_empty() && self.applied.image().features.is_empty() {
            self.commit(self.bootstrap.clone())?;
        }
        Ok(())
    }

    fn commit(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        for chunk in atomic_chunks(records) {
            self.commit_batch(&chunk)?;
        }
        Ok(())
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.applied.image()
    }

    fn epoch(&self) -> i32 {
        self.view().epoch
    }

    fn log_end_offset(&self) -> i64 {
        self.view().log_end_offset
    }

    /// Refuses later writes; the quorum member itself is stopped by its owner.
    fn shutdown(&self) -> Result<(), RaftError> {
        self.stopped.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
#[path = "metadata_test.rs"]
mod tests;
