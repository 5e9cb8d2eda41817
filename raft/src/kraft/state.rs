//! Per-role state of a node (KRaft 4.x roles): what each role remembers between events and the
//! timers it runs. Epoch, leader and vote live in the persisted
//! [`ElectionState`](super::types::ElectionState), not here.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{NodeId, SnapshotId};

/// The role without its data, for callers and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleKind {
    Unattached,
    Prospective,
    Candidate,
    Leader,
    Follower,
    Resigned,
}

/// A leader's view of one other replica (voter or observer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaProgress {
    /// Last fetch offset accepted in this epoch (-1: none yet). For voters it is durable.
    pub end_offset: i64,
    /// When it last fetched successfully in this epoch.
    pub last_fetch_ms: Option<u64>,
    /// It acknowledged BeginQuorumEpoch (or fetched), so no resend is needed.
    pub acknowledged: bool,
}

/// A fetch the leader holds until data arrives, the high watermark moves or it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedFetch {
    pub seq: u64,
    pub fetch_offset: i64,
    pub deadline_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    /// The LEO when elected: the offset of this epoch's LeaderChange entry.
    pub epoch_start_offset: i64,
    /// The high watermark reached in this epoch (none until a majority holds a current-epoch
    /// entry).
    pub high_watermark: Option<i64>,
    pub replicas: BTreeMap<NodeId, ReplicaProgress>,
    pub parked: BTreeMap<NodeId, ParkedFetch>,
    pub next_begin_resend_ms: u64,
    /// When this epoch's leadership started (the check-quorum clock for silent voters).
    pub since_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerState {
    pub leader: NodeId,
    /// No successful fetch by then: start a pre-vote (voters) or go looking (observers).
    pub fetch_deadline_ms: u64,
    /// A fetch succeeded since becoming follower (KIP-996: then pre-votes are refused).
    pub fetched: bool,
    /// The outstanding fetch: (seq, sent at).
    pub in_flight: Option<(u64, u64)>,
    /// Do not fetch before this time (retry backoff after an error).
    pub next_fetch_ms: u64,
    /// A snapshot being fetched chunk by chunk (FetchSnapshot replaces Fetch meanwhile).
    pub snapshot: Option<SnapshotFetch>,
}

/// The part of the leader's snapshot `id` received so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFetch {
    pub id: SnapshotId,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionRound {
    pub granted: BTreeSet<NodeId>,
    pub rejected: BTreeSet<NodeId>,
    pub deadline_ms: u64,
}

/// Where a node stands in the current epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// No leader known. Voters start a pre-vote at `deadline_ms`; observers probe a voter.
    Unattached {
        deadline_ms: u64,
    },
    /// Collecting non-binding pre-votes for epoch + 1.
    Prospective(ElectionRound),
    /// Collecting votes; after losing, waits until `backoff_until_ms` before a new pre-vote.
    Candidate {
        round: ElectionRound,
        backoff_until_ms: Option<u64>,
    },
    Leader(LeaderState),
    Follower(FollowerState),
    /// A leader that stepped down (or restarted) in this epoch; never leads or votes in it again.
    Resigned {
        deadline_ms: u64,
    },
}

impl Role {
    pub fn kind(&self) -> RoleKind {
        match self {
            Role::Unattached { .. } => RoleKind::Unattached,
            Role::Prospective(_) => RoleKind::Prospective,
            Role::Candidate { .. } => RoleKind::Candidate,
            Role::Leader(_) => RoleKind::Leader,
            Role::Follower(_) => RoleKind::Follower,
            Role::Resigned { .. } => RoleKind::Resigned,
        }
    }
}
