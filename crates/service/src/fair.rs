//! Serving clients fairly where a resource can only do one thing at a time.
//!
//! The front end shares the blocking pool out per client (`front` module documentation), but
//! some providers put every request through one resource: Mbed TLS runs one call at a time,
//! behind one lock and one thread. Calls waiting for such a resource are served in turn, one
//! per client with calls waiting ([`FairQueue`]), rather than first come, first served, so a
//! client that sends many calls makes others wait for one of its calls, not for all of them.
//!
//! A client is the peer uid of the connection, as for the front end's shares;
//! [`Service::handle_frame`](crate::service::Service::handle_frame) puts it in the request's
//! context ([`RequestContext::client`](crate::providers::RequestContext::client)), which
//! providers pass to the queue.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Whose request it is: the peer uid of its connection, `None` for a caller
/// without a connection (tests, benchmarks, start-up work), which all count as one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Client(pub Option<u32>);

/// Calls to one resource, let through at most `depth` at a time, the waiting ones in turns
/// between clients: each client's calls wait in order, and the clients with calls waiting are
/// served one call each, round robin.
#[derive(Debug)]
pub struct FairQueue {
    depth: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Calls let through and not finished.
    admitted: usize,
    /// The clients with calls waiting, the next to be served first, each with its calls in
    /// arrival order (never empty).
    turns: VecDeque<(Client, VecDeque<Arc<Ticket>>)>,
}

/// One waiting call; the caller sleeps until it is let through.
#[derive(Debug, Default)]
struct Ticket {
    admitted: Mutex<bool>,
    wake: Condvar,
}

impl Ticket {
    fn wait(&self) {
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        while !*admitted {
            admitted = self
                .wake
                .wait(admitted)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn admit(&self) {
        *self.admitted.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_one();
    }
}

impl FairQueue {
    /// A queue that lets `depth` calls (at least 1) through at a time.
    pub const fn new(depth: usize) -> Self {
        FairQueue {
            depth: if depth == 0 { 1 } else { depth },
            state: Mutex::new(State {
                admitted: 0,
                turns: VecDeque::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every statement leaves the state whole: a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether no call is let through or waiting.
    pub fn is_idle(&self) -> bool {
        let state = self.state();
        state.admitted == 0 && state.turns.is_empty()
    }

    /// The calls waiting for their turn.
    pub fn waiting(&self) -> usize {
        self.state()
            .turns
            .iter()
            .map(|(_, calls)| calls.len())
            .sum()
    }

    /// Runs `call` for `client` once it is let through, on this thread, and returns its result.
    pub fn run<T>(&self, client: Client, call: impl FnOnce() -> T) -> T {
        let ticket = {
            let mut state = self.state();
            if state.admitted < self.depth && state.turns.is_empty() {
                state.admitted += 1;
                None
            } else {
                let ticket = Arc::new(Ticket::default());
                match state.turns.iter_mut().find(|(c, _)| *c == client) {
                    Some((_, calls)) => calls.push_back(Arc::clone(&ticket)),
                    None => state
                        .turns
                        .push_back((client, VecDeque::from([Arc::clone(&ticket)]))),
                }
                Some(ticket)
            }
        };
        if let Some(ticket) = ticket {
            // Counted in `admitted` by whoever let it through.
            ticket.wait();
        }
        let _turn = Turn { queue: self };
        call()
    }

    /// A call let through has finished (or unwound): the next client in turn gets one call
    /// through.
    fn finished(&self) {
        let mut state = self.state();
        state.admitted = state.admitted.saturating_sub(1);
        let Some((client, mut calls)) = state.turns.pop_front() else {
            return;
        };
        let next = calls.pop_front();
        if !calls.is_empty() {
            // Its next call waits until every other client waiting had one.
            state.turns.push_back((client, calls));
        }
        if let Some(next) = next {
            state.admitted += 1;
            next.admit();
        }
    }
}

/// A call let through; lets the next one through when dropped.
struct Turn<'q> {
    queue: &'q FairQueue,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.queue.finished();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Occupies every place of `queue` until the returned sender is dropped.
    fn occupy(
        queue: &Arc<FairQueue>,
        places: usize,
    ) -> (mpsc::Sender<()>, Vec<thread::JoinHandle<()>>) {
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let holders = (0..places)
            .map(|_| {
                let queue = Arc::clone(queue);
                let released = Arc::clone(&released);
                thread::spawn(move || {
                    queue.run(Client(Some(0)), || {
                        let _ = released.lock().unwrap().recv();
                    });
                })
            })
            .collect();
        wait_until("the holders are let through", || {
            queue.state().admitted == places
        });
        (release, holders)
    }

    /// Queues `calls` (client uid, label) one after the other, each recording its label when
    /// it runs, then lets the holders go; the labels in the order the calls ran.
    fn run_in_turns(depth: usize, calls: &[(u32, &'static str)]) -> Vec<&'static str> {
        let queue = Arc::new(FairQueue::new(depth));
        let (release, holders) = occupy(&queue, depth);
        let ran = Arc::new(Mutex::new(Vec::new()));
        let callers: Vec<_> = calls
            .iter()
            .enumerate()
            .map(|(i, &(uid, label))| {
                let (shared, ran) = (Arc::clone(&queue), Arc::clone(&ran));
                let caller = thread::spawn(move || {
                    shared.run(Client(Some(uid)), || ran.lock().unwrap().push(label));
                });
                wait_until("the call waits", || queue.waiting() == i + 1);
                caller
            })
            .collect();
        drop(release);
        for thread in holders.into_iter().chain(callers) {
            thread.join().unwrap();
        }
        assert!(queue.is_idle());
        let ran = ran.lock().unwrap().clone();
        ran
    }

    #[test]
    fn queued_calls_of_two_clients_alternate() {
        // Client 1 queued all its calls before client 2 queued any: first come, first served
        // would run 1 1 1 1 2 2.
        let calls = [
            (1, "a1"),
            (1, "a2"),
            (1, "a3"),
            (1, "a4"),
            (2, "b1"),
            (2, "b2"),
        ];
        assert_eq!(
            run_in_turns(1, &calls),
            ["a1", "b1", "a2", "b2", "a3", "a4"]
        );
    }

    #[test]
    fn each_client_waiting_gets_a_turn_and_its_own_calls_keep_their_order() {
        let calls = [
            (1, "a1"),
            (1, "a2"),
            (2, "b1"),
            (3, "c1"),
            (3, "c2"),
            (2, "b2"),
        ];
        assert_eq!(
            run_in_turns(1, &calls),
            ["a1", "b1", "c1", "a2", "b2", "c2"]
        );
    }

    #[test]
    fn no_more_than_depth_calls_run_at_once() {
        let queue = Arc::new(FairQueue::new(2));
        let running = Arc::new(Mutex::new((0usize, 0usize)));
        let threads: Vec<_> = (0..8u32)
            .map(|i| {
                let (queue, running) = (Arc::clone(&queue), Arc::clone(&running));
                thread::spawn(move || {
                    queue.run(Client(Some(i % 3)), || {
                        {
                            let mut running = running.lock().unwrap();
                            running.0 += 1;
                            running.1 = running.1.max(running.0);
                        }
                        thread::sleep(Duration::from_millis(5));
                        running.lock().unwrap().0 -= 1;
                    });
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(running.lock().unwrap().1, 2);
        assert!(queue.is_idle());
    }

    #[test]
    fn a_panicking_call_lets_the_next_one_through() {
        let queue = Arc::new(FairQueue::new(1));
        let panicked = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.run(Client(Some(1)), || panic!("in the call")))
        }
        .join();
        assert!(panicked.is_err());
        assert_eq!(queue.run(Client(Some(2)), || 7), 7);
        assert!(queue.is_idle());
    }
}
