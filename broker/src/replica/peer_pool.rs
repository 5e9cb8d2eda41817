//! Reused connections to other brokers for one kind of call (the transaction coordinator's
//! WriteTxnMarkers and a partition leader's AddPartitionsToTxn): a connection is taken for one
//! call and put back after a success, so a busy coordinator does not open a TCP connection per
//! transaction. Addresses come from the metadata image (so they are bounded by the cluster) and
//! each keeps at most [`IDLE_PER_PEER`] idle connections; a failed call drops its connection
//! (after one more try on a new connection when the failed one was reused).

use super::connection::BrokerConnection;
use crate::tls::Dialer;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

/// Idle connections kept per broker address (as many calls run at once as there are callers).
pub const IDLE_PER_PEER: usize = 4;

/// A pool of [`BrokerConnection`]s by address.
#[derive(Debug)]
pub struct PeerPool {
    client_id: &'static str,
    timeout: Duration,
    idle: Mutex<HashMap<(String, u16), Vec<BrokerConnection>>>,
}

impl PeerPool {
    /// Connections whose requests carry `client_id` and take at most `timeout` each.
    pub fn new(client_id: &'static str, timeout: Duration) -> PeerPool {
        PeerPool {
            client_id,
            timeout,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `req` to `addr` on an idle connection, or a new one when none is idle. A reused
    /// connection that fails (the peer closes idle connections after its
    /// `connections.max.idle.ms`) is dropped and the call made once more on a new one: every call
    /// made through a pool may be repeated.
    pub async fn call<Q: Encodable, R: Decodable>(
        &self,
        dialer: &Dialer,
        addr: (&str, u16),
        api_key: ApiKey,
        version: i16,
        req: &Q,
    ) -> anyhow::Result<R> {
        let key = (addr.0.to_string(), addr.1);
        let fresh = || BrokerConnection::new(self.client_id.into(), self.timeout, dialer.clone());
        let idle = self.idle.lock().get_mut(&key).and_then(Vec::pop);
        let reused = idle.is_some();
        let mut conn = idle.unwrap_or_else(fresh);
        let mut out = conn.call(addr, api_key, version, req).await;
        if out.is_err() && reused {
            conn = fresh();
            out = conn.call(addr, api_key, version, req).await;
        }
        if out.is_ok() {
            let mut idle = self.idle.lock();
            let spare = idle.entry(key).or_default();
            if spare.len() < IDLE_PER_PEER {
                spare.push(conn);
            }
        }
        out
    }

    /// Idle connections to `addr` (tests).
    pub fn idle_to(&self, addr: (&str, u16)) -> usize {
        let key = (addr.0.to_string(), addr.1);
        self.idle.lock().get(&key).map_or(0, Vec::len)
    }
}
