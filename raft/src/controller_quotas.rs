//! AlterClientQuotas on the active controller (Kafka's ClientQuotaControlManager): each entry
//! (an entity and its quota changes) is checked on its own and becomes ClientQuotaRecords; the
//! quotas live in the image, so every broker enforces the same ones.

use std::collections::BTreeSet;

use crate::controller::Controller;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::{ClientQuotaRecord, MetadataRecord, QuotaEntity};

/// The quota keys of user and client-id entities, and whether their values are whole numbers.
pub const CLIENT_QUOTA_KEYS: [(&str, bool); 4] = [
    ("producer_byte_rate", true),
    ("consumer_byte_rate", true),
    ("request_percentage", false),
    ("controller_mutation_rate", false),
];
/// The quota key of ip entities.
pub const IP_QUOTA_KEY: &str = "connection_creation_rate";

/// One entry of AlterClientQuotas: the entity and, per key, a new value or `None` to remove it.
pub type QuotaChange = (QuotaEntity, Vec<(String, Option<f64>)>);

impl Controller {
    /// AlterClientQuotas: per entry, `Ok` or INVALID_REQUEST's message.
    pub fn alter_client_quotas(
        &self,
        entries: Vec<QuotaChange>,
        validate_only: bool,
    ) -> Result<Vec<Result<(), String>>, ControllerError> {
        self.write(|image| {
            let mut records = Vec::new();
            let mut outcomes = Vec::with_capacity(entries.len());
            for (entity, ops) in &entries {
                match check(entity, ops) {
                    Err(why) => outcomes.push(Err(why)),
                    Ok(entity) => {
                        records.extend(changes(image, &entity, ops));
                        outcomes.push(Ok(()));
                    }
                }
            }
            if validate_only {
                records.clear();
            }
            Ok((records, outcomes))
        })
    }
}

/// The entity in canonical order (by type), or why the entry is refused.
fn check(entity: &QuotaEntity, ops: &[(String, Option<f64>)]) -> Result<QuotaEntity, String> {
    let types: BTreeSet<&str> = entity.iter().map(|(t, _)| t.as_str()).collect();
    if entity.is_empty() || types.len() != entity.len() {
        return Err("Invalid empty or duplicate entity types".into());
    }
    let ip = types.contains("ip");
    for t in &types {
        if !matches!(*t, "user" | "client-id" | "ip") {
            return Err(format!("Unhandled client quota entity type: {t}"));
        }
    }
    if ip && types.len() > 1 {
        return Err("Invalid quota entity combination, IP entity should not be combined with User or ClientId".into());
    }
    let mut keys = BTreeSet::new();
    for (key, value) in ops {
        if !keys.insert(key.as_str()) {
            return Err(format!("Duplicate quota key {key}"));
        }
        let whole = match (ip, key.as_str()) {
            (true, IP_QUOTA_KEY) => false,
            (false, k) => match CLIENT_QUOTA_KEYS.iter().find(|(name, _)| *name == k) {
                Some((_, whole)) => *whole,
                None => return Err(format!("Invalid configuration key {key}")),
            },
            (true, _) => return Err(format!("Invalid configuration key {key}")),
        };
        if let Some(v) = value {
            if !v.is_finite() || *v <= 0.0 {
                return Err(format!("Quota {key} must be positive, not {v}"));
            }
            if whole && v.fract() != 0.0 {
                return Err(format!("Quota {key} must be a whole number, not {v}"));
            }
        }
    }
    let mut canonical = entity.clone();
    canonical.sort();
    Ok(canonical)
}

/// The records that make `ops` true; removing a quota that is not set writes nothing.
fn changes(
    image: &MetadataImage,
    entity: &QuotaEntity,
    ops: &[(String, Option<f64>)],
) -> Vec<MetadataRecord> {
    let current = image.quotas.get(entity);
    ops.iter()
        .filter(|(key, value)| value.is_some() || current.is_some_and(|c| c.contains_key(key)))
        .map(|(key, value)| {
            MetadataRecord::ClientQuota(ClientQuotaRecord {
                entity: entity.clone(),
                key: key.clone(),
                value: value.unwrap_or(0.0),
                remove: value.is_none(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::open;

    fn user(name: Option<&str>) -> QuotaEntity {
        vec![("user".into(), name.map(String::from))]
    }

    #[test]
    fn quotas_are_set_checked_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let set = |v: f64| vec![("producer_byte_rate".to_string(), Some(v))];
        let both = vec![
            ("client-id".to_string(), Some("app".to_string())),
            ("user".to_string(), Some("alice".to_string())),
        ];
        let out = c
            .alter_client_quotas(
                vec![
                    (user(Some("alice")), set(1024.0)),
                    (user(None), set(512.5)),
                    (vec![("ip".into(), None), ("user".into(), None)], set(1.0)),
                    (user(Some("bob")), vec![("bogus".into(), Some(1.0))]),
                    (
                        both.clone(),
                        vec![("request_percentage".into(), Some(50.5))],
                    ),
                ],
                false,
            )
            .unwrap();
        assert!(out[0].is_ok() && out[4].is_ok());
        assert!(out[1].as_ref().unwrap_err().contains("whole number"));
        assert!(out[2].as_ref().unwrap_err().contains("IP entity"));
        assert!(out[3].as_ref().unwrap_err().contains("bogus"));
        let image = c.image();
        assert_eq!(
            image.quotas[&user(Some("alice"))]["producer_byte_rate"],
            1024.0
        );
        let mut sorted = both;
        sorted.sort();
        assert_eq!(image.quotas[&sorted]["request_percentage"], 50.5);
        // validate_only writes nothing; removing twice is fine.
        c.alter_client_quotas(vec![(user(Some("carol")), set(1.0))], true)
            .unwrap();
        assert!(!c.image().quotas.contains_key(&user(Some("carol"))));
        let remove = vec![("producer_byte_rate".to_string(), None)];
        for _ in 0..2 {
            let out = c
                .alter_client_quotas(vec![(user(Some("alice")), remove.clone())], false)
                .unwrap();
            assert!(out[0].is_ok());
        }
        assert!(!c.image().quotas.contains_key(&user(Some("alice"))));
    }
}
