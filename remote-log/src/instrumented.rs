//! [`InstrumentedStore`]: an `ObjectStore` wrapper counting requests by kind (PUT, GET, LIST,
//! DELETE, HEAD), their errors and latency (sum, count and a fixed-bucket histogram of atomics)
//! into [`StoreStats`], read by the broker's metrics exporter. Latency comes from the injected
//! [`Clock`]'s monotonic time. Each request also runs in a span of target
//! [`shale_common::TRACE_TARGET`] (`remote.put`, `remote.get`, ... with the object path), a child
//! of whatever span the caller is in; exported as OpenTelemetry client spans when tracing is on.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use shale_common::Clock;
use tracing::Instrument;

/// Request kinds counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// put, multipart create (parts are not counted separately).
    Put,
    /// get, ranged get.
    Get,
    /// list, list with delimiter.
    List,
    /// delete (each key of a batch delete counts).
    Delete,
    /// head.
    Head,
}

impl OpKind {
    /// All kinds.
    pub const ALL: [OpKind; 5] = [
        OpKind::Put,
        OpKind::Get,
        OpKind::List,
        OpKind::Delete,
        OpKind::Head,
    ];

    /// Lower-case label.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::List => "list",
            OpKind::Delete => "delete",
            OpKind::Head => "head",
        }
    }

    /// The span name of a request of this kind.
    pub fn span_name(self) -> &'static str {
        match self {
            OpKind::Put => "remote.put",
            OpKind::Get => "remote.get",
            OpKind::List => "remote.list",
            OpKind::Delete => "remote.delete",
            OpKind::Head => "remote.head",
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

/// Histogram bucket upper bounds in milliseconds (the last bucket is +Inf).
pub const LATENCY_BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

#[derive(Debug, Default)]
struct KindStats {
    count: AtomicU64,
    errors: AtomicU64,
    latency_us_sum: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
}

/// Counters per request kind.
#[derive(Debug, Default)]
pub struct StoreStats {
    kinds: [KindStats; 5],
}

/// Snapshot of one kind's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSnapshot {
    /// Requests completed (ok or error).
    pub count: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Sum of latencies in microseconds.
    pub latency_us_sum: u64,
    /// Non-cumulative counts per [`LATENCY_BUCKETS_MS`] bucket, then +Inf.
    pub buckets: [u64; LATENCY_BUCKETS_MS.len() + 1],
}

/// Snapshot of [`StoreStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStatsSnapshot {
    /// Per kind, indexed like [`OpKind::ALL`].
    pub kinds: [KindSnapshot; 5],
}

impl StoreStatsSnapshot {
    /// Counters of one kind.
    pub fn kind(&self, k: OpKind) -> &KindSnapshot {
        &self.kinds[k.idx()]
    }

    /// Request count of one kind.
    pub fn count(&self, k: OpKind) -> u64 {
        self.kinds[k.idx()].count
    }
}

impl StoreStats {
    /// Records one finished request.
    pub fn record(&self, kind: OpKind, latency: Duration, ok: bool) {
        let k = &self.kinds[kind.idx()];
        k.count.fetch_add(1, Ordering::Relaxed);
        if !ok {
            k.errors.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        k.latency_us_sum.fetch_add(us, Ordering::Relaxed);
        let ms = us / 1000;
        let b = LATENCY_BUCKETS_MS
            .iter()
            .position(|&ub| ms < ub)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        k.buckets[b].fetch_add(1, Ordering::Relaxed);
    }

    /// Current values.
    pub fn snapshot(&self) -> StoreStatsSnapshot {
        let mut s = StoreStatsSnapshot::default();
        for (dst, src) in s.kinds.iter_mut().zip(&self.kinds) {
            dst.count = src.count.load(Ordering::Relaxed);
            dst.errors = src.errors.load(Ordering::Relaxed);
            dst.latency_us_sum = src.latency_us_sum.load(Ordering::Relaxed);
            for (d, b) in dst.buckets.iter_mut().zip(&src.buckets) {
                *d = b.load(Ordering::Relaxed);
            }
        }
        s
    }
}

/// An `ObjectStore` that counts and times every request of the wrapped store.
#[derive(Debug)]
pub struct InstrumentedStore {
    inner: Arc<dyn ObjectStore>,
    stats: Arc<StoreStats>,
    clock: Arc<dyn Clock>,
}

impl InstrumentedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>, clock: Arc<dyn Clock>) -> Self {
        InstrumentedStore {
            inner,
            stats: Arc::new(StoreStats::default()),
            clock,
        }
    }

    /// The shared counters.
    pub fn stats(&self) -> Arc<StoreStats> {
        self.stats.clone()
    }

    async fn timed<T>(
        &self,
        kind: OpKind,
        location: Option<&Path>,
        f: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        let span = tracing::info_span!(
            target: shale_common::TRACE_TARGET,
            "remote.request",
            otel.name = kind.span_name(),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            object_store.operation = kind.name(),
            object_store.path = location.map(tracing::field::display),
        );
        let start = self.clock.monotonic();
        let r = f.instrument(span.clone()).await;
        let took = self.clock.monotonic().saturating_sub(start);
        self.stats.record(kind, took, r.is_ok());
        if let Err(e) = &r {
            if !span.is_disabled() {
                span.record("otel.status_code", "error");
                span.record("otel.status_description", tracing::field::display(e));
            }
        }
        r
    }
}

impl fmt::Display for InstrumentedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instrumented({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for InstrumentedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.timed(
            OpKind::Put,
            Some(location),
            self.inner.put_opts(location, payload, opts),
        )
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.timed(
            OpKind::Put,
            Some(location),
            self.inner.put_multipart_opts(location, opts),
        )
        .await
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
        self.timed(kind, Some(location), self.inner.get_opts(location, options))
            .await
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        self.timed(
            OpKind::Get,
            Some(location),
            self.inner.get_range(location, range),
        )
        .await
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.timed(OpKind::Head, Some(location), self.inner.head(location))
            .await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.timed(OpKind::Delete, Some(location), self.inner.delete(location))
            .await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // Counted once per listing call (pages are not visible through the trait).
        self.stats.record(OpKind::List, Duration::ZERO, true);
        self.inner.list(prefix).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.timed(OpKind::List, prefix, self.inner.list_with_delimiter(prefix))
            .await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.timed(OpKind::Put, Some(to), self.inner.copy(from, to))
            .await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.timed(
            OpKind::Put,
            Some(to),
            self.inner.copy_if_not_exists(from, to),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use shale_common::ManualClock;

    #[tokio::test]
    async fn counts_requests_by_kind() {
        let s = InstrumentedStore::new(Arc::new(InMemory::new()), ManualClock::new(0));
        let p = Path::from("a/b");
        s.put(&p, Bytes::from_static(b"hello").into())
            .await
            .unwrap();
        assert_eq!(
            s.get_range(&p, 1..3).await.unwrap(),
            Bytes::from_static(b"el")
        );
        s.get(&p).await.unwrap().bytes().await.unwrap();
        s.head(&p).await.unwrap();
        s.delete(&p).await.unwrap();
        assert!(s.head(&p).await.is_err());
        let snap = s.stats().snapshot();
        assert_eq!(snap.count(OpKind::Put), 1);
        assert_eq!(snap.count(OpKind::Get), 2);
        assert_eq!(snap.count(OpKind::Head), 2);
        assert_eq!(snap.kind(OpKind::Head).errors, 1);
        assert_eq!(snap.count(OpKind::Delete), 1);
        assert_eq!(snap.kind(OpKind::Get).buckets[0], 2);
    }

    #[test]
    fn latency_lands_in_the_right_bucket() {
        let st = StoreStats::default();
        st.record(OpKind::Get, Duration::from_millis(7), true);
        st.record(OpKind::Get, Duration::from_secs(9), false);
        let k = *st.snapshot().kind(OpKind::Get);
        assert_eq!(k.buckets[3], 1, "{k:?}");
        assert_eq!(k.buckets[LATENCY_BUCKETS_MS.len()], 1);
        assert_eq!(k.latency_us_sum, 9_007_000);
        assert_eq!(k.errors, 1);
    }
}
