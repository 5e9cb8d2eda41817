//! Kafka's checks on metadata changes, as pure functions over the current image: topic names
//! (`Topic.validate` and the '.'/'_' collision rule), partition counts, replication factors,
//! manual replica assignments and topic config values. Messages follow Kafka's wording because
//! clients show them to users.

use std::collections::{BTreeMap, BTreeSet};

use shale_local_log::{topic_config_def, validate_topic_config, ConfigKind, LogError};

use crate::error::ControllerError;
use crate::image::MetadataImage;

/// Longest legal topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Kafka's topic-name rules.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::InvalidTopic(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(ControllerError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Rejects a new topic whose name equals an existing one once '.' is read as '_'.
pub fn check_collision(image: &MetadataImage, name: &str) -> Result<(), ControllerError> {
    let unified = name.replace('.', "_");
    if let Some(other) = image
        .topics
        .keys()
        .find(|t| t.as_str() != name && t.replace('.', "_") == unified)
    {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic '{name}' collides with existing topic: {other}"
        )));
    }
    Ok(())
}

/// A broker that can host replicas, with its rack (`broker.rack`; None is a rack of its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub id: i32,
    pub rack: Option<String>,
}

/// Brokers that can host replicas (registered, unfenced, not shutting down), ascending.
pub fn usable_brokers(image: &MetadataImage) -> Vec<Slot> {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced && !b.in_controlled_shutdown)
        .map(|b| Slot {
            id: b.id,
            rack: b.rack.clone(),
        })
        .collect()
}

pub fn check_partition_count(n: i32) -> Result<(), ControllerError> {
    if n <= 0 {
        return Err(ControllerError::InvalidPartitions(
            "Number of partitions was set to an invalid non-positive value.".into(),
        ));
    }
    Ok(())
}

pub fn check_replication_factor(rf: i16, brokers: usize) -> Result<(), ControllerError> {
    if rf <= 0 {
        return Err(ControllerError::InvalidReplicationFactor(
            "Replication factor must be larger than 0, or -1 to use the default value.".into(),
        ));
    }
    if rf as usize > brokers {
        return Err(ControllerError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered."
        )));
    }
    Ok(())
}

/// Places `count` partitions starting at `first` with `rf` replicas each. Brokers are taken in
/// rack-alternating order (the first broker of each rack, then the second of each, …), leaders
/// stripe over that order, and each further replica is the next broker in it on a rack the
/// partition does not use yet (any unused broker once every rack is used). With one rack this
/// is plain striping; with several, a partition spans min(rf, racks) racks and leaders spread
/// evenly over racks, as Kafka's striped placer aims for.
pub fn place_replicas(brokers: &[Slot], first: i32, count: i32, rf: i16) -> Vec<(i32, Vec<i32>)> {
    let order = rack_alternating(brokers);
    let n = order.len().max(1);
    (first..first + count)
        .map(|p| {
            let start = p as usize % n;
            let mut chosen: Vec<&Slot> = Vec::with_capacity(rf as usize);
            for _ in 0..rf {
                let ring = (0..order.len()).map(|i| order[(start + i) % n]);
                let unused = |b: &&Slot| !chosen.iter().any(|c| c.id == b.id);
                let new_rack = |b: &&Slot| !chosen.iter().any(|c| c.rack == b.rack);
                let pick = ring.clone().filter(unused).find(new_rack);
                match pick.or_else(|| ring.clone().find(unused)) {
                    Some(b) => chosen.push(b),
                    None => break,
                }
            }
            (p, chosen.iter().map(|b| b.id).collect())
        })
        .collect()
}

/// The brokers ordered rack by rack in turn: racks by name (no rack last), brokers by id.
fn rack_alternating(brokers: &[Slot]) -> Vec<&Slot> {
    let mut racks: BTreeMap<(bool, Option<&str>), Vec<&Slot>> = BTreeMap::new();
    for b in brokers {
        let rack = b.rack.as_deref();
        racks.entry((rack.is_none(), rack)).or_default().push(b);
    }
    for members in racks.values_mut() {
        members.sort_by_key(|b| b.id);
    }
    let deepest = racks.values().map(Vec::len).max().unwrap_or(0);
    (0..deepest)
        .flat_map(|i| racks.values().filter_map(move |m| m.get(i).copied()))
        .collect()
}

/// Checks a manual assignment: partitions 0..n in any order, non-empty replica lists without
/// duplicates, registered brokers only, one replication factor. Returns it sorted.
pub fn check_assignment(
    image: &MetadataImage,
    mut assignment: Vec<(i32, Vec<i32>)>,
    first: i32,
) -> Result<Vec<(i32, Vec<i32>)>, ControllerError> {
    assignment.sort_by_key(|(p, _)| *p);
    let bad = |m: String| Err(ControllerError::InvalidReplicaAssignment(m));
    let mut rf = None;
    for (i, (p, replicas)) in assignment.iter().enumerate() {
        if *p != first + i as i32 {
            return bad(format!(
                "Partitions should be a consecutive 0-based integer sequence, but partition {p} was found where {} was expected.",
                first + i as i32
            ));
        }
        if replicas.is_empty() {
            return bad("The manual partition assignment includes an empty replica list.".into());
        }
        let mut seen = BTreeSet::new();
        for b in replicas {
            if !seen.insert(*b) {
                return bad(format!(
                    "The manual partition assignment includes the broker {b} more than once."
                ));
            }
            if !image.brokers.contains_key(b) {
                return bad(format!(
                    "The manual partition assignment includes broker {b}, but no such broker is registered."
                ));
            }
        }
        if *rf.get_or_insert(replicas.len()) != replicas.len() {
            return bad(format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {} replica(s).",
                replicas.len(),
                rf.unwrap_or_default()
            ));
        }
    }
    Ok(assignment)
}

/// Validates one topic config value.
pub fn check_topic_config(key: &str, value: &str) -> Result<(), ControllerError> {
    validate_topic_config(key, value).map_err(|e| match e {
        LogError::InvalidConfig { key, reason, .. } => {
            ControllerError::InvalidConfig { key, reason }
        }
        other => ControllerError::InvalidConfig {
            key: key.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// Validates a whole set of topic config overrides; duplicate keys are an error.
pub fn check_topic_configs(
    configs: &[(String, String)],
) -> Result<BTreeMap<String, String>, ControllerError> {
    let mut out = BTreeMap::new();
    for (k, v) in configs {
        check_topic_config(k, v)?;
        if out.insert(k.clone(), v.clone()).is_some() {
            return Err(ControllerError::InvalidRequest(format!(
                "Duplicate config key {k}"
            )));
        }
    }
    Ok(out)
}

/// True if `key` is a list-typed topic config (the only kind APPEND/SUBTRACT accept).
pub fn is_list_config(key: &str) -> bool {
    topic_config_def(key).is_some_and(|d| matches!(d.kind, ConfigKind::List))
}

/// The default value of a topic config, as Kafka renders it.
pub fn topic_config_default(key: &str) -> Option<&'static str> {
    topic_config_def(key).map(|d| d.default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("a.b_c-D9").is_ok());
        for bad in ["", ".", "..", "a b", "é", "x/y"] {
            assert!(
                matches!(
                    validate_topic_name(bad),
                    Err(ControllerError::InvalidTopic(_))
                ),
                "{bad:?}"
            );
        }
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn replication_factor_message_is_kafkas() {
        let e = check_replication_factor(3, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered."
        );
        assert!(check_replication_factor(0, 1).is_err());
        assert!(check_replication_factor(1, 1).is_ok());
    }

    fn slots(spec: &[(i32, Option<&str>)]) -> Vec<Slot> {
        let slot = |(id, rack): &(i32, Option<&str>)| Slot {
            id: *id,
            rack: rack.map(str::to_owned),
        };
        spec.iter().map(slot).collect()
    }

    #[test]
    fn placement_stripes_leaders() {
        let one_rack = slots(&[(1, None), (2, None), (3, None)]);
        assert_eq!(
            place_replicas(&one_rack, 0, 3, 2),
            vec![(0, vec![1, 2]), (1, vec![2, 3]), (2, vec![3, 1])]
        );
        assert_eq!(
            place_replicas(&slots(&[(1, None)]), 2, 2, 1),
            vec![(2, vec![1]), (3, vec![1])]
        );
    }

    #[test]
    fn placement_spreads_every_partition_over_racks() {
        let brokers = slots(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ]);
        let rack = |id: i32| brokers.iter().find(|b| b.id == id).unwrap().rack.clone();
        let placed = place_replicas(&brokers, 0, 12, 3);
        let mut leaders = BTreeMap::new();
        for (_, replicas) in &placed {
            let racks: BTreeSet<_> = replicas.iter().map(|b| rack(*b)).collect();
            assert_eq!(racks.len(), 3, "{replicas:?} spans every rack");
            *leaders.entry(replicas[0]).or_insert(0) += 1;
        }
        assert_eq!(leaders.len(), 6, "every broker leads: {leaders:?}");
        assert!(leaders.values().all(|n| *n == 2), "{leaders:?}");
    }

    #[test]
    fn placement_with_uneven_racks_still_uses_both() {
        let brokers = slots(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("a")),
            (4, Some("b")),
        ]);
        for (p, replicas) in place_replicas(&brokers, 0, 8, 2) {
            assert!(
                replicas.contains(&4),
                "partition {p}: {replicas:?} misses rack b"
            );
            assert_eq!(replicas.len(), 2);
        }
        // More replicas than racks: distinct brokers, every rack used.
        for (_, replicas) in place_replicas(&brokers, 0, 4, 3) {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3);
            assert!(replicas.contains(&4));
        }
    }
}
