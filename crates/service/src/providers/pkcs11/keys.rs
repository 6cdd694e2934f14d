//! Key management: PsaGenerateKey, PsaImportKey, PsaDestroyKey and PsaExportPublicKey.
//!
//! Order of the checks (docs/protocol.md#key-based-operations): deprecation, export flag against `allow_export`,
//! key type and size, then the name, then the key id and the token objects.

use std::sync::Arc;

use ::openssl::bn::{BigNum, BigNumContext};
use ::openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use ::openssl::pkey::PKey;
use ::openssl::rsa::Rsa;
use bulwark_interface::ops::{
    psa_destroy_key, psa_export_public_key, psa_generate_key, psa_import_key, PsaDestroyKey,
    PsaExportPublicKey, PsaGenerateKey, PsaImportKey,
};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use psa_crypto::types::key::{Attributes, EccFamily, Type};
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroize;

use super::token::PooledSession;
use super::{curve, error, lock, rsa_bits_ok, Curve, Half, Pkcs11Provider, PublicKey};
use crate::error::ProviderError;
use crate::keystore::KeyRecord;
use crate::providers::{
    is_psa_curve_size, Creation, Handles, KeyToCreate, RequestContext, ResolvedKey,
};

/// The token usage attributes of a key's policy: (sign, verify, encrypt, decrypt).
fn usage(attributes: Attributes) -> (bool, bool, bool, bool) {
    let flags = attributes.policy.usage_flags;
    (
        flags.sign_hash() || flags.sign_message(),
        flags.verify_hash() || flags.verify_message(),
        flags.encrypt(),
        flags.decrypt(),
    )
}

/// The attributes every private key object gets: on the token, private, never leaving it.
fn private_template(key_id: &[u8], attributes: Attributes) -> Vec<Attribute> {
    let (sign, _, _, decrypt) = usage(attributes);
    let mut template = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Id(key_id.to_vec()),
        Attribute::Sign(sign),
    ];
    if matches!(attributes.key_type, Type::RsaKeyPair) {
        template.push(Attribute::Decrypt(decrypt));
    }
    template
}

/// The attributes every public key object gets.
fn public_template(key_id: &[u8], attributes: Attributes) -> Vec<Attribute> {
    let (_, verify, encrypt, _) = usage(attributes);
    let mut template = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Id(key_id.to_vec()),
        Attribute::Verify(verify),
    ];
    if matches!(attributes.key_type, Type::RsaKeyPair | Type::RsaPublicKey) {
        template.push(Attribute::Encrypt(encrypt));
    }
    template
}

/// Overwrites the secret values of a template once it was given to the token.
fn wipe(template: &mut [Attribute]) {
    for attribute in template {
        if let Attribute::PrivateExponent(value)
        | Attribute::Prime1(value)
        | Attribute::Prime2(value)
        | Attribute::Exponent1(value)
        | Attribute::Exponent2(value)
        | Attribute::Coefficient(value)
        | Attribute::Value(value) = attribute
        {
            value.zeroize();
        }
    }
}

/// DER OCTET STRING holding `point` (the `CKA_EC_POINT` encoding).
fn octet_string(point: &[u8]) -> Vec<u8> {
    let mut der = vec![0x04];
    match point.len() {
        len @ 0..=0x7f => der.push(len as u8),
        len @ 0x80..=0xff => der.extend_from_slice(&[0x81, len as u8]),
        len => der.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
    der.extend_from_slice(point);
    der
}

/// The uncompressed point of `curve` in a `CKA_EC_POINT` value: a DER OCTET STRING, or (as
/// some tokens return it) the bare point.
fn ec_point(value: &[u8], curve: Curve) -> Result<Vec<u8>, PsaError> {
    let expected = 1 + 2 * curve.bytes();
    if value.len() == expected && value.first() == Some(&0x04) {
        return Ok(value.to_vec());
    }
    let body = match value {
        [0x04, len, rest @ ..] if usize::from(*len) < 0x80 => rest,
        [0x04, 0x81, _, rest @ ..] => rest,
        [0x04, 0x82, _, _, rest @ ..] => rest,
        _ => return Err(PsaError::DataCorrupt),
    };
    if body.len() == expected && body.first() == Some(&0x04) {
        Ok(body.to_vec())
    } else {
        Err(PsaError::DataCorrupt)
    }
}

fn openssl_error(_: ::openssl::error::ErrorStack) -> PsaError {
    PsaError::DataCorrupt
}

/// A public key from its RSA components.
fn rsa_public(modulus: &[u8], exponent: &[u8]) -> Result<PublicKey, PsaError> {
    let rsa = Rsa::from_public_components(
        BigNum::from_slice(modulus).map_err(openssl_error)?,
        BigNum::from_slice(exponent).map_err(openssl_error)?,
    )
    .map_err(openssl_error)?;
    let export = rsa.public_key_to_der_pkcs1().map_err(openssl_error)?;
    let size = rsa.size() as usize;
    Ok(PublicKey {
        export,
        pkey: PKey::from_rsa(rsa).map_err(openssl_error)?,
        size,
    })
}

/// A public key from its uncompressed point; `InvalidArgument` if not a point of the curve.
fn ec_public(curve: Curve, point: &[u8]) -> Result<PublicKey, PsaError> {
    if point.len() != 1 + 2 * curve.bytes() || point.first() != Some(&0x04) {
        return Err(PsaError::InvalidArgument);
    }
    let group = EcGroup::from_curve_name(curve.nid).map_err(|_| PsaError::NotSupported)?;
    let mut ctx = BigNumContext::new().map_err(openssl_error)?;
    let parsed =
        EcPoint::from_bytes(&group, point, &mut ctx).map_err(|_| PsaError::InvalidArgument)?;
    let key = EcKey::from_public_key(&group, &parsed).map_err(|_| PsaError::InvalidArgument)?;
    key.check_key().map_err(|_| PsaError::InvalidArgument)?;
    Ok(PublicKey {
        export: point.to_vec(),
        pkey: PKey::from_ec_key(key).map_err(openssl_error)?,
        size: curve.bytes(),
    })
}

/// Token objects of a key to import, checked and with its real size.
struct Import {
    bits: usize,
    private: Option<Vec<Attribute>>,
    public: Vec<Attribute>,
}

/// The curve of `family` whose byte size gives `len` (when `bits` is 0) or of `bits`.
fn import_curve(
    family: EccFamily,
    bits: usize,
    len: usize,
    len_of: fn(usize) -> usize,
) -> Result<Curve, PsaError> {
    if bits != 0 {
        let curve = curve(family, bits).ok_or(PsaError::NotSupported)?;
        return if len_of(curve.bytes()) == len {
            Ok(curve)
        } else {
            Err(PsaError::InvalidArgument)
        };
    }
    super::CURVES
        .iter()
        .find(|c| c.family == family && len_of(c.bytes()) == len)
        .copied()
        .ok_or(PsaError::InvalidArgument)
}

/// Parses and checks key data (docs/protocol.md#key-data-formats) into token templates.
fn parse_import(attributes: Attributes, data: &[u8]) -> Result<Import, PsaError> {
    let bad = |_| PsaError::InvalidArgument;
    match attributes.key_type {
        Type::RsaKeyPair => {
            let rsa = Rsa::private_key_from_der(data).map_err(bad)?;
            if !rsa.check_key().unwrap_or(false) {
                return Err(PsaError::InvalidArgument);
            }
            let bits = rsa.n().num_bits() as usize;
            let (Some(p), Some(q), Some(dp), Some(dq), Some(qi)) =
                (rsa.p(), rsa.q(), rsa.dmp1(), rsa.dmq1(), rsa.iqmp())
            else {
                return Err(PsaError::InvalidArgument);
            };
            let private = vec![
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Modulus(rsa.n().to_vec()),
                Attribute::PublicExponent(rsa.e().to_vec()),
                Attribute::PrivateExponent(rsa.d().to_vec()),
                Attribute::Prime1(p.to_vec()),
                Attribute::Prime2(q.to_vec()),
                Attribute::Exponent1(dp.to_vec()),
                Attribute::Exponent2(dq.to_vec()),
                Attribute::Coefficient(qi.to_vec()),
            ];
            let public = vec![
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::RSA),
                Attribute::Modulus(rsa.n().to_vec()),
                Attribute::PublicExponent(rsa.e().to_vec()),
            ];
            Ok(Import {
                bits,
                private: Some(private),
                public,
            })
        }
        Type::RsaPublicKey => {
            let rsa = Rsa::public_key_from_der_pkcs1(data).map_err(bad)?;
            Ok(Import {
                bits: rsa.n().num_bits() as usize,
                private: None,
                public: vec![
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Modulus(rsa.n().to_vec()),
                    Attribute::PublicExponent(rsa.e().to_vec()),
                ],
            })
        }
        Type::EccKeyPair { curve_family } => {
            let curve = import_curve(curve_family, attributes.bits, data.len(), |b| b)?;
            let group = EcGroup::from_curve_name(curve.nid).map_err(|_| PsaError::NotSupported)?;
            let mut ctx = BigNumContext::new().map_err(openssl_error)?;
            let scalar = BigNum::from_slice(data).map_err(bad)?;
            let mut order = BigNum::new().map_err(openssl_error)?;
            group.order(&mut order, &mut ctx).map_err(openssl_error)?;
            if scalar.num_bits() == 0 || scalar.ucmp(&order).is_ge() {
                return Err(PsaError::InvalidArgument);
            }
            let mut point = EcPoint::new(&group).map_err(openssl_error)?;
            point
                .mul_generator2(&group, &scalar, &mut ctx)
                .map_err(openssl_error)?;
            let point = point
                .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
                .map_err(openssl_error)?;
            let private = vec![
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(curve.oid.to_vec()),
                Attribute::Value(data.to_vec()),
            ];
            let public = vec![
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(curve.oid.to_vec()),
                Attribute::EcPoint(octet_string(&point)),
            ];
            Ok(Import {
                bits: curve.bits,
                private: Some(private),
                public,
            })
        }
        Type::EccPublicKey { curve_family } => {
            let curve = import_curve(curve_family, attributes.bits, data.len(), |b| 1 + 2 * b)?;
            ec_public(curve, data)?;
            Ok(Import {
                bits: curve.bits,
                private: None,
                public: vec![
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcParams(curve.oid.to_vec()),
                    Attribute::EcPoint(octet_string(data)),
                ],
            })
        }
        _ => Err(PsaError::NotSupported),
    }
}

impl Pkcs11Provider {
    /// `NotPermitted` for a key with the export flag when `allow_export` is false.
    fn check_export(&self, attributes: Attributes) -> Result<(), PsaError> {
        if !self.allow_export && attributes.policy.usage_flags.export() {
            Err(PsaError::NotPermitted)
        } else {
            Ok(())
        }
    }

    /// A random key id used neither in the key store nor on the token.
    fn allocate_id(
        &self,
        key: &KeyToCreate<'_>,
        session: &PooledSession<'_>,
    ) -> Result<Vec<u8>, ProviderError> {
        for _ in 0..64 {
            let mut id = [0_u8; 4];
            ::openssl::rand::rand_bytes(&mut id).map_err(|_| PsaError::InsufficientEntropy)?;
            let id = id.to_vec();
            if key.key_id_in_use(&id)? {
                continue;
            }
            let on_token = {
                let _list = session.object_list();
                session.find_objects(&[Attribute::Id(id.clone())])
            }
            .map_err(error::psa)?;
            if on_token.is_empty() {
                return Ok(id);
            }
        }
        Err(PsaError::InsufficientStorage.into())
    }

    /// Creates key `key_name`: chooses its id, then runs `make` on the token within
    /// [`KeyToCreate::create`]. Objects `make` left behind when it failed are removed.
    fn create_key(
        &self,
        key: &KeyToCreate<'_>,
        attributes: Attributes,
        creation: Creation,
        make: impl FnOnce(&Session, &[u8]) -> Result<(), PsaError>,
    ) -> Result<(), ProviderError> {
        let _creating = lock(&self.creating);
        let session = self.token.pool.get()?;
        let key_id = self.allocate_id(key, &session)?;
        let remove = |id: &[u8]| -> Result<(), ProviderError> {
            let _list = session.object_list();
            let objects = session
                .find_objects(&[Attribute::Token(true), Attribute::Id(id.to_vec())])
                .map_err(error::psa)?;
            for object in objects {
                session.destroy_object(object).map_err(error::psa)?;
            }
            Ok(())
        };
        key.create(
            attributes,
            key_id.clone(),
            creation,
            || {
                let made = {
                    let _list = session.object_list();
                    make(&session, &key_id)
                };
                made.map_err(|e| {
                    let _ = remove(&key_id);
                    e.into()
                })
            },
            remove,
        )
    }

    /// The public half of key `record`, read from the token once.
    pub(super) fn public_key(&self, record: &KeyRecord) -> Result<Arc<PublicKey>, PsaError> {
        if let Some(key) = lock(&self.publics).get(record.key_id.as_slice()) {
            return Ok(Arc::clone(key));
        }
        let key = match record.attributes.key_type {
            Type::RsaKeyPair | Type::RsaPublicKey => {
                let values = self.with_object(record, Half::Public, error::psa, |s, h| {
                    s.get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])
                })?;
                let (mut modulus, mut exponent) = (None, None);
                for value in values {
                    match value {
                        Attribute::Modulus(n) => modulus = Some(n),
                        Attribute::PublicExponent(e) => exponent = Some(e),
                        _ => {}
                    }
                }
                let (Some(modulus), Some(exponent)) = (modulus, exponent) else {
                    return Err(PsaError::DataCorrupt);
                };
                rsa_public(&modulus, &exponent)?
            }
            Type::EccKeyPair { .. } | Type::EccPublicKey { .. } => {
                let values = self.with_object(record, Half::Public, error::psa, |s, h| {
                    s.get_attributes(h, &[AttributeType::EcParams, AttributeType::EcPoint])
                })?;
                let (mut params, mut point) = (None, None);
                for value in values {
                    match value {
                        Attribute::EcParams(p) => params = Some(p),
                        Attribute::EcPoint(q) => point = Some(q),
                        _ => {}
                    }
                }
                let (Some(params), Some(point)) = (params, point) else {
                    return Err(PsaError::DataCorrupt);
                };
                let curve = super::CURVES
                    .iter()
                    .find(|c| c.oid == params.as_slice())
                    .copied()
                    .ok_or(PsaError::DataCorrupt)?;
                ec_public(curve, &ec_point(&point, curve)?).map_err(|_| PsaError::DataCorrupt)?
            }
            _ => return Err(PsaError::InvalidArgument),
        };
        let key = Arc::new(key);
        lock(&self.publics).insert(record.key_id.to_vec(), Arc::clone(&key));
        Ok(key)
    }
}

impl Handles<PsaGenerateKey> for Pkcs11Provider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: KeyToCreate<'_>,
        request: psa_generate_key::Request,
    ) -> Result<psa_generate_key::Response, ProviderError> {
        let attributes = request.attributes;
        ctx.check_generation(&attributes)?;
        self.check_export(attributes)?;
        let (mechanism, specific) = match attributes.key_type {
            Type::RsaKeyPair => {
                if !rsa_bits_ok(attributes.bits) {
                    return Err(PsaError::InvalidArgument.into());
                }
                (
                    Mechanism::RsaPkcsKeyPairGen,
                    vec![
                        Attribute::ModulusBits(Ulong::from(attributes.bits as u64)),
                        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                    ],
                )
            }
            Type::EccKeyPair { curve_family } => {
                if !is_psa_curve_size(curve_family, attributes.bits) {
                    return Err(PsaError::InvalidArgument.into());
                }
                let curve = curve(curve_family, attributes.bits).ok_or(PsaError::NotSupported)?;
                (
                    Mechanism::EccKeyPairGen,
                    vec![Attribute::EcParams(curve.oid.to_vec())],
                )
            }
            _ => return Err(PsaError::NotSupported.into()),
        };
        key.check_free()?;
        self.create_key(&key, attributes, Creation::Generate, |session, key_id| {
            let mut public = public_template(key_id, attributes);
            public.extend(specific);
            let private = private_template(key_id, attributes);
            session
                .generate_key_pair(&mechanism, &public, &private)
                .map_err(error::psa)?;
            Ok(())
        })?;
        Ok(psa_generate_key::Response)
    }
}

impl Handles<PsaImportKey> for Pkcs11Provider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: KeyToCreate<'_>,
        request: psa_import_key::Request,
    ) -> Result<psa_import_key::Response, ProviderError> {
        let attributes = request.attributes;
        if request.data.is_empty() {
            return Err(PsaError::InvalidArgument.into());
        }
        self.check_export(attributes)?;
        let Import {
            bits,
            private,
            public,
        } = parse_import(attributes, &request.data)?;
        if attributes.bits != 0 && attributes.bits != bits {
            return Err(PsaError::InvalidArgument.into());
        }
        if matches!(attributes.key_type, Type::RsaKeyPair | Type::RsaPublicKey)
            && !rsa_bits_ok(bits)
        {
            return Err(PsaError::NotSupported.into());
        }
        // Recorded as sent (a `key_bits` of 0 stays 0), as the other providers do.
        key.check_free()?;
        let mut private = private.map(|specific| {
            let mut template = private_template(&[], attributes);
            template.extend(specific);
            template
        });
        let result = self.create_key(&key, attributes, Creation::Import, |session, key_id| {
            let mut template = public_template(key_id, attributes);
            template.extend(public);
            session.create_object(&template).map_err(error::psa)?;
            if let Some(private) = private.as_mut() {
                for attribute in private.iter_mut() {
                    if let Attribute::Id(id) = attribute {
                        *id = key_id.to_vec();
                    }
                }
                session.create_object(private).map_err(error::psa)?;
            }
            Ok(())
        });
        if let Some(private) = private.as_mut() {
            wipe(private);
        }
        result?;
        Ok(psa_import_key::Response)
    }
}

impl Handles<PsaDestroyKey> for Pkcs11Provider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_destroy_key::Request,
    ) -> Result<psa_destroy_key::Response, ProviderError> {
        key.destroy(|record| Ok(self.destroy_objects(&record.key_id)?))?;
        Ok(psa_destroy_key::Response)
    }
}

impl Handles<PsaExportPublicKey> for Pkcs11Provider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_export_public_key::Request,
    ) -> Result<psa_export_public_key::Response, ProviderError> {
        let record = key.record();
        let key = self.public_key(record)?;
        Ok(psa_export_public_key::Response {
            data: key.export.clone(),
        })
    }
}
