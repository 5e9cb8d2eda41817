//! The controller side of the broker lifecycle (Kafka's ClusterControlManager.registerBroker and
//! ReplicationControlManager.processBrokerHeartbeat): BrokerRegistration (api 62) writes a
//! RegisterBrokerRecord, BrokerHeartbeat (api 63) drives the [`BrokerLiveness`] table and writes
//! the BrokerRegistrationChangeRecord a fence / unfence / controlled shutdown needs, and
//! [`Controller::fence_stale_brokers`] fences a broker whose session expired.
//!
//! The liveness table is soft state of the active controller. It follows the image: before each
//! decision it is reset when the raft epoch changed (a new leadership starts every session
//! afresh, as Kafka's newly active controller does), learns registrations it has no session
//! for, drops unregistered brokers and takes the fenced flag from the image (the committed
//! truth). Time is passed in by the caller. Fencing a broker or its controlled shutdown moves
//! its leaderships away and takes it out of ISRs in the same batch; unfencing gives leaderless
//! partitions their leader back ([`crate::controller_leaders`]).

use uuid::Uuid;

use crate::broker_liveness::{BrokerLiveness, BrokerState, Heartbeat, HeartbeatError};
use crate::controller::Controller;
use crate::controller_leaders::{elect_leaderless, move_leadership_away};
use crate::error::ControllerError;
use crate::image::{register_broker_record, Endpoint, MetadataImage};
use crate::records::{BrokerRegistrationChangeRecord, MetadataRecord};

/// Kafka's `broker.session.timeout.ms` default.
pub const DEFAULT_BROKER_SESSION_TIMEOUT_MS: u64 = 9000;

/// BrokerRegistrationChangeRecord `Fenced`: FENCE.
const FENCE: i8 = 1;
/// BrokerRegistrationChangeRecord `Fenced`: UNFENCE.
const UNFENCE: i8 = -1;

/// One BrokerRegistration request (api 62), as the controller reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistrationRequest {
    pub broker_id: i32,
    pub cluster_id: String,
    /// Random per broker process start.
    pub incarnation_id: Uuid,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
}

/// The BrokerHeartbeat answer's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub should_shut_down: bool,
}

/// The liveness table and the raft epoch it belongs to.
#[derive(Debug)]
pub(crate) struct Sessions {
    raft_epoch: i32,
    timeout_ms: u64,
    table: BrokerLiveness,
}

impl Sessions {
    pub(crate) fn new(timeout_ms: u64) -> Sessions {
        Sessions {
            raft_epoch: -1,
            timeout_ms,
            table: BrokerLiveness::new(timeout_ms),
        }
    }

    /// Brings the table in line with `image` at raft epoch `raft_epoch` (see the module doc).
    fn sync(&mut self, image: &MetadataImage, raft_epoch: i32, now_ms: u64) {
        if raft_epoch != self.raft_epoch {
            self.raft_epoch = raft_epoch;
            self.table = BrokerLiveness::new(self.timeout_ms);
        }
        for id in self.table.broker_ids() {
            if !image.brokers.contains_key(&id) {
                self.table.remove(id);
            }
        }
        for (id, b) in &image.brokers {
            if self.table.epoch(*id) != Some(b.epoch) {
                self.table.registered(*id, b.epoch, b.fenced, now_ms);
            }
            match self.table.is_fenced(*id) {
                Some(true) if !b.fenced => self.table.unfenced(*id),
                Some(false) if b.fenced => self.table.fenced(*id),
                _ => {}
            }
        }
    }
}

fn change_record(broker_id: i32, epoch: i64, fenced: i8, shutdown: i8) -> MetadataRecord {
    MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        version: if shutdown != 0 { 1 } else { 0 },
        broker_id,
        broker_epoch: epoch,
        fenced,
        in_controlled_shutdown: shutdown,
        log_dirs: Vec::new(),
    })
}

/// A new registration starts fenced (Kafka's `registerBroker`).
fn register_record(req: &BrokerRegistrationRequest, epoch: i64) -> MetadataRecord {
    MetadataRecord::RegisterBroker(register_broker_record(
        req.broker_id,
        req.incarnation_id,
        epoch,
        &req.endpoints,
        req.rack.clone(),
        true,
    ))
}

fn heartbeat_error(e: HeartbeatError) -> ControllerError {
    match e {
        HeartbeatError::NotRegistered(id) => ControllerError::BrokerIdNotRegistered(id),
        HeartbeatError::StaleBrokerEpoch {
            broker_id,
            sent,
            registered,
        } => ControllerError::StaleBrokerEpoch {
            broker_id,
            sent,
            registered,
        },
    }
}

fn leads_partitions(image: &MetadataImage, broker_id: i32) -> bool {
    image
        .topics
        .values()
        .any(|t| t.partitions.values().any(|p| p.leader == broker_id))
}

impl Controller {
    /// Sets `broker.session.timeout.ms` (before the controller is shared).
    pub fn with_broker_session_timeout_ms(self, timeout_ms: u64) -> Controller {
        *self.sessions.lock() = Sessions::new(timeout_ms);
        self
    }

    /// BrokerRegistration: returns the broker epoch. A retry of the same incarnation keeps its
    /// epoch and writes nothing; a new incarnation gets a RegisterBrokerRecord (fenced) whose
    /// epoch is the offset it is written at.
    pub fn register_broker(
        &self,
        req: BrokerRegistrationRequest,
        now_ms: u64,
    ) -> Result<i64, ControllerError> {
        let raft_epoch = self.epoch();
        let epoch = self.write(|image| {
            if req.cluster_id != image.cluster_id {
                return Err(ControllerError::InconsistentClusterId {
                    expected: image.cluster_id.clone(),
                    found: req.cluster_id.clone(),
                });
            }
            let mut sessions = self.sessions.lock();
            sessions.sync(image, raft_epoch, now_ms);
            if let Some(existing) = image.brokers.get(&req.broker_id) {
                if existing.incarnation_id == req.incarnation_id {
                    return Ok((Vec::new(), existing.epoch));
                }
                if sessions.table.has_live_session(req.broker_id, now_ms) {
                    return Err(ControllerError::DuplicateBrokerRegistration(req.broker_id));
                }
            }
            let epoch = self.log_end_offset();
            let mut records = vec![register_record(&req, epoch)];
            // A new incarnation starts fenced: what the old one led waits for it to unfence.
            records.extend(move_leadership_away(image, req.broker_id));
            Ok((records, epoch))
        })?;
        let image = self.image();
        self.sessions.lock().sync(&image, raft_epoch, now_ms);
        Ok(epoch)
    }

    /// BrokerHeartbeat: refreshes the broker's session, writes the fence / unfence /
    /// controlled-shutdown change its state calls for and answers with its new state.
    pub fn broker_heartbeat(
        &self,
        hb: Heartbeat,
        now_ms: u64,
    ) -> Result<HeartbeatReply, ControllerError> {
        let raft_epoch = self.epoch();
        let (outcome, shutdown_at) = self.write(|image| {
            let mut sessions = self.sessions.lock();
            sessions.sync(image, raft_epoch, now_ms);
            let leads = leads_partitions(image, hb.broker_id);
            let outcome = sessions
                .table
                .heartbeat(&hb, leads, now_ms)
                .map_err(heartbeat_error)?;
            let (id, epoch) = (hb.broker_id, hb.broker_epoch);
            let records = match (outcome.current, outcome.next) {
                (BrokerState::Fenced, BrokerState::Unfenced) => {
                    let mut r = vec![change_record(id, epoch, UNFENCE, 0)];
                    r.extend(elect_leaderless(image, id));
                    r
                }
                (BrokerState::Unfenced | BrokerState::ControlledShutdown, BrokerState::Fenced)
                | (
                    BrokerState::Unfenced | BrokerState::ControlledShutdown,
                    BrokerState::ShutdownNow,
                ) => {
                    let mut r = vec![change_record(id, epoch, FENCE, 0)];
                    r.extend(move_leadership_away(image, id));
                    r
                }
                (BrokerState::Unfenced, BrokerState::ControlledShutdown) => {
                    let mut r = vec![change_record(id, epoch, 0, 1)];
                    r.extend(move_leadership_away(image, id));
                    r
                }
                // Partitions it was given meanwhile move too.
                (BrokerState::ControlledShutdown, BrokerState::ControlledShutdown) => {
                    move_leadership_away(image, id)
                }
                _ => Vec::new(),
            };
            let shutdown_at = (outcome.next == BrokerState::ControlledShutdown
                && outcome.current != BrokerState::ControlledShutdown)
                .then(|| self.log_end_offset());
            Ok((records, (outcome, shutdown_at)))
        })?;
        let image = self.image();
        let mut sessions = self.sessions.lock();
        sessions.sync(&image, raft_epoch, now_ms);
        if let Some(offset) = shutdown_at {
            sessions.table.shutting_down(hb.broker_id, offset);
        }
        Ok(HeartbeatReply {
            is_caught_up: outcome.is_caught_up,
            is_fenced: matches!(outcome.next, BrokerState::Fenced | BrokerState::ShutdownNow),
            should_shut_down: outcome.next == BrokerState::ShutdownNow,
        })
    }

    /// Fences one unfenced broker whose session expired (the lowest id), as Kafka fences one
    /// stale broker per controller event. Returns its id, or `None` when every session is live.
    pub fn fence_stale_brokers(&self, now_ms: u64) -> Result<Option<i32>, ControllerError> {
        let raft_epoch = self.epoch();
        let fenced = self.write(|image| {
            let mut sessions = self.sessions.lock();
            sessions.sync(image, raft_epoch, now_ms);
            let Some(id) = sessions.table.next_stale(now_ms) else {
                return Ok((Vec::new(), None));
            };
            let epoch = image.brokers.get(&id).map_or(-1, |b| b.epoch);
            let mut records = vec![change_record(id, epoch, FENCE, 0)];
            records.extend(move_leadership_away(image, id));
            Ok((records, Some(id)))
        })?;
        if let Some(id) = fenced {
            tracing::info!(broker = id, "fenced a broker whose session expired");
            self.sessions.lock().table.fenced(id);
        }
        Ok(fenced)
    }
}

#[cfg(test)]
#[path = "controller_brokers_test.rs"]
mod tests;
