//! Key attestation with `TPM2_ActivateCredential`: PrepareKeyAttestation and AttestKey
//! (docs/protocol.md#key-attestation).
//!
//! PrepareKeyAttestation gives a verifier what `TPM2_MakeCredential` needs: the attested key's
//! name (name algorithm ‖ hash of its public area), its public area (so the verifier can check
//! the name) and the endorsement key's public key (RSA 2048 from the default EK template,
//! RSAPublicKey DER). AttestKey loads the attested key and the endorsement key, satisfies the
//! EK's policy (`PolicySecret` with the endorsement hierarchy) and decrypts the credential: the
//! TPM releases it only if the key named in it is loaded in this TPM. Only the default attesting
//! key is offered; naming another one is `NotSupported`. Imported public keys are not in the
//! TPM and cannot be attested (`InvalidArgument`).

use bulwark_interface::ops::attest_key::{AttestationMechanismParams, AttestationOutput};
use bulwark_interface::ops::prepare_key_attestation::{
    PrepareKeyAttestationOutput, PrepareKeyAttestationParams,
};
use bulwark_interface::ops::{
    attest_key, prepare_key_attestation, AttestKey, PrepareKeyAttestation,
};
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::status::Error as PsaError;
use tss_esapi::abstraction::{ek, AsymmetricAlgorithmSelection};
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{AuthHandle, KeyHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{EncryptedSecret, IdObject, Public, SymmetricDefinition};
use tss_esapi::traits::Marshall;
use tss_esapi::Context;

use super::blob::KeyBlob;
use super::device::Failure;
use super::keys::export_public;
use super::{with_key, TpmProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// TPM_ALG_SHA256, the name algorithm of every key of this provider.
const SHA256_ALG_ID: [u8; 2] = [0x00, 0x0B];

/// The TPM name of a public area made with SHA-256 as its name algorithm.
pub(super) fn name_of(public: &Public) -> Result<Vec<u8>, PsaError> {
    let marshalled = public.marshall().map_err(|_| PsaError::DataCorrupt)?;
    let mut name = SHA256_ALG_ID.to_vec();
    name.extend_from_slice(&::openssl::sha::sha256(&marshalled));
    Ok(name)
}

/// Creates the endorsement key (RSA 2048, default template) and returns its handle.
fn endorsement_key(context: &mut Context) -> Result<KeyHandle, Failure> {
    Ok(ek::create_ek_object_2(
        context,
        AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        None,
    )?)
}

/// Refuses any attesting key but the default one.
fn default_attesting_key(name: Option<&String>) -> Result<(), PsaError> {
    match name {
        Some(name) if !name.is_empty() => Err(PsaError::NotSupported),
        _ => Ok(()),
    }
}

/// Statuses of attestation failures (docs/protocol.md#key-attestation).
fn attestation_status(kind: Tss2ResponseCodeKind) -> Option<PsaError> {
    match kind {
        Tss2ResponseCodeKind::BadAuth | Tss2ResponseCodeKind::AuthFail => {
            Some(PsaError::GenericError)
        }
        Tss2ResponseCodeKind::Value
        | Tss2ResponseCodeKind::Size
        | Tss2ResponseCodeKind::Integrity
        | Tss2ResponseCodeKind::Key
        // libtpms reports a secret that does not decrypt as TPM_RC_FAILURE.
        | Tss2ResponseCodeKind::Failure => Some(PsaError::InvalidArgument),
        _ => None,
    }
}

impl TpmProvider {
    /// The blob of the key pair `key`, which must be in the TPM.
    fn attested(&self, key: &ResolvedKey<'_>) -> Result<KeyBlob, ProviderError> {
        match KeyBlob::decode(key.key_id())? {
            KeyBlob::Public { .. } => Err(PsaError::InvalidArgument.into()),
            blob => Ok(blob),
        }
    }
}

impl Handles<PrepareKeyAttestation> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: prepare_key_attestation::Request,
    ) -> Result<prepare_key_attestation::Response, ProviderError> {
        let PrepareKeyAttestationParams::ActivateCredential {
            attesting_key_name, ..
        } = request.parameters;
        default_attesting_key(attesting_key_name.as_ref())?;
        let blob = self.attested(&key)?;
        let ek_public = self.run(
            |session| {
                let handle = endorsement_key(session.context)?;
                let read = session.context.read_public(handle);
                let flushed = session.context.flush_context(handle.into());
                let (public, _, _) = read?;
                flushed?;
                Ok(public)
            },
            attestation_status,
        )?;
        Ok(prepare_key_attestation::Response {
            output: PrepareKeyAttestationOutput::ActivateCredential {
                name: name_of(blob.public())?,
                public: blob
                    .public()
                    .marshall()
                    .map_err(|_| PsaError::DataCorrupt)?,
                attesting_key_pub: export_public(&ek_public)?,
            },
        })
    }
}

impl Handles<AttestKey> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: attest_key::Request,
    ) -> Result<attest_key::Response, ProviderError> {
        default_attesting_key(request.attesting_key_name.as_ref())?;
        let AttestationMechanismParams::ActivateCredential {
            credential_blob,
            secret,
        } = request.parameters;
        let blob = self.attested(&key)?;
        let credential_blob =
            IdObject::try_from(credential_blob).map_err(|_| PsaError::InvalidArgument)?;
        let secret = EncryptedSecret::try_from(secret).map_err(|_| PsaError::InvalidArgument)?;
        let credential = self.run(
            |session| {
                with_key(session, &blob, |session, key| {
                    let ek = endorsement_key(session.context)?;
                    let outcome = activate(
                        session.context,
                        key,
                        ek,
                        credential_blob.clone(),
                        secret.clone(),
                    );
                    let flushed = session.context.flush_context(ek.into());
                    let credential = outcome?;
                    flushed?;
                    Ok(credential)
                })
            },
            attestation_status,
        )?;
        Ok(attest_key::Response {
            output: AttestationOutput::ActivateCredential {
                credential: SecretBytes::new(credential),
            },
        })
    }
}

/// `TPM2_ActivateCredential` of `key` with the endorsement key `ek`, under a policy session
/// satisfying the EK's policy.
fn activate(
    context: &mut Context,
    key: KeyHandle,
    ek: KeyHandle,
    credential_blob: IdObject,
    secret: EncryptedSecret,
) -> Result<Vec<u8>, Failure> {
    let session = context
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Policy,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )?
        .ok_or(PsaError::GenericError)?;
    let outcome = (|| -> Result<Vec<u8>, Failure> {
        let policy = PolicySession::try_from(session)?;
        context.execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.policy_secret(
                policy,
                AuthHandle::Endorsement,
                Default::default(),
                Default::default(),
                Default::default(),
                None,
            )
        })?;
        let credential = context
            .execute_with_sessions((Some(AuthSession::Password), Some(session), None), |ctx| {
                ctx.activate_credential(key, ek, credential_blob, secret)
            })?;
        Ok(credential.value().to_vec())
    })();
    let _ = context.flush_context(SessionHandle::from(session).into());
    outcome
}
