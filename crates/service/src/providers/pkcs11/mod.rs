//! The PKCS #11 provider (provider id 2): keys generated, imported and used inside a PKCS #11
//! token (an HSM, a smart card, SoftHSM), through the token's own library loaded at start-up
//! with the `cryptoki` crate.
//!
//! # What it does
//!
//! RSA key pairs (PKCS#1 v1.5 and PSS signatures of a hash, PKCS#1 v1.5 and OAEP encryption)
//! and ECC key pairs on SECP-R1 (P-192 to P-521), secp256k1 and Brainpool P-R1 (ECDSA of a
//! hash), with SHA-1 and SHA-2 (224 to 512); public keys of both families can be imported for
//! verification and encryption. Served operations: GenerateKey, ImportKey, DestroyKey,
//! ExportPublicKey, SignHash, VerifyHash, AsymmetricEncrypt, AsymmetricDecrypt,
//! GenerateRandom and CanDoCrypto (docs/protocol.md#operations-per-provider); nothing else is registered, so
//! ListOpcodes reports exactly these. CanDoCrypto also asks the token which mechanisms it has.
//!
//! # Keys on the token
//!
//! A key is a pair of token objects (or one public object for an imported public key) sharing
//! a `CKA_ID`: a random 32-bit number, big-endian, unused in the key store and on the token;
//! the key store row records it as the key's id (docs/protocol.md#key-store). Private keys are
//! `CKA_SENSITIVE` and not `CKA_EXTRACTABLE`: no private key leaves the token, and ExportKey is
//! not served. With `allow_export = false`, keys whose policy has the export flag are refused
//! (`NotPermitted`). Creation follows the crash protocol of [`KeyToCreate::create`](super::KeyToCreate::create);
//! [`Provider::discard`] destroys every token object with the key's `CKA_ID`. At start-up the
//! key store rows of this provider whose objects are no longer on the token are dropped
//! (docs/protocol.md#key-store).
//!
//! # Operations
//!
//! RSA PKCS#1 v1.5 signs `DigestInfo ‖ hash` with `CKM_RSA_PKCS`, PSS uses `CKM_RSA_PKCS_PSS`
//! (MGF1 with the same hash, salt as long as the hash or as the key allows), OAEP
//! `CKM_RSA_PKCS_OAEP` (the request's salt is the label), ECDSA `CKM_ECDSA` on the hash;
//! ECDSA signatures are `r ‖ s`. With `software_public_operations`, verification and
//! encryption are done with OpenSSL on the public key read from the token (and kept in
//! memory), not by the token. Decryption answers `InvalidPadding` for every failure of the
//! decryption itself.
//!
//! Start-up, the library context, the login and the session pool are in `token`; return values
//! in `error`; key management in `keys`, signatures in `sign`, encryption in `asym`, the
//! software public-key operations in `software`, CanDoCrypto in `capability`.

mod asym;
mod capability;
mod error;
mod keys;
mod random;
mod sign;
mod software;
#[cfg(test)]
mod tests;
mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ::openssl::nid::Nid;
use ::openssl::pkey::{PKey, Public};
use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::list_providers::ProviderInfo;
use cryptoki::error::Error as CkError;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use psa_crypto::types::key::EccFamily;
use psa_crypto::types::status::Error as PsaError;

pub use self::token::StartError;
use self::token::{PooledSession, Token};
use super::Provider;
use crate::config::Pkcs11Config;
use crate::dispatch::Registrar;
use crate::error::ProviderError;
use crate::keystore::{KeyRecord, KeyStore};

/// Fixed identity of the PKCS #11 provider.
pub const PKCS11_UUID: &str = "30e39502-eba6-4d60-a4af-c518b7f5e38f";

/// An elliptic curve this provider handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Curve {
    family: EccFamily,
    bits: usize,
    /// DER of the curve's object identifier (`CKA_EC_PARAMS`).
    oid: &'static [u8],
    nid: Nid,
}

impl Curve {
    /// Bytes of a coordinate or scalar.
    fn bytes(self) -> usize {
        self.bits.div_ceil(8)
    }
}

const CURVES: &[Curve] = &[
    Curve {
        family: EccFamily::SecpR1,
        bits: 192,
        oid: &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01],
        nid: Nid::X9_62_PRIME192V1,
    },
    Curve {
        family: EccFamily::SecpR1,
        bits: 224,
        oid: &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21],
        nid: Nid::SECP224R1,
    },
    Curve {
        family: EccFamily::SecpR1,
        bits: 256,
        oid: &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        nid: Nid::X9_62_PRIME256V1,
    },
    Curve {
        family: EccFamily::SecpR1,
        bits: 384,
        oid: &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
        nid: Nid::SECP384R1,
    },
    Curve {
        family: EccFamily::SecpR1,
        bits: 521,
        oid: &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
        nid: Nid::SECP521R1,
    },
    Curve {
        family: EccFamily::SecpK1,
        bits: 256,
        oid: &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
        nid: Nid::SECP256K1,
    },
    Curve {
        family: EccFamily::BrainpoolPR1,
        bits: 256,
        oid: &[
            0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07,
        ],
        nid: Nid::BRAINPOOL_P256R1,
    },
    Curve {
        family: EccFamily::BrainpoolPR1,
        bits: 384,
        oid: &[
            0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b,
        ],
        nid: Nid::BRAINPOOL_P384R1,
    },
    Curve {
        family: EccFamily::BrainpoolPR1,
        bits: 512,
        oid: &[
            0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d,
        ],
        nid: Nid::BRAINPOOL_P512R1,
    },
];

/// The curve of `family` with `bits` bits.
pub(super) fn curve(family: EccFamily, bits: usize) -> Option<Curve> {
    CURVES
        .iter()
        .find(|c| c.family == family && c.bits == bits)
        .copied()
}

/// The RSA key sizes this provider accepts: whole bytes, at least 1024 bits (the token may set
/// its own bounds, which CanDoCrypto reports).
pub(super) fn rsa_bits_ok(bits: usize) -> bool {
    bits >= 1024 && bits % 8 == 0 && bits <= 16384
}

/// Which object of a key an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Half {
    Private,
    Public,
}

impl Half {
    fn class(self) -> ObjectClass {
        match self {
            Half::Private => ObjectClass::PRIVATE_KEY,
            Half::Public => ObjectClass::PUBLIC_KEY,
        }
    }
}

/// The public half of a key, read from the token once.
#[derive(Debug)]
struct PublicKey {
    /// PsaExportPublicKey's data (docs/protocol.md#key-data-formats).
    export: Vec<u8>,
    /// The key for the software public operations and checks.
    pkey: PKey<Public>,
    /// Bytes of the RSA modulus, or of the curve's field.
    size: usize,
}

/// The mechanisms of the token this provider uses, read at start-up.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Mechanisms {
    rsa_generate: Option<(usize, usize)>,
    ec_generate: bool,
    rsa_pkcs: bool,
    rsa_pss: bool,
    rsa_oaep: bool,
    ecdsa: bool,
}

/// Object handles by (`CKA_ID`, half).
type HandleCache = HashMap<(Vec<u8>, Half), ObjectHandle>;

/// The PKCS #11 provider.
#[derive(Debug)]
pub struct Pkcs11Provider {
    name: String,
    token: Token,
    mechanisms: Mechanisms,
    software_public_operations: bool,
    allow_export: bool,
    /// Object handles by (`CKA_ID`, half), with the library generation they were found in:
    /// handles are valid in every session of the process until the library is finalised.
    handles: Mutex<(u64, HandleCache)>,
    /// Public keys by `CKA_ID`.
    publics: Mutex<HashMap<Vec<u8>, Arc<PublicKey>>>,
    /// Held while a key id is chosen and its objects made, so that two creations cannot pick
    /// the same id.
    creating: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pkcs11Provider {
    /// Opens the configured token (see `token`), logs in and drops the key store rows of
    /// provider `name` whose token objects are gone.
    ///
    /// # Errors
    /// A [`StartError`] naming the cause: library missing or not loadable, slot or serial
    /// number not found, token not initialised, PIN refused, ...
    pub fn new(
        name: String,
        config: &Pkcs11Config,
        store: &KeyStore,
    ) -> Result<Pkcs11Provider, StartError> {
        let token = Token::open(config)?;
        let mechanisms = match token.pool.get() {
            Ok(session) => capability::read_mechanisms(&session),
            // The library was initialised again meanwhile, and the token is gone.
            Err(status) => {
                return Err(StartError::Token {
                    slot: config.slot_number.unwrap_or_default(),
                    action: "reading its mechanisms",
                    reason: format!("{status:?}"),
                })
            }
        };
        let provider = Pkcs11Provider {
            name,
            token,
            mechanisms,
            software_public_operations: config.software_public_operations,
            allow_export: config.allow_export,
            handles: Mutex::default(),
            publics: Mutex::default(),
            creating: Mutex::default(),
        };
        provider.drop_vanished_keys(store);
        Ok(provider)
    }

    /// Drops the store rows of this provider whose key has no object on the token.
    fn drop_vanished_keys(&self, store: &KeyStore) {
        let Ok(session) = self.token.pool.get() else {
            return;
        };
        for (identity, record) in store.list_for_provider(&self.name) {
            let found = {
                let _list = session.object_list();
                session.find_objects(&[
                    Attribute::Token(true),
                    Attribute::Id(record.key_id.to_vec()),
                ])
            };
            match found {
                Ok(objects) if objects.is_empty() && store.forget_committed(&identity).is_ok() => {
                    tracing::warn!(
                        application = %identity.application(),
                        key = %identity.key_name(),
                        "key no longer on the PKCS #11 token: its name was dropped"
                    );
                }
                _ => {}
            }
        }
    }

    /// The handle of the `half` object of key `key_id`, from the cache or the token.
    fn find(
        &self,
        session: &PooledSession<'_>,
        key_id: &[u8],
        half: Half,
    ) -> Result<Option<ObjectHandle>, PsaError> {
        let cache_key = (key_id.to_vec(), half);
        {
            let mut handles = lock(&self.handles);
            if handles.0 != session.generation() {
                // Found in a finalised generation: the numbers may now name other objects.
                *handles = (session.generation(), HashMap::new());
            }
            if let Some(handle) = handles.1.get(&cache_key) {
                return Ok(Some(*handle));
            }
        }
        let found = {
            let _list = session.object_list();
            session.find_objects(&[
                Attribute::Token(true),
                Attribute::Class(half.class()),
                Attribute::Id(key_id.to_vec()),
            ])
        }
        .map_err(error::psa)?;
        let handle = found.first().copied();
        if let Some(handle) = handle {
            let mut handles = lock(&self.handles);
            if handles.0 == session.generation() {
                handles.1.insert(cache_key, handle);
            }
        }
        Ok(handle)
    }

    /// Forgets what is cached about key `key_id`.
    fn forget(&self, key_id: &[u8]) {
        let mut handles = lock(&self.handles);
        handles.1.remove(&(key_id.to_vec(), Half::Private));
        handles.1.remove(&(key_id.to_vec(), Half::Public));
        lock(&self.publics).remove(key_id);
    }

    /// Runs `op` on the `half` object of key `record` in a pooled session; `missing` when the
    /// key has no such object, `map` for the library's errors. A handle found stale (the
    /// object was replaced behind this provider's back) is looked up again once.
    fn with_object<T>(
        &self,
        record: &KeyRecord,
        half: Half,
        map: fn(CkError) -> PsaError,
        mut op: impl FnMut(&Session, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<T, PsaError> {
        let session = self.token.pool.get()?;
        let mut retried = false;
        loop {
            let handle = match self.find(&session, &record.key_id, half)? {
                Some(handle) => handle,
                // A private operation on an imported public key.
                None if half == Half::Private && record.attributes.key_type.is_public_key() => {
                    return Err(PsaError::InvalidArgument)
                }
                None => return Err(PsaError::DoesNotExist),
            };
            match op(&session, handle) {
                Ok(value) => return Ok(value),
                Err(e) if !retried && error::stale_handle(&e) => {
                    self.forget(&record.key_id);
                    retried = true;
                }
                Err(e) => return Err(map(e)),
            }
        }
    }

    /// Destroys every token object with `CKA_ID` `key_id`.
    fn destroy_objects(&self, key_id: &[u8]) -> Result<(), PsaError> {
        self.forget(key_id);
        let session = self.token.pool.get()?;
        let _list = session.object_list();
        let objects = session
            .find_objects(&[Attribute::Token(true), Attribute::Id(key_id.to_vec())])
            .map_err(error::psa)?;
        for object in objects {
            session.destroy_object(object).map_err(error::psa)?;
        }
        Ok(())
    }

    /// The mechanisms the token offers.
    pub(super) fn mechanisms(&self) -> Mechanisms {
        self.mechanisms
    }
}

impl Provider for Pkcs11Provider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            uuid: uuid::Uuid::parse_str(PKCS11_UUID).unwrap_or_default(),
            description: "Provider keeping keys inside a PKCS #11 token and using them there, \
                          through the token's library"
                .to_owned(),
            vendor: "OASIS Standard.".to_owned(),
            version_maj: 0,
            version_min: 1,
            version_rev: 0,
            id: ProviderId::Pkcs11,
            max_key_name_len: None,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn register(self: Arc<Self>, registrar: &mut Registrar<'_>) {
        super::register_pkcs11_operations(&self, registrar);
    }

    fn discard(&self, key_id: &[u8]) -> Result<(), ProviderError> {
        Ok(self.destroy_objects(key_id)?)
    }
}
