//! The OpenSSL provider (answers as provider id 1, like Mbed Crypto, which upstream clients
//! expect): software cryptography on OpenSSL 3 through the `openssl` crate, with keys kept
//! encrypted at rest in the key store.
//!
//! # Keys at rest
//!
//! There is no back-end key store: the key store row of each key holds, as its `key_id`, the key
//! material wrapped with AES-256-GCM under a key-encryption key (KEK) read from a file, bound to
//! the key's identity and attributes (format and checks in `kek`). The KEK file is made on the
//! first start; a missing KEK while keys exist, or a KEK that decrypts none of them, stops the
//! start with a message naming the file ([`OpenSslProvider::new`]). Creating a key is a single
//! store transaction (the crash protocol of [`KeyToCreate::create`](super::KeyToCreate::create) still applies), and
//! [`Provider::discard`] has nothing to remove.
//!
//! # Speed and concurrency
//!
//! OpenSSL 3 is thread-safe; every operation works on objects of its own (contexts are made per
//! call; parsed keys are shared read-only), so requests run in parallel without a provider lock.
//! Parsed keys are kept in a bounded cache (`cache`), so a hot key is unwrapped and parsed once;
//! operations that need only the public key (verification, encryption, public export) use the
//! public half.
//!
//! # Behaviour
//!
//! The Mbed Crypto provider is the reference: the same operations, formats, policy checks and
//! statuses, with the same RSA sizes (1024, 2048, 4096 for generation and a non-zero
//! `key_bits`; on an import that takes the size from the data, any multiple of 8 from 1024 to
//! 8192 bits). The tests of `tests::against_mbed` send the same requests to both providers,
//! one family of operations per test, and compare statuses and outputs; each known difference
//! is a variant of its `Difference` table, and a difference that appears or disappears fails
//! them. The differences, all where one of the two lacks a feature:
//!
//! - only in Mbed Crypto: deterministic ECDSA (OpenSSL 3.0 cannot make RFC 6979 nonces:
//!   `NotSupported` here), DH keys, DES, Camellia-GCM and Camellia-CCM, RSA keys under 1024 bits,
//!   and a CanDoCrypto yes to generating keys on the SECT curves (SectK1 409, say), which this
//!   provider has none of (`NotSupported`);
//! - only here: SHA-512/224 and SHA-512/256, brainpoolP192r1, P224r1 and P320r1, Camellia-OFB,
//!   Camellia-CMAC, ChaCha20-Poly1305 with a shortened tag (4 to 16 bytes), imported RSA keys
//!   over 4096 bits; CanDoCrypto also says whether the algorithm itself is implemented, and that
//!   HMAC and derivation keys can be generated.
//!
//! RSA PKCS#1 v1.5 decryption answers `InvalidPadding` for every failure of the decryption
//! itself; MAC and hash comparisons are constant-time.
//!
//! The operations are split by family as in the Mbed provider: `keys`, `sign`, `asym`, `aead`,
//! `cipher`, `mac`, `hash`, `random`, `agreement`, `capability`; key types in `material`,
//! OpenSSL errors in `error`. There is no `unsafe` code.

mod aead;
mod agreement;
mod asym;
mod cache;
mod capability;
mod cipher;
mod error;
mod hash;
mod kek;
mod keys;
mod mac;
mod material;
mod random;
mod sign;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::list_providers::ProviderInfo;
use psa_crypto::types::status::Error as PsaError;

use self::cache::KeyCache;
use self::kek::Kek;
pub use self::kek::KekError;
use self::material::LoadedKey;
use super::{encode_key_identity, Provider, ResolvedKey};
use crate::dispatch::Registrar;
use crate::error::ProviderError;
use crate::keystore::{KeyRecord, KeyStore};

/// Fixed identity of the OpenSSL provider.
pub const OPENSSL_UUID: &str = "9037cba9-4ba6-4809-8c49-d946ef684d7d";

/// The OpenSSL provider.
#[derive(Debug)]
pub struct OpenSslProvider {
    name: String,
    kek: Kek,
    cache: KeyCache,
}

impl OpenSslProvider {
    /// Makes a provider named `name` whose keys are wrapped under the KEK in `kek_path`, after
    /// checking that KEK against the keys `store` holds for this provider.
    ///
    /// - No KEK file and no key of this provider in the store: a new KEK file is created (mode
    ///   0600).
    /// - No KEK file but keys in the store: refused (a new KEK could not decrypt them).
    /// - A KEK file: it must be a regular file of exactly 32 bytes, owned by this user and not
    ///   accessible to group or others; if the store holds keys of this provider, at least one
    ///   of them must unwrap with it, or it is not the KEK they were made with.
    ///
    /// # Errors
    /// A [`KekError`] naming the KEK file and what is wrong with it.
    pub fn new(name: String, kek_path: &Path, store: &KeyStore) -> Result<Self, KekError> {
        let keys = store.list_for_provider(&name);
        let kek = match Kek::read(kek_path)? {
            Some(kek) => {
                check_kek(&kek, &keys).map_err(|reason| KekError::new(kek_path, reason))?;
                kek
            }
            None if !keys.is_empty() => {
                return Err(KekError::new(
                    kek_path,
                    format!(
                        "is missing, but the key store holds {} key(s) of provider \"{name}\" \
                         encrypted under it; restore the file (a new key-encryption key could \
                         not decrypt them)",
                        keys.len()
                    ),
                ));
            }
            None => Kek::create(kek_path)?,
        };
        Ok(OpenSslProvider {
            name,
            kek,
            cache: KeyCache::new(cache::CAPACITY),
        })
    }

    /// The parsed key of `key`, from the cache or unwrapped.
    ///
    /// # Errors
    /// `DataCorrupt` when the record's blob does not unwrap (altered, moved from another key,
    /// or made under another KEK) or does not parse.
    fn load(&self, key: &ResolvedKey<'_>) -> Result<Arc<LoadedKey>, ProviderError> {
        let record = key.record();
        let ad = kek::associated_data(&key.identity_encoding(), record.attributes)?;
        if let Some(key) = self.cache.get(&ad, &record.key_id) {
            return Ok(key);
        }
        let plaintext = self.kek.unwrap(&ad, &record.key_id)?;
        let loaded = material::load(record.attributes.key_type, &plaintext)
            .map_err(|_| PsaError::DataCorrupt)?;
        let loaded = Arc::new(loaded);
        self.cache
            .insert(ad, record.key_id.to_vec(), Arc::clone(&loaded));
        Ok(loaded)
    }
}

/// Checks the KEK against the keys of the provider: one that unwraps is enough (a row that does
/// not is reported when used, as corrupt).
fn check_kek(kek: &Kek, keys: &[(crate::keystore::KeyIdentity, KeyRecord)]) -> Result<(), String> {
    if keys.is_empty() {
        return Ok(());
    }
    for (identity, record) in keys {
        let Ok(ad) = kek::associated_data(&encode_key_identity(identity), record.attributes) else {
            continue;
        };
        if kek.unwrap(&ad, &record.key_id).is_ok() {
            return Ok(());
        }
    }
    Err(format!(
        "decrypts none of the {} key(s) the key store holds for this provider: it is not the \
         key-encryption key they were made with (restore the original file), or the keys were \
         not made by the OpenSSL provider",
        keys.len()
    ))
}

impl Provider for OpenSslProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            uuid: uuid::Uuid::parse_str(OPENSSL_UUID).unwrap_or_default(),
            description: "Software provider implemented on OpenSSL 3; keys are kept in the key \
                          store, encrypted at rest with AES-256-GCM under a key-encryption key"
                .to_owned(),
            vendor: "OpenSSL".to_owned(),
            version_maj: 0,
            version_min: 1,
            version_rev: 0,
            id: ProviderId::MbedCrypto,
            max_key_name_len: None,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn register(self: Arc<Self>, registrar: &mut Registrar<'_>) {
        super::register_openssl_operations(&self, registrar);
    }

    /// The key material lives in the key-store row itself: once the row is gone, so is the key.
    fn discard(&self, _key_id: &[u8]) -> Result<(), ProviderError> {
        Ok(())
    }
}
