//! The TPM 2.0 provider (provider id 3): keys made and used in a TPM through the TSS 2.0
//! Enhanced System API (`tss-esapi`, over libtss2-esys).
//!
//! # Connection
//!
//! The `tcti` key is a TCTI string as the TSS libraries take it: `device[:path]`,
//! `mssim[:host=…,port=…]`, `swtpm[:host=…,port=…]`, `tabrmd[:bus_name=…,bus_type=…]`.
//! One ESAPI context per TCTI string is shared by the whole process, behind a mutex (see
//! `device`): a provider rebuilt on SIGHUP reuses the running one's connection rather than
//! opening a second one, which a TPM device or simulator socket would not serve. Start-up errors
//! name the cause (bad TCTI string, TPM unreachable, wrong `owner_hierarchy_auth`); with
//! `skip_if_no_tpm`, an unreachable TPM leaves the provider out with a log line (the builder).
//!
//! # Keys
//!
//! Key pairs are created by the TPM (`TPM2_Create`) under a storage primary key that the TPM
//! derives again from the owner seed whenever needed, so they survive TPM resets and restarts.
//! Each has a random 32-byte auth value. The key-store row holds, as the key id (`blob`), the
//! TPM's wrapped private part, the public area and the auth value; nothing else is kept, so
//! [`Provider::discard`] has nothing to remove. Imported public keys (RSA and ECC only) are
//! kept as their public area and loaded as external objects in the null hierarchy when used:
//! they survive TPM resets too. Every operation loads its key, uses it and flushes it.
//!
//! # Operations
//!
//! GenerateKey (RSA key pairs of the sizes the TPM takes, ECC key pairs on the secp-r1 curves
//! it has), ImportKey (RSA and ECC public keys), ExportPublicKey, DestroyKey, SignHash and
//! VerifyHash (RSA PKCS#1 v1.5 and ECDSA with the hashes the TPM has), AsymmetricEncrypt and
//! AsymmetricDecrypt (RSA PKCS#1 v1.5 and OAEP; an OAEP label must be empty or end with a zero
//! byte, as the TPM appends one to any other label), GenerateRandom (the TPM's generator),
//! CanDoCrypto (from the algorithms, RSA sizes and curves the TPM reported at start-up),
//! PrepareKeyAttestation and AttestKey (ActivateCredential with the endorsement key). A key's
//! TPM attributes follow its policy: an encryption algorithm makes a decryption key, anything
//! else a signing key; usage is then checked against the PSA policy as in every provider.

mod attest;
mod blob;
mod capability;
mod crypto;
mod device;
mod keys;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::list_providers::ProviderInfo;
use psa_crypto::types::status::Error as PsaError;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;

use self::blob::KeyBlob;
use self::capability::Capabilities;
pub use self::device::OpenError;
use self::device::{Failure, Session, Tpm};
use super::Provider;
use crate::config::TpmConfig;
use crate::dispatch::Registrar;
use crate::error::ProviderError;

/// Fixed identity of the TPM provider.
pub const TPM_UUID: &str = "1e4954a4-ff21-46d3-ab0c-661eeb667e1d";

/// The TPM provider.
#[derive(Debug)]
pub struct TpmProvider {
    name: String,
    tpm: Arc<Tpm>,
    capabilities: Capabilities,
}

impl TpmProvider {
    /// Opens (or shares) the TPM `config.tcti` names, creates the primary key with the owner
    /// hierarchy auth value and reads what the TPM can do.
    ///
    /// # Errors
    /// An [`OpenError`] naming the cause.
    pub fn new(name: String, config: &TpmConfig) -> Result<Self, OpenError> {
        let owner = config
            .owner_hierarchy_auth
            .decode()
            .map_err(|e| OpenError::WrongOwnerAuth(e.to_string()))?;
        let endorsement = config
            .endorsement_hierarchy_auth
            .as_ref()
            .map(|auth| auth.decode())
            .transpose()
            .map_err(|e| OpenError::Primary(format!("endorsement_hierarchy_auth: {e}")))?;
        let tpm = Tpm::open(&config.tcti, owner, endorsement)?;
        let capabilities = tpm
            .run(|session| Ok(Capabilities::probe(session.context)))
            .map_err(|_| OpenError::Unreachable {
                tcti: config.tcti.clone(),
                reason: "the TPM's capabilities cannot be read".to_owned(),
            })?;
        tracing::info!(
            tcti = %config.tcti,
            rsa_bits = ?capabilities.rsa_bits,
            curves = ?capabilities.curve_bits,
            "TPM provider ready"
        );
        Ok(TpmProvider {
            name,
            tpm,
            capabilities,
        })
    }

    /// Runs `command` on the TPM, mapping its failure to a status with `map`.
    fn run<T>(
        &self,
        command: impl FnMut(&mut Session<'_>) -> Result<T, Failure>,
        map: impl FnOnce(Tss2ResponseCodeKind) -> Option<PsaError>,
    ) -> Result<T, ProviderError> {
        self.tpm
            .run(command)
            .map_err(|failure| status(failure, map).into())
    }
}

/// The PSA status of a failure: `specific` first (for the TPM's own answers), then the general
/// mapping.
fn status(
    failure: Failure,
    specific: impl FnOnce(Tss2ResponseCodeKind) -> Option<PsaError>,
) -> PsaError {
    let error = match failure {
        Failure::Psa(error) => return error,
        Failure::Tss(error) => error,
    };
    let tss_esapi::Error::Tss2Error(code) = error else {
        // The wrapper refused a parameter (too long, out of range).
        return PsaError::InvalidArgument;
    };
    if (device::raw_code(code) >> 16) & 0xff != 0 {
        tracing::error!(%code, "the TPM could not be reached");
        return PsaError::CommunicationFailure;
    }
    let Some(kind) = code.kind() else {
        return PsaError::GenericError;
    };
    if let Some(error) = specific(kind) {
        return error;
    }
    match kind {
        Tss2ResponseCodeKind::Signature => PsaError::InvalidSignature,
        Tss2ResponseCodeKind::Value
        | Tss2ResponseCodeKind::Size
        | Tss2ResponseCodeKind::EccPoint
        | Tss2ResponseCodeKind::Key
        | Tss2ResponseCodeKind::Integrity
        | Tss2ResponseCodeKind::Range => PsaError::InvalidArgument,
        Tss2ResponseCodeKind::KeySize
        | Tss2ResponseCodeKind::Curve
        | Tss2ResponseCodeKind::Hash
        | Tss2ResponseCodeKind::Scheme
        | Tss2ResponseCodeKind::Asymmetric => PsaError::NotSupported,
        Tss2ResponseCodeKind::ObjectMemory
        | Tss2ResponseCodeKind::SessionMemory
        | Tss2ResponseCodeKind::Memory
        | Tss2ResponseCodeKind::ObjectHandles
        | Tss2ResponseCodeKind::SessionHandles => PsaError::InsufficientMemory,
        Tss2ResponseCodeKind::Failure => PsaError::HardwareFailure,
        _ => {
            tracing::warn!(%code, "TPM command failed");
            PsaError::GenericError
        }
    }
}

/// Loads `blob` (a key pair under the primary key, a public key as an external object) and sets
/// its auth value.
fn load(session: &mut Session<'_>, blob: &KeyBlob) -> Result<KeyHandle, Failure> {
    let handle = match blob.private()? {
        Some(private) => {
            let primary = session.primary;
            let public = blob.public().clone();
            session
                .context
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.load(primary, private, public)
                })?
        }
        None => session.context.execute_without_session(|ctx| {
            ctx.load_external_public(blob.public().clone(), Hierarchy::Null)
        })?,
    };
    if let Err(error) = session.context.tr_set_auth(handle.into(), blob.auth()?) {
        let _ = session.context.flush_context(handle.into());
        return Err(error.into());
    }
    Ok(handle)
}

/// Loads `blob`, runs `use_key` with it, and flushes it whatever the outcome.
fn with_key<T>(
    session: &mut Session<'_>,
    blob: &KeyBlob,
    use_key: impl FnOnce(&mut Session<'_>, KeyHandle) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let handle = load(session, blob)?;
    let outcome = use_key(session, handle);
    let flushed = session.context.flush_context(handle.into());
    let value = outcome?;
    flushed?;
    Ok(value)
}

impl Provider for TpmProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            uuid: uuid::Uuid::parse_str(TPM_UUID).unwrap_or_default(),
            description: "TPM 2.0 provider on the TSS 2.0 Enhanced System API: keys are made \
                          in the TPM and kept in the key store wrapped under a primary key the \
                          TPM derives from its owner seed"
                .to_owned(),
            vendor: "Trusted Computing Group (TCG)".to_owned(),
            version_maj: 0,
            version_min: 1,
            version_rev: 0,
            id: ProviderId::Tpm,
            max_key_name_len: None,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn register(self: Arc<Self>, registrar: &mut Registrar<'_>) {
        super::register_tpm_operations(&self, registrar);
    }

    /// The wrapped key lives in the key-store row itself: once the row is gone, so is the key.
    fn discard(&self, _key_id: &[u8]) -> Result<(), ProviderError> {
        Ok(())
    }
}
