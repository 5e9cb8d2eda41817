//! The cluster keys: `process.roles`, `controller.quorum.voters` and
//! `controller.quorum.bootstrap.servers`. Four shapes run today:
//!
//! * a combined node (`broker,controller`, the default) in a quorum of one: the single node;
//! * a combined node in a static quorum of several voters that names it: one node of a
//!   multi-node cluster (it registers with whichever voter is the active controller);
//! * a controller-only node (`controller`) in a static quorum of several voters that names it:
//!   the metadata quorum of a cluster, served on its controller listener.
//!
//! * a broker-only node (`broker`) with a static quorum of controllers that does not name it:
//!   an observer of the metadata log, registering with the active controller.
//!
//! Bootstrap servers carry only addresses: an entry names this node when its port is one of this
//! node's (bound or advertised) listener ports and its host is that listener's host, or the
//! listener binds every interface and the host resolves only to addresses of this machine.

use super::listeners::{Listener, Listeners};
use super::{invalid, split_list, ConfigError};
use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};

/// What a node runs (`process.roles`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roles {
    /// Broker and controller in one process (the default).
    Combined,
    /// A member of the metadata quorum only.
    Controller,
    /// A broker only: an observer of a quorum of controllers.
    Broker,
}

/// One entry of `controller.quorum.voters`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// `process.roles`: a list of `broker` and/or `controller`.
pub fn roles(props: &BTreeMap<String, String>) -> Result<Roles, ConfigError> {
    let Some(v) = props.get("process.roles") else {
        return Ok(Roles::Combined);
    };
    let mut roles = split_list(v);
    if let Some(bad) = roles.iter().find(|r| *r != "broker" && *r != "controller") {
        return Err(invalid(
            "process.roles",
            v,
            &format!("unknown role '{bad}' (expected broker and/or controller)"),
        ));
    }
    roles.sort();
    roles.dedup();
    Ok(match roles.as_slice() {
        [one] if one == "broker" => Roles::Broker,
        [one] if one == "controller" => Roles::Controller,
        [] => return Err(invalid("process.roles", v, "at least one role is required")),
        _ => Roles::Combined,
    })
}

const BOOTSTRAP: &str = "controller.quorum.bootstrap.servers";

/// The quorum keys, checked: the static voters, and the bootstrap servers that are not this
/// node (a controller-only node of a dynamic quorum asks them for the leader; pseudo ids are
/// given at start).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quorum {
    pub voters: Vec<Voter>,
    pub bootstrap: Vec<(String, u16)>,
}

/// Checks the roles against the quorum keys; unsupported settings are pushed to
/// `unsupported`. A controller-only node with `controller.quorum.bootstrap.servers` and no
/// voters belongs to a dynamic quorum (KIP-853); other nodes may only name themselves there.
pub fn check(
    props: &BTreeMap<String, String>,
    node_id: i32,
    listeners: &Listeners,
    unsupported: &mut Vec<String>,
) -> Result<Quorum, ConfigError> {
    let roles = roles(props)?;
    let voters = match props.get("controller.quorum.voters") {
        Some(v) => parse_voters(v)?,
        None => Vec::new(),
    };
    let bootstrap = other_bootstrap_servers(props, listeners)?;
    if !voters.is_empty() && !bootstrap.is_empty() {
        unsupported.push(
            "controller.quorum.bootstrap.servers names other nodes while \
             controller.quorum.voters is set: choose a static or a dynamic quorum"
                .into(),
        );
    }
    // A dynamic quorum (KIP-853) of several nodes: voters come from the metadata log.
    let dynamic = voters.is_empty() && !bootstrap.is_empty();
    match roles {
        Roles::Broker if dynamic => check_dynamic_broker(listeners)?,
        Roles::Broker => check_broker(node_id, &voters, listeners)?,
        Roles::Controller if voters.is_empty() && props.contains_key(BOOTSTRAP) => {
            check_controller_listener(listeners)?
        }
        Roles::Controller => check_controller(node_id, &voters, listeners)?,
        Roles::Combined if dynamic => check_controller_listener(listeners)?,
        Roles::Combined if voters.iter().any(|v| v.id != node_id) => {
            check_controller(node_id, &voters, listeners)?
        }
        Roles::Combined => {}
    }
    Ok(Quorum { voters, bootstrap })
}

/// The `controller.quorum.bootstrap.servers` entries that are not this node.
fn other_bootstrap_servers(
    props: &BTreeMap<String, String>,
    listeners: &Listeners,
) -> Result<Vec<(String, u16)>, ConfigError> {
    const KEY: &str = BOOTSTRAP;
    let Some(v) = props.get(KEY) else {
        return Ok(Vec::new());
    };
    let ours: Vec<&Listener> = listeners
        .bind
        .iter()
        .chain(&listeners.advertised_all)
        .collect();
    let mut others = Vec::new();
    for entry in split_list(v) {
        let (host, port) = parse_host_port(KEY, &entry)?;
        if !names_this_node(&host, port, &ours) {
            others.push((host, port));
        }
    }
    Ok(others)
}

/// A broker of a dynamic quorum needs the name of the controllers' listener, and must not bind
/// it.
fn check_dynamic_broker(listeners: &Listeners) -> Result<(), ConfigError> {
    const KEY: &str = "controller.listener.names";
    if listeners.controller_names.is_empty() {
        return Err(invalid(
            KEY,
            "",
            "a broker needs the controllers' listener name",
        ));
    }
    let bound = listeners
        .bind
        .iter()
        .any(|l| listeners.controller_names.contains(&l.name));
    if bound {
        return Err(invalid(
            KEY,
            &listeners.controller_names.join(","),
            "a broker-only node must not bind the controller listener",
        ));
    }
    Ok(())
}

/// A controller of a dynamic quorum needs a controller listener to serve on.
fn check_controller_listener(listeners: &Listeners) -> Result<(), ConfigError> {
    let bound = listeners
        .bind
        .iter()
        .any(|l| listeners.controller_names.contains(&l.name));
    if !bound {
        return Err(invalid(
            "controller.listener.names",
            &listeners.controller_names.join(","),
            "a controller needs a controller listener in listeners",
        ));
    }
    Ok(())
}

/// A controller-only node: a static voter set naming it, and a controller listener to serve on.
fn check_controller(
    node_id: i32,
    voters: &[Voter],
    listeners: &Listeners,
) -> Result<(), ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    let Some(me) = voters.iter().find(|v| v.id == node_id) else {
        return Err(invalid(
            KEY,
            &voters
                .iter()
                .map(|v| v.id.to_string())
                .collect::<Vec<_>>()
                .join(","),
            &format!("a controller must be a voter: node.id={node_id} is not listed"),
        ));
    };
    let bound = listeners
        .bind
        .iter()
        .any(|l| listeners.controller_names.contains(&l.name) && l.port == me.port);
    if !bound {
        return Err(invalid(
            KEY,
            &format!("{}@{}:{}", me.id, me.host, me.port),
            "this node's voter port is not the port of a controller listener (controller.listener.names) in listeners",
        ));
    }
    let mut ids: Vec<i32> = voters.iter().map(|v| v.id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != voters.len() {
        return Err(invalid(KEY, "", "a node id is listed twice"));
    }
    Ok(())
}

/// A broker-only node: controllers to register with, none of them itself, and the name of
/// their listener.
fn check_broker(node_id: i32, voters: &[Voter], listeners: &Listeners) -> Result<(), ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    if voters.is_empty() {
        return Err(invalid(
            KEY,
            "",
            "a broker-only node needs the controllers' static voter set",
        ));
    }
    if voters.iter().any(|v| v.id == node_id) {
        return Err(invalid(
            KEY,
            &node_id.to_string(),
            "a broker-only node must not be a voter: give it a node.id of its own",
        ));
    }
    if listeners.controller_names.is_empty() {
        return Err(invalid(
            "controller.listener.names",
            "",
            "a broker-only node needs the name of the controllers' listener",
        ));
    }
    Ok(())
}

/// `{id}@{host}:{port}` entries, as Kafka's QuorumConfig writes them.
fn parse_voters(v: &str) -> Result<Vec<Voter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    split_list(v)
        .into_iter()
        .map(|entry| {
            let bad = || invalid(KEY, &entry, "each entry must look like {id}@{host}:{port}");
            let (id, address) = entry.split_once('@').ok_or_else(bad)?;
            let id: i32 = id.trim().parse().map_err(|_| bad())?;
            if id < 0 {
                return Err(bad());
            }
            let (host, port) = parse_host_port(KEY, address)?;
            Ok(Voter { id, host, port })
        })
        .collect()
}

fn parse_host_port(key: &str, entry: &str) -> Result<(String, u16), ConfigError> {
    let bad = || invalid(key, entry, "expected host:port");
    let (host, port) = entry.trim().rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn names_this_node(host: &str, port: u16, ours: &[&Listener]) -> bool {
    ours.iter()
        .filter(|l| l.port == port)
        .any(|l| same_host(host, &l.host))
}

fn same_host(host: &str, listener_host: &str) -> bool {
    if host.eq_ignore_ascii_case(listener_host) {
        return true;
    }
    let addrs = resolve(host);
    if addrs.is_empty() {
        return false;
    }
    let wildcard = listener_host.is_empty()
        || listener_host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
    if wildcard {
        addrs.iter().all(|ip| is_local(*ip))
    } else {
        let theirs = resolve(listener_host);
        addrs.iter().all(|ip| theirs.contains(ip))
    }
}

fn resolve(host: &str) -> Vec<IpAddr> {
    (host, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip().to_canonical()).collect())
        .unwrap_or_default()
}

/// An address of this machine: loopback, or one a socket can be bound to.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pairs: &[(&str, &str)], node_id: i32) -> Result<Vec<String>, ConfigError> {
        let props: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut unsupported = Vec::new();
        let controller_only = roles(&props)? == Roles::Controller;
        let listeners =
            super::super::listeners::resolve(&props, controller_only, &mut unsupported)?;
        check(&props, node_id, &listeners, &mut unsupported)?;
        Ok(unsupported)
    }

    #[test]
    fn three_voters_are_a_multi_node_cluster() {
        let voters = (
            "controller.quorum.voters",
            "1@10.0.0.1:9093,2@10.0.0.2:9093,3@10.0.0.3:9093",
        );
        let pairs = [
            voters,
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER"),
        ];
        assert!(run(&pairs, 1).unwrap().is_empty());
        // A combined node of a cluster votes: listed, on its controller listener's port.
        assert!(run(&pairs, 4).is_err());
        assert!(run(&[voters], 1).is_err());
    }

    #[test]
    fn a_single_self_voter_is_fine() {
        let u = run(&[("controller.quorum.voters", "4@localhost:9093")], 4).unwrap();
        assert!(u.is_empty(), "{u:?}");
        assert!(run(&[("controller.quorum.voters", "1@localhost:9093")], 4).is_err());
        assert!(run(&[("controller.quorum.voters", "x@h:1")], 1).is_err());
        assert!(run(&[("controller.quorum.voters", "1@h")], 1).is_err());
    }

    #[test]
    fn kafka_4_single_node_bootstrap_is_this_node() {
        let base = [
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER"),
        ];
        for servers in ["localhost:9093", "127.0.0.1:9093"] {
            let mut pairs = base.to_vec();
            pairs.push(("controller.quorum.bootstrap.servers", servers));
            let u = run(&pairs, 1).unwrap();
            assert!(u.is_empty(), "{servers}: {u:?}");
        }
        // Another port, or an address that is not this machine's, is another node: a member
        // of a dynamic quorum of several nodes, which a static voter list cannot be mixed with.
        for servers in [
            "localhost:9999",
            "192.0.2.7:9093",
            "localhost:9093,192.0.2.8:9093",
        ] {
            let mut pairs = base.to_vec();
            pairs.push(("controller.quorum.bootstrap.servers", servers));
            assert!(run(&pairs, 1).unwrap().is_empty(), "{servers}");
            pairs.push(("controller.quorum.voters", "1@localhost:9093"));
            let u = run(&pairs, 1).unwrap();
            assert_eq!(u.len(), 1, "{servers}: {u:?}");
        }
    }

    #[test]
    fn a_controller_only_node_joins_a_dynamic_quorum_through_bootstrap_servers() {
        let pairs = [
            ("process.roles", "controller"),
            ("listeners", "CONTROLLER://127.0.0.1:9093"),
            ("controller.listener.names", "CONTROLLER"),
            (
                "controller.quorum.bootstrap.servers",
                "127.0.0.1:9093,192.0.2.7:9093,192.0.2.8:9093",
            ),
        ];
        let props = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let listeners = super::super::listeners::resolve(&props, true, &mut Vec::new()).unwrap();
        let mut unsupported = Vec::new();
        let quorum = check(&props, 2, &listeners, &mut unsupported).unwrap();
        assert!(unsupported.is_empty(), "{unsupported:?}");
        assert!(quorum.voters.is_empty());
        let others = [
            ("192.0.2.7".to_string(), 9093),
            ("192.0.2.8".to_string(), 9093),
        ];
        assert_eq!(
            quorum.bootstrap, others,
            "this node's own entry is left out"
        );
    }

    #[test]
    fn bootstrap_matches_a_specific_listener_host() {
        let pairs = [
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            ),
            ("controller.listener.names", "CONTROLLER"),
            ("controller.quorum.bootstrap.servers", "127.0.0.1:9093"),
        ];
        assert!(run(&pairs, 1).unwrap().is_empty());
    }

    #[test]
    fn a_broker_only_node_observes_a_quorum_of_others_and_roles_are_checked() {
        let voters = (
            "controller.quorum.voters",
            "1@127.0.0.1:9093,2@127.0.0.1:9094",
        );
        let names = ("controller.listener.names", "CONTROLLER");
        let ok = [("process.roles", "broker"), voters, names];
        assert!(run(&ok, 4).unwrap().is_empty());
        // No voters, a node id among the voters, no controller listener name, or the
        // controller listener bound by the broker.
        assert!(run(&[("process.roles", "broker"), names], 4).is_err());
        assert!(run(&ok, 1).is_err());
        assert!(run(&[("process.roles", "broker"), voters], 4).is_err());
        let bound = (
            "listeners",
            "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
        );
        assert!(run(&[("process.roles", "broker"), voters, names, bound], 4).is_err());
        assert!(run(&[("process.roles", "controller, broker")], 1)
            .unwrap()
            .is_empty());
        assert!(run(&[("process.roles", "broker,leader")], 1).is_err());
        assert!(run(&[("process.roles", "")], 1).is_err());
    }

    #[test]
    fn a_controller_is_one_of_several_voters_on_its_controller_listener() {
        let base = [
            ("process.roles", "controller"),
            ("listeners", "CONTROLLER://127.0.0.1:9093"),
            ("controller.listener.names", "CONTROLLER"),
        ];
        let with = |voters: &'static str| {
            let mut pairs = base.to_vec();
            pairs.push(("controller.quorum.voters", voters));
            pairs
        };
        let u = run(
            &with("1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095"),
            1,
        )
        .unwrap();
        assert!(u.is_empty(), "{u:?}");
        // Not a voter; its voter port is not the controller listener's; a duplicate id.
        assert!(run(&with("2@127.0.0.1:9094,3@127.0.0.1:9095"), 1).is_err());
        assert!(run(&with("1@127.0.0.1:9999,2@127.0.0.1:9094"), 1).is_err());
        assert!(run(&with("1@127.0.0.1:9093,1@127.0.0.1:9094"), 1).is_err());
        assert!(run(&base, 1).is_err(), "no voters at all");
    }
}
