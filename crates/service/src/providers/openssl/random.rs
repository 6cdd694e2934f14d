//! Random numbers: PsaGenerateRandom, from OpenSSL's private DRBG. No identity involved.

use bulwark_interface::ops::{psa_generate_random, PsaGenerateRandom};
use bulwark_interface::secret::SecretBytes;
use zeroize::Zeroizing;

use super::{error, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext};

impl Handles<PsaGenerateRandom> for OpenSslProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        request: psa_generate_random::Request,
    ) -> Result<psa_generate_random::Response, ProviderError> {
        if request.size > ctx.settings().buffer_size_limit {
            return Err(ProviderError::ResponseTooLarge);
        }
        let mut bytes = Zeroizing::new(vec![0; request.size]);
        // OpenSSL takes at most `c_int::MAX` bytes per call.
        for chunk in bytes.chunks_mut(1 << 30) {
            ::openssl::rand::rand_priv_bytes(chunk).map_err(error::internal)?;
        }
        Ok(psa_generate_random::Response {
            random_bytes: SecretBytes::new(std::mem::take(&mut *bytes)),
        })
    }
}
