//! CreateAcls and DeleteAcls on the active controller (Kafka's AclControlManager): new bindings
//! become AccessControlEntryRecords with fresh ids, deletions RemoveAccessControlEntryRecords,
//! each binding or filter answered on its own. A binding that already exists is a success that
//! writes nothing, so retries are harmless.

use std::collections::{BTreeSet, HashSet};

use uuid::Uuid;

use crate::acl::{binding_key, invalid_new_acl, AclFilter};
use crate::controller::Controller;
use crate::error::ControllerError;
use crate::format::random_uuid_value;
use crate::records::{AccessControlEntryRecord, MetadataRecord};

/// Kafka's bound on the records one ACL request may write (`MAX_RECORDS_PER_USER_OP`).
pub const MAX_ACL_RECORDS_PER_REQUEST: usize = 10_000;

/// One binding's or filter's outcome: INVALID_REQUEST with a message when refused.
pub type AclOutcome<T> = Result<T, String>;

impl Controller {
    /// CreateAcls: the outcome of each binding (ids are ignored and assigned here).
    pub fn create_acls(
        &self,
        bindings: Vec<AccessControlEntryRecord>,
    ) -> Result<Vec<AclOutcome<()>>, ControllerError> {
        check_size(bindings.len())?;
        let ids: Vec<Uuid> = bindings
            .iter()
            .map(|_| random_uuid_value(self.rng()))
            .collect();
        self.write(|image| {
            let mut known: HashSet<_> = image.acls.values().map(binding_key).collect();
            let mut records = Vec::new();
            let mut outcomes = Vec::with_capacity(bindings.len());
            for (acl, id) in bindings.iter().zip(ids) {
                if let Some(why) = invalid_new_acl(acl) {
                    outcomes.push(Err(why));
                    continue;
                }
                if known.insert(binding_key(acl)) {
                    let mut acl = acl.clone();
                    acl.id = id;
                    records.push(MetadataRecord::AccessControlEntry(acl));
                }
                outcomes.push(Ok(()));
            }
            Ok((records, outcomes))
        })
    }

    /// DeleteAcls: for each filter, the bindings it removed. A binding matched by several
    /// filters is removed once and reported under each.
    pub fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<AclOutcome<Vec<AccessControlEntryRecord>>>, ControllerError> {
        self.write(|image| {
            let mut removed: BTreeSet<Uuid> = BTreeSet::new();
            let mut outcomes = Vec::with_capacity(filters.len());
            for f in &filters {
                if let Some(why) = f.invalid() {
                    outcomes.push(Err(why));
                    continue;
                }
                let matched: Vec<AccessControlEntryRecord> = image
                    .acls
                    .values()
                    .filter(|a| f.matches(a))
                    .cloned()
                    .collect();
                removed.extend(matched.iter().map(|a| a.id));
                outcomes.push(Ok(matched));
            }
            check_size(removed.len())?;
            let records = removed
                .into_iter()
                .map(|id| MetadataRecord::RemoveAccessControlEntry { id })
                .collect();
            Ok((records, outcomes))
        })
    }
}

fn check_size(n: usize) -> Result<(), ControllerError> {
    match n > MAX_ACL_RECORDS_PER_REQUEST {
        true => Err(ControllerError::InvalidRequest(format!(
            "Cannot change more than {MAX_ACL_RECORDS_PER_REQUEST} ACLs in one request"
        ))),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::acl::{op, pattern, permission, resource, AclFilter};
    use crate::records::AccessControlEntryRecord;
    use crate::test_support::open;
    use uuid::Uuid;

    fn binding(name: &str, principal: &str) -> AccessControlEntryRecord {
        AccessControlEntryRecord {
            id: Uuid::nil(),
            resource_type: resource::TOPIC,
            resource_name: name.into(),
            pattern_type: pattern::LITERAL,
            principal: principal.into(),
            host: "*".into(),
            operation: op::WRITE,
            permission_type: permission::ALLOW,
        }
    }

    fn by_principal(principal: &str) -> AclFilter {
        AclFilter {
            resource_type: resource::ANY,
            resource_name: None,
            pattern_type: pattern::ANY,
            principal: Some(principal.into()),
            host: None,
            operation: op::ANY,
            permission_type: permission::ANY,
        }
    }

    #[test]
    fn creates_once_refuses_invalid_and_deletes_by_filter() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let mut bad = binding("t", "nocolon");
        bad.principal = "nocolon".into();
        let out = c
            .create_acls(vec![
                binding("t", "User:a"),
                binding("t", "User:a"),
                bad,
                binding("u", "User:b"),
            ])
            .unwrap();
        assert!(out[0].is_ok() && out[1].is_ok() && out[3].is_ok());
        assert!(out[2].as_ref().unwrap_err().contains("principal"));
        let image = c.image();
        assert_eq!(image.acls.len(), 2, "the duplicate is written once");
        assert!(image.acls.keys().all(|id| !id.is_nil()));
        // Creating it again is a success that writes nothing.
        c.create_acls(vec![binding("t", "User:a")]).unwrap();
        assert_eq!(c.image().acls.len(), 2);

        let out = c
            .delete_acls(vec![by_principal("User:a"), by_principal("User:a")])
            .unwrap();
        assert_eq!(out[0].as_ref().unwrap().len(), 1);
        assert_eq!(
            out[1].as_ref().unwrap().len(),
            1,
            "reported under each filter"
        );
        let left: Vec<_> = c
            .image()
            .acls
            .values()
            .map(|a| a.principal.clone())
            .collect();
        assert_eq!(left, vec!["User:b".to_string()]);
    }
}
