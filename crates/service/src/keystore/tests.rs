// Tests stop at the first broken step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;

use psa_crypto::types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricSignature, Cipher, FullLengthMac, Hash,
    Mac,
};
use psa_crypto::types::key::{EccFamily, Lifetime, Policy, Type, UsageFlags};
use rusqlite::Connection;

use super::*;

fn identity(authenticator: AuthType, application: &str, provider: &str, key: &str) -> KeyIdentity {
    KeyIdentity {
        authenticator,
        application: application.to_owned(),
        provider_name: provider.to_owned(),
        key_name: key.to_owned(),
    }
}

/// `alice`'s key `name` in `mbed`, authenticated by peer credentials.
fn alice(name: &str) -> KeyIdentity {
    identity(AuthType::UnixPeerCredentials, "alice", "mbed", name)
}

fn ecdsa_attributes() -> Attributes {
    let mut usage_flags = UsageFlags::default();
    usage_flags.set_sign_hash().set_verify_hash().set_export();
    Attributes {
        lifetime: Lifetime::Persistent,
        key_type: Type::EccKeyPair {
            curve_family: EccFamily::SecpR1,
        },
        bits: 256,
        policy: Policy {
            usage_flags,
            permitted_algorithms: Algorithm::AsymmetricSignature(AsymmetricSignature::Ecdsa {
                hash_alg: Hash::Sha256.into(),
            }),
        },
    }
}

fn record(key_id: &[u8]) -> KeyRecord {
    KeyRecord {
        provider_id: ProviderId::MbedCrypto,
        key_id: key_id.to_vec().into(),
        attributes: ecdsa_attributes(),
    }
}

fn create(store: &KeyStore, identity: &KeyIdentity, record: &KeyRecord) {
    store.reserve(identity, record).unwrap();
    store.commit(identity).unwrap();
}

fn memory() -> KeyStore {
    KeyStore::open_in_memory().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn key_store_and_its_error_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KeyStore>();
    assert_send_sync::<KeyStoreError>();
}

#[test]
fn reserve_commit_get_round_trips_full_attributes() {
    let mut rsa_flags = UsageFlags::default();
    rsa_flags
        .set_sign_message()
        .set_verify_message()
        .set_derive();
    let mut aes_flags = UsageFlags::default();
    aes_flags.set_encrypt().set_decrypt().set_copy().set_cache();
    let mut hmac_flags = UsageFlags::default();
    hmac_flags.set_sign_message().set_verify_message();
    let records = [
        record(&[0, 0, 0, 1]),
        KeyRecord {
            provider_id: ProviderId::Pkcs11,
            key_id: vec![0xff; 300].into(),
            attributes: Attributes {
                lifetime: Lifetime::Persistent,
                key_type: Type::RsaKeyPair,
                bits: 3072,
                policy: Policy {
                    usage_flags: rsa_flags,
                    permitted_algorithms: Algorithm::AsymmetricSignature(
                        AsymmetricSignature::RsaPss {
                            hash_alg: Hash::Sha384.into(),
                        },
                    ),
                },
            },
        },
        KeyRecord {
            provider_id: ProviderId::Tpm,
            key_id: Vec::new().into(),
            attributes: Attributes {
                lifetime: Lifetime::Persistent,
                key_type: Type::Aes,
                bits: 128,
                policy: Policy {
                    usage_flags: aes_flags,
                    permitted_algorithms: Algorithm::Aead(Aead::AeadWithShortenedTag {
                        aead_alg: AeadWithDefaultLengthTag::Gcm,
                        tag_length: 12,
                    }),
                },
            },
        },
        KeyRecord {
            provider_id: ProviderId::MbedCrypto,
            key_id: b"\x00\x01".to_vec().into(),
            attributes: Attributes {
                lifetime: Lifetime::Persistent,
                key_type: Type::Hmac,
                bits: 0,
                policy: Policy {
                    usage_flags: hmac_flags,
                    permitted_algorithms: Algorithm::Mac(Mac::FullLength(FullLengthMac::Hmac {
                        hash_alg: Hash::Sha512,
                    })),
                },
            },
        },
        KeyRecord {
            provider_id: ProviderId::MbedCrypto,
            key_id: vec![7].into(),
            attributes: Attributes {
                lifetime: Lifetime::Persistent,
                key_type: Type::Aes,
                bits: 256,
                policy: Policy {
                    usage_flags: aes_flags,
                    permitted_algorithms: Algorithm::Cipher(Cipher::CbcPkcs7),
                },
            },
        },
    ];
    let store = memory();
    for (index, record) in records.iter().enumerate() {
        let id = alice(&format!("key {index} ✓"));
        store.reserve(&id, record).unwrap();
        assert_eq!(store.get(&id).unwrap(), None, "visible before commit");
        store.commit(&id).unwrap();
        assert_eq!(store.get(&id).unwrap().as_ref(), Some(record));
    }
}

#[test]
fn reserve_rejects_an_identity_in_every_state() {
    let store = memory();
    let creating = alice("creating");
    let committed = alice("committed");
    let destroying = alice("destroying");
    store.reserve(&creating, &record(&[1])).unwrap();
    create(&store, &committed, &record(&[2]));
    create(&store, &destroying, &record(&[3]));
    store.begin_destroy(&destroying).unwrap();

    for id in [&creating, &committed, &destroying] {
        assert!(
            matches!(
                store.reserve(id, &record(&[9])),
                Err(KeyStoreError::AlreadyExists)
            ),
            "{id:?}"
        );
    }
    // The failed reservations changed nothing.
    assert_eq!(store.get(&committed).unwrap(), Some(record(&[2])));
    assert!(!store.key_id_in_use("mbed", &[9]).unwrap());
}

#[test]
fn one_key_name_coexists_across_applications_authenticators_and_providers() {
    let store = memory();
    let ids = [
        identity(AuthType::UnixPeerCredentials, "alice", "mbed", "k"),
        identity(AuthType::UnixPeerCredentials, "bob", "mbed", "k"),
        identity(AuthType::Direct, "alice", "mbed", "k"),
        identity(AuthType::UnixPeerCredentials, "alice", "pkcs11", "k"),
    ];
    for (index, id) in ids.iter().enumerate() {
        create(&store, id, &record(&[index as u8]));
    }
    for (index, id) in ids.iter().enumerate() {
        assert_eq!(store.get(id).unwrap(), Some(record(&[index as u8])));
    }
    // Destroying one leaves the others.
    store.begin_destroy(&ids[0]).unwrap();
    store.finish_destroy(&ids[0]).unwrap();
    assert_eq!(store.get(&ids[0]).unwrap(), None);
    for id in &ids[1..] {
        assert!(store.get(id).unwrap().is_some());
    }
}

#[test]
fn abort_frees_the_name_and_the_key_id() {
    let store = memory();
    let id = alice("k");
    store.reserve(&id, &record(&[1])).unwrap();
    assert!(store.key_id_in_use("mbed", &[1]).unwrap());
    store.abort(&id).unwrap();
    assert!(!store.key_id_in_use("mbed", &[1]).unwrap());
    assert_eq!(store.get(&id).unwrap(), None);
    assert!(store.unfinished("mbed").unwrap().is_empty());
    create(&store, &id, &record(&[2]));
    assert_eq!(store.get(&id).unwrap(), Some(record(&[2])));
}

#[test]
fn begin_destroy_hides_the_key_and_finish_destroy_removes_it() {
    let store = memory();
    let id = alice("k");
    create(&store, &id, &record(&[4]));
    assert_eq!(store.begin_destroy(&id).unwrap(), record(&[4]));
    assert_eq!(store.get(&id).unwrap(), None);
    assert!(store
        .list(AuthType::UnixPeerCredentials, "alice")
        .is_empty());
    assert!(store.applications().is_empty());
    // Hidden, but the back-end id and the name stay taken until the row is gone.
    assert!(store.key_id_in_use("mbed", &[4]).unwrap());
    store.finish_destroy(&id).unwrap();
    assert!(!store.key_id_in_use("mbed", &[4]).unwrap());
    assert!(store.unfinished("mbed").unwrap().is_empty());
    create(&store, &id, &record(&[5]));
}

#[test]
fn calls_on_a_row_in_the_wrong_state_are_not_found() {
    fn not_found<T: fmt::Debug>(result: Result<T, KeyStoreError>) {
        assert!(matches!(result, Err(KeyStoreError::NotFound)), "{result:?}");
    }
    let store = memory();
    let missing = alice("missing");
    let creating = alice("creating");
    let committed = alice("committed");
    let destroying = alice("destroying");
    store.reserve(&creating, &record(&[1])).unwrap();
    create(&store, &committed, &record(&[2]));
    create(&store, &destroying, &record(&[3]));
    store.begin_destroy(&destroying).unwrap();

    for id in [&missing, &committed, &destroying] {
        not_found(store.commit(id));
        not_found(store.abort(id));
    }
    for id in [&missing, &creating, &destroying] {
        not_found(store.begin_destroy(id));
    }
    for id in [&missing, &creating, &committed] {
        not_found(store.finish_destroy(id));
    }
    not_found(store.forget(&missing));
    // None of that touched the rows.
    assert_eq!(store.get(&committed).unwrap(), Some(record(&[2])));
    assert_eq!(store.unfinished("mbed").unwrap().len(), 2);
}

#[test]
fn forget_deletes_a_row_in_any_state() {
    let store = memory();
    let creating = alice("creating");
    let committed = alice("committed");
    let destroying = alice("destroying");
    store.reserve(&creating, &record(&[1])).unwrap();
    create(&store, &committed, &record(&[2]));
    create(&store, &destroying, &record(&[3]));
    store.begin_destroy(&destroying).unwrap();
    for id in [&creating, &committed, &destroying] {
        store.forget(id).unwrap();
    }
    assert_eq!(store.get(&committed).unwrap(), None);
    assert!(store.list_for_provider("mbed").is_empty());
    assert!(store.unfinished("mbed").unwrap().is_empty());
    for key_id in [1, 2, 3] {
        assert!(!store.key_id_in_use("mbed", &[key_id]).unwrap());
    }
}

#[test]
fn committed_keys_survive_close_and_reopen() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("keys.sqlite3");
    let kept = alice("kept");
    let other = identity(AuthType::Direct, "bob", "pkcs11", "other");
    let destroyed = alice("destroyed");
    {
        let store = KeyStore::open(&path).unwrap();
        create(&store, &kept, &record(&[1]));
        create(&store, &other, &record(&[2]));
        create(&store, &destroyed, &record(&[3]));
        store.begin_destroy(&destroyed).unwrap();
        store.finish_destroy(&destroyed).unwrap();
    }
    let store = KeyStore::open(&path).unwrap();
    assert_eq!(store.get(&kept).unwrap(), Some(record(&[1])));
    assert_eq!(store.get(&other).unwrap(), Some(record(&[2])));
    assert_eq!(store.get(&destroyed).unwrap(), None);
    assert_eq!(
        store.list(AuthType::UnixPeerCredentials, "alice"),
        vec![(kept.clone(), record(&[1]))]
    );
    assert_eq!(store.applications(), ["alice", "bob"]);
    // The reloaded store still enforces uniqueness and accepts new keys.
    assert!(matches!(
        store.reserve(&kept, &record(&[9])),
        Err(KeyStoreError::AlreadyExists)
    ));
    create(&store, &destroyed, &record(&[4]));
    drop(store);
    let store = KeyStore::open(&path).unwrap();
    assert_eq!(store.get(&destroyed).unwrap(), Some(record(&[4])));
}

/// Leaves a creating and a destroying row behind, "crashes" with `end`, and checks what the
/// next start sees.
fn check_recovery_after(end: impl FnOnce(KeyStore)) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("keys.sqlite3");
    let half_created = alice("half created");
    let half_destroyed = alice("half destroyed");
    let committed = alice("committed");
    let elsewhere = identity(AuthType::UnixPeerCredentials, "alice", "tpm", "elsewhere");
    let store = KeyStore::open(&path).unwrap();
    create(&store, &committed, &record(&[1]));
    store.reserve(&half_created, &record(&[2])).unwrap();
    create(&store, &half_destroyed, &record(&[3]));
    store.begin_destroy(&half_destroyed).unwrap();
    store.reserve(&elsewhere, &record(&[4])).unwrap();
    end(store);

    let store = KeyStore::open(&path).unwrap();
    let unfinished = store.unfinished("mbed").unwrap();
    assert_eq!(
        unfinished,
        vec![
            (half_created.clone(), record(&[2]), KeyState::Creating),
            (half_destroyed.clone(), record(&[3]), KeyState::Destroying),
        ]
    );
    assert_eq!(store.get(&half_created).unwrap(), None);
    assert_eq!(store.get(&half_destroyed).unwrap(), None);
    assert_eq!(store.get(&committed).unwrap(), Some(record(&[1])));
    assert_eq!(
        store.list_for_provider("mbed"),
        vec![(committed.clone(), record(&[1]))]
    );
    // The service removes the back-end keys, then forgets the rows; the names are free again.
    for (id, _, _) in &unfinished {
        store.forget(id).unwrap();
    }
    assert!(store.unfinished("mbed").unwrap().is_empty());
    assert_eq!(store.unfinished("tpm").unwrap().len(), 1);
    create(&store, &half_created, &record(&[5]));
    create(&store, &half_destroyed, &record(&[6]));
}

#[test]
fn unfinished_rows_are_reported_after_the_store_is_dropped_mid_protocol() {
    check_recovery_after(drop);
}

#[test]
fn unfinished_rows_are_reported_after_the_process_dies_without_closing() {
    // The connection is never closed, so no checkpoint runs: the rows exist only in the WAL,
    // as after kill -9.
    check_recovery_after(std::mem::forget);
}

/// Set (to a store path) when this test binary is re-run as the writer that
/// `acknowledged_writes_survive_kill_9` kills.
const CRASH_CHILD: &str = "BULWARK_KEYSTORE_CRASH_CHILD";

/// The writer of `acknowledged_writes_survive_kill_9`: commits `k{n}` and prints `ack {n}`,
/// then reserves `p{n}` and never commits it, until it is killed. Does nothing unless run by
/// that test.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_CHILD) else {
        return;
    };
    let store = KeyStore::open(Path::new(&path)).unwrap();
    let mut out = std::io::stdout().lock();
    for n in 0..100_000u32 {
        let key_id = n.to_be_bytes();
        create(&store, &alice(&format!("k{n}")), &record(&key_id));
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
        store
            .reserve(&alice(&format!("p{n}")), &record(&[0xff, 0, 0, 0]))
            .unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    const ACKS_BEFORE_KILL: usize = 50;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("keys.sqlite3");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "keystore::tests::crash_child", "--nocapture"])
        .env(CRASH_CHILD, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < ACKS_BEFORE_KILL {
        let line = lines.next().expect("the writer stopped early").unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked.push(n.parse::<u32>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acknowledgements already in the pipe count too.
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix("ack ") {
            acked.push(n.parse::<u32>().unwrap());
        }
    }

    let store = KeyStore::open(&path).unwrap();
    for n in &acked {
        assert_eq!(
            store.get(&alice(&format!("k{n}"))).unwrap(),
            Some(record(&n.to_be_bytes())),
            "acknowledged key k{n} was lost"
        );
    }
    let unfinished = store.unfinished("mbed").unwrap();
    assert!(unfinished.len() >= acked.len() - 1, "{}", unfinished.len());
    for (id, _, state) in &unfinished {
        assert_eq!(*state, KeyState::Creating);
        assert_eq!(store.get(id).unwrap(), None, "{id:?} is visible");
    }
}

#[test]
fn open_creates_directories_0700_and_a_file_0600() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("a").join("b").join("keys.sqlite3");
    let store = KeyStore::open(&path).unwrap();
    create(&store, &alice("k"), &record(&[1]));
    assert_eq!(mode(&directory.path().join("a")), 0o700);
    assert_eq!(mode(&directory.path().join("a").join("b")), 0o700);
    assert_eq!(mode(&path), 0o600);
    // SQLite gives its side files the database's mode.
    let wal = directory
        .path()
        .join("a")
        .join("b")
        .join("keys.sqlite3-wal");
    assert_eq!(mode(&wal), 0o600);
}

#[test]
fn open_sets_wal_and_full_synchronous() {
    let directory = tempfile::tempdir().unwrap();
    let store = KeyStore::open(&directory.path().join("keys.sqlite3")).unwrap();
    let connection = store.connection();
    let journal: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    let synchronous: i64 = connection
        .query_row("PRAGMA synchronous", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    assert_eq!(synchronous, 2, "FULL");
}

#[test]
fn open_refuses_a_file_that_others_can_write() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("keys.sqlite3");
    drop(KeyStore::open(&path).unwrap());
    for unsafe_mode in [0o666, 0o620, 0o602] {
        fs::set_permissions(&path, fs::Permissions::from_mode(unsafe_mode)).unwrap();
        match KeyStore::open(&path) {
            Err(KeyStoreError::Permissions(message)) => {
                assert!(message.contains(path.to_str().unwrap()), "{message}");
            }
            other => panic!("mode {unsafe_mode:o}: {other:?}"),
        }
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    KeyStore::open(&path).unwrap();
}

#[test]
fn open_refuses_a_directory_that_others_can_write() {
    let directory = tempfile::tempdir().unwrap();
    fs::set_permissions(directory.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let path = directory.path().join("keys.sqlite3");
    match KeyStore::open(&path) {
        Err(KeyStoreError::Permissions(message)) => {
            assert!(
                message.contains(directory.path().to_str().unwrap()),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!path.exists(), "nothing is created in an unsafe directory");
}

#[test]
fn open_refuses_a_planted_writable_wal() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("keys.sqlite3");
    let wal = directory.path().join("keys.sqlite3-wal");
    fs::write(&wal, b"").unwrap();
    fs::set_permissions(&wal, fs::Permissions::from_mode(0o666)).unwrap();
    assert!(matches!(
        KeyStore::open(&path),
        Err(KeyStoreError::Permissions(_))
    ));
}

#[test]
fn applications_are_sorted_and_deduplicated() {
    let store = memory();
    let keys = [
        identity(AuthType::UnixPeerCredentials, "zoe", "mbed", "a"),
        identity(AuthType::UnixPeerCredentials, "alice", "mbed", "a"),
        identity(AuthType::UnixPeerCredentials, "alice", "mbed", "b"),
        identity(AuthType::Direct, "alice", "pkcs11", "a"),
        identity(AuthType::Direct, "Bob", "mbed", "a"),
        identity(AuthType::JwtSvid, "mallory", "mbed", "a"),
    ];
    for (index, id) in keys.iter().enumerate() {
        create(&store, id, &record(&[index as u8]));
    }
    // Only committed keys count.
    store
        .reserve(
            &identity(AuthType::Direct, "carol", "mbed", "a"),
            &record(&[100]),
        )
        .unwrap();
    store.begin_destroy(&keys[5]).unwrap();
    assert_eq!(store.applications(), ["Bob", "alice", "zoe"]);
}

#[test]
fn lists_are_scoped_and_ordered() {
    let store = memory();
    let ids = [
        identity(AuthType::UnixPeerCredentials, "alice", "tpm", "a"),
        identity(AuthType::UnixPeerCredentials, "alice", "mbed", "b"),
        identity(AuthType::UnixPeerCredentials, "alice", "mbed", "a"),
        identity(AuthType::Direct, "alice", "mbed", "c"),
        identity(AuthType::UnixPeerCredentials, "bob", "mbed", "d"),
    ];
    for (index, id) in ids.iter().enumerate() {
        create(&store, id, &record(&[index as u8]));
    }
    store
        .reserve(
            &identity(AuthType::UnixPeerCredentials, "alice", "mbed", "pending"),
            &record(&[9]),
        )
        .unwrap();
    let names = |keys: Vec<(KeyIdentity, KeyRecord)>| -> Vec<KeyIdentity> {
        keys.into_iter().map(|(id, _)| id).collect()
    };
    assert_eq!(
        names(store.list(AuthType::UnixPeerCredentials, "alice")),
        [ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    assert_eq!(
        names(store.list(AuthType::Direct, "alice")),
        [ids[3].clone()]
    );
    assert!(store.list(AuthType::Direct, "bob").is_empty());
    assert_eq!(
        names(store.list_for_provider("mbed")),
        [
            ids[3].clone(),
            ids[2].clone(),
            ids[1].clone(),
            ids[4].clone()
        ]
    );
}

#[test]
fn key_id_in_use_is_per_provider() {
    let store = memory();
    create(&store, &alice("k"), &record(&[0, 0, 0, 7]));
    assert!(store.key_id_in_use("mbed", &[0, 0, 0, 7]).unwrap());
    assert!(!store.key_id_in_use("mbed", &[0, 0, 7]).unwrap());
    assert!(!store.key_id_in_use("pkcs11", &[0, 0, 0, 7]).unwrap());
}

#[test]
fn concurrent_writers_of_distinct_keys_all_land() {
    const THREADS: usize = 8;
    const KEYS: usize = 40;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("keys.sqlite3");
    let store = Arc::new(KeyStore::open(&path).unwrap());
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for key in 0..KEYS {
                    let id = alice(&format!("{thread}/{key}"));
                    let key_id = [thread as u8, key as u8];
                    store.reserve(&id, &record(&key_id)).unwrap();
                    // Readers run alongside the writers.
                    assert_eq!(store.get(&id).unwrap(), None);
                    store.commit(&id).unwrap();
                    assert_eq!(store.get(&id).unwrap(), Some(record(&key_id)));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(store.list_for_provider("mbed").len(), THREADS * KEYS);
    drop(store);
    let store = KeyStore::open(&path).unwrap();
    assert_eq!(
        store.list(AuthType::UnixPeerCredentials, "alice").len(),
        THREADS * KEYS
    );
    for thread in 0..THREADS {
        for key in 0..KEYS {
            assert_eq!(
                store.get(&alice(&format!("{thread}/{key}"))).unwrap(),
                Some(record(&[thread as u8, key as u8]))
            );
        }
    }
}

#[test]
fn concurrent_reservations_of_one_identity_admit_exactly_one() {
    let store = Arc::new(memory());
    let winners: usize = (0..8u8)
        .map(|thread| {
            let store = Arc::clone(&store);
            thread::spawn(move || store.reserve(&alice("contested"), &record(&[thread])))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|worker| match worker.join().unwrap() {
            Ok(()) => 1,
            Err(KeyStoreError::AlreadyExists) => 0,
            Err(other) => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(winners, 1);
}

#[test]
fn a_full_database_is_reported_as_full() {
    let store = memory();
    create(&store, &alice("first"), &record(&[1]));
    {
        let connection = store.connection();
        let pages: i64 = connection
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        connection
            .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
            .unwrap();
    }
    let result = store.reserve(&alice("too big"), &record(&[0x55; 64 * 1024]));
    assert!(matches!(result, Err(KeyStoreError::Full)), "{result:?}");
    assert!(store.unfinished("mbed").unwrap().is_empty());
}

#[test]
fn a_read_only_database_is_reported_as_read_only() {
    let store = memory();
    create(&store, &alice("k"), &record(&[1]));
    store
        .connection()
        .execute_batch("PRAGMA query_only = ON")
        .unwrap();
    let result = store.reserve(&alice("new"), &record(&[2]));
    assert!(matches!(result, Err(KeyStoreError::ReadOnly)), "{result:?}");
    let result = store.begin_destroy(&alice("k"));
    assert!(matches!(result, Err(KeyStoreError::ReadOnly)), "{result:?}");
    // A failed write leaves the cache as it was.
    assert_eq!(store.get(&alice("k")).unwrap(), Some(record(&[1])));
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("keys.sqlite3");
    drop(KeyStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE metadata SET int_value = 2 WHERE name = 'schema_version'")
        .unwrap();
    assert!(matches!(
        KeyStore::open(&path),
        Err(KeyStoreError::UnsupportedSchema(2))
    ));
}

/// Stores one committed key, applies `change` to its row behind the store's back and reopens.
fn reopen_after(change: &str) -> (tempfile::TempDir, Result<KeyStore, KeyStoreError>) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("keys.sqlite3");
    {
        let store = KeyStore::open(&path).unwrap();
        create(&store, &alice("k"), &record(&[1]));
    }
    Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("UPDATE key_info SET {change}"))
        .unwrap();
    let result = KeyStore::open(&path);
    (directory, result)
}

#[test]
fn an_undecodable_committed_row_fails_the_open() {
    for (change, column) in [
        ("attributes = x'ff'", "attributes"),
        ("provider_id = 6", "provider_id"),
        ("authenticator = 300", "authenticator"),
    ] {
        let (_directory, result) = reopen_after(change);
        assert!(
            matches!(result, Err(KeyStoreError::Corrupt(found)) if found == column),
            "{change}: {result:?}"
        );
    }
}

#[test]
fn a_row_in_an_unknown_state_is_corrupt_for_unfinished() {
    // Not committed, so not loaded at open: `unfinished` is where it shows up.
    let (_directory, result) = reopen_after("state = 7");
    let store = result.unwrap();
    assert_eq!(store.get(&alice("k")).unwrap(), None);
    assert!(matches!(
        store.unfinished("mbed"),
        Err(KeyStoreError::Corrupt("state"))
    ));
}

#[test]
fn record_debug_hides_the_key_id() {
    let text = format!("{:?}", record(&[0xde, 0xad, 0xbe, 0xef]));
    assert!(text.contains("<4 bytes>"), "{text}");
    assert!(!text.contains("222"), "{text}");
}

fn batch(writes: Vec<group::Write>) -> Vec<(u64, group::Write)> {
    (0..).zip(writes).collect()
}

fn outcome_names(outcomes: &[(u64, Result<Done, KeyStoreError>)]) -> Vec<String> {
    outcomes
        .iter()
        .map(|(_, outcome)| match outcome {
            Ok(Done::Unit) => "unit".to_owned(),
            Ok(Done::Record(_)) => "record".to_owned(),
            Err(error) => format!("{error:?}"),
        })
        .collect()
}

#[test]
fn a_batch_keeps_each_writes_own_failure_to_itself() {
    let store = memory();
    create(&store, &alice("old"), &record(&[9]));
    let writes = vec![
        group::Write::Insert {
            identity: alice("new"),
            record: record(&[1]),
            quota: None,
        },
        // Taken by the write just before it, in the same transaction.
        group::Write::Insert {
            identity: alice("new"),
            record: record(&[2]),
            quota: None,
        },
        group::Write::Transition {
            identity: alice("missing"),
            from: KeyState::Creating,
            to: KeyState::Committed,
        },
        group::Write::Transition {
            identity: alice("new"),
            from: KeyState::Creating,
            to: KeyState::Committed,
        },
        group::Write::Transition {
            identity: alice("old"),
            from: KeyState::Committed,
            to: KeyState::Destroying,
        },
    ];
    let outcomes = {
        let mut connection = store.connection();
        group::run_batch(&mut connection, &store.cache, batch(writes))
    };
    assert_eq!(
        outcome_names(&outcomes),
        ["unit", "AlreadyExists", "NotFound", "record", "record"]
    );
    assert_eq!(
        outcomes.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    // The cache follows the committed writes, in order.
    assert_eq!(store.get(&alice("new")).unwrap(), Some(record(&[1])));
    assert_eq!(store.get(&alice("old")).unwrap(), None);
    let unfinished = store.unfinished("mbed").unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].0, alice("old"));
    assert_eq!(unfinished[0].2, KeyState::Destroying);
}

#[test]
fn a_storage_failure_in_a_batch_gives_every_write_its_own_result() {
    let store = memory();
    create(&store, &alice("first"), &record(&[1]));
    {
        let connection = store.connection();
        let pages: i64 = connection
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        connection
            .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
            .unwrap();
    }
    let writes = vec![
        group::Write::Insert {
            identity: alice("small"),
            record: record(&[2]),
            quota: None,
        },
        group::Write::Insert {
            identity: alice("too big"),
            record: record(&[0x55; 64 * 1024]),
            quota: None,
        },
        group::Write::Transition {
            identity: alice("first"),
            from: KeyState::Committed,
            to: KeyState::Destroying,
        },
    ];
    let outcomes = {
        let mut connection = store.connection();
        group::run_batch(&mut connection, &store.cache, batch(writes))
    };
    // Run again alone, the writes that fit succeed and only the big one is refused.
    assert_eq!(outcome_names(&outcomes), ["unit", "Full", "record"]);
    let unfinished = store.unfinished("mbed").unwrap();
    let names: Vec<_> = unfinished
        .iter()
        .map(|(i, _, s)| (i.key_name.as_str(), *s))
        .collect();
    assert_eq!(
        names,
        [
            ("first", KeyState::Destroying),
            ("small", KeyState::Creating)
        ]
    );
    assert_eq!(store.get(&alice("first")).unwrap(), None);
}

#[test]
fn unsynced_deletes_leave_the_connection_synchronous_full() {
    let directory = tempfile::tempdir().unwrap();
    let store = KeyStore::open(&directory.path().join("keys.sqlite3")).unwrap();
    let synchronous = |store: &KeyStore| -> i64 {
        store
            .connection()
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap()
    };
    store.reserve(&alice("a"), &record(&[1])).unwrap();
    store.abort(&alice("a")).unwrap();
    assert_eq!(synchronous(&store), 2, "FULL after abort");
    create(&store, &alice("b"), &record(&[2]));
    store.begin_destroy(&alice("b")).unwrap();
    store.finish_destroy(&alice("b")).unwrap();
    assert_eq!(synchronous(&store), 2, "FULL after finish_destroy");
    drop(store);
    let store = KeyStore::open(&directory.path().join("keys.sqlite3")).unwrap();
    assert!(store.unfinished("mbed").unwrap().is_empty());
    assert_eq!(store.get(&alice("b")).unwrap(), None);
}

#[test]
fn an_owner_gets_no_more_keys_than_its_quota_in_any_state_and_provider() {
    let store = memory();
    create(&store, &alice("a"), &record(&[1]));
    // A reservation counts too: a creation in progress holds its place.
    store.reserve_within(&alice("b"), &record(&[2]), 3).unwrap();
    let elsewhere = identity(AuthType::UnixPeerCredentials, "alice", "tpm", "c");
    store.reserve_within(&elsewhere, &record(&[3]), 3).unwrap();
    assert!(matches!(
        store.reserve_within(&alice("d"), &record(&[4]), 3),
        Err(KeyStoreError::QuotaExceeded)
    ));
    // An existing name is still reported as such.
    assert!(matches!(
        store.reserve_within(&alice("a"), &record(&[5]), 3),
        Err(KeyStoreError::AlreadyExists)
    ));
    // Other owners, also the same name under another authenticator, have their own quota.
    let bob = identity(AuthType::UnixPeerCredentials, "bob", "mbed", "d");
    store.reserve_within(&bob, &record(&[6]), 3).unwrap();
    let direct = identity(AuthType::Direct, "alice", "mbed", "d");
    store.reserve_within(&direct, &record(&[7]), 3).unwrap();
    // Room comes back when a key goes.
    store.abort(&alice("b")).unwrap();
    store.reserve_within(&alice("d"), &record(&[4]), 3).unwrap();
}

#[test]
fn concurrent_reservations_of_one_owner_do_not_overshoot_the_quota() {
    let store = Arc::new(memory());
    let threads: Vec<_> = (0..16u8)
        .map(|n| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                store
                    .reserve_within(&alice(&format!("k{n}")), &record(&[n]), 5)
                    .is_ok()
            })
        })
        .collect();
    let granted = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(granted, 5);
}

fn upstream_import(name: &str, upstream_key_id: u32) -> Import {
    let identity = alice(name);
    Import {
        record: record(&upstream_key_id.to_le_bytes()),
        marker: ImportMarker {
            authenticator: identity.authenticator,
            application: identity.application.clone(),
            provider_id: ProviderId::MbedCrypto,
            key_name: name.to_owned(),
            upstream_key_id: upstream_key_id.to_le_bytes().to_vec(),
        },
        identity,
    }
}

#[test]
fn upstream_mappings_are_imported_once_even_after_the_key_is_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.sqlite3");
    let store = KeyStore::open(&path).unwrap();
    let imports = [upstream_import("a", 2), upstream_import("b", 3)];
    assert_eq!(
        store.import(&imports).unwrap(),
        [ImportOutcome::Imported, ImportOutcome::Imported]
    );
    assert_eq!(
        store.get(&alice("a")).unwrap(),
        Some(imports[0].record.clone())
    );
    assert_eq!(
        store.import(&imports).unwrap(),
        [
            ImportOutcome::AlreadyImported,
            ImportOutcome::AlreadyImported
        ]
    );

    // Destroyed in Bulwark: the next start does not bring it back.
    store.begin_destroy(&alice("a")).unwrap();
    store.finish_destroy(&alice("a")).unwrap();
    drop(store);
    let store = KeyStore::open(&path).unwrap();
    assert!(store.imported(&imports[0].marker).unwrap());
    assert_eq!(
        store.import(&imports).unwrap(),
        [
            ImportOutcome::AlreadyImported,
            ImportOutcome::AlreadyImported
        ]
    );
    assert_eq!(store.get(&alice("a")).unwrap(), None);
    assert_eq!(store.list(AuthType::UnixPeerCredentials, "alice").len(), 1);

    // A key upstream made again under that name is a new key; a name Bulwark uses is kept.
    create(&store, &alice("c"), &record(&[9, 9, 9, 9]));
    assert_eq!(
        store
            .import(&[upstream_import("a", 7), upstream_import("c", 4)])
            .unwrap(),
        [ImportOutcome::Imported, ImportOutcome::NameTaken]
    );
    assert_eq!(store.get(&alice("c")).unwrap(), Some(record(&[9, 9, 9, 9])));
    assert!(!store.imported(&upstream_import("c", 4).marker).unwrap());
}

#[test]
fn forget_committed_leaves_rows_in_flight_alone() {
    let store = memory();
    create(&store, &alice("k"), &record(&[1, 0, 0, 0]));
    store.begin_destroy(&alice("k")).unwrap();
    assert!(matches!(
        store.forget_committed(&alice("k")),
        Err(KeyStoreError::NotFound)
    ));
    store.finish_destroy(&alice("k")).unwrap();
    create(&store, &alice("k"), &record(&[1, 0, 0, 0]));
    store.forget_committed(&alice("k")).unwrap();
    assert_eq!(store.get(&alice("k")).unwrap(), None);
}
