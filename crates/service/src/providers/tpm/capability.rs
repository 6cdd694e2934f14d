//! What the TPM can do, read once at start-up, and CanDoCrypto answered from it.
//!
//! RSA sizes and curves are asked with `TPM2_TestParms`, hashes with
//! `TPM2_GetCapability(algorithms)`. For CanDoCrypto's rules (`providers::can_do`): held are RSA
//! keys of a size the TPM takes and ECC keys on a secp-r1 curve it has (`key_bits` 0 meaning
//! any size); implemented are the algorithms this provider has, with a hash the TPM has;
//! generated are key pairs, imported public keys.

use bulwark_interface::ops::can_do_crypto;
use bulwark_interface::ops::CanDoCrypto;
use psa_crypto::types::algorithm::{
    Algorithm, AsymmetricEncryption, AsymmetricSignature, Hash, SignHash,
};
use psa_crypto::types::key::{Attributes, EccFamily, Type};
use tss_esapi::constants::AlgorithmIdentifier;
use tss_esapi::constants::CapabilityType;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::{
    CapabilityData, EccScheme, KeyDerivationFunctionScheme, PublicEccParameters, PublicParameters,
    PublicRsaParameters, RsaExponent, RsaScheme, SymmetricDefinitionObject,
};
use tss_esapi::Context;

use super::TpmProvider;
use crate::error::ProviderError;
use crate::providers::can_do;
use crate::providers::{Handles, RequestContext};

/// RSA sizes a TPM may take.
const RSA_SIZES: [(usize, RsaKeyBits); 4] = [
    (1024, RsaKeyBits::Rsa1024),
    (2048, RsaKeyBits::Rsa2048),
    (3072, RsaKeyBits::Rsa3072),
    (4096, RsaKeyBits::Rsa4096),
];

/// secp-r1 curves a TPM may have, by size.
const CURVES: [(usize, EccCurve); 5] = [
    (192, EccCurve::NistP192),
    (224, EccCurve::NistP224),
    (256, EccCurve::NistP256),
    (384, EccCurve::NistP384),
    (521, EccCurve::NistP521),
];

/// What the TPM reported.
#[derive(Debug, Clone, Default)]
pub(super) struct Capabilities {
    /// RSA key sizes it takes.
    pub rsa_bits: Vec<usize>,
    /// secp-r1 curve sizes it has.
    pub curve_bits: Vec<usize>,
    /// Hashes it has.
    pub hashes: Vec<Hash>,
}

/// The TPM's name of a PSA hash (SHA-1 included: it is still a TPM hash).
#[allow(deprecated)]
pub(super) fn tpm_hash(hash: Hash) -> Option<HashingAlgorithm> {
    Some(match hash {
        Hash::Sha1 => HashingAlgorithm::Sha1,
        Hash::Sha256 => HashingAlgorithm::Sha256,
        Hash::Sha384 => HashingAlgorithm::Sha384,
        Hash::Sha512 => HashingAlgorithm::Sha512,
        Hash::Sha3_256 => HashingAlgorithm::Sha3_256,
        Hash::Sha3_384 => HashingAlgorithm::Sha3_384,
        Hash::Sha3_512 => HashingAlgorithm::Sha3_512,
        _ => return None,
    })
}

impl Capabilities {
    /// Asks the TPM (failures count as "not supported").
    #[allow(deprecated)]
    pub(super) fn probe(context: &mut Context) -> Capabilities {
        let rsa_bits = RSA_SIZES
            .iter()
            .filter(|(_, bits)| {
                let parameters = PublicRsaParameters::new(
                    SymmetricDefinitionObject::Null,
                    RsaScheme::Null,
                    *bits,
                    RsaExponent::ZERO_EXPONENT,
                );
                context
                    .test_parms(PublicParameters::Rsa(parameters))
                    .is_ok()
            })
            .map(|(size, _)| *size)
            .collect();
        let curve_bits = CURVES
            .iter()
            .filter(|(_, curve)| {
                let parameters = PublicEccParameters::new(
                    SymmetricDefinitionObject::Null,
                    EccScheme::Null,
                    *curve,
                    KeyDerivationFunctionScheme::Null,
                );
                context
                    .test_parms(PublicParameters::Ecc(parameters))
                    .is_ok()
            })
            .map(|(size, _)| *size)
            .collect();
        let algorithms = match context.get_capability(CapabilityType::Algorithms, 0, 256) {
            Ok((CapabilityData::Algorithms(list), _)) => Some(list),
            _ => None,
        };
        let hashes = [
            Hash::Sha1,
            Hash::Sha256,
            Hash::Sha384,
            Hash::Sha512,
            Hash::Sha3_256,
            Hash::Sha3_384,
            Hash::Sha3_512,
        ]
        .into_iter()
        .filter(|hash| {
            let (Some(list), Some(tpm)) = (&algorithms, tpm_hash(*hash)) else {
                return false;
            };
            list.find(AlgorithmIdentifier::from(tpm)).is_some()
        })
        .collect();
        Capabilities {
            rsa_bits,
            curve_bits,
            hashes,
        }
    }

    /// The TPM's size for an RSA key of `bits`, if it takes it.
    pub(super) fn rsa(&self, bits: usize) -> Option<RsaKeyBits> {
        RSA_SIZES
            .iter()
            .find(|(size, _)| *size == bits && self.rsa_bits.contains(size))
            .map(|(_, tpm)| *tpm)
    }

    /// The TPM's curve for a secp-r1 key of `bits`, if it has it.
    pub(super) fn curve(&self, bits: usize) -> Option<EccCurve> {
        CURVES
            .iter()
            .find(|(size, _)| *size == bits && self.curve_bits.contains(size))
            .map(|(_, curve)| *curve)
    }

    /// The TPM's name of `hash`, if it has it.
    pub(super) fn hash(&self, hash: Hash) -> Option<HashingAlgorithm> {
        tpm_hash(hash).filter(|_| self.hashes.contains(&hash))
    }

    /// The TPM's hash for a signature scheme's hash, if it has it (`Any` is refused: a request
    /// names a specific hash).
    pub(super) fn sign_hash(&self, hash: SignHash) -> Option<HashingAlgorithm> {
        match hash {
            SignHash::Specific(hash) => self.hash(hash),
            SignHash::Any => None,
        }
    }

    /// Whether a key whose policy names `alg` can be created here: no algorithm, or one this
    /// provider implements (so a key is never made that could not be used).
    pub(super) fn policy_ok(&self, alg: Algorithm) -> bool {
        alg == Algorithm::None || self.has_algorithm(alg)
    }

    /// Whether this provider implements `alg`.
    fn has_algorithm(&self, alg: Algorithm) -> bool {
        let sign_hash_ok = |hash: SignHash| match hash {
            SignHash::Any => true,
            SignHash::Specific(hash) => self.hash(hash).is_some(),
        };
        match alg {
            Algorithm::AsymmetricSignature(
                AsymmetricSignature::RsaPkcs1v15Sign { hash_alg }
                | AsymmetricSignature::Ecdsa { hash_alg },
            ) => sign_hash_ok(hash_alg),
            Algorithm::AsymmetricSignature(AsymmetricSignature::EcdsaAny) => true,
            Algorithm::AsymmetricEncryption(AsymmetricEncryption::RsaPkcs1v15Crypt) => true,
            Algorithm::AsymmetricEncryption(AsymmetricEncryption::RsaOaep { hash_alg }) => {
                self.hash(hash_alg).is_some()
            }
            _ => false,
        }
    }
}

impl can_do::Capabilities for Capabilities {
    fn holds(&self, attributes: Attributes) -> bool {
        let bits = attributes.bits;
        match attributes.key_type {
            Type::RsaKeyPair | Type::RsaPublicKey => bits == 0 || self.rsa(bits).is_some(),
            Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            }
            | Type::EccPublicKey {
                curve_family: EccFamily::SecpR1,
            } => bits == 0 || self.curve(bits).is_some(),
            _ => false,
        }
    }

    fn generates(&self, attributes: Attributes) -> bool {
        !attributes.key_type.is_public_key()
    }

    fn imports(&self, attributes: Attributes) -> bool {
        attributes.key_type.is_public_key()
    }

    fn implements(&self, alg: Algorithm, _: Attributes) -> bool {
        self.has_algorithm(alg)
    }
}

impl Handles<CanDoCrypto> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        _: (),
        request: can_do_crypto::Request,
    ) -> Result<can_do_crypto::Response, ProviderError> {
        can_do::answer(&self.capabilities, request)
    }
}
