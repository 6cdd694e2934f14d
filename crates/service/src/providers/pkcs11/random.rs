//! Random numbers: PsaGenerateRandom, from the token's generator. No identity involved.

use bulwark_interface::ops::{psa_generate_random, PsaGenerateRandom};
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::{error, Pkcs11Provider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext};

/// The most bytes asked of the token in one call.
const CHUNK: usize = 1 << 16;

impl Handles<PsaGenerateRandom> for Pkcs11Provider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        request: psa_generate_random::Request,
    ) -> Result<psa_generate_random::Response, ProviderError> {
        if request.size > ctx.settings().buffer_size_limit {
            return Err(ProviderError::ResponseTooLarge);
        }
        if u32::try_from(request.size).is_err() {
            return Err(PsaError::GenericError.into());
        }
        let mut bytes = Zeroizing::new(vec![0; request.size]);
        let session = self.token.pool.get()?;
        for chunk in bytes.chunks_mut(CHUNK) {
            session.generate_random_slice(chunk).map_err(error::psa)?;
        }
        Ok(psa_generate_random::Response {
            random_bytes: SecretBytes::new(std::mem::take(&mut *bytes)),
        })
    }
}
