//! Key management: PsaGenerateKey, PsaImportKey, PsaDestroyKey, PsaExportPublicKey and
//! PsaExportKey.
//!
//! Creating a key makes (or checks) its material, wraps it and records the wrapped blob as the
//! key's `key_id` in one [`KeyToCreate::create`]: there is nothing else to create. The order of
//! the checks follows the reference provider: deprecation, public-key type, RSA size, then the
//! name, then the material.

use std::sync::Arc;

use bulwark_interface::ops::{
    psa_destroy_key, psa_export_key, psa_export_public_key, psa_generate_key, psa_import_key,
    PsaDestroyKey, PsaExportKey, PsaExportPublicKey, PsaGenerateKey, PsaImportKey,
};
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::material::{self, LoadedKey};
use super::{kek, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{
    check_rsa_bits, Creation, Handles, KeyToCreate, RequestContext, ResolvedKey,
};

impl OpenSslProvider {
    /// Wraps `data` (the key in its export format) for the new key and records it.
    fn create_key(
        &self,
        key: &KeyToCreate<'_>,
        attributes: Attributes,
        creation: Creation,
        data: &Zeroizing<Vec<u8>>,
        loaded: Option<LoadedKey>,
    ) -> Result<(), ProviderError> {
        let ad = kek::associated_data(&key.identity_encoding(), attributes)?;
        let blob = self.kek.wrap(&ad, data)?;
        key.create(attributes, blob.clone(), creation, || Ok(()), |_| Ok(()))?;
        if let Some(loaded) = loaded {
            self.cache.insert(ad, blob, Arc::new(loaded));
        }
        Ok(())
    }
}

impl Handles<PsaGenerateKey> for OpenSslProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: KeyToCreate<'_>,
        request: psa_generate_key::Request,
    ) -> Result<psa_generate_key::Response, ProviderError> {
        let attributes = request.attributes;
        ctx.check_generation(&attributes)?;
        check_rsa_bits(attributes, false)?;
        key.check_free()?;
        let data = material::generate(attributes)?;
        self.create_key(&key, attributes, Creation::Generate, &data, None)?;
        Ok(psa_generate_key::Response)
    }
}

impl Handles<PsaImportKey> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: KeyToCreate<'_>,
        request: psa_import_key::Request,
    ) -> Result<psa_import_key::Response, ProviderError> {
        let attributes = request.attributes;
        check_rsa_bits(attributes, true)?;
        key.check_free()?;
        let (data, loaded) = material::import(attributes, &request.data)?;
        self.create_key(&key, attributes, Creation::Import, &data, Some(loaded))?;
        Ok(psa_import_key::Response)
    }
}

impl Handles<PsaDestroyKey> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_destroy_key::Request,
    ) -> Result<psa_destroy_key::Response, ProviderError> {
        let identity = key.identity_encoding();
        key.destroy(|record| {
            // The wrapped key goes with the row; only the cached copy is left to drop.
            if let Ok(ad) = kek::associated_data(&identity, record.attributes) {
                self.cache.remove(&ad);
            }
            Ok(())
        })?;
        Ok(psa_destroy_key::Response)
    }
}

impl Handles<PsaExportPublicKey> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_export_public_key::Request,
    ) -> Result<psa_export_public_key::Response, ProviderError> {
        let key = self.load(&key)?;
        let data = key.public_export.clone().ok_or(PsaError::InvalidArgument)?;
        Ok(psa_export_public_key::Response { data })
    }
}

impl Handles<PsaExportKey> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_export_key::Request,
    ) -> Result<psa_export_key::Response, ProviderError> {
        let record = key.record();
        // The wrapped material is the export format itself.
        let ad = kek::associated_data(&key.identity_encoding(), record.attributes)?;
        let mut data = self.kek.unwrap(&ad, &record.key_id)?;
        Ok(psa_export_key::Response {
            data: SecretBytes::new(std::mem::take(&mut *data)),
        })
    }
}
