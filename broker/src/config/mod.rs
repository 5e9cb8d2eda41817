//! Broker configuration: Kafka's `server.properties` keys, their defaults and validation.
//!
//! The broker reads a properties file (`--config FILE`) and `--override key=value` pairs on top.
//! Every key Shale understands is declared once in [`BROKER_CONFIGS`] (`defs`) with its default,
//! type and doc; an invalid value stops start-up with an error that names the key. Unknown keys
//! are logged and ignored, as Kafka does — except keys that ask for a feature Shale lacks
//! (`unsupported`: SASL, ACLs, …), SASL listeners (`listeners`) and multi-node
//! quorums (`cluster`): those stop start-up, all reported together, rather than run unsafely.
//! Topic-level defaults (`log.retention.hours`, `log.segment.bytes`, …) are folded into a
//! [`LogConfig`] through the broker synonyms declared by `shale_local_log`.

/// One [`ConfigDef`] table row: `def!(name, default, Kind variant, doc)`.
macro_rules! def {
    ($name:expr, $default:expr, $kind:ident, $doc:expr) => {
        ConfigDef {
            name: $name,
            default: $default,
            kind: Kind::$kind,
            doc: $doc,
        }
    };
}

pub mod authz;
pub mod cluster;
mod defs;
mod listeners;
mod replication;
pub mod sasl;
pub mod ssl;
pub mod unsupported;

pub use defs::{
    all_broker_configs, broker_def, configuration_markdown, ConfigDef, Kind, BROKER_CONFIGS,
};
pub use listeners::Listener;
pub use replication::ReplicationConfig;

use crate::connection_limits::LimitsConfig;
use shale_local_log::{LogConfig, TOPIC_CONFIGS};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A configuration problem that stops start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key has a value of the wrong type or out of range.
    #[error("invalid value '{value}' for configuration {key}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The offending value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Settings that ask for features Shale does not implement; running without them would be
    /// unsafe, so start-up stops and lists every one.
    #[error(
        "refusing to start: {} setting(s) ask for what Shale does not support, and ignoring them \
         would be unsafe (remove them to run without these features):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )]
    Unsupported {
        /// One line per offending setting.
        problems: Vec<String>,
    },
    /// The properties file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The validated broker configuration.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Every key that was set explicitly (file, then overrides), as text.
    pub explicit: BTreeMap<String, String>,
    /// Keys that were set but are not Shale configuration; logged as ignored at start-up.
    pub ignored: Vec<String>,
    /// `node.id`.
    pub node_id: i32,
    /// `process.roles`.
    pub roles: cluster::Roles,
    /// `controller.quorum.voters` (empty: a quorum of this node alone, or a dynamic quorum).
    pub voters: Vec<cluster::Voter>,
    /// `controller.quorum.bootstrap.servers` entries other than this node (a controller-only
    /// node of a dynamic quorum, KIP-853).
    pub bootstrap_servers: Vec<(String, u16)>,
    /// Listeners to bind: every one in `listeners`, controller listeners included.
    pub listeners: Vec<Listener>,
    /// Broker listeners given to clients (`advertised.listeners`, else `listeners`, without the
    /// controller listeners); never empty.
    pub advertised_listeners: Vec<Listener>,
    /// `controller.listener.names` (upper-cased).
    pub controller_listener_names: Vec<String>,
    /// TLS settings of every listener name that speaks TLS (bound here, or a controller
    /// listener this broker-only node connects to).
    pub ssl: BTreeMap<String, ssl::SslConfig>,
    /// SASL settings of every bound SASL listener.
    pub sasl: BTreeMap<String, std::sync::Arc<sasl::SaslConfig>>,
    /// Authorization: `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
    pub authz: authz::AuthzConfig,
    /// `max.connections`, `max.connections.per.ip[.overrides]`, `connections.max.idle.ms`.
    pub connection_limits: LimitsConfig,
    /// How partitions replicate (`replica.*`).
    pub replication: ReplicationConfig,
    /// Partition log directories.
    pub log_dirs: Vec<PathBuf>,
    /// Directory holding `__cluster_metadata-0`.
    pub metadata_log_dir: PathBuf,
    /// `metadata.log.max.record.bytes.between.snapshots` (0 = no size rule).
    pub metadata_snapshot_max_bytes: u64,
    /// `metadata.log.max.snapshot.interval.ms` (0 = no time rule).
    pub metadata_snapshot_max_interval_ms: u64,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_s: u64,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `broker.session.timeout.ms`.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.rack`.
    pub broker_rack: Option<String>,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// `queued.max.requests` (per-connection read-ahead bound).
    pub queued_max_requests: usize,
    /// Client quotas' rate samples: `quota.window.num` windows of `quota.window.size.seconds`.
    pub quota_windows: (usize, u64),
    /// `controller_mutation_rate`'s span: `controller.quota.window.num` windows of
    /// `controller.quota.window.size.seconds`.
    pub controller_quota_windows: (usize, u64),
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// How often the offset checkpoints are written: the shorter of
    /// `log.flush.offset.checkpoint.interval.ms` and `replica.high.watermark.checkpoint.interval.ms`.
    pub checkpoint_interval_ms: u64,
    /// `max.incremental.fetch.session.cache.slots`.
    pub fetch_session_slots: usize,
    /// Prometheus endpoint, if enabled.
    pub metrics_address: Option<SocketAddr>,
    /// `shale.metrics.topic.labels.max`.
    pub metrics_topic_labels_max: usize,
    /// Log filter.
    pub log_level: String,
    /// `shale.debug.crash.file`: the file naming where the process aborts, for crash tests.
    pub crash_file: Option<std::path::PathBuf>,
    /// `shale.log.open.files.max` (`None`: derived from the process limit).
    pub log_open_files_max: Option<usize>,
    /// Topic defaults derived from the `log.*` keys.
    pub log_config: LogConfig,
    /// The group coordinator's keys (`group.*`, `offsets.*`).
    pub groups: crate::group::GroupConfig,
    /// The transaction coordinator's settings.
    pub txns: crate::txn::TxnConfig,
}

impl BrokerConfig {
    /// The advertised client listeners as registered endpoints (all PLAINTEXT).
    pub fn advertised_endpoints(&self) -> Vec<shale_raft::Endpoint> {
        self.advertised_listeners
            .iter()
            .map(|l| shale_raft::Endpoint {
                name: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
                security_protocol: 0,
            })
            .collect()
    }

    /// A node of a multi-node cluster: its quorum names other nodes.
    pub fn is_multi_node(&self) -> bool {
        self.voters.iter().any(|v| v.id != self.node_id) || !self.bootstrap_servers.is_empty()
    }

    /// Reads an optional properties file, then applies `key=value` overrides, then validates.
    pub fn load(file: Option<&std::path::Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut props = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            props.extend(parse_properties(&text));
        }
        for kv in overrides {
            let (k, v) = kv.split_once('=').ok_or_else(|| ConfigError::Invalid {
                key: kv.clone(),
                value: String::new(),
                reason: "an override must look like key=value".into(),
            })?;
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
        Self::from_props(props)
    }

    /// Validates a full key/value map.
    pub fn from_props(props: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let (ignored, mut unsupported_settings) = classify_keys(&props)?;
        let get = |k: &str| -> Option<String> {
            props
                .get(k)
                .cloned()
                .or_else(|| broker_def(k).and_then(|d| d.default.map(str::to_string)))
        };
        let int = |k: &str| -> i64 { get(k).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let node_id = int("node.id");
        if !(0..=i32::MAX as i64).contains(&node_id) {
            return Err(invalid("node.id", &node_id.to_string(), "must be >= 0"));
        }
        let roles = cluster::roles(&props)?;
        let controller_only = roles == cluster::Roles::Controller;
        let listeners = listeners::resolve(&props, controller_only, &mut unsupported_settings)?;
        let quorum = cluster::check(
            &props,
            node_id as i32,
            &listeners,
            &mut unsupported_settings,
        )?;
        let ssl = ssl_settings(&props, &listeners, &mut unsupported_settings)?;
        let sasl = sasl_settings(&props, &listeners, &mut unsupported_settings)?;
        let authz = authz::resolve(&props)?;
        if !unsupported_settings.is_empty() {
            return Err(ConfigError::Unsupported {
                problems: unsupported_settings,
            });
        }
        let (log_dirs, metadata_log_dir) = directories(&props)?;
        let positive = |k: &str| -> Result<i64, ConfigError> {
            let v = int(k);
            if v <= 0 {
                return Err(invalid(k, &v.to_string(), "must be > 0"));
            }
            Ok(v)
        };
        let metrics_address = match get("shale.metrics.address").unwrap_or_default().trim() {
            "" => None,
            a => Some(a.parse().map_err(|_| {
                invalid(
                    "shale.metrics.address",
                    a,
                    "expected host:port, e.g. 127.0.0.1:9308",
                )
            })?),
        };
        let log_config = topic_defaults(&props)?;
        let first_listener = listeners
            .advertised
            .first()
            .map_or("PLAINTEXT", |l| &l.name);
        let replication = replication::replication_config(&get, &positive, first_listener)?;
        let inter = &replication.inter_broker_listener;
        if !controller_only && !listeners.bind.iter().any(|l| &l.name == inter) {
            return Err(invalid(
                "security.inter.broker.protocol",
                inter,
                "the inter-broker listener must be one of listeners",
            ));
        }
        Ok(BrokerConfig {
            node_id: node_id as i32,
            roles,
            voters: quorum.voters,
            bootstrap_servers: quorum.bootstrap,
            listeners: listeners.bind,
            advertised_listeners: listeners.advertised,
            controller_listener_names: listeners.controller_names,
            ssl,
            sasl,
            authz,
            connection_limits: connection_limits(&get)?,
            log_dirs,
            metadata_log_dir,
            metadata_snapshot_max_bytes: int("metadata.log.max.record.bytes.between.snapshots")
                .max(0) as u64,
            metadata_snapshot_max_interval_ms: int("metadata.log.max.snapshot.interval.ms").max(0)
                as u64,
            auto_leader_rebalance: get("auto.leader.rebalance.enable").as_deref() == Some("true"),
            leader_imbalance_check_interval_s: positive("leader.imbalance.check.interval.seconds")?
                as u64,
            num_partitions: positive("num.partitions")? as i32,
            broker_session_timeout_ms: positive("broker.session.timeout.ms")? as u64,
            broker_heartbeat_interval_ms: positive("broker.heartbeat.interval.ms")? as u64,
            broker_rack: get("broker.rack").filter(|r| !r.trim().is_empty()),
            default_replication_factor: positive("default.replication.factor")? as i16,
            auto_create_topics: get("auto.create.topics.enable").as_deref() == Some("true"),
            delete_topic_enable: get("delete.topic.enable").as_deref() == Some("true"),
            socket_request_max_bytes: positive("socket.request.max.bytes")? as usize,
            queued_max_requests: positive("queued.max.requests")? as usize,
            quota_windows: (
                positive("quota.window.num")? as usize,
                positive("quota.window.size.seconds")? as u64 * 1000,
            ),
            controller_quota_windows: (
                positive("controller.quota.window.num")? as usize,
                positive("controller.quota.window.size.seconds")? as u64 * 1000,
            ),
            retention_check_interval_ms: positive("log.retention.check.interval.ms")? as u64,
            checkpoint_interval_ms: positive("log.flush.offset.checkpoint.interval.ms")?
                .min(positive("replica.high.watermark.checkpoint.interval.ms")?)
                as u64,
            fetch_session_slots: int("max.incremental.fetch.session.cache.slots").max(0) as usize,
            metrics_address,
            metrics_topic_labels_max: int("shale.metrics.topic.labels.max").max(0) as usize,
            log_level: get("shale.log.level").unwrap_or_else(|| "info".into()),
            crash_file: get("shale.debug.crash.file")
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from),
            log_open_files_max: match props.get("shale.log.open.files.max") {
                Some(_) => Some(positive("shale.log.open.files.max")? as usize),
                None => None,
            },
            log_config,
            groups: group_config(&int, &positive)?,
            txns: txn_config(&get, &positive)?,
            replication,
            explicit: props,
            ignored,
        })
    }

    /// The effective value of a broker key (explicit, else default), as DescribeConfigs shows it.
    pub fn value_of(&self, key: &str) -> Option<String> {
        self.explicit
            .get(key)
            .cloned()
            .or_else(|| broker_def(key).and_then(|d| d.default.map(str::to_string)))
    }
}

/// The TLS settings of every TLS listener name in use.
fn ssl_settings(
    props: &BTreeMap<String, String>,
    listeners: &listeners::Listeners,
    unsupported: &mut Vec<String>,
) -> Result<BTreeMap<String, ssl::SslConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, protocol) in &listeners.protocols {
        if protocol.is_tls() {
            let bound = listeners.bind.iter().any(|l| &l.name == name);
            out.insert(name.clone(), ssl::resolve(props, name, bound, unsupported)?);
        }
    }
    Ok(out)
}

/// The SASL settings of every bound SASL listener.
fn sasl_settings(
    props: &BTreeMap<String, String>,
    listeners: &listeners::Listeners,
    unsupported: &mut Vec<String>,
) -> Result<BTreeMap<String, std::sync::Arc<sasl::SaslConfig>>, ConfigError> {
    let mut out = BTreeMap::new();
    for l in &listeners.bind {
        if l.protocol.is_sasl() {
            let config = sasl::resolve(props, &l.name, unsupported)?;
            out.insert(l.name.clone(), std::sync::Arc::new(config));
        }
    }
    Ok(out)
}

/// Checks the type of every known key and sorts the others: ignored (logged), or asking for an
/// unsupported feature (returned as problems).
fn classify_keys(
    props: &BTreeMap<String, String>,
) -> Result<(Vec<String>, Vec<String>), ConfigError> {
    let mut ignored = Vec::new();
    let mut unsupported_settings = Vec::new();
    for (k, v) in props {
        match broker_def(k).or_else(|| ssl::listener_ssl_key(k)) {
            Some(def) => check_kind(def, v)?,
            None if sasl::is_listener_sasl_key(k) => {}
            None if k.starts_with("rsm.config.") || k.starts_with("rlmm.config.") => {}
            None => match unsupported::check(k, v) {
                Some(problem) => unsupported_settings.push(problem),
                None => ignored.push(k.clone()),
            },
        }
    }
    Ok((ignored, unsupported_settings))
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// The group coordinator's keys.
fn group_config(
    int: &dyn Fn(&str) -> i64,
    positive: &dyn Fn(&str) -> Result<i64, ConfigError>,
) -> Result<crate::group::GroupConfig, ConfigError> {
    Ok(crate::group::GroupConfig {
        offsets_partitions: positive("offsets.topic.num.partitions")? as i32,
        offsets_replication_factor: positive("offsets.topic.replication.factor")? as i16,
        offsets_segment_bytes: positive("offsets.topic.segment.bytes")?,
        commit_timeout_ms: positive("offsets.commit.timeout.ms")?,
        offsets_retention_ms: positive("offsets.retention.minutes")?.saturating_mul(60_000),
        offsets_retention_check_interval_ms: positive("offsets.retention.check.interval.ms")?,
        offset_metadata_max_bytes: int("offset.metadata.max.bytes").max(0) as usize,
        initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms").max(0),
        min_session_timeout_ms: int("group.min.session.timeout.ms"),
        max_session_timeout_ms: int("group.max.session.timeout.ms"),
        max_size: positive("group.max.size")? as usize,
    })
}

fn txn_config(
    get: &dyn Fn(&str) -> Option<String>,
    positive: &dyn Fn(&str) -> Result<i64, ConfigError>,
) -> Result<crate::txn::TxnConfig, ConfigError> {
    Ok(crate::txn::TxnConfig {
        partitions: positive("transaction.state.log.num.partitions")? as i32,
        replication_factor: positive("transaction.state.log.replication.factor")? as i16,
        min_isr: positive("transaction.state.log.min.isr")? as i32,
        segment_bytes: positive("transaction.state.log.segment.bytes")?,
        max_timeout_ms: positive("transaction.max.timeout.ms")?.min(i64::from(i32::MAX)) as i32,
        id_expiration_ms: positive("transactional.id.expiration.ms")?,
        abort_interval_ms: positive("transaction.abort.timed.out.transaction.cleanup.interval.ms")?,
        remove_expired_interval_ms: positive(
            "transaction.remove.expired.transaction.cleanup.interval.ms",
        )?,
        write_timeout_ms: positive("request.timeout.ms").unwrap_or(30_000),
        verify_partitions: get("transaction.partition.verification.enable").as_deref()
            != Some("false"),
    })
}

/// `max.connections`, `max.connections.per.ip`, `max.connections.per.ip.overrides` and
/// `connections.max.idle.ms`, validated as Kafka validates them.
fn connection_limits(get: &dyn Fn(&str) -> Option<String>) -> Result<LimitsConfig, ConfigError> {
    let non_negative = |k: &str| -> Result<u32, ConfigError> {
        let v = get(k).unwrap_or_default();
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= i32::MAX as u32)
            .ok_or_else(|| invalid(k, &v, "must be between 0 and 2147483647"))
    };
    const OVERRIDES: &str = "max.connections.per.ip.overrides";
    let mut per_ip_overrides = Vec::new();
    for entry in split_list(&get(OVERRIDES).unwrap_or_default()) {
        let bad = || invalid(OVERRIDES, &entry, "expected host:count entries");
        let (host, count) = entry.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if host.is_empty() || count > i32::MAX as u32 {
            return Err(bad());
        }
        per_ip_overrides.push((host.to_string(), count));
    }
    let max_per_ip = non_negative("max.connections.per.ip")?;
    if max_per_ip == 0 && per_ip_overrides.is_empty() {
        return Err(invalid(
            "max.connections.per.ip",
            "0",
            "can be 0 only when max.connections.per.ip.overrides is set",
        ));
    }
    let idle = get("connections.max.idle.ms").unwrap_or_default();
    let idle: i64 = idle
        .parse()
        .map_err(|_| invalid("connections.max.idle.ms", &idle, "expected long"))?;
    Ok(LimitsConfig {
        max_connections: non_negative("max.connections")?,
        max_per_ip,
        per_ip_overrides,
        idle_timeout: u64::try_from(idle).ok().map(Duration::from_millis),
    })
}

/// `log.dirs` (or `log.dir`) and `metadata.log.dir` (which defaults to the first log dir).
fn directories(props: &BTreeMap<String, String>) -> Result<(Vec<PathBuf>, PathBuf), ConfigError> {
    let log_dirs: Vec<PathBuf> = match props.get("log.dirs").or(props.get("log.dir")) {
        Some(v) => split_list(v).into_iter().map(PathBuf::from).collect(),
        None => vec![PathBuf::from("./shale-data")],
    };
    let Some(first) = log_dirs.first() else {
        return Err(invalid(
            "log.dirs",
            "",
            "at least one directory is required",
        ));
    };
    let metadata = props
        .get("metadata.log.dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| first.clone());
    Ok((log_dirs, metadata))
}

/// Kafka-style properties: `key=value` or `key: value`, `#`/`!` comments, blank lines.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let idx = l.find(['=', ':'])?;
            Some((l[..idx].trim().to_string(), l[idx + 1..].trim().to_string()))
        })
        .collect()
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn check_kind(def: &ConfigDef, v: &str) -> Result<(), ConfigError> {
    let ok = match def.kind {
        Kind::Bool => v == "true" || v == "false",
        Kind::Int => v.parse::<i32>().is_ok(),
        Kind::Long => v.parse::<i64>().is_ok(),
        Kind::Str | Kind::List | Kind::Password => true,
    };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: def.name.into(),
            value: v.into(),
            reason: format!("expected {:?}", def.kind).to_lowercase(),
        })
    }
}

/// Folds the broker's `log.*` keys into topic defaults, through each topic config's synonyms.
fn topic_defaults(props: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
    let mut overrides: Vec<(&'static str, String)> = Vec::new();
    for def in TOPIC_CONFIGS {
        let set = def
            .broker_synonyms
            .iter()
            .find_map(|syn| props.get(*syn).map(|v| (*syn, v)));
        if let Some((syn, value)) = set {
            overrides.push((def.name, convert_synonym(syn, value)));
        }
    }
    LogConfig::default()
        .with_overrides(overrides.iter().map(|(k, v)| (*k, v.as_str())))
        .map_err(|e| ConfigError::Invalid {
            key: "log.*".into(),
            value: String::new(),
            reason: e.to_string(),
        })
}

/// Broker synonyms in minutes/hours become the topic config's milliseconds.
fn convert_synonym(syn: &str, value: &str) -> String {
    let factor: i64 = if syn.ends_with(".hours") {
        3_600_000
    } else if syn.ends_with(".minutes") {
        60_000
    } else {
        1
    };
    match value.parse::<i64>() {
        Ok(v) if factor > 1 && v >= 0 => v.saturating_mul(factor).to_string(),
        _ => value.to_string(),
    }
}

/// A key/value map from pairs, for the configuration tests.
#[cfg(test)]
pub(crate) fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_single_local_node() {
        let c = BrokerConfig::from_props(BTreeMap::new()).unwrap();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.listeners[0].host, "127.0.0.1");
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert!(c.auto_create_topics);
    }

    #[test]
    fn invalid_value_names_the_key() {
        let mut p = BTreeMap::new();
        p.insert("num.partitions".to_string(), "many".to_string());
        let err = BrokerConfig::from_props(p).unwrap_err().to_string();
        assert!(err.contains("num.partitions"), "{err}");
    }

    #[test]
    fn a_secured_kafka_config_is_refused_with_every_reason() {
        let p = props(&[
            (
                "listeners",
                "SASL_SSL://127.0.0.1:9092,SSL://127.0.0.1:9094",
            ),
            (
                "listener.security.protocol.map",
                "SASL_SSL:SASL_SSL,SSL:SSL",
            ),
            ("ssl.keystore.location", "/etc/k.jks"),
            ("ssl.keystore.password", "pw"),
            ("sasl.enabled.mechanisms", "GSSAPI"),
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("super.users", "User:admin"),
            ("no.such.key", "ignored"),
        ]);
        let err = BrokerConfig::from_props(p).unwrap_err();
        let ConfigError::Unsupported { problems } = &err else {
            panic!("{err}");
        };
        // SSL, SASL PLAIN and ACLs are served: the JKS store is reported for both TLS
        // listeners.
        assert_eq!(problems.len(), 3, "{problems:#?}");
        let text = err.to_string();
        for needle in [
            "GSSAPI is not supported yet",
            "ssl.keystore.type=JKS (listener SSL)",
            "ssl.keystore.type=JKS (listener SASL_SSL)",
            "sasl.enabled.mechanisms (listener SASL_SSL)",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
        assert!(!text.contains("no.such.key"));
        assert!(!text.contains("pw"), "no password in the report");
    }

    #[test]
    fn kafka_4_single_node_config_is_accepted() {
        let p = props(&[
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("controller.quorum.bootstrap.servers", "localhost:9093"),
            ("controller.quorum.voters", "1@localhost:9093"),
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            (
                "advertised.listeners",
                "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
            ),
            ("controller.listener.names", "CONTROLLER"),
            (
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            ),
            ("security.inter.broker.protocol", "PLAINTEXT"),
        ]);
        let c = BrokerConfig::from_props(p).unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.advertised_listeners.len(), 1);
        assert_eq!(c.advertised_listeners[0].host, "localhost");
        assert_eq!(c.ignored, ["security.inter.broker.protocol"]);
    }

    #[test]
    fn connection_limits_parse_like_kafka() {
        let c = BrokerConfig::from_props(BTreeMap::new()).unwrap();
        let l = &c.connection_limits;
        assert_eq!(
            (l.max_connections, l.max_per_ip),
            (i32::MAX as u32, i32::MAX as u32)
        );
        assert_eq!(l.idle_timeout, Some(Duration::from_secs(600)));
        let c = BrokerConfig::from_props(props(&[
            ("max.connections", "10"),
            ("max.connections.per.ip", "0"),
            (
                "max.connections.per.ip.overrides",
                "hostName:100, 127.0.0.1:200,::1:3",
            ),
            ("connections.max.idle.ms", "-1"),
        ]))
        .unwrap();
        let l = &c.connection_limits;
        assert_eq!(l.max_connections, 10);
        assert_eq!(
            l.per_ip_overrides,
            [
                ("hostName".to_string(), 100),
                ("127.0.0.1".to_string(), 200),
                ("::1".to_string(), 3)
            ]
        );
        assert_eq!(l.idle_timeout, None);
        for bad in [
            ("max.connections", "-1"),
            ("max.connections.per.ip", "0"),
            ("max.connections.per.ip.overrides", "host"),
            ("max.connections.per.ip.overrides", "host:-2"),
            ("connections.max.idle.ms", "soon"),
        ] {
            let err = BrokerConfig::from_props(props(&[bad])).unwrap_err();
            assert!(err.to_string().contains(bad.0), "{bad:?}: {err}");
        }
    }

    #[test]
    fn properties_parse_comments_and_separators() {
        let p = parse_properties("# c\n! c\na=1\n b : 2 \n\nc=x=y\n");
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "x=y");
    }

    #[test]
    fn hours_synonyms_become_milliseconds() {
        assert_eq!(convert_synonym("log.retention.hours", "2"), "7200000");
        assert_eq!(convert_synonym("log.retention.ms", "-1"), "-1");
        assert_eq!(convert_synonym("log.retention.minutes", "3"), "180000");
    }
}
