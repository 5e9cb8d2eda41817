//! UpdateFeatures: `kafka-features.sh upgrade / downgrade` of the cluster's finalized features
//! (`transaction.version`, `group.version`), carried out by the active controller (forwarded in
//! a cluster). Clients read the result in ApiVersions' finalized features.

use super::blocking;
use crate::errors::controller_error;
use crate::state::Broker;
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;
use shale_raft::controller_features::{FeatureUpdate, UpgradeType};
use std::sync::Arc;

/// Applies every update or none; v0–1 repeat the outcome per feature.
pub async fn update(
    broker: &Arc<Broker>,
    req: &UpdateFeaturesRequest,
    version: i16,
) -> UpdateFeaturesResponse {
    let updates: Vec<FeatureUpdate> = req
        .feature_updates
        .iter()
        .map(|u| FeatureUpdate {
            feature: u.feature.to_string(),
            level: u.max_version_level,
            upgrade_type: match version {
                0 if u.allow_downgrade => Some(UpgradeType::SafeDowngrade),
                0 => Some(UpgradeType::Upgrade),
                _ => UpgradeType::from_i8(u.upgrade_type),
            },
        })
        .collect();
    let names: Vec<StrBytes> = req
        .feature_updates
        .iter()
        .map(|u| u.feature.clone())
        .collect();
    let validate_only = req.validate_only;
    let outcome = blocking(broker, move |b| {
        b.controller.update_features(updates, validate_only)
    })
    .await;
    let (code, message) = match &outcome {
        Ok(()) => (0, None),
        Err(e) => {
            let (code, msg) = controller_error(e);
            tracing::info!(error = %msg, "feature update refused");
            (code, Some(StrBytes::from_string(msg)))
        }
    };
    let mut resp = UpdateFeaturesResponse::default();
    resp.error_code = code;
    resp.error_message = message.clone();
    if version <= 1 {
        resp.results = names
            .into_iter()
            .map(|feature| {
                let mut r = UpdatableFeatureResult::default();
                r.feature = feature;
                r.error_code = code;
                r.error_message = message.clone();
                r
            })
            .collect();
    }
    resp
}
