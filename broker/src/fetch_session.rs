//! KIP-227 incremental fetch sessions.
//!
//! ```text
//!  session_id  epoch   meaning
//!  0           0       full fetch; open a session if a slot is free (its id goes back to the client)
//!  0           -1      full fetch, no session (librdkafka and older clients)
//!  N           -1      close session N; full fetch, no session
//!  N           k>0     incremental: the request carries only changed partitions (+ forgotten ones);
//!                      the response carries only partitions with news (records, an error, or a
//!                      moved high watermark / log start offset)
//! ```
//! Sessions are keyed by topic name and partition; v13+ clients name topics by id, which the
//! handler resolves to names before calling in here. The least recently used session is evicted
//! when the cache is full.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One partition a fetch asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchTarget {
    /// Topic name.
    pub topic: String,
    /// Topic id (echoed to v13+ clients).
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Offset to read from.
    pub fetch_offset: i64,
    /// Per-partition byte limit.
    pub max_bytes: i32,
    /// The client's view of the leader epoch (-1 = unknown).
    pub current_leader_epoch: i32,
    /// A follower's epoch of its last fetched batch (v12+; -1 = none).
    pub last_fetched_epoch: i32,
}

/// What the client last heard about a partition, to decide whether an incremental response
/// must mention it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reported {
    /// High watermark last sent.
    pub high_watermark: i64,
    /// Log start offset last sent.
    pub log_start_offset: i64,
}

#[derive(Debug)]
struct Session {
    next_epoch: i32,
    partitions: BTreeMap<(String, i32), (FetchTarget, Option<Reported>)>,
    last_used: u64,
}

/// Why a session request is refused (top-level Fetch error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// FETCH_SESSION_ID_NOT_FOUND (70).
    NotFound,
    /// INVALID_FETCH_SESSION_EPOCH (71).
    InvalidEpoch,
}

/// The partitions to read for one Fetch request and how to report them.
#[derive(Debug)]
pub struct SessionPlan {
    /// Session id for the response (0 = none).
    pub session_id: i32,
    /// True for incremental fetches: only partitions with news are reported.
    pub incremental: bool,
    /// Every partition to read, in the session's order.
    pub targets: Vec<(FetchTarget, Option<Reported>)>,
}

/// The broker's session cache.
#[derive(Debug)]
pub struct FetchSessions {
    slots: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: i32,
    tick: u64,
    sessions: HashMap<i32, Session>,
}

impl FetchSessions {
    /// A cache with room for `slots` sessions (0 disables sessions).
    pub fn new(slots: usize) -> Self {
        FetchSessions {
            slots,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Resolves a request into the partitions to read.
    pub fn plan(
        &self,
        session_id: i32,
        epoch: i32,
        requested: Vec<FetchTarget>,
        forgotten: &[(String, i32)],
    ) -> Result<SessionPlan, SessionError> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if epoch == -1 || epoch == 0 {
            if session_id != 0 {
                inner.sessions.remove(&session_id);
            }
            let full = requested.into_iter().map(|t| (t, None)).collect::<Vec<_>>();
            let new_id = if epoch == 0 && session_id == 0 && self.slots > 0 {
                self.open(&mut inner, &full, tick)
            } else {
                0
            };
            return Ok(SessionPlan {
                session_id: new_id,
                incremental: false,
                targets: full,
            });
        }
        let session = inner
            .sessions
            .get_mut(&session_id)
            .ok_or(SessionError::NotFound)?;
        if session.next_epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used = tick;
        for key in forgotten {
            session.partitions.remove(key);
        }
        for t in requested {
            let key = (t.topic.clone(), t.partition);
            let reported = session.partitions.get(&key).and_then(|(_, r)| *r);
            session.partitions.insert(key, (t, reported));
        }
        Ok(SessionPlan {
            session_id,
            incremental: true,
            targets: session.partitions.values().cloned().collect(),
        })
    }

    /// Remembers what was reported for each partition of a session.
    pub fn record(&self, session_id: i32, reports: &[(String, i32, Reported)]) {
        if session_id == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(s) = inner.sessions.get_mut(&session_id) {
            for (topic, partition, r) in reports {
                if let Some(entry) = s.partitions.get_mut(&(topic.clone(), *partition)) {
                    entry.1 = Some(*r);
                }
            }
        }
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn open(
        &self,
        inner: &mut Inner,
        targets: &[(FetchTarget, Option<Reported>)],
        tick: u64,
    ) -> i32 {
        if inner.sessions.len() >= self.slots {
            let oldest = inner
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                inner.sessions.remove(&id);
            }
        }
        let id = loop {
            inner.next_id = inner.next_id.wrapping_add(1);
            if inner.next_id > 0 && !inner.sessions.contains_key(&inner.next_id) {
                break inner.next_id;
            }
        };
        let partitions = targets
            .iter()
            .map(|(t, r)| ((t.topic.clone(), t.partition), (t.clone(), *r)))
            .collect();
        inner.sessions.insert(
            id,
            Session {
                next_epoch: 1,
                partitions,
                last_used: tick,
            },
        );
        id
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(p: i32, offset: i64) -> FetchTarget {
        FetchTarget {
            last_fetched_epoch: -1,
            topic: "t".into(),
            topic_id: Uuid::nil(),
            partition: p,
            fetch_offset: offset,
            max_bytes: 1024,
            current_leader_epoch: -1,
        }
    }

    #[test]
    fn sessionless_fetch_opens_nothing() {
        let s = FetchSessions::new(10);
        let plan = s.plan(0, -1, vec![target(0, 0)], &[]).unwrap();
        assert_eq!(plan.session_id, 0);
        assert!(!plan.incremental);
        assert!(s.is_empty());
    }

    #[test]
    fn incremental_session_keeps_partitions_and_checks_epochs() {
        let s = FetchSessions::new(10);
        let full = s.plan(0, 0, vec![target(0, 0), target(1, 0)], &[]).unwrap();
        assert!(full.session_id > 0);
        let id = full.session_id;
        // Epoch 1 with only partition 1 moved: both partitions are still read.
        let inc = s.plan(id, 1, vec![target(1, 5)], &[]).unwrap();
        assert!(inc.incremental);
        assert_eq!(inc.targets.len(), 2);
        assert_eq!(inc.targets[1].0.fetch_offset, 5);
        // Replaying epoch 1 is refused; unknown ids too.
        assert_eq!(
            s.plan(id, 1, vec![], &[]).unwrap_err(),
            SessionError::InvalidEpoch
        );
        assert_eq!(
            s.plan(id + 7, 1, vec![], &[]).unwrap_err(),
            SessionError::NotFound
        );
        // Forgetting a partition removes it.
        let inc = s.plan(id, 2, vec![], &[("t".into(), 0)]).unwrap();
        assert_eq!(inc.targets.len(), 1);
        // Closing.
        let closed = s.plan(id, -1, vec![], &[]).unwrap();
        assert_eq!(closed.session_id, 0);
        assert!(s.is_empty());
    }

    #[test]
    fn full_cache_evicts_least_recently_used() {
        let s = FetchSessions::new(1);
        let a = s.plan(0, 0, vec![target(0, 0)], &[]).unwrap().session_id;
        let b = s.plan(0, 0, vec![target(0, 0)], &[]).unwrap().session_id;
        assert_ne!(a, b);
        assert_eq!(
            s.plan(a, 1, vec![], &[]).unwrap_err(),
            SessionError::NotFound
        );
        assert!(s.plan(b, 1, vec![], &[]).is_ok());
    }
}
