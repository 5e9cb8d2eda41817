//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554,
//! `kafka-configs.sh --entity-type users --alter --add-config 'SCRAM-SHA-256=[password=…]'`):
//! credentials live in the metadata log as UserScramCredentialRecords; a broker keeps the
//! derived keys only, never a password. Alter runs on the active controller (forwarded in a
//! cluster); Describe reads this broker's metadata image.

use super::blocking;
use crate::errors::controller_error;
use crate::sasl::scram::{ScramCredential, ScramMechanism};
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use shale_raft::controller_scram::{ScramChange, ScramRefusal};
use shale_raft::records::UserScramCredentialRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The credentials (mechanism and iterations, never keys) of the named users, or of every user
/// when none is named.
pub fn describe(
    broker: &Broker,
    req: &DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let image = broker.image();
    let mut by_user: BTreeMap<&str, Vec<CredentialInfo>> = BTreeMap::new();
    for ((user, mechanism), r) in &image.scram {
        by_user.entry(user).or_default().push(
            CredentialInfo::default()
                .with_mechanism(*mechanism)
                .with_iterations(r.iterations),
        );
    }
    let result = |user: &str, infos: Option<&Vec<CredentialInfo>>, dup: bool| {
        let mut r = DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.to_string()));
        match (infos, dup) {
            (_, true) => {
                r.error_code = E::DuplicateResource.code();
                r.error_message = Some(StrBytes::from_static_str(
                    "Cannot describe SCRAM credentials for the same user twice in a single request",
                ));
            }
            (Some(infos), false) => r.credential_infos = infos.clone(),
            (None, false) => {
                r.error_code = E::ResourceNotFound.code();
                r.error_message = Some(StrBytes::from_static_str(
                    "Attempt to describe a user credential that does not exist",
                ));
            }
        }
        r
    };
    // Null or empty: every user (KIP-554).
    let results = match req.users.as_ref().filter(|u| !u.is_empty()) {
        None => by_user
            .iter()
            .map(|(u, infos)| result(u, Some(infos), false))
            .collect(),
        Some(users) => {
            let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
            let mut seen = Vec::new();
            let mut out = Vec::new();
            for name in &names {
                if seen.contains(name) {
                    continue;
                }
                seen.push(*name);
                let dup = names.iter().filter(|n| *n == name).count() > 1;
                out.push(result(name, by_user.get(name), dup));
            }
            out
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// Applies every valid change; each user gets its own outcome.
pub async fn alter(
    broker: &Arc<Broker>,
    req: &AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut changes: Vec<ScramChange> = req
        .deletions
        .iter()
        .map(|d| ScramChange::Delete {
            name: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    for u in &req.upsertions {
        let (salt, salted) = (u.salt.to_vec(), u.salted_password.to_vec());
        let iterations = u.iterations;
        let mechanism = u.mechanism;
        let keys = ScramMechanism::from_kafka_type(mechanism)
            .filter(|_| iterations > 0)
            .map(|m| ScramCredential::from_salted(m, &salted, &salt, iterations as u32));
        changes.push(ScramChange::Upsert(UserScramCredentialRecord {
            name: u.name.to_string(),
            mechanism,
            salt,
            stored_key: keys
                .as_ref()
                .map(|k| k.stored_key.clone())
                .unwrap_or_default(),
            server_key: keys.map(|k| k.server_key).unwrap_or_default(),
            iterations,
        }));
    }
    let outcome = blocking(broker, move |b| {
        b.controller.alter_scram_credentials(changes)
    })
    .await;
    let results = match outcome {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|(user, r)| {
                let (code, message) = match r {
                    Ok(()) => (0, None),
                    Err(refusal) => refused(refusal),
                };
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user))
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
            })
            .collect(),
        Err(e) => {
            let (code, msg) = controller_error(&e);
            let users = req.deletions.iter().map(|d| &d.name);
            let users = users.chain(req.upsertions.iter().map(|u| &u.name));
            users
                .map(|u| {
                    AlterUserScramCredentialsResult::default()
                        .with_user(u.clone())
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(msg.clone())))
                })
                .collect()
        }
    };
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn refused(refusal: ScramRefusal) -> (i16, Option<String>) {
    match refusal {
        ScramRefusal::UnknownMechanism => (
            E::UnsupportedSaslMechanism.code(),
            Some("Unknown SCRAM mechanism".into()),
        ),
        ScramRefusal::Duplicate => (
            E::DuplicateResource.code(),
            Some("A user credential cannot be altered twice in the same request".into()),
        ),
        ScramRefusal::Unacceptable(why) => (E::UnacceptableCredential.code(), Some(why)),
        ScramRefusal::NotFound => (
            E::ResourceNotFound.code(),
            Some("Attempt to delete a user credential that does not exist".into()),
        ),
    }
}
