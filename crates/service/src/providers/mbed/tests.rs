//! Tests of the Mbed Crypto provider, through its registry: the shared conformance
//! suite, then what only this provider does (keys in Mbed TLS key files, its identity).
//!
//! Mbed TLS writes persistent keys into the working directory, so the test process moves once
//! to a temporary directory before any provider is made.

use std::sync::{Arc, OnceLock};

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::{Family, Opcode};
use bulwark_interface::status::ResponseStatus;
use psa_crypto::types::algorithm::Hash;

use super::MbedProvider;
use crate::keystore::KeyStore;
use crate::providers::conformance::{
    self, attrs, ecdsa, secp_r1_pair, sign_verify, status, Expectations, Keep, Load, Subject,
    Support,
};
use crate::providers::Provider;

type Fixture = conformance::Fixture<MbedProvider>;

/// Moves the process to a fresh temporary directory, once, and keeps it alive. Every test that
/// makes an Mbed provider calls it first (the OpenSSL provider's comparison with this one too).
pub(crate) fn enter_temporary_directory() {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::env::set_current_dir(dir.path()).expect("enter the temporary directory");
        dir
    });
}

fn provider() -> Arc<MbedProvider> {
    enter_temporary_directory();
    Arc::new(MbedProvider::new("mbed-crypto-provider".to_owned()).expect("Mbed TLS starts"))
}

/// A key id is a PSA key id in the user range, as 4 bytes.
fn psa_user_key_id(key_id: &[u8]) {
    let raw_id = super::psa_key_id(key_id).expect("4-byte id");
    assert!((1..=0x3FFF_FFFF).contains(&raw_id));
}

impl Subject for MbedProvider {
    const EXPECTED: Expectations = Expectations {
        family: Family::Mbed,
        key_id: psa_user_key_id,
        rsa_bits: &[1024, 2048, 4096],
        refused_size: ResponseStatus::PsaErrorInvalidArgument,
        p384: Support::Yes,
        rsa_pss: Support::Yes,
        oaep_sha256: Support::Yes,
        oaep_label: Support::Yes,
        private_key_import: Support::Yes,
        aes_keys: Support::Yes,
        dh_keys: true,
        can_do_bare_hmac_keys: false,
        deterministic_ecdsa: true,
        cbc_mac: true,
        load: Load {
            keys: 40,
            rounds: 80,
        },
    };

    fn make(_store: &KeyStore) -> (Arc<Self>, Keep) {
        (provider(), Box::new(()))
    }
}

conformance::conformance_tests!(MbedProvider);

// ---------------------------------------------------------------------------------------------
// Key files
// ---------------------------------------------------------------------------------------------

#[test]
fn discard_removes_the_backing_key_and_tolerates_absence() {
    let f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let key_id = f.record("ecc").key_id;
    f.provider.discard(&key_id).expect("discarded");
    f.provider.discard(&key_id).expect("absent is fine");
    // The store still names the key, but Mbed TLS no longer has it.
    assert_eq!(
        status(f.try_sign("ecc", alg, &[0; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    f.destroy("ecc").expect("a key already gone is destroyed");
}

// ---------------------------------------------------------------------------------------------
// Provider identity and registration
// ---------------------------------------------------------------------------------------------

#[test]
fn info_and_registered_operations() {
    let provider = provider();
    let info = provider.info();
    assert_eq!(
        info.uuid.to_string(),
        "1c1139dc-ad7c-47dc-ad6b-db6fdb466552"
    );
    assert_eq!(
        (info.vendor.as_str(), info.id),
        ("Arm", ProviderId::MbedCrypto)
    );
    assert_eq!(
        (info.version_maj, info.version_min, info.version_rev),
        (0, 1, 0)
    );
    assert_eq!(provider.name(), "mbed-crypto-provider");
    let f = Fixture::new();
    // What the table says the family serves (the spec's set is checked against the table in
    // the interface crate).
    assert_eq!(
        f.registered(),
        Opcode::ALL
            .iter()
            .copied()
            .filter(|o| o.is_served_by(Family::Mbed))
            .collect()
    );
}

// ---------------------------------------------------------------------------------------------
// Serialisation
// ---------------------------------------------------------------------------------------------

/// The name of the thread a call into Mbed TLS ran on.
fn calling_thread(provider: &MbedProvider) -> Option<String> {
    provider.psa(crate::fair::Client::default(), |_| {
        std::thread::current().name().map(str::to_owned)
    })
}

#[test]
fn a_call_runs_in_place_when_the_lock_is_free_and_queues_behind_it_otherwise() {
    let provider = provider();
    // No other test of this process keeps the lock longer than one call: wait for a free lock
    // on the caller's own thread.
    let here = std::thread::current().name().map(str::to_owned);
    let mut ran_here = false;
    for _ in 0..1000 {
        if calling_thread(&provider) == here {
            ran_here = true;
            break;
        }
    }
    assert!(
        ran_here,
        "a call made with the lock free runs on the caller's thread"
    );

    let held = super::PSA_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (sent, started) = std::sync::mpsc::channel();
    let waiting = {
        let provider = Arc::clone(&provider);
        std::thread::spawn(move || {
            sent.send(()).expect("send");
            calling_thread(&provider)
        })
    };
    started.recv().expect("the caller started");
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        !waiting.is_finished(),
        "no call runs while the lock is held"
    );
    drop(held);
    assert_eq!(
        waiting.join().expect("the queued call returns").as_deref(),
        Some("bulwark-mbedtls"),
        "a call that found the lock taken ran on the Mbed TLS thread"
    );
}
