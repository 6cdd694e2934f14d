//! Several authenticators at once (`[[authenticator]]`): each request is authenticated by the
//! authenticator of its auth type, the same name under two authenticators is two owners, and
//! administrators are administrators only under their own authenticator.

use bulwark_client::{attributes, Auth, Client, EccFamily, ErrorKind, ResponseStatus};
use bulwark_interface::ids::AuthType;
use bulwark_interface::wire::ResponseFrame;

use crate::harness::{Auth as DaemonAuth, Daemon};

/// A daemon with Unix peer credentials (administrator: uid 0) and then Direct (allowed beside
/// it; administrator: `ops`).
fn two_authenticators() -> Daemon {
    let mut daemon = Daemon::configure(DaemonAuth::unix());
    daemon.edit_config(
        "[authenticator]\nauth_type = \"UnixPeerCredentials\"\nadmins = [  ]",
        "[[authenticator]]\nauth_type = \"UnixPeerCredentials\"\nadmins = [ { name = \"0\" } ]\n\n\
         [[authenticator]]\nauth_type = \"Direct\"\nallow_with_other_authenticators = true\n\
         admins = [ { name = \"ops\" } ]",
    );
    daemon.spawn();
    daemon
}

fn client(daemon: &Daemon, auth: Auth) -> Client {
    Client::builder()
        .socket(&daemon.socket)
        .auth(auth)
        .build()
        .unwrap()
}

#[test]
fn the_same_name_under_two_authenticators_is_two_owners_with_their_own_admins() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs as root (uid 0 is the Unix administrator)"
    );
    let daemon = two_authenticators();
    let unix = client(&daemon, Auth::UnixPeerCredentials);
    let direct = client(&daemon, Auth::Direct("0".into()));
    let ops = client(&daemon, Auth::Direct("ops".into()));

    // Both are listed, in configuration order; upstream's client decodes the list.
    let listed: Vec<AuthType> = unix
        .list_authenticators()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, [AuthType::UnixPeerCredentials, AuthType::Direct]);
    let upstream = daemon.parsec_client("0").list_authenticators().unwrap();
    assert_eq!(upstream.len(), 2);

    // uid 0 and the Direct name "0" own one key each under the same name.
    let attrs = attributes::ecc_signing_key(EccFamily::SecpR1, 256);
    unix.generate_key("k", attrs).unwrap();
    direct.generate_key("k", attrs).unwrap();
    let unix_key = unix.export_public_key("k").unwrap();
    let direct_key = direct.export_public_key("k").unwrap();
    assert_ne!(unix_key, direct_key, "two keys");
    assert_eq!(unix.list_keys().unwrap().len(), 1);
    assert_eq!(direct.list_keys().unwrap().len(), 1);
    assert!(ops.list_keys().unwrap().is_empty());
    let signature = direct.sign_message("k", b"m").unwrap();
    assert!(unix.verify_message("k", b"m", &signature).is_err());

    // ListClients names "0" once (what upstream clients read) and says under which
    // authenticators it owns keys; DeleteClient can act under one of them only.
    assert_eq!(ops.list_clients().unwrap(), ["0"]);
    let owners: Vec<(String, AuthType)> = ops
        .list_owners()
        .unwrap()
        .into_iter()
        .map(|owner| (owner.name, owner.auth_type))
        .collect();
    assert_eq!(
        owners,
        [
            ("0".to_owned(), AuthType::Direct),
            ("0".to_owned(), AuthType::UnixPeerCredentials)
        ]
    );
    ops.delete_client_under("0", AuthType::Direct).unwrap();
    assert!(direct.list_keys().unwrap().is_empty());
    assert_eq!(
        unix.export_public_key("k").unwrap(),
        unix_key,
        "still there"
    );
    let again = ops.delete_client_under("0", AuthType::Direct).unwrap_err();
    assert_eq!(
        again.kind(),
        ErrorKind::Service(ResponseStatus::PsaErrorDoesNotExist),
        "{again}"
    );

    // Administrators: uid 0 under Unix, "ops" under Direct; the Direct name "0" is not one.
    assert!(unix.list_clients().is_ok());
    assert!(ops.list_clients().is_ok());
    let refused = direct.list_clients().unwrap_err();
    assert_eq!(
        refused.kind(),
        ErrorKind::Service(ResponseStatus::AdminOperation),
        "{refused}"
    );

    // An auth type with no authenticator configured is refused.
    let raw = daemon.send_raw(&jwt_svid_ping());
    let response = ResponseFrame::read_from(&mut &raw[..], 1 << 20).unwrap();
    assert_eq!(
        response.header.status,
        ResponseStatus::AuthenticatorNotRegistered
    );
    unix.destroy_key("k").unwrap();
}

/// A Ping with auth type 4 (JWT-SVID) and some auth bytes.
fn jwt_svid_ping() -> Vec<u8> {
    use bulwark_interface::ids::ProviderId;
    use bulwark_interface::ops::Opcode;
    use bulwark_interface::wire::{RequestFrame, RequestHeader};
    RequestFrame {
        header: RequestHeader::new(ProviderId::Core, Opcode::Ping, AuthType::JwtSvid),
        body: Default::default(),
        auth: b"not.a.token".to_vec().into(),
    }
    .to_bytes()
    .unwrap()
    .to_vec()
}
