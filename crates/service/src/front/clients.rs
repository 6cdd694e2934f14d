//! Per-client shares of the daemon: connections and requests in flight counted per peer uid.
//!
//! A client is the uid of the socket's peer, read from its credentials as soon as the
//! connection is accepted, before any byte of a request. See the module documentation of
//! [`front`](super) for what happens to a client over its share.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::connection::Pending;
use crate::metrics::Occupancy;

/// At most one warning per client and per this interval about refused connections; the next one
/// says how many were refused meanwhile.
const WARNING_INTERVAL: Duration = Duration::from_secs(1);

/// The clients present (connected now, or within the last [`RECENT`]) and what each of them
/// holds.
#[derive(Debug)]
pub(crate) struct Clients {
    max_connections: usize,
    max_in_flight: usize,
    turns: Arc<TurnLimit>,
    /// How long a client without connections still counts as present.
    recent: Duration,
    table: Mutex<Table>,
}

/// The clients connected now or in the last [`RECENT`], by uid.
#[derive(Debug)]
struct Table {
    entries: HashMap<u32, Entry>,
    /// When clients gone for longer than [`RECENT`] were last forgotten.
    swept: Instant,
}

/// A client without connections still counts as present for this long: a client that opens
/// one connection per request has none between two requests, and others must not take its
/// accepting threads meanwhile.
const RECENT: Duration = Duration::from_secs(1);

/// How many accepting threads one client may have answering its requests at once: all of them
/// while it is the only client present (connected, or within the last [`RECENT`]), else its
/// share.
#[derive(Debug)]
struct TurnLimit {
    alone: usize,
    shared: usize,
    /// Clients present (the client table's length, readable without its lock).
    clients: AtomicUsize,
}

impl TurnLimit {
    fn now(&self) -> usize {
        if self.clients.load(Ordering::Relaxed) > 1 {
            self.shared
        } else {
            self.alone
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Connections of this client being served.
    connections: usize,
    /// The client's share of the requests in flight.
    in_flight: Arc<Semaphore>,
    /// The client's cheap requests waiting for a turn on the accepting threads.
    relay: Arc<Relay>,
    /// Since when the client has no connection.
    idle_since: Option<Instant>,
    /// Connections refused since the last warning.
    refused: u64,
    last_warning: Option<Instant>,
}

impl Clients {
    /// Shares of at most `max_connections` connections and `max_in_flight` requests in flight
    /// per client (both at least 1), and of the `threads` accepting threads: all of them for a
    /// client alone, else at most half of them (and no more than `max_in_flight`), at least 1.
    pub(crate) fn new(max_connections: usize, max_in_flight: usize, threads: usize) -> Arc<Self> {
        Arc::new(Self::build(max_connections, max_in_flight, threads, RECENT))
    }

    fn build(
        max_connections: usize,
        max_in_flight: usize,
        threads: usize,
        recent: Duration,
    ) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Clients {
            max_connections: max_connections.max(1),
            max_in_flight,
            turns: Arc::new(TurnLimit {
                alone: threads.max(1),
                shared: (threads / 2).min(max_in_flight).max(1),
                clients: AtomicUsize::new(0),
            }),
            recent,
            table: Mutex::new(Table {
                entries: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table is consistent after every statement: a panic elsewhere cannot break it.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection slot for the client `uid`, or `None` (after a warning, at most one per
    /// client and second) when the client already has its share of connections.
    pub(crate) fn admit(self: &Arc<Self>, uid: u32) -> Option<ClientSlot> {
        let mut table = self.table();
        let now = Instant::now();
        if now.duration_since(table.swept) >= self.recent {
            // Forget the clients gone for a while, so the table does not grow with every uid
            // ever seen. The warning state goes with them, which is fine: it only throttles.
            let recent = self.recent;
            table.entries.retain(|_, entry| {
                entry
                    .idle_since
                    .is_none_or(|idle| now.duration_since(idle) < recent)
            });
            table.swept = now;
            self.turns
                .clients
                .store(table.entries.len(), Ordering::Relaxed);
        }
        let entry = table.entries.entry(uid).or_insert_with(|| {
            self.turns.clients.fetch_add(1, Ordering::Relaxed);
            Entry {
                connections: 0,
                in_flight: Arc::new(Semaphore::new(self.max_in_flight)),
                relay: Arc::new(Relay::new(Arc::clone(&self.turns))),
                idle_since: None,
                refused: 0,
                last_warning: None,
            }
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
        entry.idle_since = None;
        Some(ClientSlot {
            clients: Arc::clone(self),
            uid,
            in_flight: Arc::clone(&entry.in_flight),
            relay: Arc::clone(&entry.relay),
        })
    }
}

/// One connection of a client; gives the slot back when dropped.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    clients: Arc<Clients>,
    uid: u32,
    in_flight: Arc<Semaphore>,
    relay: Arc<Relay>,
}

impl ClientSlot {
    /// The client's share of the requests in flight, shared by all its connections.
    pub(crate) fn in_flight(&self) -> Arc<Semaphore> {
        Arc::clone(&self.in_flight)
    }

    /// The client's turns on the accepting threads, shared by all its connections.
    pub(crate) fn relay(&self) -> Arc<Relay> {
        Arc::clone(&self.relay)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut table = self.clients.table();
        if let Some(entry) = table.entries.get_mut(&self.uid) {
            entry.connections = entry.connections.saturating_sub(1);
            // A client with no connection left holds no request slot either (requests are
            // awaited by their connection): it is forgotten once it has been gone for a while.
            if entry.connections == 0 {
                entry.idle_since = Some(Instant::now());
                if entry.refused > 0 {
                    // The refusals since the last warning, which would otherwise go untold.
                    tracing::warn!(
                        uid = self.uid,
                        refused = entry.refused,
                        "client over its connection share: more connections were closed \
                         unanswered since the last warning",
                    );
                }
                entry.refused = 0;
            }
        }
    }
}

/// One client's turns on the accepting threads: how its cheap requests are answered there
/// without a thread ever waiting for the client.
///
/// A turn is an accepting thread answering the client's requests. A client has at most its
/// share of turns at once: every accepting thread while it is the only client present, half
/// of them (at least one) once another client is (see [`TurnLimit`]). A request that finds
/// them all taken waits here, and a thread that ends a turn first answers the request waiting
/// longest: the client's requests are answered its share at a time, in the order they came,
/// while the other threads serve other clients. A cheap later request of a kept-open
/// connection, answered on the runtime, takes a turn too when one is free and nothing waits
/// ([`Relay::try_turn`]). (Turns are not slots of the client's share of requests in flight:
/// that share bounds what the client holds of the blocking pool, turns what it holds of the
/// threads that answer cheap requests.)
pub(crate) struct Relay<T = Pending> {
    limit: Arc<TurnLimit>,
    state: Mutex<RelayState<T>>,
}

impl<T> std::fmt::Debug for Relay<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("limit", &self.limit)
            .field("state", &*self.state())
            .finish()
    }
}

struct RelayState<T> {
    /// Turns held now.
    turns: usize,
    /// Requests waiting for a turn, oldest first.
    waiting: VecDeque<(T, Occupancy)>,
}

impl<T> std::fmt::Debug for RelayState<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayState")
            .field("turns", &self.turns)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

/// A turn of a client on the calling thread; see [`Relay`].
pub(crate) struct Turn<T = Pending> {
    relay: Arc<Relay<T>>,
    /// False once the turn was ended by [`Relay::next`].
    held: bool,
}

impl<T> Drop for Turn<T> {
    fn drop(&mut self) {
        // Only when the turn ends without `next` (a panic unwinding): requests still waiting
        // are then answered by the client's next turn.
        if self.held {
            let mut state = self.relay.state();
            state.turns = state.turns.saturating_sub(1);
        }
    }
}

impl<T> Relay<T> {
    fn new(limit: Arc<TurnLimit>) -> Self {
        Relay {
            limit,
            state: Mutex::new(RelayState {
                turns: 0,
                waiting: VecDeque::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, RelayState<T>> {
        // Consistent after every statement, as the client table.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers `pending` for a turn: the calling thread's turn and the request it answers
    /// first (the oldest one waiting, which may not be the one offered), or `None` when the
    /// request waits for a thread that has a turn.
    pub(crate) fn enter(self: &Arc<Self>, pending: T) -> Option<(Turn<T>, T)> {
        let mut state = self.state();
        if state.turns >= self.limit.now() {
            state.waiting.push_back((pending, Occupancy::queued()));
            return None;
        }
        state.turns += 1;
        // A request left waiting by a turn that ended abnormally goes first.
        let pending = match state.waiting.pop_front() {
            Some((oldest, _)) => {
                state.waiting.push_back((pending, Occupancy::queued()));
                oldest
            }
            None => pending,
        };
        let turn = Turn {
            relay: Arc::clone(self),
            held: true,
        };
        Some((turn, pending))
    }

    /// A turn for a request of the client's that is being answered elsewhere (a kept-open
    /// connection's later request, on the runtime), or `None` when the client has all the turns
    /// its share allows or requests wait for one (they go first).
    pub(crate) fn try_turn(self: &Arc<Self>) -> Option<Turn<T>> {
        let mut state = self.state();
        if state.turns >= self.limit.now() || !state.waiting.is_empty() {
            return None;
        }
        state.turns += 1;
        Some(Turn {
            relay: Arc::clone(self),
            held: true,
        })
    }

    /// The request to answer next with `turn`, or `None` when the turn has ended: none waits,
    /// or the client holds more turns than its share now (another client connected meanwhile;
    /// its other turns answer what waits).
    pub(crate) fn next(&self, mut turn: Turn<T>) -> Option<(Turn<T>, T)> {
        let mut state = self.state();
        if state.turns <= self.limit.now() {
            if let Some((pending, _)) = state.waiting.pop_front() {
                return Some((turn, pending));
            }
        }
        // Ended under the lock, so that no request can join the queue after this look and
        // before the turn is given back.
        state.turns = state.turns.saturating_sub(1);
        turn.held = false;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_share_of_connections() {
        let clients = Arc::new(Clients::build(2, 3, 1, Duration::ZERO));
        let a1 = clients.admit(1).unwrap();
        let _a2 = clients.admit(1).unwrap();
        assert!(clients.admit(1).is_none(), "a third connection of uid 1");
        let b = clients.admit(2).unwrap();
        assert_eq!(a1.in_flight().available_permits(), 3);
        assert!(!Arc::ptr_eq(&a1.in_flight(), &b.in_flight()));
        drop(a1);
        let _a3 = clients.admit(1).expect("a slot was given back");
        drop(b);
        let _a4 = clients.admit(1);
        assert!(
            !clients.table().entries.contains_key(&2),
            "uid 2 is forgotten"
        );
        assert_eq!(clients.table().entries[&1].connections, 2);
    }

    #[test]
    fn connections_of_one_client_share_its_requests_in_flight() {
        let clients = Clients::new(10, 1, 1);
        let a = clients.admit(7).unwrap();
        let b = clients.admit(7).unwrap();
        let permit = a.in_flight().try_acquire_owned().unwrap();
        assert!(b.in_flight().try_acquire_owned().is_err());
        drop(permit);
        assert!(b.in_flight().try_acquire_owned().is_ok());
    }

    fn relay(alone: usize, shared: usize) -> (Arc<TurnLimit>, Arc<Relay<u32>>) {
        let limit = Arc::new(TurnLimit {
            alone,
            shared,
            clients: AtomicUsize::new(1),
        });
        (Arc::clone(&limit), Arc::new(Relay::new(limit)))
    }

    #[test]
    fn a_client_takes_turns_up_to_its_share_and_the_rest_waits_in_order() {
        let (_, relay) = relay(2, 1);
        let (first, one) = relay.enter(1).expect("a turn is free");
        let (second, two) = relay.enter(2).expect("a second turn is free");
        assert_eq!((one, two), (1, 2));
        assert!(relay.enter(3).is_none(), "both turns taken: it waits");
        assert!(relay.enter(4).is_none());
        // The thread ending a turn answers the oldest waiting request, then the next.
        let (first, three) = relay.next(first).expect("3 waits");
        assert_eq!(three, 3);
        let (second, four) = relay.next(second).expect("4 waits");
        assert_eq!(four, 4);
        assert!(relay.next(first).is_none(), "nothing waits: the turn ends");
        assert!(relay.next(second).is_none());
        assert_eq!(relay.state().turns, 0);
        assert!(relay.enter(5).is_some(), "turns are free again");
    }

    #[test]
    fn a_turn_taken_elsewhere_counts_and_never_goes_before_a_waiting_request() {
        let (_, relay) = relay(2, 1);
        let elsewhere = relay.try_turn().expect("a turn is free");
        let (here, _) = relay.enter(1).expect("the second turn");
        assert!(relay.try_turn().is_none(), "both turns taken");
        assert!(relay.enter(2).is_none(), "2 waits");
        // A turn ends: it answers 2 rather than leave it to whoever asks next.
        let (here, two) = relay.next(here).expect("2 waits");
        assert_eq!(two, 2);
        assert!(relay.next(here).is_none());
        let (here, three) = relay.enter(3).expect("a turn is free again");
        assert_eq!(three, 3);
        assert!(relay.enter(4).is_none(), "two turns held again: 4 waits");
        assert!(
            relay.try_turn().is_none(),
            "4 waits: no turn taken ahead of it"
        );
        let (elsewhere, four) = relay.next(elsewhere).expect("4 waits");
        assert_eq!(four, 4);
        assert!(relay.next(elsewhere).is_none());
        assert!(relay.next(here).is_none());
        assert_eq!(relay.state().turns, 0);
    }

    #[test]
    fn once_another_client_connects_turns_over_the_share_end() {
        let (limit, relay) = relay(2, 1);
        let (first, _) = relay.enter(1).unwrap();
        let (second, _) = relay.enter(2).unwrap();
        assert!(relay.enter(3).is_none());
        limit.clients.store(2, Ordering::Relaxed);
        // Two turns where the share is now one: the first to end gives its thread back even
        // though a request waits, and the remaining turn answers it.
        assert!(relay.next(first).is_none());
        let (second, three) = relay.next(second).expect("the remaining turn answers 3");
        assert_eq!(three, 3);
        let (third, four) = relay.enter(4).map_or((None, 0), |(t, v)| (Some(t), v));
        assert!(third.is_none() && four == 0, "one turn held: 4 waits");
        let (second, four) = relay.next(second).unwrap();
        assert_eq!(four, 4);
        assert!(relay.next(second).is_none());
    }

    #[test]
    fn a_turn_that_ends_abnormally_leaves_what_waits_to_the_next_turn() {
        let (_, relay) = relay(1, 1);
        let (turn, _) = relay.enter(1).unwrap();
        assert!(relay.enter(2).is_none());
        drop(turn); // As a panic unwinding would.
        assert_eq!(relay.state().turns, 0);
        // The next request takes the turn and answers the one left waiting first.
        let (turn, first) = relay.enter(3).expect("the turn was given back");
        assert_eq!(first, 2);
        let (turn, next) = relay.next(turn).unwrap();
        assert_eq!(next, 3);
        assert!(relay.next(turn).is_none());
    }

    #[test]
    fn the_share_of_turns_follows_the_clients_present() {
        let clients = Arc::new(Clients::build(10, 8, 4, Duration::from_millis(200)));
        let one = clients.admit(1).unwrap();
        assert_eq!(clients.turns.now(), 4, "alone: every thread");
        let two = clients.admit(2).unwrap();
        assert_eq!(clients.turns.now(), 2, "two clients: half each");
        drop(two);
        // A client between two connections is still there...
        drop(clients.admit(1).unwrap());
        assert_eq!(clients.turns.now(), 2, "uid 2 left a moment ago");
        // ...until it has been gone for a while.
        std::thread::sleep(Duration::from_millis(250));
        let again = clients.admit(1).unwrap();
        assert_eq!(clients.turns.now(), 4, "uid 2 is gone");
        drop((one, again));
        std::thread::sleep(Duration::from_millis(250));
        drop(clients.admit(3).unwrap());
        assert_eq!(clients.table().entries.len(), 1, "only uid 3 is left");
        // Half the threads, but never more than the client's share of requests in flight,
        // and at least one.
        assert_eq!(Clients::new(10, 1, 64).turns.shared, 1);
        assert_eq!(Clients::new(10, 8, 1).turns.shared, 1);
    }
}
