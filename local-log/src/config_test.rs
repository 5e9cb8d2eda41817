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

fn merged(kv: &[(&str, &str)]) -> LogConfig {
    LogConfig::default()
        .with_overrides(kv.iter().copied())
        .unwrap()
}

fn reason(r: Result<()>) -> String {
    match r {
        Err(LogError::InvalidConfig { reason, .. }) => reason,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn tiering_validation_matrix() {
    let on = [("remote.storage.enable", "true")];
    assert!(validate_merged(&merged(&on), None, true).is_ok());
    assert!(reason(validate_merged(&merged(&on), None, false))
        .starts_with("Tiered Storage functionality is disabled in the broker"));
    assert!(reason(validate_received(&merged(&on), false)).starts_with("You have to delete all"));
    assert!(validate_received(&merged(&on), true).is_ok());
    for policy in ["compact", "compact,delete"] {
        let c = merged(&[
            ("remote.storage.enable", "true"),
            ("cleanup.policy", policy),
        ]);
        assert_eq!(
            reason(validate_merged(&c, None, true)),
            "Remote log storage is unsupported for the compacted topics"
        );
    }
    // Local retention vs total retention.
    let t = |kv: &[(&str, &str)]| {
        let mut all = vec![("remote.storage.enable", "true")];
        all.extend_from_slice(kv);
        validate_merged(&merged(&all), None, true)
    };
    assert!(t(&[("retention.ms", "1000"), ("local.retention.ms", "1000")]).is_ok());
    assert!(t(&[("retention.ms", "1000"), ("local.retention.ms", "-2")]).is_ok());
    assert_eq!(
        reason(t(&[("retention.ms", "1000"), ("local.retention.ms", "-1")])),
        "Value must not be -1 as retention.ms value is set as 1000."
    );
    assert_eq!(
        reason(t(&[
            ("retention.ms", "1000"),
            ("local.retention.ms", "1001")
        ])),
        "Value must not be more than retention.ms property value: 1000"
    );
    assert!(t(&[("retention.ms", "-1"), ("local.retention.ms", "-1")]).is_ok());
    assert!(t(&[("retention.ms", "-1"), ("local.retention.ms", "99999")]).is_ok());
    assert!(t(&[("retention.bytes", "-1"), ("local.retention.bytes", "5")]).is_ok());
    assert_eq!(
        reason(t(&[
            ("retention.bytes", "10"),
            ("local.retention.bytes", "-1")
        ])),
        "Value must not be -1 as retention.bytes value is set as 10."
    );
    assert_eq!(
        reason(t(&[
            ("retention.bytes", "10"),
            ("local.retention.bytes", "11")
        ])),
        "Value must not be more than retention.bytes property value: 10"
    );
    // Copy disabled: local must be -2 or equal to total.
    assert!(t(&[("remote.log.copy.disable", "true")]).is_ok());
    assert!(t(&[
        ("remote.log.copy.disable", "true"),
        ("retention.ms", "1000"),
        ("local.retention.ms", "1000")
    ])
    .is_ok());
    assert!(reason(t(&[
        ("remote.log.copy.disable", "true"),
        ("retention.ms", "1000"),
        ("local.retention.ms", "500")
    ]))
    .contains("the `local.retention.ms` and `retention.ms` must be set to the identical value"));
    assert!(reason(t(&[
        ("remote.log.copy.disable", "true"),
        ("retention.bytes", "1000"),
        ("local.retention.bytes", "500")
    ]))
    .contains("`local.retention.bytes` and `retention.bytes`"));
    // Turning tiering off needs remote.log.delete.on.disable.
    let prev = merged(&on);
    let off = merged(&[]);
    assert!(reason(validate_merged(&off, Some(&prev), true))
        .starts_with("It is invalid to disable remote storage without deleting remote data."));
    let off_del = merged(&[("remote.log.delete.on.disable", "true")]);
    assert!(validate_merged(&off_del, Some(&prev), true).is_ok());
    assert!(validate_merged(&off, Some(&off), false).is_ok());
    assert!(validate_merged(&off, None, false).is_ok());
    // Compaction lags.
    let lag = merged(&[
        ("min.compaction.lag.ms", "10"),
        ("max.compaction.lag.ms", "5"),
    ]);
    assert!(reason(validate_merged(&lag, None, false)).starts_with("conflict topic config setting"));
}
