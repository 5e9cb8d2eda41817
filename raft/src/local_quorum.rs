//! The single-voter metadata quorum behind [`Controller::open`](crate::Controller::open): the
//! [`QuorumEngine`] with a local [`MetadataLog`], driven synchronously. Committing a change
//! appends to `__cluster_metadata-0`, fsyncs, commits and applies it to the [`MetadataLoader`]
//! before returning; snapshots are taken here too.
//!
//! Start-up: newest valid snapshot, replay of the log tail, a new raft epoch (LeaderChange
//! batch), bootstrap features when the log is empty, then this broker's registration.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use shale_common::{Clock, Rng};
use shale_local_log::MetaProperties;

use crate::batch::{
    control_batch, data_batch, leader_change_value, MetadataBatch, CONTROL_LEADER_CHANGE,
};
use crate::controller::{ControllerOptions, MetadataLogTuning, MetadataQuorum};
use crate::error::{ControllerError, RaftError};
use crate::format::{bootstrap_records, random_uuid_value};
use crate::image::{register_broker_record, MetadataImage, MetadataLoader};
use crate::metadata_log::{MetadataLog, MAX_BATCH_BYTES};
use crate::quorum::{BatchPayload, Command, Event, QuorumConfig, QuorumEngine};
use crate::records::MetadataRecord;
use crate::snapshot::{self, SnapshotId};

#[derive(Debug)]
struct Inner {
    log: MetadataLog,
    engine: QuorumEngine,
    loader: MetadataLoader,
    /// Records committed since the newest snapshot.
    records_since_snapshot: u64,
    latest_snapshot: Option<SnapshotId>,
    /// Timestamp of the last data batch applied.
    last_batch_timestamp: i64,
    /// Epoch of the last batch found at load (or of the snapshot).
    log_end_epoch: i32,
    /// Set after shutdown or a failed write; every later write fails with it.
    stopped: Option<String>,
}

/// The single-voter quorum over the local metadata log.
#[derive(Debug)]
pub struct LocalQuorum {
    opts: ControllerOptions,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    inner: Mutex<Inner>,
    image: RwLock<Arc<MetadataImage>>,
}

impl LocalQuorum {
    /// Loads snapshot + log, starts a new epoch and registers this broker.
    pub fn open(
        opts: ControllerOptions,
        tuning: MetadataLogTuning,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Result<LocalQuorum, RaftError> {
        let dir = &opts.metadata_log_dir;
        let meta = MetaProperties::read(dir)?.ok_or_else(|| {
            RaftError::InvalidArgument(format!(
                "{} is not formatted (no meta.properties); run `shale format` first",
                dir.display()
            ))
        })?;
        if meta.node_id != opts.node_id {
            return Err(RaftError::MetaPropertiesMismatch {
                path: dir.clone(),
                key: "node.id",
                expected: opts.node_id.to_string(),
                found: meta.node_id.to_string(),
            });
        }
        if let Some(voters) = crate::format::bootstrap_voters(dir)? {
            if voters != [opts.node_id] {
                return Err(RaftError::InvalidArgument(format!(
                    "{} was formatted with the initial controllers {voters:?}, but \
                     controller.quorum.bootstrap.servers names no other controller",
                    dir.display()
                )));
            }
        }
        let log = MetadataLog::open(dir, tuning.segment_bytes, clock.clone())?;
        snapshot::remove_partial_files(log.dir())?;
        let inner = load(log, &meta.cluster_id, opts.node_id)?;
        let quorum = LocalQuorum {
            image: RwLock::new(inner.loader.image()),
            opts,
            clock,
            rng,
            inner: Mutex::new(inner),
        };
        quorum.start()?;
        Ok(quorum)
    }

    fn start(&self) -> Result<(), RaftError> {
        let mut inner = self.inner.lock();
        // Nothing applied yet (a dynamic quorum's bootstrap snapshot ends at 0 and holds no
        // records): a fresh cluster.
        let fresh = inner.loader.image().last_offset < 0;
        let stored = inner.log.read_quorum_state()?;
        let log_end_offset = inner.log.log_end_offset();
        let log_end_epoch = inner.log_end_epoch;
        let cmds = inner.engine.handle(Event::Start {
            stored,
            log_end_offset,
            log_end_epoch,
        })?;
        self.run(&mut inner, cmds)?;
        if !inner.engine.is_leader() {
            return Err(RaftError::Quorum("did not become leader".into()));
        }
        if inner.loader.in_transaction() {
            // A transaction the previous leader never finished: abort it, as Kafka does.
            let abort = MetadataRecord::AbortTransaction {
                reason: Some("controller failover".into()),
            };
            self.append_locked(&mut inner, vec![abort])?;
        }
        if fresh {
            let records = bootstrap_records(&self.opts.metadata_log_dir)?;
            self.append_locked(&mut inner, records)?;
        }
        let broker_epoch = inner.engine.log_end_offset();
        // The single node registers itself unfenced: it is its own controller.
        let registration = register_broker_record(
            self.opts.node_id,
            random_uuid_value(&*self.rng),
            broker_epoch,
            &self.opts.endpoints,
            self.opts.rack.clone(),
            false,
        );
        self.append_locked(
            &mut inner,
            vec![MetadataRecord::RegisterBroker(registration)],
        )?;
        self.maybe_snapshot(&mut inner)
    }

    /// Appends `records` atomically: one batch, or a Begin/End transaction spanning several
    /// batches when they exceed the batch size limit.
    fn append_locked(
        &self,
        inner: &mut Inner,
        records: Vec<MetadataRecord>,
    ) -> Result<(), RaftError> {
        // A child of the caller's span (the request that changed metadata), exported when
        // OpenTelemetry tracing is on; covers the append, the fsync and the apply.
        let _span = tracing::info_span!(
            target: shale_common::TRACE_TARGET,
            "metadata.write",
            kafka.record_count = records.len() as i64,
            kafka.base_offset = inner.engine.log_end_offset(),
        )
        .entered();
        let chunks = atomic_chunks(records);
        for chunk in chunks {
            let cmds = inner
                .engine
                .handle(Event::AppendRequested { records: chunk })?;
            if let Err(e) = self.run(inner, cmds) {
                inner.stopped = Some(format!("metadata log write failed earlier: {e}"));
                return Err(e);
            }
        }
        Ok(())
    }

    /// Executes engine commands until none are left.
    fn run(&self, inner: &mut Inner, cmds: Vec<Command>) -> Result<(), RaftError> {
        let mut queue: VecDeque<Command> = cmds.into();
        while let Some(cmd) = queue.pop_front() {
            match cmd {
                Command::WriteQuorumState(state) => inner.log.write_quorum_state(&state)?,
                Command::AppendBatch {
                    epoch,
                    base_offset,
                    payload,
                } => {
                    let now = self.clock.now_ms();
                    let batch = match &payload {
                        BatchPayload::LeaderChange(change) => control_batch(
                            base_offset,
                            epoch,
                            now,
                            CONTROL_LEADER_CHANGE,
                            leader_change_value(change)?,
                        )?,
                        BatchPayload::Records(records) => {
                            data_batch(base_offset, epoch, now, records)?
                        }
                    };
                    inner.log.append(batch)?;
                    inner.last_batch_timestamp = now;
                }
                Command::Flush => {
                    let up_to = inner.log.flush()?;
                    queue.extend(inner.engine.handle(Event::Flushed { up_to })?);
                }
                Command::Commit { .. } => {}
                Command::Apply {
                    epoch,
                    last_offset,
                    records,
                    ..
                } => {
                    inner.loader.apply_batch(last_offset, epoch, &records);
                    inner.records_since_snapshot += records.len() as u64;
                    *self.image.write() = inner.loader.image();
                }
            }
        }
        Ok(())
    }

    fn maybe_snapshot(&self, inner: &mut Inner) -> Result<(), RaftError> {
        let every = self.opts.snapshot_every_records;
        if every > 0 && inner.records_since_snapshot >= every {
            self.snapshot_locked(inner)?;
        }
        Ok(())
    }

    /// Writes a snapshot of the current image, drops older snapshots and the log segments
    /// wholly below it.
    fn snapshot_locked(&self, inner: &mut Inner) -> Result<(), RaftError> {
        let image = inner.loader.image();
        if inner.loader.in_transaction() || image.last_offset < 0 {
            return Ok(());
        }
        let id = SnapshotId {
            end_offset: image.last_offset + 1,
            epoch: image.epoch,
        };
        if inner.latest_snapshot == Some(id) {
            return Ok(());
        }
        snapshot::write_snapshot(
            inner.log.dir(),
            id,
            inner.last_batch_timestamp,
            self.clock.now_ms(),
            &image.to_records(),
            self.rng.next_u64(),
        )?;
        inner.latest_snapshot = Some(id);
        inner.records_since_snapshot = 0;
        snapshot::delete_snapshots_before(inner.log.dir(), id)?;
        inner.log.delete_before(id.end_offset)?;
        tracing::info!(
            end_offset = id.end_offset,
            epoch = id.epoch,
            "metadata snapshot written"
        );
        Ok(())
    }
}

impl MetadataQuorum for LocalQuorum {
    /// Fails once the quorum was shut down or a write failed.
    fn check_active(&self) -> Result<(), ControllerError> {
        match &self.inner.lock().stopped {
            Some(why) => Err(ControllerError::Storage(RaftError::Quorum(why.clone()))),
            None => Ok(()),
        }
    }

    fn commit(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        let mut inner = self.inner.lock();
        if let Some(why) = &inner.stopped {
            return Err(ControllerError::Storage(RaftError::Quorum(why.clone())));
        }
        self.append_locked(&mut inner, records)?;
        self.maybe_snapshot(&mut inner)?;
        Ok(())
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    fn epoch(&self) -> i32 {
        self.inner.lock().engine.epoch()
    }

    fn log_end_offset(&self) -> i64 {
        self.inner.lock().log.log_end_offset()
    }

    fn latest_snapshot(&self) -> Option<SnapshotId> {
        self.inner.lock().latest_snapshot
    }

    /// Forces a snapshot now (if anything changed since the last one).
    fn snapshot(&self) -> Result<(), RaftError> {
        let mut inner = self.inner.lock();
        self.snapshot_locked(&mut inner)
    }

    /// Clean shutdown: final snapshot when records were committed since the last one, flush,
    /// close the log. Later writes fail.
    fn shutdown(&self) -> Result<(), RaftError> {
        let mut inner = self.inner.lock();
        if inner.stopped.is_some() {
            return Ok(());
        }
        if inner.records_since_snapshot > 0 {
            self.snapshot_locked(&mut inner)?;
        }
        inner.log.flush()?;
        inner.log.close()?;
        inner.stopped = Some("the metadata controller is shut down".into());
        Ok(())
    }
}

/// Splits one atomic change into the batches that carry it: one batch when it fits in half the
/// batch size limit, else a BeginTransaction .. EndTransaction run over several batches (the
/// loader publishes nothing until the end marker). Shared by every [`MetadataQuorum`] backend.
pub fn atomic_chunks(records: Vec<MetadataRecord>) -> Vec<Vec<MetadataRecord>> {
    let limit = MAX_BATCH_BYTES as usize / 2;
    let sizes: Vec<usize> = records.iter().map(|r| r.encode().len() + 16).collect();
    if sizes.iter().sum::<usize>() <= limit {
        vec![records]
    } else {
        let mut chunks = vec![vec![MetadataRecord::BeginTransaction { name: None }]];
        let mut size = 0;
        for (r, s) in records.into_iter().zip(sizes) {
            if size + s > limit {
                chunks.push(Vec::new());
                size = 0;
            }
            size += s;
            if let Some(c) = chunks.last_mut() {
                c.push(r);
            }
        }
        if let Some(c) = chunks.last_mut() {
            c.push(MetadataRecord::EndTransaction);
        }
        chunks
    }
}

/// Newest valid snapshot, then the log tail.
fn load(log: MetadataLog, cluster_id: &str, node_id: i32) -> Result<Inner, RaftError> {
    let mut loader = MetadataLoader::new(MetadataImage::empty(cluster_id));
    let mut latest_snapshot = None;
    for id in snapshot::list_snapshots(log.dir())?.into_iter().rev() {
        let path = log.dir().join(id.file_name());
        match snapshot::read_batch_file(&path) {
            Ok(content) if id.end_offset <= log.log_end_offset() => {
                let mut image = MetadataImage::empty(cluster_id).apply(&content.records);
                image.last_offset = id.end_offset - 1;
                image.epoch = id.epoch;
                loader = MetadataLoader::new(image);
                latest_snapshot = Some(id);
                break;
            }
            Ok(_) => tracing::warn!(path = %path.display(), "snapshot beyond the log end, skipped"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable snapshot, skipped")
            }
        }
    }
    let from = latest_snapshot.map_or(0, |s| s.end_offset);
    if from < log.log_start_offset() {
        return Err(RaftError::Corrupt {
            path: log.dir().to_path_buf(),
            reason: format!(
                "log starts at {} but no snapshot covers the offsets below it",
                log.log_start_offset()
            ),
        });
    }
    let mut replayed = 0u64;
    let mut last_ts = -1;
    let mut log_end_epoch = latest_snapshot.map_or(0, |s| s.epoch);
    log.read_from(from, |batch| {
        log_end_epoch = log_end_epoch.max(batch.epoch());
        if let MetadataBatch::Data {
            last_offset,
            epoch,
            timestamp,
            records,
            ..
        } = batch
        {
            replayed += records.len() as u64;
            last_ts = timestamp;
            loader.apply_batch(last_offset, epoch, &records);
        }
        Ok(())
    })?;
    let engine = QuorumEngine::new(QuorumConfig {
        node_id,
        voters: vec![node_id],
    });
    Ok(Inner {
        log,
        engine,
        loader,
        records_since_snapshot: replayed,
        latest_snapshot,
        last_batch_timestamp: last_ts,
        log_end_epoch,
        stopped: None,
    })
}
