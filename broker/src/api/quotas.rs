//! DescribeClientQuotas and AlterClientQuotas (`kafka-configs.sh --entity-type users/clients
//! --describe / --alter --add-config producer_byte_rate=…`): quotas live in the metadata log as
//! ClientQuotaRecords, written by the active controller (Alter is forwarded in a cluster) and
//! enforced by every broker ([`crate::quota`]). Describe needs DESCRIBE_CONFIGS on the
//! cluster, Alter ALTER_CONFIGS, as in Kafka.

use super::{blocking, RequestContext};
use crate::errors::controller_error;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::alter_client_quotas_response as alter_resp;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::op;
use shale_raft::records::QuotaEntity;
use std::sync::Arc;

/// DescribeClientQuotas match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// One filter component: an entity type and which names of it match.
struct Component {
    entity_type: String,
    /// `Some(Some(name))` exact, `Some(None)` the default, `None` any specified name.
    name: Option<Option<String>>,
}

/// The quotas of the entities matching the filter.
pub fn describe(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let refuse = |code: i16, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
            .with_entries(None)
    };
    if !ctx.authz.cluster(op::DESCRIBE_CONFIGS) {
        return refuse(E::ClusterAuthorizationFailed.code(), String::new());
    }
    let components = match components(req) {
        Ok(c) => c,
        Err(why) => return refuse(E::InvalidRequest.code(), why),
    };
    let image = broker.image();
    let entries = image
        .quotas
        .iter()
        .filter(|(entity, _)| matches(entity, &components, req.strict))
        .map(|(entity, values)| {
            let entity = entity.iter().map(|(kind, name)| {
                EntityData::default()
                    .with_entity_type(StrBytes::from_string(kind.clone()))
                    .with_entity_name(name.clone().map(StrBytes::from_string))
            });
            let values = values.iter().map(|(key, value)| {
                ValueData::default()
                    .with_key(StrBytes::from_string(key.clone()))
                    .with_value(*value)
            });
            EntryData::default()
                .with_entity(entity.collect())
                .with_values(values.collect())
        })
        .collect();
    DescribeClientQuotasResponse::default()
        .with_error_message(None)
        .with_entries(Some(entries))
}

fn components(req: &DescribeClientQuotasRequest) -> Result<Vec<Component>, String> {
    let mut out: Vec<Component> = Vec::new();
    for c in &req.components {
        let entity_type = c.entity_type.to_string();
        if out.iter().any(|o| o.entity_type == entity_type) {
            return Err(format!("Duplicate entity type {entity_type}"));
        }
        let name = match (c.match_type, &c._match) {
            (MATCH_EXACT, Some(m)) => Some(Some(m.to_string())),
            (MATCH_EXACT, None) => return Err("An exact match needs a name".into()),
            (MATCH_DEFAULT, _) => Some(None),
            (MATCH_SPECIFIED, _) => None,
            (other, _) => return Err(format!("Unknown match type {other}")),
        };
        out.push(Component { entity_type, name });
    }
    Ok(out)
}

/// Kafka's filter: every component matches one of the entity's parts; with `strict`, the
/// entity has no other parts.
fn matches(entity: &QuotaEntity, components: &[Component], strict: bool) -> bool {
    if strict && entity.len() != components.len() {
        return false;
    }
    components.iter().all(|c| {
        entity.iter().any(|(kind, name)| {
            *kind == c.entity_type
                && match &c.name {
                    Some(wanted) => wanted == name,
                    None => name.is_some(),
                }
        })
    })
}

/// Applies each valid entry; each gets its own result.
pub async fn alter(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let entity_of = |e: &kafka_protocol::messages::alter_client_quotas_request::EntryData| {
        e.entity
            .iter()
            .map(|d| {
                alter_resp::EntityData::default()
                    .with_entity_type(d.entity_type.clone())
                    .with_entity_name(d.entity_name.clone())
            })
            .collect::<Vec<_>>()
    };
    let result = |e, code: i16, message: Option<String>| {
        alter_resp::EntryData::default()
            .with_entity(entity_of(e))
            .with_error_code(code)
            .with_error_message(message.map(StrBytes::from_string))
    };
    if !ctx.authz.cluster(op::ALTER_CONFIGS) {
        let code = E::ClusterAuthorizationFailed.code();
        let entries = req.entries.iter().map(|e| result(e, code, None)).collect();
        return AlterClientQuotasResponse::default().with_entries(entries);
    }
    let changes = req
        .entries
        .iter()
        .map(|e| {
            let entity = e.entity.iter().map(|d| {
                let name = d.entity_name.as_ref().map(|n| n.to_string());
                (d.entity_type.to_string(), name)
            });
            let ops = e.ops.iter().map(|o| {
                let value = (!o.remove).then_some(o.value);
                (o.key.to_string(), value)
            });
            (entity.collect(), ops.collect())
        })
        .collect();
    let validate_only = req.validate_only;
    let outcome = blocking(broker, move |b| {
        b.controller.alter_client_quotas(changes, validate_only)
    })
    .await;
    let entries = match outcome {
        Ok(outcomes) => req
            .entries
            .iter()
            .zip(outcomes)
            .map(|(e, o)| match o {
                Ok(()) => result(e, 0, None),
                Err(why) => result(e, E::InvalidRequest.code(), Some(why)),
            })
            .collect(),
        Err(err) => {
            let (code, message) = controller_error(&err);
            let each = req.entries.iter();
            each.map(|e| result(e, code, Some(message.clone())))
                .collect()
        }
    };
    AlterClientQuotasResponse::default().with_entries(entries)
}
