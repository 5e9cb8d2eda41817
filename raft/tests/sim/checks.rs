//! The simulation's invariants, checked as commands execute and after every step.

use std::collections::BTreeMap;

use shale_raft::kraft::{Entry, NodeId, Record, RoleKind, Snapshot};

use super::{codec, Node, Sim};

/// What the checker remembers across steps.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// epoch -> (leader id, incarnation) of the first node seen leading it.
    leaders: BTreeMap<i32, (NodeId, u32)>,
    /// (voter, epoch) -> the candidate it persisted a vote for.
    votes: BTreeMap<(NodeId, i32), NodeId>,
    /// Every entry ever committed, by offset (the union over all nodes' high watermarks).
    committed: Vec<Entry>,
    /// For each committed offset, the epoch of the node whose high watermark first covered it.
    commit_epochs: Vec<i32>,
    /// Client record id -> offset, for committed data records.
    record_offsets: BTreeMap<u64, i64>,
}

impl Checker {
    pub fn committed_len(&self) -> usize {
        self.committed.len()
    }

    /// The ids (of `ids`) not in the committed log.
    pub fn missing(&self, ids: &[u64]) -> Vec<u64> {
        ids.iter()
            .copied()
            .filter(|id| !self.record_offsets.contains_key(id))
            .collect()
    }

    /// Every record in `ids` is committed and every node's high watermark is past it.
    pub fn all_committed_everywhere(&self, ids: &[u64], nodes: &[Node]) -> bool {
        ids.iter().all(|id| {
            self.record_offsets
                .get(id)
                .is_some_and(|&off| nodes.iter().all(|n| n.core.is_some() && n.hw_seen > off))
        })
    }
}

pub(crate) fn on_persist(sim: &mut Sim, i: usize, s: &shale_raft::kraft::ElectionState) {
    let id = sim.nodes[i].id;
    if let Some(prev) = &sim.nodes[i].disk_state {
        if s.epoch < prev.epoch {
            sim.fail(&format!(
                "node {id}: persisted epoch went back {} -> {}",
                prev.epoch, s.epoch
            ));
        }
    }
    if s.voted_id >= 0 {
        let prev = *sim.checker.votes.entry((id, s.epoch)).or_insert(s.voted_id);
        if prev != s.voted_id {
            sim.fail(&format!(
                "node {id}: voted for {prev} and then {} in epoch {}",
                s.voted_id, s.epoch
            ));
        }
    }
}

pub(crate) fn on_truncate(sim: &mut Sim, i: usize, to: i64) {
    let n = &sim.nodes[i];
    if to < n.verified || to < n.hw_seen || to < n.disk_start {
        sim.fail(&format!(
            "node {}: truncate to {to} loses committed entries (holds {} committed, hw {})",
            n.id, n.verified, n.hw_seen
        ));
    }
}

pub(crate) fn on_commit(sim: &mut Sim, i: usize, hw: i64) {
    let n = &sim.nodes[i];
    if hw <= n.hw_seen || hw > n.log_end() {
        sim.fail(&format!(
            "node {}: high watermark {} -> {hw} (log end {})",
            n.id,
            n.hw_seen,
            n.log_end()
        ));
    }
    sim.nodes[i].hw_seen = hw;
}

pub(crate) fn on_apply(sim: &mut Sim, i: usize, base: i64, entries: &[Entry]) {
    let n = &sim.nodes[i];
    let end = base + entries.len() as i64;
    let matches = (base..end).all(|off| n.entry(off) == Some(&entries[(off - base) as usize]));
    if base != n.applied_next || end > n.hw_seen || !matches || n.state.len() as i64 != base {
        sim.fail(&format!(
            "node {}: Apply [{base}, {end}) but applied up to {}, hw {}",
            n.id, n.applied_next, n.hw_seen
        ));
    }
    sim.nodes[i].applied_next = end;
    sim.nodes[i].state.extend_from_slice(entries);
}

/// The entries of a snapshot, which must equal the committed log below its end offset.
fn snapshot_entries(sim: &Sim, i: usize, s: &Snapshot, what: &str) -> Vec<Entry> {
    let id = sim.nodes[i].id;
    let end = s.id.end_offset;
    let Some(entries) = codec::decode_snapshot(&s.data) else {
        sim.fail(&format!(
            "node {id}: {what} snapshot {:?} is malformed",
            s.id
        ));
    };
    let committed = &sim.checker.committed;
    let ok = entries.len() as i64 == end
        && end as usize <= committed.len()
        && entries[..] == committed[..end as usize]
        && entries.last().map(|e| e.epoch) == Some(s.id.epoch);
    if !ok {
        sim.fail(&format!(
            "node {id}: {what} snapshot {:?} differs from the committed log (committed length {})",
            s.id,
            committed.len()
        ));
    }
    entries
}

/// A snapshot written to disk holds exactly the committed prefix and never goes back.
pub(crate) fn on_write_snapshot(sim: &mut Sim, i: usize, s: &Snapshot) {
    snapshot_entries(sim, i, s, "written");
    let n = &sim.nodes[i];
    if s.id.end_offset <= n.snapshot_end() {
        sim.fail(&format!(
            "node {}: snapshot {:?} replaces a later one ending at {}",
            n.id,
            s.id,
            n.snapshot_end()
        ));
    }
}

/// The log start advances only to the end of the durable snapshot.
pub(crate) fn on_delete_prefix(sim: &mut Sim, i: usize, to: i64) {
    let n = &sim.nodes[i];
    if to != n.snapshot_end() || to < n.disk_start || to > n.log_end() {
        sim.fail(&format!(
            "node {}: delete log prefix to {to}, durable snapshot ends at {}, log [{}, {})",
            n.id,
            n.snapshot_end(),
            n.disk_start,
            n.log_end()
        ));
    }
}

/// The log restarts only at the end of the durable snapshot.
pub(crate) fn on_reset_log(sim: &mut Sim, i: usize, start: i64) {
    let n = &sim.nodes[i];
    if start != n.snapshot_end() {
        sim.fail(&format!(
            "node {}: log reset to {start}, durable snapshot ends at {}",
            n.id,
            n.snapshot_end()
        ));
    }
}

/// Loading a snapshot replaces the state machine with the committed prefix up to its end; the
/// next Apply starts there. It never moves the applied offset back within an incarnation.
pub(crate) fn on_load_snapshot(sim: &mut Sim, i: usize, s: &Snapshot) {
    let entries = snapshot_entries(sim, i, s, "loaded");
    let n = &sim.nodes[i];
    if s.id.end_offset < n.applied_next || Some(s) != n.disk_snapshot.as_ref() {
        sim.fail(&format!(
            "node {}: loads snapshot {:?} (applied up to {}, durable snapshot {:?})",
            n.id,
            s.id,
            n.applied_next,
            n.disk_snapshot.as_ref().map(|d| d.id)
        ));
    }
    let n = &mut sim.nodes[i];
    n.state = entries;
    n.applied_next = s.id.end_offset;
}

/// Checks after node `i` executed a step's commands.
pub(crate) fn after_step(sim: &mut Sim, i: usize) {
    let Some(core) = sim.nodes[i].core.as_ref() else {
        return;
    };
    let n = &sim.nodes[i];
    if core.log().end_offset() != n.log_end()
        || core.log().start_offset() != n.disk_start
        || core.high_watermark() != n.hw_seen
        || core.snapshot_id() != n.disk_snapshot.as_ref().map(|s| s.id)
    {
        sim.fail(&format!("node {}: core and disk disagree", n.id));
    }
    if n.snapshot_end() > n.hw_seen || n.state.len() as i64 != n.applied_next {
        sim.fail(&format!(
            "node {}: snapshot ends at {} beyond the high watermark {} (applied {})",
            n.id,
            n.snapshot_end(),
            n.hw_seen,
            n.applied_next
        ));
    }
    if core.role() == RoleKind::Leader {
        let key = (n.id, n.inc);
        let seen = *sim.checker.leaders.entry(core.epoch()).or_insert_with(|| {
            sim.stats.elections += 1;
            key
        });
        if seen != key {
            sim.fail(&format!(
                "two leaders in epoch {}: node {} (incarnation {}) and node {} (incarnation {})",
                core.epoch(),
                seen.0,
                seen.1,
                key.0,
                key.1
            ));
        }
    }
    check_committed_prefix(sim, i);
    check_majority_durable(sim);
    check_leader_complete(sim);
}

/// Entries below the node's high watermark equal the committed log; extends it. The applied
/// state's last entry is the committed one at its offset.
fn check_committed_prefix(sim: &mut Sim, i: usize) {
    let committed_len = sim.checker.committed.len() as i64;
    let n = &mut sim.nodes[i];
    let limit = n.log_end().min(committed_len);
    while n.verified < limit
        && n.entry(n.verified) == Some(&sim.checker.committed[n.verified as usize])
    {
        n.verified += 1;
    }
    let (verified, hw, id) = (n.verified, n.hw_seen, n.id);
    if verified < hw && verified < committed_len {
        sim.fail(&format!(
            "node {id}: committed entry at offset {verified} differs from the committed log"
        ));
    }
    if hw > committed_len {
        let epoch = sim.nodes[i].core.as_ref().map_or(0, |c| c.epoch());
        for off in committed_len..hw {
            let Some(entry) = sim.nodes[i].entry(off).cloned() else {
                sim.fail(&format!("node {id}: commits offset {off} it does not hold"));
            };
            if let Record::Data(b) = &entry.record {
                let id = u64::from_be_bytes(b[..8].try_into().expect("8-byte record id"));
                sim.checker.record_offsets.insert(id, off);
            }
            sim.checker.committed.push(entry);
            sim.checker.commit_epochs.push(epoch);
        }
        sim.nodes[i].verified = hw;
    }
    let n = &sim.nodes[i];
    if let Some(last) = n.state.last() {
        if sim.checker.committed.get(n.state.len() - 1) != Some(last) {
            sim.fail(&format!(
                "node {}: applied state differs from the committed log",
                n.id
            ));
        }
    }
}

/// The committed log survives any election (checked through its last entry; the prefix
/// follows from log matching, which `check_committed_prefix` checks as nodes commit): every
/// majority of the voter set in force at it intersects the nodes durably holding it, so a
/// future leader, which needs such a majority's votes and a log at least as fresh as each
/// voter's, holds it. Without voter changes that is "durable on a majority of voters"; with
/// them (KIP-853) the entry may have been committed by a later, then uncommitted, set that
/// differs by one voter, whose majorities overlap the committed set's the same way.
fn check_majority_durable(sim: &Sim) {
    let c = sim.checker.committed.len();
    if c == 0 {
        return;
    }
    let last = &sim.checker.committed[c - 1];
    let set = codec::last_voters(&sim.checker.committed).unwrap_or_else(|| sim.voters.clone());
    let holders = sim
        .nodes
        .iter()
        .filter(|n| set.contains(&n.id) && n.holds(c as i64 - 1, last))
        .count();
    // Some majority misses it iff the voters without it could form one.
    if set.len() - holders > set.len() / 2 {
        sim.fail(&format!(
            "committed offset {} durable on only {holders} of the voters {set:?}",
            c - 1
        ));
    }
}

/// Every live leader holds every entry committed in its epoch or an earlier one (Raft's
/// leader completeness; a deposed leader that has not noticed yet may lack later commits).
fn check_leader_complete(sim: &Sim) {
    for l in &sim.nodes {
        let Some(core) = l.core.as_ref().filter(|c| c.role() == RoleKind::Leader) else {
            continue;
        };
        let epochs = &sim.checker.commit_epochs;
        let Some(k) = epochs.iter().rposition(|&e| e <= core.epoch()) else {
            continue;
        };
        if (k as i64) >= l.snapshot_end() && l.entry(k as i64) != Some(&sim.checker.committed[k]) {
            sim.fail(&format!(
                "leader {} of epoch {} lacks committed offset {k}",
                l.id,
                core.epoch()
            ));
        }
    }
}
