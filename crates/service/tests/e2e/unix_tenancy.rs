//! Two real Unix users of one daemon (UnixPeerCredentials): each sees and uses only its own
//! keys, both can own a key of the same name, and neither can pass itself off as the other.
//!
//! The parent test (which must run as root) re-executes this test binary as other uids; in the
//! child, [`tenancy_child`] performs the actions named in [`ACTIONS_VAR`] against the socket in
//! [`SOCKET_VAR`] and prints one `TENANCY <action> <OK|ERR> <data>` line per action.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use parsec_client::core::interface::operations::psa_algorithm::{AsymmetricSignature, Hash};
use parsec_client::core::interface::operations::psa_key_attributes::{
    Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
};
use parsec_client::core::ipc_handler::unix_socket::Handler;
use parsec_client::BasicClient;
use sha2::{Digest, Sha256};

use crate::harness::{Auth, Daemon};

const ACTIONS_VAR: &str = "BULWARK_TENANCY_ACTIONS";
const SOCKET_VAR: &str = "BULWARK_TENANCY_SOCKET";
const UID_A: u32 = 65534;
const UID_B: u32 = 65533;
const STATUS_AUTHENTICATION_ERROR: u16 = 11;

fn message_hash() -> Vec<u8> {
    Sha256::digest(b"tenancy").to_vec()
}

fn ecdsa() -> AsymmetricSignature {
    AsymmetricSignature::Ecdsa {
        hash_alg: Hash::Sha256.into(),
    }
}

fn p256_attributes() -> Attributes {
    let mut usage_flags = UsageFlags::default();
    let _ = usage_flags.set_sign_hash().set_verify_hash();
    Attributes {
        lifetime: Lifetime::Persistent,
        key_type: Type::EccKeyPair {
            curve_family: EccFamily::SecpR1,
        },
        bits: 256,
        policy: Policy {
            usage_flags,
            permitted_algorithms: ecdsa().into(),
        },
    }
}

/// A ListKeys request authenticated as Unix uid `uid` (docs/protocol.md#test-vectors).
fn list_keys_request(uid: u32) -> Vec<u8> {
    let mut request =
        hex::decode("10a7c05e1e00010000000000000000000000000000030000000004001a00000000000000")
            .unwrap();
    request.extend_from_slice(&uid.to_le_bytes());
    request
}

/// Sends a raw request and returns the response status.
fn raw_status(socket: &Path, request: &[u8]) -> Result<u16, String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    stream.write_all(request).map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    if response.len() < 36 {
        return Err(format!("short response {}", hex::encode(&response)));
    }
    Ok(u16::from_le_bytes([response[32], response[33]]))
}

/// Runs in the re-executed test binary: performs the requested actions, one result line each.
///
/// Actions (comma separated): `create:NAME`, `list`, `sign:NAME`, `export:NAME`,
/// `destroy:NAME`, `forge:UID` (a raw ListKeys declaring `UID`).
#[test]
fn tenancy_child() {
    let (Ok(actions), Ok(socket)) = (std::env::var(ACTIONS_VAR), std::env::var(SOCKET_VAR)) else {
        return; // Not a re-executed child: nothing to do.
    };
    let socket = PathBuf::from(socket);
    let mut client = BasicClient::default();
    client.set_ipc_handler(Box::new(
        Handler::new(socket.clone(), Some(Duration::from_secs(60))).unwrap(),
    ));
    client.set_default_provider().unwrap();
    client.set_default_auth(Some("tenancy".into())).unwrap();
    let hash = message_hash();
    for action in actions.split(',') {
        let (verb, arg) = action.split_once(':').unwrap_or((action, ""));
        let result: Result<String, String> = match verb {
            "create" => client
                .psa_generate_key(arg, p256_attributes())
                .map(|()| String::new()),
            "list" => client.list_keys().map(|keys| {
                let mut names: Vec<String> = keys.into_iter().map(|k| k.name).collect();
                names.sort();
                names.join(" ")
            }),
            "sign" => client.psa_sign_hash(arg, &hash, ecdsa()).map(hex::encode),
            "export" => client.psa_export_public_key(arg).map(hex::encode),
            "destroy" => client.psa_destroy_key(arg).map(|()| String::new()),
            "forge" => {
                let status = raw_status(&socket, &list_keys_request(arg.parse().unwrap()));
                println!(
                    "TENANCY {action} {}",
                    match status {
                        Ok(status) => format!("OK {status}"),
                        Err(e) => format!("ERR {e}"),
                    }
                );
                continue;
            }
            other => panic!("unknown tenancy action {other}"),
        }
        .map_err(|e| format!("{e:?}"));
        match result {
            Ok(data) => println!("TENANCY {action} OK {data}"),
            Err(e) => println!("TENANCY {action} ERR {e}"),
        }
    }
}

/// Results of one child run: action → `Ok(data)` / `Err(error)`.
type Results = BTreeMap<String, Result<String, String>>;

/// A copy of this test binary that the other uids can run, in a directory of its own.
///
/// The copy is taken from `/proc/self/exe`, the running image, so that a concurrent rebuild
/// of the test binary (which rewrites the file at `current_exe()`) cannot break the children.
fn child_binary() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("bulwark-tenancy")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("e2e-tenancy-child");
    std::fs::copy("/proc/self/exe", &exe)
        .or_else(|_| std::fs::copy(std::env::current_exe().unwrap(), &exe))
        .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, exe)
}

/// Runs `actions` as `uid` (gid = uid) through the test binary `exe` against `daemon` and
/// returns their results.
fn run_as(exe: &Path, daemon: &Daemon, uid: u32, actions: &[&str]) -> Results {
    let output = Command::new(exe)
        .args([
            "--exact",
            "unix_tenancy::tenancy_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ACTIONS_VAR, actions.join(","))
        .env(SOCKET_VAR, &daemon.socket)
        .env_remove("RUST_LOG")
        .current_dir("/")
        .uid(uid)
        .gid(uid)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} as uid {uid}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child as uid {uid} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut results = Results::new();
    for line in stdout.lines() {
        // libtest's "test … ..." may precede the first line without a line break.
        let Some((_, rest)) = line.split_once("TENANCY ") else {
            continue;
        };
        let (action, rest) = rest.split_once(' ').unwrap();
        let (kind, data) = rest.split_once(' ').unwrap_or((rest, ""));
        let value = if kind == "OK" {
            Ok(data.to_owned())
        } else {
            Err(data.to_owned())
        };
        results.insert(action.to_owned(), value);
    }
    for action in actions {
        assert!(
            results.contains_key(*action),
            "uid {uid}: no result for {action}:\n{stdout}"
        );
    }
    results
}

fn ok(results: &Results, action: &str, uid: u32) -> String {
    match &results[action] {
        Ok(data) => data.clone(),
        Err(e) => panic!("uid {uid}: {action} failed: {e}"),
    }
}

fn assert_err(results: &Results, action: &str, uid: u32, expected: &str) {
    match &results[action] {
        Err(e) if e == expected => {}
        other => panic!("uid {uid}: {action}: expected Err({expected}), got {other:?}"),
    }
}

fn verify(public_hex: &str, signature_hex: &str) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&hex::decode(public_hex).unwrap())
        .expect("P-256 public key");
    let sig = p256::ecdsa::Signature::from_slice(&hex::decode(signature_hex).unwrap())
        .expect("r || s signature");
    key.verify_prehash(&message_hash(), &sig)
        .expect("signature verifies with the owner's key");
}

#[test]
fn unix_users_are_isolated() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "unix_tenancy must run as root (it re-executes itself as uids {UID_A} and {UID_B}); \
         CI runs the e2e tests as root"
    );
    let (_exe_dir, exe) = child_binary();
    let daemon = Daemon::start(Auth::unix());
    // The other uids must reach the socket inside the daemon's temporary directory.
    std::fs::set_permissions(daemon.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o666, "the socket must be usable by every user");

    // Both users create "same" and a key only they have.
    let a = run_as(&exe, &daemon, UID_A, &["create:same", "create:only-a"]);
    ok(&a, "create:same", UID_A);
    ok(&a, "create:only-a", UID_A);
    let b = run_as(&exe, &daemon, UID_B, &["create:same", "create:only-b"]);
    ok(&b, "create:same", UID_B);
    ok(&b, "create:only-b", UID_B);

    // Each lists only its own; the two "same" keys are different keys.
    let a = run_as(&exe, &daemon, UID_A, &["list", "export:same", "sign:same"]);
    let b = run_as(
        &exe,
        &daemon,
        UID_B,
        &["list", "export:same", "export:only-b", "sign:only-b"],
    );
    assert_eq!(ok(&a, "list", UID_A), "only-a same");
    assert_eq!(ok(&b, "list", UID_B), "only-b same");
    let a_same = ok(&a, "export:same", UID_A);
    let b_same = ok(&b, "export:same", UID_B);
    let b_only = ok(&b, "export:only-b", UID_B);
    assert_ne!(
        a_same, b_same,
        "uid {UID_A}'s and uid {UID_B}'s \"same\" are distinct keys"
    );
    verify(&a_same, &ok(&a, "sign:same", UID_A));
    verify(&b_only, &ok(&b, "sign:only-b", UID_B));

    // A addresses only its own namespace: B's key does not exist for it.
    let a = run_as(
        &exe,
        &daemon,
        UID_A,
        &[
            "sign:only-b",
            "export:only-b",
            "destroy:only-b",
            "forge:65533",
            "list",
        ],
    );
    assert_err(&a, "sign:only-b", UID_A, "Service(PsaErrorDoesNotExist)");
    assert_err(&a, "export:only-b", UID_A, "Service(PsaErrorDoesNotExist)");
    assert_err(&a, "destroy:only-b", UID_A, "Service(PsaErrorDoesNotExist)");
    // Declaring B's uid from A's process: the peer-credential check refuses it.
    assert_eq!(
        ok(&a, "forge:65533", UID_A),
        STATUS_AUTHENTICATION_ERROR.to_string(),
        "a request declaring uid {UID_B} from a uid {UID_A} process must get AuthenticationError"
    );
    assert_eq!(ok(&a, "list", UID_A), "only-a same");

    // B's keys are untouched and still work.
    let b = run_as(
        &exe,
        &daemon,
        UID_B,
        &["list", "export:only-b", "sign:only-b", "export:same"],
    );
    assert_eq!(ok(&b, "list", UID_B), "only-b same");
    assert_eq!(ok(&b, "export:only-b", UID_B), b_only);
    assert_eq!(ok(&b, "export:same", UID_B), b_same);
    verify(&b_only, &ok(&b, "sign:only-b", UID_B));

    // Root is a third tenant: it sees none of them, and cannot declare A's uid either.
    let root = daemon.parsec_client("root");
    assert!(
        root.list_keys().unwrap().is_empty(),
        "root sees other users' keys"
    );
    assert_eq!(
        raw_status(&daemon.socket, &list_keys_request(UID_A)).unwrap(),
        STATUS_AUTHENTICATION_ERROR
    );

    // Destroying one user's "same" leaves the other's.
    let a = run_as(
        &exe,
        &daemon,
        UID_A,
        &["destroy:same", "destroy:only-a", "list"],
    );
    ok(&a, "destroy:same", UID_A);
    ok(&a, "destroy:only-a", UID_A);
    assert_eq!(ok(&a, "list", UID_A), "");
    let b = run_as(
        &exe,
        &daemon,
        UID_B,
        &["export:same", "destroy:same", "destroy:only-b", "list"],
    );
    assert_eq!(ok(&b, "export:same", UID_B), b_same);
    ok(&b, "destroy:same", UID_B);
    ok(&b, "destroy:only-b", UID_B);
    assert_eq!(ok(&b, "list", UID_B), "");
}
