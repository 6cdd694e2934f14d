//! Message authentication codes: PsaMacCompute and PsaMacVerify.
//!
//! Verification is Mbed TLS's own `psa_mac_verify`, which compares in constant time.

use bulwark_interface::ops::{psa_mac_compute, psa_mac_verify, PsaMacCompute, PsaMacVerify};
use psa_crypto::operations::mac;

use super::{buffer, MbedProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

impl Handles<PsaMacCompute> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_mac_compute::Request,
    ) -> Result<psa_mac_compute::Response, ProviderError> {
        let record = key.record();
        let alg = request.alg;
        let mac = self.with_key(ctx.client(), record, |_, id, attributes| {
            let mut mac = buffer(attributes.mac_length(alg)?);
            let length = mac::compute_mac(id, alg, &request.input, &mut mac)?;
            mac.truncate(length);
            Ok(mac)
        })?;
        Ok(psa_mac_compute::Response { mac })
    }
}

impl Handles<PsaMacVerify> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_mac_verify::Request,
    ) -> Result<psa_mac_verify::Response, ProviderError> {
        let record = key.record();
        self.with_key(ctx.client(), record, |_, id, _| {
            mac::verify_mac(id, request.alg, &request.input, &request.mac)
        })?;
        Ok(psa_mac_verify::Response)
    }
}
