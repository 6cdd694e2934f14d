//! Key agreement: PsaRawKeyAgreement (ECDH; FFDH is not supported).

use bulwark_interface::ops::{psa_raw_key_agreement, PsaRawKeyAgreement};
use psa_crypto::operations::key_agreement;
use psa_crypto::types::algorithm::RawKeyAgreement;
use psa_crypto::types::status::Error as PsaError;

use super::{into_secret, secret_buffer, MbedProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

impl Handles<PsaRawKeyAgreement> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_raw_key_agreement::Request,
    ) -> Result<psa_raw_key_agreement::Response, ProviderError> {
        let record = key.record();
        let alg = request.alg;
        if alg == RawKeyAgreement::Ffdh {
            // No output size is known for FFDH secrets here, as in the reference provider.
            return Err(PsaError::NotSupported.into());
        }
        let shared_secret = self.with_key(ctx.client(), record, |_, id, attributes| {
            let mut secret = secret_buffer(attributes.raw_key_agreement_output_size(alg)?);
            let length = key_agreement::raw_key_agreement(alg, id, &request.peer_key, &mut secret)?;
            secret.truncate(length);
            Ok(secret)
        })?;
        Ok(psa_raw_key_agreement::Response {
            shared_secret: into_secret(shared_secret),
        })
    }
}
