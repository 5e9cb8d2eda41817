//! The classic rebalance protocol: JoinGroup (KIP-394 member ids, static members of KIP-345),
//! SyncGroup, Heartbeat and LeaveGroup, and the timers (session, join, sync) driven by `tick`.
//! Every method takes `now` in milliseconds, so the state machine is deterministic.

use super::model::{Group, GroupState, JoinResult, Member, Reply, SyncResult};
use super::pending::{Change, StaticReplace};
use super::records::GroupValue;
use super::{Groups, Write};
use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// A JoinGroup request, decoded.
#[derive(Clone, Debug, Default)]
pub struct JoinParams {
    /// Group id.
    pub group_id: String,
    /// Member id ("" for a new member).
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v0: the session timeout).
    pub rebalance_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Protocols with metadata, preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// Request version.
    pub version: i16,
}

/// One member of a LeaveGroup request.
#[derive(Clone, Debug)]
pub struct LeavingMember {
    /// Member id ("" with an instance id = any).
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
}

/// How long a new member may wait in JoinGroup before it is removed (Kafka's
/// `NewMemberJoinTimeoutMs`): a client that died mid-join must not hold the rebalance. A new
/// member cannot heartbeat and its closed connection goes unnoticed while its request waits.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

fn code(e: E) -> i16 {
    e.code()
}

impl Groups {
    /// JoinGroup.
    pub fn join(&mut self, p: JoinParams, now: i64) -> Reply<JoinResult> {
        let err = |c: E| Reply::Now(JoinResult::error(c.code(), &p.member_id));
        if p.group_id.is_empty() {
            return err(E::InvalidGroupId);
        }
        let (min, max) = (
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        );
        if i64::from(p.session_timeout_ms) < min || i64::from(p.session_timeout_ms) > max {
            return err(E::InvalidSessionTimeout);
        }
        let exists = self.groups.contains_key(&p.group_id);
        if !exists && !p.member_id.is_empty() {
            return err(E::UnknownMemberId);
        }
        let group = self
            .groups
            .entry(p.group_id.clone())
            .or_insert_with(|| Group::new(&p.group_id, now));
        if group.state == GroupState::Dead {
            return err(E::CoordinatorNotAvailable);
        }
        if !group.supports(&p.protocol_type, &p.protocols) {
            let reply = err(E::InconsistentGroupProtocol);
            self.drop_if_unused(&p.group_id);
            return reply;
        }
        if p.member_id.is_empty() {
            self.join_unknown(p, now)
        } else {
            self.join_known(p, now)
        }
    }

    fn accepts_new_member(&self, g: &Group, member_id: &str) -> bool {
        let max = self.config.max_size;
        match g.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                g.members
                    .get(member_id)
                    .is_some_and(|m| m.join_waiter.is_some())
                    || g.members
                        .values()
                        .filter(|m| m.join_waiter.is_some())
                        .count()
                        + g.pending.len()
                        < max
            }
            _ => g.members.contains_key(member_id) || g.members.len() + g.pending.len() < max,
        }
    }

    fn join_unknown(&mut self, p: JoinParams, now: i64) -> Reply<JoinResult> {
        let new_id = format!("{}-{}", p.client_id, self.next_member_suffix());
        let g = &self.groups[&p.group_id];
        if let Some(instance) = &p.instance_id {
            if let Some(old) = g.static_member(instance) {
                return self.rejoin_static(p, old, new_id, now);
            }
        }
        if !self.accepts_new_member(g, &new_id) {
            let r = JoinResult::error(code(E::GroupMaxSizeReached), "");
            self.drop_if_unused(&p.group_id);
            return Reply::Now(r);
        }
        if p.instance_id.is_none() && p.version >= 4 {
            let expiry = now + i64::from(p.session_timeout_ms);
            if let Some(g) = self.groups.get_mut(&p.group_id) {
                g.pending.insert(new_id.clone(), expiry);
            }
            return Reply::Now(JoinResult::error(code(E::MemberIdRequired), &new_id));
        }
        self.add_member_and_rebalance(p, new_id, now)
    }

    fn join_known(&mut self, p: JoinParams, now: i64) -> Reply<JoinResult> {
        let Some(g) = self.groups.get_mut(&p.group_id) else {
            return Reply::Now(JoinResult::error(code(E::UnknownMemberId), &p.member_id));
        };
        if g.pending.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member_and_rebalance(p, id, now);
        }
        if let Some(instance) = &p.instance_id {
            match g.static_member(instance) {
                Some(id) if id != p.member_id => {
                    return Reply::Now(JoinResult::error(code(E::FencedInstanceId), &p.member_id))
                }
                None => {
                    return Reply::Now(JoinResult::error(code(E::UnknownMemberId), &p.member_id))
                }
                _ => {}
            }
        }
        if !g.members.contains_key(&p.member_id) {
            return Reply::Now(JoinResult::error(code(E::UnknownMemberId), &p.member_id));
        }
        let same = {
            let m = &g.members[&p.member_id];
            m.protocols == p.protocols
        };
        match g.state {
            GroupState::PreparingRebalance => {
                let rx = update_member(g, &p);
                self.maybe_complete_join(&p.group_id, now);
                Reply::Later(rx)
            }
            GroupState::CompletingRebalance if same => Reply::Now(g.join_result(&p.member_id)),
            GroupState::Stable if same && g.leader.as_deref() != Some(&p.member_id) => {
                Reply::Now(g.join_result(&p.member_id))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let rx = update_member(g, &p);
                self.prepare_rebalance(&p.group_id, now);
                Reply::Later(rx)
            }
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(JoinResult::error(code(E::UnknownMemberId), &p.member_id))
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        p: JoinParams,
        id: String,
        now: i64,
    ) -> Reply<JoinResult> {
        let Some(g) = self.groups.get_mut(&p.group_id) else {
            return Reply::Now(JoinResult::error(code(E::UnknownMemberId), &id));
        };
        let (tx, rx) = oneshot::channel();
        if g.members.is_empty() {
            g.protocol_type = Some(p.protocol_type.clone());
        }
        g.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: p.instance_id.clone(),
                client_id: p.client_id.clone(),
                client_host: p.client_host.clone(),
                session_timeout_ms: p.session_timeout_ms,
                rebalance_timeout_ms: p.rebalance_timeout_ms,
                protocols: p.protocols.clone(),
                assignment: Bytes::new(),
                join_waiter: Some(tx),
                join_version: p.version,
                sync_waiter: None,
                heartbeat_deadline_ms: now + NEW_MEMBER_JOIN_TIMEOUT_MS,
                is_new: true,
            },
        );
        if g.state == GroupState::PreparingRebalance {
            if let Some(cap) = g.initial_delay_cap {
                g.join_deadline = (now + self.config.initial_rebalance_delay_ms).min(cap);
            }
            self.maybe_complete_join(&p.group_id, now);
        } else {
            self.prepare_rebalance(&p.group_id, now);
        }
        Reply::Later(rx)
    }

    /// A static member rejoining with an unknown member id: replaces the old id (fencing it).
    /// In a Stable group whose selected protocol metadata is unchanged there is no rebalance,
    /// and the new id takes effect once the group record carrying it is written.
    fn rejoin_static(
        &mut self,
        p: JoinParams,
        old: String,
        new_id: String,
        now: i64,
    ) -> Reply<JoinResult> {
        let partition = self.partition_for(&p.group_id);
        let Some(g) = self.groups.get_mut(&p.group_id) else {
            return Reply::Now(JoinResult::error(code(E::UnknownMemberId), ""));
        };
        let Some(m) = g.members.get(&old) else {
            return Reply::Now(JoinResult::error(code(E::UnknownMemberId), ""));
        };
        let selected = g.protocol.clone().unwrap_or_default();
        let changed = m.metadata(&selected) != metadata_of(&p.protocols, &selected);
        let (tx, rx) = oneshot::channel();
        let state = g.state;
        if state == GroupState::Stable && !changed {
            let value = replaced_value(g, &old, &new_id, &p);
            let writes = vec![Write::group(partition, &p.group_id, Some(&value))];
            let id = p.group_id.clone();
            let replace = StaticReplace {
                old_id: old,
                new_id,
                join: p,
                reply: tx,
            };
            self.stage(&id, writes, Change::StaticReplace(Box::new(replace)));
            return Reply::Later(rx);
        }
        replace_static(g, &old, &new_id, &p, now);
        if let Some(m) = g.members.get_mut(&new_id) {
            m.join_waiter = Some(tx);
            m.join_version = p.version;
        }
        if state == GroupState::PreparingRebalance {
            self.maybe_complete_join(&p.group_id, now);
        } else {
            self.prepare_rebalance(&p.group_id, now);
        }
        Reply::Later(rx)
    }

    /// Starts a rebalance: pending syncs fail with REBALANCE_IN_PROGRESS.
    pub(crate) fn prepare_rebalance(&mut self, group_id: &str, now: i64) {
        let delay = self.config.initial_rebalance_delay_ms;
        let Some(g) = self.groups.get_mut(group_id) else {
            return;
        };
        if g.state == GroupState::CompletingRebalance {
            for m in g.members.values_mut() {
                m.assignment = Bytes::new();
                m.complete_sync(SyncResult::error(code(E::RebalanceInProgress)));
            }
        }
        g.pending_sync.clear();
        let was_empty = g.state == GroupState::Empty;
        g.transition(GroupState::PreparingRebalance, now);
        let timeout = g.max_rebalance_timeout();
        if was_empty && delay > 0 {
            let cap = now + timeout;
            g.initial_delay_cap = Some(cap);
            g.join_deadline = (now + delay).min(cap);
        } else {
            g.initial_delay_cap = None;
            g.join_deadline = now + timeout;
            self.maybe_complete_join(group_id, now);
        }
    }

    /// Completes the join phase when every member has joined (outside the initial delay).
    pub(crate) fn maybe_complete_join(&mut self, group_id: &str, now: i64) {
        let Some(g) = self.groups.get(group_id) else {
            return;
        };
        if g.state != GroupState::PreparingRebalance {
            return;
        }
        let delay_over = g.initial_delay_cap.is_none() || now >= g.join_deadline;
        if (g.all_joined() && delay_over) || g.members.is_empty() || now >= g.join_deadline {
            self.complete_join(group_id, now);
        }
    }

    /// Ends the join phase: members that did not rejoin are removed, the generation advances and
    /// every joined member gets its response (the leader with the member list).
    fn complete_join(&mut self, group_id: &str, now: i64) {
        let Some(g) = self.groups.get_mut(group_id) else {
            return;
        };
        let gone: Vec<String> = g
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            g.members.remove(&id);
        }
        g.initial_delay_cap = None;
        g.generation += 1;
        if g.members.is_empty() {
            g.protocol = None;
            g.leader = None;
            g.transition(GroupState::Empty, now);
            self.snapshot_group(group_id);
            return;
        }
        g.protocol = g.select_protocol();
        if !g.leader.as_ref().is_some_and(|l| g.members.contains_key(l)) {
            g.leader = g.members.keys().next().cloned();
        }
        g.transition(GroupState::CompletingRebalance, now);
        g.sync_deadline = now + g.max_rebalance_timeout();
        g.pending_sync = g.members.keys().cloned().collect();
        let ids: Vec<String> = g.members.keys().cloned().collect();
        for id in ids {
            let result = g.join_result(&id);
            if let Some(m) = g.members.get_mut(&id) {
                m.is_new = false;
                m.touch(now);
                m.complete_join(result);
            }
        }
    }

    /// SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> Reply<SyncResult> {
        let now_err = |c: E| Reply::Now(SyncResult::error(c.code()));
        let Some(g) = self.groups.get_mut(group_id) else {
            return now_err(E::UnknownMemberId);
        };
        if let Err(c) = validate(g, member_id, instance_id, generation) {
            return Reply::Now(SyncResult::error(c));
        }
        if protocol
            .0
            .is_some_and(|t| g.protocol_type.as_deref() != Some(t))
            || protocol.1.is_some_and(|n| g.protocol.as_deref() != Some(n))
        {
            return now_err(E::InconsistentGroupProtocol);
        }
        match g.state {
            GroupState::Empty => now_err(E::UnknownMemberId),
            GroupState::Dead => now_err(E::CoordinatorNotAvailable),
            GroupState::PreparingRebalance => now_err(E::RebalanceInProgress),
            GroupState::Stable => {
                g.pending_sync.remove(member_id);
                let Some(m) = g.members.get_mut(member_id) else {
                    return now_err(E::UnknownMemberId);
                };
                m.touch(now);
                Reply::Now(SyncResult {
                    error: 0,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol.clone(),
                    assignment: m.assignment.clone(),
                })
            }
            GroupState::CompletingRebalance => {
                g.pending_sync.remove(member_id);
                let (tx, rx) = oneshot::channel();
                if let Some(m) = g.members.get_mut(member_id) {
                    m.sync_waiter = Some(tx);
                }
                if g.leader.as_deref() == Some(member_id) {
                    self.stage_assignment(group_id, &assignments);
                }
                Reply::Later(rx)
            }
        }
    }

    /// Queues the leader's assignment: the group record carrying it, applied (Stable, answers
    /// to every waiting member) once written. Members the leader left out get an empty one.
    fn stage_assignment(&mut self, group_id: &str, assignments: &[(String, Bytes)]) {
        let partition = self.partition_for(group_id);
        let Some(g) = self.groups.get(group_id) else {
            return;
        };
        let assignment: BTreeMap<String, Bytes> = g
            .members
            .keys()
            .map(|id| {
                let a = assignments.iter().find(|(m, _)| m == id);
                (id.clone(), a.map(|(_, a)| a.clone()).unwrap_or_default())
            })
            .collect();
        let mut value = g.to_value();
        for m in &mut value.members {
            m.assignment = assignment.get(&m.member_id).cloned().unwrap_or_default();
        }
        let writes = vec![Write::group(partition, group_id, Some(&value))];
        let generation = g.generation;
        let change = Change::Assignment {
            generation,
            assignment,
        };
        self.stage(group_id, writes, change);
    }

    /// Heartbeat.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: i64,
    ) -> i16 {
        let Some(g) = self.groups.get_mut(group_id) else {
            return code(E::UnknownMemberId);
        };
        if g.state == GroupState::Dead {
            return code(E::CoordinatorNotAvailable);
        }
        if let Err(c) = validate(g, member_id, instance_id, generation) {
            return c;
        }
        if let Some(m) = g.members.get_mut(member_id) {
            m.touch(now);
        }
        match g.state {
            GroupState::Empty => code(E::UnknownMemberId),
            GroupState::PreparingRebalance => code(E::RebalanceInProgress),
            _ => 0,
        }
    }

    /// LeaveGroup: a top-level error, or one code per member.
    pub fn leave(
        &mut self,
        group_id: &str,
        leaving: &[LeavingMember],
        now: i64,
    ) -> Result<Vec<i16>, i16> {
        let Some(g) = self.groups.get_mut(group_id) else {
            return Err(code(E::UnknownMemberId));
        };
        if g.state == GroupState::Dead {
            return Err(code(E::CoordinatorNotAvailable));
        }
        let mut codes = Vec::with_capacity(leaving.len());
        for l in leaving {
            let Some(g) = self.groups.get_mut(group_id) else {
                codes.push(code(E::UnknownMemberId));
                continue;
            };
            let target = match &l.instance_id {
                Some(inst) => match g.static_member(inst) {
                    None => Err(code(E::UnknownMemberId)),
                    Some(id) if !l.member_id.is_empty() && id != l.member_id => {
                        Err(code(E::FencedInstanceId))
                    }
                    Some(id) => Ok(id),
                },
                None if g.pending.remove(&l.member_id).is_some() => {
                    codes.push(0);
                    self.maybe_complete_join(group_id, now);
                    continue;
                }
                None if g.members.contains_key(&l.member_id) => Ok(l.member_id.clone()),
                None => Err(code(E::UnknownMemberId)),
            };
            match target {
                Ok(id) => {
                    self.remove_member(group_id, &id, now);
                    codes.push(0);
                }
                Err(c) => codes.push(c),
            }
        }
        Ok(codes)
    }

    /// Removes a member (left or expired) and rebalances the rest.
    pub(crate) fn remove_member(&mut self, group_id: &str, member_id: &str, now: i64) {
        let Some(g) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(mut m) = g.members.remove(member_id) else {
            return;
        };
        m.complete_join(JoinResult::error(code(E::UnknownMemberId), member_id));
        m.complete_sync(SyncResult::error(code(E::UnknownMemberId)));
        g.pending_sync.remove(member_id);
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(group_id, now)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(group_id, now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Timers: KIP-394 ids, sessions, join and sync deadlines.
    pub(crate) fn tick_membership(&mut self, now: i64) {
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            let Some(g) = self.groups.get_mut(&id) else {
                continue;
            };
            let before = g.pending.len();
            g.pending.retain(|_, expiry| *expiry > now);
            let pending_expired = g.pending.len() != before;
            let expired: Vec<(String, bool)> = g
                .members
                .values()
                .filter(|m| m.expired(now))
                .map(|m| (m.id.clone(), m.is_new))
                .collect();
            for (m, is_new) in expired {
                if is_new {
                    tracing::info!(group = %id, member = %m, "new member did not complete its join in time");
                } else {
                    tracing::info!(group = %id, member = %m, "member session expired");
                }
                self.remove_member(&id, &m, now);
            }
            let Some(g) = self.groups.get(&id) else {
                continue;
            };
            match g.state {
                GroupState::PreparingRebalance if pending_expired || now >= g.join_deadline => {
                    self.maybe_complete_join(&id, now)
                }
                GroupState::CompletingRebalance if now >= g.sync_deadline => {
                    let lagging: Vec<String> = g.pending_sync.iter().cloned().collect();
                    for m in lagging {
                        if let Some(g) = self.groups.get_mut(&id) {
                            if let Some(mut m) = g.members.remove(&m) {
                                m.complete_join(JoinResult::error(code(E::UnknownMemberId), ""));
                            }
                        }
                    }
                    self.prepare_rebalance(&id, now);
                }
                _ => {}
            }
        }
    }
}

fn metadata_of(protocols: &[(String, Bytes)], name: &str) -> Bytes {
    protocols
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, m)| m.clone())
        .unwrap_or_default()
}

/// Replaces static member `old` by `new_id` with the settings of its JoinGroup: the old id's
/// pending answers get FENCED_INSTANCE_ID, leadership and a pending sync move to the new id.
pub(crate) fn replace_static(g: &mut Group, old: &str, new_id: &str, p: &JoinParams, now: i64) {
    let Some(mut m) = g.members.remove(old) else {
        return;
    };
    m.complete_join(JoinResult::error(code(E::FencedInstanceId), old));
    m.complete_sync(SyncResult::error(code(E::FencedInstanceId)));
    m.id = new_id.to_string();
    m.client_id = p.client_id.clone();
    m.client_host = p.client_host.clone();
    m.session_timeout_ms = p.session_timeout_ms;
    m.rebalance_timeout_ms = p.rebalance_timeout_ms;
    m.protocols = p.protocols.clone();
    m.touch(now);
    if g.leader.as_deref() == Some(old) {
        g.leader = Some(new_id.to_string());
    }
    if g.pending_sync.remove(old) {
        g.pending_sync.insert(new_id.to_string());
    }
    g.members.insert(new_id.to_string(), m);
}

/// The group record as it will be once static member `old` is replaced by `new_id`.
fn replaced_value(g: &Group, old: &str, new_id: &str, p: &JoinParams) -> GroupValue {
    let mut value = g.to_value();
    if value.leader.as_deref() == Some(old) {
        value.leader = Some(new_id.to_string());
    }
    let selected = g.protocol.clone().unwrap_or_default();
    for m in value.members.iter_mut().filter(|m| m.member_id == old) {
        m.member_id = new_id.to_string();
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        m.session_timeout_ms = p.session_timeout_ms;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms;
        m.subscription = metadata_of(&p.protocols, &selected);
    }
    value
}

/// Updates a known member from its JoinGroup and makes it await the join.
fn update_member(g: &mut Group, p: &JoinParams) -> oneshot::Receiver<JoinResult> {
    let (tx, rx) = oneshot::channel();
    if let Some(m) = g.members.get_mut(&p.member_id) {
        m.protocols = p.protocols.clone();
        m.session_timeout_ms = p.session_timeout_ms;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms;
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        m.join_version = p.version;
        if let Some(old) = m.join_waiter.replace(tx) {
            let _ = old.send(JoinResult::error(code(E::UnknownMemberId), &p.member_id));
        }
    }
    rx
}

/// Member identity (static fencing) and generation checks shared by Sync/Heartbeat/Commit.
pub(crate) fn validate(
    g: &Group,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), i16> {
    if g.state == GroupState::Dead {
        return Err(code(E::CoordinatorNotAvailable));
    }
    if let Some(inst) = instance_id {
        match g.static_member(inst) {
            None => return Err(code(E::UnknownMemberId)),
            Some(id) if id != member_id => return Err(code(E::FencedInstanceId)),
            _ => {}
        }
    }
    if !g.members.contains_key(member_id) {
        return Err(code(E::UnknownMemberId));
    }
    if generation != g.generation {
        return Err(code(E::IllegalGeneration));
    }
    Ok(())
}
