//! Hashes: PsaHashCompute and PsaHashCompare. No key and no identity involved.

use bulwark_interface::ops::{psa_hash_compare, psa_hash_compute, PsaHashCompare, PsaHashCompute};
use psa_crypto::operations::hash::{hash_compare, hash_compute};
use psa_crypto::types::status::Error as PsaError;

use super::{buffer, MbedProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext};

impl Handles<PsaHashCompute> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        request: psa_hash_compute::Request,
    ) -> Result<psa_hash_compute::Response, ProviderError> {
        let mut hash = buffer(request.alg.hash_length());
        let length = self.psa(ctx.client(), |_| {
            hash_compute(request.alg, &request.input, &mut hash)
        })?;
        hash.truncate(length);
        Ok(psa_hash_compute::Response { hash })
    }
}

impl Handles<PsaHashCompare> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        request: psa_hash_compare::Request,
    ) -> Result<psa_hash_compare::Response, ProviderError> {
        if request.hash.len() != request.alg.hash_length() {
            // A digest of the wrong length is an invalid argument (Mbed TLS would call it a
            // mismatch), but an unsupported algorithm is reported as such first.
            let mut probe = buffer(request.alg.hash_length());
            self.psa(ctx.client(), |_| hash_compute(request.alg, &[], &mut probe))?;
            return Err(PsaError::InvalidArgument.into());
        }
        self.psa(ctx.client(), |_| {
            hash_compare(request.alg, &request.input, &request.hash)
        })?;
        Ok(psa_hash_compare::Response)
    }
}
