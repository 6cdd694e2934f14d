#![allow(unsafe_code)]
//! Direct calls into Mbed TLS's PSA Crypto C API, for the few things `psa-crypto` 0.13's safe
//! functions cannot do. This is the only module of the service allowed `unsafe` code.
//!
//! - Creating keys. `psa-crypto`'s attribute conversion checks the key size, and for SECP-R1
//!   accepts 284 bits instead of 384, so secp384r1 keys cannot be generated or imported through
//!   it. Here SECP-R1 sizes are checked against the real list, the attributes are converted with
//!   no size, and the size is set afterwards with `psa_set_key_bits`.
//! - Destroying keys. `psa-crypto`'s `destroy` is an `unsafe fn`: destroying a key another thread
//!   is using is undefined behaviour. The PSA lock rules that out, as explained at the call.
//! - Reading a key's size. `psa-crypto`'s `Attributes::from_key_id` (and `Id::from_persistent_key_id`,
//!   which calls it) converts the whole policy back and fails for every key whose algorithm is
//!   an unauthenticated cipher; only the size is needed, and read here.
//! - Usage flags. `psa-crypto`'s conversion drops `sign_message` and `verify_message`, so a MAC
//!   key with only those flags would be refused by Mbed TLS; the flags are set here in full.
//! - Unauthenticated ciphers. `psa-crypto`'s one-shot cipher functions always set an IV, which
//!   Mbed TLS refuses for ECB; the multi-part calls are driven here, setting an IV only when
//!   there is one.
//!
//! Every function takes the provider's [`PsaGuard`]: proof that the caller holds the PSA lock,
//! so no other thread is inside Mbed TLS while these calls run.

use psa_crypto::types::algorithm::Cipher;
use psa_crypto::types::key::{Attributes, EccFamily, Id, Lifetime, Type, UsageFlags};
use psa_crypto::types::status::{Error as PsaError, Status};
use psa_crypto_sys::{psa_cipher_operation_t, psa_key_attributes_t, psa_key_usage_t, psa_status_t};

use super::PsaGuard;

/// The SECP-R1 curve sizes (secp192r1 to secp521r1); 0 takes the size from the key data.
const SECP_R1_BITS: [usize; 6] = [0, 192, 224, 256, 384, 521];

fn check(status: psa_status_t) -> Result<(), PsaError> {
    Status::from(status).to_result()
}

/// The PSA usage mask of `flags`, every flag included.
///
/// A signing key allowed to sign (verify) messages is also given the hash flag in Mbed TLS:
/// messages are signed here as hash-then-sign, through `psa_sign_hash`. The caller's own flags
/// stay as given in the key store, and the service checks them before every operation, so a
/// key without `sign_hash` still cannot be used by PsaSignHash.
fn usage_mask(flags: UsageFlags, signs: bool) -> psa_key_usage_t {
    let mut mask = [
        (flags.export(), psa_crypto_sys::PSA_KEY_USAGE_EXPORT),
        (flags.copy(), psa_crypto_sys::PSA_KEY_USAGE_COPY),
        (flags.cache(), psa_crypto_sys::PSA_KEY_USAGE_CACHE),
        (flags.encrypt(), psa_crypto_sys::PSA_KEY_USAGE_ENCRYPT),
        (flags.decrypt(), psa_crypto_sys::PSA_KEY_USAGE_DECRYPT),
        (
            flags.sign_message(),
            psa_crypto_sys::PSA_KEY_USAGE_SIGN_MESSAGE,
        ),
        (
            flags.verify_message(),
            psa_crypto_sys::PSA_KEY_USAGE_VERIFY_MESSAGE,
        ),
        (flags.sign_hash(), psa_crypto_sys::PSA_KEY_USAGE_SIGN_HASH),
        (
            flags.verify_hash(),
            psa_crypto_sys::PSA_KEY_USAGE_VERIFY_HASH,
        ),
        (flags.derive(), psa_crypto_sys::PSA_KEY_USAGE_DERIVE),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .fold(0, |mask, (_, bit)| mask | bit);
    if signs && flags.sign_message() {
        mask |= psa_crypto_sys::PSA_KEY_USAGE_SIGN_HASH;
    }
    if signs && flags.verify_message() {
        mask |= psa_crypto_sys::PSA_KEY_USAGE_VERIFY_HASH;
    }
    mask
}

/// PSA attributes of a new persistent key, reset when dropped.
struct KeyAttributes(psa_key_attributes_t);

impl KeyAttributes {
    /// Converts `attributes`, with `psa-crypto`'s size checks except for SECP-R1, and with every
    /// usage flag (see the module documentation).
    ///
    /// # Errors
    /// `InvalidArgument` for a size the curve does not have; `NotSupported` for a type or
    /// algorithm PSA cannot represent.
    fn new(attributes: Attributes) -> Result<Self, PsaError> {
        let attributes = Attributes {
            lifetime: Lifetime::Persistent,
            ..attributes
        };
        let secp_r1 = matches!(
            attributes.key_type,
            Type::EccKeyPair {
                curve_family: EccFamily::SecpR1
            } | Type::EccPublicKey {
                curve_family: EccFamily::SecpR1
            }
        );
        let mut converted = if secp_r1 {
            if !SECP_R1_BITS.contains(&attributes.bits) {
                return Err(PsaError::InvalidArgument);
            }
            let mut converted = KeyAttributes(
                Attributes {
                    bits: 0,
                    ..attributes
                }
                .try_into()?,
            );
            // SAFETY: `converted.0` is an initialised attribute structure owned by this
            // function; the setter only writes its size field.
            unsafe { psa_crypto_sys::psa_set_key_bits(&mut converted.0, attributes.bits) };
            converted
        } else {
            KeyAttributes(attributes.try_into()?)
        };
        let signs = matches!(
            attributes.policy.permitted_algorithms,
            psa_crypto::types::algorithm::Algorithm::AsymmetricSignature(_)
        );
        let usage = usage_mask(attributes.policy.usage_flags, signs);
        // SAFETY: `converted.0` is an initialised attribute structure owned by this function;
        // the setter only writes its usage field.
        unsafe { psa_crypto_sys::psa_set_key_usage_flags(&mut converted.0, usage) };
        Ok(converted)
    }

    /// Converts `attributes` and gives the key the persistent id `id`.
    fn with_id(attributes: Attributes, id: u32) -> Result<Self, PsaError> {
        let mut converted = KeyAttributes::new(attributes)?;
        // SAFETY: `converted.0` is an initialised attribute structure owned by this function;
        // the setter only writes its id (and, for a volatile lifetime, its lifetime) field.
        unsafe { psa_crypto_sys::psa_set_key_id(&mut converted.0, id) };
        Ok(converted)
    }
}

impl Drop for KeyAttributes {
    fn drop(&mut self) {
        // SAFETY: the structure is initialised and owned here; resetting frees what it owns
        // (nothing, given the setters used) and zeroes it.
        unsafe { psa_crypto_sys::psa_reset_key_attributes(&mut self.0) };
    }
}

/// Whether `attributes` can be given to Mbed TLS (CanDoCrypto's provider pre-check).
///
/// # Errors
/// As the conversion: `InvalidArgument` for an invalid size, `NotSupported` for an unknown
/// type or curve family.
pub(super) fn check_representable(
    _lock: &PsaGuard,
    attributes: Attributes,
) -> Result<(), PsaError> {
    KeyAttributes::new(attributes).map(drop)
}

/// Generates a persistent key with id `id`.
///
/// # Errors
/// The PSA status: `AlreadyExists` when `id` is taken, `NotSupported`/`InvalidArgument` for
/// what Mbed TLS cannot generate.
pub(super) fn generate_key(
    _lock: &PsaGuard,
    attributes: Attributes,
    id: u32,
) -> Result<(), PsaError> {
    psa_crypto::initialized()?;
    let converted = KeyAttributes::with_id(attributes, id)?;
    let mut created = 0;
    // SAFETY: `converted.0` is a valid attribute structure and `created` a valid place for the
    // id Mbed TLS writes; both outlive the call. The PSA lock is held (`_lock`).
    check(unsafe { psa_crypto_sys::psa_generate_key(&converted.0, &mut created) })
}

/// Imports `data` as a persistent key with id `id`.
///
/// # Errors
/// The PSA status: `InvalidArgument` for malformed data or a size that does not match it,
/// `AlreadyExists` when `id` is taken.
pub(super) fn import_key(
    _lock: &PsaGuard,
    attributes: Attributes,
    id: u32,
    data: &[u8],
) -> Result<(), PsaError> {
    psa_crypto::initialized()?;
    let converted = KeyAttributes::with_id(attributes, id)?;
    let mut created = 0;
    // SAFETY: `converted.0` is a valid attribute structure, `data` is valid for reads of
    // `data.len()` bytes and `created` is a valid place for the id Mbed TLS writes; all outlive
    // the call. The PSA lock is held (`_lock`).
    check(unsafe {
        psa_crypto_sys::psa_import_key(&converted.0, data.as_ptr(), data.len(), &mut created)
    })
}

/// The size in bits of the key of persistent id `key`; fails when there is no such key.
///
/// # Errors
/// The PSA status: `InvalidHandle` (or `DoesNotExist`) when the key does not exist.
pub(super) fn key_bits(_lock: &PsaGuard, key: u32) -> Result<usize, PsaError> {
    psa_crypto::initialized()?;
    // SAFETY: returns a fresh, zero-initialised attribute structure; no pointer is involved.
    let mut attributes = KeyAttributes(unsafe { psa_crypto_sys::psa_key_attributes_init() });
    // SAFETY: `attributes.0` is a valid attribute structure to write to, owned here and reset
    // when dropped. The PSA lock is held (`_lock`).
    check(unsafe { psa_crypto_sys::psa_get_key_attributes(key, &mut attributes.0) })?;
    // SAFETY: reads a field of an initialised attribute structure.
    Ok(unsafe { psa_crypto_sys::psa_get_key_bits(&attributes.0) })
}

/// Destroys a key and its persistent storage.
///
/// # Errors
/// The PSA status.
pub(super) fn destroy_key(_lock: &PsaGuard, id: Id) -> Result<(), PsaError> {
    // SAFETY: `destroy` is unsafe because destroying a key while another thread uses it is
    // undefined behaviour. The PSA lock is held for the whole call, so no other thread is inside
    // Mbed TLS, and no operation on the key outlives a lock section: the provider runs every
    // operation (including multi-part cipher operations) to completion within one section.
    unsafe { psa_crypto::operations::key_management::destroy(id) }
}

/// Runs a whole unauthenticated cipher operation with the key of persistent id `key`.
///
/// `iv` is set only when not empty (ECB and some stream ciphers take none). `output` must hold
/// the input plus one block. Returns the number of bytes written.
///
/// # Errors
/// The PSA status: `InvalidPadding` for bad PKCS#7 padding on decryption, `InvalidArgument` for
/// a wrong IV or input length, `NotSupported` for a mode Mbed TLS lacks.
pub(super) fn cipher(
    _lock: &PsaGuard,
    encrypt: bool,
    key: u32,
    alg: Cipher,
    iv: &[u8],
    input: &[u8],
    output: &mut [u8],
) -> Result<usize, PsaError> {
    psa_crypto::initialized()?;
    // SAFETY: returns a fresh, zero-initialised operation structure; no pointer is involved.
    let mut operation = unsafe { psa_crypto_sys::psa_cipher_operation_init() };
    let result = run_cipher(&mut operation, encrypt, key, alg, iv, input, output);
    if result.is_err() {
        // SAFETY: `operation` was initialised above; aborting is valid in every state of an
        // initialised operation (also after Mbed TLS aborted it itself) and frees its context.
        let _ = unsafe { psa_crypto_sys::psa_cipher_abort(&mut operation) };
    }
    result
}

fn run_cipher(
    operation: &mut psa_cipher_operation_t,
    encrypt: bool,
    key: u32,
    alg: Cipher,
    iv: &[u8],
    input: &[u8],
    output: &mut [u8],
) -> Result<usize, PsaError> {
    let setup = if encrypt {
        psa_crypto_sys::psa_cipher_encrypt_setup
    } else {
        psa_crypto_sys::psa_cipher_decrypt_setup
    };
    // SAFETY: `operation` is an initialised, inactive operation borrowed for the call.
    check(unsafe { setup(operation, key, alg.into()) })?;
    if !iv.is_empty() {
        // SAFETY: `operation` is set up; `iv` is valid for reads of `iv.len()` bytes.
        check(unsafe { psa_crypto_sys::psa_cipher_set_iv(operation, iv.as_ptr(), iv.len()) })?;
    }
    let mut updated = 0;
    // SAFETY: `operation` is set up; `input` is valid for reads of `input.len()` bytes and
    // `output` for writes of `output.len()` bytes; `updated` is a valid place for the length.
    check(unsafe {
        psa_crypto_sys::psa_cipher_update(
            operation,
            input.as_ptr(),
            input.len(),
            output.as_mut_ptr(),
            output.len(),
            &mut updated,
        )
    })?;
    let rest = output
        .get_mut(updated..)
        .ok_or(PsaError::CorruptionDetected)?;
    let mut finished = 0;
    // SAFETY: `operation` is set up and updated; `rest` is valid for writes of `rest.len()`
    // bytes; `finished` is a valid place for the length.
    check(unsafe {
        psa_crypto_sys::psa_cipher_finish(operation, rest.as_mut_ptr(), rest.len(), &mut finished)
    })?;
    Ok(updated + finished)
}
