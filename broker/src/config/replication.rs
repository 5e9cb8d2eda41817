//! The `replica.*` keys: how followers fetch from leaders and when a follower leaves the ISR,
//! and the listener brokers reach each other on (`inter.broker.listener.name`).

use super::{invalid, ConfigError};
use std::time::Duration;

/// How partitions replicate between brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// The broker listener followers fetch from (`inter.broker.listener.name`, else the listener
    /// named like `security.inter.broker.protocol` when that is set, else the first broker
    /// listener).
    pub inter_broker_listener: String,
    /// `replica.lag.time.max.ms`.
    pub lag_time_max: Duration,
    /// `replica.fetch.max.bytes`.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms`.
    pub fetch_wait_max: Duration,
    /// `replica.fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub fetch_backoff: Duration,
    /// `replica.socket.timeout.ms`.
    pub socket_timeout: Duration,
    /// `num.replica.fetchers`.
    pub fetchers: usize,
    /// `replica.selector.class` names Kafka's RackAwareReplicaSelector: consumers that send a
    /// rack (`client.rack`, Fetch v11+) are pointed at an in-sync replica in their rack
    /// (KIP-392).
    pub rack_aware_reads: bool,
}

/// The one `replica.selector.class` there is to choose.
pub const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            inter_broker_listener: "PLAINTEXT".into(),
            lag_time_max: Duration::from_millis(30_000),
            fetch_max_bytes: 1 << 20,
            fetch_response_max_bytes: 10 << 20,
            fetch_wait_max: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_backoff: Duration::from_millis(1000),
            socket_timeout: Duration::from_millis(30_000),
            fetchers: 1,
            rack_aware_reads: false,
        }
    }
}

/// Reads and checks the replication keys as Kafka checks them: the fetch wait must not exceed
/// the lag limit (a follower would fall out of the ISR while its fetch waits) nor the socket
/// timeout.
pub(super) fn replication_config(
    get: &dyn Fn(&str) -> Option<String>,
    positive: &dyn Fn(&str) -> Result<i64, ConfigError>,
    first_broker_listener: &str,
) -> Result<ReplicationConfig, ConfigError> {
    let ms = |k: &str| -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(positive(k)? as u64))
    };
    let int = |k: &str| -> Result<i32, ConfigError> {
        let v = positive(k)?;
        i32::try_from(v).map_err(|_| invalid(k, &v.to_string(), "must fit in an int"))
    };
    let config = ReplicationConfig {
        inter_broker_listener: get("inter.broker.listener.name")
            .or_else(|| get("security.inter.broker.protocol"))
            .map(|n| n.trim().to_uppercase())
            .unwrap_or_else(|| first_broker_listener.to_string()),
        lag_time_max: ms("replica.lag.time.max.ms")?,
        fetch_max_bytes: int("replica.fetch.max.bytes")?,
        fetch_response_max_bytes: int("replica.fetch.response.max.bytes")?,
        fetch_wait_max: ms("replica.fetch.wait.max.ms")?,
        fetch_min_bytes: int("replica.fetch.min.bytes")?,
        fetch_backoff: ms("replica.fetch.backoff.ms")?,
        socket_timeout: ms("replica.socket.timeout.ms")?,
        fetchers: int("num.replica.fetchers")? as usize,
        rack_aware_reads: match get("replica.selector.class").as_deref().map(str::trim) {
            None | Some("") => false,
            Some(RACK_AWARE_SELECTOR) => true,
            Some(other) => {
                let why = format!("the only selector is {RACK_AWARE_SELECTOR}");
                return Err(invalid("replica.selector.class", other, &why));
            }
        },
    };
    let wait = config.fetch_wait_max.as_millis().to_string();
    if config.fetch_wait_max > config.lag_time_max {
        return Err(invalid(
            "replica.fetch.wait.max.ms",
            &wait,
            "must not be above replica.lag.time.max.ms",
        ));
    }
    if config.fetch_wait_max > config.socket_timeout {
        return Err(invalid(
            "replica.fetch.wait.max.ms",
            &wait,
            "must not be above replica.socket.timeout.ms",
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use crate::config::BrokerConfig;
    use std::collections::BTreeMap;

    fn config(pairs: &[(&str, &str)]) -> Result<BrokerConfig, crate::config::ConfigError> {
        let props: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::from_props(props)
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = config(&[]).unwrap().replication;
        assert_eq!(c, super::ReplicationConfig::default());
    }

    #[test]
    fn a_fetch_wait_above_the_lag_limit_is_refused() {
        let e = config(&[
            ("replica.lag.time.max.ms", "1000"),
            ("replica.fetch.wait.max.ms", "2000"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("replica.fetch.wait.max.ms"), "{e}");
        let c = config(&[
            ("num.replica.fetchers", "3"),
            ("replica.fetch.max.bytes", "4096"),
        ]);
        let c = c.unwrap().replication;
        assert_eq!((c.fetchers, c.fetch_max_bytes), (3, 4096));
    }

    #[test]
    fn the_rack_aware_selector_is_the_only_one() {
        let c = config(&[("replica.selector.class", super::RACK_AWARE_SELECTOR)]);
        assert!(c.unwrap().replication.rack_aware_reads);
        let e = config(&[("replica.selector.class", "com.example.Mine")]).unwrap_err();
        assert!(e.to_string().contains("replica.selector.class"), "{e}");
    }
}
