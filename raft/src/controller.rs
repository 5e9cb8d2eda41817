//! The metadata controller: the only writer of cluster metadata, with a synchronous API the
//! broker's admin handlers call (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
//! IncrementalAlterConfigs, AllocateProducerIds).
//!
//! Every call validates against the current image (see [`crate::controller_ops`]), turns the
//! change into metadata records and hands them to a [`MetadataQuorum`], which returns once
//! they are committed and visible in [`Controller::image`]. [`Controller::open`] uses the
//! single-voter [`LocalQuorum`] (append, fsync, commit, apply on the caller's thread);
//! [`Controller::with_quorum`] takes any other backend (the broker's multi-voter KRaft one).
//! One mutex serializes writers; readers only clone an `Arc<MetadataImage>`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use shale_common::{Clock, Rng};
use uuid::Uuid;

use crate::controller_brokers::{Sessions, DEFAULT_BROKER_SESSION_TIMEOUT_MS};
use crate::error::{ControllerError, RaftError};
use crate::image::{Endpoint, MetadataImage};
pub use crate::local_quorum::{atomic_chunks, LocalQuorum};
use crate::records::MetadataRecord;
use crate::snapshot::SnapshotId;

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

/// How the controller's records are committed: the single-voter local log
/// ([`LocalQuorum`]) or a multi-voter KRaft quorum (the broker's network backend). The
/// controller validates and generates records; the quorum makes them durable and visible.
pub trait MetadataQuorum: Send + Sync + std::fmt::Debug {
    /// Whether this node may write now: `Err(NotController)` when it is not the active
    /// controller (or has not yet caught up with its own epoch), a storage error once stopped.
    /// Checked before a change is validated, as Kafka's controller refuses before it looks.
    fn check_active(&self) -> Result<(), ControllerError>;
    /// Appends `records` atomically (one batch, or a Begin/EndTransaction spanning several)
    /// and returns once they are committed and applied to the image [`Self::image`] returns.
    fn commit(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError>;
    /// The newest committed image.
    fn image(&self) -> Arc<MetadataImage>;
    /// The current raft epoch.
    fn epoch(&self) -> i32;
    /// The metadata log's end offset.
    fn log_end_offset(&self) -> i64;
    /// The newest snapshot on disk, if this backend takes snapshots.
    fn latest_snapshot(&self) -> Option<SnapshotId> {
        None
    }
    /// Forces a snapshot now, if this backend takes snapshots.
    fn snapshot(&self) -> Result<(), RaftError> {
        Ok(())
    }
    /// Stops accepting writes and makes what was committed durable.
    fn shutdown(&self) -> Result<(), RaftError>;
}

/// The metadata controller: validation and record generation over a [`MetadataQuorum`].
#[derive(Debug)]
pub struct Controller {
    policy: RwLock<Option<Arc<dyn TopicConfigPolicy>>>,
    opts: ControllerOptions,
    rng: Arc<dyn Rng>,
    quorum: Arc<dyn MetadataQuorum>,
    /// Serializes writers: validation sees the image every earlier write produced.
    writer: Mutex<()>,
    /// The active controller's broker sessions (taken after `writer` when both are held).
    pub(crate) sessions: Mutex<Sessions>,
}

impl Controller {
    /// Loads snapshot + log, starts a new epoch and registers this broker (single voter).
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
        let quorum = LocalQuorum::open(opts.clone(), tuning, clock, rng.clone())?;
        Ok(Controller::with_quorum(opts, Arc::new(quorum), rng))
    }

    /// A controller committing through `quorum` (which has done its own start-up). Only the
    /// placement defaults and `node_id` of `opts` are used.
    pub fn with_quorum(
        opts: ControllerOptions,
        quorum: Arc<dyn MetadataQuorum>,
        rng: Arc<dyn Rng>,
    ) -> Controller {
        Controller {
            policy: RwLock::new(None),
            opts,
            rng,
            quorum,
            writer: Mutex::new(()),
            sessions: Mutex::new(Sessions::new(DEFAULT_BROKER_SESSION_TIMEOUT_MS)),
        }
    }

    /// The newest committed image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.opts.node_id
    }

    /// The current raft epoch.
    pub fn epoch(&self) -> i32 {
        self.quorum.epoch()
    }

    /// The metadata log's end offset.
    pub fn log_end_offset(&self) -> i64 {
        self.quorum.log_end_offset()
    }

    /// The newest snapshot on disk.
    pub fn latest_snapshot(&self) -> Option<SnapshotId> {
        self.quorum.latest_snapshot()
    }

    /// Whether this node is the active controller and may write now.
    pub fn check_active(&self) -> Result<(), ControllerError> {
        self.quorum.check_active()
    }

    /// Runs `f` under the writer lock with the current image; `f` returns the records to
    /// write (none = nothing to do) and the value to return.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), ControllerError>,
    ) -> Result<T, ControllerError> {
        let _writer = self.writer.lock();
        self.quorum.check_active()?;
        let image = self.quorum.image();
        let (records, out) = f(&image)?;
        if !records.is_empty() {
            self.quorum.commit(records)?;
        }
        Ok(out)
    }

    /// Forces a snapshot now (if anything changed since the last one).
    pub fn snapshot(&self) -> Result<(), RaftError> {
        self.quorum.snapshot()
    }

    /// Clean shutdown: final snapshot when records were committed since the last one, flush,
    /// close the log. Later writes fail.
    pub fn shutdown(&self) -> Result<(), RaftError> {
        self.quorum.shutdown()
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

#[cfg(test)]
#[path = "controller_test.rs"]
mod tests;
