use super::*;
use crate::test_support::open;

fn update(feature: &str, level: i16, t: UpgradeType) -> FeatureUpdate {
    FeatureUpdate {
        feature: feature.into(),
        level,
        upgrade_type: Some(t),
    }
}

fn level(c: &Controller, feature: &str) -> Option<i16> {
    c.image().features.get(feature).copied()
}

#[test]
fn a_fresh_cluster_finalizes_transaction_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    assert_eq!(level(&c, "transaction.version"), Some(2));
    assert_eq!(level(&c, "group.version"), Some(1));
}

#[test]
fn downgrades_need_a_downgrade_type_and_level_0_removes_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let err = c
        .update_features(
            vec![update("transaction.version", 1, UpgradeType::Upgrade)],
            false,
        )
        .unwrap_err();
    assert!(
        matches!(err, ControllerError::InvalidUpdateVersion(_)),
        "{err}"
    );
    assert!(err.to_string().contains("downgrade"), "{err}");
    let down = update("transaction.version", 0, UpgradeType::SafeDowngrade);
    c.update_features(vec![down.clone()], true).unwrap();
    assert_eq!(level(&c, "transaction.version"), Some(2), "validate only");
    c.update_features(vec![down], false).unwrap();
    assert_eq!(level(&c, "transaction.version"), None);
    let up = update("transaction.version", 2, UpgradeType::Upgrade);
    c.update_features(vec![up.clone()], false).unwrap();
    assert_eq!(level(&c, "transaction.version"), Some(2));
    let offset = c.log_end_offset();
    c.update_features(vec![up], false).unwrap();
    assert_eq!(
        c.log_end_offset(),
        offset,
        "no record for an unchanged level"
    );
}

#[test]
fn refused_updates_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let refused = [
        vec![update("transaction.version", 3, UpgradeType::Upgrade)],
        vec![update("share.version", 1, UpgradeType::Upgrade)],
        vec![update("metadata.version", 25, UpgradeType::Upgrade)],
        // One bad update refuses the good one beside it.
        vec![
            update("group.version", 0, UpgradeType::UnsafeDowngrade),
            update("transaction.version", 9, UpgradeType::Upgrade),
        ],
    ];
    for updates in refused {
        let err = c.update_features(updates, false).unwrap_err();
        assert!(
            matches!(err, ControllerError::InvalidUpdateVersion(_)),
            "{err}"
        );
    }
    let unknown_type = FeatureUpdate {
        upgrade_type: None,
        ..update("group.version", 1, UpgradeType::Upgrade)
    };
    assert!(c.update_features(vec![unknown_type], false).is_err());
    let twice = vec![
        update("group.version", 1, UpgradeType::Upgrade),
        update("group.version", 1, UpgradeType::Upgrade),
    ];
    let err = c.update_features(twice, false).unwrap_err();
    assert!(matches!(err, ControllerError::InvalidRequest(_)), "{err}");
    assert_eq!(level(&c, "group.version"), Some(1));
    assert_eq!(level(&c, "transaction.version"), Some(2));
    let mv = update("metadata.version", 22, UpgradeType::Upgrade);
    c.update_features(vec![mv], false).unwrap();
}
