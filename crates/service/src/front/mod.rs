//! The front end: the Unix socket, connections and framing over them.
//!
//! Connections are accepted by threads of their own, one per CPU (at most 64), each blocked in
//! `accept` on the listening socket, so an idle daemon uses no CPU and the kernel wakes one
//! thread per connection. That thread serves the connection's first request as far as it
//! goes without waiting (`connection::serve_now`): a cheap request already queued whole is
//! answered there with non-blocking system calls and the connection closed, never meeting the
//! runtime. Anything that would wait becomes a task on the runtime (`connection::serve_rest`),
//! which reads frames with the sans-IO header checks of `bulwark_interface::wire`, hands each
//! complete frame to [`Service::handle_frame`](crate::service::Service::handle_frame) on the
//! blocking pool (providers may block: key generation, hardware tokens) or answers a cheap one
//! inline, and writes the response. A connection carries one request and is closed right after
//! its answer, as the wire protocol says (clients such as the upstream Go client read until
//! that close); only a request with
//! [`FLAG_KEEP_OPEN`](bulwark_interface::wire::FLAG_KEEP_OPEN) in its header `flags` keeps the
//! connection for another request, and its answer then carries the flag too.
//!
//! # Limits
//!
//! A *client* is the uid of the socket's peer, read from the peer credentials right after the
//! connection is accepted, before any byte is read. (It is not the application name: that is
//! only known once a request has been read, and Direct authentication lets anyone claim any
//! name. Applications that share a uid share its share.)
//!
//! | Limit (`[core_settings]`) | When reached |
//! |---|---|
//! | `max_connections` (default 1024) | the daemon stops accepting: further connections wait in the kernel's backlog, then (backlog full) in the client's `connect` |
//! | `max_connections_per_client` (default ¼ of `max_connections`) | a further connection of that client is accepted and closed at once, unanswered (its client sees the connection reset or end), with a warning naming the uid (at most one a second per client, with the count refused since the last) |
//! | `max_requests_in_flight` (default 4 × CPUs) | a complete request waits for a slot before going to the blocking pool |
//! | `max_requests_in_flight_per_client` (default ¼ of `max_requests_in_flight`, at most half of `thread_pool_size`, at least 1: 1 on 2 CPUs) | a complete request of that client waits until one of its own finishes |
//! | turns on the accepting threads (not configurable: all of them while the client is the only one present (connected, or within the last second), else half of them, at most its `max_requests_in_flight_per_client`, at least 1) | a cheap request of that client waits in the client's relay for one of its turns to end (see `clients::Relay`); a cheap later request of a kept-open connection, on the runtime, waits for the client's share of requests in flight instead |
//!
//! Connections over the client's share are closed rather than kept waiting: a waiting
//! connection would hold a file descriptor and a global connection slot, so one client could
//! still fill the daemon. Requests wait instead: their connection is already admitted, and the
//! wait is an `await` on the client's own semaphore, taken *before* the daemon-wide one, so a
//! client waiting for its share holds none of the daemon's slots and nothing else waits on it.
//! One client therefore never has more than its share of requests queued on or running in the
//! blocking pool (whose queue is first come, first served), so another client's request waits
//! for at most that many of its requests, not for all it sent. Idle kept-open connections
//! count towards the connection share until they are closed (`listener.idle_timeout`, 5 s by
//! default).
//!
//! Time limits (`listener.timeout` and `listener.idle_timeout`): a request must arrive whole within
//! `listener.timeout` of its connection (of its first byte, on a kept-open connection), else
//! ConnectionError and close, so a client trickling bytes cannot hold its slot; a response must
//! be written whole within `listener.timeout`, else the connection is closed (a client that
//! does not read holds nothing else); a kept-open connection with no new request for
//! `listener.idle_timeout` is closed. None of these waits occupies a thread: they are tasks on
//! the two socket workers; the accepting threads never wait for a client.
//! A failed `accept` (out of file descriptors) is retried after 100 ms, not in a loop.

mod clients;
mod connection;
mod listener;

pub use connection::ConnectionLimits;
pub use listener::{bind, serve, ServeLimits, ServiceHandle, SocketGuard};
