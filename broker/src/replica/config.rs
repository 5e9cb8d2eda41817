//! A topic's effective log config on this broker: static defaults, dynamic cluster-wide
//! defaults from the metadata image, then the topic's own overrides.

use shale_local_log::LogConfig;
use shale_raft::MetadataImage;

/// A topic's effective log config: the broker's static defaults, then dynamic cluster-wide
/// defaults (`log.retention.ms`, … set through AlterConfigs), then the topic's own overrides.
pub fn effective_log_config(
    static_defaults: &LogConfig,
    image: &MetadataImage,
    overrides: &std::collections::BTreeMap<String, String>,
) -> LogConfig {
    let mut cfg = static_defaults.clone();
    if let Some(dynamic) = image.broker_configs.get("") {
        let pairs = dynamic_topic_defaults(dynamic);
        if let Ok(c) = cfg.with_overrides(pairs.iter().map(|(k, v)| (*k, v.as_str()))) {
            cfg = c;
        }
    }
    match cfg.with_overrides(overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid stored topic config");
            cfg
        }
    }
}

/// Dynamic cluster-wide broker configs that are topic defaults (`log.retention.ms`, …), mapped to
/// topic config names.
fn dynamic_topic_defaults(
    dynamic: &std::collections::BTreeMap<String, String>,
) -> Vec<(&'static str, String)> {
    shale_local_log::TOPIC_CONFIGS
        .iter()
        .filter_map(|def| {
            def.broker_synonyms
                .iter()
                .find_map(|s| dynamic.get(*s))
                .map(|v| (def.name, v.clone()))
        })
        .collect()
}
