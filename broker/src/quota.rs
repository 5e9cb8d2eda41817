//! Client quotas (Kafka's ClientQuotaManager with its default callback): produce and fetch byte
//! rates per user, client id, or user and client id, from the metadata image's
//! ClientQuotaRecords. A request's quota is the most specific one set, in Kafka's order
//! (user+client-id, user+default client, user, default user+client-id, default user+default
//! client, default user, client-id, default client-id); everyone a quota covers shares one rate
//! — except under a default name, where each user or client id gets its own.
//!
//! Rates are Kafka's: `quota.window.num` windows of `quota.window.size.seconds`, the rate being
//! the windows' total over their span (at least all but one window long). A request that takes
//! a rate over its quota is answered with `throttle_time_ms` = how long the rate takes to come
//! back to the quota, at most the whole span, and the connection rests that long.
//!
//! `controller_mutation_rate` (KIP-599) is a token bucket instead, as in Kafka: it holds the
//! quota times the windows' span of partitions (`controller.quota.window.num` windows of
//! `controller.quota.window.size.seconds`), refills at the quota per second, and a topic created
//! or deleted, or partitions added, take their partition count from it. Below zero the client
//! waits until the bucket is back at zero.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use shale_common::Clock;
use shale_raft::records::QuotaEntity;
use shale_raft::MetadataImage;

/// The quotas enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `producer_byte_rate`: record bytes produced per second.
    Produce,
    /// `consumer_byte_rate`: bytes fetched per second.
    Fetch,
    /// `request_percentage`: the time this broker spends on the client's requests, in percent
    /// of one thread — recorded in percent-seconds, as Kafka does.
    Request,
    /// `controller_mutation_rate`: partitions created or deleted per second (a token bucket).
    Mutation,
    /// `connection_creation_rate`: new connections per second from one address (`ip` entities).
    Connection,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Produce => "producer_byte_rate",
            Kind::Fetch => "consumer_byte_rate",
            Kind::Request => "request_percentage",
            Kind::Mutation => "controller_mutation_rate",
            Kind::Connection => "connection_creation_rate",
        }
    }
}

/// Most rates kept at once; the least recently used is dropped beyond (client ids are chosen
/// by clients).
const MAX_SENSORS: usize = 10_000;

/// How rates are sampled: `quota.window.num` windows of `quota.window.size.seconds`.
#[derive(Clone, Copy, Debug)]
pub struct Windows {
    pub count: usize,
    pub ms: u64,
}

/// One sampled rate.
#[derive(Debug, Default)]
struct Rate {
    /// (window start in ms, total recorded in it), oldest first.
    windows: VecDeque<(u64, f64)>,
    last_used: u64,
}

impl Rate {
    fn record(&mut self, w: Windows, now: u64, amount: f64) {
        let start = now - now % w.ms;
        match self.windows.back_mut() {
            Some((s, total)) if *s == start => *total += amount,
            _ => self.windows.push_back((start, amount)),
        }
        let oldest = start.saturating_sub((w.count as u64 - 1) * w.ms);
        while self.windows.front().is_some_and(|(s, _)| *s < oldest) {
            self.windows.pop_front();
        }
        self.last_used = now;
    }

    /// Per second, and the span it is measured over in ms.
    fn per_second(&self, w: Windows, now: u64) -> (f64, f64) {
        let total: f64 = self.windows.iter().map(|(_, v)| v).sum();
        let first = self.windows.front().map_or(now, |(s, _)| *s);
        let min_span = ((w.count as u64 - 1) * w.ms).max(1);
        let span = (now - first).max(min_span) as f64;
        (total * 1000.0 / span, span)
    }
}

/// A `controller_mutation_rate` token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    /// When it was last refilled, in ms.
    at: u64,
}

impl Bucket {
    /// Refills for the time since the last call, then takes `amount`; the throttle time.
    fn take(&mut self, quota: f64, burst: f64, now: u64, amount: f64) -> u64 {
        let refill = quota * now.saturating_sub(self.at) as f64 / 1000.0;
        self.tokens = (self.tokens + refill - amount).min(burst);
        self.at = now;
        if self.tokens < 0.0 {
            (-self.tokens / quota * 1000.0).round() as u64
        } else {
            0
        }
    }
}

/// The broker's quota rates.
#[derive(Debug)]
pub struct QuotaManager {
    clock: Arc<dyn Clock>,
    windows: Windows,
    rates: Mutex<HashMap<(Kind, QuotaEntity), Rate>>,
    /// `controller.quota.window.*`: the mutation buckets' burst is the quota over this span.
    mutation_windows: Windows,
    buckets: Mutex<HashMap<QuotaEntity, Bucket>>,
}

impl QuotaManager {
    pub fn new(clock: Arc<dyn Clock>, windows: Windows, mutation_windows: Windows) -> QuotaManager {
        QuotaManager {
            clock,
            windows,
            rates: Mutex::new(HashMap::new()),
            mutation_windows,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// How long the client must wait before it may create or delete partitions again: 0 while
    /// its `controller_mutation_rate` bucket is not empty, or it has no such quota.
    pub fn mutation_throttle(&self, image: &MetadataImage, user: &str, client_id: &str) -> u64 {
        self.take_mutations(image, user, client_id, 0.0)
    }

    /// Takes `partitions` from the client's mutation bucket; the throttle time after.
    pub fn record_mutations(
        &self,
        image: &MetadataImage,
        user: &str,
        client_id: &str,
        partitions: u32,
    ) -> u64 {
        self.take_mutations(image, user, client_id, f64::from(partitions))
    }

    fn take_mutations(&self, image: &MetadataImage, user: &str, client_id: &str, n: f64) -> u64 {
        let Some((entity, quota)) = quota_of(image, Kind::Mutation, user, client_id) else {
            return 0;
        };
        let now = self.clock.monotonic().as_millis() as u64;
        let w = self.mutation_windows;
        let burst = quota * (w.count as u64 * w.ms) as f64 / 1000.0;
        let mut buckets = self.buckets.lock();
        make_room(&mut buckets, &entity, |b| b.at);
        let bucket = buckets.entry(entity).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.take(quota, burst, now, n)
    }

    /// Records `bytes` for the client and returns how long it must be throttled (0: not over
    /// its quota, or it has none).
    pub fn record(
        &self,
        image: &MetadataImage,
        kind: Kind,
        user: &str,
        client_id: &str,
        bytes: usize,
    ) -> u64 {
        self.record_value(image, kind, user, client_id, bytes as f64)
    }

    /// Whether the client has a quota of this kind (so its requests need measuring).
    pub fn applies(&self, image: &MetadataImage, kind: Kind, user: &str, client_id: &str) -> bool {
        quota_of(image, kind, user, client_id).is_some()
    }

    /// Records the time a request's handling took (its own, waits excluded: [`Busy`]) for
    /// `request_percentage`; the throttle time.
    pub fn record_request_time(
        &self,
        image: &MetadataImage,
        user: &str,
        client_id: &str,
        busy: Duration,
    ) -> u64 {
        let percent_seconds = busy.as_secs_f64() * 100.0;
        self.record_value(image, Kind::Request, user, client_id, percent_seconds)
    }

    fn record_value(
        &self,
        image: &MetadataImage,
        kind: Kind,
        user: &str,
        client_id: &str,
        amount: f64,
    ) -> u64 {
        let Some((entity, quota)) = quota_of(image, kind, user, client_id) else {
            return 0;
        };
        self.record_rate(kind, entity, quota, amount)
    }

    /// Records `amount` on the rate of `entity`; the throttle time for `quota`.
    fn record_rate(&self, kind: Kind, entity: QuotaEntity, quota: f64, amount: f64) -> u64 {
        let now = self.clock.monotonic().as_millis() as u64;
        let mut rates = self.rates.lock();
        let key = (kind, entity);
        make_room(&mut rates, &key, |r| r.last_used);
        let rate = rates.entry(key).or_default();
        rate.record(self.windows, now, amount);
        let (value, span) = rate.per_second(self.windows, now);
        // Connections wait at most one window, as in Kafka; the others the whole span.
        let most = match kind {
            Kind::Connection => self.windows.ms,
            _ => self.windows.count as u64 * self.windows.ms,
        };
        let wait = throttle_ms(value, quota, span, most as f64);
        if wait > 0 && kind == Kind::Connection {
            // A refused connection does not count, as in Kafka.
            rate.record(self.windows, now, -amount);
        }
        wait
    }

    /// Records a new connection from `ip` against its `connection_creation_rate` (the `ip`
    /// entity named by the address, else the default `ip`); how long to hold the connection
    /// before closing it unserved, 0 to serve it.
    pub fn record_connection(&self, image: &MetadataImage, ip: std::net::IpAddr) -> u64 {
        if image.quotas.is_empty() {
            return 0;
        }
        let ip = ip.to_canonical();
        // The address as written by hand and in Java's form (full IPv6).
        let java = crate::api::client_host(std::net::SocketAddr::new(ip, 0))[1..].to_string();
        let quota_for = |name: Option<String>| {
            let entity: QuotaEntity = vec![("ip".to_string(), name)];
            image
                .quotas
                .get(&entity)?
                .get(Kind::Connection.key())
                .copied()
        };
        let named = quota_for(Some(ip.to_string())).or_else(|| quota_for(Some(java)));
        let Some(quota) = named.or_else(|| quota_for(None)) else {
            return 0;
        };
        let entity = vec![("ip".to_string(), Some(ip.to_string()))];
        self.record_rate(Kind::Connection, entity, quota, 1.0)
    }

    /// Takes back bytes recorded for a response that was not sent (a throttled fetch).
    pub fn unrecord(
        &self,
        image: &MetadataImage,
        kind: Kind,
        user: &str,
        client_id: &str,
        bytes: usize,
    ) {
        if let Some((entity, _)) = quota_of(image, kind, user, client_id) {
            let now = self.clock.monotonic().as_millis() as u64;
            if let Some(rate) = self.rates.lock().get_mut(&(kind, entity)) {
                rate.record(self.windows, now, -(bytes as f64));
            }
        }
    }
}

/// Drops the least recently used entry of a full map before `key` is added to it.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    key: &K,
    last_used: fn(&V) -> u64,
) {
    if map.len() >= MAX_SENSORS && !map.contains_key(key) {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| last_used(v))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }
}

/// A request's handling, timed: the time spent inside its `poll`s, so the time this broker
/// worked on it (on a worker thread, storage I/O included) and not the time it waited
/// (long-poll fetches, acks=all, a rebalance) — Kafka's request time excludes those too.
pub struct Busy<F> {
    inner: Pin<Box<F>>,
    clock: Arc<dyn Clock>,
    spent: Duration,
}

impl<F> std::fmt::Debug for Busy<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Busy").field("spent", &self.spent).finish()
    }
}

impl<F: Future> Busy<F> {
    pub fn new(clock: Arc<dyn Clock>, inner: F) -> Busy<F> {
        Busy {
            inner: Box::pin(inner),
            clock,
            spent: Duration::ZERO,
        }
    }
}

impl<F: Future> Future for Busy<F> {
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let started = self.clock.monotonic();
        let polled = self.inner.as_mut().poll(cx);
        let took = self.clock.monotonic().saturating_sub(started);
        self.spent += took;
        let spent = self.spent;
        polled.map(|out| (out, spent))
    }
}

/// Kafka's throttle time: the time the rate needs to fall back to the quota, at most `most`
/// (all the windows).
fn throttle_ms(value: f64, quota: f64, span_ms: f64, most: f64) -> u64 {
    if value <= quota {
        return 0;
    }
    let ms = (value - quota) / quota * span_ms;
    ms.min(most).round() as u64
}

/// The quota that applies and the entity whose rate it limits (default names replaced by the
/// client's own, so each gets its own rate).
fn quota_of(
    image: &MetadataImage,
    kind: Kind,
    user: &str,
    client_id: &str,
) -> Option<(QuotaEntity, f64)> {
    if image.quotas.is_empty() {
        return None;
    }
    let (u, c) = (Some(user), Some(client_id));
    // Kafka's order of precedence; `None` is the default name.
    let order: [(Part<'_>, Part<'_>); 8] = [
        (Some(u), Some(c)),
        (Some(u), Some(None)),
        (Some(u), None),
        (Some(None), Some(c)),
        (Some(None), Some(None)),
        (Some(None), None),
        (None, Some(c)),
        (None, Some(None)),
    ];
    order.into_iter().find_map(|(user_part, client_part)| {
        let entity = entity_of(user_part, client_part);
        let quota = *image.quotas.get(&entity)?.get(kind.key())?;
        let rate_of = entity_of(user_part.map(|_| u), client_part.map(|_| c));
        Some((rate_of, quota))
    })
}

/// One part of a quota entity: absent, the default name (`Some(None)`) or a name.
type Part<'a> = Option<Option<&'a str>>;

/// A canonical entity (sorted by type: `client-id` before `user`).
fn entity_of(user: Part<'_>, client: Part<'_>) -> QuotaEntity {
    let part = |kind: &str, name: Option<&str>| (kind.to_string(), name.map(String::from));
    let client = client.map(|n| part("client-id", n));
    let user = user.map(|n| part("user", n));
    client.into_iter().chain(user).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shale_common::ManualClock;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn image(quotas: &[(QuotaEntity, f64)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        let map = Arc::make_mut(&mut image.quotas);
        for (entity, v) in quotas {
            let values = map.entry(entity.clone()).or_insert_with(BTreeMap::new);
            values.insert("producer_byte_rate".into(), *v);
        }
        image
    }

    #[test]
    fn the_most_specific_quota_applies_in_kafkas_order() {
        let q = image(&[
            (entity_of(Some(Some("alice")), None), 100.0),
            (entity_of(Some(None), None), 50.0),
            (entity_of(None, Some(Some("app"))), 10.0),
        ]);
        let (e, v) = quota_of(&q, Kind::Produce, "alice", "app").unwrap();
        assert_eq!((e, v), (entity_of(Some(Some("alice")), None), 100.0));
        // bob falls to the default user quota, under his own name.
        let (e, v) = quota_of(&q, Kind::Produce, "bob", "app").unwrap();
        assert_eq!((e, v), (entity_of(Some(Some("bob")), None), 50.0));
        assert!(quota_of(&q, Kind::Fetch, "bob", "app").is_none());
        let only_client = image(&[(entity_of(None, Some(Some("app"))), 10.0)]);
        assert!(quota_of(&only_client, Kind::Produce, "bob", "other").is_none());
    }

    #[test]
    fn throttle_time_brings_the_rate_back_to_the_quota() {
        let clock = ManualClock::new(0);
        let w = Windows {
            count: 11,
            ms: 1000,
        };
        let m = QuotaManager::new(clock.clone(), w, w);
        let q = image(&[(entity_of(Some(Some("alice")), None), 1000.0)]);
        // 10 s of 1,000 B/s: at the quota.
        for _ in 0..10 {
            assert_eq!(m.record(&q, Kind::Produce, "alice", "c", 1000), 0);
            clock.advance(Duration::from_secs(1));
        }
        // 11,000 more bytes at once: 21,000 B over ~10 s is ~2,100 B/s, 1.1 times over.
        let t = m.record(&q, Kind::Produce, "alice", "c", 11_000);
        assert!((10_000..=11_000).contains(&t), "{t}");
        assert_eq!(
            m.record(&q, Kind::Produce, "bob", "c", 1 << 30),
            0,
            "bob has no quota"
        );
    }

    #[test]
    fn the_mutation_bucket_allows_a_burst_then_the_rate() {
        let clock = ManualClock::new(0);
        let w = Windows { count: 2, ms: 1000 };
        let m = QuotaManager::new(clock.clone(), w, w);
        let mut q = MetadataImage::default();
        let entity = entity_of(None, Some(Some("admin")));
        let values = BTreeMap::from([("controller_mutation_rate".to_string(), 10.0)]);
        Arc::make_mut(&mut q.quotas).insert(entity, values);
        // The bucket starts full: 10/s over 2 s is 20 partitions.
        assert_eq!(m.mutation_throttle(&q, "u", "admin"), 0);
        assert_eq!(m.record_mutations(&q, "u", "admin", 15), 0);
        // 30 taken in all: 10 below zero, one second at 10/s to come back.
        assert_eq!(m.record_mutations(&q, "u", "admin", 15), 1000);
        assert_eq!(m.mutation_throttle(&q, "u", "admin"), 1000);
        clock.advance(Duration::from_millis(600));
        assert_eq!(m.mutation_throttle(&q, "u", "admin"), 400);
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            m.mutation_throttle(&q, "u", "admin"),
            0,
            "refilled, capped at the burst"
        );
        assert_eq!(m.record_mutations(&q, "u", "admin", 20), 0);
        assert_eq!(m.record_mutations(&q, "u", "admin", 1), 100);
        assert_eq!(m.record_mutations(&q, "u", "other", 1000), 0, "no quota");
    }

    #[test]
    fn connections_over_their_address_rate_are_refused_and_not_counted() {
        let clock = ManualClock::new(0);
        let w = Windows { count: 2, ms: 1000 };
        let m = QuotaManager::new(clock.clone(), w, w);
        let mut q = MetadataImage::default();
        let rate = |v: f64| BTreeMap::from([("connection_creation_rate".to_string(), v)]);
        let quotas = Arc::make_mut(&mut q.quotas);
        quotas.insert(vec![("ip".into(), Some("127.0.0.1".into()))], rate(2.0));
        quotas.insert(
            vec![("ip".into(), Some("0:0:0:0:0:0:0:1".into()))],
            rate(1.0),
        );
        let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(m.record_connection(&q, local), 0);
        assert_eq!(m.record_connection(&q, local), 0);
        assert!(
            m.record_connection(&q, local) > 0,
            "a third within the second"
        );
        assert!(
            m.record_connection(&q, local) > 0,
            "refusals are not counted"
        );
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            m.record_connection(&q, local),
            0,
            "the old window has passed"
        );
        // Java's IPv6 form names ::1; an address without a quota (and no default) is free.
        let v6: std::net::IpAddr = "::1".parse().unwrap();
        assert_eq!(m.record_connection(&q, v6), 0);
        assert!(m.record_connection(&q, v6) > 0);
        let other: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        assert!((0..10).all(|_| m.record_connection(&q, other) == 0));
        Arc::make_mut(&mut q.quotas).insert(vec![("ip".into(), None)], rate(1.0));
        assert!(
            (0..2).any(|_| m.record_connection(&q, other) > 0),
            "the default ip"
        );
    }
}
