//! The provider conformance suite: one set of behaviours, written once, run against every crypto
//! provider by [`conformance_tests!`].
//!
//! Each behaviour is a function generic over the provider under test ([`Subject`]). It calls the
//! provider as a client does: the request is encoded, dispatched through a [`Registry`] built
//! from the provider's own `register`, and the response decoded. So an operation the provider
//! does not register answers exactly what a client gets, `PsaErrorNotSupported`.
//!
//! What a provider serves is stated, not discovered: its [`Expectations`] name its family, and
//! the operations the table says that family serves are the ones it must advertise (checked
//! exactly by `advertises_exactly_the_expected_operations`) and, for each
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
//! This module holds the harness (the [`Subject`] trait, [`Expectations`], [`Outcome`],
//! [`Fixture`] and the request helpers); the behaviours are filed by family as the providers'
//! own files are: `registration`, `sign`, `asym`, `aead`, `cipher`, `mac` (with hashes and
//! random numbers), `agreement`, `keys` and `capability`.
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

mod aead;
mod agreement;
mod asym;
mod capability;
mod cipher;
mod keys;
mod mac;
mod registration;
mod sign;

pub(crate) use self::aead::*;
pub(crate) use self::agreement::*;
pub(crate) use self::asym::*;
pub(crate) use self::capability::*;
pub(crate) use self::cipher::*;
pub(crate) use self::keys::*;
pub(crate) use self::mac::*;
pub(crate) use self::registration::*;
pub(crate) use self::sign::*;

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
    /// The provider's family: it registers exactly the operations the table says the family
    /// serves (and so advertises them in ListOpcodes). Any other operation answers
    /// `PsaErrorNotSupported`.
    pub family: Family,
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
        opcode.is_served_by(self.family)
    }
}

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

/// What `every_key_use_needs_its_usage_flag` gathers while each family tries its key uses with
/// keys whose policy has no usage flag: the outcome so far and the operations tried, which must
/// be every operation whose key the table says passes a policy check
/// ([`Opcode::checks_key_policy`]).
pub(crate) struct KeyUses {
    outcome: Outcome,
    tried: BTreeSet<Opcode>,
}

impl KeyUses {
    pub(crate) fn new() -> Self {
        KeyUses {
            outcome: Outcome::Passed,
            tried: BTreeSet::new(),
        }
    }

    /// Calls `O` with `request`, whose key's policy lacks the usage `O` needs, and asserts the
    /// refusal: `PsaErrorNotPermitted`, or `PsaErrorNotSupported` when the provider does not
    /// serve `O` (then `O` is one of the outcome's refused parts).
    pub(crate) fn refused<P: Subject, O: Operation>(
        &mut self,
        f: &Fixture<P>,
        request: O::Request,
    ) {
        let _ = self.tried.insert(O::OPCODE);
        if !P::EXPECTED.serves(O::OPCODE) {
            f.assert_not_served::<O>(request);
            let outcome = std::mem::replace(&mut self.outcome, Outcome::Passed);
            self.outcome = outcome.except(O::OPCODE.name());
            return;
        }
        assert_eq!(
            status(f.call::<O>(request)),
            ResponseStatus::PsaErrorNotPermitted,
            "{} with a key whose policy lacks the usage",
            O::OPCODE
        );
    }

    /// The outcome, once every operation whose key passes a policy check was tried.
    pub(crate) fn finish(self) -> Outcome {
        let policed: BTreeSet<Opcode> = Opcode::ALL
            .iter()
            .copied()
            .filter(|opcode| opcode.checks_key_policy())
            .collect();
        assert_eq!(
            self.tried, policed,
            "the operations tried without their usage flag are those the table gives a policy check"
        );
        self.outcome
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
