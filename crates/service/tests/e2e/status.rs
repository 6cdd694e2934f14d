//! `BulwarkStatus`, the administrators' view of a running daemon: refused to everyone else,
//! and its figures are the daemon's real ones.

use std::time::{Duration, Instant};

use bulwark_client::interface::ops::bulwark_status::Response;
use bulwark_client::{attributes, Client, EccFamily, ErrorKind, ProviderId, ResponseStatus};

use crate::harness::{Auth, Daemon};

fn client(daemon: &Daemon, app: &str) -> Client {
    Client::builder()
        .socket(&daemon.socket)
        .app_name(app)
        .build()
        .unwrap()
}

/// A daemon with the administrator `admin` that keeps idle connections open for ten minutes,
/// so that no connection closes by itself while the test counts them.
fn daemon() -> Daemon {
    let mut daemon = Daemon::configure(Auth::Direct {
        admins: vec!["admin".into()],
    });
    daemon.edit_config(
        "timeout = 2000\n",
        "timeout = 2000\nidle_timeout = 600000\n",
    );
    daemon.spawn();
    daemon
}

#[test]
fn status_is_refused_to_non_administrators() {
    let daemon = daemon();
    let error = client(&daemon, "alice").status().unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::Service(ResponseStatus::AdminOperation),
        "{error:?}"
    );
    // The name is an administrator's only under the authenticator that lists it: a daemon
    // without administrators refuses it too.
    let plain = Daemon::start(Auth::direct());
    let error = client(&plain, "admin").status().unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::Service(ResponseStatus::AdminOperation),
        "{error:?}"
    );
    // And the administrator of the first daemon is answered.
    client(&daemon, "admin").status().unwrap();
}

#[test]
fn status_reports_the_daemons_real_figures() {
    let daemon = daemon();
    let admin = client(&daemon, "admin");
    let status = admin.status().unwrap();
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert!(status.uptime_seconds < 24 * 3600, "{status:?}");
    assert_eq!(status.providers.len(), 1, "{status:?}");
    let provider = &status.providers[0];
    assert_ne!(provider.id, ProviderId::Core);
    assert_eq!(provider.problem, None, "{status:?}");
    assert_eq!((provider.keys, status.keys, status.clients), (0, 0, 0));
    assert_eq!(status.authenticators.len(), 1);
    assert_eq!(
        status.authenticators[0].id,
        bulwark_client::AuthType::Direct
    );
    // This request is the only one: it is in flight, on an open connection, and none waits.
    assert_eq!(status.requests_in_flight, 1, "{status:?}");
    assert_eq!(status.requests_queued, 0, "{status:?}");
    assert!(status.connections_open >= 1, "{status:?}");
    let alone = status.connections_open;
    // Waits until the daemon counts `count` open connections (it notices a close at once; the
    // deadline only guards against a hang).
    let settle = |count| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last: Response = admin.status().unwrap();
            if last.connections_open == count {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "connections still counted: {last:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(
        status.audit.sink.starts_with("file:") && status.audit.sink.ends_with("bulwark-audit.log"),
        "{status:?}"
    );
    assert_eq!(status.audit.records_lost, 0);

    // A key created shows in the counts, of its provider and in all; destroyed, it is gone.
    let alice = client(&daemon, "alice");
    alice
        .generate_key("k", attributes::ecc_signing_key(EccFamily::SecpR1, 256))
        .unwrap();
    let status = admin.status().unwrap();
    assert_eq!(
        (status.providers[0].keys, status.keys, status.clients),
        (1, 1, 1),
        "{status:?}"
    );
    alice.destroy_key("k").unwrap();
    let status = admin.status().unwrap();
    assert_eq!(
        (status.providers[0].keys, status.keys, status.clients),
        (0, 0, 0)
    );
    drop(alice);
    // Alice's kept-open connection is closed by her client; counted until the daemon sees it.
    let before = settle(alone).connections_open;

    // Three more clients, each holding a kept-open connection: three more connections open.
    let others: Vec<Client> = (0..3)
        .map(|i| {
            let c = client(&daemon, &format!("idle-{i}"));
            c.ping().unwrap();
            assert_eq!(c.connection_stats().idle, 1);
            c
        })
        .collect();
    let during = admin.status().unwrap();
    assert_eq!(during.connections_open, before + 3, "{during:?}");
    assert_eq!(during.requests_in_flight, 1, "{during:?}");
    // Closed by their clients, they are no longer counted.
    drop(others);
    settle(before);
}
