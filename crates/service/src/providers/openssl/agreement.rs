//! Key agreement: PsaRawKeyAgreement: ECDH on every supported curve (SECP-R1, SECP-K1,
//! Brainpool, X25519 and X448). FFDH is `NotSupported`, as in the reference provider.
//!
//! The peer key is in the public-key format of the own key's curve (an uncompressed point for
//! Weierstrass curves, 32 or 56 bytes for Montgomery curves); the secret is the x-coordinate of
//! the shared point (Weierstrass) or the X25519/X448 output, `ceil(bits / 8)` bytes.

use ::openssl::bn::BigNumContext;
use ::openssl::ec::{EcGroup, EcKey, EcPoint};
use ::openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use ::openssl::pkey_ctx::PkeyCtx;
use bulwark_interface::ops::{psa_raw_key_agreement, PsaRawKeyAgreement};
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::algorithm::RawKeyAgreement;
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::material::{Curve, EcMaterial, LoadedKey, Material};
use super::{error, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// The peer's Weierstrass public key, checked as an imported public key would be.
fn weierstrass_peer(ec: &EcMaterial, peer: &[u8]) -> Result<PKey<Public>, PsaError> {
    if peer.len() % 2 == 0 || peer.len() / 2 != ec.curve.bytes() {
        return Err(PsaError::InvalidArgument);
    }
    if peer.first() != Some(&0x04) {
        return Err(PsaError::InvalidArgument);
    }
    let Curve::Weierstrass { nid, .. } = ec.curve else {
        return Err(PsaError::InvalidArgument);
    };
    let group = EcGroup::from_curve_name(nid).map_err(error::internal)?;
    let mut ctx = BigNumContext::new().map_err(error::internal)?;
    let point = EcPoint::from_bytes(&group, peer, &mut ctx).map_err(error::parse)?;
    let key = EcKey::from_public_key(&group, &point).map_err(error::parse)?;
    key.check_key().map_err(error::parse)?;
    PKey::from_ec_key(key).map_err(error::internal)
}

/// The shared secret of `private` and `peer`, wiped on drop.
fn derive(
    private: &PKeyRef<Private>,
    peer: &PKeyRef<Public>,
) -> Result<Zeroizing<Vec<u8>>, PsaError> {
    let mut ctx = PkeyCtx::new(private).map_err(error::internal)?;
    ctx.derive_init().map_err(error::internal)?;
    ctx.derive_set_peer(peer).map_err(error::parse)?;
    let length = ctx.derive(None).map_err(error::internal)?;
    let mut secret = Zeroizing::new(vec![0; length]);
    // X25519 and X448 refuse an all-zero secret (a peer key of small order).
    let written = ctx.derive(Some(&mut secret[..])).map_err(error::parse)?;
    secret.truncate(written);
    Ok(secret)
}

fn agree(key: &LoadedKey, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, PsaError> {
    match &key.material {
        Material::Ec(ec) => {
            let private = ec.private_pkey.as_ref().ok_or(PsaError::InvalidArgument)?;
            let peer = weierstrass_peer(ec, peer)?;
            derive(private, &peer)
        }
        Material::Montgomery(montgomery) => {
            let private = montgomery
                .private
                .as_ref()
                .ok_or(PsaError::InvalidArgument)?;
            let id = if montgomery.curve == Curve::X25519 {
                Id::X25519
            } else {
                Id::X448
            };
            if peer.len() != montgomery.curve.bytes() {
                return Err(PsaError::InvalidArgument);
            }
            let peer = PKey::public_key_from_raw_bytes(peer, id).map_err(error::parse)?;
            derive(private, &peer)
        }
        _ => Err(PsaError::InvalidArgument),
    }
}

impl Handles<PsaRawKeyAgreement> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_raw_key_agreement::Request,
    ) -> Result<psa_raw_key_agreement::Response, ProviderError> {
        if request.alg == RawKeyAgreement::Ffdh {
            return Err(PsaError::NotSupported.into());
        }
        let key = self.load(&key)?;
        let mut secret = agree(&key, &request.peer_key)?;
        Ok(psa_raw_key_agreement::Response {
            shared_secret: SecretBytes::new(std::mem::take(&mut *secret)),
        })
    }
}
