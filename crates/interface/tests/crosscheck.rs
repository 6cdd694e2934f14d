#![allow(clippy::unwrap_used, clippy::expect_used)]
// MD2, MD4, MD5, SHA-1, DES, ARC4 and the weak curves are deprecated in psa-crypto, and are still
// on the wire.
#![allow(deprecated)]
//! Cross-check against the upstream implementation, `parsec-interface` 0.30.
//!
//! For every operation both sides know (all of ours but PsaMacCompute and PsaMacVerify, which
//! upstream lacks), operation and result:
//!
//! - ours → theirs: our native value is encoded by us, decoded by upstream's
//!   `ProtobufConverter`, encoded again by upstream; the bytes must be ours;
//! - theirs → ours: the same value built as upstream's native type is encoded by upstream,
//!   decoded by us (and must equal our value) and encoded by us again (same bytes).
//!
//! Protobuf encodings of these messages are canonical (fields in number order, defaults
//! omitted, no unknown fields), so equal bytes mean equal values. The values come from proptest
//! strategies over the valid space (random names, bytes, lengths, algorithms, key types, usage
//! flags, provider ids...). A few operations are also compared field by field after upstream
//! decodes them. ListOpcodes results are compared as sets: upstream keeps them in a `HashSet`
//! and writes them in hash order.
//!
//! Then the tables (opcode numbers and names, status values and names, provider ids) and the
//! fixed header: frames written by either side are read by the other and written back, and
//! malformed headers get the same status from both readers.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Debug;

use bulwark_interface::ids::{AuthType, BodyType, ProviderId};
use bulwark_interface::ops::{self, Opcode, Operation};
use bulwark_interface::psa_types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Cipher,
    FullLengthMac, Hash, KeyAgreement, KeyDerivation, Mac, RawKeyAgreement, SignHash,
};
use bulwark_interface::psa_types::key::{
    Attributes, DhFamily, EccFamily, Lifetime, Policy, Type, UsageFlags,
};
use bulwark_interface::secret::SecretBytes;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{
    Limits, RequestFrame, RequestHeader, ResponseFrame, ResponseHeader, HEADER_LEN, MAGIC,
};
use parsec_interface::operations::{self as up, Convert, NativeOperation, NativeResult};
use parsec_interface::operations_protobuf::ProtobufConverter;
use parsec_interface::requests as up_req;
use parsec_interface::secrecy::{ExposeSecret, Secret};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use zeroize::Zeroizing;

const CONVERTER: ProtobufConverter = ProtobufConverter;

/// 64 cases per property, and no regression files written into the source tree.
fn config() -> Config {
    Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Mapping of the small enums
// ---------------------------------------------------------------------------------------------

/// Upstream's opcode of the same value, as upstream's own header reader reads it; `None` for
/// the operations upstream lacks. [`opcode_numbers_names_and_kinds_agree`] checks that the
/// names agree too.
fn their_opcode(opcode: Opcode) -> Option<up_req::Opcode> {
    let bytes = header_with_opcode(opcode.value());
    up_req::Request::read_from_stream(&mut bytes.as_slice(), 1 << 20)
        .ok()
        .map(|request| request.header.opcode)
}

fn shared_opcode(opcode: Opcode) -> up_req::Opcode {
    their_opcode(opcode).unwrap_or_else(|| panic!("upstream has no {opcode:?}"))
}

/// The opcodes both sides know.
fn shared_opcodes() -> Vec<Opcode> {
    Opcode::ALL
        .iter()
        .copied()
        .filter(|op| their_opcode(*op).is_some())
        .collect()
}

fn their_provider(provider: ProviderId) -> up_req::ProviderId {
    up_req::ProviderId::try_from(provider.value()).unwrap()
}

fn their_auth(auth: AuthType) -> up_req::AuthType {
    use up_req::AuthType as U;
    match auth {
        AuthType::NoAuth => U::NoAuth,
        AuthType::Direct => U::Direct,
        AuthType::Jwt => U::Jwt,
        AuthType::UnixPeerCredentials => U::UnixPeerCredentials,
        AuthType::JwtSvid => U::JwtSvid,
    }
}

fn their_status(status: ResponseStatus) -> up_req::ResponseStatus {
    up_req::ResponseStatus::try_from(status.value()).unwrap()
}

fn their_check_type(check: ops::can_do_crypto::CheckType) -> up::can_do_crypto::CheckType {
    use ops::can_do_crypto::CheckType as C;
    use up::can_do_crypto::CheckType as U;
    match check {
        C::Use => U::Use,
        C::Generate => U::Generate,
        C::Import => U::Import,
        C::Derive => U::Derive,
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies: the valid space of every native type
// ---------------------------------------------------------------------------------------------

const HASHES: [Hash; 15] = [
    Hash::Md2,
    Hash::Md4,
    Hash::Md5,
    Hash::Ripemd160,
    Hash::Sha1,
    Hash::Sha224,
    Hash::Sha256,
    Hash::Sha384,
    Hash::Sha512,
    Hash::Sha512_224,
    Hash::Sha512_256,
    Hash::Sha3_224,
    Hash::Sha3_256,
    Hash::Sha3_384,
    Hash::Sha3_512,
];

const CIPHERS: [Cipher; 8] = [
    Cipher::StreamCipher,
    Cipher::Ctr,
    Cipher::Cfb,
    Cipher::Ofb,
    Cipher::Xts,
    Cipher::EcbNoPadding,
    Cipher::CbcNoPadding,
    Cipher::CbcPkcs7,
];

const ECC_FAMILIES: [EccFamily; 9] = [
    EccFamily::SecpK1,
    EccFamily::SecpR1,
    EccFamily::SecpR2,
    EccFamily::SectK1,
    EccFamily::SectR1,
    EccFamily::SectR2,
    EccFamily::BrainpoolPR1,
    EccFamily::Frp,
    EccFamily::Montgomery,
];

/// Any string, short; names may be empty and hold any Unicode.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

/// A name that means "given": never empty (an empty one is sent as "absent").
fn optional_name() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(name().prop_filter("non-empty", |s| !s.is_empty()))
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..48)
}

/// An OAEP label: absent or non-empty (an empty one is sent as "absent").
fn salt() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(vec(any::<u8>(), 1..32))
}

/// A MAC or tag length, a size: small values and the whole `uint32` range.
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=64, any::<u32>().prop_map(|v| v as usize)]
}

fn hash() -> impl Strategy<Value = Hash> {
    select(HASHES.to_vec())
}

fn sign_hash() -> impl Strategy<Value = SignHash> {
    prop_oneof![Just(SignHash::Any), hash().prop_map(SignHash::Specific)]
}

fn signature() -> impl Strategy<Value = AsymmetricSignature> {
    use AsymmetricSignature as S;
    prop_oneof![
        Just(S::RsaPkcs1v15SignRaw),
        Just(S::EcdsaAny),
        sign_hash().prop_map(|hash_alg| S::RsaPkcs1v15Sign { hash_alg }),
        sign_hash().prop_map(|hash_alg| S::RsaPss { hash_alg }),
        sign_hash().prop_map(|hash_alg| S::Ecdsa { hash_alg }),
        sign_hash().prop_map(|hash_alg| S::DeterministicEcdsa { hash_alg }),
    ]
}

fn encryption() -> impl Strategy<Value = AsymmetricEncryption> {
    prop_oneof![
        Just(AsymmetricEncryption::RsaPkcs1v15Crypt),
        hash().prop_map(|hash_alg| AsymmetricEncryption::RsaOaep { hash_alg }),
    ]
}

fn full_length_mac() -> impl Strategy<Value = FullLengthMac> {
    prop_oneof![
        Just(FullLengthMac::CbcMac),
        Just(FullLengthMac::Cmac),
        hash().prop_map(|hash_alg| FullLengthMac::Hmac { hash_alg }),
    ]
}

fn mac() -> impl Strategy<Value = Mac> {
    prop_oneof![
        full_length_mac().prop_map(Mac::FullLength),
        (full_length_mac(), length()).prop_map(|(mac_alg, mac_length)| Mac::Truncated {
            mac_alg,
            mac_length
        }),
    ]
}

fn cipher() -> impl Strategy<Value = Cipher> {
    select(CIPHERS.to_vec())
}

fn aead_with_default_length_tag() -> impl Strategy<Value = AeadWithDefaultLengthTag> {
    select(vec![
        AeadWithDefaultLengthTag::Ccm,
        AeadWithDefaultLengthTag::Gcm,
        AeadWithDefaultLengthTag::Chacha20Poly1305,
    ])
}

fn aead() -> impl Strategy<Value = Aead> {
    prop_oneof![
        aead_with_default_length_tag().prop_map(Aead::AeadWithDefaultLengthTag),
        (aead_with_default_length_tag(), length()).prop_map(|(aead_alg, tag_length)| {
            Aead::AeadWithShortenedTag {
                aead_alg,
                tag_length,
            }
        }),
    ]
}

fn raw_key_agreement() -> impl Strategy<Value = RawKeyAgreement> {
    select(vec![RawKeyAgreement::Ffdh, RawKeyAgreement::Ecdh])
}

fn key_derivation() -> impl Strategy<Value = KeyDerivation> {
    prop_oneof![
        hash().prop_map(|hash_alg| KeyDerivation::Hkdf { hash_alg }),
        hash().prop_map(|hash_alg| KeyDerivation::Tls12Prf { hash_alg }),
        hash().prop_map(|hash_alg| KeyDerivation::Tls12PskToMs { hash_alg }),
    ]
}

fn key_agreement() -> impl Strategy<Value = KeyAgreement> {
    prop_oneof![
        raw_key_agreement().prop_map(KeyAgreement::Raw),
        (raw_key_agreement(), key_derivation())
            .prop_map(|(ka_alg, kdf_alg)| KeyAgreement::WithKeyDerivation { ka_alg, kdf_alg }),
    ]
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::None),
        hash().prop_map(Algorithm::Hash),
        mac().prop_map(Algorithm::Mac),
        cipher().prop_map(Algorithm::Cipher),
        aead().prop_map(Algorithm::Aead),
        signature().prop_map(Algorithm::AsymmetricSignature),
        encryption().prop_map(Algorithm::AsymmetricEncryption),
        key_agreement().prop_map(Algorithm::KeyAgreement),
        key_derivation().prop_map(Algorithm::KeyDerivation),
    ]
}

fn key_type() -> impl Strategy<Value = Type> {
    let group_family = DhFamily::Rfc7919;
    prop_oneof![
        select(vec![
            Type::RawData,
            Type::Hmac,
            Type::Derive,
            Type::Aes,
            Type::Des,
            Type::Camellia,
            Type::Arc4,
            Type::Chacha20,
            Type::RsaPublicKey,
            Type::RsaKeyPair,
            Type::DhKeyPair { group_family },
            Type::DhPublicKey { group_family },
        ]),
        select(ECC_FAMILIES.to_vec()).prop_map(|curve_family| Type::EccKeyPair { curve_family }),
        select(ECC_FAMILIES.to_vec()).prop_map(|curve_family| Type::EccPublicKey { curve_family }),
    ]
}

/// Usage flags as the setters make them (setting a hash flag also sets its message flag).
fn usage_flags() -> impl Strategy<Value = UsageFlags> {
    any::<u16>().prop_map(|bits| {
        let setters: [fn(&mut UsageFlags) -> &mut UsageFlags; 10] = [
            UsageFlags::set_export,
            UsageFlags::set_copy,
            UsageFlags::set_cache,
            UsageFlags::set_encrypt,
            UsageFlags::set_decrypt,
            UsageFlags::set_sign_message,
            UsageFlags::set_verify_message,
            UsageFlags::set_sign_hash,
            UsageFlags::set_verify_hash,
            UsageFlags::set_derive,
        ];
        let mut flags = UsageFlags::default();
        for (i, set) in setters.iter().enumerate() {
            if bits & (1 << i) != 0 {
                set(&mut flags);
            }
        }
        flags
    })
}

/// Key attributes; the lifetime is not on the wire and both sides decode it as persistent.
fn attributes() -> impl Strategy<Value = Attributes> {
    (key_type(), any::<u32>(), usage_flags(), algorithm()).prop_map(
        |(key_type, bits, usage_flags, permitted_algorithms)| Attributes {
            lifetime: Lifetime::Persistent,
            key_type,
            bits: bits as usize,
            policy: Policy {
                usage_flags,
                permitted_algorithms,
            },
        },
    )
}

fn provider_id() -> impl Strategy<Value = ProviderId> {
    select(ProviderId::ALL.to_vec())
}

fn auth_type() -> impl Strategy<Value = AuthType> {
    select(AuthType::ALL.to_vec())
}

fn check_type() -> impl Strategy<Value = ops::can_do_crypto::CheckType> {
    use ops::can_do_crypto::CheckType as C;
    select(vec![C::Use, C::Generate, C::Import, C::Derive])
}

// ---------------------------------------------------------------------------------------------
// The two directions
// ---------------------------------------------------------------------------------------------

/// Upstream's request body type holding `body`. Upstream builds one only from its stream reader
/// or its encoder, so the bytes are framed by our writer and read back by upstream's reader.
fn their_request_body(opcode: Opcode, body: &[u8]) -> up_req::request::RequestBody {
    let frame = RequestFrame {
        header: RequestHeader::new(ProviderId::Core, opcode, AuthType::NoAuth),
        body: Zeroizing::new(body.to_vec()),
        auth: Zeroizing::new(Vec::new()),
    };
    let bytes = frame.to_bytes().unwrap();
    let request = up_req::Request::read_from_stream(&mut bytes.as_slice(), usize::MAX).unwrap();
    assert_eq!(request.body.bytes(), body);
    request.body
}

/// As [`their_request_body`], for a response body.
fn their_response_body(opcode: Opcode, body: &[u8]) -> up_req::response::ResponseBody {
    let frame = ResponseFrame {
        header: ResponseHeader {
            provider: ProviderId::Core,
            session: 0,
            content_type: BodyType::Protobuf,
            opcode,
            status: ResponseStatus::Success,
            flags: 0,
        },
        body: Zeroizing::new(body.to_vec()),
    };
    let bytes = frame.to_bytes().unwrap();
    let response = up_req::Response::read_from_stream(&mut bytes.as_slice(), usize::MAX).unwrap();
    assert_eq!(response.body.bytes(), body);
    response.body
}

/// Upstream's decoding of a request body of `opcode`.
fn their_operation(opcode: Opcode, body: &[u8]) -> NativeOperation {
    CONVERTER
        .body_to_operation(their_request_body(opcode, body), shared_opcode(opcode))
        .unwrap_or_else(|status| {
            panic!(
                "upstream rejects {opcode:?} body {}: {status}",
                hex::encode(body)
            )
        })
}

/// Upstream's decoding of a response body of `opcode`.
fn their_result(opcode: Opcode, body: &[u8]) -> NativeResult {
    CONVERTER
        .body_to_result(their_response_body(opcode, body), shared_opcode(opcode))
        .unwrap_or_else(|status| {
            panic!(
                "upstream rejects {opcode:?} result {}: {status}",
                hex::encode(body)
            )
        })
}

/// Both directions for a request: `ours` and `theirs` hold the same value.
///
/// Returns our encoding, for the field-by-field checks.
fn check_request<O: Operation>(ours: &O::Request, theirs: NativeOperation) -> Vec<u8>
where
    O::Request: Clone + PartialEq + Debug,
{
    assert_eq!(theirs.opcode(), shared_opcode(O::OPCODE));
    let our_bytes = ops::encode_request::<O>(ours.clone()).unwrap().to_vec();

    // Ours → theirs → theirs again.
    let decoded = their_operation(O::OPCODE, &our_bytes);
    assert_eq!(decoded.opcode(), shared_opcode(O::OPCODE));
    let reencoded = CONVERTER.operation_to_body(decoded).unwrap();
    assert_eq!(
        hex::encode(reencoded.bytes()),
        hex::encode(&our_bytes),
        "upstream re-encodes our {ours:?} differently"
    );

    // Theirs → ours → ours again.
    let their_bytes = CONVERTER.operation_to_body(theirs).unwrap();
    assert_eq!(
        hex::encode(their_bytes.bytes()),
        hex::encode(&our_bytes),
        "upstream encodes {ours:?} differently"
    );
    let back = ops::decode_request::<O>(their_bytes.bytes()).unwrap();
    assert_eq!(&back, ours);
    let again = ops::encode_request::<O>(back).unwrap();
    assert_eq!(again.as_slice(), their_bytes.bytes());
    our_bytes
}

/// Both directions for a response: `ours` and `theirs` hold the same value.
fn check_response<O: Operation>(ours: &O::Response, theirs: NativeResult) -> Vec<u8>
where
    O::Response: Clone + PartialEq + Debug,
{
    assert_eq!(theirs.opcode(), shared_opcode(O::OPCODE));
    let our_bytes = ops::encode_response::<O>(ours.clone()).unwrap().to_vec();

    let decoded = their_result(O::OPCODE, &our_bytes);
    assert_eq!(decoded.opcode(), shared_opcode(O::OPCODE));
    let reencoded = CONVERTER.result_to_body(decoded).unwrap();
    assert_eq!(
        hex::encode(reencoded.bytes()),
        hex::encode(&our_bytes),
        "upstream re-encodes our {ours:?} differently"
    );

    let their_bytes = CONVERTER.result_to_body(theirs).unwrap();
    assert_eq!(
        hex::encode(their_bytes.bytes()),
        hex::encode(&our_bytes),
        "upstream encodes {ours:?} differently"
    );
    let back = ops::decode_response::<O>(their_bytes.bytes()).unwrap();
    assert_eq!(&back, ours);
    let again = ops::encode_response::<O>(back).unwrap();
    assert_eq!(again.as_slice(), their_bytes.bytes());
    our_bytes
}

fn z(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(bytes.to_vec())
}

fn secret(bytes: &[u8]) -> Secret<Vec<u8>> {
    Secret::new(bytes.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Every operation
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ping(maj in any::<u8>(), min in any::<u8>()) {
        check_request::<ops::Ping>(
            &ops::ping::Request,
            NativeOperation::Ping(up::ping::Operation),
        );
        let ours = ops::ping::Response {
            wire_protocol_version_maj: maj,
            wire_protocol_version_min: min,
        };
        let body = check_response::<ops::Ping>(
            &ours,
            NativeResult::Ping(up::ping::Result {
                wire_protocol_version_maj: maj,
                wire_protocol_version_min: min,
            }),
        );
        let NativeResult::Ping(theirs) = their_result(Opcode::Ping, &body) else {
            panic!("not a Ping result");
        };
        prop_assert_eq!(theirs.wire_protocol_version_maj, maj);
        prop_assert_eq!(theirs.wire_protocol_version_min, min);
    }

    #[test]
    fn psa_generate_key(key_name in name(), attributes in attributes()) {
        let ours = ops::psa_generate_key::Request { key_name: key_name.clone(), attributes };
        let body = check_request::<ops::PsaGenerateKey>(
            &ours,
            NativeOperation::PsaGenerateKey(up::psa_generate_key::Operation {
                key_name: key_name.clone(),
                attributes,
            }),
        );
        check_response::<ops::PsaGenerateKey>(
            &ops::psa_generate_key::Response,
            NativeResult::PsaGenerateKey(up::psa_generate_key::Result),
        );
        let NativeOperation::PsaGenerateKey(theirs) = their_operation(Opcode::PsaGenerateKey, &body)
        else {
            panic!("not a PsaGenerateKey operation");
        };
        prop_assert_eq!(theirs.key_name, key_name);
        prop_assert_eq!(theirs.attributes, attributes);
    }

    #[test]
    fn psa_destroy_key(key_name in name()) {
        check_request::<ops::PsaDestroyKey>(
            &ops::psa_destroy_key::Request { key_name: key_name.clone() },
            NativeOperation::PsaDestroyKey(up::psa_destroy_key::Operation { key_name }),
        );
        check_response::<ops::PsaDestroyKey>(
            &ops::psa_destroy_key::Response,
            NativeResult::PsaDestroyKey(up::psa_destroy_key::Result),
        );
    }

    #[test]
    fn psa_sign_hash(key_name in name(), alg in signature(), hash in bytes(), sig in bytes()) {
        let ours = ops::psa_sign_hash::Request {
            key_name: key_name.clone(),
            alg,
            hash: hash.clone(),
        };
        let body = check_request::<ops::PsaSignHash>(
            &ours,
            NativeOperation::PsaSignHash(up::psa_sign_hash::Operation {
                key_name: key_name.clone(),
                alg,
                hash: z(&hash),
            }),
        );
        check_response::<ops::PsaSignHash>(
            &ops::psa_sign_hash::Response { signature: sig.clone() },
            NativeResult::PsaSignHash(up::psa_sign_hash::Result { signature: z(&sig) }),
        );
        let NativeOperation::PsaSignHash(theirs) = their_operation(Opcode::PsaSignHash, &body)
        else {
            panic!("not a PsaSignHash operation");
        };
        prop_assert_eq!(theirs.key_name, key_name);
        prop_assert_eq!(theirs.alg, alg);
        prop_assert_eq!(theirs.hash.as_slice(), hash.as_slice());
    }

    #[test]
    fn psa_verify_hash(key_name in name(), alg in signature(), hash in bytes(), sig in bytes()) {
        check_request::<ops::PsaVerifyHash>(
            &ops::psa_verify_hash::Request {
                key_name: key_name.clone(),
                alg,
                hash: hash.clone(),
                signature: sig.clone(),
            },
            NativeOperation::PsaVerifyHash(up::psa_verify_hash::Operation {
                key_name,
                alg,
                hash: z(&hash),
                signature: z(&sig),
            }),
        );
        check_response::<ops::PsaVerifyHash>(
            &ops::psa_verify_hash::Response,
            NativeResult::PsaVerifyHash(up::psa_verify_hash::Result),
        );
    }

    #[test]
    fn psa_import_key(key_name in name(), attributes in attributes(), data in bytes()) {
        check_request::<ops::PsaImportKey>(
            &ops::psa_import_key::Request {
                key_name: key_name.clone(),
                attributes,
                data: SecretBytes::from(data.as_slice()),
            },
            NativeOperation::PsaImportKey(up::psa_import_key::Operation {
                key_name,
                attributes,
                data: secret(&data),
            }),
        );
        check_response::<ops::PsaImportKey>(
            &ops::psa_import_key::Response,
            NativeResult::PsaImportKey(up::psa_import_key::Result),
        );
    }

    #[test]
    fn psa_export_public_key(key_name in name(), data in bytes()) {
        check_request::<ops::PsaExportPublicKey>(
            &ops::psa_export_public_key::Request { key_name: key_name.clone() },
            NativeOperation::PsaExportPublicKey(up::psa_export_public_key::Operation { key_name }),
        );
        check_response::<ops::PsaExportPublicKey>(
            &ops::psa_export_public_key::Response { data: data.clone() },
            NativeResult::PsaExportPublicKey(up::psa_export_public_key::Result { data: z(&data) }),
        );
    }

    #[test]
    fn list_providers(
        providers in vec(
            (
                any::<u128>(),
                name(),
                name(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                provider_id(),
            ),
            0..4,
        ),
    ) {
        check_request::<ops::ListProviders>(
            &ops::list_providers::Request,
            NativeOperation::ListProviders(up::list_providers::Operation),
        );
        let ours: Vec<_> = providers
            .into_iter()
            .map(|(uuid, description, vendor, version_maj, version_min, version_rev, id)| {
                ops::list_providers::ProviderInfo {
                    uuid: uuid::Uuid::from_u128(uuid),
                    description,
                    vendor,
                    version_maj,
                    version_min,
                    version_rev,
                    id,
                    max_key_name_len: None,
                }
            })
            .collect();
        // Upstream holds uuid 0.8 values; they are built from our text form.
        let theirs = ours
            .iter()
            .map(|info| up::list_providers::ProviderInfo {
                uuid: info.uuid.to_string().parse().unwrap(),
                description: info.description.clone(),
                vendor: info.vendor.clone(),
                version_maj: info.version_maj,
                version_min: info.version_min,
                version_rev: info.version_rev,
                id: their_provider(info.id),
            })
            .collect();
        let body = check_response::<ops::ListProviders>(
            &ops::list_providers::Response { providers: ours.clone() },
            NativeResult::ListProviders(up::list_providers::Result { providers: theirs }),
        );
        let NativeResult::ListProviders(decoded) = their_result(Opcode::ListProviders, &body) else {
            panic!("not a ListProviders result");
        };
        prop_assert_eq!(decoded.providers.len(), ours.len());
        for (theirs, ours) in decoded.providers.iter().zip(&ours) {
            prop_assert_eq!(theirs.uuid.as_bytes(), ours.uuid.as_bytes());
            prop_assert_eq!(&theirs.description, &ours.description);
            prop_assert_eq!(&theirs.vendor, &ours.vendor);
            prop_assert_eq!(
                (theirs.version_maj, theirs.version_min, theirs.version_rev),
                (ours.version_maj, ours.version_min, ours.version_rev)
            );
            prop_assert_eq!(theirs.id as u8, ours.id.value());
        }
    }

    #[test]
    fn list_opcodes(
        provider in provider_id(),
        opcodes in proptest::sample::subsequence(shared_opcodes(), 0..=29),
    ) {
        let body = check_request::<ops::ListOpcodes>(
            &ops::list_opcodes::Request { provider_id: provider },
            NativeOperation::ListOpcodes(up::list_opcodes::Operation {
                provider_id: their_provider(provider),
            }),
        );
        let NativeOperation::ListOpcodes(theirs) = their_operation(Opcode::ListOpcodes, &body)
        else {
            panic!("not a ListOpcodes operation");
        };
        prop_assert_eq!(theirs.provider_id as u8, provider.value());

        // The result is a set: upstream writes it in hash order, so compare sets, not bytes.
        let ours: BTreeSet<Opcode> = opcodes.iter().copied().collect();
        let values = |set: &HashSet<up_req::Opcode>| -> BTreeSet<u32> {
            set.iter().map(|op| *op as u32).collect()
        };
        let our_values: BTreeSet<u32> = ours.iter().map(|op| op.value()).collect();
        let our_bytes = ops::encode_response::<ops::ListOpcodes>(
            ops::list_opcodes::Response { opcodes: ours.clone() },
        )
        .unwrap();
        let NativeResult::ListOpcodes(decoded) = their_result(Opcode::ListOpcodes, &our_bytes)
        else {
            panic!("not a ListOpcodes result");
        };
        prop_assert_eq!(values(&decoded.opcodes), our_values.clone());
        let reencoded = CONVERTER
            .result_to_body(NativeResult::ListOpcodes(decoded))
            .unwrap();
        let back = ops::decode_response::<ops::ListOpcodes>(reencoded.bytes()).unwrap();
        prop_assert_eq!(&back.opcodes, &ours);

        let theirs: HashSet<up_req::Opcode> = opcodes.iter().map(|op| shared_opcode(*op)).collect();
        let their_bytes = CONVERTER
            .result_to_body(NativeResult::ListOpcodes(up::list_opcodes::Result { opcodes: theirs }))
            .unwrap();
        let back = ops::decode_response::<ops::ListOpcodes>(their_bytes.bytes()).unwrap();
        prop_assert_eq!(&back.opcodes, &ours);
        prop_assert_eq!(their_bytes.len(), our_bytes.len());
    }

    #[test]
    fn psa_asymmetric_encrypt(
        key_name in name(),
        alg in encryption(),
        plaintext in bytes(),
        salt in salt(),
        ciphertext in bytes(),
    ) {
        let ours = ops::psa_asymmetric_encrypt::Request {
            key_name: key_name.clone(),
            alg,
            plaintext: SecretBytes::from(plaintext.as_slice()),
            salt: salt.clone(),
        };
        let body = check_request::<ops::PsaAsymmetricEncrypt>(
            &ours,
            NativeOperation::PsaAsymmetricEncrypt(up::psa_asymmetric_encrypt::Operation {
                key_name: key_name.clone(),
                alg,
                plaintext: z(&plaintext),
                salt: salt.as_deref().map(z),
            }),
        );
        check_response::<ops::PsaAsymmetricEncrypt>(
            &ops::psa_asymmetric_encrypt::Response { ciphertext: ciphertext.clone() },
            NativeResult::PsaAsymmetricEncrypt(up::psa_asymmetric_encrypt::Result {
                ciphertext: z(&ciphertext),
            }),
        );
        let NativeOperation::PsaAsymmetricEncrypt(theirs) =
            their_operation(Opcode::PsaAsymmetricEncrypt, &body)
        else {
            panic!("not a PsaAsymmetricEncrypt operation");
        };
        prop_assert_eq!(theirs.key_name, key_name);
        prop_assert_eq!(theirs.alg, alg);
        prop_assert_eq!(theirs.plaintext.as_slice(), plaintext.as_slice());
        prop_assert_eq!(theirs.salt.map(|s| s.to_vec()), salt);
    }

    #[test]
    fn psa_asymmetric_decrypt(
        key_name in name(),
        alg in encryption(),
        ciphertext in bytes(),
        salt in salt(),
        plaintext in bytes(),
    ) {
        check_request::<ops::PsaAsymmetricDecrypt>(
            &ops::psa_asymmetric_decrypt::Request {
                key_name: key_name.clone(),
                alg,
                ciphertext: ciphertext.clone(),
                salt: salt.clone(),
            },
            NativeOperation::PsaAsymmetricDecrypt(up::psa_asymmetric_decrypt::Operation {
                key_name,
                alg,
                ciphertext: z(&ciphertext),
                salt: salt.as_deref().map(z),
            }),
        );
        check_response::<ops::PsaAsymmetricDecrypt>(
            &ops::psa_asymmetric_decrypt::Response {
                plaintext: SecretBytes::from(plaintext.as_slice()),
            },
            NativeResult::PsaAsymmetricDecrypt(up::psa_asymmetric_decrypt::Result {
                plaintext: z(&plaintext),
            }),
        );
    }

    #[test]
    fn psa_export_key(key_name in name(), data in bytes()) {
        check_request::<ops::PsaExportKey>(
            &ops::psa_export_key::Request { key_name: key_name.clone() },
            NativeOperation::PsaExportKey(up::psa_export_key::Operation { key_name }),
        );
        let body = check_response::<ops::PsaExportKey>(
            &ops::psa_export_key::Response { data: SecretBytes::from(data.as_slice()) },
            NativeResult::PsaExportKey(up::psa_export_key::Result { data: secret(&data) }),
        );
        let NativeResult::PsaExportKey(theirs) = their_result(Opcode::PsaExportKey, &body) else {
            panic!("not a PsaExportKey result");
        };
        prop_assert_eq!(theirs.data.expose_secret(), &data);
    }

    #[test]
    fn psa_generate_random(
        size in prop_oneof![0usize..=4096, any::<u64>().prop_map(|v| v as usize)],
        random in bytes(),
    ) {
        let body = check_request::<ops::PsaGenerateRandom>(
            &ops::psa_generate_random::Request { size },
            NativeOperation::PsaGenerateRandom(up::psa_generate_random::Operation { size }),
        );
        check_response::<ops::PsaGenerateRandom>(
            &ops::psa_generate_random::Response {
                random_bytes: SecretBytes::from(random.as_slice()),
            },
            NativeResult::PsaGenerateRandom(up::psa_generate_random::Result {
                random_bytes: z(&random),
            }),
        );
        let NativeOperation::PsaGenerateRandom(theirs) =
            their_operation(Opcode::PsaGenerateRandom, &body)
        else {
            panic!("not a PsaGenerateRandom operation");
        };
        prop_assert_eq!(theirs.size, size);
    }

    #[test]
    fn list_authenticators(
        authenticators in vec(
            (name(), any::<u32>(), any::<u32>(), any::<u32>(), auth_type()),
            0..4,
        ),
    ) {
        check_request::<ops::ListAuthenticators>(
            &ops::list_authenticators::Request,
            NativeOperation::ListAuthenticators(up::list_authenticators::Operation),
        );
        let ours: Vec<_> = authenticators
            .into_iter()
            .map(|(description, version_maj, version_min, version_rev, id)| {
                ops::list_authenticators::AuthenticatorInfo {
                    description,
                    version_maj,
                    version_min,
                    version_rev,
                    id,
                }
            })
            .collect();
        let theirs = ours
            .iter()
            .map(|info| up::list_authenticators::AuthenticatorInfo {
                description: info.description.clone(),
                version_maj: info.version_maj,
                version_min: info.version_min,
                version_rev: info.version_rev,
                id: their_auth(info.id),
            })
            .collect();
        let body = check_response::<ops::ListAuthenticators>(
            &ops::list_authenticators::Response { authenticators: ours.clone() },
            NativeResult::ListAuthenticators(up::list_authenticators::Result {
                authenticators: theirs,
            }),
        );
        let NativeResult::ListAuthenticators(decoded) =
            their_result(Opcode::ListAuthenticators, &body)
        else {
            panic!("not a ListAuthenticators result");
        };
        prop_assert_eq!(decoded.authenticators.len(), ours.len());
        for (theirs, ours) in decoded.authenticators.iter().zip(&ours) {
            prop_assert_eq!(&theirs.description, &ours.description);
            prop_assert_eq!(theirs.id as u8, ours.id.value());
        }
    }

    #[test]
    fn psa_hash_compute(alg in hash(), input in bytes(), hash in bytes()) {
        check_request::<ops::PsaHashCompute>(
            &ops::psa_hash_compute::Request { alg, input: input.clone() },
            NativeOperation::PsaHashCompute(up::psa_hash_compute::Operation {
                alg,
                input: z(&input),
            }),
        );
        check_response::<ops::PsaHashCompute>(
            &ops::psa_hash_compute::Response { hash: hash.clone() },
            NativeResult::PsaHashCompute(up::psa_hash_compute::Result { hash: z(&hash) }),
        );
    }

    #[test]
    fn psa_hash_compare(alg in hash(), input in bytes(), hash in bytes()) {
        check_request::<ops::PsaHashCompare>(
            &ops::psa_hash_compare::Request { alg, input: input.clone(), hash: hash.clone() },
            NativeOperation::PsaHashCompare(up::psa_hash_compare::Operation {
                alg,
                input: z(&input),
                hash: z(&hash),
            }),
        );
        check_response::<ops::PsaHashCompare>(
            &ops::psa_hash_compare::Response,
            NativeResult::PsaHashCompare(up::psa_hash_compare::Result),
        );
    }

    #[test]
    fn psa_aead_encrypt(
        key_name in name(),
        alg in aead(),
        nonce in bytes(),
        additional_data in bytes(),
        plaintext in bytes(),
        ciphertext in bytes(),
    ) {
        let body = check_request::<ops::PsaAeadEncrypt>(
            &ops::psa_aead_encrypt::Request {
                key_name: key_name.clone(),
                alg,
                nonce: nonce.clone(),
                additional_data: additional_data.clone(),
                plaintext: SecretBytes::from(plaintext.as_slice()),
            },
            NativeOperation::PsaAeadEncrypt(up::psa_aead_encrypt::Operation {
                key_name: key_name.clone(),
                alg,
                nonce: z(&nonce),
                additional_data: z(&additional_data),
                plaintext: z(&plaintext),
            }),
        );
        check_response::<ops::PsaAeadEncrypt>(
            &ops::psa_aead_encrypt::Response { ciphertext: ciphertext.clone() },
            NativeResult::PsaAeadEncrypt(up::psa_aead_encrypt::Result {
                ciphertext: z(&ciphertext),
            }),
        );
        let NativeOperation::PsaAeadEncrypt(theirs) = their_operation(Opcode::PsaAeadEncrypt, &body)
        else {
            panic!("not a PsaAeadEncrypt operation");
        };
        prop_assert_eq!(theirs.key_name, key_name);
        prop_assert_eq!(theirs.alg, alg);
        prop_assert_eq!(theirs.nonce.as_slice(), nonce.as_slice());
        prop_assert_eq!(theirs.additional_data.as_slice(), additional_data.as_slice());
        prop_assert_eq!(theirs.plaintext.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn psa_aead_decrypt(
        key_name in name(),
        alg in aead(),
        nonce in bytes(),
        additional_data in bytes(),
        ciphertext in bytes(),
        plaintext in bytes(),
    ) {
        check_request::<ops::PsaAeadDecrypt>(
            &ops::psa_aead_decrypt::Request {
                key_name: key_name.clone(),
                alg,
                nonce: nonce.clone(),
                additional_data: additional_data.clone(),
                ciphertext: ciphertext.clone(),
            },
            NativeOperation::PsaAeadDecrypt(up::psa_aead_decrypt::Operation {
                key_name,
                alg,
                nonce: z(&nonce),
                additional_data: z(&additional_data),
                ciphertext: z(&ciphertext),
            }),
        );
        check_response::<ops::PsaAeadDecrypt>(
            &ops::psa_aead_decrypt::Response { plaintext: SecretBytes::from(plaintext.as_slice()) },
            NativeResult::PsaAeadDecrypt(up::psa_aead_decrypt::Result { plaintext: z(&plaintext) }),
        );
    }

    #[test]
    fn psa_raw_key_agreement(
        alg in raw_key_agreement(),
        private_key_name in name(),
        peer_key in bytes(),
        shared_secret in bytes(),
    ) {
        check_request::<ops::PsaRawKeyAgreement>(
            &ops::psa_raw_key_agreement::Request {
                alg,
                private_key_name: private_key_name.clone(),
                peer_key: peer_key.clone(),
            },
            NativeOperation::PsaRawKeyAgreement(up::psa_raw_key_agreement::Operation {
                alg,
                private_key_name,
                peer_key: z(&peer_key),
            }),
        );
        check_response::<ops::PsaRawKeyAgreement>(
            &ops::psa_raw_key_agreement::Response {
                shared_secret: SecretBytes::from(shared_secret.as_slice()),
            },
            NativeResult::PsaRawKeyAgreement(up::psa_raw_key_agreement::Result {
                shared_secret: secret(&shared_secret),
            }),
        );
    }

    #[test]
    fn psa_cipher_encrypt(
        key_name in name(),
        alg in cipher(),
        plaintext in bytes(),
        ciphertext in bytes(),
    ) {
        check_request::<ops::PsaCipherEncrypt>(
            &ops::psa_cipher_encrypt::Request {
                key_name: key_name.clone(),
                alg,
                plaintext: SecretBytes::from(plaintext.as_slice()),
            },
            NativeOperation::PsaCipherEncrypt(up::psa_cipher_encrypt::Operation {
                key_name,
                alg,
                plaintext: z(&plaintext),
            }),
        );
        check_response::<ops::PsaCipherEncrypt>(
            &ops::psa_cipher_encrypt::Response { ciphertext: ciphertext.clone() },
            NativeResult::PsaCipherEncrypt(up::psa_cipher_encrypt::Result {
                ciphertext: z(&ciphertext),
            }),
        );
    }

    #[test]
    fn psa_cipher_decrypt(
        key_name in name(),
        alg in cipher(),
        ciphertext in bytes(),
        plaintext in bytes(),
    ) {
        check_request::<ops::PsaCipherDecrypt>(
            &ops::psa_cipher_decrypt::Request {
                key_name: key_name.clone(),
                alg,
                ciphertext: ciphertext.clone(),
            },
            NativeOperation::PsaCipherDecrypt(up::psa_cipher_decrypt::Operation {
                key_name,
                alg,
                ciphertext: z(&ciphertext),
            }),
        );
        check_response::<ops::PsaCipherDecrypt>(
            &ops::psa_cipher_decrypt::Response {
                plaintext: SecretBytes::from(plaintext.as_slice()),
            },
            NativeResult::PsaCipherDecrypt(up::psa_cipher_decrypt::Result {
                plaintext: z(&plaintext),
            }),
        );
    }

    #[test]
    fn psa_sign_message(
        key_name in name(),
        alg in signature(),
        message in bytes(),
        sig in bytes(),
    ) {
        check_request::<ops::PsaSignMessage>(
            &ops::psa_sign_message::Request {
                key_name: key_name.clone(),
                alg,
                message: message.clone(),
            },
            NativeOperation::PsaSignMessage(up::psa_sign_message::Operation {
                key_name,
                alg,
                message: z(&message),
            }),
        );
        check_response::<ops::PsaSignMessage>(
            &ops::psa_sign_message::Response { signature: sig.clone() },
            NativeResult::PsaSignMessage(up::psa_sign_message::Result { signature: z(&sig) }),
        );
    }

    #[test]
    fn psa_verify_message(
        key_name in name(),
        alg in signature(),
        message in bytes(),
        sig in bytes(),
    ) {
        check_request::<ops::PsaVerifyMessage>(
            &ops::psa_verify_message::Request {
                key_name: key_name.clone(),
                alg,
                message: message.clone(),
                signature: sig.clone(),
            },
            NativeOperation::PsaVerifyMessage(up::psa_verify_message::Operation {
                key_name,
                alg,
                message: z(&message),
                signature: z(&sig),
            }),
        );
        check_response::<ops::PsaVerifyMessage>(
            &ops::psa_verify_message::Response,
            NativeResult::PsaVerifyMessage(up::psa_verify_message::Result),
        );
    }

    #[test]
    fn list_keys(keys in vec((provider_id(), name(), attributes()), 0..4)) {
        check_request::<ops::ListKeys>(
            &ops::list_keys::Request::default(),
            NativeOperation::ListKeys(up::list_keys::Operation),
        );
        let ours: Vec<_> = keys
            .into_iter()
            .map(|(provider_id, name, attributes)| ops::list_keys::KeyInfo {
                provider_id,
                name,
                attributes,
            })
            .collect();
        let theirs = ours
            .iter()
            .map(|key| up::list_keys::KeyInfo {
                provider_id: their_provider(key.provider_id),
                name: key.name.clone(),
                attributes: key.attributes,
            })
            .collect();
        let body = check_response::<ops::ListKeys>(
            &ops::list_keys::Response { keys: ours.clone() },
            NativeResult::ListKeys(up::list_keys::Result { keys: theirs }),
        );
        let NativeResult::ListKeys(decoded) = their_result(Opcode::ListKeys, &body) else {
            panic!("not a ListKeys result");
        };
        prop_assert_eq!(decoded.keys.len(), ours.len());
        for (theirs, ours) in decoded.keys.iter().zip(&ours) {
            prop_assert_eq!(theirs.provider_id as u8, ours.provider_id.value());
            prop_assert_eq!(&theirs.name, &ours.name);
            prop_assert_eq!(theirs.attributes, ours.attributes);
        }
    }

    #[test]
    fn list_clients(clients in vec(name(), 0..5)) {
        check_request::<ops::ListClients>(
            &ops::list_clients::Request,
            NativeOperation::ListClients(up::list_clients::Operation),
        );
        check_response::<ops::ListClients>(
            &ops::list_clients::Response { clients: clients.clone(), owners: vec![] },
            NativeResult::ListClients(up::list_clients::Result { clients }),
        );
    }

    #[test]
    fn delete_client(client in name()) {
        check_request::<ops::DeleteClient>(
            &ops::delete_client::Request { client: client.clone(), auth_type: None },
            NativeOperation::DeleteClient(up::delete_client::Operation { client }),
        );
        check_response::<ops::DeleteClient>(
            &ops::delete_client::Response,
            NativeResult::DeleteClient(up::delete_client::Result),
        );
    }

    #[test]
    fn attest_key(
        attested_key_name in name(),
        attesting_key_name in optional_name(),
        credential_blob in bytes(),
        secret_bytes in bytes(),
        credential in bytes(),
    ) {
        use ops::attest_key::{AttestationMechanismParams, AttestationOutput};
        let ours = ops::attest_key::Request {
            attested_key_name: attested_key_name.clone(),
            parameters: AttestationMechanismParams::ActivateCredential {
                credential_blob: credential_blob.clone(),
                secret: secret_bytes.clone(),
            },
            attesting_key_name: attesting_key_name.clone(),
        };
        let body = check_request::<ops::AttestKey>(
            &ours,
            NativeOperation::AttestKey(up::attest_key::Operation::ActivateCredential {
                attested_key_name: attested_key_name.clone(),
                credential_blob: z(&credential_blob),
                secret: z(&secret_bytes),
                attesting_key_name: attesting_key_name.clone(),
            }),
        );
        check_response::<ops::AttestKey>(
            &ops::attest_key::Response {
                output: AttestationOutput::ActivateCredential {
                    credential: SecretBytes::from(credential.as_slice()),
                },
            },
            NativeResult::AttestKey(up::attest_key::Result::ActivateCredential {
                credential: z(&credential),
            }),
        );
        let NativeOperation::AttestKey(up::attest_key::Operation::ActivateCredential {
            attested_key_name: their_attested,
            credential_blob: their_blob,
            secret: their_secret,
            attesting_key_name: their_attesting,
        }) = their_operation(Opcode::AttestKey, &body)
        else {
            panic!("not an AttestKey operation");
        };
        prop_assert_eq!(their_attested, attested_key_name);
        prop_assert_eq!(their_blob.as_slice(), credential_blob.as_slice());
        prop_assert_eq!(their_secret.as_slice(), secret_bytes.as_slice());
        prop_assert_eq!(their_attesting, attesting_key_name);
    }

    #[test]
    fn prepare_key_attestation(
        attested_key_name in name(),
        attesting_key_name in optional_name(),
        tpm_name in bytes(),
        public in bytes(),
        attesting_key_pub in bytes(),
    ) {
        use ops::prepare_key_attestation::{
            PrepareKeyAttestationOutput, PrepareKeyAttestationParams,
        };
        check_request::<ops::PrepareKeyAttestation>(
            &ops::prepare_key_attestation::Request {
                parameters: PrepareKeyAttestationParams::ActivateCredential {
                    attested_key_name: attested_key_name.clone(),
                    attesting_key_name: attesting_key_name.clone(),
                },
            },
            NativeOperation::PrepareKeyAttestation(
                up::prepare_key_attestation::Operation::ActivateCredential {
                    attested_key_name,
                    attesting_key_name,
                },
            ),
        );
        check_response::<ops::PrepareKeyAttestation>(
            &ops::prepare_key_attestation::Response {
                output: PrepareKeyAttestationOutput::ActivateCredential {
                    name: tpm_name.clone(),
                    public: public.clone(),
                    attesting_key_pub: attesting_key_pub.clone(),
                },
            },
            NativeResult::PrepareKeyAttestation(
                up::prepare_key_attestation::Result::ActivateCredential {
                    name: z(&tpm_name),
                    public: z(&public),
                    attesting_key_pub: z(&attesting_key_pub),
                },
            ),
        );
    }

    #[test]
    fn can_do_crypto(check in check_type(), attributes in attributes()) {
        let body = check_request::<ops::CanDoCrypto>(
            &ops::can_do_crypto::Request { check_type: check, attributes },
            NativeOperation::CanDoCrypto(up::can_do_crypto::Operation {
                check_type: their_check_type(check),
                attributes,
            }),
        );
        check_response::<ops::CanDoCrypto>(
            &ops::can_do_crypto::Response,
            NativeResult::CanDoCrypto(up::can_do_crypto::Result),
        );
        let NativeOperation::CanDoCrypto(theirs) = their_operation(Opcode::CanDoCrypto, &body)
        else {
            panic!("not a CanDoCrypto operation");
        };
        prop_assert_eq!(theirs.check_type, their_check_type(check));
        prop_assert_eq!(theirs.attributes, attributes);
    }
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/// A request header with every field valid except, possibly, the opcode.
fn header_with_opcode(opcode: u32) -> Vec<u8> {
    let mut bytes = RequestFrame {
        header: RequestHeader::new(ProviderId::Core, Opcode::Ping, AuthType::NoAuth),
        body: Zeroizing::new(Vec::new()),
        auth: Zeroizing::new(Vec::new()),
    }
    .to_bytes()
    .unwrap()
    .to_vec();
    bytes[28..32].copy_from_slice(&opcode.to_le_bytes());
    bytes
}

#[test]
fn opcode_numbers_names_and_kinds_agree() {
    for &opcode in Opcode::ALL {
        match their_opcode(opcode) {
            Some(theirs) => {
                assert_eq!(theirs as u32, opcode.value(), "{opcode:?}");
                assert_eq!(format!("{theirs:?}"), opcode.name());
                assert_eq!(theirs.is_core(), opcode.is_core(), "{opcode:?}");
                assert_eq!(theirs.is_admin(), opcode.is_admin(), "{opcode:?}");
            }
            // Upstream lacks only what its clients are never told about: operations ListOpcodes
            // leaves out (the MAC ones) and Bulwark's own range (top bit set).
            None => assert!(
                (!opcode.is_listed() && !opcode.is_admin()) || opcode.value() & 0x8000_0000 != 0,
                "{opcode:?}"
            ),
        }
    }
}

/// Upstream has no list of opcodes: ask its header reader about every small value.
#[test]
fn upstream_knows_no_opcode_we_lack() {
    let mut theirs = BTreeSet::new();
    for value in (0..=0x200).chain([0x7777, 0xFFFF, 0x1_0001, u32::MAX]) {
        let bytes = header_with_opcode(value);
        let ours = RequestFrame::parse(&bytes, &Limits::default());
        match up_req::Request::read_from_stream(&mut bytes.as_slice(), 1 << 20) {
            Ok(request) => {
                assert_eq!(request.header.opcode as u32, value);
                assert_eq!(ours.unwrap().0.header.opcode.value(), value);
                let _ = theirs.insert(value);
            }
            Err(status) => {
                assert_eq!(status, up_req::ResponseStatus::OpcodeDoesNotExist);
                if let Ok((frame, _)) = ours {
                    assert!(!frame.header.opcode.is_listed(), "{value:#x}");
                }
            }
        }
    }
    let shared: BTreeSet<u32> = shared_opcodes().iter().map(|op| op.value()).collect();
    assert_eq!(theirs, shared);
}

#[test]
fn status_values_and_names_agree() {
    let theirs: Vec<(u16, String)> = (0..=u16::MAX)
        .filter_map(|value| {
            up_req::ResponseStatus::try_from(value)
                .ok()
                .map(|status| (value, format!("{status:?}")))
        })
        .collect();
    let mut ours: Vec<(u16, String)> = ResponseStatus::ALL
        .iter()
        .map(|status| (status.value(), status.name().to_owned()))
        .collect();
    ours.sort();
    assert_eq!(ours, theirs);
    for &status in ResponseStatus::ALL {
        assert_eq!(their_status(status) as u16, status.value());
    }
}

#[test]
fn provider_ids_agree() {
    for value in 0..=u8::MAX {
        let theirs = up_req::ProviderId::try_from(value);
        match ProviderId::try_from(value) {
            Ok(ours) => {
                let theirs = theirs.unwrap();
                assert_eq!(theirs as u8, value);
                assert_eq!(theirs.to_string(), ours.display_name());
            }
            Err(_) => assert!(theirs.is_err(), "{value}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fixed header
// ---------------------------------------------------------------------------------------------

fn their_request_header(header: &RequestHeader) -> up_req::request::RequestHeader {
    up_req::request::RequestHeader {
        provider: their_provider(header.provider),
        session: header.session,
        content_type: up_req::BodyType::Protobuf,
        accept_type: up_req::BodyType::Protobuf,
        auth_type: their_auth(header.auth_type),
        opcode: shared_opcode(header.opcode),
    }
}

fn assert_same_request_header(theirs: &up_req::request::RequestHeader, ours: &RequestHeader) {
    assert_eq!(theirs.provider as u8, ours.provider.value());
    assert_eq!(theirs.session, ours.session);
    assert_eq!(theirs.content_type as u8, ours.content_type.value());
    assert_eq!(theirs.accept_type as u8, ours.accept_type.value());
    assert_eq!(theirs.auth_type as u8, ours.auth_type.value());
    assert_eq!(theirs.opcode as u32, ours.opcode.value());
}

fn assert_same_response_header(theirs: &up_req::response::ResponseHeader, ours: &ResponseHeader) {
    assert_eq!(theirs.provider as u8, ours.provider.value());
    assert_eq!(theirs.session, ours.session);
    assert_eq!(theirs.content_type as u8, ours.content_type.value());
    assert_eq!(theirs.opcode as u32, ours.opcode.value());
    assert_eq!(theirs.status as u16, ours.status.value());
}

fn request_header() -> impl Strategy<Value = RequestHeader> {
    (
        provider_id(),
        any::<u64>(),
        auth_type(),
        select(shared_opcodes()),
    )
        .prop_map(|(provider, session, auth_type, opcode)| RequestHeader {
            session,
            ..RequestHeader::new(provider, opcode, auth_type)
        })
}

fn status() -> impl Strategy<Value = ResponseStatus> {
    select(ResponseStatus::ALL.to_vec())
}

proptest! {
    #![proptest_config(config())]

    /// A request written by upstream (body from its encoder, auth bytes) is the request we
    /// write, and each side reads the other's bytes back to the same fields.
    #[test]
    fn request_frames_agree(header in request_header(), client in name(), auth in bytes()) {
        // Upstream's body type comes out of its encoder; any operation will do for the bytes.
        let their_body = CONVERTER
            .operation_to_body(NativeOperation::DeleteClient(up::delete_client::Operation {
                client: client.clone(),
            }))
            .unwrap();
        let body = ops::encode_request::<ops::DeleteClient>(ops::delete_client::Request { client, auth_type: None })
            .unwrap();
        prop_assert_eq!(their_body.bytes(), body.as_slice());

        let theirs = up_req::Request {
            header: their_request_header(&header),
            body: their_body,
            auth: up_req::request::RequestAuth::new(auth.clone()),
        };
        let mut their_bytes = Vec::new();
        theirs.write_to_stream(&mut their_bytes).unwrap();

        let ours = RequestFrame { header, body, auth: Zeroizing::new(auth.clone()) };
        let our_bytes = ours.to_bytes().unwrap();
        prop_assert_eq!(hex::encode(&their_bytes), hex::encode(our_bytes.as_slice()));

        let (parsed, used) = RequestFrame::parse(&their_bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&parsed, &ours);
        prop_assert_eq!(used, their_bytes.len());

        let read = up_req::Request::read_from_stream(&mut our_bytes.as_slice(), 1 << 20).unwrap();
        assert_same_request_header(&read.header, &ours.header);
        prop_assert_eq!(read.body.bytes(), ours.body.as_slice());
        prop_assert_eq!(read.auth.buffer.expose_secret(), &auth);
    }

    /// Any body bytes: our frame, read by upstream and written back, is the same bytes.
    #[test]
    fn request_frames_round_trip_through_upstream(
        header in request_header(),
        body in vec(any::<u8>(), 0..200),
        auth in bytes(),
    ) {
        let ours = RequestFrame { header, body: Zeroizing::new(body), auth: Zeroizing::new(auth) };
        let our_bytes = ours.to_bytes().unwrap();
        let read = up_req::Request::read_from_stream(&mut our_bytes.as_slice(), 1 << 20).unwrap();
        assert_same_request_header(&read.header, &ours.header);
        let mut their_bytes = Vec::new();
        read.write_to_stream(&mut their_bytes).unwrap();
        prop_assert_eq!(hex::encode(&their_bytes), hex::encode(our_bytes.as_slice()));
    }

    /// Error responses: the "echo" and "bare" shapes are upstream's `from_request_header` and
    /// `from_status`; responses with a body survive a trip through upstream's reader and writer.
    #[test]
    fn response_frames_agree(
        header in request_header(),
        status in status(),
        body in vec(any::<u8>(), 0..200),
    ) {
        let mut their_bytes = Vec::new();
        up_req::Response::from_request_header(their_request_header(&header), their_status(status))
            .write_to_stream(&mut their_bytes)
            .unwrap();
        let ours = ResponseFrame::error(ResponseHeader::echo(&header, status));
        let our_bytes = ours.to_bytes().unwrap();
        prop_assert_eq!(hex::encode(&their_bytes), hex::encode(our_bytes.as_slice()));
        let (parsed, used) = ResponseFrame::parse(&their_bytes, 1 << 20).unwrap();
        prop_assert_eq!(&parsed, &ours);
        prop_assert_eq!(used, their_bytes.len());

        let mut their_bytes = Vec::new();
        up_req::Response::from_status(their_status(status))
            .write_to_stream(&mut their_bytes)
            .unwrap();
        let ours = ResponseFrame::error(ResponseHeader::bare(status));
        let our_bytes = ours.to_bytes().unwrap();
        prop_assert_eq!(hex::encode(&their_bytes), hex::encode(our_bytes.as_slice()));

        let ours = ResponseFrame {
            header: ResponseHeader::echo(&header, status),
            body: Zeroizing::new(body),
        };
        let our_bytes = ours.to_bytes().unwrap();
        let read = up_req::Response::read_from_stream(&mut our_bytes.as_slice(), 1 << 20).unwrap();
        assert_same_response_header(&read.header, &ours.header);
        prop_assert_eq!(read.body.bytes(), ours.body.as_slice());
        let mut their_bytes = Vec::new();
        read.write_to_stream(&mut their_bytes).unwrap();
        prop_assert_eq!(hex::encode(&their_bytes), hex::encode(our_bytes.as_slice()));
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed headers: both readers give the same status
// ---------------------------------------------------------------------------------------------

/// The raw fields of a header, each mostly valid and sometimes anything.
#[derive(Debug, Clone)]
struct RawFields {
    magic: u32,
    hdr_size: u16,
    version: (u8, u8),
    flags: u16,
    provider: u8,
    session: u64,
    content_type: u8,
    accept_type: u8,
    auth_type: u8,
    body_len: u32,
    auth_len: u16,
    opcode: u32,
    status: u16,
    reserved: (u8, u8),
}

impl RawFields {
    fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN);
        b.extend(self.magic.to_le_bytes());
        b.extend(self.hdr_size.to_le_bytes());
        b.extend([self.version.0, self.version.1]);
        b.extend(self.flags.to_le_bytes());
        b.push(self.provider);
        b.extend(self.session.to_le_bytes());
        b.extend([self.content_type, self.accept_type, self.auth_type]);
        b.extend(self.body_len.to_le_bytes());
        b.extend(self.auth_len.to_le_bytes());
        b.extend(self.opcode.to_le_bytes());
        b.extend(self.status.to_le_bytes());
        b.extend([self.reserved.0, self.reserved.1]);
        assert_eq!(b.len(), HEADER_LEN);
        b
    }
}

/// Mostly `valid`, sometimes any value.
fn mostly<T: Arbitrary + Clone + Debug + 'static>(
    valid: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![6 => valid, 1 => any::<T>()].boxed()
}

fn raw_fields(auth_len: BoxedStrategy<u16>) -> impl Strategy<Value = RawFields> {
    let statuses: Vec<u16> = ResponseStatus::ALL.iter().map(|s| s.value()).collect();
    (
        (
            mostly(Just(MAGIC)),
            mostly(Just(30u16)),
            mostly(Just((1u8, 0u8))),
            any::<u16>(),
            mostly(0u8..=6),
            any::<u64>(),
            mostly(Just(0u8)),
            mostly(Just(0u8)),
        ),
        (
            mostly(0u8..=5),
            prop_oneof![4 => 0u32..=24, 1 => any::<u32>()],
            auth_len,
            mostly(0u32..=0x22),
            mostly(select(statuses)),
            mostly(Just((0u8, 0u8))),
        ),
    )
        .prop_map(
            |(
                (magic, hdr_size, version, flags, provider, session, content_type, accept_type),
                (auth_type, body_len, auth_len, opcode, status, reserved),
            )| RawFields {
                magic,
                hdr_size,
                version,
                flags,
                provider,
                session,
                content_type,
                accept_type,
                auth_type,
                body_len,
                auth_len,
                opcode,
                status,
                reserved,
            },
        )
}

/// The body limit both readers are given.
const LIMIT: usize = 48;

/// Statuses a reader ends with: `Ok` or the status of the first failed check.
fn our_request_status(bytes: &[u8]) -> Result<RequestFrame, ResponseStatus> {
    let limits = Limits {
        body_len: LIMIT,
        auth_len: u16::MAX as usize,
    };
    RequestFrame::parse(bytes, &limits)
        .map(|(frame, _)| frame)
        .map_err(ResponseStatus::from)
}

fn their_request_status(bytes: &[u8]) -> Result<up_req::Request, u16> {
    up_req::Request::read_from_stream(&mut &bytes[..], LIMIT).map_err(|status| status as u16)
}

/// Where the two readers differ by design, and why; `None` when they must agree.
fn known_difference(fields: &RawFields, len: usize, theirs: Option<u16>) -> Option<&'static str> {
    // Upstream reads `hdr_size` bytes before it checks the size, so a wrong size with too few
    // bytes behind it is a connection error there; we reject the size as soon as it arrives.
    if fields.magic == MAGIC && fields.hdr_size != 30 && len < 6 + usize::from(fields.hdr_size) {
        return Some("header size checked before the header is read");
    }
    // Operations of ours that upstream lacks (the MAC ones): upstream has no such opcode.
    if Opcode::try_from(fields.opcode).is_ok_and(|opcode| their_opcode(opcode).is_none())
        && theirs == Some(up_req::ResponseStatus::OpcodeDoesNotExist as u16)
    {
        return Some("opcodes upstream lacks");
    }
    None
}

proptest! {
    #![proptest_config(Config { cases: 512, ..config() })]

    /// Requests: random header fields, body and auth that may be cut short.
    #[test]
    fn malformed_requests_get_the_same_status(
        fields in raw_fields(prop_oneof![0u16..=16, any::<u16>()].boxed()),
        tail in vec(any::<u8>(), 0..128),
        cut in proptest::option::weighted(0.2, 0usize..120),
    ) {
        let mut bytes = fields.to_bytes();
        bytes.extend(tail);
        if let Some(cut) = cut {
            bytes.truncate(cut);
        }
        let ours = our_request_status(&bytes);
        let theirs = their_request_status(&bytes);
        if known_difference(&fields, bytes.len(), theirs.as_ref().err().copied()).is_some() {
            return Ok(());
        }
        match (&ours, &theirs) {
            (Ok(ours), Ok(theirs)) => {
                assert_same_request_header(&theirs.header, &ours.header);
                prop_assert_eq!(theirs.body.bytes(), ours.body.as_slice());
                prop_assert_eq!(
                    theirs.auth.buffer.expose_secret().as_slice(),
                    ours.auth.as_slice()
                );
            }
            (Err(ours), Err(theirs)) => prop_assert_eq!(ours.value(), *theirs, "{:?}", fields),
            _ => prop_assert!(
                false,
                "{:?}: ours {:?}, theirs {:?}",
                fields,
                ours.as_ref().map(|_| ()),
                theirs.as_ref().map(|_| ())
            ),
        }
    }

    /// Responses (auth length 0: a response has no auth field, and our reader would read one).
    #[test]
    fn malformed_responses_get_the_same_status(
        fields in raw_fields(Just(0u16).boxed()),
        tail in vec(any::<u8>(), 0..128),
        cut in proptest::option::weighted(0.2, 0usize..120),
    ) {
        let mut bytes = fields.to_bytes();
        bytes.extend(tail);
        if let Some(cut) = cut {
            bytes.truncate(cut);
        }
        let ours = ResponseFrame::parse(&bytes, LIMIT).map_err(ResponseStatus::from);
        let theirs = up_req::Response::read_from_stream(&mut bytes.as_slice(), LIMIT)
            .map_err(|status| status as u16);
        if known_difference(&fields, bytes.len(), theirs.as_ref().err().copied()).is_some() {
            return Ok(());
        }
        match (&ours, &theirs) {
            (Ok((ours, _)), Ok(theirs)) => {
                assert_same_response_header(&theirs.header, &ours.header);
                prop_assert_eq!(theirs.body.bytes(), ours.body.as_slice());
            }
            (Err(ours), Err(theirs)) => prop_assert_eq!(ours.value(), *theirs, "{:?}", fields),
            _ => prop_assert!(
                false,
                "{:?}: ours {:?}, theirs {:?}",
                fields,
                ours.as_ref().map(|_| ()),
                theirs.as_ref().map(|_| ())
            ),
        }
    }
}

/// The key-name limit Bulwark adds to ProviderInfo (field 8) is skipped by upstream's decoder,
/// which reads every other field as before.
#[test]
fn upstream_reads_provider_info_carrying_the_key_name_limit() {
    let ours = ops::list_providers::ProviderInfo {
        uuid: uuid::Uuid::from_u128(0x1c11_39dc_ad7c_47dc_ad6b_db6f_db46_6552),
        description: "OpenSSL".into(),
        vendor: "Bulwark".into(),
        version_maj: 0,
        version_min: 1,
        version_rev: 0,
        id: ProviderId::MbedCrypto,
        max_key_name_len: Some(1024),
    };
    let body = ops::encode_response::<ops::ListProviders>(ops::list_providers::Response {
        providers: vec![ours.clone()],
    })
    .unwrap();
    let NativeResult::ListProviders(decoded) = their_result(Opcode::ListProviders, &body) else {
        panic!("not a ListProviders result");
    };
    let theirs = &decoded.providers[0];
    assert_eq!(theirs.uuid.as_bytes(), ours.uuid.as_bytes());
    assert_eq!(
        (theirs.description.as_str(), theirs.vendor.as_str()),
        ("OpenSSL", "Bulwark")
    );
    assert_eq!(
        (
            theirs.version_maj,
            theirs.version_min,
            theirs.version_rev,
            theirs.id as u8
        ),
        (0, 1, 0, 1)
    );
}
