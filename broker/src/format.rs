//! `shale format`, as `kafka-storage.sh format`: formats every log directory with the cluster
//! id, and with `--standalone` or `--initial-controllers` (KIP-853) also writes the dynamic
//! quorum's bootstrap snapshot with its initial voters. Kafka's rules: those flags are for
//! controllers of a quorum configured with `controller.quorum.bootstrap.servers` (not
//! `controller.quorum.voters`), and at most one of them (or `--no-initial-controllers`) is
//! given. Other initial voters, or joining later, need bootstrap servers naming other
//! controllers; a node whose bootstrap servers name only itself is a quorum of one
//! (`--standalone`, Kafka 4's quickstart).

use shale_raft::format::InitialVoters;
use shale_raft::format::{format_dirs, format_dirs_dynamic, parse_initial_controllers};

use crate::config::cluster::Roles;
use crate::sasl::scram::{ScramCredential, ScramMechanism};
use crate::BrokerConfig;
use shale_raft::records::{MetadataRecord, UserScramCredentialRecord};

/// `--add-scram 'SCRAM-SHA-256=[name=alice,password=alice-secret]'` (optionally
/// `iterations=8192`) as UserScramCredentialRecords with a fresh random salt: bootstrap users,
/// as `kafka-storage.sh format --add-scram`. Errors never quote the password.
pub fn scram_records(args: &[String]) -> anyhow::Result<Vec<MetadataRecord>> {
    use ring::rand::SecureRandom;
    let mut out = Vec::new();
    for arg in args {
        let bad = |why: &str| anyhow::anyhow!("--add-scram: {why}");
        let (mechanism, rest) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected MECHANISM=[name=…,password=…]"))?;
        let mechanism = match mechanism.trim() {
            "SCRAM-SHA-256" => ScramMechanism::Sha256,
            "SCRAM-SHA-512" => ScramMechanism::Sha512,
            other => return Err(bad(&format!("unknown SCRAM mechanism {other}"))),
        };
        let body = rest
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| bad("the credential must be in [ ]"))?;
        let mut fields = std::collections::BTreeMap::new();
        for kv in body.split(',') {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad("expected key=value entries"))?;
            fields.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
        let name = fields
            .remove("name")
            .ok_or_else(|| bad("name= is required"))?;
        let password = fields
            .remove("password")
            .ok_or_else(|| bad("password= is required (salt/saltedpassword are not read)"))?;
        let iterations: i32 = match fields.remove("iterations") {
            Some(i) => i.parse().map_err(|_| bad("iterations must be a number"))?,
            None => 4096,
        };
        if let Some(k) = fields.keys().next() {
            return Err(bad(&format!("unknown key {k}")));
        }
        if !shale_raft::controller_scram::SCRAM_ITERATIONS.contains(&iterations) {
            return Err(bad("iterations must be between 4096 and 16384"));
        }
        let mut salt = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| bad("no random salt available"))?;
        let c = ScramCredential::derive(mechanism, password.as_bytes(), &salt, iterations as u32);
        out.push(MetadataRecord::UserScramCredential(
            UserScramCredentialRecord {
                name,
                mechanism: mechanism.kafka_type(),
                salt: c.salt,
                stored_key: c.stored_key,
                server_key: c.server_key,
                iterations,
            },
        ));
    }
    Ok(out)
}

/// How a node takes part in a dynamic quorum (`--standalone`, `--initial-controllers`,
/// `--no-initial-controllers`), if at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuorumFlags {
    /// `--add-scram` credentials for the bootstrap records.
    pub add_scram: Vec<String>,
    pub standalone: bool,
    pub initial_controllers: Option<String>,
    pub no_initial_controllers: bool,
}

/// Formats `cfg`'s directories (those already formatted are skipped when `ignore_formatted`);
/// returns how many were formatted.
pub fn run(
    cfg: &BrokerConfig,
    cluster_id: &str,
    ignore_formatted: bool,
    flags: &QuorumFlags,
) -> anyhow::Result<usize> {
    let initial = initial_voters(cfg, flags)?;
    let scram = scram_records(&flags.add_scram)?;
    let mut dirs = cfg.log_dirs.clone();
    dirs.push(cfg.metadata_log_dir.clone());
    dirs.dedup();
    if ignore_formatted {
        dirs.retain(|d| !matches!(shale_local_log::MetaProperties::read(d), Ok(Some(_))));
        if dirs.is_empty() {
            return Ok(0);
        }
    }
    let rng = shale_common::SeededRng::from_entropy();
    match &initial {
        Some(initial) => {
            let metadata_dir = &cfg.metadata_log_dir;
            format_dirs_dynamic(&dirs, metadata_dir, cluster_id, cfg.node_id, &*rng, initial)?
        }
        None => format_dirs(&dirs, cluster_id, cfg.node_id, &*rng)?,
    }
    if !scram.is_empty() {
        shale_raft::format::append_bootstrap_records(&dirs, &scram)?;
    }
    Ok(dirs.len())
}

/// The initial voters the flags ask for, checked against the configuration.
fn initial_voters(
    cfg: &BrokerConfig,
    flags: &QuorumFlags,
) -> anyhow::Result<Option<InitialVoters>> {
    let given = [
        flags.standalone,
        flags.initial_controllers.is_some(),
        flags.no_initial_controllers,
    ];
    match given.iter().filter(|g| **g).count() {
        0 => return Ok(None),
        1 => {}
        _ => anyhow::bail!(
            "only one of --standalone, --initial-controllers and --no-initial-controllers may be given"
        ),
    }
    anyhow::ensure!(
        cfg.roles != Roles::Broker,
        "--standalone, --initial-controllers and --no-initial-controllers are for controllers; \
         process.roles does not include controller"
    );
    anyhow::ensure!(
        cfg.voters.is_empty(),
        "controller.quorum.voters is set: this is a static quorum; a dynamic quorum \
         (--standalone, --initial-controllers) uses controller.quorum.bootstrap.servers instead"
    );
    let others = !cfg.bootstrap_servers.is_empty();
    if flags.no_initial_controllers {
        anyhow::ensure!(
            others,
            "--no-initial-controllers formats a controller that joins a dynamic quorum later \
             (AddRaftVoter), but controller.quorum.bootstrap.servers names no other controller"
        );
        return Ok(None);
    }
    let listener = cfg.controller_listener_names.first().cloned();
    if flags.standalone {
        let endpoints = cfg
            .listeners
            .iter()
            .filter(|l| cfg.controller_listener_names.contains(&l.name))
            .map(|l| {
                let host = if l.host.is_empty() {
                    "localhost"
                } else {
                    &l.host
                };
                (l.name.clone(), host.to_owned(), l.port)
            })
            .collect();
        return Ok(Some(InitialVoters::Standalone(endpoints)));
    }
    let text = flags.initial_controllers.as_deref().unwrap_or_default();
    let listener = listener.unwrap_or_else(|| "CONTROLLER".into());
    let voters = parse_initial_controllers(text, &listener)?;
    anyhow::ensure!(
        others || voters.iter().all(|v| v.id == cfg.node_id),
        "--initial-controllers names other controllers than this node ({}), but \
         controller.quorum.bootstrap.servers names no other controller",
        cfg.node_id
    );
    Ok(Some(InitialVoters::List(voters)))
}
