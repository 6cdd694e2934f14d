//! Capability discovery: what CanDoCrypto's rules (`providers::can_do`) ask of this provider.
//!
//! Mbed TLS holds a key it can represent (asked of Mbed TLS itself) in a size this provider
//! takes (RSA: 1024, 2048 or 4096 bits); every algorithm it represents is implemented.

use bulwark_interface::ops::can_do_crypto;
use bulwark_interface::ops::CanDoCrypto;
use psa_crypto::types::algorithm::Algorithm;
use psa_crypto::types::key::{Attributes, Type};

use super::{ffi, MbedProvider};
use crate::error::ProviderError;
use crate::fair::Client;
use crate::providers::can_do::{self, Capabilities};
use crate::providers::check_rsa_bits;
use crate::providers::{Handles, RequestContext};

/// The key types Mbed TLS generates here.
fn generable(key_type: Type) -> bool {
    matches!(
        key_type,
        Type::RsaKeyPair
            | Type::EccKeyPair { .. }
            | Type::DhKeyPair { .. }
            | Type::RawData
            | Type::Aes
            | Type::Camellia
            | Type::Chacha20
    )
}

impl Capabilities for MbedProvider {
    fn holds(&self, attributes: Attributes) -> bool {
        self.psa(Client::default(), |guard| {
            ffi::check_representable(guard, attributes)
        })
        .is_ok()
            && check_rsa_bits(attributes, true).is_ok()
    }

    fn generates(&self, attributes: Attributes) -> bool {
        generable(attributes.key_type)
    }

    fn implements(&self, _: Algorithm, _: Attributes) -> bool {
        true
    }
}

impl Handles<CanDoCrypto> for MbedProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        _: (),
        request: can_do_crypto::Request,
    ) -> Result<can_do_crypto::Response, ProviderError> {
        can_do::answer(self, request)
    }
}
