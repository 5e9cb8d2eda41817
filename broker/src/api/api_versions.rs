//! ApiVersions: the routing table seen from the client. The unknown-newer-version fallback is
//! answered in [`super::handle`] because such a request cannot be decoded.

use super::supported_versions;
use crate::state::Broker;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

/// Lists every API and version range we serve, plus the finalized metadata.version (v3+).
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
    if version >= 3 {
        let image = broker.image();
        if let Some(level) = image.features.get("metadata.version") {
            let mut sf = SupportedFeatureKey::default();
            sf.name = StrBytes::from_static_str("metadata.version");
            sf.min_version = 1;
            sf.max_version = *level;
            resp.supported_features = vec![sf];
            let mut ff = FinalizedFeatureKey::default();
            ff.name = StrBytes::from_static_str("metadata.version");
            ff.min_version_level = *level;
            ff.max_version_level = *level;
            resp.finalized_features = vec![ff];
            resp.finalized_features_epoch = image.last_offset.max(0);
        }
    }
    resp
}
