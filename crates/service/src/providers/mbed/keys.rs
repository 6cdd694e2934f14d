//! Key management: PsaGenerateKey, PsaImportKey, PsaDestroyKey, PsaExportPublicKey and
//! PsaExportKey.

use bulwark_interface::ops::{
    psa_destroy_key, psa_export_key, psa_export_public_key, psa_generate_key, psa_import_key,
    PsaDestroyKey, PsaExportKey, PsaExportPublicKey, PsaGenerateKey, PsaImportKey,
};
use psa_crypto::operations::key_management;
use psa_crypto::operations::other::generate_random;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use super::{
    buffer, ffi, into_secret, psa_handle, psa_key_id, secret_buffer, MbedProvider, PsaGuard,
};
use crate::error::ProviderError;
use crate::fair::Client;
use crate::providers::{
    check_rsa_bits, Creation, Handles, KeyToCreate, Provider, RequestContext, ResolvedKey,
};

/// Largest id of the PSA user range (`PSA_KEY_ID_USER_MAX`); the range starts at 1.
const PSA_KEY_ID_USER_MAX: u32 = 0x3FFF_FFFF;

/// How many random ids are tried before the id space is declared full.
const ID_ATTEMPTS: usize = 32;

/// Destroys the PSA key `raw_id` if it exists.
///
/// # Errors
/// The back end's failure to destroy an existing key.
pub(super) fn destroy_if_present(guard: &PsaGuard, raw_id: u32) -> Result<(), PsaError> {
    let absent_is_fine = |error| match error {
        PsaError::DoesNotExist | PsaError::InvalidHandle => Ok(()),
        other => Err(other),
    };
    match ffi::key_bits(guard, raw_id) {
        Ok(_) => ffi::destroy_key(guard, psa_handle(raw_id)?).or_else(absent_is_fine),
        Err(error) => absent_is_fine(error),
    }
}

impl MbedProvider {
    /// A random id in the PSA user range that no key of this provider uses, in the key store
    /// or in Mbed TLS's storage.
    ///
    /// # Errors
    /// `InsufficientMemory` when no free id was found (the id space is exhausted).
    fn allocate_key_id(&self, client: Client, key: &KeyToCreate<'_>) -> Result<u32, ProviderError> {
        for _ in 0..ID_ATTEMPTS {
            let mut bytes = [0; 4];
            self.psa(client, |_| generate_random(&mut bytes))?;
            let id = u32::from_le_bytes(bytes) & PSA_KEY_ID_USER_MAX;
            if id == 0 || key.key_id_in_use(&id.to_le_bytes())? {
                continue;
            }
            // A file left behind by a key the store does not know of.
            if self.psa(client, |guard| ffi::key_bits(guard, id)).is_ok() {
                continue;
            }
            return Ok(id);
        }
        Err(PsaError::InsufficientMemory.into())
    }

    /// Creates a key through [`KeyToCreate::create`], `make` creating the PSA key of a given id.
    ///
    /// If Mbed TLS reports the chosen id taken (another request chose the same id at the same
    /// moment), the creation is retried with a new id.
    fn create_key(
        &self,
        client: Client,
        key: &KeyToCreate<'_>,
        attributes: Attributes,
        creation: Creation,
        make: impl Fn(&PsaGuard, u32) -> Result<(), PsaError> + Sync,
    ) -> Result<(), ProviderError> {
        for _ in 0..ID_ATTEMPTS {
            let id = self.allocate_key_id(client, key)?;
            let outcome = key.create(
                attributes,
                id.to_le_bytes().to_vec(),
                creation,
                || {
                    self.psa(client, |guard| make(guard, id))
                        .map_err(ProviderError::from)
                },
                |key_id| self.discard(key_id),
            );
            match outcome {
                Err(ProviderError::Psa(PsaError::AlreadyExists)) => continue,
                other => return other,
            }
        }
        Err(PsaError::InsufficientMemory.into())
    }
}

impl Handles<PsaGenerateKey> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: KeyToCreate<'_>,
        request: psa_generate_key::Request,
    ) -> Result<psa_generate_key::Response, ProviderError> {
        let attributes = request.attributes;
        ctx.check_generation(&attributes)?;
        check_rsa_bits(attributes, false)?;
        self.create_key(
            ctx.client(),
            &key,
            attributes,
            Creation::Generate,
            |guard, id| ffi::generate_key(guard, attributes, id),
        )?;
        Ok(psa_generate_key::Response)
    }
}

impl Handles<PsaImportKey> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: KeyToCreate<'_>,
        request: psa_import_key::Request,
    ) -> Result<psa_import_key::Response, ProviderError> {
        let attributes = request.attributes;
        check_rsa_bits(attributes, true)?;
        self.create_key(
            ctx.client(),
            &key,
            attributes,
            Creation::Import,
            |guard, id| ffi::import_key(guard, attributes, id, &request.data),
        )?;
        Ok(psa_import_key::Response)
    }
}

impl Handles<PsaDestroyKey> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_destroy_key::Request,
    ) -> Result<psa_destroy_key::Response, ProviderError> {
        key.destroy(|record| {
            let raw_id = psa_key_id(&record.key_id)?;
            // A key already missing from Mbed TLS's storage is as good as destroyed.
            self.psa(ctx.client(), |guard| destroy_if_present(guard, raw_id))
                .map_err(ProviderError::from)
        })?;
        Ok(psa_destroy_key::Response)
    }
}

impl Handles<PsaExportPublicKey> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_export_public_key::Request,
    ) -> Result<psa_export_public_key::Response, ProviderError> {
        let record = key.record();
        let data = self.with_key(ctx.client(), record, |_, id, attributes| {
            let mut data = buffer(attributes.export_public_key_output_size()?);
            let length = key_management::export_public(id, &mut data)?;
            data.truncate(length);
            Ok(data)
        })?;
        Ok(psa_export_public_key::Response { data })
    }
}

impl Handles<PsaExportKey> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_export_key::Request,
    ) -> Result<psa_export_key::Response, ProviderError> {
        let record = key.record();
        let data = self.with_key(ctx.client(), record, |_, id, attributes| {
            let mut data = secret_buffer(attributes.export_key_output_size()?);
            let length = key_management::export(id, &mut data)?;
            data.truncate(length);
            Ok(data)
        })?;
        Ok(psa_export_key::Response {
            data: into_secret(data),
        })
    }
}
