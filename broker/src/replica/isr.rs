//! A leader's view of its followers (Kafka's `Partition` leader state): each follower's log end
//! offset as its fetches report it and when it was last caught up, the committed ISR and at
//! most one ISR change in flight to the controller, and from these the high watermark and the
//! ISR changes to ask for.
//!
//! Pure bookkeeping over offsets and times passed in: no logs, no clock, no I/O, so every rule
//! is tested on its own.
//!
//! * **High watermark**: the lowest log end offset among the leader and the *maximal* ISR (the
//!   committed ISR plus a pending expansion; a pending shrink still counts the leaving member
//!   until the controller confirms it). It does not move at all while the ISR is below
//!   `min(min.insync.replicas, replicas)` (Kafka 4's strict min ISR).
//! * **Caught up**: a fetch at or past the leader's log end offset of this fetch, or of the
//!   previous one, marks the follower caught up as of that fetch.
//! * **Expand**: a follower outside the ISR whose log end reaches the high watermark and the
//!   start of the leader's epoch joins. **Shrink**: an ISR member not caught up for
//!   `replica.lag.time.max.ms` leaves.

use std::collections::HashMap;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Follower {
    /// Its log end offset: the offset of its last fetch (-1 before any in this epoch).
    leo: i64,
    /// When it was last caught up with the leader.
    caught_up_ms: i64,
    /// The leader's log end offset and the time at its previous fetch.
    previous_fetch: (i64, i64),
}

/// An ISR change sent to the controller and not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingIsr {
    /// The ISR asked for.
    pub isr: Vec<i32>,
}

/// The leader-side replication state of one partition.
#[derive(Debug, Clone)]
pub struct LeaderView {
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    pending: Option<PendingIsr>,
    followers: HashMap<i32, Follower>,
    /// The leader's log end offset when its epoch began.
    epoch_start: i64,
    min_isr: usize,
}

impl LeaderView {
    /// A new leadership of broker `leader` over `replicas` with the committed `isr`, starting at
    /// log end offset `leo` at `now_ms`. ISR members count as caught up as of now, as in Kafka.
    pub fn new(
        leader: i32,
        replicas: &[i32],
        isr: &[i32],
        leo: i64,
        min_isr: i32,
        now_ms: i64,
    ) -> LeaderView {
        let followers = replicas
            .iter()
            .filter(|&&r| r != leader)
            .map(|&r| {
                let caught_up_ms = if isr.contains(&r) { now_ms } else { 0 };
                let f = Follower {
                    leo: -1,
                    caught_up_ms,
                    previous_fetch: (-1, 0),
                };
                (r, f)
            })
            .collect();
        LeaderView {
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            pending: None,
            followers,
            epoch_start: leo,
            min_isr: min_isr.max(1) as usize,
        }
    }

    /// The committed ISR.
    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    /// The replica set.
    pub fn replicas(&self) -> &[i32] {
        &self.replicas
    }

    /// Whether an ISR change is in flight.
    pub fn pending(&self) -> Option<&PendingIsr> {
        self.pending.as_ref()
    }

    /// Sets `min.insync.replicas` (its topic config may change while leading).
    pub fn set_min_isr(&mut self, min_isr: i32) {
        self.min_isr = min_isr.max(1) as usize;
    }

    /// The ISR the metadata (or the controller's answer) now holds; ends a pending change.
    pub fn set_isr(&mut self, isr: &[i32]) {
        for (&id, f) in self.followers.iter_mut() {
            if isr.contains(&id) && !self.isr.contains(&id) && f.caught_up_ms == 0 {
                f.caught_up_ms = f.previous_fetch.1;
            }
        }
        self.isr = isr.to_vec();
        self.pending = None;
    }

    /// Records an ISR change sent to the controller.
    pub fn set_pending(&mut self, isr: Vec<i32>) {
        self.pending = Some(PendingIsr { isr });
    }

    /// Forgets a pending change the controller refused, keeping the committed ISR.
    pub fn clear_pending(&mut self) {
        self.pending = None;
    }

    /// The committed ISR plus a pending expansion.
    fn maximal_isr(&self) -> impl Iterator<Item = i32> + '_ {
        let extra = self.pending.iter().flat_map(|p| p.isr.iter().copied());
        let extra = extra.filter(|r| !self.isr.contains(r));
        self.isr.iter().copied().chain(extra)
    }

    /// A follower's fetch at `fetch_offset` while the leader's log end is `leader_leo`.
    /// Returns false for a broker that is not a follower of this partition.
    pub fn record_fetch(
        &mut self,
        follower: i32,
        fetch_offset: i64,
        leader_leo: i64,
        now_ms: i64,
    ) -> bool {
        let Some(f) = self.followers.get_mut(&follower) else {
            return false;
        };
        if fetch_offset >= leader_leo {
            f.caught_up_ms = f.caught_up_ms.max(now_ms);
        } else if fetch_offset >= f.previous_fetch.0 && f.previous_fetch.0 >= 0 {
            f.caught_up_ms = f.caught_up_ms.max(f.previous_fetch.1);
        }
        f.leo = fetch_offset;
        f.previous_fetch = (leader_leo, now_ms);
        true
    }

    /// Whether the committed ISR meets `min(min.insync.replicas, replicas)`.
    pub fn enough_in_sync(&self) -> bool {
        self.isr.len() >= self.min_isr.min(self.replicas.len().max(1))
    }

    /// Whether the maximal ISR meets the min ISR (for an acks=all produce that completed).
    pub fn enough_in_maximal_isr(&self) -> bool {
        self.maximal_isr().count() >= self.min_isr.min(self.replicas.len().max(1))
    }

    /// The high watermark the followers allow, given the leader's log end `leader_leo`;
    /// `None` while the ISR is below the min ISR.
    pub fn high_watermark(&self, leader_leo: i64) -> Option<i64> {
        if !self.enough_in_sync() {
            return None;
        }
        let mut hw = leader_leo;
        for r in self.maximal_isr().filter(|&r| r != self.leader) {
            let leo = self.followers.get(&r).map_or(-1, |f| f.leo);
            hw = hw.min(leo);
        }
        (hw >= 0).then_some(hw)
    }

    /// The ISR to ask for when a follower has caught up: every follower outside the ISR whose
    /// log end reached `hw` and the start of this epoch joins. `eligible` says whether a broker
    /// may join (registered, unfenced, not shutting down).
    pub fn expansion(&self, hw: i64, eligible: impl Fn(i32) -> bool) -> Option<Vec<i32>> {
        if self.pending.is_some() {
            return None;
        }
        let joining: Vec<i32> = self
            .replicas
            .iter()
            .copied()
            .filter(|r| !self.isr.contains(r) && *r != self.leader)
            .filter(|r| {
                let leo = self.followers.get(r).map_or(-1, |f| f.leo);
                leo >= hw && leo >= self.epoch_start && eligible(*r)
            })
            .collect();
        if joining.is_empty() {
            return None;
        }
        let mut isr = self.isr.clone();
        isr.extend(joining);
        Some(isr)
    }

    /// The ISR to ask for when members lag: every follower in the ISR not caught up within
    /// `lag_ms` of `now_ms` leaves (the leader always stays).
    pub fn shrink(&self, now_ms: i64, lag_ms: i64) -> Option<Vec<i32>> {
        if self.pending.is_some() {
            return None;
        }
        let isr: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|&r| {
                r == self.leader
                    || self
                        .followers
                        .get(&r)
                        .is_some_and(|f| now_ms - f.caught_up_ms <= lag_ms)
            })
            .collect();
        (isr.len() < self.isr.len()).then_some(isr)
    }
}

#[cfg(test)]
mod tests {
    use super::LeaderView;

    fn view(isr: &[i32], min_isr: i32) -> LeaderView {
        LeaderView::new(1, &[1, 2, 3], isr, 10, min_isr, 1_000)
    }

    #[test]
    fn the_high_watermark_is_the_lowest_leo_of_the_isr() {
        let mut v = view(&[1, 2, 3], 1);
        assert_eq!(v.high_watermark(15), None, "no follower has fetched yet");
        v.record_fetch(2, 12, 15, 1_010);
        v.record_fetch(3, 14, 15, 1_010);
        assert_eq!(v.high_watermark(15), Some(12));
        v.record_fetch(2, 15, 15, 1_020);
        assert_eq!(v.high_watermark(15), Some(14));
        assert!(!v.record_fetch(9, 15, 15, 1_020), "not a replica");
    }

    #[test]
    fn a_pending_expansion_counts_and_a_pending_shrink_does_not_yet() {
        let mut v = view(&[1, 2], 1);
        v.record_fetch(2, 15, 15, 1_010);
        v.record_fetch(3, 11, 15, 1_010);
        assert_eq!(v.high_watermark(15), Some(15));
        v.set_pending(vec![1, 2, 3]);
        assert_eq!(
            v.high_watermark(15),
            Some(11),
            "the joining member holds it back"
        );
        v.set_isr(&[1, 2]);
        v.set_pending(vec![1]);
        assert_eq!(
            v.high_watermark(15),
            Some(15),
            "2 still counts until confirmed"
        );
    }

    #[test]
    fn under_min_isr_the_high_watermark_stays() {
        let mut v = view(&[1], 2);
        assert_eq!(v.high_watermark(15), None);
        assert!(!v.enough_in_sync());
        v.set_isr(&[1, 2]);
        v.record_fetch(2, 15, 15, 1_010);
        assert_eq!(v.high_watermark(15), Some(15));
        // min ISR is capped at the replica count.
        let v = LeaderView::new(1, &[1], &[1], 3, 2, 0);
        assert_eq!(v.high_watermark(3), Some(3));
    }

    #[test]
    fn followers_join_once_caught_up_with_the_hw_and_the_epoch_start() {
        let mut v = view(&[1], 1);
        v.record_fetch(2, 9, 15, 1_010);
        assert_eq!(v.expansion(5, |_| true), None, "below the epoch start (10)");
        v.record_fetch(2, 12, 15, 1_020);
        v.record_fetch(3, 15, 15, 1_020);
        assert_eq!(v.expansion(13, |_| true), Some(vec![1, 3]));
        assert_eq!(v.expansion(12, |r| r != 3), Some(vec![1, 2]));
        v.set_pending(vec![1, 2, 3]);
        assert_eq!(v.expansion(12, |_| true), None, "one change in flight");
    }

    #[test]
    fn members_that_stop_catching_up_leave() {
        let mut v = view(&[1, 2, 3], 1);
        assert_eq!(v.shrink(30_000, 30_000), None);
        // 2 keeps up; 3 fetches but stays behind the leader's end.
        for t in [2_000, 20_000, 40_000] {
            v.record_fetch(2, 15, 15, t);
            v.record_fetch(3, 11, 15, t);
        }
        assert_eq!(v.shrink(20_000, 30_000), None);
        assert_eq!(
            v.shrink(40_000, 30_000),
            Some(vec![1, 2]),
            "3 last caught up at 1 000"
        );
        // The previous fetch's end counts: reaching it later marks that time.
        v.record_fetch(3, 15, 20, 41_000);
        assert_eq!(v.shrink(41_000, 1_500), None);
    }
}
