//! Asymmetric signatures: PsaSignHash, PsaVerifyHash, PsaSignMessage and PsaVerifyMessage.
//!
//! Messages are hashed with the hash the scheme names, then the hash is signed or verified as
//! by the hash operations.

use bulwark_interface::ops::{
    psa_sign_hash, psa_sign_message, psa_verify_hash, psa_verify_message, PsaSignHash,
    PsaSignMessage, PsaVerifyHash, PsaVerifyMessage,
};
use psa_crypto::operations::asym_signature;
use psa_crypto::operations::hash::hash_compute;
use psa_crypto::types::algorithm::{AsymmetricSignature, SignHash};
use psa_crypto::types::status::Error as PsaError;

use super::{buffer, MbedProvider};
use crate::error::ProviderError;
use crate::fair::Client;
use crate::keystore::KeyRecord;
use crate::providers::{Handles, RequestContext, ResolvedKey};

impl MbedProvider {
    /// Signs `hash` with the key of `record`; the request was validated.
    fn sign(
        &self,
        client: Client,
        record: &KeyRecord,
        alg: AsymmetricSignature,
        hash: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        self.with_key(client, record, |_, id, attributes| {
            let mut signature = buffer(attributes.sign_output_size(alg)?);
            let length = asym_signature::sign_hash(id, alg, hash, &mut signature)?;
            signature.truncate(length);
            Ok(signature)
        })
    }

    /// Verifies `signature` of `hash` with the key of `record`; the request was validated.
    fn verify(
        &self,
        client: Client,
        record: &KeyRecord,
        alg: AsymmetricSignature,
        hash: &[u8],
        signature: &[u8],
    ) -> Result<(), ProviderError> {
        self.with_key(client, record, |_, id, _| {
            asym_signature::verify_hash(id, alg, hash, signature)
        })
    }

    /// The hash of `message` with the hash `alg` names.
    ///
    /// # Errors
    /// `NotSupported` for a scheme that names no specific hash (raw PKCS#1 v1.5, ECDSA-any);
    /// the back end's status for a hash it lacks.
    fn message_hash(
        &self,
        client: Client,
        alg: AsymmetricSignature,
        message: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        let Some(SignHash::Specific(hash_alg)) = alg.hash() else {
            return Err(PsaError::NotSupported.into());
        };
        let mut hash = buffer(hash_alg.hash_length());
        let length = self.psa(client, |_| hash_compute(hash_alg, message, &mut hash))?;
        hash.truncate(length);
        Ok(hash)
    }
}

impl Handles<PsaSignHash> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_sign_hash::Request,
    ) -> Result<psa_sign_hash::Response, ProviderError> {
        let record = key.record();
        let signature = self.sign(ctx.client(), record, request.alg, &request.hash)?;
        Ok(psa_sign_hash::Response { signature })
    }
}

impl Handles<PsaVerifyHash> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_verify_hash::Request,
    ) -> Result<psa_verify_hash::Response, ProviderError> {
        let record = key.record();
        self.verify(
            ctx.client(),
            record,
            request.alg,
            &request.hash,
            &request.signature,
        )?;
        Ok(psa_verify_hash::Response)
    }
}

impl Handles<PsaSignMessage> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_sign_message::Request,
    ) -> Result<psa_sign_message::Response, ProviderError> {
        let record = key.record();
        let hash = self.message_hash(ctx.client(), request.alg, &request.message)?;
        let signature = self.sign(ctx.client(), record, request.alg, &hash)?;
        Ok(psa_sign_message::Response { signature })
    }
}

impl Handles<PsaVerifyMessage> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_verify_message::Request,
    ) -> Result<psa_verify_message::Response, ProviderError> {
        let record = key.record();
        let hash = self.message_hash(ctx.client(), request.alg, &request.message)?;
        self.verify(ctx.client(), record, request.alg, &hash, &request.signature)?;
        Ok(psa_verify_message::Response)
    }
}
