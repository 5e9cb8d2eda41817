//! The data of one classic group: its state, members, generation, selected protocol and
//! committed offsets, plus the results handed back to the API layer.

use super::records::{GroupValue, MemberValue, OffsetValue};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};
use tokio::sync::oneshot;

/// Kafka's classic group states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// No members (possibly offsets).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment distributed.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// The name ListGroups/DescribeGroups use.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A member of a JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Its metadata for the selected protocol.
    pub metadata: Bytes,
}

/// The outcome of a JoinGroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinResult {
    /// Error code (0 = none).
    pub error: i16,
    /// Generation.
    pub generation: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// Leader member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member, for the leader only.
    pub members: Vec<JoinMember>,
    /// KIP-814: a static leader rejoining must not reassign.
    pub skip_assignment: bool,
}

impl JoinResult {
    /// An error result.
    pub fn error(code: i16, member_id: &str) -> Self {
        JoinResult {
            error: code,
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// The outcome of a SyncGroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncResult {
    /// Error code.
    pub error: i16,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

impl SyncResult {
    /// An error result.
    pub fn error(code: i16) -> Self {
        SyncResult {
            error: code,
            ..Default::default()
        }
    }
}

/// An answer now, or later when the rebalance completes.
#[derive(Debug)]
pub enum Reply<T> {
    /// Immediate.
    Now(T),
    /// Completed by a later event or tick.
    Later(oneshot::Receiver<T>),
}

/// A member of a classic group.
#[derive(Debug)]
pub struct Member {
    /// Member id.
    pub id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Supported protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Current assignment.
    pub assignment: Bytes,
    /// Pending JoinGroup response (member is "awaiting join").
    pub join_waiter: Option<oneshot::Sender<JoinResult>>,
    /// JoinGroup version of the pending response.
    pub join_version: i16,
    /// Pending SyncGroup response.
    pub sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// When the member expires unless it heartbeats (or joins, syncs, commits) before.
    pub heartbeat_deadline_ms: i64,
    /// Joined with an unknown member id and not through a completed join phase yet: it expires at
    /// its deadline even while awaiting the join (Kafka's new-member join timeout).
    pub is_new: bool,
}

impl Member {
    /// Metadata for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Moves the heartbeat deadline to a session timeout from `now`.
    pub fn touch(&mut self, now: i64) {
        self.heartbeat_deadline_ms = now.saturating_add(i64::from(self.session_timeout_ms));
    }

    /// True when the member has missed its deadline at `now`: a new member always counts, a
    /// known member not while it awaits a JoinGroup or SyncGroup answer.
    pub fn expired(&self, now: i64) -> bool {
        let waiting = self.join_waiter.is_some() || self.sync_waiter.is_some();
        (self.is_new || !waiting) && now >= self.heartbeat_deadline_ms
    }

    /// Completes the pending join with `result`.
    pub fn complete_join(&mut self, result: JoinResult) {
        if let Some(tx) = self.join_waiter.take() {
            let _ = tx.send(result);
        }
    }

    /// Completes the pending sync with `result`.
    pub fn complete_sync(&mut self, result: SyncResult) {
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(result);
        }
    }
}

/// A classic group.
#[derive(Debug)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// State.
    pub state: GroupState,
    /// When it entered the state.
    pub state_ts: i64,
    /// Generation.
    pub generation: i32,
    /// Protocol type of its members (`None` for a simple-consumer group).
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol: Option<String>,
    /// Leader.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// KIP-394 member ids handed out and not joined yet, with their expiry.
    pub pending: HashMap<String, i64>,
    /// Members that have not sent SyncGroup for this generation.
    pub pending_sync: HashSet<String>,
    /// When the join phase completes at the latest.
    pub join_deadline: i64,
    /// During the initial delay of a new group: the latest the delay may extend to.
    pub initial_delay_cap: Option<i64>,
    /// When the sync phase expires.
    pub sync_deadline: i64,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
}

impl Group {
    /// A new empty group.
    pub fn new(id: &str, now: i64) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            state_ts: now,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            pending_sync: HashSet::new(),
            join_deadline: 0,
            initial_delay_cap: None,
            sync_deadline: 0,
            offsets: BTreeMap::new(),
        }
    }

    /// Moves to `state` at `now`.
    pub fn transition(&mut self, state: GroupState, now: i64) {
        self.state = state;
        self.state_ts = now;
    }

    /// The member id of a static instance.
    pub fn static_member(&self, instance: &str) -> Option<String> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
            .map(|m| m.id.clone())
    }

    /// Protocols every member supports.
    pub fn candidates(&self) -> Vec<String> {
        let mut it = self.members.values();
        let Some(first) = it.next() else {
            return Vec::new();
        };
        let mut c: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in it {
            c.retain(|n| m.protocols.iter().any(|(p, _)| p == n));
        }
        c
    }

    /// Kafka's check that a joining member fits the group.
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let c = self.candidates();
        protocols.iter().any(|(n, _)| c.contains(n))
    }

    /// Protocol selection: each member votes for its most preferred candidate.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes.into_iter().find(|(_, n)| *n == best).map(|(c, _)| c)
    }

    /// True when every member awaits join and no KIP-394 member id is outstanding.
    pub fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    /// Largest rebalance timeout of the members.
    pub fn max_rebalance_timeout(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// The join response of `member_id` for the current generation.
    pub fn join_result(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    /// The group metadata value as Kafka persists it.
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_ts: self.state_ts,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }
}
