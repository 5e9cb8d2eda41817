//! Test helpers usable by other crates' tests (not `cfg(test)`):
//!
//! * [`FaultStore`]: an `ObjectStore` wrapper injecting faults per request kind — fail the Nth
//!   call, fail every call (outage), delay, hang until released, and "lose the response" of a
//!   PUT that did succeed (the object exists, the caller sees an error).
//! * [`S3TestServer`]: a real `s3s-fs` S3 server on loopback (SigV4, objects as files), with
//!   stop/restart on the same directory and port for outage tests.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::instrumented::OpKind;

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultStore",
        source: format!("injected fault: {what}").into(),
    }
}

#[derive(Debug, Default)]
struct FaultState {
    calls: [AtomicU64; 5],
    fail_at: Mutex<Vec<(OpKind, u64)>>,
    lose_put_at: Mutex<Vec<u64>>,
    fail_all: [AtomicBool; 5],
    hang: [AtomicBool; 5],
    hang_paths: Mutex<Vec<String>>,
    hung_now: [AtomicU64; 5],
    delay: Mutex<[Option<Duration>; 5]>,
    released: Notify,
}

/// Fault-injecting `ObjectStore` wrapper. Cheap to clone; clones share the fault settings.
#[derive(Debug, Clone)]
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<FaultState>,
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

impl FaultStore {
    /// Wraps `inner` with no faults armed.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        FaultStore {
            inner,
            state: Arc::new(FaultState::default()),
        }
    }

    /// Calls of `kind` seen so far.
    pub fn calls(&self, kind: OpKind) -> u64 {
        self.state.calls[kind as usize].load(Ordering::SeqCst)
    }

    /// Makes the `n`-th call of `kind` from now (1 = the next one) fail before reaching the store.
    pub fn fail_nth(&self, kind: OpKind, n: u64) {
        let at = self.calls(kind) + n.max(1);
        self.state.fail_at.lock().push((kind, at));
    }

    /// Fails every call of `kind` until called again with `false` (an outage).
    pub fn fail_all(&self, kind: OpKind, on: bool) {
        self.state.fail_all[kind as usize].store(on, Ordering::SeqCst);
    }

    /// Delays every call of `kind` by `d` (`None` clears).
    pub fn delay(&self, kind: OpKind, d: Option<Duration>) {
        self.state.delay.lock()[kind as usize] = d;
    }

    /// Calls of `kind` block until [`Self::release`].
    pub fn hang(&self, kind: OpKind) {
        self.state.hang[kind as usize].store(true, Ordering::SeqCst);
    }

    /// PUTs to a path containing `needle` block until [`Self::release_paths`] (one slow
    /// partition among many).
    pub fn hang_paths_containing(&self, needle: &str) {
        self.state.hang_paths.lock().push(needle.to_string());
    }

    /// Releases calls blocked by [`Self::hang`] and stops hanging new ones.
    pub fn release(&self, kind: OpKind) {
        self.state.hang[kind as usize].store(false, Ordering::SeqCst);
        self.state.released.notify_waiters();
    }

    /// Releases PUTs blocked by [`Self::hang_paths_containing`] and stops hanging new ones.
    pub fn release_paths(&self) {
        self.state.hang_paths.lock().clear();
        self.state.released.notify_waiters();
    }

    fn path_hangs(&self, location: &Path) -> bool {
        let location = location.as_ref();
        self.state
            .hang_paths
            .lock()
            .iter()
            .any(|n| location.contains(n.as_str()))
    }

    /// Blocks a PUT to `location` while its path is set to hang.
    async fn enter_put(&self, location: &Path) -> object_store::Result<u64> {
        if self.path_hangs(location) {
            let i = OpKind::Put as usize;
            self.state.hung_now[i].fetch_add(1, Ordering::SeqCst);
            loop {
                let n = self.state.released.notified();
                if !self.path_hangs(location) {
                    break;
                }
                n.await;
            }
            self.state.hung_now[i].fetch_sub(1, Ordering::SeqCst);
        }
        self.enter(OpKind::Put).await
    }

    /// Calls of `kind` currently blocked by [`Self::hang`] (poll this to sequence tests).
    pub fn hung(&self, kind: OpKind) -> u64 {
        self.state.hung_now[kind as usize].load(Ordering::SeqCst)
    }

    /// The `n`-th PUT from now (single put or multipart completion) is written, then reported
    /// as failed.
    pub fn lose_nth_put_response(&self, n: u64) {
        let at = self.calls(OpKind::Put) + n.max(1);
        self.state.lose_put_at.lock().push(at);
    }

    /// Counts the call, applies hang/delay/fail; returns the call's sequence number.
    async fn enter(&self, kind: OpKind) -> object_store::Result<u64> {
        let i = kind as usize;
        let seq = self.state.calls[i].fetch_add(1, Ordering::SeqCst) + 1;
        if self.state.hang[i].load(Ordering::SeqCst) {
            self.state.hung_now[i].fetch_add(1, Ordering::SeqCst);
            loop {
                let n = self.state.released.notified();
                if !self.state.hang[i].load(Ordering::SeqCst) {
                    break;
                }
                n.await;
            }
            self.state.hung_now[i].fetch_sub(1, Ordering::SeqCst);
        }
        let delay = self.state.delay.lock()[i];
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        if self.state.fail_all[i].load(Ordering::SeqCst) {
            return Err(injected(&format!("{} outage", kind.name())));
        }
        let mut fail_at = self.state.fail_at.lock();
        if let Some(pos) = fail_at.iter().position(|&(k, n)| k == kind && n == seq) {
            fail_at.remove(pos);
            return Err(injected(&format!("{} call #{seq}", kind.name())));
        }
        Ok(seq)
    }

    fn take_lose(&self, seq: u64) -> bool {
        let mut lose = self.state.lose_put_at.lock();
        match lose.iter().position(|&n| n == seq) {
            Some(pos) => {
                lose.remove(pos);
                true
            }
            None => false,
        }
    }
}

#[derive(Debug)]
struct FaultUpload {
    inner: Box<dyn MultipartUpload>,
    lose: bool,
}

#[async_trait]
impl MultipartUpload for FaultUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let r = self.inner.complete().await?;
        if self.lose {
            return Err(injected("lost multipart completion response"));
        }
        Ok(r)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let seq = self.enter_put(location).await?;
        let r = self.inner.put_opts(location, payload, opts).await?;
        if self.take_lose(seq) {
            return Err(injected("lost put response"));
        }
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let seq = self.enter_put(location).await?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultUpload {
            inner,
            lose: self.take_lose(seq),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let kind = if options.head {
            OpKind::Head
        } else {
            OpKind::Get
        };
        self.enter(kind).await?;
        self.inner.get_opts(location, options).await
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        self.enter(OpKind::Get).await?;
        self.inner.get_range(location, range).await
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.enter(OpKind::Head).await?;
        self.inner.head(location).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.enter(OpKind::Delete).await?;
        self.inner.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let i = OpKind::List as usize;
        let seq = self.state.calls[i].fetch_add(1, Ordering::SeqCst) + 1;
        let mut fail_at = self.state.fail_at.lock();
        let fail = self.state.fail_all[i].load(Ordering::SeqCst)
            || fail_at
                .iter()
                .position(|&(k, n)| k == OpKind::List && n == seq)
                .map(|p| fail_at.remove(p))
                .is_some();
        if fail {
            return Box::pin(futures::stream::once(async { Err(injected("list")) }));
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.enter(OpKind::List).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.enter(OpKind::Put).await?;
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.enter(OpKind::Put).await?;
        self.inner.copy_if_not_exists(from, to).await
    }
}

#[cfg(test)]
#[path = "testing_test.rs"]
mod tests;

mod fixture;
mod s3_server;
pub use fixture::{fixture_timestamp, test_tp, BatchInfo, FixtureSpec, SegmentFixture, TempDir};
pub use s3_server::S3TestServer;
