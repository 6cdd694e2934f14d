//! Random numbers: PsaGenerateRandom. No identity involved.

use bulwark_interface::ops::{psa_generate_random, PsaGenerateRandom};
use psa_crypto::operations::other::generate_random;

use super::{into_secret, secret_buffer, MbedProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext};

impl Handles<PsaGenerateRandom> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        request: psa_generate_random::Request,
    ) -> Result<psa_generate_random::Response, ProviderError> {
        if request.size > ctx.settings().buffer_size_limit {
            return Err(ProviderError::ResponseTooLarge);
        }
        let mut random_bytes = secret_buffer(request.size);
        if !random_bytes.is_empty() {
            self.psa(ctx.client(), |_| generate_random(&mut random_bytes))?;
        }
        Ok(psa_generate_random::Response {
            random_bytes: into_secret(random_bytes),
        })
    }
}
