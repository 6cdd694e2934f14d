//! Per-client shares of the daemon: connections and requests in flight counted per peer uid.
//!
//! A client is the uid of the socket's peer, read from its credentials as soon as the
//! connection is accepted, before any byte of a request. See the module documentation of
//! [`front`](super) for what happens to a client over its share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// At most one warning per client and per this interval about refused connections; the next one
/// says how many were refused meanwhile.
const WARNING_INTERVAL: Duration = Duration::from_secs(1);

/// The clients connected now and what each of them holds.
#[derive(Debug)]
pub(crate) struct Clients {
    max_connections: usize,
    max_in_flight: usize,
    table: Mutex<HashMap<u32, Entry>>,
}

#[derive(Debug)]
struct Entry {
    /// Connections of this client being served.
    connections: usize,
    /// The client's share of the requests in flight.
    in_flight: Arc<Semaphore>,
    /// Connections refused since the last warning.
    refused: u64,
    last_warning: Option<Instant>,
}

impl Clients {
    /// Shares of at most `max_connections` connections and `max_in_flight` requests in flight
    /// per client (both at least 1).
    pub(crate) fn new(max_connections: usize, max_in_flight: usize) -> Arc<Self> {
        Arc::new(Clients {
            max_connections: max_connections.max(1),
            max_in_flight: max_in_flight.max(1),
            table: Mutex::new(HashMap::new()),
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<u32, Entry>> {
        // The table is consistent after every statement: a panic elsewhere cannot break it.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection slot for the client `uid`, or `None` (after a warning, at most one per
    /// client and second) when the client already has its share of connections.
    pub(crate) fn admit(self: &Arc<Self>, uid: u32) -> Option<ClientSlot> {
        let mut table = self.table();
        let entry = table.entry(uid).or_insert_with(|| Entry {
            connections: 0,
            in_flight: Arc::new(Semaphore::new(self.max_in_flight)),
            refused: 0,
            last_warning: None,
        });
        if entry.connections >= self.max_connections {
            entry.refused += 1;
            crate::metrics::connection_refused("max_connections_per_client");
            let now = Instant::now();
            if entry
                .last_warning
                .is_none_or(|last| now.duration_since(last) >= WARNING_INTERVAL)
            {
                tracing::warn!(
                    uid,
                    refused = entry.refused,
                    "client has {} connections open, its share \
                     (core_settings.max_connections_per_client): further connections are \
                     closed unanswered",
                    self.max_connections,
                );
                entry.refused = 0;
                entry.last_warning = Some(now);
            }
            return None;
        }
        entry.connections += 1;
        Some(ClientSlot {
            clients: Arc::clone(self),
            uid,
            in_flight: Arc::clone(&entry.in_flight),
        })
    }
}

/// One connection of a client; gives the slot back when dropped.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    clients: Arc<Clients>,
    uid: u32,
    in_flight: Arc<Semaphore>,
}

impl ClientSlot {
    /// The client's share of the requests in flight, shared by all its connections.
    pub(crate) fn in_flight(&self) -> Arc<Semaphore> {
        Arc::clone(&self.in_flight)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut table = self.clients.table();
        if let Some(entry) = table.get_mut(&self.uid) {
            entry.connections = entry.connections.saturating_sub(1);
            // A client with no connection left holds no request slot either (requests are
            // awaited by their connection): forget it, so the table does not grow with every uid
            // ever seen. The warning state goes with it, which is fine: it only throttles.
            if entry.connections == 0 {
                if entry.refused > 0 {
                    // The refusals since the last warning, which would otherwise go untold.
                    tracing::warn!(
                        uid = self.uid,
                        refused = entry.refused,
                        "client over its connection share: more connections were closed \
                         unanswered since the last warning",
                    );
                }
                table.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_share_of_connections() {
        let clients = Clients::new(2, 3);
        let a1 = clients.admit(1).unwrap();
        let _a2 = clients.admit(1).unwrap();
        assert!(clients.admit(1).is_none(), "a third connection of uid 1");
        let b = clients.admit(2).unwrap();
        assert_eq!(a1.in_flight().available_permits(), 3);
        assert!(!Arc::ptr_eq(&a1.in_flight(), &b.in_flight()));
        drop(a1);
        let _a3 = clients.admit(1).expect("a slot was given back");
        drop(b);
        assert!(!clients.table().contains_key(&2), "uid 2 is forgotten");
        assert_eq!(clients.table()[&1].connections, 2);
    }

    #[test]
    fn connections_of_one_client_share_its_requests_in_flight() {
        let clients = Clients::new(10, 1);
        let a = clients.admit(7).unwrap();
        let b = clients.admit(7).unwrap();
        let permit = a.in_flight().try_acquire_owned().unwrap();
        assert!(b.in_flight().try_acquire_owned().is_err());
        drop(permit);
        assert!(b.in_flight().try_acquire_owned().is_ok());
    }
}
