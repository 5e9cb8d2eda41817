//! The one deliberate path for blocking work — file I/O, fsync, long CPU work — from async code.
//!
//! Rule: a tokio worker thread never blocks. Async code that must block calls [`io`] (short
//! calls, such as an append or a read: `block_in_place`, so the worker hands its other tasks
//! to another thread first) or [`spawn`] (long or detached work: the blocking pool). Both mark
//! the thread as allowed to block while the work runs.
//!
//! Storage code calls [`check`] where it touches files. In debug builds (every `cargo test`)
//! that panics when it runs inside a tokio runtime without having come through this path, so a
//! new caller that forgets the rule fails its tests instead of stalling a worker in production.
//! Code outside any runtime (tools, start-up, plain threads, the storage crates' own tests) is
//! never flagged. Release builds compile the check away.

use std::cell::Cell;

thread_local! {
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// Restores the thread's previous permission when the work ends (or unwinds).
struct Allow(bool);

impl Allow {
    fn enter() -> Allow {
        Allow(MAY_BLOCK.with(|m| m.replace(true)))
    }
}

impl Drop for Allow {
    fn drop(&mut self) {
        let previous = self.0;
        MAY_BLOCK.with(|m| m.set(previous));
    }
}

/// Runs short blocking work from async code. On a multi-threaded runtime the worker first hands
/// its queued tasks to another thread (`block_in_place`); elsewhere `f` simply runs.
pub fn io<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let run = || {
        let _allow = Allow::enter();
        f()
    };
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
        _ => run(),
    }
}

/// Runs blocking work on tokio's blocking pool and waits for it (an error if `f` panicked).
pub async fn spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || {
        let _allow = Allow::enter();
        f()
    })
    .await
}

/// Declares that the caller is about to block. Debug builds panic if that happens on a tokio
/// runtime thread that did not come through [`io`] or [`spawn`].
#[inline]
pub fn check(what: &str) {
    if cfg!(debug_assertions)
        && !MAY_BLOCK.with(Cell::get)
        && tokio::runtime::Handle::try_current().is_ok()
    {
        panic!("blocking call ({what}) on an async runtime thread: wrap it in shale_common::blocking::io or spawn");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_runtime_anything_may_block() {
        check("test");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn io_and_spawn_allow_blocking_and_restore() {
        io(|| check("io"));
        spawn(|| check("spawn")).await.unwrap();
        let nested = io(|| io(|| 7));
        assert_eq!(nested, 7);
        assert!(!MAY_BLOCK.with(Cell::get));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_straight_from_a_worker_is_caught() {
        let caught = std::panic::catch_unwind(|| check("straight"));
        assert_eq!(caught.is_err(), cfg!(debug_assertions));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn io_on_a_current_thread_runtime_runs_inline() {
        assert_eq!(io(|| 5), 5);
    }
}
