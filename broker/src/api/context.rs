//! Who sent a request: the connection it arrived on ([`ConnectionInfo`], one per connection) and
//! the client id of its header, together the [`RequestContext`] handlers receive (the client
//! host of group members, the [`Authz`] of its principal; quotas need the same).

use crate::acl::Authz;
use crate::state::Broker;
use shale_raft::MetadataImage;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The connection a request arrived on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The peer's address.
    pub peer: SocketAddr,
    /// The name of the listener that accepted the connection.
    pub listener: Arc<str>,
    /// Forwarded by another broker to this active controller (never forwarded again).
    pub forwarded: bool,
    /// The client's principal name (type `User`): the mapped subject of its TLS certificate,
    /// else `ANONYMOUS`.
    pub principal: Arc<str>,
    /// Quota throttling: how long the connection must rest before its next request.
    pub mute: Mute,
}

/// Kafka's channel muting for client quotas: a throttled request's response goes out at once
/// (with its `throttle_time_ms`), then the connection reads nothing more for that long.
#[derive(Clone, Debug, Default)]
pub struct Mute(Arc<AtomicU64>);

impl Mute {
    /// Asks for a rest of `ms` after the current response (the longest asked wins).
    pub fn rest(&self, ms: u64) {
        self.0.fetch_max(ms, Ordering::Relaxed);
    }

    /// The rest asked for since the last call, if any.
    pub fn take(&self) -> Option<std::time::Duration> {
        match self.0.swap(0, Ordering::Relaxed) {
            0 => None,
            ms => Some(std::time::Duration::from_millis(ms)),
        }
    }
}

/// A connection's identity does not depend on its throttling.
impl PartialEq for Mute {
    fn eq(&self, _: &Mute) -> bool {
        true
    }
}

impl Eq for Mute {}

/// One request's context.
#[derive(Clone, Debug)]
pub struct RequestContext<'a> {
    /// The connection.
    pub connection: &'a ConnectionInfo,
    /// The header's client id ("" when null).
    pub client_id: &'a str,
    /// What the connection's principal may do.
    pub authz: Authz,
}

impl<'a> RequestContext<'a> {
    /// The context of a request from `client_id` on `connection`, authorized against the
    /// broker's current ACLs.
    pub fn new(
        broker: &Broker,
        image: &MetadataImage,
        connection: &'a ConnectionInfo,
        client_id: &'a str,
    ) -> Self {
        let authz = broker
            .authorizer
            .for_request(image, &connection.principal, || acl_host(connection.peer));
        RequestContext {
            connection,
            client_id,
            authz,
        }
    }

    /// The client host as Kafka reports it (DescribeGroups, group metadata records).
    pub fn client_host(&self) -> String {
        client_host(self.connection.peer)
    }
}

/// The client's address as ACL hosts name it (Java's `getHostAddress()`: IPv6 in full form).
pub fn acl_host(peer: SocketAddr) -> String {
    client_host(peer).split_off(1)
}

/// Kafka's client host: `InetAddress.toString()` of the peer address, which has no host name
/// (the broker does not resolve it), so a `/` and the literal address. IPv4-mapped IPv6
/// addresses are IPv4 (as in Java), and IPv6 is written in Java's full form — eight groups of
/// hex without leading zeros, no `::` — with `%scope` when the address has a scope id.
pub fn client_host(peer: SocketAddr) -> String {
    match (peer.ip().to_canonical(), peer) {
        (IpAddr::V4(ip), _) => format!("/{ip}"),
        (IpAddr::V6(ip), peer) => {
            let groups: Vec<String> = ip.segments().iter().map(|s| format!("{s:x}")).collect();
            let scope = match peer {
                SocketAddr::V6(v6) if v6.scope_id() != 0 => format!("%{}", v6.scope_id()),
                _ => String::new(),
            };
            format!("/{}{scope}", groups.join(":"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, SocketAddrV6};

    #[test]
    fn client_host_is_javas_inet_address_form() {
        let v4: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(client_host(v4), "/127.0.0.1");
        let loopback: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(client_host(loopback), "/0:0:0:0:0:0:0:1");
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:5000".parse().unwrap();
        assert_eq!(client_host(mapped), "/10.1.2.3");
        let v6: SocketAddr = "[2001:db8::12:0:1]:5000".parse().unwrap();
        assert_eq!(client_host(v6), "/2001:db8:0:0:0:12:0:1");
        let ip: Ipv6Addr = "fe80::1".parse().unwrap();
        let scoped = SocketAddr::V6(SocketAddrV6::new(ip, 5000, 0, 3));
        assert_eq!(client_host(scoped), "/fe80:0:0:0:0:0:0:1%3");
    }

    #[test]
    fn request_context_reports_the_peer() {
        let conn = ConnectionInfo {
            peer: "192.168.1.7:40000".parse().unwrap(),
            listener: Arc::from("PLAINTEXT"),
            forwarded: false,
            principal: Arc::from("ANONYMOUS"),
            mute: Mute::default(),
        };
        let ctx = RequestContext {
            connection: &conn,
            client_id: "c",
            authz: Authz::allow_all(),
        };
        assert_eq!(ctx.client_host(), "/192.168.1.7");
    }
}
