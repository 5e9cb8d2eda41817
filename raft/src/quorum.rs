//! The sans-IO consensus core (KRaft, KIP-595 shaped): a state machine that consumes
//! [`Event`]s and emits [`Command`]s. It never touches a disk or a socket; the controller runs
//! the commands (write `quorum-state`, append to `__cluster_metadata-0`, fsync) and feeds back
//! the outcome as further events.
//!
//! ```text
//!             Start                     votes from a majority
//!  Unattached ───────► Candidate(e+1) ─────────────────────────► Leader(e+1)
//!                      (persist vote)   (single voter: at once)   (persist leader,
//!                                                                  LeaderChange batch)
//!
//!  Leader:  AppendRequested ─► AppendBatch + Flush
//!           Flushed{up_to}   ─► Commit{hw} + Apply(batches below hw)
//! ```
//!
//! The high watermark is the largest offset durable on a majority of voters. With one voter it
//! is the leader's own flushed offset, but only once a batch of the current epoch (the
//! LeaderChange batch) is durable, as Raft requires. Multi-voter support adds events
//! (VoteResponse, FetchRequest from followers, timeouts) and the Follower/Resigned roles; the
//! existing event and command types stay as they are.

use std::collections::{BTreeMap, VecDeque};

use crate::error::RaftError;
use crate::records::MetadataRecord;

/// The persisted election state (`quorum-state`, formats.md §6.6, data_version 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionState {
    pub epoch: i32,
    /// -1 = unknown.
    pub leader_id: i32,
    /// -1 = not voted in this epoch.
    pub voted_id: i32,
    pub voters: Vec<i32>,
}

impl ElectionState {
    /// The compact single-line JSON Kafka writes (no trailing newline).
    pub fn to_json(&self) -> String {
        let voters: Vec<String> = self
            .voters
            .iter()
            .map(|v| format!("{{\"voterId\":{v}}}"))
            .collect();
        format!(
            "{{\"clusterId\":\"\",\"leaderId\":{},\"leaderEpoch\":{},\"votedId\":{},\"appliedOffset\":0,\"currentVoters\":[{}],\"data_version\":0}}",
            self.leader_id,
            self.epoch,
            self.voted_id,
            voters.join(",")
        )
    }

    /// Parses a `quorum-state` file (data_version 0 or 1; voters are read when present).
    pub fn from_json(text: &str) -> Result<ElectionState, String> {
        let int = |key: &str| -> Result<i64, String> {
            json_int(text, key).ok_or_else(|| format!("missing or non-integer \"{key}\""))
        };
        let version = int("data_version")?;
        if !(0..=1).contains(&version) {
            return Err(format!("unsupported data_version {version}"));
        }
        let narrow = |key: &str| -> Result<i32, String> {
            i32::try_from(int(key)?).map_err(|_| format!("\"{key}\" out of range"))
        };
        let mut voters = Vec::new();
        let mut rest = text;
        while let Some(pos) = rest.find("\"voterId\"") {
            rest = &rest[pos..];
            let v = json_int(rest, "voterId").ok_or("bad voterId")?;
            voters.push(i32::try_from(v).map_err(|_| "voterId out of range")?);
            rest = &rest["\"voterId\"".len()..];
        }
        Ok(ElectionState {
            epoch: narrow("leaderEpoch")?,
            leader_id: narrow("leaderId")?,
            voted_id: narrow("votedId")?,
            voters,
        })
    }
}

/// The integer value of the first `"key":` in a flat JSON text.
fn json_int(text: &str, key: &str) -> Option<i64> {
    let pat = format!("\"{key}\"");
    let after = &text[text.find(&pat)? + pat.len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let end = after
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
        .map_or(after.len(), |(i, _)| i);
    after[..end].parse().ok()
}

/// Static quorum membership (kraft.version 0, `controller.quorum.voters`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumConfig {
    pub node_id: i32,
    pub voters: Vec<i32>,
}

/// Where this node stands in the current epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Not started, or no leader known.
    Unattached,
    /// Asking for votes; `granted` holds the voters that said yes (itself included).
    Candidate { granted: Vec<i32> },
    /// Leading; `epoch_start_offset` is the offset of its LeaderChange batch.
    Leader { epoch_start_offset: i64 },
}

/// Inputs to the engine.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The node starts: `stored` is the `quorum-state` file (None if absent), `log_end_offset`
    /// the metadata log's LEO after recovery (everything below it is durable) and
    /// `log_end_epoch` the epoch of its last batch (or snapshot; 0 if none). The new epoch is
    /// one past the larger of the stored and the logged epoch, so a lost `quorum-state` can
    /// never make epochs go backwards.
    Start {
        stored: Option<ElectionState>,
        log_end_offset: i64,
        log_end_epoch: i32,
    },
    /// A client of the metadata log wants these records appended as one atomic batch.
    AppendRequested { records: Vec<MetadataRecord> },
    /// The runtime fsynced the log; every offset below `up_to` is durable.
    Flushed { up_to: i64 },
}

/// The LeaderChangeMessage written at the start of an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderChange {
    pub leader_id: i32,
    pub voters: Vec<i32>,
    pub granting_voters: Vec<i32>,
}

/// What an [`Command::AppendBatch`] carries.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchPayload {
    /// A control batch with one LeaderChange record.
    LeaderChange(LeaderChange),
    /// A data batch of framed metadata records.
    Records(Vec<MetadataRecord>),
}

impl BatchPayload {
    fn record_count(&self) -> i64 {
        match self {
            BatchPayload::LeaderChange(_) => 1,
            BatchPayload::Records(r) => r.len() as i64,
        }
    }
}

/// Outputs of the engine, to be executed in order by the runtime.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Persist the election state (`quorum-state`, tmp + fsync + rename) before going on.
    WriteQuorumState(ElectionState),
    /// Append one batch at `base_offset` (the log's end offset) stamped with `epoch`.
    AppendBatch {
        epoch: i32,
        base_offset: i64,
        payload: BatchPayload,
    },
    /// fsync the log, then report [`Event::Flushed`].
    Flush,
    /// The high watermark moved: offsets below `up_to` are committed.
    Commit { up_to: i64 },
    /// A committed data batch, to be applied to the metadata image.
    Apply {
        epoch: i32,
        base_offset: i64,
        last_offset: i64,
        records: Vec<MetadataRecord>,
    },
}

/// The consensus state machine.
#[derive(Debug)]
pub struct QuorumEngine {
    config: QuorumConfig,
    election: ElectionState,
    role: Role,
    log_end_offset: i64,
    high_watermark: i64,
    /// Durable end offset per voter (only this node's for now).
    durable: BTreeMap<i32, i64>,
    /// Data batches appended in this process but not yet committed.
    uncommitted: VecDeque<(i32, i64, Vec<MetadataRecord>)>,
}

impl QuorumEngine {
    pub fn new(config: QuorumConfig) -> QuorumEngine {
        let voters = config.voters.clone();
        QuorumEngine {
            config,
            election: ElectionState {
                epoch: 0,
                leader_id: -1,
                voted_id: -1,
                voters,
            },
            role: Role::Unattached,
            log_end_offset: 0,
            high_watermark: 0,
            durable: BTreeMap::new(),
            uncommitted: VecDeque::new(),
        }
    }

    pub fn epoch(&self) -> i32 {
        self.election.epoch
    }

    pub fn role(&self) -> &Role {
        &self.role
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Handles one event and returns the commands it produced.
    pub fn handle(&mut self, event: Event) -> Result<Vec<Command>, RaftError> {
        let mut out = Vec::new();
        match event {
            Event::Start {
                stored,
                log_end_offset,
                log_end_epoch,
            } => {
                let last_epoch = stored.map_or(0, |s| s.epoch).max(log_end_epoch);
                self.start(last_epoch, log_end_offset, &mut out)?
            }
            Event::AppendRequested { records } => {
                if !self.is_leader() {
                    return Err(RaftError::Quorum(format!(
                        "node {} is not the leader of epoch {}",
                        self.config.node_id, self.election.epoch
                    )));
                }
                self.append(BatchPayload::Records(records), &mut out);
            }
            Event::Flushed { up_to } => self.flushed(up_to, &mut out),
        }
        Ok(out)
    }

    fn start(
        &mut self,
        last_epoch: i32,
        log_end_offset: i64,
        out: &mut Vec<Command>,
    ) -> Result<(), RaftError> {
        if self.role != Role::Unattached {
            return Err(RaftError::Quorum("started twice".into()));
        }
        if !self.config.voters.contains(&self.config.node_id) {
            return Err(RaftError::Quorum(format!(
                "node {} is not one of the voters {:?}; only voters are supported",
                self.config.node_id, self.config.voters
            )));
        }
        self.log_end_offset = log_end_offset;
        self.high_watermark = 0;
        self.durable.insert(self.config.node_id, log_end_offset);
        self.become_candidate(last_epoch + 1, out);
        Ok(())
    }

    fn become_candidate(&mut self, epoch: i32, out: &mut Vec<Command>) {
        let me = self.config.node_id;
        self.election = ElectionState {
            epoch,
            leader_id: -1,
            voted_id: me,
            voters: self.config.voters.clone(),
        };
        out.push(Command::WriteQuorumState(self.election.clone()));
        self.role = Role::Candidate { granted: vec![me] };
        self.maybe_become_leader(out);
    }

    fn maybe_become_leader(&mut self, out: &mut Vec<Command>) {
        let Role::Candidate { granted } = &self.role else {
            return;
        };
        if granted.len() * 2 <= self.config.voters.len() {
            return;
        }
        let granting_voters = granted.clone();
        self.election.leader_id = self.config.node_id;
        self.election.voted_id = -1;
        out.push(Command::WriteQuorumState(self.election.clone()));
        self.role = Role::Leader {
            epoch_start_offset: self.log_end_offset,
        };
        let change = LeaderChange {
            leader_id: self.config.node_id,
            voters: self.config.voters.clone(),
            granting_voters,
        };
        self.append(BatchPayload::LeaderChange(change), out);
    }

    fn append(&mut self, payload: BatchPayload, out: &mut Vec<Command>) {
        let base_offset = self.log_end_offset;
        let n = payload.record_count();
        if n == 0 {
            return;
        }
        self.log_end_offset += n;
        if let BatchPayload::Records(records) = &payload {
            self.uncommitted
                .push_back((self.election.epoch, base_offset, records.clone()));
        }
        out.push(Command::AppendBatch {
            epoch: self.election.epoch,
            base_offset,
            payload,
        });
        out.push(Command::Flush);
    }

    fn flushed(&mut self, up_to: i64, out: &mut Vec<Command>) {
        let me = self.config.node_id;
        let durable = self.durable.entry(me).or_insert(0);
        *durable = (*durable).max(up_to.min(self.log_end_offset));
        let Role::Leader { epoch_start_offset } = self.role else {
            return;
        };
        // The offset durable on a majority: sort voters' offsets descending, take the middle.
        let mut offsets: Vec<i64> = self
            .config
            .voters
            .iter()
            .map(|v| self.durable.get(v).copied().unwrap_or(0))
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let majority = offsets[self.config.voters.len() / 2];
        if majority <= epoch_start_offset || majority <= self.high_watermark {
            return;
        }
        self.high_watermark = majority;
        out.push(Command::Commit { up_to: majority });
        while let Some((epoch, base, records)) = self.uncommitted.front() {
            let last = base + records.len() as i64 - 1;
            if last >= majority {
                break;
            }
            out.push(Command::Apply {
                epoch: *epoch,
                base_offset: *base,
                last_offset: last,
                records: records.clone(),
            });
            self.uncommitted.pop_front();
        }
    }
}

#[cfg(test)]
#[path = "quorum_test.rs"]
mod tests;
