//! ApiVersions: the routing table seen from the client. The unknown-newer-version fallback is
//! answered in [`super::handle`] because such a request cannot be decoded.

use super::supported_versions;
use crate::state::Broker;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use shale_raft::controller_features::SUPPORTED_FEATURES;

/// Lists every API and version range we serve, plus the supported features and the finalized
/// ones (v3+): clients read `transaction.version` here to choose KIP-890's transaction
/// version 2.
pub fn handle(broker: &Broker, _req: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = supported_versions()
        .into_iter()
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = key;
            v.min_version = min;
            v.max_version = max;
            v
        })
        .collect();
    if version < 3 {
        return resp;
    }
    let image = broker.image();
    let Some(&mv) = image.features.get("metadata.version") else {
        return resp;
    };
    let supported = [("metadata.version", 1, mv)].into_iter();
    resp.supported_features = supported
        .chain(SUPPORTED_FEATURES)
        .map(|(name, min, max)| {
            let mut sf = SupportedFeatureKey::default();
            sf.name = StrBytes::from_static_str(name);
            sf.min_version = min;
            sf.max_version = max;
            sf
        })
        .collect();
    resp.finalized_features = image
        .features
        .iter()
        .filter(|(_, &level)| level > 0)
        .map(|(name, &level)| {
            let mut ff = FinalizedFeatureKey::default();
            ff.name = StrBytes::from_string(name.clone());
            ff.min_version_level = level;
            ff.max_version_level = level;
            ff
        })
        .collect();
    resp.finalized_features_epoch = image.last_offset.max(0);
    resp
}
