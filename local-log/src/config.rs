//! Kafka topic configs: the typed [`LogConfig`], the static table of every Kafka 4.x topic config
//! ([`TOPIC_CONFIGS`]: name, type, default, broker synonyms, doc) and validation with Kafka's range
//! rules. Values are rendered the way Kafka renders them in DescribeConfigs.
//!
//! `compression.type` and the gzip/zstd levels are applied on append (`append.rs`);
//! `compression.lz4.level` and `preallocate` are stored but not acted upon. Cross-key checks of
//! a merged config (compaction lags, tiered storage, kip-405 §1.4) are in [`validate_merged`].

use shale_protocol::record_batch::TimestampType;

use crate::error::{LogError, Result};

/// `cleanup.policy`: a list of `delete` and/or `compact`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Old segments are deleted by retention.
    pub delete: bool,
    /// The log is compacted.
    pub compact: bool,
}

impl CleanupPolicy {
    fn render(&self) -> String {
        match (self.delete, self.compact) {
            (true, true) => "delete,compact".into(),
            (false, true) => "compact".into(),
            (true, false) => "delete".into(),
            (false, false) => String::new(),
        }
    }
}

/// The typed topic configuration of one log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`.
    pub segment_bytes: i32,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `segment.jitter.ms`.
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: i32,
    /// `index.interval.bytes`.
    pub index_interval_bytes: i32,
    /// `max.message.bytes`.
    pub max_message_bytes: i32,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub message_timestamp_after_max_ms: i64,
    /// `retention.ms` (-1 = infinite).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = infinite).
    pub retention_bytes: i64,
    /// `flush.messages`.
    pub flush_messages: i64,
    /// `flush.ms`.
    pub flush_ms: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `compression.type`.
    pub compression_type: String,
    /// `compression.gzip.level`.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level`.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level`.
    pub compression_zstd_level: i32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `file.delete.delay.ms`.
    pub file_delete_delay_ms: i64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `preallocate`.
    pub preallocate: bool,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `local.retention.ms` (-2 = use retention.ms).
    pub local_retention_ms: i64,
    /// `local.retention.bytes` (-2 = use retention.bytes).
    pub local_retention_bytes: i64,
    /// `remote.storage.enable`.
    pub remote_storage_enable: bool,
    /// `remote.log.copy.disable`.
    pub remote_log_copy_disable: bool,
    /// `remote.log.delete.on.disable`.
    pub remote_log_delete_on_disable: bool,
    /// `leader.replication.throttled.replicas` (raw list text).
    pub leader_replication_throttled_replicas: String,
    /// `follower.replication.throttled.replicas` (raw list text).
    pub follower_replication_throttled_replicas: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            segment_jitter_ms: 0,
            segment_index_bytes: 10_485_760,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            compression_type: "producer".into(),
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            min_insync_replicas: 1,
            file_delete_delay_ms: 60_000,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            preallocate: false,
            unclean_leader_election_enable: false,
            local_retention_ms: -2,
            local_retention_bytes: -2,
            remote_storage_enable: false,
            remote_log_copy_disable: false,
            remote_log_delete_on_disable: false,
            leader_replication_throttled_replicas: String::new(),
            follower_replication_throttled_replicas: String::new(),
        }
    }
}

/// Type of a config value, as DescribeConfigs reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    /// true/false.
    Boolean,
    /// Free text or an enumeration.
    String,
    /// 32-bit integer.
    Int,
    /// 16-bit integer.
    Short,
    /// 64-bit integer.
    Long,
    /// Floating point.
    Double,
    /// Comma-separated list.
    List,
    /// Java class name.
    Class,
    /// Secret.
    Password,
}

/// Static description of one topic config, for DescribeConfigs and validation.
#[derive(Debug)]
pub struct TopicConfigDef {
    /// Kafka's topic config name.
    pub name: &'static str,
    /// Value type.
    pub kind: ConfigKind,
    /// One-line description.
    pub doc: &'static str,
    /// Default rendered as Kafka renders it.
    pub default: &'static str,
    /// Broker config keys that set this topic config's default, highest precedence first.
    pub broker_synonyms: &'static [&'static str],
}

const fn def(
    name: &'static str,
    kind: ConfigKind,
    default: &'static str,
    broker_synonyms: &'static [&'static str],
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        kind,
        doc,
        default,
        broker_synonyms,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Every topic config Kafka 4.x defines, in alphabetical order.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "cleanup.policy",
        ConfigKind::List,
        "delete",
        &["log.cleanup.policy"],
        "Retention policy for old segments: delete and/or compact.",
    ),
    def(
        "compression.gzip.level",
        ConfigKind::Int,
        "-1",
        &["compression.gzip.level"],
        "Compression level for gzip, when the broker recompresses (-1: zlib's default, 6).",
    ),
    def(
        "compression.lz4.level",
        ConfigKind::Int,
        "9",
        &["compression.lz4.level"],
        "Compression level for lz4 (accepted; Shale's lz4 encoder has a single level).",
    ),
    def(
        "compression.type",
        ConfigKind::String,
        "producer",
        &["compression.type"],
        "Final compression type of the topic (producer keeps each batch's codec; any other value makes the broker recompress batches in another codec).",
    ),
    def(
        "compression.zstd.level",
        ConfigKind::Int,
        "3",
        &["compression.zstd.level"],
        "Compression level for zstd, when the broker recompresses.",
    ),
    def(
        "delete.retention.ms",
        ConfigKind::Long,
        "86400000",
        &["log.cleaner.delete.retention.ms"],
        "How long delete tombstones are retained in compacted topics.",
    ),
    def(
        "file.delete.delay.ms",
        ConfigKind::Long,
        "60000",
        &["log.segment.delete.delay.ms"],
        "Delay before a deleted segment file is removed from disk.",
    ),
    def(
        "flush.messages",
        ConfigKind::Long,
        LONG_MAX,
        &["log.flush.interval.messages"],
        "Number of messages appended before the log is fsynced.",
    ),
    def(
        "flush.ms",
        ConfigKind::Long,
        LONG_MAX,
        &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        "Maximum time between fsyncs of the log.",
    ),
    def(
        "follower.replication.throttled.replicas",
        ConfigKind::List,
        "",
        &[],
        "Replicas whose log replication is throttled on the follower side.",
    ),
    def(
        "index.interval.bytes",
        ConfigKind::Int,
        "4096",
        &["log.index.interval.bytes"],
        "Bytes appended between two offset index entries.",
    ),
    def(
        "leader.replication.throttled.replicas",
        ConfigKind::List,
        "",
        &[],
        "Replicas whose log replication is throttled on the leader side.",
    ),
    def(
        "local.retention.bytes",
        ConfigKind::Long,
        "-2",
        &["log.local.retention.bytes"],
        "Local size bound when tiered storage is enabled (-2 = retention.bytes).",
    ),
    def(
        "local.retention.ms",
        ConfigKind::Long,
        "-2",
        &["log.local.retention.ms"],
        "Local time bound when tiered storage is enabled (-2 = retention.ms).",
    ),
    def(
        "max.compaction.lag.ms",
        ConfigKind::Long,
        LONG_MAX,
        &["log.cleaner.max.compaction.lag.ms"],
        "Maximum time a message stays ineligible for compaction.",
    ),
    def(
        "max.message.bytes",
        ConfigKind::Int,
        "1048588",
        &["message.max.bytes"],
        "Largest record batch size allowed (including the 12-byte log overhead).",
    ),
    def(
        "message.timestamp.after.max.ms",
        ConfigKind::Long,
        LONG_MAX,
        &["log.message.timestamp.after.max.ms"],
        "Allowed distance of a record timestamp after the broker time.",
    ),
    def(
        "message.timestamp.before.max.ms",
        ConfigKind::Long,
        LONG_MAX,
        &["log.message.timestamp.before.max.ms"],
        "Allowed distance of a record timestamp before the broker time.",
    ),
    def(
        "message.timestamp.type",
        ConfigKind::String,
        "CreateTime",
        &["log.message.timestamp.type"],
        "CreateTime or LogAppendTime.",
    ),
    def(
        "min.cleanable.dirty.ratio",
        ConfigKind::Double,
        "0.5",
        &["log.cleaner.min.cleanable.ratio"],
        "Dirty ratio above which the log is compacted.",
    ),
    def(
        "min.compaction.lag.ms",
        ConfigKind::Long,
        "0",
        &["log.cleaner.min.compaction.lag.ms"],
        "Minimum time a message stays uncompacted.",
    ),
    def(
        "min.insync.replicas",
        ConfigKind::Int,
        "1",
        &["min.insync.replicas"],
        "Minimum in-sync replicas for acks=all produce.",
    ),
    def(
        "preallocate",
        ConfigKind::Boolean,
        "false",
        &["log.preallocate"],
        "Preallocate segment files.",
    ),
    def(
        "remote.log.copy.disable",
        ConfigKind::Boolean,
        "false",
        &[],
        "Stop copying segments to remote storage.",
    ),
    def(
        "remote.log.delete.on.disable",
        ConfigKind::Boolean,
        "false",
        &[],
        "Delete remote data when tiering is disabled.",
    ),
    def(
        "remote.storage.enable",
        ConfigKind::Boolean,
        "false",
        &[],
        "Enable tiered storage for the topic.",
    ),
    def(
        "retention.bytes",
        ConfigKind::Long,
        "-1",
        &["log.retention.bytes"],
        "Maximum partition size before old segments are deleted (-1 = unbounded).",
    ),
    def(
        "retention.ms",
        ConfigKind::Long,
        "604800000",
        &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        "Maximum age of a segment before deletion (-1 = unbounded).",
    ),
    def(
        "segment.bytes",
        ConfigKind::Int,
        "1073741824",
        &["log.segment.bytes"],
        "Segment file size.",
    ),
    def(
        "segment.index.bytes",
        ConfigKind::Int,
        "10485760",
        &["log.index.size.max.bytes"],
        "Size of the offset and time index files.",
    ),
    def(
        "segment.jitter.ms",
        ConfigKind::Long,
        "0",
        &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        "Maximum random jitter subtracted from segment.ms.",
    ),
    def(
        "segment.ms",
        ConfigKind::Long,
        "604800000",
        &["log.roll.ms", "log.roll.hours"],
        "Time after which the active segment is rolled.",
    ),
    def(
        "unclean.leader.election.enable",
        ConfigKind::Boolean,
        "false",
        &["unclean.leader.election.enable"],
        "Allow out-of-sync replicas to become leader.",
    ),
];

/// The definition of topic config `name`, if Kafka has one.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one `name=value` pair (unknown key or bad value -> [`LogError::InvalidConfig`]).
pub fn validate_topic_config(name: &str, value: &str) -> Result<()> {
    let mut c = LogConfig::default();
    apply(&mut c, name, value)
}

/// Cross-key validation of a merged (broker defaults + topic overrides) config on create/alter,
/// as Kafka's `validateTopicLogConfigValues` (kip-405.md §1.4): compaction lag order and the
/// tiered-storage rules. `previous` is the config before an alter (`None` on create);
/// `system_enabled` is the broker's `remote.log.storage.system.enable`. Messages are Kafka's.
pub fn validate_merged(
    config: &LogConfig,
    previous: Option<&LogConfig>,
    system_enabled: bool,
) -> Result<()> {
    let c = config;
    if c.min_compaction_lag_ms > c.max_compaction_lag_ms {
        return Err(bad(
            "min.compaction.lag.ms",
            &c.min_compaction_lag_ms.to_string(),
            format!(
                "conflict topic config setting min.compaction.lag.ms ({}) > max.compaction.lag.ms ({})",
                c.min_compaction_lag_ms, c.max_compaction_lag_ms
            ),
        ));
    }
    if !c.remote_storage_enable {
        if previous.is_some_and(|p| p.remote_storage_enable) && !c.remote_log_delete_on_disable {
            return Err(bad(
                "remote.storage.enable",
                "false",
                "It is invalid to disable remote storage without deleting remote data. If you want to keep the remote data and turn to read only, please set `remote.storage.enable=true,remote.log.copy.disable=true`. If you want to disable remote storage and delete all remote data, please set `remote.storage.enable=false,remote.log.delete.on.disable=true`.",
            ));
        }
        return Ok(());
    }
    if !system_enabled {
        return Err(bad(
            "remote.storage.enable",
            "true",
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.",
        ));
    }
    if c.cleanup_policy.compact {
        return Err(bad(
            "cleanup.policy",
            &c.cleanup_policy.render(),
            "Remote log storage is unsupported for the compacted topics",
        ));
    }
    let pairs = [
        (
            "local.retention.bytes",
            "retention.bytes",
            c.local_retention_bytes,
            c.retention_bytes,
            c.retention_bytes > -1,
        ),
        (
            "local.retention.ms",
            "retention.ms",
            c.local_retention_ms,
            c.retention_ms,
            c.retention_ms != -1,
        ),
    ];
    for (local_key, total_key, local, total, bounded) in pairs {
        if bounded && local != -2 {
            if local == -1 {
                let msg = format!("Value must not be -1 as {total_key} value is set as {total}.");
                return Err(bad(local_key, &local.to_string(), msg));
            }
            if local > total {
                let msg =
                    format!("Value must not be more than {total_key} property value: {total}");
                return Err(bad(local_key, &local.to_string(), msg));
            }
        }
    }
    if c.remote_log_copy_disable {
        for (local_key, total_key, local, total, _) in pairs {
            if local != -2 && local != total {
                let msg = format!("When `remote.log.copy.disable` is set to true, the `{local_key}` and `{total_key}` must be set to the identical value because there will be no more logs copied to the remote storage.");
                return Err(bad(local_key, &local.to_string(), msg));
            }
        }
    }
    Ok(())
}

/// Validation of a config received from the metadata store by a broker whose tiering flag is
/// off (Kafka's "receiving config from store" variant).
pub fn validate_received(config: &LogConfig, system_enabled: bool) -> Result<()> {
    if config.remote_storage_enable && !system_enabled {
        return Err(bad(
            "remote.storage.enable",
            "true",
            "You have to delete all topics with the property remote.storage.enable=true before disabling tiered storage cluster-wide",
        ));
    }
    Ok(())
}

fn bad(key: &str, value: &str, reason: impl Into<String>) -> LogError {
    LogError::InvalidConfig {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn parse_long(key: &str, value: &str, min: i64) -> Result<i64> {
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| bad(key, value, "not a valid long"))?;
    if v < min {
        return Err(bad(key, value, format!("value must be at least {min}")));
    }
    Ok(v)
}

fn parse_int(key: &str, value: &str, min: i32, max: i32) -> Result<i32> {
    let v: i32 = value
        .trim()
        .parse()
        .map_err(|_| bad(key, value, "not a valid int"))?;
    if v < min || v > max {
        return Err(bad(key, value, format!("value must be in [{min}, {max}]")));
    }
    Ok(v)
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, value, "expected true or false")),
    }
}

fn parse_cleanup(key: &str, value: &str) -> Result<CleanupPolicy> {
    let mut p = CleanupPolicy {
        delete: false,
        compact: false,
    };
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "delete" => p.delete = true,
            "compact" => p.compact = true,
            _ => return Err(bad(key, value, "expected a list of delete and/or compact")),
        }
    }
    Ok(p)
}

fn parse_timestamp_type(key: &str, value: &str) -> Result<TimestampType> {
    match value.trim() {
        "CreateTime" => Ok(TimestampType::CreateTime),
        "LogAppendTime" => Ok(TimestampType::LogAppendTime),
        _ => Err(bad(key, value, "expected CreateTime or LogAppendTime")),
    }
}

fn render_timestamp_type(t: TimestampType) -> String {
    match t {
        TimestampType::CreateTime => "CreateTime".into(),
        TimestampType::LogAppendTime => "LogAppendTime".into(),
    }
}

/// Sets `key` on `c` from its Kafka text form, validating as Kafka does.
fn apply(c: &mut LogConfig, key: &str, value: &str) -> Result<()> {
    let v = value;
    match key {
        "cleanup.policy" => c.cleanup_policy = parse_cleanup(key, v)?,
        "compression.gzip.level" => {
            let l = parse_int(key, v, -1, 9)?;
            if l == 0 {
                return Err(bad(key, v, "value must be -1 or in [1, 9]"));
            }
            c.compression_gzip_level = l;
        }
        "compression.lz4.level" => c.compression_lz4_level = parse_int(key, v, 1, 17)?,
        "compression.type" => {
            let t = v.trim();
            if !["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"].contains(&t) {
                return Err(bad(
                    key,
                    v,
                    "expected one of uncompressed, zstd, lz4, snappy, gzip, producer",
                ));
            }
            c.compression_type = t.to_string();
        }
        "compression.zstd.level" => c.compression_zstd_level = parse_int(key, v, -131_072, 22)?,
        "delete.retention.ms" => c.delete_retention_ms = parse_long(key, v, 0)?,
        "file.delete.delay.ms" => c.file_delete_delay_ms = parse_long(key, v, 0)?,
        "flush.messages" => c.flush_messages = parse_long(key, v, 1)?,
        "flush.ms" => c.flush_ms = parse_long(key, v, 0)?,
        "follower.replication.throttled.replicas" => {
            c.follower_replication_throttled_replicas = v.trim().to_string()
        }
        "index.interval.bytes" => c.index_interval_bytes = parse_int(key, v, 0, i32::MAX)?,
        "leader.replication.throttled.replicas" => {
            c.leader_replication_throttled_replicas = v.trim().to_string()
        }
        "local.retention.bytes" => c.local_retention_bytes = parse_long(key, v, -2)?,
        "local.retention.ms" => c.local_retention_ms = parse_long(key, v, -2)?,
        "max.compaction.lag.ms" => c.max_compaction_lag_ms = parse_long(key, v, 1)?,
        "max.message.bytes" => c.max_message_bytes = parse_int(key, v, 0, i32::MAX)?,
        "message.timestamp.after.max.ms" => {
            c.message_timestamp_after_max_ms = parse_long(key, v, 0)?
        }
        "message.timestamp.before.max.ms" => {
            c.message_timestamp_before_max_ms = parse_long(key, v, 0)?
        }
        "message.timestamp.type" => c.message_timestamp_type = parse_timestamp_type(key, v)?,
        "min.cleanable.dirty.ratio" => {
            let r: f64 = v
                .trim()
                .parse()
                .map_err(|_| bad(key, v, "not a valid double"))?;
            if !(0.0..=1.0).contains(&r) {
                return Err(bad(key, v, "value must be in [0.0, 1.0]"));
            }
            c.min_cleanable_dirty_ratio = r;
        }
        "min.compaction.lag.ms" => c.min_compaction_lag_ms = parse_long(key, v, 0)?,
        "min.insync.replicas" => c.min_insync_replicas = parse_int(key, v, 1, i32::MAX)?,
        "preallocate" => c.preallocate = parse_bool(key, v)?,
        "remote.log.copy.disable" => c.remote_log_copy_disable = parse_bool(key, v)?,
        "remote.log.delete.on.disable" => c.remote_log_delete_on_disable = parse_bool(key, v)?,
        "remote.storage.enable" => c.remote_storage_enable = parse_bool(key, v)?,
        "retention.bytes" => c.retention_bytes = parse_long(key, v, i64::MIN)?,
        "retention.ms" => c.retention_ms = parse_long(key, v, -1)?,
        "segment.bytes" => c.segment_bytes = parse_int(key, v, 14, i32::MAX)?,
        "segment.index.bytes" => c.segment_index_bytes = parse_int(key, v, 4, i32::MAX)?,
        "segment.jitter.ms" => c.segment_jitter_ms = parse_long(key, v, 0)?,
        "segment.ms" => c.segment_ms = parse_long(key, v, 1)?,
        "unclean.leader.election.enable" => c.unclean_leader_election_enable = parse_bool(key, v)?,
        _ => return Err(bad(key, v, "unknown topic config")),
    }
    Ok(())
}

/// Renders `key` of `c` as Kafka renders it (`None` for an unknown key).
fn render(c: &LogConfig, key: &str) -> Option<String> {
    let s = match key {
        "cleanup.policy" => c.cleanup_policy.render(),
        "compression.gzip.level" => c.compression_gzip_level.to_string(),
        "compression.lz4.level" => c.compression_lz4_level.to_string(),
        "compression.type" => c.compression_type.clone(),
        "compression.zstd.level" => c.compression_zstd_level.to_string(),
        "delete.retention.ms" => c.delete_retention_ms.to_string(),
        "file.delete.delay.ms" => c.file_delete_delay_ms.to_string(),
        "flush.messages" => c.flush_messages.to_string(),
        "flush.ms" => c.flush_ms.to_string(),
        "follower.replication.throttled.replicas" => {
            c.follower_replication_throttled_replicas.clone()
        }
        "index.interval.bytes" => c.index_interval_bytes.to_string(),
        "leader.replication.throttled.replicas" => c.leader_replication_throttled_replicas.clone(),
        "local.retention.bytes" => c.local_retention_bytes.to_string(),
        "local.retention.ms" => c.local_retention_ms.to_string(),
        "max.compaction.lag.ms" => c.max_compaction_lag_ms.to_string(),
        "max.message.bytes" => c.max_message_bytes.to_string(),
        "message.timestamp.after.max.ms" => c.message_timestamp_after_max_ms.to_string(),
        "message.timestamp.before.max.ms" => c.message_timestamp_before_max_ms.to_string(),
        "message.timestamp.type" => render_timestamp_type(c.message_timestamp_type),
        "min.cleanable.dirty.ratio" => format!("{:?}", c.min_cleanable_dirty_ratio),
        "min.compaction.lag.ms" => c.min_compaction_lag_ms.to_string(),
        "min.insync.replicas" => c.min_insync_replicas.to_string(),
        "preallocate" => c.preallocate.to_string(),
        "remote.log.copy.disable" => c.remote_log_copy_disable.to_string(),
        "remote.log.delete.on.disable" => c.remote_log_delete_on_disable.to_string(),
        "remote.storage.enable" => c.remote_storage_enable.to_string(),
        "retention.bytes" => c.retention_bytes.to_string(),
        "retention.ms" => c.retention_ms.to_string(),
        "segment.bytes" => c.segment_bytes.to_string(),
        "segment.index.bytes" => c.segment_index_bytes.to_string(),
        "segment.jitter.ms" => c.segment_jitter_ms.to_string(),
        "segment.ms" => c.segment_ms.to_string(),
        "unclean.leader.election.enable" => c.unclean_leader_election_enable.to_string(),
        _ => return None,
    };
    Some(s)
}

impl LogConfig {
    /// Applies `key=value` overrides (Kafka topic config names) on top of `self`. Unknown key or
    /// bad value -> [`LogError::InvalidConfig`] naming the key.
    pub fn with_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<LogConfig> {
        let mut c = self.clone();
        for (k, v) in overrides {
            apply(&mut c, k, v)?;
        }
        Ok(c)
    }

    /// Every topic config with its current value rendered as Kafka renders it.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        TOPIC_CONFIGS
            .iter()
            .filter_map(|d| render(self, d.name).map(|v| (d.name, v)))
            .collect()
    }

    /// `segment.ms`, or `min(max.compaction.lag.ms, segment.ms)` for compacted topics.
    pub(crate) fn max_segment_ms(&self) -> i64 {
        if self.cleanup_policy.compact {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }
}

#[cfg(test)]
#[path = "config_test.rs"]
mod tests;
