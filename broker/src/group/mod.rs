//! The classic group coordinator: group state machine, members, protocol selection, timers,
//! committed offsets and their persistence in `__consumer_offsets`.
//!
//! * [`Groups`] is the deterministic core: every operation takes `now` (ms) and either answers
//!   at once or returns a [`Reply::Later`] receiver that a later event or [`Groups::tick`]
//!   completes. It does no I/O: a change to persisted state is queued as a [`Pending`] (records
//!   plus the change) and applied by [`Groups::apply`] once the records are written
//!   ([`pending`]).
//! * [`GroupCoordinator`] wraps it for the broker: a lock, the write lock that makes an operation,
//!   its append and its apply one step, the load state, and [`store`] which appends the queued
//!   records to `__consumer_offsets` and rebuilds the state at start-up.
//! * [`records`] holds Kafka's key/value layouts; [`membership`] the rebalance protocol;
//!   [`offsets`] commits, fetches, deletions and expiry.

pub mod membership;
pub mod model;
pub mod offsets;
pub mod pending;
pub mod records;
pub mod store;
pub mod txn_offsets;

pub use membership::{JoinParams, LeavingMember};
pub use model::{GroupState, JoinMember, JoinResult, Reply, SyncResult};
pub use offsets::{CommitEntry, Committer};
pub use pending::{Change, Pending};

use bytes::Bytes;
use model::{Group, Member};
use parking_lot::Mutex;
use records::{Decoded, OffsetValue};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The name of the offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The coordinator's configuration (`group.*`, `offsets.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions`.
    pub offsets_partitions: i32,
    /// `offsets.topic.replication.factor` (one on a single node).
    pub offsets_replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub offsets_segment_bytes: i64,
    /// `offsets.commit.timeout.ms`: how long a write waits for the ISR.
    pub commit_timeout_ms: i64,
    /// `offsets.retention.minutes` in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i64,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i64,
    /// `group.max.size`.
    pub max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            offsets_partitions: 50,
            offsets_replication_factor: 3,
            offsets_segment_bytes: 104_857_600,
            commit_timeout_ms: 5000,
            offsets_retention_ms: 10_080 * 60_000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
        }
    }
}

/// A record to append to a `__consumer_offsets` partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Partition of `__consumer_offsets`.
    pub partition: i32,
    /// Record key.
    pub key: Bytes,
    /// Record value (`None` = tombstone).
    pub value: Option<Bytes>,
}

impl Write {
    /// An offset commit (or its tombstone).
    pub fn offset(
        partition: i32,
        group: &str,
        topic: &str,
        p: i32,
        v: Option<&OffsetValue>,
    ) -> Self {
        Write {
            partition,
            key: records::offset_key(group, topic, p),
            value: v.map(records::offset_value),
        }
    }

    /// Group metadata (or its tombstone).
    pub fn group(partition: i32, group: &str, v: Option<&records::GroupValue>) -> Self {
        Write {
            partition,
            key: records::group_key(group),
            value: v.map(records::group_value),
        }
    }
}

/// A group as ListGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("" for simple groups).
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
}

/// A member as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata of the selected protocol (Stable only).
    pub metadata: Bytes,
    /// Assignment (Stable only).
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it; `None` from [`Groups::describe`] = unknown group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedGroup {
    /// State.
    pub state: GroupState,
    /// Protocol type.
    pub protocol_type: String,
    /// Selected protocol (Stable only).
    pub protocol: String,
    /// Members.
    pub members: Vec<DescribedMember>,
}

/// The deterministic coordinator core.
#[derive(Debug)]
pub struct Groups {
    config: GroupConfig,
    partitions: i32,
    /// The `__consumer_offsets` partitions whose groups this broker coordinates: it leads them
    /// and their state is loaded. A group of any other partition is not coordinated here.
    owned: BTreeSet<i32>,
    groups: BTreeMap<String, Group>,
    pending: Vec<Pending>,
    id_nonce: u64,
    id_counter: u64,
    next_expiry_check: i64,
    /// Transactional offsets not yet committed, by (`__consumer_offsets` partition, producer id).
    txn_offsets: BTreeMap<(i32, i64), Vec<txn_offsets::PendingOffset>>,
}

impl Groups {
    /// An empty core. `id_nonce` makes member ids unique across restarts.
    pub fn new(config: GroupConfig, id_nonce: u64) -> Self {
        Groups {
            partitions: config.offsets_partitions,
            config,
            owned: BTreeSet::new(),
            groups: BTreeMap::new(),
            pending: Vec::new(),
            id_nonce,
            id_counter: 0,
            next_expiry_check: 0,
            txn_offsets: BTreeMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Sets the partition count of `__consumer_offsets` (from the topic, once it exists).
    pub fn set_partitions(&mut self, n: i32) {
        self.partitions = n.max(1);
    }

    /// The `__consumer_offsets` partition of a group.
    pub fn partition_for(&self, group: &str) -> i32 {
        records::partition_for(group, self.partitions)
    }

    /// Whether `group` is coordinated here (its partition is led and loaded).
    pub fn owns(&self, group: &str) -> bool {
        self.owned.contains(&self.partition_for(group))
    }

    /// The `__consumer_offsets` partitions coordinated here.
    pub fn owned_partitions(&self) -> BTreeSet<i32> {
        self.owned.clone()
    }

    /// Partition `p` is loaded: its groups are coordinated here from now on.
    pub fn own(&mut self, p: i32) {
        self.owned.insert(p);
    }

    /// This broker no longer leads partition `p`: its groups are dropped, and members waiting
    /// in a rebalance get NOT_COORDINATOR so they look for the new coordinator, as Kafka's
    /// coordinator unloads a partition on resignation.
    pub fn unload(&mut self, p: i32) {
        self.owned.remove(&p);
        let partitions = self.partitions;
        let gone: Vec<String> = self
            .groups
            .keys()
            .filter(|id| records::partition_for(id, partitions) == p)
            .cloned()
            .collect();
        let code = kafka_protocol::error::ResponseError::NotCoordinator.code();
        for id in gone {
            if let Some(mut g) = self.groups.remove(&id) {
                fail_members(&mut g, code);
            }
        }
        self.pending.retain(|w| w.partition != p);
        self.drop_txn_offsets(p);
    }

    fn next_member_suffix(&mut self) -> String {
        self.id_counter += 1;
        let v = (u128::from(self.id_nonce) << 64) | u128::from(self.id_counter);
        uuid::Uuid::from_u128(v).to_string()
    }

    /// Removes a group a failed join created, if nothing else uses it.
    fn drop_if_unused(&mut self, id: &str) {
        let unused = self.groups.get(id).is_some_and(|g| {
            g.members.is_empty()
                && g.pending.is_empty()
                && g.offsets.is_empty()
                && g.protocol_type.is_none()
        });
        if unused {
            self.groups.remove(id);
        }
    }

    /// Runs the timers due at `now`.
    pub fn tick(&mut self, now: i64) {
        self.tick_membership(now);
        if now >= self.next_expiry_check {
            self.expire_offsets(now);
            self.next_expiry_check = now + self.config.offsets_retention_check_interval_ms;
        }
    }

    /// Answers every pending JoinGroup/SyncGroup with NOT_COORDINATOR (shutdown), so no
    /// connection waits for a rebalance that will not complete here.
    pub fn fail_waiters(&mut self) {
        let code = kafka_protocol::error::ResponseError::NotCoordinator.code();
        for g in self.groups.values_mut() {
            fail_members(g, code);
        }
    }

    /// The state of a group, if it exists.
    pub fn state_of(&self, id: &str) -> Option<GroupState> {
        self.groups.get(id).map(|g| g.state)
    }

    /// The generation of a group, if it exists.
    pub fn generation_of(&self, id: &str) -> Option<i32> {
        self.groups.get(id).map(|g| g.generation)
    }

    /// ListGroups with an optional state filter (case-insensitive names).
    pub fn list(&self, states: &[String]) -> Vec<ListedGroup> {
        self.groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect()
    }

    /// DescribeGroups for one group.
    pub fn describe(&self, id: &str) -> Option<DescribedGroup> {
        let g = self.groups.get(id)?;
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol.clone().unwrap_or_default();
        Some(DescribedGroup {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }

    /// Applies one replayed record of `__consumer_offsets`.
    pub fn replay(&mut self, record: Decoded, now: i64) {
        match record {
            Decoded::Offset {
                group,
                topic,
                partition,
                value,
            } => match value {
                Some(v) => {
                    let g = self
                        .groups
                        .entry(group.clone())
                        .or_insert_with(|| Group::new(&group, now));
                    g.offsets.insert((topic, partition), v);
                }
                None => {
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.offsets.remove(&(topic, partition));
                    }
                }
            },
            Decoded::Group { group, value: None } => {
                self.groups.remove(&group);
            }
            Decoded::Group {
                group,
                value: Some(v),
            } => {
                let g = self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group, now));
                load_group(g, v, now);
            }
            Decoded::Other(_) => {}
        }
    }

    /// After replay: drops groups left with nothing.
    pub fn finish_replay(&mut self) {
        self.groups.retain(|_, g| {
            !(g.members.is_empty() && g.offsets.is_empty() && g.protocol_type.is_none())
        });
    }
}

/// Answers every member waiting in a join or sync of `g` with `code`.
fn fail_members(g: &mut Group, code: i16) {
    for m in g.members.values_mut() {
        let id = m.id.clone();
        m.complete_join(JoinResult::error(code, &id));
        m.complete_sync(SyncResult::error(code));
    }
}

fn load_group(g: &mut Group, v: records::GroupValue, now: i64) {
    g.protocol_type = Some(v.protocol_type);
    g.generation = v.generation;
    g.leader = v.leader;
    g.state_ts = if v.state_ts >= 0 { v.state_ts } else { now };
    g.members.clear();
    let protocol = v.protocol.clone().unwrap_or_default();
    for m in v.members {
        g.members.insert(
            m.member_id.clone(),
            Member {
                id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                join_waiter: None,
                join_version: 0,
                sync_waiter: None,
                heartbeat_deadline_ms: now.saturating_add(i64::from(m.session_timeout_ms)),
                is_new: false,
            },
        );
    }
    g.protocol = v.protocol;
    g.state = if g.members.is_empty() {
        model::GroupState::Empty
    } else {
        model::GroupState::Stable
    };
}

/// The coordinator as the broker holds it.
#[derive(Debug)]
pub struct GroupCoordinator {
    core: Mutex<Groups>,
    /// Held by every operation that may change persisted state, from the operation through
    /// the append of its records to their apply, so no other change interleaves.
    writes: tokio::sync::Mutex<()>,
    loaded: AtomicBool,
    /// The metadata offset (image `last_offset`) the owned partitions were last synced with.
    synced_metadata: AtomicI64,
}

impl GroupCoordinator {
    /// A coordinator that answers COORDINATOR_LOAD_IN_PROGRESS until [`Self::set_loaded`].
    pub fn new(config: GroupConfig, id_nonce: u64) -> Self {
        GroupCoordinator {
            core: Mutex::new(Groups::new(config, id_nonce)),
            writes: tokio::sync::Mutex::new(()),
            loaded: AtomicBool::new(false),
            synced_metadata: AtomicI64::new(i64::MIN),
        }
    }

    /// Runs `f` on the core.
    pub fn with<T>(&self, f: impl FnOnce(&mut Groups) -> T) -> T {
        f(&mut self.core.lock())
    }

    /// Waits for the write lock (async callers).
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }

    /// Takes the write lock from a thread that may block (timers on the blocking pool).
    pub fn lock_writes_blocking(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.blocking_lock()
    }

    /// True once the state has been rebuilt from `__consumer_offsets`.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Marks the state as rebuilt.
    pub fn set_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    /// The metadata offset the owned partitions were last synced with.
    pub fn synced_metadata(&self) -> i64 {
        self.synced_metadata.load(Ordering::Acquire)
    }

    /// The owned partitions follow the metadata up to `offset`.
    pub fn set_synced_metadata(&self, offset: i64) {
        self.synced_metadata.store(offset, Ordering::Release);
    }
}

#[cfg(test)]
#[path = "core_test.rs"]
mod tests;
