//! Committed offsets: OffsetCommit (group members and simple consumers), OffsetFetch,
//! OffsetDelete, DeleteGroups and `offsets.retention.minutes` expiry.

use super::membership::validate;
use super::model::{Group, GroupState};
use super::pending::Change;
use super::records::OffsetValue;
use super::{Groups, Write};
use kafka_protocol::error::ResponseError as E;

/// Offsets by topic, then partition (`None` = nothing committed).
pub type TopicOffsets = Vec<(String, Vec<(i32, Option<OffsetValue>)>)>;

/// Error codes by topic, then partition.
pub type PartitionCodes = Vec<(String, Vec<(i32, i16)>)>;

/// One partition of an OffsetCommit.
#[derive(Clone, Debug)]
pub struct CommitEntry {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Leader epoch (−1 none).
    pub leader_epoch: i32,
    /// Metadata.
    pub metadata: Option<String>,
}

/// Who commits.
#[derive(Clone, Debug)]
pub struct Committer<'a> {
    /// Group.
    pub group_id: &'a str,
    /// Generation (−1 for simple consumers / admin).
    pub generation: i32,
    /// Member id ("" for simple consumers).
    pub member_id: &'a str,
    /// Static instance id.
    pub instance_id: Option<&'a str>,
    /// v2–4 retention time (−1 = broker default).
    pub retention_ms: i64,
}

impl Groups {
    /// OffsetCommit: one code per entry, or a code for all of them. The offsets are applied
    /// once their records are written ([`Change::Commit`]); a simple consumer's first commit
    /// creates its group then.
    pub fn commit(
        &mut self,
        c: &Committer<'_>,
        entries: &[CommitEntry],
        now: i64,
    ) -> Result<Vec<i16>, i16> {
        if c.group_id.is_empty() {
            return Err(E::InvalidGroupId.code());
        }
        match self.groups.get_mut(c.group_id) {
            None if c.generation >= 0 || !c.member_id.is_empty() || c.instance_id.is_some() => {
                return Err(E::IllegalGeneration.code())
            }
            None => {}
            Some(g) => {
                validate_commit(g, c)?;
                if let Some(m) = g.members.get_mut(c.member_id) {
                    m.touch(now);
                }
            }
        }
        let max_meta = self.config.offset_metadata_max_bytes;
        let partition = self.partition_for(c.group_id);
        let mut codes = Vec::with_capacity(entries.len());
        let (mut writes, mut offsets) = (Vec::new(), Vec::new());
        for e in entries {
            let metadata = e.metadata.clone().unwrap_or_default();
            if metadata.len() > max_meta {
                codes.push(E::OffsetMetadataTooLarge.code());
                continue;
            }
            let value = OffsetValue {
                offset: e.offset,
                leader_epoch: e.leader_epoch,
                metadata,
                commit_ts: now,
                expire_ts: (c.retention_ms >= 0).then(|| now.saturating_add(c.retention_ms)),
            };
            let (t, p) = (&e.topic, e.partition);
            writes.push(Write::offset(partition, c.group_id, t, p, Some(&value)));
            offsets.push(((t.clone(), p), value));
            codes.push(0);
        }
        if !offsets.is_empty() {
            self.stage(c.group_id, writes, Change::Commit(offsets));
        }
        Ok(codes)
    }

    /// OffsetFetch: `None` topics = every committed offset of the group.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> TopicOffsets {
        let g = self.groups.get(group_id);
        match topics {
            Some(topics) => topics
                .iter()
                .map(|(t, parts)| {
                    let found = parts
                        .iter()
                        .map(|&p| {
                            let v = g.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned());
                            (p, v)
                        })
                        .collect();
                    (t.clone(), found)
                })
                .collect(),
            None => {
                let mut out: TopicOffsets = Vec::new();
                for ((t, p), v) in g.iter().flat_map(|g| g.offsets.iter()) {
                    match out.last_mut() {
                        Some((last, parts)) if last == t => parts.push((*p, Some(v.clone()))),
                        _ => out.push((t.clone(), vec![(*p, Some(v.clone()))])),
                    }
                }
                out
            }
        }
    }

    /// DeleteGroups: one code per group. A group is removed once its tombstones are written
    /// ([`Change::DeleteGroup`]); a group named twice is deleted once.
    pub fn delete_groups(&mut self, ids: &[String]) -> Vec<i16> {
        let mut deleting: Vec<&str> = Vec::new();
        let mut codes = Vec::with_capacity(ids.len());
        for id in ids {
            let code = match self.groups.get(id) {
                None => E::GroupIdNotFound.code(),
                Some(_) if deleting.contains(&id.as_str()) => E::GroupIdNotFound.code(),
                Some(g) if g.state == GroupState::Dead => E::GroupIdNotFound.code(),
                Some(g) if g.state != GroupState::Empty || !g.members.is_empty() => {
                    E::NonEmptyGroup.code()
                }
                Some(g) => {
                    let partition = self.partition_for(id);
                    let mut writes: Vec<Write> = g
                        .offsets
                        .keys()
                        .map(|(t, p)| Write::offset(partition, id, t, *p, None))
                        .collect();
                    writes.push(Write::group(partition, id, None));
                    self.stage(id, writes, Change::DeleteGroup);
                    deleting.push(id);
                    0
                }
            };
            codes.push(code);
        }
        codes
    }

    /// OffsetDelete: a top-level error, or a code per (topic, partition). The offsets go once
    /// their tombstones are written ([`Change::RemoveOffsets`]).
    pub fn delete_offsets(
        &mut self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<PartitionCodes, i16> {
        let partition = self.partition_for(group_id);
        let Some(g) = self.groups.get(group_id) else {
            return Err(E::GroupIdNotFound.code());
        };
        let subscribed = match g.state {
            GroupState::Dead => return Err(E::GroupIdNotFound.code()),
            GroupState::Empty => Vec::new(),
            _ if g.protocol_type.as_deref() == Some("consumer") => subscribed_topics(g),
            _ => return Err(E::NonEmptyGroup.code()),
        };
        let (mut out, mut keys, mut writes) = (Vec::new(), Vec::new(), Vec::new());
        for (t, parts) in topics {
            let mut codes = Vec::new();
            for &p in parts {
                if subscribed.contains(t) {
                    codes.push((p, E::GroupSubscribedToTopic.code()));
                    continue;
                }
                let key = (t.clone(), p);
                if g.offsets.contains_key(&key) && !keys.contains(&key) {
                    writes.push(Write::offset(partition, group_id, t, p, None));
                    keys.push(key);
                }
                codes.push((p, 0));
            }
            out.push((t.clone(), codes));
        }
        if !keys.is_empty() {
            let change = Change::RemoveOffsets {
                keys,
                then_group: false,
            };
            self.stage(group_id, writes, change);
        }
        Ok(out)
    }

    /// Expires offsets past their retention; deletes empty groups left without offsets. Both
    /// happen once the tombstones are written ([`Change::RemoveOffsets`]).
    pub(crate) fn expire_offsets(&mut self, now: i64) {
        let retention = self.config.offsets_retention_ms;
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            let partition = self.partition_for(&id);
            let Some(g) = self.groups.get(&id) else {
                continue;
            };
            let simple = g.protocol_type.as_deref().unwrap_or("").is_empty();
            if !(simple || g.state == GroupState::Empty) {
                continue;
            }
            let base_state = if g.state == GroupState::Empty && !simple {
                g.state_ts
            } else {
                i64::MIN
            };
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|(_, v)| match v.expire_ts {
                    Some(e) => now >= e,
                    None => now >= v.commit_ts.max(base_state).saturating_add(retention),
                })
                .map(|(k, _)| k.clone())
                .collect();
            let then_group = g.state == GroupState::Empty
                && g.offsets.len() == expired.len()
                && g.pending.is_empty();
            if expired.is_empty() && !then_group {
                continue;
            }
            let mut writes = Vec::new();
            for (t, p) in &expired {
                tracing::info!(group = %id, topic = %t, partition = *p, "offset expired");
                writes.push(Write::offset(partition, &id, t, *p, None));
            }
            if then_group && g.protocol_type.is_some() {
                writes.push(Write::group(partition, &id, None));
            }
            let change = Change::RemoveOffsets {
                keys: expired,
                then_group,
            };
            self.stage(&id, writes, change);
        }
    }
}

fn validate_commit(g: &Group, c: &Committer<'_>) -> Result<(), i16> {
    if g.state == GroupState::Dead {
        return Err(E::CoordinatorNotAvailable.code());
    }
    if c.generation < 0 && g.state == GroupState::Empty {
        return Ok(());
    }
    if c.generation >= 0 || !c.member_id.is_empty() || c.instance_id.is_some() {
        validate(g, c.member_id, c.instance_id, c.generation)?;
    } else if g.state != GroupState::Empty {
        return Err(E::UnknownMemberId.code());
    }
    if g.state == GroupState::CompletingRebalance {
        return Err(E::RebalanceInProgress.code());
    }
    Ok(())
}

/// Topics in the members' consumer-protocol subscriptions (version i16, then an array of
/// topic names) for the selected protocol.
fn subscribed_topics(g: &Group) -> Vec<String> {
    let protocol = g.protocol.clone().unwrap_or_default();
    let mut out = Vec::new();
    for m in g.members.values() {
        let meta = m.metadata(&protocol);
        let mut b: &[u8] = &meta;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (h, t) = (b.get(..n)?, b.get(n..)?);
            b = t;
            Some(h)
        };
        let _version = take(2);
        let Some(count) = take(4).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]])) else {
            continue;
        };
        for _ in 0..count.max(0) {
            let Some(len) = take(2).map(|l| i16::from_be_bytes([l[0], l[1]])) else {
                break;
            };
            let Some(name) = take(len.max(0) as usize) else {
                break;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}
