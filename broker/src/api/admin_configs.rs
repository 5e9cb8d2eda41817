//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics and brokers.
//!
//! A topic config's value comes from the first of: the topic's own setting (DYNAMIC_TOPIC_CONFIG),
//! a dynamic cluster-wide broker default (DYNAMIC_DEFAULT_BROKER_CONFIG), the broker's
//! `server.properties` (STATIC_BROKER_CONFIG), Kafka's default (DEFAULT_CONFIG) — the same order
//! DescribeConfigs lists as synonyms.

use super::{blocking, RequestContext};
use crate::config::{all_broker_configs, Kind};
use crate::errors::controller_error;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_local_log::{ConfigKind, TOPIC_CONFIGS};
use shale_raft::acl::op;
use shale_raft::{AlterConfigOp, ConfigOpType, ConfigResource};
use std::collections::BTreeMap;
use std::sync::Arc;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;
const SRC_TOPIC: i8 = 1;
const SRC_DYNAMIC_BROKER: i8 = 2;
const SRC_DYNAMIC_DEFAULT: i8 = 3;
const SRC_STATIC: i8 = 4;
const SRC_DEFAULT: i8 = 5;

/// One described config.
#[derive(Debug)]
pub struct Entry {
    /// Key.
    pub name: String,
    /// Effective value.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: i8,
    /// Every place that sets it, highest precedence first.
    pub synonyms: Vec<(String, Option<String>, i8)>,
    /// DescribeConfigs v3 type id.
    pub kind: i8,
    /// Documentation.
    pub doc: &'static str,
    /// A secret: described as null and sensitive, as Kafka describes passwords.
    pub sensitive: bool,
}

/// Every topic config of a topic with the given overrides.
pub fn topic_config_entries(broker: &Broker, overrides: &BTreeMap<String, String>) -> Vec<Entry> {
    let image = broker.image();
    let dynamic = image.broker_configs.get("").cloned().unwrap_or_default();
    let effective = broker.effective_log_config(&image, overrides);
    let values: BTreeMap<&str, String> = effective.entries().into_iter().collect();
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(def.name) {
                synonyms.push((def.name.to_string(), Some(v.clone()), SRC_TOPIC));
            }
            for syn in def.broker_synonyms {
                if let Some(v) = dynamic.get(*syn) {
                    synonyms.push((syn.to_string(), Some(v.clone()), SRC_DYNAMIC_DEFAULT));
                }
            }
            for syn in def.broker_synonyms {
                if let Some(v) = broker.config.explicit.get(*syn) {
                    synonyms.push((syn.to_string(), Some(v.clone()), SRC_STATIC));
                }
            }
            let default = def.broker_synonyms.first().map_or(def.name, |s| s);
            synonyms.push((
                default.to_string(),
                Some(def.default.to_string()),
                SRC_DEFAULT,
            ));
            Entry {
                name: def.name.to_string(),
                value: values
                    .get(def.name)
                    .cloned()
                    .or(Some(def.default.to_string())),
                source: synonyms[0].2,
                synonyms,
                kind: topic_kind(def.kind),
                doc: def.doc,
                sensitive: false,
            }
        })
        .collect()
}

fn broker_config_entries(
    broker: &Broker,
    dynamic: &BTreeMap<String, String>,
    dynamic_default: &BTreeMap<String, String>,
) -> Vec<Entry> {
    all_broker_configs()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = dynamic.get(def.name) {
                synonyms.push((def.name.to_string(), Some(v.clone()), SRC_DYNAMIC_BROKER));
            }
            if let Some(v) = dynamic_default.get(def.name) {
                synonyms.push((def.name.to_string(), Some(v.clone()), SRC_DYNAMIC_DEFAULT));
            }
            if let Some(v) = broker.config.explicit.get(def.name) {
                synonyms.push((def.name.to_string(), Some(v.clone()), SRC_STATIC));
            }
            synonyms.push((
                def.name.to_string(),
                def.default.map(str::to_string),
                SRC_DEFAULT,
            ));
            Entry {
                name: def.name.to_string(),
                value: synonyms[0].1.clone(),
                source: synonyms[0].2,
                synonyms,
                kind: match def.kind {
                    Kind::Bool => 1,
                    Kind::Str => 2,
                    Kind::Int => 3,
                    Kind::Long => 5,
                    Kind::List => 7,
                    Kind::Password => 9,
                },
                doc: def.doc,
                sensitive: def.kind == Kind::Password,
            }
        })
        .collect()
}

fn topic_kind(kind: ConfigKind) -> i8 {
    match kind {
        ConfigKind::Boolean => 1,
        ConfigKind::String => 2,
        ConfigKind::Int => 3,
        ConfigKind::Short => 4,
        ConfigKind::Long => 5,
        ConfigKind::Double => 6,
        ConfigKind::List => 7,
        ConfigKind::Class => 8,
        ConfigKind::Password => 9,
    }
}

/// DescribeConfigs for topics and brokers.
pub fn describe(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let image = broker.image();
    let mut resp = DescribeConfigsResponse::default();
    for r in &req.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = r.resource_type;
        out.resource_name = r.resource_name.clone();
        let name = r.resource_name.as_str();
        if let Some((code, _)) = denied(ctx, r.resource_type, name, op::DESCRIBE_CONFIGS) {
            out.error_code = code;
            out.error_message = None;
            resp.results.push(out);
            continue;
        }
        let entries = match r.resource_type {
            TOPIC => match image.topic(name) {
                Some(t) => Ok(topic_config_entries(broker, &t.configs)),
                None => Err(E::UnknownTopicOrPartition),
            },
            BROKER if name.is_empty() || name == broker.config.node_id.to_string() => {
                let none = BTreeMap::new();
                let dynamic = if name.is_empty() {
                    &none
                } else {
                    image.broker_configs.get(name).unwrap_or(&none)
                };
                let default = image.broker_configs.get("").unwrap_or(&none);
                Ok(broker_config_entries(broker, dynamic, default))
            }
            BROKER => Err(E::InvalidRequest),
            _ => Err(E::InvalidRequest),
        };
        match entries {
            Ok(entries) => {
                let wanted = r.configuration_keys.as_ref();
                out.configs = entries
                    .into_iter()
                    .filter(|e| wanted.is_none_or(|k| k.iter().any(|k| k.as_str() == e.name)))
                    .map(|e| result(e, req.include_synonyms, req.include_documentation, version))
                    .collect();
            }
            Err(e) => {
                out.error_code = e.code();
                out.error_message = Some(StrBytes::from_string(format!(
                    "{e:?} for resource '{name}'"
                )));
            }
        }
        resp.results.push(out);
    }
    resp
}

fn result(e: Entry, synonyms: bool, docs: bool, version: i16) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = StrBytes::from_string(e.name);
    let secret = e.sensitive;
    c.value = e.value.filter(|_| !secret).map(StrBytes::from_string);
    c.is_sensitive = secret;
    c.config_source = e.source;
    c.config_type = if version >= 3 { e.kind } else { 0 };
    if synonyms {
        c.synonyms = e
            .synonyms
            .into_iter()
            .map(|(n, v, s)| {
                let mut syn = DescribeConfigsSynonym::default();
                syn.name = StrBytes::from_string(n);
                syn.value = v.filter(|_| !secret).map(StrBytes::from_string);
                syn.source = s;
                syn
            })
            .collect();
    }
    if docs && version >= 3 {
        c.documentation = Some(StrBytes::from_static_str(e.doc));
    }
    if version == 0 {
        c.synonyms.clear();
    }
    c
}

/// The error when the principal may not perform `operation` on a config resource: a topic's
/// configs need it on the topic, a broker's on the cluster (Kafka's ConfigHelper rules).
fn denied(
    ctx: &RequestContext<'_>,
    resource_type: i8,
    name: &str,
    operation: i8,
) -> Option<(i16, String)> {
    let (allowed, code) = match resource_type {
        TOPIC => (
            ctx.authz.topic(operation, name),
            E::TopicAuthorizationFailed,
        ),
        GROUP => (
            ctx.authz.group(operation, name),
            E::GroupAuthorizationFailed,
        ),
        _ => (ctx.authz.cluster(operation), E::ClusterAuthorizationFailed),
    };
    (!allowed).then(|| (code.code(), String::new()))
}

fn resource(
    broker: &Broker,
    resource_type: i8,
    name: &str,
) -> Result<ConfigResource, (i16, String)> {
    match resource_type {
        TOPIC => Ok(ConfigResource::Topic(name.to_string())),
        BROKER if name.is_empty() => Ok(ConfigResource::Broker(None)),
        BROKER if name == broker.config.node_id.to_string() => {
            Ok(ConfigResource::Broker(Some(broker.config.node_id)))
        }
        _ => Err((
            E::InvalidRequest.code(),
            format!("unsupported config resource {resource_type}/'{name}'"),
        )),
    }
}

/// Legacy AlterConfigs: replaces the whole set of dynamic configs of each resource.
pub async fn alter(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for r in &req.resources {
        let name = r.resource_name.as_str();
        if let Some(refused) = denied(ctx, r.resource_type, name, op::ALTER_CONFIGS) {
            let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
            out.resource_type = r.resource_type;
            out.resource_name = r.resource_name.clone();
            (out.error_code, out.error_message) = (refused.0, None);
            resp.responses.push(out);
            continue;
        }
        let configs: Vec<(String, String)> = r
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        let outcome = apply(
            broker,
            r.resource_type,
            r.resource_name.as_str(),
            req.validate_only,
            Change::Replace(configs),
        )
        .await;
        let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = r.resource_type;
        out.resource_name = r.resource_name.clone();
        if let Err((code, msg)) = outcome {
            out.error_code = code;
            out.error_message = Some(StrBytes::from_string(msg));
        }
        resp.responses.push(out);
    }
    resp
}

/// IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT per key.
pub async fn incremental_alter(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for r in &req.resources {
        let refused = denied(ctx, r.resource_type, &r.resource_name, op::ALTER_CONFIGS);
        let ops: Result<Vec<AlterConfigOp>, (i16, String)> = r
            .configs
            .iter()
            .map(|c| {
                let op = match c.config_operation {
                    0 => ConfigOpType::Set,
                    1 => ConfigOpType::Delete,
                    2 => ConfigOpType::Append,
                    3 => ConfigOpType::Subtract,
                    x => {
                        return Err((
                            E::InvalidRequest.code(),
                            format!("unknown config operation {x}"),
                        ))
                    }
                };
                Ok(AlterConfigOp {
                    name: c.name.to_string(),
                    op,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
            })
            .collect();
        let outcome = match (refused, ops) {
            (Some(refused), _) => Err(refused),
            (None, Ok(ops)) => {
                apply(
                    broker,
                    r.resource_type,
                    r.resource_name.as_str(),
                    req.validate_only,
                    Change::Ops(ops),
                )
                .await
            }
            (None, Err(e)) => Err(e),
        };
        let mut out = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = r.resource_type;
        out.resource_name = r.resource_name.clone();
        if let Err((code, msg)) = outcome {
            out.error_code = code;
            out.error_message = Some(StrBytes::from_string(msg));
        }
        resp.responses.push(out);
    }
    resp
}

enum Change {
    Replace(Vec<(String, String)>),
    Ops(Vec<AlterConfigOp>),
}

async fn apply(
    broker: &Arc<Broker>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: Change,
) -> Result<(), (i16, String)> {
    let res = resource(broker, resource_type, name)?;
    if let ConfigResource::Broker(_) = res {
        let keys: Vec<&str> = match &change {
            Change::Replace(c) => c.iter().map(|(k, _)| k.as_str()).collect(),
            Change::Ops(o) => o.iter().map(|o| o.name.as_str()).collect(),
        };
        if let Some(bad) = keys.iter().find(|k| !is_dynamic_broker_key(k)) {
            return Err((
                E::InvalidRequest.code(),
                format!("broker config {bad} cannot be updated dynamically"),
            ));
        }
    }
    let result = blocking(broker, move |b| {
        let r = match change {
            Change::Replace(c) => b.controller.replace_configs(res, c, validate_only),
            Change::Ops(o) => b.controller.alter_configs(res, o, validate_only),
        };
        if r.is_ok() && !validate_only {
            if let Err(e) = b.reconcile() {
                tracing::error!(error = %e, "applying new configs to logs failed");
            }
            b.refresh_tls();
        }
        r
    })
    .await;
    result.map_err(|e| controller_error(&e))
}

/// Broker keys that may change at runtime: the topic defaults (`log.retention.ms`, …) and the
/// TLS settings, bare or for one listener (`listener.name.<listener>.ssl.keystore.location`),
/// which rebuild the listeners' TLS contexts.
fn is_dynamic_broker_key(key: &str) -> bool {
    TOPIC_CONFIGS
        .iter()
        .any(|d| d.broker_synonyms.contains(&key))
        || crate::config::ssl::SSL_CONFIGS
            .iter()
            .any(|d| d.name == key)
        || crate::config::ssl::listener_ssl_key(key).is_some()
}
