//! Where requests wait on partitions: the delayed-operation purgatory.
//!
//! Each partition publishes its [`Progress`] (log end offset and high watermark) through a
//! [`ProgressWatch`], a `tokio::sync::watch` channel. A request that must wait — a long-polling
//! Fetch today, a produce waiting for the high watermark once partitions replicate — holds a
//! [`Waiter`]: one receiver per partition it names. Receivers live inside the waiting request and
//! are dropped with it, so a completed wait leaves nothing behind; what waiting costs is bounded
//! by the requests in flight times the partitions each names, whatever the partitions' traffic.
//!
//! No wake-up is lost: a receiver remembers the last version it saw, so progress published
//! between [`Waiter::mark_seen`] and [`Waiter::wait_until`] ends the wait at once.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tokio::sync::watch;
use tokio::time::Instant;

/// How far a partition has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The next offset to be appended.
    pub log_end_offset: i64,
    /// The offset below which records are committed (visible to consumers).
    pub high_watermark: i64,
    /// Set when the partition is gone from this broker; waiters re-read and find out why.
    pub closed: bool,
}

/// The sending side, owned by a partition.
#[derive(Debug)]
pub struct ProgressWatch {
    tx: watch::Sender<Progress>,
}

impl ProgressWatch {
    /// A watch starting at `initial`.
    pub fn new(initial: Progress) -> ProgressWatch {
        ProgressWatch {
            tx: watch::Sender::new(initial),
        }
    }

    /// Publishes new progress; waiters wake only when it differs from the last published.
    pub fn publish(&self, progress: Progress) {
        self.tx.send_if_modified(|cur| {
            let changed = *cur != progress;
            *cur = progress;
            changed
        });
    }

    /// Wakes every waiter without new progress, so it re-checks the partition (its role
    /// changed).
    pub fn wake(&self) {
        self.tx.send_modify(|_| {});
    }

    /// Marks the partition gone, waking every waiter.
    pub fn close(&self) {
        self.tx.send_modify(|p| p.closed = true);
    }

    /// The last published progress.
    pub fn current(&self) -> Progress {
        *self.tx.borrow()
    }

    /// How many waiters hold a receiver now (for tests and metrics).
    pub fn waiters(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// What one waiting request watches.
#[derive(Debug, Default)]
pub struct Waiter {
    receivers: Vec<watch::Receiver<Progress>>,
}

impl Waiter {
    /// An empty waiter.
    pub fn new() -> Waiter {
        Waiter::default()
    }

    /// Adds a partition; progress it publishes from now on ends the wait.
    pub fn watch(&mut self, watch: &ProgressWatch) {
        self.receivers.push(watch.tx.subscribe());
    }

    /// Marks everything published so far as seen. Call it before reading the partitions, so
    /// progress made during the read still ends the next wait.
    pub fn mark_seen(&mut self) {
        for rx in &mut self.receivers {
            rx.borrow_and_update();
        }
    }

    /// Waits until a watched partition publishes progress not yet seen (true) or `deadline`
    /// passes (false).
    pub async fn wait_until(&mut self, deadline: Instant) -> bool {
        if self.receivers.is_empty() {
            tokio::time::sleep_until(deadline).await;
            return false;
        }
        let mut changes: Vec<Pin<Box<_>>> = self
            .receivers
            .iter_mut()
            .map(|rx| Box::pin(rx.changed()))
            .collect();
        let any = std::future::poll_fn(|cx| {
            // A closed sender (partition dropped) also ends the wait: the caller re-reads.
            if changes.iter_mut().any(|c| c.as_mut().poll(cx).is_ready()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        tokio::time::timeout_at(deadline, any).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(leo: i64) -> Progress {
        Progress {
            log_end_offset: leo,
            high_watermark: leo,
            closed: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn progress_published_after_mark_seen_ends_the_wait() {
        let w = ProgressWatch::new(at(0));
        let mut waiter = Waiter::new();
        waiter.watch(&w);
        waiter.mark_seen();
        w.publish(at(1)); // between the read and the wait
        assert!(
            waiter
                .wait_until(Instant::now() + Duration::from_secs(5))
                .await
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_progress_does_not_wake() {
        let w = ProgressWatch::new(at(3));
        let mut waiter = Waiter::new();
        waiter.watch(&w);
        waiter.mark_seen();
        w.publish(at(3));
        let start = Instant::now();
        assert!(!waiter.wait_until(start + Duration::from_millis(500)).await);
        assert_eq!(Instant::now() - start, Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn any_partition_wakes_and_close_wakes() {
        let (a, b) = (ProgressWatch::new(at(0)), ProgressWatch::new(at(0)));
        let mut waiter = Waiter::new();
        waiter.watch(&a);
        waiter.watch(&b);
        waiter.mark_seen();
        b.close();
        assert!(
            waiter
                .wait_until(Instant::now() + Duration::from_secs(1))
                .await
        );
        assert!(b.current().closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_wait_leaves_no_receiver_behind() {
        let idle = ProgressWatch::new(at(0));
        for _ in 0..1_000 {
            let mut waiter = Waiter::new();
            waiter.watch(&idle);
            waiter.mark_seen();
            assert!(
                !waiter
                    .wait_until(Instant::now() + Duration::from_millis(1))
                    .await
            );
        }
        assert_eq!(idle.waiters(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_to_watch_sleeps_to_the_deadline() {
        let mut waiter = Waiter::new();
        let start = Instant::now();
        assert!(!waiter.wait_until(start + Duration::from_millis(20)).await);
        assert_eq!(Instant::now() - start, Duration::from_millis(20));
    }
}
