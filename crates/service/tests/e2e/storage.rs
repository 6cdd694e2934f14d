//! Storage failures under a running daemon, on real file systems: the key store's disk fills up,
//! or its file system turns read-only. Key creation fails with a storage status, keys that exist
//! keep working, and nothing is lost or corrupted once the disk is usable again.
//!
//! Root ignores file permissions, so a read-only directory proves nothing here; these tests put
//! the key store on a file system of its own instead (they must run as root, as CI does):
//!
//! * full: a 1 MiB tmpfs, filled with a file until `ENOSPC`. SQLite reports `SQLITE_FULL`, the
//!   store `KeyStoreError::Full`, the client `PsaErrorInsufficientStorage`.
//! * read-only: an ext4 image on a loop device mounted `errors=remount-ro`, then made to fail
//!   with ext4's `trigger_fs_error` switch in sysfs, which remounts it read-only under the
//!   daemon's open files, as a real disk error would (`mount -o remount,ro` is refused while
//!   files are open for writing). SQLite reports the `EROFS` of its next write as
//!   `SQLITE_IOERR_WRITE`, a key-info store I/O error: `KeyInfoManagerError` (docs/protocol.md#key-based-operations,
//!   "key-info store access error"). `PsaErrorStorageFailure` is reserved to `SQLITE_READONLY`,
//!   which a database opened read-write does not report for a file system turned read-only.
//!   Restarting on the still read-only file system fails at start-up with a message naming the
//!   store (there the open itself gets `EROFS`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use parsec_client::core::interface::operations::psa_algorithm::{AsymmetricSignature, Hash};
use parsec_client::core::interface::operations::psa_key_attributes::{
    Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
};
use parsec_client::core::interface::requests::ResponseStatus;
use parsec_client::error::Error;
use parsec_client::BasicClient;

use crate::harness::{provider, Auth, Daemon, Provider};

fn ecdsa() -> AsymmetricSignature {
    AsymmetricSignature::Ecdsa {
        hash_alg: Hash::Sha256.into(),
    }
}

fn p256() -> Attributes {
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

/// Signs with `name` and checks the signature against `public` with the `p256` crate.
fn sign_and_check(client: &BasicClient, name: &str, public: &[u8]) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let hash = [0x42u8; 32];
    let signature = client
        .psa_sign_hash(name, &hash, ecdsa())
        .unwrap_or_else(|e| panic!("signing with {name}: {e:?}"));
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
    key.verify_prehash(&hash, &signature)
        .unwrap_or_else(|e| panic!("signature of {name}: {e}"));
}

fn status<T: std::fmt::Debug>(result: Result<T, Error>) -> Option<ResponseStatus> {
    match result {
        Ok(_) => None,
        Err(Error::Service(status)) => Some(status),
        Err(other) => panic!("not a service error: {other:?}"),
    }
}

fn listed(client: &BasicClient) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    names.sort();
    names
}

/// Mbed TLS key files (`<16 hex digits>.psa_its`) in the daemon's working directory.
fn mbed_key_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.strip_suffix(".psa_its")
                .is_some_and(|stem| stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .count()
}

/// With Mbed Crypto, one key file per key: a failed creation leaves no orphan behind.
fn check_no_orphan(daemon: &Daemon, keys: usize) {
    if provider() == Provider::MbedCrypto {
        assert_eq!(mbed_key_files(daemon.dir()), keys, "{}", daemon.log());
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the storage tests mount file systems and must run as root; CI runs the e2e tests as root"
    );
}

/// A file system mounted on a directory of its own; unmounted (and its loop device released)
/// when dropped.
pub(crate) struct Mount {
    pub(crate) point: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mount {
    fn new(args: &[&str]) -> Mount {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("bulwark-storage")
            .tempdir()
            .unwrap();
        let point = dir.path().join("fs");
        std::fs::create_dir(&point).unwrap();
        let mount = Mount { point, _dir: dir };
        mount.mount(args);
        mount
    }

    /// Mounts (again) on this mount point.
    fn mount(&self, args: &[&str]) {
        let mut all: Vec<&str> = args.to_vec();
        all.push(self.point.to_str().unwrap());
        run("mount", &all);
        // The key store refuses a directory others can write.
        run("chmod", &["0700", self.point.to_str().unwrap()]);
    }

    /// A tmpfs of `size` (a mount option value such as `1m`).
    pub(crate) fn tmpfs(size: &str) -> Mount {
        Mount::new(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
    }

    /// An ext4 file system in `image`, on a loop device, remounted read-only on error.
    fn ext4(image: &Path) -> Mount {
        Mount::new(&Mount::ext4_args(image))
    }

    fn ext4_args(image: &Path) -> [&str; 5] {
        [
            "-t",
            "ext4",
            "-o",
            "loop,errors=remount-ro",
            image.to_str().unwrap(),
        ]
    }

    /// The key store's path on this file system.
    fn store(&self) -> PathBuf {
        self.point.join("keys.sqlite3")
    }

    /// Mount options, as the kernel reports them.
    fn options(&self) -> String {
        run(
            "findmnt",
            &[
                "-n",
                "-o",
                "OPTIONS",
                "--mountpoint",
                self.point.to_str().unwrap(),
            ],
        )
    }

    /// The block device (`loop3`), for ext4's sysfs switches.
    fn device(&self) -> String {
        let source = run(
            "findmnt",
            &[
                "-n",
                "-o",
                "SOURCE",
                "--mountpoint",
                self.point.to_str().unwrap(),
            ],
        );
        Path::new(source.trim())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn unmount(&self) {
        run("umount", &[self.point.to_str().unwrap()]);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Lazy: succeeds even if a test failed with a daemon still holding files there.
        let _ = Command::new("umount").arg("-l").arg(&self.point).output();
    }
}

/// A daemon (not started) whose key store is at `store`.
fn daemon_with_store(store: &Path) -> Daemon {
    let daemon = Daemon::configure(Auth::direct());
    let config = std::fs::read_to_string(&daemon.config).unwrap();
    let config: String = config
        .lines()
        .map(|line| {
            if line.starts_with("sqlite_db_path") {
                format!("sqlite_db_path = \"{}\"\n", store.display())
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(&daemon.config, config).unwrap();
    daemon
}

/// Checks the database file itself with SQLite's own integrity check, with the daemon stopped.
fn check_integrity(store: &Path) {
    let connection = rusqlite::Connection::open(store).unwrap();
    let result: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(result, "ok");
    let unfinished: i64 = connection
        .query_row(
            "SELECT count(*) FROM key_info WHERE state <> 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(unfinished, 0, "rows left mid-operation");
}

/// Fills the file system holding `dir` with a file; returns the file.
pub(crate) fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = [0u8; 4096];
    loop {
        match file.write_all(&chunk).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(error) => panic!("filling {}: {error}", dir.display()),
        }
    }
    path
}

#[test]
fn a_full_disk_refuses_new_keys_with_insufficient_storage_and_loses_nothing() {
    let fs = Mount::tmpfs("1m");
    let mut daemon = daemon_with_store(&fs.store());
    daemon.spawn();
    let client = daemon.parsec_client("app");

    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..3 {
        let name = format!("before-{i}");
        client.psa_generate_key(&name, p256()).unwrap();
        let public = client.psa_export_public_key(&name).unwrap();
        sign_and_check(&client, &name, &public);
        keys.push((name, public));
    }

    let filler = fill(&fs.point);
    // The database and its WAL may still have free pages: keep creating keys until the disk
    // says no. Every key acknowledged meanwhile is a real key.
    let mut refused = None;
    for i in 0..200 {
        let name = format!("while-full-{i}");
        match status(client.psa_generate_key(&name, p256())) {
            None => {
                let public = client.psa_export_public_key(&name).unwrap();
                keys.push((name, public));
            }
            Some(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(ResponseStatus::PsaErrorInsufficientStorage),
        "{}",
        daemon.log()
    );
    // The refused name stays free; nothing else changed.
    let names: Vec<String> = keys.iter().map(|(n, _)| n.clone()).collect();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(listed(&client), expected);
    check_no_orphan(&daemon, keys.len());
    // Existing keys keep working on a full disk.
    for (name, public) in &keys {
        sign_and_check(&client, name, public);
    }
    // A destroy either lands or is refused for lack of space, leaving the key whole.
    let (victim, victim_public) = keys[0].clone();
    match status(client.psa_destroy_key(&victim)) {
        None => {
            keys.remove(0);
        }
        Some(status) => {
            assert_eq!(status, ResponseStatus::PsaErrorInsufficientStorage);
            sign_and_check(&client, &victim, &victim_public);
        }
    }

    // Space comes back: creation works again without a restart...
    std::fs::remove_file(filler).unwrap();
    client.psa_generate_key("after", p256()).unwrap();
    keys.push((
        "after".to_owned(),
        client.psa_export_public_key("after").unwrap(),
    ));
    // ... and after one, every acknowledged key is there and works, and nothing else is.
    daemon.restart();
    let client = daemon.parsec_client("app");
    let mut expected: Vec<String> = keys.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(listed(&client), expected);
    for (name, public) in &keys {
        sign_and_check(&client, name, public);
    }
    check_no_orphan(&daemon, keys.len());
    daemon.stop();
    check_integrity(&fs.store());
}

#[test]
fn a_key_store_turned_read_only_refuses_writes_and_keeps_its_keys() {
    let image_dir = tempfile::tempdir().unwrap();
    let image = image_dir.path().join("ext4.img");
    run("truncate", &["-s", "16M", image.to_str().unwrap()]);
    run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]);
    let fs = Mount::ext4(&image);
    let mut daemon = daemon_with_store(&fs.store());
    daemon.spawn();
    let client = daemon.parsec_client("app");

    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    for name in ["one", "two"] {
        client.psa_generate_key(name, p256()).unwrap();
        keys.push((name.to_owned(), client.psa_export_public_key(name).unwrap()));
    }

    // A disk error: ext4 remounts itself read-only under the running daemon.
    std::fs::write(
        format!("/sys/fs/ext4/{}/trigger_fs_error", fs.device()),
        "bulwark storage test",
    )
    .unwrap();
    // Newer kernels report this as `emergency_ro` rather than `ro`.
    let options = fs.options();
    assert!(
        options
            .trim()
            .split(',')
            .any(|o| o == "ro" || o == "emergency_ro"),
        "{options}"
    );

    assert_eq!(
        status(client.psa_generate_key("refused", p256())),
        Some(ResponseStatus::KeyInfoManagerError),
        "{}",
        daemon.log()
    );
    assert_eq!(
        status(client.psa_destroy_key("one")),
        Some(ResponseStatus::KeyInfoManagerError)
    );
    // Reads are served from memory: every key is still listed and usable.
    assert_eq!(listed(&client), ["one", "two"]);
    for (name, public) in &keys {
        sign_and_check(&client, name, public);
    }
    check_no_orphan(&daemon, keys.len());

    // A restart on the read-only file system stops at start-up, naming the store.
    daemon.stop();
    let output = Command::new(env!("CARGO_BIN_EXE_bulwarkd"))
        .arg("--config")
        .arg(&daemon.config)
        .current_dir(daemon.dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("key_manager.sqlite_db_path")
            && stderr.contains(&fs.store().display().to_string())
            && stderr.contains("read-only"),
        "{stderr}"
    );

    // Repaired (fsck) and mounted read-write again: the keys are all there, nothing else.
    fs.unmount();
    // e2fsck exits 1 when it corrected something (here the recorded error): not a failure.
    let fsck = Command::new("e2fsck")
        .args(["-f", "-y", image.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(matches!(fsck.status.code(), Some(0 | 1)), "{fsck:?}");
    fs.mount(&Mount::ext4_args(&image));
    assert!(fs.options().starts_with("rw"), "{}", fs.options());
    daemon.spawn();
    let client = daemon.parsec_client("app");
    assert_eq!(listed(&client), ["one", "two"]);
    for (name, public) in &keys {
        sign_and_check(&client, name, public);
    }
    client.psa_generate_key("three", p256()).unwrap();
    client.psa_destroy_key("one").unwrap();
    assert_eq!(listed(&client), ["three", "two"]);
    daemon.stop();
    check_integrity(&fs.store());
}
