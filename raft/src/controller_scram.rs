//! SCRAM credentials (KIP-554): AlterUserScramCredentials writes UserScramCredentialRecords and
//! RemoveUserScramCredentialRecords, each user checked on its own as Kafka's ScramControlManager
//! checks it (the valid ones are written together, the others get their error); the credentials
//! live in the image, so every broker authenticates against the same ones.

use std::collections::BTreeMap;

use crate::controller::Controller;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::{MetadataRecord, UserScramCredentialRecord};

/// Kafka's bounds on a credential's iterations.
pub const SCRAM_ITERATIONS: std::ops::RangeInclusive<i32> = 4096..=16384;

/// Why one user's change was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScramRefusal {
    /// A mechanism other than 1 (SCRAM-SHA-256) or 2 (SCRAM-SHA-512): UNSUPPORTED_SASL_MECHANISM.
    UnknownMechanism,
    /// The user appears twice in the request: DUPLICATE_RESOURCE.
    Duplicate,
    /// Iterations out of range or an empty name: UNACCEPTABLE_CREDENTIAL.
    Unacceptable(String),
    /// Deleting a credential that does not exist: RESOURCE_NOT_FOUND.
    NotFound,
}

/// Each user's outcome, in first-appearance order.
pub type ScramOutcomes = Vec<(String, Result<(), ScramRefusal>)>;

/// One requested change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScramChange {
    /// Set a credential (its keys already derived from the client's salted password).
    Upsert(UserScramCredentialRecord),
    /// Remove the user's credential for a mechanism.
    Delete {
        /// The user.
        name: String,
        /// The mechanism number.
        mechanism: i8,
    },
}

impl ScramChange {
    fn user(&self) -> &str {
        match self {
            ScramChange::Upsert(r) => &r.name,
            ScramChange::Delete { name, .. } => name,
        }
    }
}

impl Controller {
    /// AlterUserScramCredentials: the outcome per user, in first-appearance order.
    pub fn alter_scram_credentials(
        &self,
        changes: Vec<ScramChange>,
    ) -> Result<ScramOutcomes, ControllerError> {
        self.write(|image| {
            let mut count: BTreeMap<&str, usize> = BTreeMap::new();
            for c in &changes {
                *count.entry(c.user()).or_default() += 1;
            }
            let mut outcomes: ScramOutcomes = Vec::new();
            let mut records = Vec::new();
            for c in &changes {
                if outcomes.iter().any(|(u, _)| u == c.user()) {
                    continue;
                }
                let outcome = match count[c.user()] {
                    1 => check(image, c),
                    _ => Err(ScramRefusal::Duplicate),
                };
                if outcome.is_ok() {
                    records.push(match c {
                        ScramChange::Upsert(r) => MetadataRecord::UserScramCredential(r.clone()),
                        ScramChange::Delete { name, mechanism } => {
                            MetadataRecord::RemoveUserScramCredential {
                                name: name.clone(),
                                mechanism: *mechanism,
                            }
                        }
                    });
                }
                outcomes.push((c.user().to_string(), outcome));
            }
            Ok((records, outcomes))
        })
    }
}

fn check(image: &MetadataImage, change: &ScramChange) -> Result<(), ScramRefusal> {
    match change {
        ScramChange::Upsert(r) => {
            known(r.mechanism)?;
            if r.name.is_empty() {
                return Err(ScramRefusal::Unacceptable(
                    "Username must not be empty".into(),
                ));
            }
            if r.iterations < *SCRAM_ITERATIONS.start() {
                return Err(ScramRefusal::Unacceptable("Too few iterations".into()));
            }
            if r.iterations > *SCRAM_ITERATIONS.end() {
                return Err(ScramRefusal::Unacceptable("Too many iterations".into()));
            }
            Ok(())
        }
        ScramChange::Delete { name, mechanism } => {
            known(*mechanism)?;
            match image.scram.contains_key(&(name.clone(), *mechanism)) {
                true => Ok(()),
                false => Err(ScramRefusal::NotFound),
            }
        }
    }
}

fn known(mechanism: i8) -> Result<(), ScramRefusal> {
    match mechanism {
        1 | 2 => Ok(()),
        _ => Err(ScramRefusal::UnknownMechanism),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::open;

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> ScramChange {
        ScramChange::Upsert(UserScramCredentialRecord {
            name: name.into(),
            mechanism,
            salt: vec![1],
            stored_key: vec![2],
            server_key: vec![3],
            iterations,
        })
    }

    #[test]
    fn each_user_is_checked_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let out = c
            .alter_scram_credentials(vec![
                upsert("alice", 1, 4096),
                upsert("bob", 3, 4096),
                upsert("carol", 2, 100),
                upsert("dave", 2, 20_000),
                upsert("erin", 1, 8192),
                ScramChange::Delete {
                    name: "erin".into(),
                    mechanism: 2,
                },
                ScramChange::Delete {
                    name: "frank".into(),
                    mechanism: 1,
                },
            ])
            .unwrap();
        let by_user: BTreeMap<_, _> = out.into_iter().collect();
        assert_eq!(by_user["alice"], Ok(()));
        assert_eq!(by_user["bob"], Err(ScramRefusal::UnknownMechanism));
        assert!(matches!(
            by_user["carol"],
            Err(ScramRefusal::Unacceptable(_))
        ));
        assert!(matches!(
            by_user["dave"],
            Err(ScramRefusal::Unacceptable(_))
        ));
        assert_eq!(by_user["erin"], Err(ScramRefusal::Duplicate));
        assert_eq!(by_user["frank"], Err(ScramRefusal::NotFound));
        let image = c.image();
        assert_eq!(image.scram.len(), 1, "only alice's credential was written");
        let out = c
            .alter_scram_credentials(vec![ScramChange::Delete {
                name: "alice".into(),
                mechanism: 1,
            }])
            .unwrap();
        assert_eq!(out, vec![("alice".to_string(), Ok(()))]);
        assert!(c.image().scram.is_empty());
    }
}
