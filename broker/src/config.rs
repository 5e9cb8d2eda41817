//! Broker configuration: Kafka's `server.properties` keys, their defaults and validation.
//!
//! The broker reads a properties file (`--config FILE`) and `--override key=value` pairs on top.
//! Every key Shale understands is declared once in [`BROKER_CONFIGS`] with its default, type and
//! doc; unknown keys are logged and ignored, and an invalid value stops start-up with an error that
//! names the key. Topic-level defaults (`log.retention.hours`, `log.segment.bytes`, …) are folded
//! into a [`LogConfig`] through the broker synonyms declared by `shale_local_log`.

use shale_local_log::{LogConfig, TOPIC_CONFIGS};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How a value is checked and shown in DescribeConfigs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `true` / `false`.
    Bool,
    /// 32-bit signed integer.
    Int,
    /// 64-bit signed integer.
    Long,
    /// Free text.
    Str,
    /// Comma-separated list.
    List,
}

/// One broker configuration key.
#[derive(Debug)]
pub struct ConfigDef {
    /// Kafka's key.
    pub name: &'static str,
    /// Default as text; `None` means "no default" (null).
    pub default: Option<&'static str>,
    /// Value type.
    pub kind: Kind,
    /// One-line meaning, used by docs/configuration.md.
    pub doc: &'static str,
}

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

/// Every broker key Shale reads (topic defaults included). Order is the docs' order.
pub static BROKER_CONFIGS: &[ConfigDef] = &[
    def!("node.id", Some("1"), Int, "This node's id in the cluster."),
    def!(
        "process.roles",
        Some("broker,controller"),
        List,
        "Roles of this process; combined mode only."
    ),
    def!(
        "controller.quorum.voters",
        None,
        List,
        "Static voter set; with one node it is this node."
    ),
    def!(
        "listeners",
        Some("PLAINTEXT://127.0.0.1:9092"),
        List,
        "Addresses the broker listens on."
    ),
    def!(
        "advertised.listeners",
        None,
        List,
        "Addresses given to clients; defaults to listeners."
    ),
    def!(
        "log.dirs",
        Some("./shale-data"),
        List,
        "Directories holding partition logs; the first also holds __cluster_metadata-0."
    ),
    def!(
        "log.dir",
        None,
        Str,
        "Single log directory, used when log.dirs is not set."
    ),
    def!(
        "metadata.log.dir",
        None,
        Str,
        "Directory of the metadata log; defaults to the first of log.dirs."
    ),
    def!(
        "num.partitions",
        Some("1"),
        Int,
        "Partition count of auto-created topics and of CreateTopics with -1."
    ),
    def!(
        "default.replication.factor",
        Some("1"),
        Int,
        "Replication factor of auto-created topics."
    ),
    def!(
        "auto.create.topics.enable",
        Some("true"),
        Bool,
        "Create unknown topics on Metadata/Produce requests."
    ),
    def!(
        "delete.topic.enable",
        Some("true"),
        Bool,
        "Allow DeleteTopics."
    ),
    def!(
        "message.max.bytes",
        Some("1048588"),
        Int,
        "Largest record batch accepted (topic: max.message.bytes)."
    ),
    def!(
        "socket.request.max.bytes",
        Some("104857600"),
        Int,
        "Largest request frame; larger ones close the connection."
    ),
    def!(
        "queued.max.requests",
        Some("500"),
        Int,
        "Requests read ahead per connection before reading pauses."
    ),
    def!(
        "log.segment.bytes",
        Some("1073741824"),
        Int,
        "Segment size before a roll (topic: segment.bytes)."
    ),
    def!(
        "log.roll.ms",
        None,
        Long,
        "Time before a roll (topic: segment.ms)."
    ),
    def!(
        "log.roll.hours",
        Some("168"),
        Int,
        "Time before a roll in hours, if log.roll.ms is unset."
    ),
    def!(
        "log.roll.jitter.ms",
        None,
        Long,
        "Roll jitter (topic: segment.jitter.ms)."
    ),
    def!(
        "log.roll.jitter.hours",
        Some("0"),
        Int,
        "Roll jitter in hours, if log.roll.jitter.ms is unset."
    ),
    def!(
        "log.retention.ms",
        None,
        Long,
        "Retention time (topic: retention.ms); -1 keeps forever."
    ),
    def!(
        "log.retention.minutes",
        None,
        Int,
        "Retention time in minutes, if log.retention.ms is unset."
    ),
    def!(
        "log.retention.hours",
        Some("168"),
        Int,
        "Retention time in hours, if the two above are unset."
    ),
    def!(
        "log.retention.bytes",
        Some("-1"),
        Long,
        "Retention size per partition (topic: retention.bytes)."
    ),
    def!(
        "log.retention.check.interval.ms",
        Some("300000"),
        Long,
        "How often retention is enforced."
    ),
    def!(
        "log.index.interval.bytes",
        Some("4096"),
        Int,
        "Bytes between offset-index entries."
    ),
    def!(
        "log.index.size.max.bytes",
        Some("10485760"),
        Int,
        "Maximum index file size (topic: segment.index.bytes)."
    ),
    def!(
        "log.flush.interval.messages",
        Some("9223372036854775807"),
        Long,
        "Records between forced fsyncs (topic: flush.messages)."
    ),
    def!(
        "log.flush.interval.ms",
        None,
        Long,
        "Time between forced fsyncs (topic: flush.ms)."
    ),
    def!(
        "log.flush.offset.checkpoint.interval.ms",
        Some("60000"),
        Int,
        "How often the recovery-point checkpoint is written."
    ),
    def!(
        "log.flush.start.offset.checkpoint.interval.ms",
        Some("60000"),
        Int,
        "How often the log-start-offset checkpoint is written."
    ),
    def!(
        "replica.high.watermark.checkpoint.interval.ms",
        Some("5000"),
        Long,
        "How often the high-watermark checkpoint is written."
    ),
    def!(
        "log.cleanup.policy",
        Some("delete"),
        List,
        "Default cleanup policy (topic: cleanup.policy)."
    ),
    def!(
        "log.segment.delete.delay.ms",
        Some("60000"),
        Long,
        "Delay before a .deleted segment is removed (topic: file.delete.delay.ms)."
    ),
    def!(
        "log.message.timestamp.type",
        Some("CreateTime"),
        Str,
        "CreateTime or LogAppendTime (topic: message.timestamp.type)."
    ),
    def!(
        "log.message.timestamp.before.max.ms",
        Some("9223372036854775807"),
        Long,
        "How far in the past a record timestamp may be."
    ),
    def!(
        "log.message.timestamp.after.max.ms",
        Some("9223372036854775807"),
        Long,
        "How far in the future a record timestamp may be."
    ),
    def!(
        "compression.type",
        Some("producer"),
        Str,
        "Topic compression (topic: compression.type)."
    ),
    def!(
        "min.insync.replicas",
        Some("1"),
        Int,
        "Minimum ISR for acks=all (topic: min.insync.replicas)."
    ),
    def!(
        "num.io.threads",
        Some("8"),
        Int,
        "Accepted for compatibility; Shale sizes its runtime itself."
    ),
    def!(
        "num.network.threads",
        Some("3"),
        Int,
        "Accepted for compatibility; Shale sizes its runtime itself."
    ),
    def!(
        "max.incremental.fetch.session.cache.slots",
        Some("1000"),
        Int,
        "Maximum number of incremental fetch sessions (KIP-227)."
    ),
    def!(
        "producer.id.expiration.ms",
        Some("86400000"),
        Int,
        "Idle time after which producer state expires."
    ),
    def!(
        "remote.log.storage.system.enable",
        Some("true"),
        Bool,
        "Tiered storage master switch. Shale defaults to on (Kafka: off); with no S3 configured the remote tier is a local directory."
    ),
    def!(
        "remote.log.storage.manager.impl.prefix",
        Some("rsm.config."),
        Str,
        "Prefix of the remote storage settings (see docs/tiered-storage.md)."
    ),
    def!(
        "remote.log.metadata.manager.impl.prefix",
        Some("rlmm.config."),
        Str,
        "Prefix of the remote log metadata settings."
    ),
    def!(
        "remote.log.manager.task.interval.ms",
        Some("30000"),
        Long,
        "Interval of the per-partition copy and expiration tasks."
    ),
    def!(
        "remote.fetch.max.wait.ms",
        Some("500"),
        Int,
        "How long a fetch waits for remote data before answering without it (the read goes on and fills the cache)."
    ),
    def!(
        "remote.log.reader.threads",
        Some("10"),
        Int,
        "Accepted for compatibility; remote reads are asynchronous."
    ),
    def!(
        "remote.log.reader.max.pending.tasks",
        Some("100"),
        Int,
        "Remote reads in flight before further ones are refused."
    ),
    def!(
        "remote.log.manager.copy.max.bytes.per.second",
        Some("9223372036854775807"),
        Long,
        "Broker-wide upload rate limit."
    ),
    def!(
        "remote.log.manager.fetch.max.bytes.per.second",
        Some("9223372036854775807"),
        Long,
        "Broker-wide remote read rate limit."
    ),
    def!(
        "remote.log.metadata.custom.metadata.max.bytes",
        Some("128"),
        Int,
        "Largest custom metadata a segment upload may return."
    ),
    def!(
        "log.local.retention.ms",
        Some("-2"),
        Long,
        "Default local retention time of tiered topics (topic: local.retention.ms); -2 = log.retention.ms."
    ),
    def!(
        "log.local.retention.bytes",
        Some("-2"),
        Long,
        "Default local retention size of tiered topics (topic: local.retention.bytes); -2 = log.retention.bytes."
    ),
    def!(
        "shale.metrics.address",
        Some("127.0.0.1:9308"),
        Str,
        "Address of the Prometheus /metrics endpoint; empty disables it."
    ),
    def!(
        "shale.log.level",
        Some("info"),
        Str,
        "Log filter (tracing syntax); RUST_LOG overrides it."
    ),
    def!(
        "shale.log.open.files.max",
        None,
        Int,
        "Budget of file descriptors for partition logs; unset = 75% of the soft RLIMIT_NOFILE (ulimit -n) at start-up. Each partition's active segment holds one; older segments' files are opened on demand and closed least recently used first; CreateTopics/CreatePartitions beyond what the budget can hold (minus 1/16 headroom, at most 1024) fail with POLICY_VIOLATION."
    ),
    def!(
        "offsets.topic.num.partitions",
        Some("50"),
        Int,
        "Partitions of __consumer_offsets when it is created."
    ),
    def!(
        "offsets.topic.replication.factor",
        Some("3"),
        Int,
        "Replication factor of __consumer_offsets, capped by the number of brokers."
    ),
    def!(
        "offsets.topic.segment.bytes",
        Some("104857600"),
        Int,
        "segment.bytes of __consumer_offsets."
    ),
    def!(
        "offsets.retention.minutes",
        Some("10080"),
        Int,
        "How long committed offsets of an empty group (or a simple consumer) are kept."
    ),
    def!(
        "offsets.retention.check.interval.ms",
        Some("600000"),
        Long,
        "How often expired offsets are looked for."
    ),
    def!(
        "offset.metadata.max.bytes",
        Some("4096"),
        Int,
        "Largest metadata string an offset commit may carry."
    ),
    def!(
        "group.initial.rebalance.delay.ms",
        Some("3000"),
        Int,
        "How long the first rebalance of an empty group waits for more members."
    ),
    def!(
        "group.min.session.timeout.ms",
        Some("6000"),
        Int,
        "Smallest session timeout a member may ask for."
    ),
    def!(
        "group.max.session.timeout.ms",
        Some("1800000"),
        Int,
        "Largest session timeout a member may ask for."
    ),
    def!(
        "group.max.size",
        Some("2147483647"),
        Int,
        "Largest number of members in one consumer group."
    ),
];

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
    /// The properties file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A listener such as `PLAINTEXT://127.0.0.1:9092`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Listener name (`PLAINTEXT`).
    pub name: String,
    /// Host as written (may be empty for all interfaces).
    pub host: String,
    /// Port (0 = any free port).
    pub port: u16,
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
    /// Listeners to bind.
    pub listeners: Vec<Listener>,
    /// Listeners to advertise (defaults to `listeners`).
    pub advertised_listeners: Vec<Listener>,
    /// Partition log directories.
    pub log_dirs: Vec<PathBuf>,
    /// Directory holding `__cluster_metadata-0`.
    pub metadata_log_dir: PathBuf,
    /// `num.partitions`.
    pub num_partitions: i32,
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
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub checkpoint_interval_ms: u64,
    /// `max.incremental.fetch.session.cache.slots`.
    pub fetch_session_slots: usize,
    /// Prometheus endpoint, if enabled.
    pub metrics_address: Option<SocketAddr>,
    /// Log filter.
    pub log_level: String,
    /// `shale.log.open.files.max` (`None`: derived from the process limit).
    pub log_open_files_max: Option<usize>,
    /// Topic defaults derived from the `log.*` keys.
    pub log_config: LogConfig,
    /// The group coordinator's keys (`group.*`, `offsets.*`).
    pub groups: crate::group::GroupConfig,
}

impl BrokerConfig {
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
        let mut ignored = Vec::new();
        for (k, v) in &props {
            match BROKER_CONFIGS.iter().find(|d| d.name == k) {
                Some(def) => check_kind(def, v)?,
                None if k.starts_with("rsm.config.") || k.starts_with("rlmm.config.") => {}
                None => ignored.push(k.clone()),
            }
        }
        let get = |k: &str| -> Option<String> {
            props.get(k).cloned().or_else(|| {
                BROKER_CONFIGS
                    .iter()
                    .find(|d| d.name == k)
                    .and_then(|d| d.default.map(str::to_string))
            })
        };
        let int = |k: &str| -> i64 { get(k).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let (listeners, advertised_listeners) = listeners(&props)?;
        let (log_dirs, metadata_log_dir) = directories(&props)?;
        let node_id = int("node.id");
        if !(0..=i32::MAX as i64).contains(&node_id) {
            return Err(invalid("node.id", &node_id.to_string(), "must be >= 0"));
        }
        check_roles(&get("process.roles").unwrap_or_default())?;
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
        Ok(BrokerConfig {
            node_id: node_id as i32,
            listeners,
            advertised_listeners,
            log_dirs,
            metadata_log_dir,
            num_partitions: positive("num.partitions")? as i32,
            default_replication_factor: positive("default.replication.factor")? as i16,
            auto_create_topics: get("auto.create.topics.enable").as_deref() == Some("true"),
            delete_topic_enable: get("delete.topic.enable").as_deref() == Some("true"),
            socket_request_max_bytes: positive("socket.request.max.bytes")? as usize,
            queued_max_requests: positive("queued.max.requests")? as usize,
            retention_check_interval_ms: positive("log.retention.check.interval.ms")? as u64,
            checkpoint_interval_ms: positive("log.flush.offset.checkpoint.interval.ms")? as u64,
            fetch_session_slots: int("max.incremental.fetch.session.cache.slots").max(0) as usize,
            metrics_address,
            log_level: get("shale.log.level").unwrap_or_else(|| "info".into()),
            log_open_files_max: match props.get("shale.log.open.files.max") {
                Some(_) => Some(positive("shale.log.open.files.max")? as usize),
                None => None,
            },
            log_config,
            groups: crate::group::GroupConfig {
                offsets_partitions: positive("offsets.topic.num.partitions")? as i32,
                offsets_replication_factor: positive("offsets.topic.replication.factor")? as i16,
                offsets_segment_bytes: positive("offsets.topic.segment.bytes")?,
                offsets_retention_ms: positive("offsets.retention.minutes")?.saturating_mul(60_000),
                offsets_retention_check_interval_ms: positive(
                    "offsets.retention.check.interval.ms",
                )?,
                offset_metadata_max_bytes: int("offset.metadata.max.bytes").max(0) as usize,
                initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms").max(0),
                min_session_timeout_ms: int("group.min.session.timeout.ms"),
                max_session_timeout_ms: int("group.max.session.timeout.ms"),
                max_size: positive("group.max.size")? as usize,
            },
            explicit: props,
            ignored,
        })
    }

    /// The effective value of a broker key (explicit, else default), as DescribeConfigs shows it.
    pub fn value_of(&self, key: &str) -> Option<String> {
        self.explicit.get(key).cloned().or_else(|| {
            BROKER_CONFIGS
                .iter()
                .find(|d| d.name == key)
                .and_then(|d| d.default.map(str::to_string))
        })
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// `listeners` and `advertised.listeners` (which defaults to the former).
fn listeners(
    props: &BTreeMap<String, String>,
) -> Result<(Vec<Listener>, Vec<Listener>), ConfigError> {
    let default = "PLAINTEXT://127.0.0.1:9092".to_string();
    let listeners = parse_listeners("listeners", props.get("listeners").unwrap_or(&default))?;
    if listeners.is_empty() {
        return Err(invalid(
            "listeners",
            "",
            "at least one listener is required",
        ));
    }
    let advertised = match props.get("advertised.listeners") {
        Some(v) => parse_listeners("advertised.listeners", v)?,
        None => listeners.clone(),
    };
    Ok((listeners, advertised))
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

/// Only combined mode exists today.
fn check_roles(roles: &str) -> Result<(), ConfigError> {
    let mut roles: Vec<String> = split_list(roles);
    roles.sort();
    if roles != ["broker", "controller"] {
        return Err(invalid(
            "process.roles",
            &roles.join(","),
            "only combined mode (broker,controller) is supported",
        ));
    }
    Ok(())
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
        Kind::Str | Kind::List => true,
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

fn parse_listeners(key: &str, v: &str) -> Result<Vec<Listener>, ConfigError> {
    split_list(v)
        .into_iter()
        .map(|l| {
            let bad = |reason: &str| ConfigError::Invalid {
                key: key.into(),
                value: l.clone(),
                reason: reason.into(),
            };
            let (name, rest) = l
                .split_once("://")
                .ok_or_else(|| bad("expected NAME://host:port"))?;
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
            let port = port.parse().map_err(|_| bad("invalid port"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            Ok(Listener {
                name: name.to_string(),
                host,
                port,
            })
        })
        .collect()
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

/// The text of `docs/configuration.md`, generated from [`BROKER_CONFIGS`] and the topic configs,
/// so the document cannot drift from the code (a test compares them).
pub fn configuration_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from broker/src/config.rs and local-log's TOPIC_CONFIGS; run\n\
         `SHALE_WRITE_DOCS=1 cargo test -p shale-broker --test docs` after changing either. -->\n\n\
         Shale reads Kafka's `server.properties` format: `shale --config FILE` plus any number of\n\
         `--override key=value`. Unknown keys are logged and ignored; an invalid value stops start-up\n\
         with a message naming the key. With no configuration at all Shale runs a single node on\n\
         `127.0.0.1:9092` with its data under `./shale-data`, formatted on first start.\n\n\
         ## Broker\n\n| key | default | meaning |\n|---|---|---|\n",
    );
    for d in BROKER_CONFIGS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            d.name,
            d.default.map_or("(none)".to_string(), |v| format!("`{v}`")),
            d.doc
        ));
    }
    out.push_str(
        "\n## Topic\n\nSet per topic with CreateTopics configs, `kafka-configs.sh --alter` or\n\
         IncrementalAlterConfigs. A topic without its own value takes the broker key listed as its\n\
         synonym (a dynamic cluster-wide broker default first, then `server.properties`), else\n\
         Kafka's default.\n\n| key | default | broker synonyms | meaning |\n|---|---|---|---|\n",
    );
    for d in TOPIC_CONFIGS {
        let syn: Vec<String> = d.broker_synonyms.iter().map(|s| format!("`{s}`")).collect();
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            d.name,
            d.default,
            if syn.is_empty() {
                "—".into()
            } else {
                syn.join(", ")
            },
            d.doc.replace('\n', " ").replace('|', "\\|")
        ));
    }
    out
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
