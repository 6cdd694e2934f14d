//! The front end: the Unix socket, connections and framing over them.
//!
//! Accepting never polls: the accept loop waits on the socket and on the shutdown signal at
//! once, so an idle daemon uses no CPU and a new connection is served at once. Each connection
//! is a task that reads frames with the sans-IO header checks of `bulwark_interface::wire`,
//! hands each complete frame to [`Service::handle_frame`](crate::service::Service::handle_frame) on the blocking pool (providers may
//! block: key generation, hardware tokens) and writes the response. Connections may carry
//! several requests in turn; upstream clients send one and close, which ends the task.

mod connection;
mod listener;

pub use connection::ConnectionLimits;
pub use listener::{bind, serve, ServeLimits, ServiceHandle, SocketGuard};
