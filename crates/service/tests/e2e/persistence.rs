//! Keys outlive the daemon: across a clean restart, and across `kill -9` in the middle of key
//! generation (no acknowledged key lost, no unacknowledged key visible except the one in flight,
//! no orphaned Mbed TLS key file; with the OpenSSL provider, no key file at all and a private
//! KEK file).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parsec_client::core::interface::operations::psa_algorithm::{AsymmetricSignature, Hash};
use parsec_client::core::interface::operations::psa_key_attributes::{
    Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
};
use parsec_client::BasicClient;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::harness::{provider, Auth, Daemon, Provider};

fn ecdsa_p256() -> AsymmetricSignature {
    AsymmetricSignature::Ecdsa {
        hash_alg: Hash::Sha256.into(),
    }
}

fn rsa_pkcs1v15_sha256() -> AsymmetricSignature {
    AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    }
}

fn signing_attributes(key_type: Type, bits: usize, alg: AsymmetricSignature) -> Attributes {
    let mut usage_flags = UsageFlags::default();
    let _ = usage_flags.set_sign_hash().set_verify_hash();
    Attributes {
        lifetime: Lifetime::Persistent,
        key_type,
        bits,
        policy: Policy {
            usage_flags,
            permitted_algorithms: alg.into(),
        },
    }
}

fn p256_attributes() -> Attributes {
    signing_attributes(
        Type::EccKeyPair {
            curve_family: EccFamily::SecpR1,
        },
        256,
        ecdsa_p256(),
    )
}

fn rsa_attributes() -> Attributes {
    signing_attributes(Type::RsaKeyPair, 2048, rsa_pkcs1v15_sha256())
}

fn digest(message: &[u8]) -> Vec<u8> {
    Sha256::digest(message).to_vec()
}

/// Checks an ECDSA P-256 signature (r ‖ s) of `hash` against an uncompressed public point.
fn verify_p256(public: &[u8], hash: &[u8], signature: &[u8]) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public).expect("P-256 public key");
    let sig = p256::ecdsa::Signature::from_slice(signature).expect("r || s signature");
    key.verify_prehash(hash, &sig)
        .expect("ECDSA signature verifies");
}

/// Checks an RSA PKCS#1 v1.5 SHA-256 signature against a DER `RSAPublicKey`.
fn verify_rsa(public: &[u8], hash: &[u8], signature: &[u8]) {
    use rsa::pkcs1::DecodeRsaPublicKey;
    let key = rsa::RsaPublicKey::from_pkcs1_der(public).expect("RSAPublicKey DER");
    key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), hash, signature)
        .expect("RSA signature verifies");
}

/// The keys `client` lists, as (name, provider, attributes), sorted by name.
fn listed(client: &BasicClient) -> Vec<(String, String, Attributes)> {
    let mut keys: Vec<_> = client
        .list_keys()
        .expect("ListKeys")
        .into_iter()
        .map(|k| (k.name, k.provider_id.to_string(), k.attributes))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys
}

/// The Mbed TLS persistent-key files in `dir`: Mbed TLS's ITS implementation stores key id
/// `n` as `<16 hex digits of n>.psa_its` in its working directory (and uses `tempfile.psa_its`
/// only during a write).
fn key_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name.strip_suffix(".psa_its")
                .is_some_and(|stem| stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .collect();
    files.sort();
    files
}

/// Checks what the provider keeps next to the key store for `keys` keys: Mbed Crypto one key
/// file per key; the OpenSSL provider no key file (keys live wrapped in the store) and its KEK
/// file, mode 0600.
fn check_backend_files(daemon: &Daemon, keys: usize, context: &str) {
    let files = key_files(daemon.dir());
    match provider() {
        Provider::MbedCrypto => assert_eq!(
            files.len(),
            keys,
            "{context}: {} Mbed key files for {keys} keys (orphans or missing files): \
             {files:?}\n{}",
            files.len(),
            daemon.log()
        ),
        Provider::OpenSsl => {
            use std::os::unix::fs::PermissionsExt;
            assert!(
                files.is_empty(),
                "{context}: the OpenSSL provider writes no key file, found {files:?}"
            );
            let mode = std::fs::metadata(daemon.kek_path())
                .expect("the KEK file exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o600, "{context}: KEK file mode");
        }
    }
}

#[test]
fn keys_survive_a_restart() {
    let mut daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("persistence-app");
    let hash = digest(b"persistence across restarts");

    client
        .psa_generate_key("restart-p256", p256_attributes())
        .expect("generate P-256");
    client
        .psa_generate_key("restart-rsa", rsa_attributes())
        .expect("generate RSA 2048");
    let ecc_public = client
        .psa_export_public_key("restart-p256")
        .expect("export P-256");
    let rsa_public = client
        .psa_export_public_key("restart-rsa")
        .expect("export RSA");
    let sig = client
        .psa_sign_hash("restart-p256", &hash, ecdsa_p256())
        .expect("sign P-256");
    verify_p256(&ecc_public, &hash, &sig);
    let sig = client
        .psa_sign_hash("restart-rsa", &hash, rsa_pkcs1v15_sha256())
        .expect("sign RSA");
    verify_rsa(&rsa_public, &hash, &sig);
    let before = listed(&client);
    assert_eq!(
        before.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(),
        ["restart-p256", "restart-rsa"]
    );
    check_backend_files(&daemon, 2, "after generation");

    daemon.restart();
    let client = daemon.parsec_client("persistence-app");

    let after = listed(&client);
    assert_eq!(
        after, before,
        "the same keys, with the same attributes, after a restart"
    );
    assert_eq!(
        client
            .psa_export_public_key("restart-p256")
            .expect("export P-256 after restart"),
        ecc_public
    );
    assert_eq!(
        client
            .psa_export_public_key("restart-rsa")
            .expect("export RSA after restart"),
        rsa_public
    );
    let hash = digest(b"after the restart");
    let sig = client
        .psa_sign_hash("restart-p256", &hash, ecdsa_p256())
        .expect("sign P-256 after restart");
    verify_p256(&ecc_public, &hash, &sig);
    let sig = client
        .psa_sign_hash("restart-rsa", &hash, rsa_pkcs1v15_sha256())
        .expect("sign RSA after restart");
    verify_rsa(&rsa_public, &hash, &sig);

    // Another application sees none of them.
    assert!(listed(&daemon.parsec_client("someone-else")).is_empty());

    client
        .psa_destroy_key("restart-p256")
        .expect("destroy P-256");
    client.psa_destroy_key("restart-rsa").expect("destroy RSA");
    assert!(listed(&client).is_empty());
    check_backend_files(&daemon, 0, "after destroy");
}

/// What the generating thread saw in one round.
#[derive(Debug, Default)]
struct Generation {
    /// Names whose PsaGenerateKey returned Ok, in order.
    acknowledged: Vec<String>,
    /// The name being generated when a call failed, with when it failed and why.
    failed: Option<(String, Instant, String)>,
}

/// Kill/restart rounds of the crash test; `BULWARK_CRASH_ROUNDS` runs a longer campaign.
fn crash_rounds() -> usize {
    std::env::var("BULWARK_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}
const CRASH_APP: &str = "crash-app";

#[test]
fn kill9_during_key_generation_loses_and_leaks_nothing() {
    let started = Instant::now();
    let mut daemon = Daemon::start(Auth::direct());
    let mut rng = rand::thread_rng();
    let (mut total_acknowledged, mut total_in_flight_found, mut total_in_flight_absent) = (0, 0, 0);
    let mut summary = Vec::new();

    let rounds = crash_rounds();
    for round in 0..rounds {
        // The daemon is up (started above, or restarted at the end of the previous round).
        let client = daemon.parsec_client(CRASH_APP);
        let generation = Arc::new(Mutex::new(Generation::default()));
        let worker = {
            let generation = Arc::clone(&generation);
            std::thread::spawn(move || {
                for i in 0.. {
                    let name = format!("crash-r{round:02}-k{i:04}");
                    match client.psa_generate_key(&name, p256_attributes()) {
                        Ok(()) => generation.lock().unwrap().acknowledged.push(name),
                        Err(e) => {
                            generation.lock().unwrap().failed =
                                Some((name, Instant::now(), format!("{e:?}")));
                            return;
                        }
                    }
                }
            })
        };
        let delay = Duration::from_millis(rng.gen_range(0..=300));
        std::thread::sleep(delay);
        let killed_at = Instant::now();
        daemon.kill9();
        worker.join().expect("generating thread");
        let generation = std::mem::take(&mut *generation.lock().unwrap());
        let (in_flight, failed_at, error) = generation
            .failed
            .clone()
            .expect("generation stops only on an error");
        assert!(
            failed_at >= killed_at,
            "round {round}: PsaGenerateKey({in_flight}) failed while the daemon was alive: \
             {error}\n{}",
            daemon.log()
        );

        daemon.spawn();
        let client = daemon.parsec_client(CRASH_APP);
        let listed: BTreeSet<String> = listed(&client).into_iter().map(|k| k.0).collect();
        let acknowledged: BTreeSet<String> = generation.acknowledged.iter().cloned().collect();
        let lost: Vec<&String> = acknowledged.difference(&listed).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged keys lost by the crash: {lost:?}\n{}",
            daemon.log()
        );
        let unacknowledged: Vec<&String> = listed.difference(&acknowledged).collect();
        assert!(
            unacknowledged.is_empty() || unacknowledged == [&in_flight],
            "round {round}: unacknowledged keys listed {unacknowledged:?} (only {in_flight:?}, \
             in flight at the kill, may be)\n{}",
            daemon.log()
        );
        let in_flight_found = !unacknowledged.is_empty();
        check_backend_files(&daemon, listed.len(), &format!("round {round}"));

        let hash = digest(format!("round {round}").as_bytes());
        for name in &listed {
            let public = client
                .psa_export_public_key(name)
                .unwrap_or_else(|e| panic!("round {round}: export {name}: {e:?}"));
            let sig = client
                .psa_sign_hash(name, &hash, ecdsa_p256())
                .unwrap_or_else(|e| panic!("round {round}: sign with {name}: {e:?}"));
            verify_p256(&public, &hash, &sig);
        }
        for name in &listed {
            client
                .psa_destroy_key(name)
                .unwrap_or_else(|e| panic!("round {round}: destroy {name}: {e:?}"));
        }
        assert!(
            listed_names(&client).is_empty(),
            "round {round}: keys left after destroy"
        );
        check_backend_files(&daemon, 0, &format!("round {round}, after destroy"));

        total_acknowledged += acknowledged.len();
        if in_flight_found {
            total_in_flight_found += 1;
        } else {
            total_in_flight_absent += 1;
        }
        summary.push(format!(
            "round {round:2}: kill after {:3} ms, {:3} acknowledged, in-flight {in_flight} {}",
            delay.as_millis(),
            acknowledged.len(),
            if in_flight_found {
                "committed (listed)"
            } else {
                "not listed"
            }
        ));
    }
    println!(
        "crash test: {rounds} rounds in {:.1} s, {total_acknowledged} keys acknowledged \
         and all recovered, in-flight key listed after the kill in {total_in_flight_found} \
         rounds (absent in {total_in_flight_absent}), 0 orphan key files\n{}",
        started.elapsed().as_secs_f64(),
        summary.join("\n")
    );
}

fn listed_names(client: &BasicClient) -> Vec<String> {
    listed(client).into_iter().map(|k| k.0).collect()
}
