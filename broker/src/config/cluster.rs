//! The cluster keys: `process.roles`, `controller.quorum.voters` and
//! `controller.quorum.bootstrap.servers`. Shale runs one combined node (broker and controller in
//! one process, quorum of one). A configuration that describes anything else — a separate broker or
//! controller, or a quorum naming another node — would today start an independent single-node
//! cluster, so it is reported as unsupported and stops start-up.
//!
//! Voters carry node ids, so `controller.quorum.voters` may only name `node.id` itself. Bootstrap
//! servers carry only addresses: an entry names this node when its port is one of this node's
//! (bound or advertised) listener ports and its host is that listener's host, or the listener
//! binds every interface and the host resolves only to addresses of this machine.

use super::listeners::{Listener, Listeners};
use super::{invalid, split_list, ConfigError};
use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};

/// Checks the roles and the quorum keys; unsupported settings are pushed to `unsupported`.
pub fn check(
    props: &BTreeMap<String, String>,
    node_id: i32,
    listeners: &Listeners,
    unsupported: &mut Vec<String>,
) -> Result<(), ConfigError> {
    check_roles(props, unsupported)?;
    if let Some(v) = props.get("controller.quorum.voters") {
        for (id, host, port) in parse_voters(v)? {
            if id != node_id {
                unsupported.push(format!(
                    "controller.quorum.voters: voter {id}@{host}:{port} is another node \
                     (this is node.id={node_id}); multi-node clusters are not supported yet"
                ));
            }
        }
    }
    if let Some(v) = props.get("controller.quorum.bootstrap.servers") {
        const KEY: &str = "controller.quorum.bootstrap.servers";
        let ours: Vec<&Listener> = listeners
            .bind
            .iter()
            .chain(&listeners.advertised_all)
            .collect();
        for entry in split_list(v) {
            let (host, port) = parse_host_port(KEY, &entry)?;
            if !names_this_node(&host, port, &ours) {
                unsupported.push(format!(
                    "{KEY}: {entry} is not one of this node's listeners; joining another node's \
                     quorum (a multi-node cluster) is not supported yet"
                ));
            }
        }
    }
    Ok(())
}

/// Only combined mode exists today.
fn check_roles(
    props: &BTreeMap<String, String>,
    unsupported: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let Some(v) = props.get("process.roles") else {
        return Ok(());
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
    if roles != ["broker", "controller"] {
        unsupported.push(format!(
            "process.roles={v}: only a combined node (broker,controller) is supported; separate \
             brokers and controllers need a multi-node cluster, which is not supported yet"
        ));
    }
    Ok(())
}

/// `{id}@{host}:{port}` entries, as Kafka's QuorumConfig writes them.
fn parse_voters(v: &str) -> Result<Vec<(i32, String, u16)>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    split_list(v)
        .into_iter()
        .map(|entry| {
            let bad = || invalid(KEY, &entry, "each entry must look like {id}@{host}:{port}");
            let (id, address) = entry.split_once('@').ok_or_else(bad)?;
            let id: i32 = id.trim().parse().map_err(|_| bad())?;
            let (host, port) = parse_host_port(KEY, address)?;
            Ok((id, host, port))
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
        let listeners = super::super::listeners::resolve(&props, &mut unsupported)?;
        check(&props, node_id, &listeners, &mut unsupported)?;
        Ok(unsupported)
    }

    #[test]
    fn three_voters_are_a_multi_node_cluster() {
        let u = run(
            &[(
                "controller.quorum.voters",
                "1@10.0.0.1:9093,2@10.0.0.2:9093,3@10.0.0.3:9093",
            )],
            1,
        )
        .unwrap();
        assert_eq!(u.len(), 2, "{u:?}");
        assert!(u[0].contains("voter 2@") && u[1].contains("voter 3@"));
    }

    #[test]
    fn a_single_self_voter_is_fine() {
        let u = run(&[("controller.quorum.voters", "4@localhost:9093")], 4).unwrap();
        assert!(u.is_empty(), "{u:?}");
        let u = run(&[("controller.quorum.voters", "1@localhost:9093")], 4).unwrap();
        assert_eq!(u.len(), 1);
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
        // Another port, or an address that is not this machine's, is another node.
        for servers in [
            "localhost:9999",
            "192.0.2.7:9093",
            "localhost:9093,192.0.2.8:9093",
        ] {
            let mut pairs = base.to_vec();
            pairs.push(("controller.quorum.bootstrap.servers", servers));
            let u = run(&pairs, 1).unwrap();
            assert_eq!(u.len(), 1, "{servers}: {u:?}");
        }
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
    fn roles_other_than_combined_are_unsupported() {
        for roles in ["broker", "controller"] {
            let u = run(&[("process.roles", roles)], 1).unwrap();
            assert_eq!(u.len(), 1, "{roles}");
        }
        assert!(run(&[("process.roles", "controller, broker")], 1)
            .unwrap()
            .is_empty());
        assert!(run(&[("process.roles", "broker,leader")], 1).is_err());
    }
}
