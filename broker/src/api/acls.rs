//! CreateAcls, DescribeAcls and DeleteAcls (`kafka-acls.sh`, admin clients' `create_acls`):
//! bindings live in the metadata log as AccessControlEntryRecords, written by the active
//! controller (Create and Delete are forwarded in a cluster) and enforced by every broker
//! ([`crate::acl`]). Changing ACLs needs ALTER on the cluster, reading them DESCRIBE; with no
//! authorizer configured each answers SECURITY_DISABLED, as Kafka does.

use super::{blocking, RequestContext};
use crate::errors::controller_error;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::{op, AclFilter};
use shale_raft::records::AccessControlEntryRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

const DISABLED: &str = "No Authorizer is configured.";

/// Why a whole request is refused before it reaches the controller, if it is.
fn refusal(broker: &Broker, ctx: &RequestContext<'_>, operation: i8) -> Option<(i16, String)> {
    if !broker.authorizer.enabled() {
        return Some((E::SecurityDisabled.code(), DISABLED.into()));
    }
    match ctx.authz.cluster(operation) {
        true => None,
        false => Some((E::ClusterAuthorizationFailed.code(), String::new())),
    }
}

fn text(s: &StrBytes) -> String {
    s.to_string()
}

/// Writes the valid bindings; each gets its own result.
pub async fn create(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &CreateAclsRequest,
) -> CreateAclsResponse {
    let result = |code: i16, message: Option<String>| {
        AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(message.map(StrBytes::from_string))
    };
    let all = |code: i16, message: String| {
        let results = req
            .creations
            .iter()
            .map(|_| result(code, Some(message.clone())))
            .collect();
        CreateAclsResponse::default().with_results(results)
    };
    if let Some((code, message)) = refusal(broker, ctx, op::ALTER) {
        return all(code, message);
    }
    let bindings: Vec<AccessControlEntryRecord> = req
        .creations
        .iter()
        .map(|c| AccessControlEntryRecord {
            id: uuid::Uuid::nil(),
            resource_type: c.resource_type,
            resource_name: text(&c.resource_name),
            pattern_type: c.resource_pattern_type,
            principal: text(&c.principal),
            host: text(&c.host),
            operation: c.operation,
            permission_type: c.permission_type,
        })
        .collect();
    match blocking(broker, move |b| b.controller.create_acls(bindings)).await {
        Ok(outcomes) => CreateAclsResponse::default().with_results(
            outcomes
                .into_iter()
                .map(|o| match o {
                    Ok(()) => result(0, None),
                    Err(why) => result(E::InvalidRequest.code(), Some(why)),
                })
                .collect(),
        ),
        Err(e) => {
            let (code, message) = controller_error(&e);
            all(code, message)
        }
    }
}

/// The bindings matching the filter, grouped by resource pattern.
pub fn describe(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &DescribeAclsRequest,
) -> DescribeAclsResponse {
    if let Some((code, message)) = refusal(broker, ctx, op::DESCRIBE) {
        return DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let filter = AclFilter {
        resource_type: req.resource_type_filter,
        resource_name: req.resource_name_filter.as_ref().map(text),
        pattern_type: req.pattern_type_filter,
        principal: req.principal_filter.as_ref().map(text),
        host: req.host_filter.as_ref().map(text),
        operation: req.operation,
        permission_type: req.permission_type,
    };
    if filter.invalid().is_some() {
        // Kafka reads an unknown code as UNKNOWN, which matches nothing.
        return DescribeAclsResponse::default().with_error_message(None);
    }
    let image = broker.image();
    let mut by_resource: BTreeMap<(i8, &str, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls.values().filter(|a| filter.matches(a)) {
        let key = (
            acl.resource_type,
            acl.resource_name.as_str(),
            acl.pattern_type,
        );
        by_resource.entry(key).or_default().push(
            AclDescription::default()
                .with_principal(StrBytes::from_string(acl.principal.clone()))
                .with_host(StrBytes::from_string(acl.host.clone()))
                .with_operation(acl.operation)
                .with_permission_type(acl.permission_type),
        );
    }
    let resources = by_resource
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default()
        .with_error_message(None)
        .with_resources(resources)
}

/// Removes what each filter matches and lists it under the filter.
pub async fn delete(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &DeleteAclsRequest,
) -> DeleteAclsResponse {
    let failed = |code: i16, message: &str| {
        DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message.to_string())))
    };
    let all = |code: i16, message: String| {
        let results = req.filters.iter().map(|_| failed(code, &message)).collect();
        DeleteAclsResponse::default().with_filter_results(results)
    };
    if let Some((code, message)) = refusal(broker, ctx, op::ALTER) {
        return all(code, message);
    }
    let filters: Vec<AclFilter> = req
        .filters
        .iter()
        .map(|f| AclFilter {
            resource_type: f.resource_type_filter,
            resource_name: f.resource_name_filter.as_ref().map(text),
            pattern_type: f.pattern_type_filter,
            principal: f.principal_filter.as_ref().map(text),
            host: f.host_filter.as_ref().map(text),
            operation: f.operation,
            permission_type: f.permission_type,
        })
        .collect();
    match blocking(broker, move |b| b.controller.delete_acls(filters)).await {
        Ok(outcomes) => DeleteAclsResponse::default().with_filter_results(
            outcomes
                .into_iter()
                .map(|o| match o {
                    Ok(removed) => DeleteAclsFilterResult::default()
                        .with_error_message(None)
                        .with_matching_acls(removed.iter().map(matching).collect()),
                    Err(why) => failed(E::InvalidRequest.code(), &why),
                })
                .collect(),
        ),
        Err(e) => {
            let (code, message) = controller_error(&e);
            all(code, message)
        }
    }
}

fn matching(acl: &AccessControlEntryRecord) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_error_message(None)
        .with_resource_type(acl.resource_type)
        .with_resource_name(StrBytes::from_string(acl.resource_name.clone()))
        .with_pattern_type(acl.pattern_type)
        .with_principal(StrBytes::from_string(acl.principal.clone()))
        .with_host(StrBytes::from_string(acl.host.clone()))
        .with_operation(acl.operation)
        .with_permission_type(acl.permission_type)
}
