//! The multi-voter KRaft consensus core (Kafka 4.x semantics), sans IO: a [`KRaft`] node
//! consumes [`Event`]s (`Tick` with injected time, `Message`, `AppendRequested`, `Flushed`,
//! `Shutdown`, `CreateSnapshot`, `ChangeVoters`) and returns [`Command`]s (`Send`, `WriteQuorumState`,
//! `AppendBatch`, `Truncate`, `Flush`, `Commit`, `Apply`, and for KIP-630 snapshots
//! `WriteSnapshot`, `DeleteLogPrefix`, `ResetLog`, `LoadSnapshot`) that the runtime executes in
//! order. Randomness
//! (election timeouts, backoff) comes from an injected [`shale_common::Rng`].
//!
//! ```text
//!   Unattached ──election timeout──► Prospective ──pre-vote majority──► Candidate(e+1)
//!       ▲  ▲                          │  ▲                               │    │
//!       │  └──── pre-vote lost ───────┘  └──── backoff after loss ───────┘    │ vote majority
//!       │                                                                     ▼
//!   Follower ◄── BeginQuorumEpoch / fetch response / vote response ──   Leader(e+1)
//!       └──fetch timeout──► Prospective            Resigned ◄── shutdown / check-quorum
//! ```
//!
//! Roles: Unattached, Prospective (KIP-996 pre-vote), Candidate, Leader, Follower, Resigned;
//! observers (nodes outside the voter set) only move between Unattached and Follower.
//! Modules: [`types`] (messages, events, commands), [`log`] (the in-memory log view),
//! [`state`] (per-role data), `core` (the node, shared transitions), `election` (timers, votes,
//! Begin/EndQuorumEpoch), `leader` (fetch serving, high watermark, check-quorum, resign),
//! `follower` (fetching, truncation), `snapshot` (creating, serving, fetching and installing
//! snapshots), `reconfig` (KIP-853 voter changes: one voter added or removed at a time through
//! a Voters entry, in force as soon as it is in the log; [`log`] tracks the set), [`codec`] (entries as Kafka v2 record batches, on disk and in Fetch), [`store`]
//! (executes the storage commands on `__cluster_metadata-0` and recovers the core's inputs at
//! start-up). This core lives beside the single-voter
//! [`crate::quorum::QuorumEngine`] the controller still drives; nothing is wired to a network
//! yet. The seeded simulation in `raft/tests/kraft_sim.rs` checks it.

pub mod codec;
mod core;
mod election;
mod follower;
mod leader;
pub mod log;
mod reconfig;
mod snapshot;
pub mod state;
pub mod store;
pub mod types;

pub use self::core::{KRaft, KRaftConfig};
pub use log::LogView;
pub use reconfig::VoterChange;
pub use state::{ReplicaProgress, RoleKind};
pub use store::{KRaftStore, Recovered};
pub use types::{
    Command, ElectionState, Entry, Event, FetchError, FetchRequest, FetchResponse, FetchResult,
    FetchSnapshotRequest, FetchSnapshotResponse, FetchSnapshotResult, KRaftError, LeaderChange,
    Message, NodeId, Record, Snapshot, SnapshotId, VoteRequest, VoteResponse, Voter,
    UNKNOWN_HIGH_WATERMARK,
};

#[cfg(test)]
#[path = "core_test.rs"]
mod tests;

#[cfg(test)]
#[path = "snapshot_test.rs"]
mod snapshot_tests;

#[cfg(test)]
#[path = "store_test.rs"]
mod store_tests;

#[cfg(test)]
#[path = "reconfig_test.rs"]
mod reconfig_tests;
