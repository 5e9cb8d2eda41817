//! UpdateFeatures (`kafka-features.sh upgrade / downgrade`): the finalized feature levels, written
//! as FeatureLevelRecords, and the levels this node supports, checked as Kafka's
//! FeatureControlManager checks an update. All updates of a request are applied together or
//! not at all. `metadata.version` stays at the level the cluster was formatted with (this node
//! writes its records in that version only).

use std::collections::BTreeSet;

use crate::controller::Controller;
use crate::error::ControllerError;
use crate::image::{MetadataImage, METADATA_VERSION_FEATURE};
use crate::records::{FeatureLevelRecord, MetadataRecord};

/// The features besides `metadata.version` this node supports, as `(name, min, max)` levels.
pub const SUPPORTED_FEATURES: [(&str, i16, i16); 2] =
    [("group.version", 0, 1), ("transaction.version", 0, 2)];

/// How an update may move a level (UpdateFeatures v1+ `UpgradeType`; v0's `AllowDowngrade`
/// means a safe downgrade).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeType {
    /// Only to the same or a higher level.
    Upgrade,
    /// Lower levels too, when no metadata is lost.
    SafeDowngrade,
    /// Lower levels too, even if metadata is lost.
    UnsafeDowngrade,
}

impl UpgradeType {
    /// The wire value's type (1, 2, 3); `None` for anything else.
    pub fn from_i8(v: i8) -> Option<UpgradeType> {
        match v {
            1 => Some(UpgradeType::Upgrade),
            2 => Some(UpgradeType::SafeDowngrade),
            3 => Some(UpgradeType::UnsafeDowngrade),
            _ => None,
        }
    }
}

/// One requested change: `feature` to `level` (0 removes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureUpdate {
    pub feature: String,
    pub level: i16,
    pub upgrade_type: Option<UpgradeType>,
}

impl Controller {
    /// UpdateFeatures: checks every update, then writes their FeatureLevelRecords in one batch
    /// (nothing when `validate_only`, or when every level is already the requested one).
    pub fn update_features(
        &self,
        updates: Vec<FeatureUpdate>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        let node = self.node_id();
        self.write(|image| {
            let mut seen = BTreeSet::new();
            let mut records = Vec::new();
            for u in &updates {
                if !seen.insert(u.feature.as_str()) {
                    return Err(ControllerError::InvalidRequest(format!(
                        "Feature {} was specified more than once.",
                        u.feature
                    )));
                }
                let current = check_update(image, node, u)?;
                if current != u.level {
                    records.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                        name: u.feature.clone(),
                        feature_level: u.level,
                    }));
                }
            }
            Ok((if validate_only { Vec::new() } else { records }, ()))
        })
    }
}

/// The feature's current level, if `u` may move it.
fn check_update(
    image: &MetadataImage,
    node: i32,
    u: &FeatureUpdate,
) -> Result<i16, ControllerError> {
    let invalid = |why: String| {
        ControllerError::InvalidUpdateVersion(format!(
            "Invalid update version {} for feature {}. {why}",
            u.level, u.feature
        ))
    };
    let current = image.features.get(&u.feature).copied().unwrap_or(0);
    let Some(upgrade_type) = u.upgrade_type else {
        return Err(invalid("Unknown upgrade type.".into()));
    };
    if u.feature == METADATA_VERSION_FEATURE {
        return match u.level == current {
            true => Ok(current),
            false => Err(invalid(format!(
                "Local controller {node} only supports metadata.version {current}."
            ))),
        };
    }
    let Some(&(_, min, max)) = SUPPORTED_FEATURES.iter().find(|f| f.0 == u.feature) else {
        return Err(invalid(
            "The controller does not support the given feature.".into(),
        ));
    };
    if !(min..=max).contains(&u.level) {
        return Err(invalid(format!(
            "Local controller {node} only supports versions {min}-{max}"
        )));
    }
    if u.level < current && upgrade_type == UpgradeType::Upgrade {
        return Err(invalid(
            "Can't downgrade the version of this feature without setting the upgrade type to \
             either safe or unsafe downgrade."
                .into(),
        ));
    }
    Ok(current)
}

#[cfg(test)]
#[path = "controller_features_test.rs"]
mod tests;
