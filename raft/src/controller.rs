//! The metadata controller: the only writer of cluster metadata, with a synchronous API the
//! broker's admin handlers call (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
//! IncrementalAlterConfigs, AllocateProducerIds).
//!
//! Every call validates against the current image, turns the change into metadata records and
//! hands them to the [`QuorumEngine`]; the engine's commands are executed here (append to
//! `__cluster_metadata-0`, fsync, commit, apply), so when a call returns `Ok` its records are
//! durable and visible in [`Controller::image`]. One mutex serializes writers; readers only
//! clone an `Arc<MetadataImage>`.
//!
//! Start-up: newest valid snapshot, replay of the log tail, a new raft epoch (LeaderChange
//! batch), bootstrap features when the log is empty, then this broker's registration.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use shale_common::{Clock, Rng};
use shale_local_log::MetaProperties;
use uuid::Uuid;

use crate::batch::{
    control_batch, data_batch, leader_change_value, MetadataBatch, CONTROL_LEADER_CHANGE,
};
use crate::error::{ControllerError, RaftError};
use crate::format::{bootstrap_records, random_uuid_value};
use crate::image::{Endpoint, MetadataImage, MetadataLoader, REGISTER_BROKER_RECORD_VERSION};
use crate::metadata_log::{MetadataLog, MAX_BATCH_BYTES};
use crate::quorum::{BatchPayload, Command, Event, QuorumConfig, QuorumEngine};
use crate::records::{BrokerEndpoint, MetadataRecord, RegisterBrokerRecord};
use crate::snapshot::{self, SnapshotId};

/// How the controller is set up.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// The log dir holding `__cluster_metadata-0` (must be formatted: meta.properties).
    pub metadata_log_dir: PathBuf,
    pub node_id: i32,
    /// This broker's listeners, registered at start.
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// `num.partitions`.
    pub default_num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// Take a snapshot once this many records were committed since the last one (0 = never,
    /// except at shutdown).
    pub snapshot_every_records: u64,
}

/// Lower-level knobs of the metadata log (tests shrink them).
#[derive(Clone, Debug)]
pub struct MetadataLogTuning {
    /// `metadata.log.segment.bytes`.
    pub segment_bytes: i32,
}

impl Default for MetadataLogTuning {
    fn default() -> Self {
        MetadataLogTuning {
            segment_bytes: 1 << 30,
        }
    }
}

/// A topic to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTopicSpec {
    pub name: String,
    /// -1 = `default_num_partitions`.
    pub num_partitions: i32,
    /// -1 = `default_replication_factor`.
    pub replication_factor: i16,
    /// Manual assignment (partition, replicas); exclusive with the two counts above.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, String)>,
}

/// What a successful (or validated) creation produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedTopic {
    /// The nil UUID when only validating.
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// The topic's config overrides.
    pub configs: BTreeMap<String, String>,
}

/// The target of a config change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    /// `None` = the cluster-wide default (resource name "").
    Broker(Option<i32>),
}

/// The kind of an IncrementalAlterConfigs operation (Kafka's op codes 0-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigOpType {
    Set,
    Delete,
    /// Adds list items not yet present (list-typed configs only).
    Append,
    /// Removes list items (list-typed configs only).
    Subtract,
}

/// One IncrementalAlterConfigs operation; `value` is ignored for `Delete`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterConfigOp {
    pub name: String,
    pub op: ConfigOpType,
    pub value: Option<String>,
}

impl AlterConfigOp {
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            op: ConfigOpType::Set,
            value: Some(value.into()),
        }
    }

    pub fn delete(name: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            op: ConfigOpType::Delete,
            value: None,
        }
    }

    pub fn append(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp {
            op: ConfigOpType::Append,
            ..AlterConfigOp::set(name, value)
        }
    }

    pub fn subtract(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp {
            op: ConfigOpType::Subtract,
            ..AlterConfigOp::set(name, value)
        }
    }
}

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

/// A check of a topic's complete set of overrides before they are written, with the image they
/// apply to (`previous` is `None` at creation). The broker installs one to enforce rules that
/// depend on its defaults, as Kafka's LogConfig validation does on the merged config.
pub trait TopicConfigPolicy: Send + Sync + std::fmt::Debug {
    /// `Err` refuses the change.
    fn validate(
        &self,
        image: &MetadataImage,
        topic: &str,
        previous: Option<&BTreeMap<String, String>>,
        new: &BTreeMap<String, String>,
    ) -> Result<(), ControllerError>;
}

/// The metadata controller (single voter).
#[derive(Debug)]
pub struct Controller {
    policy: RwLock<Option<Arc<dyn TopicConfigPolicy>>>,
    opts: ControllerOptions,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    inner: Mutex<Inner>,
    image: RwLock<Arc<MetadataImage>>,
}

impl Controller {
    /// Loads snapshot + log, starts a new epoch and registers this broker.
    pub fn open(
        opts: ControllerOptions,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Result<Controller, RaftError> {
        Controller::open_with(opts, MetadataLogTuning::default(), clock, rng)
    }

    /// [`Controller::open`] with explicit log tuning.
    pub fn open_with(
        opts: ControllerOptions,
        tuning: MetadataLogTuning,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Result<Controller, RaftError> {
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
        let log = MetadataLog::open(dir, tuning.segment_bytes, clock.clone())?;
        snapshot::remove_partial_files(log.dir())?;
        let inner = load(log, &meta.cluster_id, opts.node_id)?;
        let controller = Controller {
            policy: RwLock::new(None),
            image: RwLock::new(inner.loader.image()),
            opts,
            clock,
            rng,
            inner: Mutex::new(inner),
        };
        controller.start()?;
        Ok(controller)
    }

    fn start(&self) -> Result<(), RaftError> {
        let mut inner = self.inner.lock();
        let fresh = inner.latest_snapshot.is_none() && inner.loader.image().last_offset < 0;
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
        let registration = RegisterBrokerRecord {
            version: REGISTER_BROKER_RECORD_VERSION,
            broker_id: self.opts.node_id,
            is_migrating_zk_broker: false,
            incarnation_id: random_uuid_value(&*self.rng),
            broker_epoch,
            end_points: self
                .opts
                .endpoints
                .iter()
                .map(|e| BrokerEndpoint {
                    name: e.name.clone(),
                    host: e.host.clone(),
                    port: e.port,
                    security_protocol: e.security_protocol,
                })
                .collect(),
            features: Vec::new(),
            rack: self.opts.rack.clone(),
            fenced: false,
            in_controlled_shutdown: false,
            log_dirs: Vec::new(),
        };
        self.append_locked(
            &mut inner,
            vec![MetadataRecord::RegisterBroker(registration)],
        )?;
        self.maybe_snapshot(&mut inner)
    }

    /// The newest committed image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.opts.node_id
    }

    /// The current raft epoch.
    pub fn epoch(&self) -> i32 {
        self.inner.lock().engine.epoch()
    }

    /// The metadata log's end offset.
    pub fn log_end_offset(&self) -> i64 {
        self.inner.lock().log.log_end_offset()
    }

    /// The newest snapshot on disk.
    pub fn latest_snapshot(&self) -> Option<SnapshotId> {
        self.inner.lock().latest_snapshot
    }

    /// Runs `f` under the writer lock with the current image; `f` returns the records to
    /// write (none = nothing to do) and the value to return.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), ControllerError>,
    ) -> Result<T, ControllerError> {
        let mut inner = self.inner.lock();
        if let Some(why) = &inner.stopped {
            return Err(ControllerError::Storage(RaftError::Quorum(why.clone())));
        }
        let image = inner.loader.image();
        let (records, out) = f(&image)?;
        if !records.is_empty() {
            self.append_locked(&mut inner, records)?;
            self.maybe_snapshot(&mut inner)?;
        }
        Ok(out)
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
        let limit = MAX_BATCH_BYTES as usize / 2;
        let sizes: Vec<usize> = records.iter().map(|r| r.encode().len() + 16).collect();
        let chunks: Vec<Vec<MetadataRecord>> = if sizes.iter().sum::<usize>() <= limit {
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
        };
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

    /// Forces a snapshot now (if anything changed since the last one).
    pub fn snapshot(&self) -> Result<(), RaftError> {
        let mut inner = self.inner.lock();
        self.snapshot_locked(&mut inner)
    }

    /// Clean shutdown: final snapshot when records were committed since the last one, flush,
    /// close the log. Later writes fail.
    pub fn shutdown(&self) -> Result<(), RaftError> {
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

    /// Installs the check every new or changed set of topic overrides must pass (the broker's,
    /// which knows its defaults: merged-config rules such as tiered storage's).
    pub fn set_topic_config_policy(&self, policy: Arc<dyn TopicConfigPolicy>) {
        *self.policy.write() = Some(policy);
    }

    /// Runs the installed policy, if any.
    pub(crate) fn check_policy(
        &self,
        image: &MetadataImage,
        topic: &str,
        previous: Option<&BTreeMap<String, String>>,
        new: &BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        match self.policy.read().clone() {
            Some(p) => p.validate(image, topic, previous, new),
            None => Ok(()),
        }
    }

    pub(crate) fn options(&self) -> &ControllerOptions {
        &self.opts
    }

    pub(crate) fn rng(&self) -> &dyn Rng {
        &*self.rng
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

#[cfg(test)]
#[path = "controller_test.rs"]
mod tests;
