//! Key management: PsaGenerateKey, PsaImportKey, PsaDestroyKey, PsaExportPublicKey and
//! PsaExportKey.
//!
//! Creating a key makes (or checks) its material, wraps it and records the wrapped blob as the
//! key's `key_id` in one [`ScopedKeys::create`]: there is nothing else to create. The order of
//! the checks follows the reference provider: deprecation, public-key type, RSA size, then the
//! name, then the material.

use std::sync::Arc;

use bulwark_interface::ops::{
    psa_destroy_key, psa_export_key, psa_export_public_key, psa_generate_key, psa_import_key,
    PsaDestroyKey, PsaExportKey, PsaExportPublicKey, PsaGenerateKey, PsaImportKey,
};
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::key::{Attributes, Type};
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::material::{self, LoadedKey, RSA_BITS};
use super::{kek, OpenSslProvider};
use crate::error::ProviderError;
use crate::keystore::KeyStoreError;
use crate::providers::{Creation, Handles, RequestContext, ScopedKeys};

/// Checks the RSA key size as the reference provider does (docs/protocol.md#key-management): 1024, 2048 or
/// 4096 bits, or 0 when `zero_ok` (an import taking its size from the data).
///
/// # Errors
/// `InvalidArgument` for any other size of an RSA key.
pub(super) fn check_rsa_bits(attributes: Attributes, zero_ok: bool) -> Result<(), PsaError> {
    match attributes.key_type {
        Type::RsaKeyPair | Type::RsaPublicKey
            if !(RSA_BITS.contains(&attributes.bits) || zero_ok && attributes.bits == 0) =>
        {
            Err(PsaError::InvalidArgument)
        }
        _ => Ok(()),
    }
}

/// `AlreadyExists` if the caller already has a key named `key_name` (checked before costly
/// work; [`ScopedKeys::create`] checks again, atomically).
fn check_name_free(keys: &ScopedKeys<'_>, key_name: &str) -> Result<(), ProviderError> {
    match keys.get(key_name) {
        Ok(_) => Err(KeyStoreError::AlreadyExists.into()),
        Err(ProviderError::KeyStore(KeyStoreError::NotFound)) => Ok(()),
        Err(error) => Err(error),
    }
}

impl OpenSslProvider {
    /// Wraps `data` (the key in its export format) for key `key_name` and records it.
    fn create_key(
        &self,
        keys: &ScopedKeys<'_>,
        key_name: &str,
        attributes: Attributes,
        creation: Creation,
        data: &Zeroizing<Vec<u8>>,
        loaded: Option<LoadedKey>,
    ) -> Result<(), ProviderError> {
        let ad = kek::associated_data(&keys.identity_encoding(key_name), attributes)?;
        let blob = self.kek.wrap(&ad, data)?;
        keys.create(
            key_name,
            attributes,
            blob.clone(),
            creation,
            || Ok(()),
            |_| Ok(()),
        )?;
        if let Some(key) = loaded {
            self.cache.insert(ad, blob, Arc::new(key));
        }
        Ok(())
    }
}

impl Handles<PsaGenerateKey> for OpenSslProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        request: psa_generate_key::Request,
    ) -> Result<psa_generate_key::Response, ProviderError> {
        let attributes = request.attributes;
        ctx.check_generation(&attributes)?;
        check_rsa_bits(attributes, false)?;
        let keys = ctx.keys(self)?;
        check_name_free(&keys, &request.key_name)?;
        let data = material::generate(attributes)?;
        self.create_key(
            &keys,
            &request.key_name,
            attributes,
            Creation::Generate,
            &data,
            None,
        )?;
        Ok(psa_generate_key::Response)
    }
}

impl Handles<PsaImportKey> for OpenSslProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        request: psa_import_key::Request,
    ) -> Result<psa_import_key::Response, ProviderError> {
        let attributes = request.attributes;
        check_rsa_bits(attributes, true)?;
        let keys = ctx.keys(self)?;
        check_name_free(&keys, &request.key_name)?;
        let (data, loaded) = material::import(attributes, &request.data)?;
        self.create_key(
            &keys,
            &request.key_name,
            attributes,
            Creation::Import,
            &data,
            Some(loaded),
        )?;
        Ok(psa_import_key::Response)
    }
}

impl Handles<PsaDestroyKey> for OpenSslProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        request: psa_destroy_key::Request,
    ) -> Result<psa_destroy_key::Response, ProviderError> {
        let keys = ctx.keys(self)?;
        let identity = keys.identity_encoding(&request.key_name);
        keys.destroy(&request.key_name, |record| {
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
        ctx: &RequestContext<'_>,
        request: psa_export_public_key::Request,
    ) -> Result<psa_export_public_key::Response, ProviderError> {
        let key = self.use_key(ctx, &request.key_name, |_| Ok(()))?;
        let data = key.public_export.clone().ok_or(PsaError::InvalidArgument)?;
        Ok(psa_export_public_key::Response { data })
    }
}

impl Handles<PsaExportKey> for OpenSslProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        request: psa_export_key::Request,
    ) -> Result<psa_export_key::Response, ProviderError> {
        let keys = ctx.keys(self)?;
        let record = keys.get(&request.key_name)?;
        request.validate(record.attributes)?;
        // The wrapped material is the export format itself.
        let ad = kek::associated_data(
            &keys.identity_encoding(&request.key_name),
            record.attributes,
        )?;
        let mut data = self.kek.unwrap(&ad, &record.key_id)?;
        Ok(psa_export_key::Response {
            data: SecretBytes::new(std::mem::take(&mut *data)),
        })
    }
}
