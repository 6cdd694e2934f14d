//! The provider conformance suite: one set of behaviours, written once, run against every crypto
//! provider by [`conformance_tests!`].
//!
//! Each behaviour is a function generic over the provider under test ([`Subject`]). It calls the
//! provider as a client does: the request is encoded, dispatched through a [`Registry`] built
//! from the provider's own `register`, and the response decoded. So an operation the provider
//! does not register answers exactly what a client gets, `PsaErrorNotSupported`.
//!
//! What a provider serves is stated, not discovered: its [`Expectations`] list the opcodes it
//! must advertise (checked exactly by `advertises_exactly_the_expected_operations`) and, for each
//! capability where providers differ, either [`Support::Yes`] or the exact status of the
//! refusal ([`Support::No`]). A behaviour on something the provider does not serve asserts that
//! refusal; nothing is skipped. Each behaviour returns an [`Outcome`] and its test prints one line:
//!
//! ```text
//! conformance MbedProvider ecdsa_p256_signs_and_verifies: passed
//! conformance SomeProvider aes_gcm_round_trip_and_tag_failure: not supported (AEAD operations)
//! conformance SomeProvider public_keys_export_in_psa_format: partial (not supported: P-384 keys)
//! ```
//!
//! "partial" means the behaviour passed in full for what the provider serves and asserted the
//! stated refusals for the rest. Counts per provider:
//!
//! ```text
//! cargo test -p bulwark-service --lib conformance -- --nocapture 2>&1 \
//!   | grep -oE 'conformance [A-Za-z0-9]+ [a-z0-9_]+: (passed|partial|not supported)' \
//!   | cut -d' ' -f2,4- | sort | uniq -c
//! ```
//!
//! A failing behaviour fails its test as usual (the counts only cover behaviours that passed).
//!
//! # Plugging in a provider
//!
//! In the provider's `tests` module: `impl Subject for TheProvider` with its `EXPECTED` table and
//! `make` (a fresh provider on the given key store, plus anything to keep alive while it is
//! used, such as a temporary directory or a token session), then `conformance_tests!(TheProvider);`.
//! That generates `<module>::conformance_suite::<behaviour>` tests. Behaviours run in parallel, each
//! with its own provider, in-memory key store and application ("app"); the suite keeps no global
//! state, so a shared token or TPM only has to tolerate concurrent sessions. A slow back end can
//! lower [`Expectations::load`].
//!
//! The suite runs against Mbed Crypto, OpenSSL, PKCS #11 (on a SoftHSMv2 token) and TPM (on
//! swtpm). The hardware providers serve a subset: their refusal paths are asserted, and a wrong
//! expectation fails its test.
//!
//! Provider-specific tests (Mbed's key files, OpenSSL's KEK, wrapping, cache, ...) stay in each
//! provider's `tests.rs`, which also uses the [`Fixture`] and helpers from here (their errors
//! are the wire status a client would get, [`ResponseStatus`]).

use std::any::Any;
use std::collections::BTreeSet;
use std::fmt::{self, Debug};
use std::sync::Arc;

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::can_do_crypto::CheckType;
use bulwark_interface::ops::*;
use bulwark_interface::secret::SecretBytes;
use bulwark_interface::status::ResponseStatus;
use psa_crypto::types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Cipher,
    FullLengthMac, Hash, KeyAgreement, Mac, RawKeyAgreement, SignHash,
};
use psa_crypto::types::key::{Attributes, DhFamily, EccFamily, Lifetime, Policy, Type, UsageFlags};

use crate::auth::Identity;
use crate::dispatch::Registry;
use crate::keystore::{KeyRecord, KeyStore};
use crate::providers::{Provider, ProviderSettings, RequestContext};

/// Whatever must outlive a provider made for a test (a temporary directory, say).
pub(crate) type Keep = Box<dyn Any + Send + Sync>;

/// A provider the conformance suite runs against.
pub(crate) trait Subject: Provider + Sized {
    /// What this provider serves, and how it refuses the rest.
    const EXPECTED: Expectations;

    /// A fresh provider whose keys are recorded in `store`.
    fn make(store: &KeyStore) -> (Arc<Self>, Keep);
}

/// Whether a provider serves a capability; if not, the exact status of its refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    /// Served: the behaviours using it must pass in full.
    Yes,
    /// Refused with this status, which the behaviours assert.
    No(ResponseStatus),
}

/// How much work the concurrency behaviour does: eight threads, each signing and verifying
/// `rounds` times over `keys` keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub keys: usize,
    pub rounds: u8,
}

/// What a provider serves, where providers differ. Every entry is asserted both ways.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expectations {
    /// Exactly the opcodes the provider registers (and so advertises in ListOpcodes). Any
    /// other operation answers `PsaErrorNotSupported`.
    pub opcodes: &'static [Opcode],
    /// Checks the back-end key id recorded for a generated SECP-R1 P-256 key pair.
    pub key_id: fn(&[u8]),
    /// The RSA key sizes the provider generates and CanDoCrypto accepts (the suite probes
    /// 1536, 2048 and 3072; 2048 must be served).
    pub rsa_bits: &'static [usize],
    /// The status with which key creation refuses a size the provider does not serve (an RSA
    /// size outside `rsa_bits`, an RSA size of 0, a SECP-R1 size that does not exist).
    pub refused_size: ResponseStatus,
    /// Generating SECP-R1 P-384 key pairs (and using them).
    pub p384: Support,
    /// Generating an RSA key whose policy is PSS (and using it).
    pub rsa_pss: Support,
    /// RSA OAEP encryption with SHA-256 (without a label); the refusal is the encryption's.
    pub oaep_sha256: Support,
    /// RSA OAEP encryption with a non-empty label (`salt`); the refusal is the encryption's.
    pub oaep_label: Support,
    /// Importing key pairs (private keys); public keys are importable everywhere.
    pub private_key_import: Support,
    /// Generating AES keys.
    pub aes_keys: Support,
    /// Whether RFC 7919 DH key pairs can be generated and imported (FFDH agreement itself is
    /// NotSupported either way).
    pub dh_keys: bool,
    /// Whether CanDoCrypto answers Ok to generating and importing an HMAC key whose policy
    /// names no algorithm.
    pub can_do_bare_hmac_keys: bool,
    /// Whether CanDoCrypto answers Ok to USE of deterministic ECDSA.
    pub deterministic_ecdsa: bool,
    /// Whether CanDoCrypto answers Ok to GENERATE of an AES key for CBC-MAC.
    pub cbc_mac: bool,
    /// The size of `signing_from_eight_threads_at_once_is_safe`.
    pub load: Load,
}

impl Expectations {
    /// Whether the provider is expected to register `opcode`.
    pub(crate) fn serves(&self, opcode: Opcode) -> bool {
        self.opcodes.contains(&opcode)
    }
}

/// The operations of the software providers (Mbed Crypto and OpenSSL): every crypto operation
/// but key attestation.
pub(crate) const SOFTWARE_OPCODES: &[Opcode] = &[
    Opcode::PsaGenerateKey,
    Opcode::PsaImportKey,
    Opcode::PsaDestroyKey,
    Opcode::PsaExportPublicKey,
    Opcode::PsaExportKey,
    Opcode::PsaSignHash,
    Opcode::PsaVerifyHash,
    Opcode::PsaSignMessage,
    Opcode::PsaVerifyMessage,
    Opcode::PsaAsymmetricEncrypt,
    Opcode::PsaAsymmetricDecrypt,
    Opcode::PsaAeadEncrypt,
    Opcode::PsaAeadDecrypt,
    Opcode::PsaCipherEncrypt,
    Opcode::PsaCipherDecrypt,
    Opcode::PsaMacCompute,
    Opcode::PsaMacVerify,
    Opcode::PsaRawKeyAgreement,
    Opcode::PsaGenerateRandom,
    Opcode::PsaHashCompute,
    Opcode::PsaHashCompare,
    Opcode::CanDoCrypto,
];

/// The operations both hardware providers (PKCS #11 and TPM) serve: key management, asymmetric
/// signatures and encryption, random and CanDoCrypto.
pub(crate) const HARDWARE_OPCODES: [Opcode; 10] = [
    Opcode::PsaGenerateKey,
    Opcode::PsaDestroyKey,
    Opcode::PsaImportKey,
    Opcode::PsaExportPublicKey,
    Opcode::PsaSignHash,
    Opcode::PsaVerifyHash,
    Opcode::PsaGenerateRandom,
    Opcode::PsaAsymmetricEncrypt,
    Opcode::PsaAsymmetricDecrypt,
    Opcode::CanDoCrypto,
];

/// What a behaviour established for the provider under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything the behaviour checks passed.
    Passed,
    /// Passed for what the provider serves; the listed parts were refused as expected.
    Partial(Vec<&'static str>),
    /// The behaviour's subject is not served; the refusal was asserted.
    NotSupported(&'static str),
}

impl Outcome {
    /// Adds a part the provider refused (as its expectations say).
    fn except(self, part: &'static str) -> Outcome {
        match self {
            Outcome::Passed => Outcome::Partial(vec![part]),
            Outcome::Partial(mut parts) => {
                parts.push(part);
                Outcome::Partial(parts)
            }
            not_supported @ Outcome::NotSupported(_) => not_supported,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Passed => write!(f, "passed"),
            Outcome::Partial(parts) => write!(f, "partial (not supported: {})", parts.join(", ")),
            Outcome::NotSupported(what) => write!(f, "not supported ({what})"),
        }
    }
}

/// A `conformance_suite` module with one `#[test]` per behaviour for provider `$provider`, named
/// after the behaviour; each prints its [`Outcome`].
macro_rules! conformance_tests {
    ($provider:ty) => {
        $crate::providers::conformance::conformance_tests!(
            @tests $provider;
            advertises_exactly_the_expected_operations,
            ecdsa_p256_signs_and_verifies,
            ecdsa_p384_signs_and_verifies,
            rsa_2048_pkcs1v15_signs_and_verifies,
            rsa_2048_pss_signs_and_verifies,
            sign_message_hashes_then_signs,
            sign_message_without_a_specific_hash_is_not_supported,
            sign_is_refused_without_the_flag_or_with_another_algorithm,
            every_key_use_needs_its_usage_flag,
            a_hash_of_the_wrong_length_is_an_invalid_argument,
            signing_from_eight_threads_at_once_is_safe,
            a_public_key_imported_from_an_export_verifies,
            rsa_pkcs1v15_encryption_round_trip,
            rsa_oaep_encryption_round_trip,
            rsa_oaep_encryption_round_trip_with_a_label,
            aes_gcm_round_trip_and_tag_failure,
            aes_ccm_round_trip_and_tag_failure,
            chacha20_poly1305_round_trip_and_tag_failure,
            aes_cbc_pkcs7_round_trip_with_a_fresh_iv,
            aes_cbc_pkcs7_bad_padding_is_invalid_padding,
            aes_ctr_round_trip_keeps_the_length,
            aes_ecb_has_no_iv,
            hmac_compute_and_verify,
            hash_compute_and_compare,
            random_respects_the_buffer_limit,
            ecdh_gives_both_sides_the_same_secret,
            public_keys_export_in_psa_format,
            export_needs_the_export_flag,
            public_keys_export_without_the_export_flag,
            imported_keys_work_and_keep_the_attributes_as_sent,
            provider_size_and_type_checks,
            a_name_can_only_be_used_once,
            key_names_and_keys_per_client_are_bounded,
            missing_and_destroyed_keys_do_not_exist,
            keys_of_another_application_are_invisible,
            deprecated_generation_needs_allow_deprecated,
            ffdh_agreement_is_not_supported,
            can_do_crypto_follows_the_reference_rules,
            can_do_crypto_agrees_with_key_generation,
        );
    };
    (@tests $provider:ty; $($behaviour:ident,)*) => {
        type ConformanceSubject = $provider;

        mod conformance_suite {
            $(
                #[test]
                fn $behaviour() {
                    let outcome =
                        $crate::providers::conformance::$behaviour::<super::ConformanceSubject>();
                    println!(
                        "conformance {} {}: {}",
                        stringify!($provider),
                        stringify!($behaviour),
                        outcome
                    );
                }
            )*
        }
    };
}
pub(crate) use conformance_tests;

/// A provider behind its own registry, an empty key store and one application.
pub(crate) struct Fixture<P> {
    pub(crate) provider: Arc<P>,
    /// Shared, so that a second provider (a reload) can be built on the same store.
    pub(crate) store: Arc<KeyStore>,
    pub(crate) identity: Identity,
    pub(crate) settings: ProviderSettings,
    registry: Registry,
    id: ProviderId,
    keep: Keep,
}

impl<P: Subject> Fixture<P> {
    pub(crate) fn new() -> Self {
        Fixture::with_settings(ProviderSettings::default())
    }

    pub(crate) fn with_settings(settings: ProviderSettings) -> Self {
        let store = KeyStore::open_in_memory().expect("in-memory store");
        let (provider, keep) = P::make(&store);
        Fixture::from_parts(provider, store, keep, settings)
    }
}

impl<P: Provider> Fixture<P> {
    /// A fixture on a given provider and store, for application "app"; `keep` is dropped
    /// after the provider.
    pub(crate) fn from_parts(
        provider: Arc<P>,
        store: impl Into<Arc<KeyStore>>,
        keep: Keep,
        settings: ProviderSettings,
    ) -> Self {
        let store = store.into();
        let id = provider.info().id;
        let mut registry = Registry::new();
        Arc::clone(&provider).register(&mut registry.registrar(id));
        Fixture {
            provider,
            store,
            identity: Identity {
                name: "app".to_owned(),
                auth_type: AuthType::Direct,
                is_admin: false,
            },
            settings,
            registry,
            id,
            keep,
        }
    }

    /// What the fixture keeps alive for the provider (a token, a simulator, ...), as a `T`.
    pub(crate) fn kept<T: Any>(&self) -> &T {
        self.keep
            .downcast_ref()
            .expect("the fixture keeps a value of this type")
    }

    /// [`Fixture::kept`], mutable (to restart a simulator, say).
    pub(crate) fn kept_mut<T: Any>(&mut self) -> &mut T {
        self.keep
            .downcast_mut()
            .expect("the fixture keeps a value of this type")
    }

    /// The opcodes the provider registered.
    pub(crate) fn registered(&self) -> BTreeSet<Opcode> {
        self.registry.opcodes(self.id)
    }

    /// Calls operation `O` as application "app", through the wire encoding and the registry.
    pub(crate) fn call<O: Operation>(
        &self,
        request: O::Request,
    ) -> Result<O::Response, ResponseStatus> {
        self.call_as::<O>(Some(&self.identity), request)
    }

    /// Calls operation `O` as `identity` (none: an unauthenticated request).
    pub(crate) fn call_as<O: Operation>(
        &self,
        identity: Option<&Identity>,
        request: O::Request,
    ) -> Result<O::Response, ResponseStatus> {
        let body = encode_request::<O>(request).expect("request encodes");
        let ctx = RequestContext::new(identity, &self.store, &self.settings);
        let response = self
            .registry
            .dispatch(self.id, O::OPCODE, &ctx, &body)
            .map_err(|error| ResponseStatus::from(&error))?;
        Ok(decode_response::<O>(&response).expect("response decodes"))
    }

    pub(crate) fn record(&self, name: &str) -> KeyRecord {
        self.store
            .list(AuthType::Direct, "app")
            .into_iter()
            .find(|(identity, _)| {
                identity.key_name() == name && identity.provider_name() == self.provider.name()
            })
            .map(|(_, record)| record)
            .expect("key exists")
    }

    /// The names of application "app"'s keys.
    pub(crate) fn key_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .store
            .list(AuthType::Direct, "app")
            .into_iter()
            .map(|(identity, _)| identity.into_key_name())
            .collect();
        names.sort();
        names
    }

    pub(crate) fn try_generate(
        &self,
        name: &str,
        attributes: Attributes,
    ) -> Result<(), ResponseStatus> {
        let request = psa_generate_key::Request {
            key_name: name.to_owned(),
            attributes,
        };
        self.call::<PsaGenerateKey>(request).map(drop)
    }

    pub(crate) fn generate(&self, name: &str, attributes: Attributes) {
        self.try_generate(name, attributes).expect("key generated");
    }

    pub(crate) fn try_import(
        &self,
        name: &str,
        attributes: Attributes,
        data: &[u8],
    ) -> Result<(), ResponseStatus> {
        let request = psa_import_key::Request {
            key_name: name.to_owned(),
            attributes,
            data: SecretBytes::from(data),
        };
        self.call::<PsaImportKey>(request).map(drop)
    }

    pub(crate) fn export_public(&self, name: &str) -> Vec<u8> {
        self.try_export_public(name).expect("public key exported")
    }

    pub(crate) fn try_export_public(&self, name: &str) -> Result<Vec<u8>, ResponseStatus> {
        let request = psa_export_public_key::Request {
            key_name: name.to_owned(),
        };
        self.call::<PsaExportPublicKey>(request)
            .map(|response| response.data)
    }

    pub(crate) fn try_export(&self, name: &str) -> Result<Vec<u8>, ResponseStatus> {
        let request = psa_export_key::Request {
            key_name: name.to_owned(),
        };
        self.call::<PsaExportKey>(request)
            .map(|response| response.data.to_vec())
    }

    pub(crate) fn try_sign(
        &self,
        name: &str,
        alg: AsymmetricSignature,
        hash: &[u8],
    ) -> Result<Vec<u8>, ResponseStatus> {
        let request = psa_sign_hash::Request {
            key_name: name.to_owned(),
            alg,
            hash: hash.to_vec(),
        };
        self.call::<PsaSignHash>(request)
            .map(|response| response.signature)
    }

    pub(crate) fn try_verify(
        &self,
        name: &str,
        alg: AsymmetricSignature,
        hash: &[u8],
        signature: &[u8],
    ) -> Result<(), ResponseStatus> {
        let request = psa_verify_hash::Request {
            key_name: name.to_owned(),
            alg,
            hash: hash.to_vec(),
            signature: signature.to_vec(),
        };
        self.call::<PsaVerifyHash>(request).map(drop)
    }

    pub(crate) fn try_encrypt(
        &self,
        name: &str,
        alg: AsymmetricEncryption,
        plaintext: &[u8],
        salt: Option<&[u8]>,
    ) -> Result<Vec<u8>, ResponseStatus> {
        let request = psa_asymmetric_encrypt::Request {
            key_name: name.to_owned(),
            alg,
            plaintext: SecretBytes::from(plaintext),
            salt: salt.map(<[u8]>::to_vec),
        };
        self.call::<PsaAsymmetricEncrypt>(request)
            .map(|response| response.ciphertext)
    }

    pub(crate) fn try_decrypt(
        &self,
        name: &str,
        alg: AsymmetricEncryption,
        ciphertext: &[u8],
        salt: Option<&[u8]>,
    ) -> Result<Vec<u8>, ResponseStatus> {
        let request = psa_asymmetric_decrypt::Request {
            key_name: name.to_owned(),
            alg,
            ciphertext: ciphertext.to_vec(),
            salt: salt.map(<[u8]>::to_vec),
        };
        self.call::<PsaAsymmetricDecrypt>(request)
            .map(|response| response.plaintext.to_vec())
    }

    pub(crate) fn destroy(&self, name: &str) -> Result<(), ResponseStatus> {
        self.call::<PsaDestroyKey>(psa_destroy_key::Request {
            key_name: name.to_owned(),
        })
        .map(drop)
    }

    pub(crate) fn can_do(
        &self,
        check_type: CheckType,
        attributes: Attributes,
    ) -> Result<(), ResponseStatus> {
        self.call::<CanDoCrypto>(can_do_crypto::Request {
            check_type,
            attributes,
        })
        .map(drop)
    }

    /// Asserts that operation `O`, which the provider does not register, is refused as a
    /// client sees it: `PsaErrorNotSupported`.
    pub(crate) fn assert_not_served<O: Operation>(&self, request: O::Request) {
        assert!(
            !self.registered().contains(&O::OPCODE),
            "{} is registered",
            O::OPCODE
        );
        assert_eq!(
            status(self.call::<O>(request)),
            ResponseStatus::PsaErrorNotSupported,
            "{}",
            O::OPCODE
        );
    }
}

/// The status of a failed call.
pub(crate) fn status<T: Debug>(result: Result<T, ResponseStatus>) -> ResponseStatus {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(status) => status,
    }
}

pub(crate) fn flags(set: impl FnOnce(&mut UsageFlags)) -> UsageFlags {
    let mut flags = UsageFlags::default();
    set(&mut flags);
    flags
}

pub(crate) fn sign_verify() -> UsageFlags {
    flags(|f| {
        f.set_sign_hash().set_verify_hash();
    })
}

pub(crate) fn verify_only() -> UsageFlags {
    flags(|f| {
        f.set_verify_hash();
    })
}

pub(crate) fn encrypt_decrypt() -> UsageFlags {
    flags(|f| {
        f.set_encrypt().set_decrypt();
    })
}

pub(crate) fn attrs(
    key_type: Type,
    bits: usize,
    alg: impl Into<Algorithm>,
    usage_flags: UsageFlags,
) -> Attributes {
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

pub(crate) fn secp_r1_pair() -> Type {
    Type::EccKeyPair {
        curve_family: EccFamily::SecpR1,
    }
}

pub(crate) fn secp_r1_public() -> Type {
    Type::EccPublicKey {
        curve_family: EccFamily::SecpR1,
    }
}

pub(crate) fn ecdsa(hash: Hash) -> AsymmetricSignature {
    AsymmetricSignature::Ecdsa {
        hash_alg: SignHash::Specific(hash),
    }
}

/// The provider's PsaHashCompute of `input`.
pub(crate) fn digest<P: Provider>(f: &Fixture<P>, alg: Hash, input: &[u8]) -> Vec<u8> {
    let request = psa_hash_compute::Request {
        alg,
        input: input.to_vec(),
    };
    f.call::<PsaHashCompute>(request)
        .expect("hash computed")
        .hash
}

/// The SHA-2 hash of `input`, computed here, so that signature behaviours do not depend on the
/// provider serving PsaHashCompute.
pub(crate) fn sha2(alg: Hash, input: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match alg {
        Hash::Sha256 => sha2::Sha256::digest(input).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(input).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(input).to_vec(),
        other => panic!("the suite hashes with SHA-2 only, not {other:?}"),
    }
}

/// A fixed SECP-R1 private key of `bits` (256 or 384) and its public key, the latter
/// computed by RustCrypto (uncompressed point, the PSA format).
pub(crate) fn fixed_secp_r1_key(bits: usize) -> (Vec<u8>, Vec<u8>) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    match bits {
        256 => {
            let private =
                hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
                    .expect("hex");
            let key = p256::SecretKey::from_slice(&private).expect("P-256 scalar");
            let public = key.public_key().to_encoded_point(false).as_bytes().to_vec();
            (private, public)
        }
        384 => {
            let private = hex::decode(
                "6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba\
                 9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5",
            )
            .expect("hex");
            let key = p384::SecretKey::from_slice(&private).expect("P-384 scalar");
            let public = key.public_key().to_encoded_point(false).as_bytes().to_vec();
            (private, public)
        }
        other => panic!("no fixed SECP-R1 key of {other} bits"),
    }
}

/// Asserts `result` is what `support` says: Ok when served, else exactly the stated refusal.
/// Returns whether it was served.
fn expect_support<T: Debug>(support: Support, result: Result<T, ResponseStatus>) -> Option<T> {
    match support {
        Support::Yes => Some(result.expect("served")),
        Support::No(refusal) => {
            assert_eq!(status(result), refusal);
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

/// The provider registers exactly the operations of its expectations (so ListOpcodes
/// advertises them, and every other operation answers NotSupported).
pub(crate) fn advertises_exactly_the_expected_operations<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let expected: BTreeSet<Opcode> = P::EXPECTED.opcodes.iter().copied().collect();
    assert_eq!(
        expected.len(),
        P::EXPECTED.opcodes.len(),
        "each listed once"
    );
    assert!(expected.iter().all(|opcode| !opcode.is_core()));
    assert_eq!(f.registered(), expected);
    for opcode in [Opcode::PsaGenerateKey, Opcode::PsaDestroyKey] {
        assert!(
            expected.contains(&opcode),
            "{opcode}: every provider holds keys"
        );
    }
    if !expected.contains(&Opcode::PsaHashCompute) {
        f.assert_not_served::<PsaHashCompute>(psa_hash_compute::Request {
            alg: Hash::Sha256,
            input: b"abc".to_vec(),
        });
    }
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

pub(crate) fn ecdsa_round_trip<P: Subject>(f: &Fixture<P>, bits: usize, hash_alg: Hash) {
    let alg = ecdsa(hash_alg);
    let signature_len = 2 * bits / 8;
    f.generate("ecc", attrs(secp_r1_pair(), bits, alg, sign_verify()));
    let hash = sha2(hash_alg, b"message");
    let signature = f.try_sign("ecc", alg, &hash).expect("signed");
    assert_eq!(signature.len(), signature_len);
    f.try_verify("ecc", alg, &hash, &signature)
        .expect("verified");
    let mut bad = signature.clone();
    bad[5] ^= 1;
    assert_eq!(
        status(f.try_verify("ecc", alg, &hash, &bad)),
        ResponseStatus::PsaErrorInvalidSignature
    );
}

pub(crate) fn ecdsa_p256_signs_and_verifies<P: Subject>() -> Outcome {
    ecdsa_round_trip(&Fixture::<P>::new(), 256, Hash::Sha256);
    Outcome::Passed
}

pub(crate) fn ecdsa_p384_signs_and_verifies<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    match P::EXPECTED.p384 {
        Support::Yes => {
            ecdsa_round_trip(&f, 384, Hash::Sha384);
            Outcome::Passed
        }
        Support::No(refusal) => {
            let p384 = attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify());
            assert_eq!(status(f.try_generate("ecc", p384)), refusal);
            assert!(f.key_names().is_empty());
            Outcome::NotSupported("P-384 keys")
        }
    }
}

pub(crate) fn rsa_2048_pkcs1v15_signs_and_verifies<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let hash = sha2(Hash::Sha256, b"message");
    let v15 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: SignHash::Any,
    };
    f.generate("v15", attrs(Type::RsaKeyPair, 2048, v15, sign_verify()));

    // A policy with the `Any` wildcard permits the scheme with a specific hash.
    let v15_sha256 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    let signature = f.try_sign("v15", v15_sha256, &hash).expect("signed");
    assert_eq!(signature.len(), 256);
    assert_eq!(
        f.try_sign("v15", v15_sha256, &hash).expect("signed"),
        signature,
        "deterministic"
    );
    f.try_verify("v15", v15_sha256, &hash, &signature)
        .expect("verified");
    let other = sha2(Hash::Sha256, b"other message");
    assert_eq!(
        status(f.try_verify("v15", v15_sha256, &other, &signature)),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

pub(crate) fn rsa_2048_pss_signs_and_verifies<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let hash = sha2(Hash::Sha256, b"message");
    let pss = AsymmetricSignature::RsaPss {
        hash_alg: Hash::Sha256.into(),
    };
    let generated = f.try_generate("pss", attrs(Type::RsaKeyPair, 2048, pss, sign_verify()));
    if expect_support(P::EXPECTED.rsa_pss, generated).is_none() {
        assert!(f.key_names().is_empty());
        return Outcome::NotSupported("RSA PSS");
    }
    let signature = f.try_sign("pss", pss, &hash).expect("signed");
    assert_eq!(signature.len(), 256);
    assert_ne!(
        f.try_sign("pss", pss, &hash).expect("signed"),
        signature,
        "PSS is salted"
    );
    f.try_verify("pss", pss, &hash, &signature)
        .expect("verified");
    let other = sha2(Hash::Sha256, b"other message");
    assert_eq!(
        status(f.try_verify("pss", pss, &other, &signature)),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

fn sign_message_request(alg: AsymmetricSignature, message: &[u8]) -> psa_sign_message::Request {
    psa_sign_message::Request {
        key_name: "ecc".into(),
        alg,
        message: message.to_vec(),
    }
}

fn verify_message_request(
    alg: AsymmetricSignature,
    message: &[u8],
    signature: &[u8],
) -> psa_verify_message::Request {
    psa_verify_message::Request {
        key_name: "ecc".into(),
        alg,
        message: message.to_vec(),
        signature: signature.to_vec(),
    }
}

/// Asserts that neither PsaSignMessage nor PsaVerifyMessage is served.
fn assert_message_signatures_not_served<P: Subject>(
    f: &Fixture<P>,
    alg: AsymmetricSignature,
) -> Outcome {
    f.assert_not_served::<PsaSignMessage>(sign_message_request(alg, b"hello"));
    f.assert_not_served::<PsaVerifyMessage>(verify_message_request(alg, b"hello", &[0; 64]));
    Outcome::NotSupported("PsaSignMessage, PsaVerifyMessage")
}

pub(crate) fn sign_message_hashes_then_signs<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    if !P::EXPECTED.serves(Opcode::PsaSignMessage) {
        return assert_message_signatures_not_served(&f, alg);
    }
    let signature = f
        .call::<PsaSignMessage>(sign_message_request(alg, b"hello"))
        .expect("signed")
        .signature;
    // The message signature is a signature of the message's hash.
    let hash = sha2(Hash::Sha256, b"hello");
    f.try_verify("ecc", alg, &hash, &signature)
        .expect("verified as a hash signature");
    let verify = |message: &[u8]| {
        f.call::<PsaVerifyMessage>(verify_message_request(alg, message, &signature))
    };
    verify(b"hello").expect("verified");
    assert_eq!(
        status(verify(b"hellO")),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

pub(crate) fn sign_message_without_a_specific_hash_is_not_supported<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = AsymmetricSignature::EcdsaAny;
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    if !P::EXPECTED.serves(Opcode::PsaSignMessage) {
        return assert_message_signatures_not_served(&f, alg);
    }
    assert_eq!(
        status(f.call::<PsaSignMessage>(sign_message_request(alg, b"hello"))),
        ResponseStatus::PsaErrorNotSupported
    );
    Outcome::Passed
}

pub(crate) fn sign_is_refused_without_the_flag_or_with_another_algorithm<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate(
        "verify-only",
        attrs(secp_r1_pair(), 256, alg, verify_only()),
    );
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let hash = [0x42; 32];
    assert_eq!(
        status(f.try_sign("verify-only", alg, &hash)),
        ResponseStatus::PsaErrorNotPermitted
    );
    let sha384 = ecdsa(Hash::Sha384);
    assert_eq!(
        status(f.try_sign("ecc", sha384, &[0x42; 48])),
        ResponseStatus::PsaErrorNotPermitted
    );
    let rsa = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    assert_eq!(
        status(f.try_sign("ecc", rsa, &hash)),
        ResponseStatus::PsaErrorNotPermitted
    );
    Outcome::Passed
}

/// Calls `O` with `request` and asserts the refusal of a key whose policy lacks the usage the
/// operation needs: `PsaErrorNotPermitted`, or `PsaErrorNotSupported` when the provider does
/// not serve `O` (then `part` is added to the outcome's refused parts).
fn assert_not_permitted<P: Subject, O: Operation>(
    f: &Fixture<P>,
    outcome: Outcome,
    part: &'static str,
    request: O::Request,
) -> Outcome {
    if !P::EXPECTED.serves(O::OPCODE) {
        f.assert_not_served::<O>(request);
        return outcome.except(part);
    }
    assert_eq!(
        status(f.call::<O>(request)),
        ResponseStatus::PsaErrorNotPermitted,
        "{} with a key whose policy lacks the usage",
        O::OPCODE
    );
    outcome
}

/// Every operation that uses a key refuses one whose policy lacks the usage flag it needs
/// (the service checks the policy before the provider runs), while public export and
/// destruction, which need no flag, still work on such a key.
pub(crate) fn every_key_use_needs_its_usage_flag<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let none = UsageFlags::default();
    let mut outcome = Outcome::Passed;

    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, none));
    let hash = vec![0x42; 32];
    outcome = assert_not_permitted::<P, PsaSignHash>(
        &f,
        outcome,
        "PsaSignHash",
        psa_sign_hash::Request {
            key_name: "ecc".into(),
            alg,
            hash: hash.clone(),
        },
    );
    outcome = assert_not_permitted::<P, PsaVerifyHash>(
        &f,
        outcome,
        "PsaVerifyHash",
        psa_verify_hash::Request {
            key_name: "ecc".into(),
            alg,
            hash,
            signature: vec![1; 64],
        },
    );
    outcome = assert_not_permitted::<P, PsaSignMessage>(
        &f,
        outcome,
        "PsaSignMessage",
        sign_message_request(alg, b"hello"),
    );
    outcome = assert_not_permitted::<P, PsaVerifyMessage>(
        &f,
        outcome,
        "PsaVerifyMessage",
        verify_message_request(alg, b"hello", &[1; 64]),
    );
    outcome = assert_not_permitted::<P, PsaExportKey>(
        &f,
        outcome,
        "PsaExportKey",
        psa_export_key::Request {
            key_name: "ecc".into(),
        },
    );
    assert_eq!(
        f.export_public("ecc").len(),
        65,
        "public export needs no flag"
    );

    let ecdh = KeyAgreement::Raw(RawKeyAgreement::Ecdh);
    let agreement = psa_raw_key_agreement::Request {
        alg: RawKeyAgreement::Ecdh,
        private_key_name: "ecdh".into(),
        peer_key: f.export_public("ecc"),
    };
    if P::EXPECTED.serves(Opcode::PsaRawKeyAgreement) {
        f.generate("ecdh", attrs(secp_r1_pair(), 256, ecdh, none));
    }
    outcome =
        assert_not_permitted::<P, PsaRawKeyAgreement>(&f, outcome, "PsaRawKeyAgreement", agreement);

    let rsa = AsymmetricEncryption::RsaPkcs1v15Crypt;
    f.generate("rsa", attrs(Type::RsaKeyPair, 2048, rsa, none));
    assert_eq!(
        f.try_encrypt("rsa", rsa, b"secret", None),
        Err(ResponseStatus::PsaErrorNotPermitted),
        "PsaAsymmetricEncrypt with a key whose policy lacks the usage"
    );
    assert_eq!(
        f.try_decrypt("rsa", rsa, &[1; 256], None),
        Err(ResponseStatus::PsaErrorNotPermitted),
        "PsaAsymmetricDecrypt with a key whose policy lacks the usage"
    );

    let aead = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
    if P::EXPECTED.serves(Opcode::PsaAeadEncrypt) {
        f.generate("aead", attrs(Type::Aes, 128, aead, none));
    }
    outcome = assert_not_permitted::<P, PsaAeadEncrypt>(
        &f,
        outcome,
        "PsaAeadEncrypt",
        psa_aead_encrypt::Request {
            key_name: "aead".into(),
            alg: aead,
            nonce: vec![7; 12],
            additional_data: Vec::new(),
            plaintext: SecretBytes::from(&b"secret"[..]),
        },
    );
    outcome = assert_not_permitted::<P, PsaAeadDecrypt>(
        &f,
        outcome,
        "PsaAeadDecrypt",
        psa_aead_decrypt::Request {
            key_name: "aead".into(),
            alg: aead,
            nonce: vec![7; 12],
            additional_data: Vec::new(),
            ciphertext: vec![1; 32],
        },
    );

    let cipher = Cipher::Ctr;
    if P::EXPECTED.serves(Opcode::PsaCipherEncrypt) {
        f.generate("aes", attrs(Type::Aes, 128, cipher, none));
    }
    outcome = assert_not_permitted::<P, PsaCipherEncrypt>(
        &f,
        outcome,
        "PsaCipherEncrypt",
        psa_cipher_encrypt::Request {
            key_name: "aes".into(),
            alg: cipher,
            plaintext: SecretBytes::from(&b"secret"[..]),
        },
    );
    outcome = assert_not_permitted::<P, PsaCipherDecrypt>(
        &f,
        outcome,
        "PsaCipherDecrypt",
        psa_cipher_decrypt::Request {
            key_name: "aes".into(),
            alg: cipher,
            ciphertext: vec![1; 32],
        },
    );

    let mac = Mac::FullLength(FullLengthMac::Hmac {
        hash_alg: Hash::Sha256,
    });
    if P::EXPECTED.serves(Opcode::PsaMacCompute) {
        f.generate("hmac", attrs(Type::Hmac, 256, mac, none));
    }
    outcome = assert_not_permitted::<P, PsaMacCompute>(
        &f,
        outcome,
        "PsaMacCompute",
        psa_mac_compute::Request {
            key_name: "hmac".into(),
            alg: mac,
            input: b"data".to_vec(),
        },
    );
    outcome = assert_not_permitted::<P, PsaMacVerify>(
        &f,
        outcome,
        "PsaMacVerify",
        psa_mac_verify::Request {
            key_name: "hmac".into(),
            alg: mac,
            input: b"data".to_vec(),
            mac: vec![1; 32],
        },
    );

    for name in f.key_names() {
        f.destroy(&name).expect("destruction needs no flag");
    }
    outcome
}

pub(crate) fn a_hash_of_the_wrong_length_is_an_invalid_argument<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    assert_eq!(
        status(f.try_sign("ecc", alg, &[0x42; 31])),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_verify("ecc", alg, &[0x42; 33], &[0; 64])),
        ResponseStatus::PsaErrorInvalidArgument
    );
    Outcome::Passed
}

pub(crate) fn signing_from_eight_threads_at_once_is_safe<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    let Load { keys, rounds } = P::EXPECTED.load;
    assert!(keys > 0 && rounds > 0, "a load that tests something");
    // Many keys: for the software providers more than Mbed TLS has key slots, so that keys are
    // loaded and evicted concurrently there, and unwrapped and cached concurrently in the
    // OpenSSL provider.
    let names: Vec<String> = (0..keys).map(|i| format!("key-{i}")).collect();
    for name in &names {
        f.generate(name, attrs(secp_r1_pair(), 256, alg, sign_verify()));
    }
    std::thread::scope(|scope| {
        for thread in 0..8u8 {
            let (f, names) = (&f, &names);
            scope.spawn(move || {
                for round in 0..rounds {
                    let name = &names
                        [usize::from(thread.wrapping_mul(7).wrapping_add(round)) % names.len()];
                    let hash = [thread ^ round; 32];
                    let signature = f.try_sign(name, alg, &hash).expect("signed");
                    f.try_verify(name, alg, &hash, &signature)
                        .expect("verified");
                }
            });
        }
    });
    Outcome::Passed
}

/// A signature made by a key pair verifies with its public key, exported and imported as a
/// public key; for SECP-R1 P-256 and RSA 2048.
pub(crate) fn a_public_key_imported_from_an_export_verifies<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let ecc = ecdsa(Hash::Sha256);
    let rsa = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    let cases = [
        (secp_r1_pair(), secp_r1_public(), ecc),
        (Type::RsaKeyPair, Type::RsaPublicKey, rsa),
    ];
    for (pair_type, public_type, alg) in cases {
        let bits = if pair_type == Type::RsaKeyPair {
            2048
        } else {
            256
        };
        f.generate("pair", attrs(pair_type, bits, alg, sign_verify()));
        let exported = f.export_public("pair");
        f.try_import(
            "public",
            attrs(public_type, 0, alg, verify_only()),
            &exported,
        )
        .expect("public key imported");
        assert_eq!(f.export_public("public"), exported, "{alg:?}");
        let hash = sha2(Hash::Sha256, b"signed by the pair");
        let signature = f.try_sign("pair", alg, &hash).expect("signed");
        f.try_verify("public", alg, &hash, &signature)
            .expect("verified with the public key");
        let other = sha2(Hash::Sha256, b"something else");
        assert_eq!(
            status(f.try_verify("public", alg, &other, &signature)),
            ResponseStatus::PsaErrorInvalidSignature,
            "{alg:?}"
        );
        // The public key, imported to verify only, does not sign.
        assert_eq!(
            status(f.try_sign("public", alg, &hash)),
            ResponseStatus::PsaErrorNotPermitted,
            "{alg:?}"
        );
        f.destroy("pair").expect("destroyed");
        f.destroy("public").expect("destroyed");
    }
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------------
// Asymmetric encryption
// ---------------------------------------------------------------------------------------------

fn asymmetric_encrypt_request(
    alg: AsymmetricEncryption,
    salt: Option<Vec<u8>>,
) -> psa_asymmetric_encrypt::Request {
    psa_asymmetric_encrypt::Request {
        key_name: "rsa".into(),
        alg,
        plaintext: SecretBytes::from(&b"attack at dawn"[..]),
        salt,
    }
}

/// Asserts that asymmetric encryption is not served, if the expectations say so.
fn asymmetric_encryption_not_served<P: Subject>(
    f: &Fixture<P>,
    alg: AsymmetricEncryption,
) -> Option<Outcome> {
    if P::EXPECTED.serves(Opcode::PsaAsymmetricEncrypt) {
        return None;
    }
    f.assert_not_served::<PsaAsymmetricEncrypt>(asymmetric_encrypt_request(alg, None));
    f.assert_not_served::<PsaAsymmetricDecrypt>(psa_asymmetric_decrypt::Request {
        key_name: "rsa".into(),
        alg,
        ciphertext: vec![0; 256],
        salt: None,
    });
    Some(Outcome::NotSupported("asymmetric encryption"))
}

pub(crate) fn rsa_encryption_round_trip<P: Subject>(
    alg: AsymmetricEncryption,
    salt: Option<Vec<u8>>,
) -> Outcome {
    let f = Fixture::<P>::new();
    if let Some(outcome) = asymmetric_encryption_not_served(&f, alg) {
        return outcome;
    }
    f.generate("rsa", attrs(Type::RsaKeyPair, 2048, alg, encrypt_decrypt()));
    let encrypted = f.try_encrypt("rsa", alg, b"attack at dawn", salt.as_deref());
    let oaep_sha256 = matches!(
        alg,
        AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256
        }
    );
    if let (None, true, Support::No(refusal)) = (&salt, oaep_sha256, P::EXPECTED.oaep_sha256) {
        assert_eq!(status(encrypted), refusal);
        return Outcome::NotSupported("OAEP with SHA-256");
    }
    if let (Some(_), Support::No(refusal)) = (&salt, P::EXPECTED.oaep_label) {
        assert_eq!(status(encrypted), refusal);
        return Outcome::NotSupported("OAEP labels");
    }
    let ciphertext = encrypted.expect("encrypted");
    assert_eq!(ciphertext.len(), 256);
    let decrypt = |salt: Option<&[u8]>| f.try_decrypt("rsa", alg, &ciphertext, salt);
    let plaintext = decrypt(salt.as_deref()).expect("decrypted");
    assert_eq!(plaintext, b"attack at dawn");
    match salt {
        // Another OAEP label does not decrypt.
        Some(_) => assert_eq!(
            status(decrypt(Some(b"other"))),
            ResponseStatus::PsaErrorInvalidPadding
        ),
        // Randomised padding: the same plaintext encrypts differently.
        None => {
            let again = f
                .try_encrypt("rsa", alg, b"attack at dawn", None)
                .expect("encrypted");
            assert_ne!(again, ciphertext);
        }
    }
    Outcome::Passed
}

pub(crate) fn rsa_pkcs1v15_encryption_round_trip<P: Subject>() -> Outcome {
    rsa_encryption_round_trip::<P>(AsymmetricEncryption::RsaPkcs1v15Crypt, None)
}

pub(crate) fn rsa_oaep_encryption_round_trip<P: Subject>() -> Outcome {
    rsa_encryption_round_trip::<P>(
        AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256,
        },
        None,
    )
}

pub(crate) fn rsa_oaep_encryption_round_trip_with_a_label<P: Subject>() -> Outcome {
    rsa_encryption_round_trip::<P>(
        AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256,
        },
        Some(b"label".to_vec()),
    )
}

// ---------------------------------------------------------------------------------------------
// AEAD
// ---------------------------------------------------------------------------------------------

pub(crate) fn aead_round_trip<P: Subject>(
    key_type: Type,
    alg: AeadWithDefaultLengthTag,
    nonce_len: usize,
) -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Aead::AeadWithDefaultLengthTag(alg);
    let nonce = vec![7; nonce_len];
    let encrypt = psa_aead_encrypt::Request {
        key_name: "aead".into(),
        alg,
        nonce: nonce.clone(),
        additional_data: b"header".to_vec(),
        plaintext: SecretBytes::from(&b"secret payload"[..]),
    };
    let decrypt = |ciphertext: Vec<u8>| psa_aead_decrypt::Request {
        key_name: "aead".into(),
        alg,
        nonce: nonce.clone(),
        additional_data: b"header".to_vec(),
        ciphertext,
    };
    if !P::EXPECTED.serves(Opcode::PsaAeadEncrypt) {
        f.assert_not_served::<PsaAeadEncrypt>(encrypt);
        f.assert_not_served::<PsaAeadDecrypt>(decrypt(vec![0; 30]));
        return Outcome::NotSupported("AEAD operations");
    }
    f.generate("aead", attrs(key_type, 256, alg, encrypt_decrypt()));
    let ciphertext = f
        .call::<PsaAeadEncrypt>(encrypt)
        .expect("encrypted")
        .ciphertext;
    assert_eq!(ciphertext.len(), b"secret payload".len() + 16);
    let plaintext = f
        .call::<PsaAeadDecrypt>(decrypt(ciphertext.clone()))
        .expect("decrypted")
        .plaintext;
    assert_eq!(&plaintext[..], b"secret payload");
    let mut tampered = ciphertext;
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    assert_eq!(
        status(f.call::<PsaAeadDecrypt>(decrypt(tampered))),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

pub(crate) fn aes_gcm_round_trip_and_tag_failure<P: Subject>() -> Outcome {
    aead_round_trip::<P>(Type::Aes, AeadWithDefaultLengthTag::Gcm, 12)
}

pub(crate) fn aes_ccm_round_trip_and_tag_failure<P: Subject>() -> Outcome {
    aead_round_trip::<P>(Type::Aes, AeadWithDefaultLengthTag::Ccm, 13)
}

pub(crate) fn chacha20_poly1305_round_trip_and_tag_failure<P: Subject>() -> Outcome {
    aead_round_trip::<P>(
        Type::Chacha20,
        AeadWithDefaultLengthTag::Chacha20Poly1305,
        12,
    )
}

// ---------------------------------------------------------------------------------------------
// Unauthenticated ciphers
// ---------------------------------------------------------------------------------------------

pub(crate) fn cipher_encrypt<P: Provider>(
    f: &Fixture<P>,
    alg: Cipher,
    plaintext: &[u8],
) -> Vec<u8> {
    let request = psa_cipher_encrypt::Request {
        key_name: "aes".into(),
        alg,
        plaintext: SecretBytes::from(plaintext),
    };
    f.call::<PsaCipherEncrypt>(request)
        .expect("encrypted")
        .ciphertext
}

pub(crate) fn cipher_decrypt<P: Provider>(
    f: &Fixture<P>,
    alg: Cipher,
    ciphertext: &[u8],
) -> Result<Vec<u8>, ResponseStatus> {
    let request = psa_cipher_decrypt::Request {
        key_name: "aes".into(),
        alg,
        ciphertext: ciphertext.to_vec(),
    };
    f.call::<PsaCipherDecrypt>(request)
        .map(|response| response.plaintext.to_vec())
}

/// Asserts that the cipher operations are not served, if the expectations say so.
fn ciphers_not_served<P: Subject>(f: &Fixture<P>, alg: Cipher) -> Option<Outcome> {
    if P::EXPECTED.serves(Opcode::PsaCipherEncrypt) {
        return None;
    }
    f.assert_not_served::<PsaCipherEncrypt>(psa_cipher_encrypt::Request {
        key_name: "aes".into(),
        alg,
        plaintext: SecretBytes::from(&b"0123456789abcdef"[..]),
    });
    f.assert_not_served::<PsaCipherDecrypt>(psa_cipher_decrypt::Request {
        key_name: "aes".into(),
        alg,
        ciphertext: vec![0; 32],
    });
    Some(Outcome::NotSupported("cipher operations"))
}

pub(crate) fn aes_cbc_pkcs7_round_trip_with_a_fresh_iv<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Cipher::CbcPkcs7;
    if let Some(outcome) = ciphers_not_served(&f, alg) {
        return outcome;
    }
    f.generate("aes", attrs(Type::Aes, 128, alg, encrypt_decrypt()));
    let plaintext = b"twenty bytes of text";
    let ciphertext = cipher_encrypt(&f, alg, plaintext);
    // 16-byte IV, then 20 bytes padded to 32.
    assert_eq!(ciphertext.len(), 16 + 32);
    assert_ne!(
        cipher_encrypt(&f, alg, plaintext)[..16],
        ciphertext[..16],
        "IV is random"
    );
    assert_eq!(
        cipher_decrypt(&f, alg, &ciphertext).expect("decrypted"),
        plaintext
    );
    Outcome::Passed
}

pub(crate) fn aes_cbc_pkcs7_bad_padding_is_invalid_padding<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    if let Some(outcome) = ciphers_not_served(&f, Cipher::CbcPkcs7) {
        return outcome;
    }
    f.generate(
        "aes",
        attrs(Type::Aes, 128, Cipher::CbcPkcs7, encrypt_decrypt()),
    );
    // One block: 10 bytes of data and 6 bytes of padding 0x06. The last byte of the decrypted
    // block is the IV's last byte XOR the block's decryption, so flipping a bit of the IV turns
    // the padding byte into 0x16, more than a block.
    let ciphertext = cipher_encrypt(&f, Cipher::CbcPkcs7, b"0123456789");
    let mut tampered = ciphertext;
    tampered[15] ^= 0x10;
    assert_eq!(
        status(cipher_decrypt(&f, Cipher::CbcPkcs7, &tampered)),
        ResponseStatus::PsaErrorInvalidPadding
    );
    Outcome::Passed
}

pub(crate) fn aes_ctr_round_trip_keeps_the_length<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Cipher::Ctr;
    if let Some(outcome) = ciphers_not_served(&f, alg) {
        return outcome;
    }
    f.generate("aes", attrs(Type::Aes, 256, alg, encrypt_decrypt()));
    let plaintext = b"odd length message";
    let ciphertext = cipher_encrypt(&f, alg, plaintext);
    assert_eq!(ciphertext.len(), 16 + plaintext.len());
    assert_eq!(
        cipher_decrypt(&f, alg, &ciphertext).expect("decrypted"),
        plaintext
    );
    // A key with a cipher policy (which psa-crypto cannot read back) can be destroyed.
    f.destroy("aes").expect("destroyed");
    assert_eq!(
        status(cipher_decrypt(&f, alg, &ciphertext)),
        ResponseStatus::PsaErrorDoesNotExist
    );
    Outcome::Passed
}

pub(crate) fn aes_ecb_has_no_iv<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Cipher::EcbNoPadding;
    if let Some(outcome) = ciphers_not_served(&f, alg) {
        return outcome;
    }
    f.generate("aes", attrs(Type::Aes, 128, alg, encrypt_decrypt()));
    let plaintext = [0x5a; 32];
    let ciphertext = cipher_encrypt(&f, alg, &plaintext);
    assert_eq!(ciphertext.len(), 32);
    assert_eq!(
        ciphertext[..16],
        ciphertext[16..],
        "ECB: equal blocks, equal ciphertext"
    );
    assert_eq!(
        cipher_decrypt(&f, alg, &ciphertext).expect("decrypted"),
        plaintext
    );
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------------
// MAC, hash, random
// ---------------------------------------------------------------------------------------------

pub(crate) fn hmac_compute_and_verify<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Mac::FullLength(FullLengthMac::Hmac {
        hash_alg: Hash::Sha256,
    });
    let compute = psa_mac_compute::Request {
        key_name: "hmac".into(),
        alg,
        input: b"data".to_vec(),
    };
    let verify = |mac: Vec<u8>| psa_mac_verify::Request {
        key_name: "hmac".into(),
        alg,
        input: b"data".to_vec(),
        mac,
    };
    if !P::EXPECTED.serves(Opcode::PsaMacCompute) {
        f.assert_not_served::<PsaMacCompute>(compute);
        f.assert_not_served::<PsaMacVerify>(verify(vec![0; 32]));
        return Outcome::NotSupported("MAC operations");
    }
    let usage = flags(|f| {
        f.set_sign_message().set_verify_message();
    });
    f.generate("hmac", attrs(Type::Hmac, 256, alg, usage));
    let mac = f.call::<PsaMacCompute>(compute).expect("computed").mac;
    assert_eq!(mac.len(), 32);
    f.call::<PsaMacVerify>(verify(mac.clone()))
        .expect("verified");
    let mut wrong = mac;
    wrong[0] ^= 1;
    assert_eq!(
        status(f.call::<PsaMacVerify>(verify(wrong))),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

pub(crate) fn hash_compute_and_compare<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let compare = |hash: Vec<u8>| psa_hash_compare::Request {
        alg: Hash::Sha256,
        input: b"abc".to_vec(),
        hash,
    };
    if !P::EXPECTED.serves(Opcode::PsaHashCompute) {
        f.assert_not_served::<PsaHashCompute>(psa_hash_compute::Request {
            alg: Hash::Sha256,
            input: b"abc".to_vec(),
        });
        f.assert_not_served::<PsaHashCompare>(compare(vec![0; 32]));
        return Outcome::NotSupported("hash operations");
    }
    let hash = digest(&f, Hash::Sha256, b"abc");
    assert_eq!(
        hash,
        hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            .expect("hex")
    );
    f.call::<PsaHashCompare>(compare(hash.clone()))
        .expect("equal");
    let mut wrong = hash.clone();
    wrong[31] ^= 1;
    assert_eq!(
        status(f.call::<PsaHashCompare>(compare(wrong))),
        ResponseStatus::PsaErrorInvalidSignature
    );
    assert_eq!(
        status(f.call::<PsaHashCompare>(compare(hash[..31].to_vec()))),
        ResponseStatus::PsaErrorInvalidArgument
    );
    Outcome::Passed
}

pub(crate) fn key_names_and_keys_per_client_are_bounded<P: Subject>() -> Outcome {
    let f = Fixture::<P>::with_settings(ProviderSettings {
        max_key_name_len: 16,
        max_keys_per_client: 2,
        ..ProviderSettings::default()
    });
    let p256 = || attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify());
    let long = "x".repeat(17);
    // Creation, use and destruction of a name over the limit: InvalidArgument, nothing stored.
    assert_eq!(
        status(f.try_generate(&long, p256())),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_sign(&long, ecdsa(Hash::Sha256), &[0; 32])),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_export_public(&long)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.destroy(&long)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert!(f.key_names().is_empty());
    // A name of exactly the limit is a name like any other; the quota counts keys.
    let longest = "y".repeat(16);
    f.generate(&longest, p256());
    f.generate("second", p256());
    assert_eq!(
        status(f.try_generate("third", p256())),
        ResponseStatus::PsaErrorInsufficientStorage
    );
    // A taken name is still reported as taken, and a destroyed key frees its place.
    assert_eq!(
        status(f.try_generate("second", p256())),
        ResponseStatus::PsaErrorAlreadyExists
    );
    f.destroy(&longest).expect("destroyed");
    f.generate("third", p256());
    assert_eq!(f.key_names(), vec!["second".to_owned(), "third".to_owned()]);
    Outcome::Passed
}

pub(crate) fn random_respects_the_buffer_limit<P: Subject>() -> Outcome {
    let settings = ProviderSettings {
        buffer_size_limit: 64,
        ..ProviderSettings::default()
    };
    let f = Fixture::<P>::with_settings(settings);
    let random = |size| f.call::<PsaGenerateRandom>(psa_generate_random::Request { size });
    assert!(random(0).expect("empty").random_bytes.is_empty());
    let bytes = random(64).expect("random").random_bytes;
    assert_eq!(bytes.len(), 64);
    assert_ne!(
        bytes.to_vec(),
        random(64).expect("random").random_bytes.to_vec()
    );
    assert_eq!(status(random(65)), ResponseStatus::ResponseTooLarge);
    // No identity is needed.
    let anonymous = f
        .call_as::<PsaGenerateRandom>(None, psa_generate_random::Request { size: 16 })
        .expect("random without an identity");
    assert_eq!(anonymous.random_bytes.len(), 16);
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------------
// Key agreement
// ---------------------------------------------------------------------------------------------

pub(crate) fn ecdh_gives_both_sides_the_same_secret<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = RawKeyAgreement::Ecdh;
    let derive = flags(|f| {
        f.set_derive();
    });
    let request = |own: &str, peer: Vec<u8>| psa_raw_key_agreement::Request {
        alg,
        private_key_name: own.to_owned(),
        peer_key: peer,
    };
    if !P::EXPECTED.serves(Opcode::PsaRawKeyAgreement) {
        f.assert_not_served::<PsaRawKeyAgreement>(request("alice", vec![0x04; 65]));
        return Outcome::NotSupported("PsaRawKeyAgreement");
    }
    f.generate(
        "alice",
        attrs(secp_r1_pair(), 256, KeyAgreement::Raw(alg), derive),
    );
    f.generate(
        "bob",
        attrs(secp_r1_pair(), 256, KeyAgreement::Raw(alg), derive),
    );
    let agree = |own: &str, peer: &str| {
        f.call::<PsaRawKeyAgreement>(request(own, f.export_public(peer)))
            .map(|response| response.shared_secret.to_vec())
    };
    let alice = agree("alice", "bob").expect("agreed");
    assert_eq!(alice.len(), 32);
    assert_eq!(alice, agree("bob", "alice").expect("agreed"));
    assert_eq!(
        status(f.call::<PsaRawKeyAgreement>(request("alice", vec![0x04; 65]))),
        ResponseStatus::PsaErrorInvalidArgument
    );
    let ffdh = psa_raw_key_agreement::Request {
        alg: RawKeyAgreement::Ffdh,
        private_key_name: "alice".into(),
        peer_key: f.export_public("bob"),
    };
    // The policy names ECDH, so FFDH is refused by policy first.
    assert_eq!(
        status(f.call::<PsaRawKeyAgreement>(ffdh)),
        ResponseStatus::PsaErrorNotPermitted
    );
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------------
// Key management
// ---------------------------------------------------------------------------------------------

pub(crate) fn public_keys_export_in_psa_format<P: Subject>() -> Outcome {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let f = Fixture::<P>::new();
    let mut outcome = Outcome::Passed;
    let alg = ecdsa(Hash::Sha256);
    f.generate("p256", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let p256 = f.export_public("p256");
    assert_eq!((p256.len(), p256[0]), (65, 0x04));
    p256::PublicKey::from_sec1_bytes(&p256).expect("a P-256 point");

    // RSA: the DER RSAPublicKey (PKCS#1) of a 2048-bit modulus and exponent 65537.
    let v15 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    f.generate("rsa", attrs(Type::RsaKeyPair, 2048, v15, sign_verify()));
    let rsa = f.export_public("rsa");
    assert_eq!((rsa.len(), &rsa[..4]), (270, &[0x30, 0x82, 0x01, 0x0a][..]));
    let parsed = rsa::RsaPublicKey::from_pkcs1_der(&rsa).expect("PKCS#1 RSAPublicKey");
    assert_eq!(parsed.n().bits(), 2048);
    assert_eq!(parsed.e(), &rsa::BigUint::from(65537u32));

    let p384 = attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify());
    if expect_support(P::EXPECTED.p384, f.try_generate("p384", p384)).is_some() {
        let p384 = f.export_public("p384");
        assert_eq!((p384.len(), p384[0]), (97, 0x04));
        p384::PublicKey::from_sec1_bytes(&p384).expect("a P-384 point");
    } else {
        outcome = outcome.except("P-384 keys");
    }

    let aes = attrs(Type::Aes, 128, Cipher::Ctr, encrypt_decrypt());
    if expect_support(P::EXPECTED.aes_keys, f.try_generate("aes", aes)).is_some() {
        assert_eq!(
            status(f.try_export_public("aes")),
            ResponseStatus::PsaErrorInvalidArgument
        );
    } else {
        outcome = outcome.except("AES keys");
    }
    outcome
}

pub(crate) fn export_needs_the_export_flag<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("locked", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    if !P::EXPECTED.serves(Opcode::PsaExportKey) {
        f.assert_not_served::<PsaExportKey>(psa_export_key::Request {
            key_name: "locked".into(),
        });
        return Outcome::NotSupported("PsaExportKey");
    }
    assert_eq!(
        status(f.try_export("locked")),
        ResponseStatus::PsaErrorNotPermitted
    );
    let mut usage = sign_verify();
    usage.set_export();
    f.generate("open", attrs(secp_r1_pair(), 256, alg, usage));
    assert_eq!(f.try_export("open").expect("exported").len(), 32);
    Outcome::Passed
}

/// A public key's data is never secret (the PSA rule): PsaExportKey answers an RSA or ECC public
/// key whose policy lacks the export flag, with the data PsaExportPublicKey gives, while the key
/// pair it comes from still needs the flag. A provider that does not serve PsaExportKey refuses
/// it as NotSupported and still exports the public keys with PsaExportPublicKey.
pub(crate) fn public_keys_export_without_the_export_flag<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let v15 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    let cases = [
        (
            "rsa pair",
            Type::RsaKeyPair,
            2048,
            "rsa public",
            Type::RsaPublicKey,
            v15,
        ),
        (
            "ecc pair",
            secp_r1_pair(),
            256,
            "ecc public",
            secp_r1_public(),
            ecdsa(Hash::Sha256),
        ),
    ];
    let serves_export = P::EXPECTED.serves(Opcode::PsaExportKey);
    for (pair, pair_type, bits, public, public_type, alg) in cases {
        f.generate(pair, attrs(pair_type, bits, alg, sign_verify()));
        let data = f.export_public(pair);
        let policy = attrs(public_type, 0, alg, verify_only());
        assert!(!policy.policy.usage_flags.export());
        f.try_import(public, policy, &data)
            .expect("public key imported");
        assert_eq!(f.export_public(public), data, "{public}");
        if serves_export {
            assert_eq!(
                f.try_export(public).expect("public key exported"),
                data,
                "{public}"
            );
            assert_eq!(
                status(f.try_export(pair)),
                ResponseStatus::PsaErrorNotPermitted,
                "{pair}"
            );
        } else {
            f.assert_not_served::<PsaExportKey>(psa_export_key::Request {
                key_name: public.into(),
            });
        }
    }
    if serves_export {
        Outcome::Passed
    } else {
        Outcome::Passed.except("PsaExportKey")
    }
}

/// Imports the fixed SECP-R1 key of `bits` with and without its size, and checks what the
/// copies do.
fn imported_key_pair_works<P: Subject>(f: &Fixture<P>, bits: usize, hash_alg: Hash) {
    let alg = ecdsa(hash_alg);
    let (private, public) = fixed_secp_r1_key(bits);
    let name = |what: &str| format!("{what}-{bits}");

    // With its size given, and with the size taken from the data.
    let sized = attrs(secp_r1_pair(), bits, alg, sign_verify());
    f.try_import(&name("sized"), sized, &private)
        .expect("imported");
    let unsized_ = attrs(secp_r1_pair(), 0, alg, sign_verify());
    f.try_import(&name("unsized"), unsized_, &private)
        .expect("imported");
    assert_eq!(
        f.record(&name("unsized")).attributes,
        unsized_,
        "stored exactly as sent"
    );
    assert_eq!(f.export_public(&name("unsized")), public);
    assert_eq!(f.export_public(&name("sized")), public);

    // Sign with a copy, verify with an imported public key.
    let hash = sha2(hash_alg, b"message");
    let signature = f.try_sign(&name("unsized"), alg, &hash).expect("signed");
    let verify_attrs = attrs(secp_r1_public(), 0, alg, verify_only());
    f.try_import(&name("public"), verify_attrs, &public)
        .expect("imported");
    f.try_verify(&name("public"), alg, &hash, &signature)
        .expect("verified");

    // A size that does not match the data (a size the provider does not serve at all is
    // refused as such), and data that is not a key.
    let (other_bits, other_support) = match bits {
        256 => (384, P::EXPECTED.p384),
        _ => (256, Support::Yes),
    };
    let wrong = attrs(secp_r1_pair(), other_bits, alg, sign_verify());
    let refusal = match other_support {
        Support::Yes => ResponseStatus::PsaErrorInvalidArgument,
        Support::No(refusal) => refusal,
    };
    assert_eq!(
        status(f.try_import(&name("wrong"), wrong, &private)),
        refusal
    );
    assert_eq!(
        status(f.try_import(&name("junk"), verify_attrs, b"junk")),
        ResponseStatus::PsaErrorInvalidArgument
    );
    // Failed imports leave the names free.
    f.try_import(&name("wrong"), sized, &private)
        .expect("name is free");
}

pub(crate) fn imported_keys_work_and_keep_the_attributes_as_sent<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    if let Support::No(refusal) = P::EXPECTED.private_key_import {
        let (private, _) = fixed_secp_r1_key(256);
        let alg = ecdsa(Hash::Sha256);
        for bits in [256, 0] {
            let pair = attrs(secp_r1_pair(), bits, alg, sign_verify());
            assert_eq!(status(f.try_import("pair", pair, &private)), refusal);
        }
        assert!(f.key_names().is_empty());
        return Outcome::NotSupported("private-key import");
    }
    imported_key_pair_works(&f, 256, Hash::Sha256);
    match P::EXPECTED.p384 {
        Support::Yes => {
            imported_key_pair_works(&f, 384, Hash::Sha384);
            Outcome::Passed
        }
        Support::No(refusal) => {
            let (private, _) = fixed_secp_r1_key(384);
            let p384 = attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify());
            assert_eq!(status(f.try_import("p384", p384, &private)), refusal);
            Outcome::Passed.except("P-384 keys")
        }
    }
}

pub(crate) fn provider_size_and_type_checks<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let expected = P::EXPECTED;
    assert!(expected.rsa_bits.contains(&2048), "RSA 2048 is served");
    let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
    let mut kept = Vec::new();
    for bits in [0, 1536, 3072] {
        let rsa = attrs(Type::RsaKeyPair, bits, v15, encrypt_decrypt());
        let name = format!("rsa-{bits}");
        if expected.rsa_bits.contains(&bits) {
            f.generate(&name, rsa);
            kept.push(name);
        } else {
            assert_eq!(
                status(f.try_generate(&name, rsa)),
                expected.refused_size,
                "{bits}"
            );
        }
        if bits != 0 {
            let refusal = match expected.private_key_import {
                Support::Yes => ResponseStatus::PsaErrorInvalidArgument,
                Support::No(refusal) => refusal,
            };
            assert_eq!(
                status(f.try_import("imported", rsa, b"not a key")),
                refusal,
                "{bits}"
            );
        }
    }
    let public = attrs(Type::RsaPublicKey, 2048, v15, encrypt_decrypt());
    assert_eq!(
        status(f.try_generate("public", public)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    let ecc = attrs(secp_r1_public(), 256, ecdsa(Hash::Sha256), sign_verify());
    assert_eq!(
        status(f.try_generate("public", ecc)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    // 284 is not a SECP-R1 size (psa-crypto 0.13 wrongly accepts it instead of 384).
    let typo = attrs(secp_r1_pair(), 284, ecdsa(Hash::Sha256), sign_verify());
    assert_eq!(status(f.try_generate("typo", typo)), expected.refused_size);
    // Nothing else was stored.
    kept.sort();
    assert_eq!(f.key_names(), kept);
    Outcome::Passed
}

pub(crate) fn a_name_can_only_be_used_once<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    let ecc = attrs(secp_r1_pair(), 256, alg, sign_verify());
    f.generate("key", ecc);
    assert_eq!(
        status(f.try_generate("key", ecc)),
        ResponseStatus::PsaErrorAlreadyExists
    );
    let (_, public) = fixed_secp_r1_key(256);
    let verify_attrs = attrs(secp_r1_public(), 0, alg, verify_only());
    assert_eq!(
        status(f.try_import("key", verify_attrs, &public)),
        ResponseStatus::PsaErrorAlreadyExists
    );
    // The first key is untouched.
    let hash = [0x42; 32];
    let signature = f.try_sign("key", alg, &hash).expect("signed");
    f.try_verify("key", alg, &hash, &signature)
        .expect("verified");

    let aes = attrs(Type::Aes, 128, Cipher::Ctr, encrypt_decrypt());
    match P::EXPECTED.aes_keys {
        Support::Yes => {
            f.generate("aes", aes);
            assert_eq!(
                status(f.try_generate("aes", aes)),
                ResponseStatus::PsaErrorAlreadyExists
            );
            assert_eq!(
                status(f.try_import("aes", aes, &[0; 16])),
                ResponseStatus::PsaErrorAlreadyExists
            );
            Outcome::Passed
        }
        Support::No(refusal) => {
            assert_eq!(status(f.try_generate("aes", aes)), refusal);
            Outcome::Passed.except("AES keys")
        }
    }
}

pub(crate) fn missing_and_destroyed_keys_do_not_exist<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    assert_eq!(
        status(f.try_sign("nowhere", alg, &[0; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(f.destroy("nowhere")),
        ResponseStatus::PsaErrorDoesNotExist
    );

    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    (P::EXPECTED.key_id)(&f.record("ecc").key_id);
    let old_public = f.export_public("ecc");
    f.destroy("ecc").expect("destroyed");
    assert_eq!(
        status(f.try_sign("ecc", alg, &[0; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(f.try_export_public("ecc")),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(f.destroy("ecc")),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert!(f.key_names().is_empty());
    // The name is free again, for a new key that works.
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    assert_ne!(f.export_public("ecc"), old_public, "a new key");
    let signature = f.try_sign("ecc", alg, &[0x42; 32]).expect("signed");
    f.try_verify("ecc", alg, &[0x42; 32], &signature)
        .expect("verified");
    Outcome::Passed
}

pub(crate) fn keys_of_another_application_are_invisible<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("mine", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let other = Identity {
        name: "other".into(),
        auth_type: AuthType::Direct,
        is_admin: false,
    };
    let sign = || psa_sign_hash::Request {
        key_name: "mine".into(),
        alg,
        hash: vec![0; 32],
    };
    assert_eq!(
        status(f.call_as::<PsaSignHash>(Some(&other), sign())),
        ResponseStatus::PsaErrorDoesNotExist
    );
    let destroy = psa_destroy_key::Request {
        key_name: "mine".into(),
    };
    assert_eq!(
        status(f.call_as::<PsaDestroyKey>(Some(&other), destroy)),
        ResponseStatus::PsaErrorDoesNotExist
    );
    // Without an identity, nothing is reached at all.
    assert_eq!(
        status(f.call_as::<PsaSignHash>(None, sign())),
        ResponseStatus::NotAuthenticated
    );
    // The other application may use the same name for its own key.
    let generate = psa_generate_key::Request {
        key_name: "mine".into(),
        attributes: attrs(secp_r1_pair(), 256, alg, sign_verify()),
    };
    f.call_as::<PsaGenerateKey>(Some(&other), generate)
        .expect("the other application's own key");
    f.call_as::<PsaSignHash>(Some(&other), sign())
        .expect("signed with the other application's key");
    f.try_sign("mine", alg, &[0; 32]).expect("still mine");
    Outcome::Passed
}

#[allow(deprecated)]
pub(crate) fn deprecated_generation_needs_allow_deprecated<P: Subject>() -> Outcome {
    let sha1 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha1), sign_verify());
    let strict = Fixture::<P>::new();
    assert_eq!(
        status(strict.try_generate("old", sha1)),
        ResponseStatus::DeprecatedPrimitive
    );
    assert!(strict.key_names().is_empty());

    let lenient = Fixture::<P>::with_settings(ProviderSettings {
        allow_deprecated: true,
        ..ProviderSettings::default()
    });
    lenient.generate("old", sha1);
    // Deprecation outranks the provider's own checks, as in the reference.
    let rsa_sha1 = attrs(
        Type::RsaKeyPair,
        3072,
        AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: Hash::Sha1.into(),
        },
        sign_verify(),
    );
    assert_eq!(
        status(strict.try_generate("rsa", rsa_sha1)),
        ResponseStatus::DeprecatedPrimitive
    );

    // Importing a deprecated primitive is only logged: a public key always, a key pair where
    // key pairs can be imported.
    let public_sha1 = attrs(secp_r1_public(), 0, ecdsa(Hash::Sha1), verify_only());
    strict
        .try_import("old-public", public_sha1, &lenient.export_public("old"))
        .expect("imported despite SHA-1");
    let (private, _) = fixed_secp_r1_key(256);
    let imported = strict.try_import("old", sha1, &private);
    if expect_support(P::EXPECTED.private_key_import, imported).is_some() {
        Outcome::Passed
    } else {
        Outcome::Passed.except("private-key import")
    }
}

/// FFDH is supported by no provider; whether DH keys can be held at all is per provider
/// ([`Expectations::dh_keys`]).
pub(crate) fn ffdh_agreement_is_not_supported<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = RawKeyAgreement::Ffdh;
    let derive = flags(|f| {
        f.set_derive();
    });
    let group_family = DhFamily::Rfc7919;
    let dh = attrs(
        Type::DhKeyPair { group_family },
        2048,
        KeyAgreement::Raw(alg),
        derive,
    );
    if P::EXPECTED.dh_keys {
        f.generate("dh", dh);
        let request = psa_raw_key_agreement::Request {
            alg,
            private_key_name: "dh".into(),
            peer_key: f.export_public("dh"),
        };
        assert_eq!(
            status(f.call::<PsaRawKeyAgreement>(request)),
            ResponseStatus::PsaErrorNotSupported
        );
    } else {
        assert_eq!(
            status(f.try_generate("dh", dh)),
            ResponseStatus::PsaErrorNotSupported
        );
        assert!(f.key_names().is_empty());
    }
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------------
// CanDoCrypto
// ---------------------------------------------------------------------------------------------

/// Asserts that CanDoCrypto is not served, if the expectations say so.
fn can_do_not_served<P: Subject>(f: &Fixture<P>) -> Option<Outcome> {
    if P::EXPECTED.serves(Opcode::CanDoCrypto) {
        return None;
    }
    f.assert_not_served::<CanDoCrypto>(can_do_crypto::Request {
        check_type: CheckType::Use,
        attributes: attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify()),
    });
    Some(Outcome::NotSupported("CanDoCrypto"))
}

pub(crate) fn can_do_crypto_follows_the_reference_rules<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    if let Some(outcome) = can_do_not_served(&f) {
        return outcome;
    }
    let ecdsa256 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify());
    let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
    let rsa = |bits| attrs(Type::RsaKeyPair, bits, v15, encrypt_decrypt());
    let ok = |check, attributes| f.can_do(check, attributes).is_ok();
    let no = |check, attributes| {
        status(f.can_do(check, attributes)) == ResponseStatus::PsaErrorNotSupported
    };
    // Where the providers differ: supported means Ok, otherwise exactly NotSupported.
    let expect = |supported: bool, check, attributes| {
        if supported {
            ok(check, attributes)
        } else {
            no(check, attributes)
        }
    };
    let expected = P::EXPECTED;
    let rsa_bits = |bits| expected.rsa_bits.contains(&bits);

    // USE
    assert!(ok(CheckType::Use, ecdsa256));
    assert!(ok(CheckType::Use, rsa(2048)));
    assert!(ok(CheckType::Use, rsa(0)), "0 bits is any size");
    assert!(expect(rsa_bits(3072), CheckType::Use, rsa(3072)));
    assert!(no(
        CheckType::Use,
        attrs(Type::Aes, 128, Algorithm::None, encrypt_decrypt())
    ));
    let derive_only = flags(|f| {
        f.set_derive();
    });
    let ecdh = attrs(
        secp_r1_pair(),
        256,
        KeyAgreement::Raw(RawKeyAgreement::Ecdh),
        derive_only,
    );
    assert!(
        no(CheckType::Use, ecdh),
        "derive is not among the flags USE looks at"
    );
    let mismatched = attrs(Type::RsaKeyPair, 2048, ecdsa(Hash::Sha256), sign_verify());
    assert!(no(CheckType::Use, mismatched));

    // GENERATE
    assert!(ok(CheckType::Generate, ecdsa256));
    assert!(expect(
        expected.p384 == Support::Yes,
        CheckType::Generate,
        attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify())
    ));
    assert!(expect(
        expected.aes_keys == Support::Yes,
        CheckType::Generate,
        attrs(Type::Aes, 256, Algorithm::None, UsageFlags::default())
    ));
    assert!(
        no(CheckType::Generate, ecdh),
        "GENERATE runs USE when the policy names an algorithm"
    );
    assert!(no(
        CheckType::Generate,
        attrs(Type::RsaPublicKey, 2048, v15, encrypt_decrypt())
    ));
    assert!(expect(
        expected.can_do_bare_hmac_keys,
        CheckType::Generate,
        attrs(Type::Hmac, 256, Algorithm::None, UsageFlags::default())
    ));
    let deterministic = AsymmetricSignature::DeterministicEcdsa {
        hash_alg: Hash::Sha256.into(),
    };
    assert!(expect(
        expected.deterministic_ecdsa,
        CheckType::Use,
        attrs(secp_r1_pair(), 256, deterministic, sign_verify())
    ));
    assert!(expect(
        expected.cbc_mac,
        CheckType::Generate,
        attrs(
            Type::Aes,
            128,
            Mac::FullLength(FullLengthMac::CbcMac),
            flags(|f| {
                f.set_sign_message();
            })
        )
    ));
    assert!(expect(rsa_bits(1536), CheckType::Generate, rsa(1536)));
    assert!(no(
        CheckType::Generate,
        attrs(secp_r1_pair(), 383, ecdsa(Hash::Sha256), sign_verify())
    ));
    let frp = Type::EccKeyPair {
        curve_family: EccFamily::Frp,
    };
    assert!(no(
        CheckType::Generate,
        attrs(frp, 256, ecdsa(Hash::Sha256), sign_verify())
    ));

    // IMPORT
    assert!(ok(
        CheckType::Import,
        attrs(Type::RsaPublicKey, 2048, v15, encrypt_decrypt())
    ));
    assert!(ok(
        CheckType::Import,
        attrs(Type::RsaPublicKey, 0, v15, encrypt_decrypt())
    ));
    assert!(expect(
        expected.can_do_bare_hmac_keys,
        CheckType::Import,
        attrs(Type::Hmac, 256, Algorithm::None, UsageFlags::default())
    ));
    let dh = Type::DhKeyPair {
        group_family: DhFamily::Rfc7919,
    };
    assert!(expect(
        expected.dh_keys,
        CheckType::Import,
        attrs(dh, 2048, Algorithm::None, UsageFlags::default())
    ));

    // DERIVE
    assert!(no(CheckType::Derive, ecdsa256));
    Outcome::Passed
}

/// CanDoCrypto's GENERATE answer agrees with what key generation does, over the key kinds the
/// providers differ on: a provider says it can generate exactly the keys it generates.
pub(crate) fn can_do_crypto_agrees_with_key_generation<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    if let Some(outcome) = can_do_not_served(&f) {
        return outcome;
    }
    let rsa_sign = |bits, alg| attrs(Type::RsaKeyPair, bits, alg, sign_verify());
    let rsa_crypt = |bits, alg| attrs(Type::RsaKeyPair, bits, alg, encrypt_decrypt());
    let v15_sign = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    let pss = AsymmetricSignature::RsaPss {
        hash_alg: Hash::Sha256.into(),
    };
    let oaep = AsymmetricEncryption::RsaOaep {
        hash_alg: Hash::Sha256,
    };
    let probes = [
        (
            "p256",
            attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify()),
        ),
        (
            "p384",
            attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify()),
        ),
        ("rsa-v15-sign", rsa_sign(2048, v15_sign)),
        ("rsa-pss", rsa_sign(2048, pss)),
        (
            "rsa-v15-crypt",
            rsa_crypt(2048, AsymmetricEncryption::RsaPkcs1v15Crypt),
        ),
        ("rsa-oaep", rsa_crypt(2048, oaep)),
        ("rsa-1536", rsa_sign(1536, v15_sign)),
        (
            "aes-gcm",
            attrs(
                Type::Aes,
                256,
                Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm),
                encrypt_decrypt(),
            ),
        ),
        (
            "ecc-public",
            attrs(secp_r1_public(), 256, ecdsa(Hash::Sha256), sign_verify()),
        ),
    ];
    let mut generated = Vec::new();
    for (name, attributes) in probes {
        let answer = f.can_do(CheckType::Generate, attributes);
        let result = f.try_generate(name, attributes);
        match answer {
            Ok(()) => {
                result.unwrap_or_else(|refusal| {
                    panic!("{name}: CanDoCrypto says yes, generation answers {refusal:?}")
                });
                generated.push(name.to_owned());
            }
            Err(answer) => {
                assert_eq!(answer, ResponseStatus::PsaErrorNotSupported, "{name}");
                // Panics if the key was generated after all.
                status(result);
            }
        }
    }
    generated.sort();
    assert_eq!(f.key_names(), generated);
    Outcome::Passed
}
