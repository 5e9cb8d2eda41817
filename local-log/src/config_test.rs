//! Unit tests of topic-config parsing, rendering and validation.

use super::*;

#[test]
fn defaults_render_like_the_table() {
    let c = LogConfig::default();
    for (name, value) in c.entries() {
        let d = topic_config_def(name).unwrap();
        assert_eq!(d.default, value, "default of {name}");
    }
    assert_eq!(c.entries().len(), TOPIC_CONFIGS.len());
}

#[test]
fn overrides_apply_and_validate() {
    let c = LogConfig::default()
        .with_overrides([
            ("segment.bytes", "1024"),
            ("cleanup.policy", "compact,delete"),
            ("message.timestamp.type", "LogAppendTime"),
            ("min.cleanable.dirty.ratio", "0.25"),
        ])
        .unwrap();
    assert_eq!(c.segment_bytes, 1024);
    assert!(c.cleanup_policy.compact && c.cleanup_policy.delete);
    assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
    let e = c.entries();
    assert!(e.contains(&("cleanup.policy", "delete,compact".to_string())));
    assert!(e.contains(&("min.cleanable.dirty.ratio", "0.25".to_string())));

    for (k, v) in [
        ("segment.bytes", "13"),
        ("segment.ms", "0"),
        ("retention.ms", "-2"),
        ("cleanup.policy", "forever"),
        ("compression.type", "brotli"),
        ("no.such.config", "1"),
        ("preallocate", "yes"),
        ("min.cleanable.dirty.ratio", "1.5"),
    ] {
        match validate_topic_config(k, v) {
            Err(LogError::InvalidConfig { key, .. }) => assert_eq!(key, k),
            other => panic!("{k}={v}: {other:?}"),
        }
    }
    validate_topic_config("retention.ms", "-1").unwrap();
    validate_topic_config("segment.bytes", "14").unwrap();
}

#[test]
fn synonyms_are_listed() {
    let d = topic_config_def("retention.ms").unwrap();
    assert_eq!(
        d.broker_synonyms,
        &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours"
        ]
    );
    assert!(topic_config_def("message.format.version").is_none());
}
