//! The vocabulary of the multi-voter core: log [`Entry`]s, the [`Message`]s voters and observers
//! exchange (plain enums standing in for Kafka's Vote, BeginQuorumEpoch, EndQuorumEpoch and Fetch
//! and FetchSnapshot RPCs), the [`Event`]s the runtime feeds in and the [`Command`]s it must
//! execute in order, and the KIP-630 [`SnapshotId`]/[`Snapshot`].

use bytes::Bytes;

pub use crate::quorum::{ElectionState, LeaderChange};

/// A node id (`node.id` of a controller or broker).
pub type NodeId = i32;

/// One voter of a Voters record: id, directory id, controller-listener endpoints.
pub use crate::batch::VoterEntry as Voter;

/// One record of the metadata log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The control record a leader writes at the start of its epoch.
    LeaderChange(LeaderChange),
    /// An opaque data record (a framed metadata record for the controller).
    Data(Bytes),
    /// The voter set from this entry on, committed or not (KIP-853's VotersRecord, written by
    /// a leader adding or removing a voter), with each voter's directory id and endpoints. A
    /// log without one keeps the static voter set.
    Voters(Vec<Voter>),
}

/// A record stamped with the epoch of the leader that appended it. Offsets are implicit: the
/// position in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub epoch: i32,
    pub record: Record,
}

/// A snapshot's identity (KIP-630 `OffsetAndEpoch`): it holds the state after every entry below
/// `end_offset` (exclusive), and `epoch` is the epoch of the entry at `end_offset - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId {
    pub end_offset: i64,
    pub epoch: i32,
}

/// A snapshot: its id and the state machine's contents, opaque to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub data: Bytes,
}

/// Vote (api 52); `pre_vote` marks a KIP-996 non-binding pre-vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteRequest {
    /// The epoch the candidate asks votes for (a prospective asks for its epoch + 1).
    pub epoch: i32,
    pub candidate: NodeId,
    /// Epoch of the candidate's last entry and its log end offset.
    pub last_epoch: i32,
    pub end_offset: i64,
    pub pre_vote: bool,
}

/// The answer to a [`VoteRequest`]; `epoch` and `leader` are the responder's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteResponse {
    pub epoch: i32,
    pub leader: Option<NodeId>,
    pub granted: bool,
    pub pre_vote: bool,
}

/// Fetch (api 1) on `__cluster_metadata-0`: pull-based replication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    /// Matches the response to the request (a stale or duplicated response is ignored).
    pub seq: u64,
    /// The epoch the fetcher believes current (`CurrentLeaderEpoch`).
    pub epoch: i32,
    pub replica: NodeId,
    /// The fetcher's log end offset; for a voter everything below it is durable.
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
    /// The fetcher's high watermark (KIP-1166, Fetch v18): a leader whose high watermark is
    /// above it answers at once instead of parking an empty fetch, so followers learn of a
    /// commit without waiting out the fetch wait. [`UNKNOWN_HIGH_WATERMARK`] from fetchers that
    /// do not send it (Kafka's default for versions below 18): they are parked as before.
    pub high_watermark: i64,
}

/// A fetcher's high watermark when it sent none (Kafka's `Long.MAX_VALUE` default).
pub const UNKNOWN_HIGH_WATERMARK: i64 = i64::MAX;

/// Why a fetch was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// The fetcher's epoch is older than ours (FENCED_LEADER_EPOCH, 74).
    FencedLeaderEpoch,
    /// The fetcher's epoch is newer than ours (UNKNOWN_LEADER_EPOCH, 75).
    UnknownLeaderEpoch,
    /// We are not the leader of that epoch (NOT_LEADER_OR_FOLLOWER, 6).
    NotLeader,
    /// The leader is resigning (BROKER_NOT_AVAILABLE, 8).
    ShuttingDown,
    /// Malformed fetch (INVALID_REQUEST, 42).
    InvalidRequest,
    /// FetchSnapshot for a snapshot the leader no longer has (SNAPSHOT_NOT_FOUND, 98).
    SnapshotNotFound,
    /// FetchSnapshot position outside the snapshot (POSITION_OUT_OF_RANGE, 99).
    PositionOutOfRange,
}

/// The body of a [`FetchResponse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchResult {
    /// Entries starting at `base_offset` (possibly none) and the leader's high watermark, if it
    /// has one in this epoch.
    Records {
        base_offset: i64,
        entries: Vec<Entry>,
        high_watermark: Option<i64>,
    },
    /// The fetcher's log diverges: truncate to at most `end_offset`, the end of `epoch` (the
    /// largest epoch not above the fetcher's last fetched epoch) on the leader.
    Diverging {
        epoch: i32,
        end_offset: i64,
    },
    /// The fetch offset is below the leader's log start (or the fetcher's last epoch predates
    /// it): fetch this snapshot with FetchSnapshot (Kafka's `SnapshotId` response field).
    Snapshot {
        id: SnapshotId,
    },
    Error(FetchError),
}

/// FetchSnapshot (api 59): one position-based chunk of the leader's snapshot `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchSnapshotRequest {
    pub seq: u64,
    pub epoch: i32,
    pub replica: NodeId,
    pub id: SnapshotId,
    /// Byte position of the chunk wanted (what the fetcher already holds).
    pub position: u64,
}

/// The body of a [`FetchSnapshotResponse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchSnapshotResult {
    /// `data` starts at `position` of snapshot `id`, whose total size is `size` bytes.
    Chunk {
        id: SnapshotId,
        size: u64,
        position: u64,
        data: Bytes,
    },
    Error(FetchError),
}

/// The answer to a [`FetchSnapshotRequest`]; `epoch` and `leader` are the responder's view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchSnapshotResponse {
    pub seq: u64,
    pub epoch: i32,
    pub leader: Option<NodeId>,
    pub result: FetchSnapshotResult,
}

/// The answer to a [`FetchRequest`]; `epoch` and `leader` are the responder's view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchResponse {
    pub seq: u64,
    pub epoch: i32,
    pub leader: Option<NodeId>,
    pub result: FetchResult,
}

/// Everything nodes send each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Vote(VoteRequest),
    VoteResponse(VoteResponse),
    /// A new leader announces itself (api 53); resent until acknowledged.
    BeginQuorumEpoch {
        epoch: i32,
        leader: NodeId,
    },
    /// The responder's epoch and leader; a higher epoch makes a stale leader step down.
    BeginQuorumEpochResponse {
        epoch: i32,
        leader: Option<NodeId>,
    },
    /// A resigning leader (api 54); `preferred_successors` ordered by fetch offset, highest first.
    EndQuorumEpoch {
        epoch: i32,
        leader: NodeId,
        preferred_successors: Vec<NodeId>,
    },
    Fetch(FetchRequest),
    FetchResponse(FetchResponse),
    FetchSnapshot(FetchSnapshotRequest),
    FetchSnapshotResponse(FetchSnapshotResponse),
}

/// Inputs to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Virtual or wall time moved to `now_ms` (the core never reads a clock).
    Tick { now_ms: u64 },
    /// A message arrived.
    Message { from: NodeId, msg: Message },
    /// Append these records as one batch (leader only).
    AppendRequested { records: Vec<Bytes> },
    /// The log is durable below `up_to`.
    Flushed { up_to: i64 },
    /// Graceful shutdown: a leader resigns and names its successors.
    Shutdown,
    /// Add or remove one voter (leader only, KIP-853): appends the new voter set.
    ChangeVoters(super::reconfig::VoterChange),
    /// The state machine's contents after applying every entry below `end_offset` (which must
    /// be above the current snapshot, at most the high watermark and already applied): make
    /// it a snapshot and drop the log prefix it covers.
    CreateSnapshot { end_offset: i64, data: Bytes },
}

/// Outputs of the core, executed by the runtime in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Send {
        to: NodeId,
        msg: Message,
    },
    /// Persist `quorum-state` (tmp + fsync + rename) before executing anything after it.
    WriteQuorumState(ElectionState),
    /// Append `entries` at `base_offset`, which is the log's end offset.
    AppendBatch {
        base_offset: i64,
        entries: Vec<Entry>,
    },
    /// Remove every entry at or above `to`.
    Truncate {
        to: i64,
    },
    /// fsync the log, then report [`Event::Flushed`] with the durable end offset.
    Flush,
    /// Offsets below `high_watermark` are committed.
    Commit {
        high_watermark: i64,
    },
    /// Committed entries, in order, for the state machine. The first `Apply` after a
    /// [`Command::LoadSnapshot`] starts at that snapshot's end offset.
    Apply {
        base_offset: i64,
        entries: Vec<Entry>,
    },
    /// Persist this snapshot (tmp + fsync + rename) before executing anything after it; it
    /// replaces any older one.
    WriteSnapshot(Snapshot),
    /// Remove every entry below `to` (a durable snapshot covers them): the log starts at `to`.
    DeleteLogPrefix {
        to: i64,
    },
    /// Discard the whole log; it restarts empty at `start_offset` (after installing a
    /// snapshot that ends there).
    ResetLog {
        start_offset: i64,
    },
    /// Replace the state machine with this (committed) snapshot's contents.
    LoadSnapshot(Snapshot),
}

/// Errors the core reports instead of acting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KRaftError {
    #[error("node is not the leader (epoch {epoch}, leader {leader:?})")]
    NotLeader { epoch: i32, leader: Option<NodeId> },
    /// A leader asked us to truncate committed entries: fatal, as in Kafka.
    #[error("asked to truncate to {to}, below the high watermark {high_watermark}")]
    TruncateBelowHighWatermark { to: i64, high_watermark: i64 },
    /// A voter change while the previous one is uncommitted, or before the leader's first
    /// commit in its epoch (Kafka: REQUEST_TIMED_OUT).
    #[error("a voter change is pending or the leader has not committed in its epoch yet")]
    VoterChangePending,
    #[error("node {0} is already a voter")]
    DuplicateVoter(NodeId),
    #[error("node {0} is not a voter")]
    VoterNotFound(NodeId),
    #[error("node {0} is not fetching or not caught up to the high watermark")]
    VoterNotCaughtUp(NodeId),
    #[error("node {0} is the last voter")]
    LastVoter(NodeId),
    /// A snapshot may only end above the current one and at most at the applied high watermark.
    #[error("cannot snapshot at {end_offset}: log start {log_start}, applied/high watermark {high_watermark}")]
    InvalidSnapshot {
        end_offset: i64,
        log_start: i64,
        high_watermark: i64,
    },
}
