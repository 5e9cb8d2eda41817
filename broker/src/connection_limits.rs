//! Connection limits, as Kafka's `ConnectionQuotas` applies them: `max.connections` (broker-wide,
//! all listeners) and `max.connections.per.ip` with `max.connections.per.ip.overrides`.
//!
//! The listeners' accept loops share one [`ConnectionLimits`]. Before accepting, a loop waits for
//! a broker-wide slot ([`ConnectionLimits::wait_for_slot`]) — Kafka's acceptor blocks the same way,
//! leaving new connections in the kernel's backlog while established ones are served. An accepted
//! connection then takes a [`Permit`] ([`ConnectionLimits::try_acquire`]); an address already at
//! its limit is refused and the connection closed at once. The permit gives the slot back when the
//! connection ends. The per-address table holds only addresses with open connections (an entry
//! goes when its count reaches zero), so it is bounded by the number of open connections.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The connection keys, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `max.connections`.
    pub max_connections: u32,
    /// `max.connections.per.ip`.
    pub max_per_ip: u32,
    /// `max.connections.per.ip.overrides`: host (name or address) → limit.
    pub per_ip_overrides: Vec<(String, u32)>,
    /// `connections.max.idle.ms`; `None` (negative) never closes idle connections.
    pub idle_timeout: Option<Duration>,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The broker holds `max.connections`; wait for a slot and try again.
    BrokerFull,
    /// The address holds its `max.connections.per.ip` (or override); close the connection.
    PerIp {
        /// The address's limit.
        limit: usize,
    },
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Shared connection accounting.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    overrides: HashMap<IpAddr, usize>,
    counts: Mutex<Counts>,
    freed: Notify,
}

/// One open connection's slot; released on drop.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    /// Limits with the overrides already resolved to addresses.
    pub fn new(max_total: usize, max_per_ip: usize, overrides: HashMap<IpAddr, usize>) -> Self {
        let overrides = overrides
            .into_iter()
            .map(|(ip, n)| (ip.to_canonical(), n))
            .collect();
        ConnectionLimits {
            max_total,
            max_per_ip,
            overrides,
            counts: Mutex::new(Counts::default()),
            freed: Notify::new(),
        }
    }

    /// Resolves the override hosts (every address of a name gets its limit). A host that does
    /// not resolve stops start-up, as in Kafka: a limit that cannot be applied is not ignored.
    pub async fn from_config(config: &LimitsConfig) -> anyhow::Result<Self> {
        let mut overrides = HashMap::new();
        for (host, limit) in &config.per_ip_overrides {
            let addrs = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| {
                    anyhow::anyhow!("max.connections.per.ip.overrides: cannot resolve {host}: {e}")
                })?;
            for a in addrs {
                overrides.insert(a.ip(), *limit as usize);
            }
        }
        Ok(Self::new(
            config.max_connections as usize,
            config.max_per_ip as usize,
            overrides,
        ))
    }

    /// Waits until the broker holds fewer than `max.connections` connections.
    pub async fn wait_for_slot(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.counts.lock().total < self.max_total {
                return;
            }
            freed.await;
        }
    }

    /// Takes a slot for a connection from `ip`.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refused> {
        let ip = ip.to_canonical();
        let limit = self.limit_for(ip);
        let mut counts = self.counts.lock();
        if counts.total >= self.max_total {
            return Err(Refused::BrokerFull);
        }
        let n = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if n >= limit {
            return Err(Refused::PerIp { limit });
        }
        counts.per_ip.insert(ip, n + 1);
        counts.total += 1;
        Ok(Permit {
            limits: self.clone(),
            ip,
        })
    }

    /// The limit for one address.
    pub fn limit_for(&self, ip: IpAddr) -> usize {
        self.overrides
            .get(&ip.to_canonical())
            .copied()
            .unwrap_or(self.max_per_ip)
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.counts.lock().total
    }

    /// Addresses with open connections (the size of the per-address table).
    pub fn tracked_addresses(&self) -> usize {
        self.counts.lock().per_ip.len()
    }

    fn release(&self, ip: IpAddr) {
        {
            let mut counts = self.counts.lock();
            counts.total = counts.total.saturating_sub(1);
            match counts.per_ip.get_mut(&ip) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    counts.per_ip.remove(&ip);
                }
                None => tracing::error!(%ip, "released a connection slot that was not held"),
            }
        }
        self.freed.notify_waiters();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limits.release(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn per_ip_limit_and_overrides() {
        let overrides = HashMap::from([(ip(2), 1), (ip(3), 0)]);
        let limits = Arc::new(ConnectionLimits::new(100, 2, overrides));
        let a = limits.try_acquire(ip(1)).unwrap();
        let _b = limits.try_acquire(ip(1)).unwrap();
        assert_eq!(
            limits.try_acquire(ip(1)).unwrap_err(),
            Refused::PerIp { limit: 2 }
        );
        let _c = limits.try_acquire(ip(2)).unwrap();
        assert!(limits.try_acquire(ip(2)).is_err());
        assert!(limits.try_acquire(ip(3)).is_err());
        drop(a);
        assert!(limits.try_acquire(ip(1)).is_ok());
    }

    #[test]
    fn the_table_forgets_addresses_without_connections() {
        let limits = Arc::new(ConnectionLimits::new(10_000, 3, HashMap::new()));
        let permits: Vec<Permit> = (0..=255u8)
            .flat_map(|i| (0..3).map(move |_| i))
            .map(|i| limits.try_acquire(ip(i)).unwrap())
            .collect();
        assert_eq!(limits.tracked_addresses(), 256);
        assert_eq!(limits.open(), 768);
        drop(permits);
        assert_eq!(limits.tracked_addresses(), 0);
        assert_eq!(limits.open(), 0);
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let limits = Arc::new(ConnectionLimits::new(10, 1, HashMap::new()));
        let _a = limits.try_acquire(ip(1)).unwrap();
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        assert!(limits.try_acquire(mapped).is_err());
    }

    #[tokio::test]
    async fn broker_wide_limit_waits_for_a_slot() {
        let limits = Arc::new(ConnectionLimits::new(2, 10, HashMap::new()));
        let a = limits.try_acquire(ip(1)).unwrap();
        let _b = limits.try_acquire(ip(2)).unwrap();
        assert_eq!(limits.try_acquire(ip(3)).unwrap_err(), Refused::BrokerFull);
        let waiter = {
            let limits = limits.clone();
            tokio::spawn(async move { limits.wait_for_slot().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("a freed slot wakes the waiter")
            .unwrap();
        assert!(limits.try_acquire(ip(3)).is_ok());
    }

    #[tokio::test]
    async fn from_config_resolves_override_hosts() {
        let config = LimitsConfig {
            max_connections: 5,
            max_per_ip: 7,
            per_ip_overrides: vec![("localhost".into(), 1), ("127.0.0.9".into(), 2)],
            idle_timeout: None,
        };
        let limits = ConnectionLimits::from_config(&config).await.unwrap();
        assert_eq!(limits.limit_for(ip(1)), 1);
        assert_eq!(limits.limit_for(ip(9)), 2);
        assert_eq!(limits.limit_for(ip(10)), 7);
    }
}
