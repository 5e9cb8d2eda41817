//! The active controller's soft state about broker liveness (Kafka's broker heartbeat manager):
//! when each registered broker last sent a heartbeat, whether it is fenced, how far it has
//! applied the metadata log, and where it stands in a controlled shutdown. None of this is in
//! the metadata log: a newly active controller starts every session afresh, so after a
//! failover a dead broker is fenced one session timeout later than it would have been.
//!
//! ```text
//!   Fenced ──heartbeat: !want_fence, caught up to its registration──► Unfenced
//!     │  ▲                                                            │  │  │
//!     │  └──────────── want_fence, or session expired ────────────────┘  │  │ want_shutdown
//!     │                                                                  │  ▼ and leads partitions
//!     └── want_shutdown ──► ShutdownNow ◄── leads nothing ──────────── ControlledShutdown
//!                                ▲                                        │
//!                                └── leads nothing and every active ──────┘
//!                                    broker applied past its shutdown offset
//! ```
//!
//! [`BrokerLiveness::heartbeat`] decides the next state; the caller writes the metadata record
//! the change needs (BrokerRegistrationChangeRecord: fence, unfence, in controlled shutdown),
//! then reports it back ([`BrokerLiveness::fenced`], [`BrokerLiveness::unfenced`],
//! [`BrokerLiveness::shutting_down`]). Time is passed in, never read. The map is keyed by
//! registered broker ids only (a registration is a committed record), so it is bounded by the
//! cluster's brokers.

use std::collections::BTreeMap;

/// Where a broker stands, as the controller sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerState {
    /// Registered but not serving: it leads and follows nothing.
    Fenced,
    /// Serving.
    Unfenced,
    /// Leaving: its leaderships are being moved away.
    ControlledShutdown,
    /// May stop now.
    ShutdownNow,
}

/// One BrokerHeartbeat request (api 63), as the controller reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// The last metadata offset the broker has applied.
    pub current_metadata_offset: i64,
    pub want_fence: bool,
    pub want_shutdown: bool,
}

/// What the controller answers and must write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    /// The state before this heartbeat and the state it leads to. A change from `Fenced` to
    /// `Unfenced`, from `Unfenced` to `Fenced` or `ControlledShutdown` needs a record.
    pub current: BrokerState,
    pub next: BrokerState,
    /// The broker has applied the metadata log up to its own registration.
    pub is_caught_up: bool,
}

/// Why a heartbeat is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    /// No registration for this broker id (BROKER_ID_NOT_REGISTERED, 102).
    #[error("broker {0} is not registered")]
    NotRegistered(i32),
    /// The heartbeat names another incarnation's epoch (STALE_BROKER_EPOCH, 77).
    #[error("broker {broker_id} sent epoch {sent}; its registration has epoch {registered}")]
    StaleBrokerEpoch {
        broker_id: i32,
        sent: i64,
        registered: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Session {
    /// The broker epoch: the offset of its RegisterBrokerRecord.
    epoch: i64,
    last_contact_ms: u64,
    fenced: bool,
    /// The last metadata offset it reported (-1: none yet).
    applied: i64,
    /// Set while in controlled shutdown: it may stop once every active broker applied this.
    shutdown_offset: Option<i64>,
}

impl Session {
    fn state(&self) -> BrokerState {
        if self.shutdown_offset.is_some() {
            BrokerState::ControlledShutdown
        } else if self.fenced {
            BrokerState::Fenced
        } else {
            BrokerState::Unfenced
        }
    }

    fn active(&self) -> bool {
        !self.fenced && self.shutdown_offset.is_none()
    }
}

/// Liveness of every registered broker (`broker.session.timeout.ms`).
#[derive(Clone, Debug)]
pub struct BrokerLiveness {
    session_timeout_ms: u64,
    sessions: BTreeMap<i32, Session>,
}

impl BrokerLiveness {
    /// An empty table; Kafka's `broker.session.timeout.ms` default is 9000.
    pub fn new(session_timeout_ms: u64) -> BrokerLiveness {
        BrokerLiveness {
            session_timeout_ms,
            sessions: BTreeMap::new(),
        }
    }

    /// A registration was committed (new incarnation: a new `epoch`), or this controller became
    /// active and learns of it from the image: the session starts now.
    pub fn registered(&mut self, broker_id: i32, epoch: i64, fenced: bool, now_ms: u64) {
        let session = Session {
            epoch,
            last_contact_ms: now_ms,
            fenced,
            applied: -1,
            shutdown_offset: None,
        };
        match self.sessions.get_mut(&broker_id) {
            Some(s) if s.epoch == epoch => {
                s.last_contact_ms = now_ms;
                s.fenced = fenced;
            }
            _ => {
                self.sessions.insert(broker_id, session);
            }
        }
    }

    /// The broker was unregistered (or its topic of registration removed).
    pub fn remove(&mut self, broker_id: i32) {
        self.sessions.remove(&broker_id);
    }

    /// A heartbeat arrived: refreshes the session and decides the next state. `leads_partitions`
    /// says whether the broker still leads any partition.
    pub fn heartbeat(
        &mut self,
        hb: &Heartbeat,
        leads_partitions: bool,
        now_ms: u64,
    ) -> Result<HeartbeatOutcome, HeartbeatError> {
        let lowest_active = self.lowest_active_offset();
        let s = self
            .sessions
            .get_mut(&hb.broker_id)
            .ok_or(HeartbeatError::NotRegistered(hb.broker_id))?;
        if s.epoch != hb.broker_epoch {
            return Err(HeartbeatError::StaleBrokerEpoch {
                broker_id: hb.broker_id,
                sent: hb.broker_epoch,
                registered: s.epoch,
            });
        }
        s.last_contact_ms = now_ms;
        s.applied = s.applied.max(hb.current_metadata_offset);
        let is_caught_up = hb.current_metadata_offset >= s.epoch;
        let current = s.state();
        let next = match current {
            BrokerState::Fenced if hb.want_shutdown => BrokerState::ShutdownNow,
            BrokerState::Fenced if !hb.want_fence && is_caught_up => BrokerState::Unfenced,
            BrokerState::Fenced => BrokerState::Fenced,
            BrokerState::Unfenced if hb.want_fence && hb.want_shutdown => BrokerState::ShutdownNow,
            BrokerState::Unfenced if hb.want_fence => BrokerState::Fenced,
            BrokerState::Unfenced if hb.want_shutdown && leads_partitions => {
                BrokerState::ControlledShutdown
            }
            BrokerState::Unfenced if hb.want_shutdown => BrokerState::ShutdownNow,
            BrokerState::Unfenced => BrokerState::Unfenced,
            BrokerState::ControlledShutdown => {
                let done = s.shutdown_offset.is_some_and(|at| at <= lowest_active);
                if !leads_partitions && done {
                    BrokerState::ShutdownNow
                } else {
                    BrokerState::ControlledShutdown
                }
            }
            BrokerState::ShutdownNow => BrokerState::ShutdownNow,
        };
        Ok(HeartbeatOutcome {
            current,
            next,
            is_caught_up,
        })
    }

    /// The lowest metadata offset applied by an active broker (unfenced, not shutting down);
    /// `i64::MAX` when there is none.
    fn lowest_active_offset(&self) -> i64 {
        self.sessions
            .values()
            .filter(|s| s.active())
            .map(|s| s.applied)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// The record fencing the broker was committed: it leaves controlled shutdown too.
    pub fn fenced(&mut self, broker_id: i32) {
        if let Some(s) = self.sessions.get_mut(&broker_id) {
            s.fenced = true;
            s.shutdown_offset = None;
        }
    }

    /// The record unfencing the broker was committed.
    pub fn unfenced(&mut self, broker_id: i32) {
        if let Some(s) = self.sessions.get_mut(&broker_id) {
            s.fenced = false;
        }
    }

    /// The broker entered controlled shutdown; it may stop once every active broker applied
    /// `offset` (the end of the records that moved its leaderships). Kept from the first call.
    pub fn shutting_down(&mut self, broker_id: i32, offset: i64) {
        if let Some(s) = self.sessions.get_mut(&broker_id) {
            if !s.fenced && s.shutdown_offset.is_none() {
                s.shutdown_offset = Some(offset);
            }
        }
    }

    /// One unfenced broker whose session expired (the lowest id), to fence now. Kafka fences
    /// one stale broker per controller event, so that one slow pass never fences many at once.
    pub fn next_stale(&self, now_ms: u64) -> Option<i32> {
        self.sessions
            .iter()
            .find(|(_, s)| {
                !s.fenced && now_ms.saturating_sub(s.last_contact_ms) > self.session_timeout_ms
            })
            .map(|(id, _)| *id)
    }

    /// The epoch of the broker's session, if it has one.
    pub fn epoch(&self, broker_id: i32) -> Option<i64> {
        self.sessions.get(&broker_id).map(|s| s.epoch)
    }

    /// Whether the broker is fenced in this table (`None`: no session).
    pub fn is_fenced(&self, broker_id: i32) -> Option<bool> {
        self.sessions.get(&broker_id).map(|s| s.fenced)
    }

    /// Whether the broker holds a live session: unfenced and heard from within the session
    /// timeout (a new incarnation may not register over one: DUPLICATE_BROKER_REGISTRATION).
    pub fn has_live_session(&self, broker_id: i32, now_ms: u64) -> bool {
        self.sessions.get(&broker_id).is_some_and(|s| {
            !s.fenced && now_ms.saturating_sub(s.last_contact_ms) <= self.session_timeout_ms
        })
    }

    /// The ids of every broker with a session.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.sessions.keys().copied().collect()
    }

    /// The broker's state, if registered.
    pub fn state(&self, broker_id: i32) -> Option<BrokerState> {
        self.sessions.get(&broker_id).map(Session::state)
    }
}

#[cfg(test)]
#[path = "broker_liveness_test.rs"]
mod tests;
