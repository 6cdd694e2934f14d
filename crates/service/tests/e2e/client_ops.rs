//! Every operation the Mbed Crypto provider advertises, driven through the upstream
//! `parsec_client::BasicClient` against the real daemon: success paths with their real outputs,
//! the error statuses of the operation contracts, administration and tenancy.

use std::collections::HashSet;
use std::fmt::Debug;

use bulwark_interface::ops::Family;

use parsec_client::core::interface::operations::can_do_crypto::CheckType;
use parsec_client::core::interface::operations::psa_algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Hash,
    KeyAgreement, RawKeyAgreement, SignHash,
};
use parsec_client::core::interface::operations::psa_key_attributes::{
    Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
};
use parsec_client::core::interface::requests::{Opcode, ProviderId, ResponseStatus};
use parsec_client::error::Error;
use parsec_client::BasicClient;

use crate::harness::{provider, Auth, Daemon};

// ---------------------------------------------------------------------------------------------
// Helpers shared with `crosscheck`.

/// Asserts that `result` is the service error `expected`.
#[track_caller]
pub(crate) fn check<T: Debug>(result: Result<T, Error>, expected: ResponseStatus) {
    match result {
        Err(Error::Service(status)) => {
            assert_eq!(
                status, expected,
                "expected service status {expected:?}, got {status:?}"
            )
        }
        other => panic!("expected service status {expected:?}, got {other:?}"),
    }
}

/// Usage flags from space-separated names: `export`, `encrypt`, `decrypt`, `sign` (hash and
/// message, as the Rust setter does), `verify` (likewise), `sign_message`, `verify_message`,
/// `derive`.
pub(crate) fn usage(names: &str) -> UsageFlags {
    let mut flags = UsageFlags::default();
    for name in names.split_whitespace() {
        match name {
            "export" => flags.set_export(),
            "encrypt" => flags.set_encrypt(),
            "decrypt" => flags.set_decrypt(),
            "sign" => flags.set_sign_hash(),
            "verify" => flags.set_verify_hash(),
            "sign_message" => flags.set_sign_message(),
            "verify_message" => flags.set_verify_message(),
            "derive" => flags.set_derive(),
            other => panic!("unknown usage flag {other}"),
        };
    }
    flags
}

/// Key attributes as the client sends them.
pub(crate) fn attrs(
    key_type: Type,
    bits: usize,
    alg: impl Into<Algorithm>,
    flags: &str,
) -> Attributes {
    Attributes {
        lifetime: Lifetime::Persistent,
        key_type,
        bits,
        policy: Policy {
            usage_flags: usage(flags),
            permitted_algorithms: alg.into(),
        },
    }
}

/// A SECP R1 (NIST) key pair.
pub(crate) fn ecc_pair(bits: usize, alg: impl Into<Algorithm>, flags: &str) -> Attributes {
    attrs(
        Type::EccKeyPair {
            curve_family: EccFamily::SecpR1,
        },
        bits,
        alg,
        flags,
    )
}

/// An RSA-2048 key pair.
pub(crate) fn rsa_pair(alg: impl Into<Algorithm>, flags: &str) -> Attributes {
    attrs(Type::RsaKeyPair, 2048, alg, flags)
}

pub(crate) fn ecdsa(hash: Hash) -> AsymmetricSignature {
    AsymmetricSignature::Ecdsa {
        hash_alg: SignHash::Specific(hash),
    }
}

pub(crate) fn pkcs1v15_sign(hash: Hash) -> AsymmetricSignature {
    AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: SignHash::Specific(hash),
    }
}

pub(crate) fn pss(hash: Hash) -> AsymmetricSignature {
    AsymmetricSignature::RsaPss {
        hash_alg: SignHash::Specific(hash),
    }
}

pub(crate) fn oaep_sha256() -> AsymmetricEncryption {
    AsymmetricEncryption::RsaOaep {
        hash_alg: Hash::Sha256,
    }
}

pub(crate) fn aead(alg: AeadWithDefaultLengthTag) -> Aead {
    Aead::AeadWithDefaultLengthTag(alg)
}

pub(crate) fn ecdh() -> Algorithm {
    Algorithm::KeyAgreement(KeyAgreement::Raw(RawKeyAgreement::Ecdh))
}

/// SHA-256 computed by the daemon (checked against the known digest in `hash_compute_and_compare`).
fn sha256(client: &BasicClient, data: &[u8]) -> Vec<u8> {
    client.psa_hash_compute(Hash::Sha256, data).unwrap()
}

/// `data` with one bit of byte `index` flipped.
pub(crate) fn flip(data: &[u8], index: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    out[index] ^= 0x01;
    out
}

const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// ListOpcodes for `provider` sent as raw bytes (no authentication); the opcodes of the answer.
fn raw_list_opcodes(daemon: &Daemon, provider: ProviderId) -> Vec<u32> {
    let body = [0x08, provider as u8];
    let mut request = Vec::new();
    request.extend_from_slice(&0x5EC0_A710u32.to_le_bytes());
    request.extend_from_slice(&30u16.to_le_bytes());
    request.extend_from_slice(&[1, 0]); // version 1.0
    request.extend_from_slice(&0u16.to_le_bytes()); // flags
    request.push(0); // provider: core
    request.extend_from_slice(&0u64.to_le_bytes()); // session
    request.extend_from_slice(&[0, 0, 0]); // content type, accept type, auth type
    request.extend_from_slice(&(body.len() as u32).to_le_bytes());
    request.extend_from_slice(&0u16.to_le_bytes()); // auth length
    request.extend_from_slice(&(Opcode::ListOpcodes as u32).to_le_bytes());
    request.extend_from_slice(&[0, 0, 0, 0]); // status, reserved
    request.extend_from_slice(&body);
    let response = daemon.send_raw(&request);
    assert!(
        response.len() >= 36,
        "short ListOpcodes response: {response:02x?}"
    );
    assert_eq!(
        u16::from_le_bytes([response[32], response[33]]),
        0,
        "ListOpcodes status"
    );
    let mut body = &response[36..];
    // Result { repeated uint32 opcodes = 1 }, packed (tag 0x0a) or not (tag 0x08).
    let mut opcodes = Vec::new();
    let varint = |bytes: &mut &[u8]| -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = bytes[0];
            *bytes = &bytes[1..];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    };
    while !body.is_empty() {
        match varint(&mut body) {
            0x08 => opcodes.push(varint(&mut body) as u32),
            0x0a => {
                let len = varint(&mut body) as usize;
                let (mut packed, rest) = body.split_at(len);
                while !packed.is_empty() {
                    opcodes.push(varint(&mut packed) as u32);
                }
                body = rest;
            }
            tag => panic!("unexpected field tag {tag:#x} in ListOpcodes result"),
        }
    }
    opcodes
}

// ---------------------------------------------------------------------------------------------
// Discovery.

#[test]
fn list_opcodes_answer_what_the_table_says() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("ops-app");
    assert_eq!(client.implicit_provider(), ProviderId::MbedCrypto);
    let providers = client.list_providers().unwrap();
    assert_eq!(providers[0].id, ProviderId::MbedCrypto);
    assert_eq!(providers.last().unwrap().id, ProviderId::Core);
    // Every discrepancy is collected, so that one run reports them all.
    let mut problems = Vec::new();

    // Each provider answers exactly the operations the table says its family serves, less
    // those it does not list (docs/protocol.md#operations-per-provider, ListOpcodes), read from
    // the raw response (independent of the client's opcode table).
    let listed = |family: Family| -> HashSet<u32> {
        bulwark_interface::ops::Opcode::ALL
            .iter()
            .filter(|opcode| opcode.is_served_by(family) && opcode.is_listed())
            .map(|opcode| opcode.value())
            .collect()
    };
    let core: HashSet<u32> = raw_list_opcodes(&daemon, ProviderId::Core)
        .into_iter()
        .collect();
    let expected = listed(Family::Core);
    if core != expected {
        problems.push(format!("Core advertises {core:x?}, expected {expected:x?}"));
    }
    match client.list_opcodes(ProviderId::Core) {
        Ok(parsed) if parsed.len() == core.len() => {}
        other => problems.push(format!("client list_opcodes(Core): {other:?}")),
    }

    let raw: HashSet<u32> = raw_list_opcodes(&daemon, ProviderId::MbedCrypto)
        .into_iter()
        .collect();
    let expected = listed(provider().family());
    if raw != expected {
        problems.push(format!(
            "provider 1 advertises {raw:x?}, expected {expected:x?}"
        ));
    }
    // The upstream client must be able to read the answer: it fails on an opcode it does not
    // know, so reading the same set back shows it knows every one advertised.
    match client.list_opcodes(ProviderId::MbedCrypto) {
        Ok(parsed) => {
            let parsed: HashSet<u32> = parsed.iter().map(|&op| op as u32).collect();
            if parsed != raw {
                problems.push(format!("client read {parsed:x?}, the wire held {raw:x?}"));
            }
        }
        Err(e) => problems.push(format!("client list_opcodes(MbedCrypto) failed: {e:?}")),
    }
    assert!(
        problems.is_empty(),
        "ListOpcodes:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Key management.

#[test]
fn generate_keys_and_export_public() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("gen-app");

    client
        .psa_generate_key("p256", ecc_pair(256, ecdsa(Hash::Sha256), "sign verify"))
        .unwrap();
    client
        .psa_generate_key("p384", ecc_pair(384, ecdsa(Hash::Sha384), "sign verify"))
        .unwrap();
    client
        .psa_generate_key(
            "rsa2048",
            rsa_pair(pkcs1v15_sign(Hash::Sha256), "sign verify"),
        )
        .unwrap();

    let p256 = client.psa_export_public_key("p256").unwrap();
    assert_eq!(p256.len(), 65);
    assert_eq!(p256[0], 0x04);
    let p384 = client.psa_export_public_key("p384").unwrap();
    assert_eq!(p384.len(), 97);
    assert_eq!(p384[0], 0x04);

    // DER RSAPublicKey: SEQUENCE { INTEGER n (257 bytes with the leading zero), INTEGER 65537 }.
    let rsa = client.psa_export_public_key("rsa2048").unwrap();
    assert_eq!(rsa.len(), 270, "RSAPublicKey DER: {}", hex::encode(&rsa));
    assert_eq!(
        &rsa[..9],
        &[0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00]
    );
    assert!(rsa[9] & 0x80 != 0, "modulus is not 2048 bits");
    assert_eq!(&rsa[rsa.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);

    // Two generated keys differ.
    client
        .psa_generate_key("p256-b", ecc_pair(256, ecdsa(Hash::Sha256), "sign verify"))
        .unwrap();
    assert_ne!(client.psa_export_public_key("p256-b").unwrap(), p256);

    // Symmetric keys have no public part.
    client
        .psa_generate_key(
            "aes",
            attrs(
                Type::Aes,
                128,
                aead(AeadWithDefaultLengthTag::Gcm),
                "encrypt decrypt",
            ),
        )
        .unwrap();
    check(
        client.psa_export_public_key("aes"),
        ResponseStatus::PsaErrorInvalidArgument,
    );

    // RSA sizes the provider does not accept.
    check(
        client.psa_generate_key(
            "rsa1000",
            attrs(Type::RsaKeyPair, 1000, pkcs1v15_sign(Hash::Sha256), "sign"),
        ),
        ResponseStatus::PsaErrorInvalidArgument,
    );
    // The failed creation left the name free.
    assert!(!client
        .list_keys()
        .unwrap()
        .iter()
        .any(|k| k.name == "rsa1000"));
}

#[test]
fn import_and_export() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("import-app");

    // ECC key pair: the RFC 6979 A.2.5 P-256 key.
    let private =
        hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721").unwrap();
    let public = hex::decode(
        "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6\
         7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299",
    )
    .unwrap();
    client
        .psa_import_key(
            "ecc",
            &private,
            ecc_pair(256, ecdsa(Hash::Sha256), "sign verify export"),
        )
        .unwrap();
    assert_eq!(client.psa_export_key("ecc").unwrap(), private);
    assert_eq!(client.psa_export_public_key("ecc").unwrap(), public);

    // AES key with the export flag: exported as imported.
    let aes_key = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
    client
        .psa_import_key(
            "aes",
            &aes_key,
            attrs(
                Type::Aes,
                128,
                aead(AeadWithDefaultLengthTag::Gcm),
                "encrypt decrypt export",
            ),
        )
        .unwrap();
    assert_eq!(client.psa_export_key("aes").unwrap(), aes_key);

    // RSA public key (from a generated pair); exported as imported, PsaExportKey of a public
    // key gives the same bytes.
    client
        .psa_generate_key(
            "rsa-pair",
            rsa_pair(pkcs1v15_sign(Hash::Sha256), "sign verify"),
        )
        .unwrap();
    let rsa_public = client.psa_export_public_key("rsa-pair").unwrap();
    client
        .psa_import_key(
            "rsa-public",
            &rsa_public,
            attrs(
                Type::RsaPublicKey,
                2048,
                pkcs1v15_sign(Hash::Sha256),
                "verify export",
            ),
        )
        .unwrap();
    assert_eq!(
        client.psa_export_public_key("rsa-public").unwrap(),
        rsa_public
    );
    assert_eq!(client.psa_export_key("rsa-public").unwrap(), rsa_public);
    // The public key verifies what the pair signs.
    let hash = sha256(&client, b"imported public key");
    let signature = client
        .psa_sign_hash("rsa-pair", &hash, pkcs1v15_sign(Hash::Sha256))
        .unwrap();
    client
        .psa_verify_hash("rsa-public", &hash, pkcs1v15_sign(Hash::Sha256), &signature)
        .unwrap();
    // A public key cannot sign.
    let status = client.psa_sign_hash("rsa-public", &hash, pkcs1v15_sign(Hash::Sha256));
    assert!(
        matches!(status, Err(Error::Service(_))),
        "signing with a public key: {status:?}"
    );

    // Key size 0 on import: taken from the data.
    client
        .psa_import_key(
            "aes-any-size",
            &[0x42; 32],
            attrs(
                Type::Aes,
                0,
                aead(AeadWithDefaultLengthTag::Gcm),
                "encrypt decrypt export",
            ),
        )
        .unwrap();
    assert_eq!(
        client.psa_export_key("aes-any-size").unwrap(),
        vec![0x42; 32]
    );

    // Malformed data and a size that does not match.
    check(
        client.psa_import_key(
            "bad-rsa",
            &[0x30, 0x03, 0x02, 0x01, 0x01],
            attrs(Type::RsaPublicKey, 0, pkcs1v15_sign(Hash::Sha256), "verify"),
        ),
        ResponseStatus::PsaErrorInvalidArgument,
    );
    check(
        client.psa_import_key(
            "bad-size",
            &aes_key,
            attrs(
                Type::Aes,
                256,
                aead(AeadWithDefaultLengthTag::Gcm),
                "encrypt",
            ),
        ),
        ResponseStatus::PsaErrorInvalidArgument,
    );

    // Export without the export flag.
    client
        .psa_import_key(
            "no-export",
            &aes_key,
            attrs(
                Type::Aes,
                128,
                aead(AeadWithDefaultLengthTag::Gcm),
                "encrypt",
            ),
        )
        .unwrap();
    check(
        client.psa_export_key("no-export"),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(
        client.psa_export_key("rsa-pair"),
        ResponseStatus::PsaErrorNotPermitted,
    );
}

#[test]
fn destroy_key() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("destroy-app");
    let attributes = ecc_pair(256, ecdsa(Hash::Sha256), "sign verify");
    client.psa_generate_key("doomed", attributes).unwrap();
    let first = client.psa_export_public_key("doomed").unwrap();
    client.psa_generate_key("kept", attributes).unwrap();

    client.psa_destroy_key("doomed").unwrap();
    check(
        client.psa_export_public_key("doomed"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    check(
        client.psa_sign_hash("doomed", &[0; 32], ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    check(
        client.psa_destroy_key("doomed"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    let names: Vec<String> = client
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, vec!["kept".to_owned()]);

    // The name is free again and names a new key.
    client.psa_generate_key("doomed", attributes).unwrap();
    assert_ne!(client.psa_export_public_key("doomed").unwrap(), first);
    client
        .psa_sign_hash("kept", &[7; 32], ecdsa(Hash::Sha256))
        .unwrap();
}

#[test]
fn list_keys_reports_attributes_as_created() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("list-app");
    assert!(client.list_keys().unwrap().is_empty());

    let created = vec![
        ("ecc-256", ecc_pair(256, ecdsa(Hash::Sha256), "sign verify")),
        (
            "ecc-384-any",
            ecc_pair(
                384,
                AsymmetricSignature::Ecdsa {
                    hash_alg: SignHash::Any,
                },
                "sign verify export",
            ),
        ),
        ("rsa-oaep", rsa_pair(oaep_sha256(), "encrypt decrypt")),
        ("ecdh", ecc_pair(256, ecdh(), "derive")),
        (
            "chacha",
            attrs(
                Type::Chacha20,
                256,
                aead(AeadWithDefaultLengthTag::Chacha20Poly1305),
                "encrypt decrypt",
            ),
        ),
    ];
    for (name, attributes) in &created {
        client.psa_generate_key(name, *attributes).unwrap();
    }
    // Imported with key_bits 0: listed with 0 bits (what the client sent).
    let imported = attrs(
        Type::Aes,
        0,
        aead(AeadWithDefaultLengthTag::Ccm),
        "encrypt decrypt",
    );
    client
        .psa_import_key("aes-imported", &[9; 16], imported)
        .unwrap();

    let mut listed = client.list_keys().unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let mut expected: Vec<_> = created.clone();
    expected.push(("aes-imported", imported));
    expected.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(listed.len(), expected.len(), "{listed:?}");
    for (key, (name, attributes)) in listed.iter().zip(&expected) {
        assert_eq!(key.name, *name);
        assert_eq!(key.provider_id, ProviderId::MbedCrypto, "{name}");
        assert_eq!(key.attributes, *attributes, "{name}");
    }
    assert_eq!(client.key_attributes("rsa-oaep").unwrap(), created[2].1);

    // Another application sees none of them.
    assert!(daemon
        .parsec_client("other-app")
        .list_keys()
        .unwrap()
        .is_empty());
}

// ---------------------------------------------------------------------------------------------
// Signatures.

#[test]
fn sign_and_verify_hash() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("sign-app");
    let hash256 = sha256(&client, b"message to sign");
    let hash384 = client
        .psa_hash_compute(Hash::Sha384, b"message to sign")
        .unwrap();
    assert_eq!(hash384.len(), 48);

    // ECDSA P-256 / SHA-256: r || s, 64 bytes, randomised.
    client
        .psa_generate_key(
            "ecdsa-256",
            ecc_pair(256, ecdsa(Hash::Sha256), "sign verify"),
        )
        .unwrap();
    let sig = client
        .psa_sign_hash("ecdsa-256", &hash256, ecdsa(Hash::Sha256))
        .unwrap();
    assert_eq!(sig.len(), 64);
    client
        .psa_verify_hash("ecdsa-256", &hash256, ecdsa(Hash::Sha256), &sig)
        .unwrap();
    let sig2 = client
        .psa_sign_hash("ecdsa-256", &hash256, ecdsa(Hash::Sha256))
        .unwrap();
    assert_ne!(sig, sig2, "ECDSA signatures are randomised");
    client
        .psa_verify_hash("ecdsa-256", &hash256, ecdsa(Hash::Sha256), &sig2)
        .unwrap();
    check(
        client.psa_verify_hash("ecdsa-256", &hash256, ecdsa(Hash::Sha256), &flip(&sig, 40)),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    check(
        client.psa_verify_hash("ecdsa-256", &flip(&hash256, 0), ecdsa(Hash::Sha256), &sig),
        ResponseStatus::PsaErrorInvalidSignature,
    );

    // ECDSA P-384 / SHA-384: 96 bytes.
    client
        .psa_generate_key(
            "ecdsa-384",
            ecc_pair(384, ecdsa(Hash::Sha384), "sign verify"),
        )
        .unwrap();
    let sig = client
        .psa_sign_hash("ecdsa-384", &hash384, ecdsa(Hash::Sha384))
        .unwrap();
    assert_eq!(sig.len(), 96);
    client
        .psa_verify_hash("ecdsa-384", &hash384, ecdsa(Hash::Sha384), &sig)
        .unwrap();
    check(
        client.psa_verify_hash("ecdsa-384", &hash384, ecdsa(Hash::Sha384), &flip(&sig, 0)),
        ResponseStatus::PsaErrorInvalidSignature,
    );

    // A policy with hash "any" permits a specific hash.
    let any = AsymmetricSignature::Ecdsa {
        hash_alg: SignHash::Any,
    };
    client
        .psa_generate_key("ecdsa-any", ecc_pair(256, any, "sign verify"))
        .unwrap();
    let sig = client
        .psa_sign_hash("ecdsa-any", &hash384, ecdsa(Hash::Sha384))
        .unwrap();
    client
        .psa_verify_hash("ecdsa-any", &hash384, ecdsa(Hash::Sha384), &sig)
        .unwrap();
    // ... but a request naming "any" is never permitted.
    check(
        client.psa_sign_hash("ecdsa-any", &hash256, any),
        ResponseStatus::PsaErrorNotPermitted,
    );

    // RSA PKCS#1 v1.5 / SHA-256: 256 bytes, deterministic.
    client
        .psa_generate_key(
            "rsa-pkcs1",
            rsa_pair(pkcs1v15_sign(Hash::Sha256), "sign verify"),
        )
        .unwrap();
    let sig = client
        .psa_sign_hash("rsa-pkcs1", &hash256, pkcs1v15_sign(Hash::Sha256))
        .unwrap();
    assert_eq!(sig.len(), 256);
    let again = client
        .psa_sign_hash("rsa-pkcs1", &hash256, pkcs1v15_sign(Hash::Sha256))
        .unwrap();
    assert_eq!(sig, again, "PKCS#1 v1.5 signatures are deterministic");
    client
        .psa_verify_hash("rsa-pkcs1", &hash256, pkcs1v15_sign(Hash::Sha256), &sig)
        .unwrap();
    check(
        client.psa_verify_hash(
            "rsa-pkcs1",
            &hash256,
            pkcs1v15_sign(Hash::Sha256),
            &flip(&sig, 100),
        ),
        ResponseStatus::PsaErrorInvalidSignature,
    );

    // RSA-PSS / SHA-256: 256 bytes, randomised.
    client
        .psa_generate_key("rsa-pss", rsa_pair(pss(Hash::Sha256), "sign verify"))
        .unwrap();
    let sig = client
        .psa_sign_hash("rsa-pss", &hash256, pss(Hash::Sha256))
        .unwrap();
    assert_eq!(sig.len(), 256);
    let again = client
        .psa_sign_hash("rsa-pss", &hash256, pss(Hash::Sha256))
        .unwrap();
    assert_ne!(sig, again, "PSS signatures are randomised");
    client
        .psa_verify_hash("rsa-pss", &hash256, pss(Hash::Sha256), &sig)
        .unwrap();
    client
        .psa_verify_hash("rsa-pss", &hash256, pss(Hash::Sha256), &again)
        .unwrap();
    // The signature over another hash: refused as InvalidSignature. (A corrupted PSS signature
    // decodes to random bytes, which Mbed TLS may refuse as malformed, InvalidArgument, before
    // comparing anything: the status would depend on chance.)
    check(
        client.psa_verify_hash("rsa-pss", &flip(&hash256, 0), pss(Hash::Sha256), &sig),
        ResponseStatus::PsaErrorInvalidSignature,
    );
}

#[test]
fn sign_and_verify_message() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("message-app");
    let message = b"a message signed in one call";
    let hash = sha256(&client, message);

    let cases = [
        (
            "msg-ecdsa",
            ecc_pair(256, ecdsa(Hash::Sha256), "sign verify"),
            ecdsa(Hash::Sha256),
            64,
        ),
        (
            "msg-pkcs1",
            rsa_pair(pkcs1v15_sign(Hash::Sha256), "sign verify"),
            pkcs1v15_sign(Hash::Sha256),
            256,
        ),
        (
            "msg-pss",
            rsa_pair(pss(Hash::Sha256), "sign verify"),
            pss(Hash::Sha256),
            256,
        ),
    ];
    for (name, attributes, alg, size) in cases {
        client.psa_generate_key(name, attributes).unwrap();
        let sig = client.psa_sign_message(name, message, alg).unwrap();
        assert_eq!(sig.len(), size, "{name}");
        client.psa_verify_message(name, message, alg, &sig).unwrap();
        // Hash-and-sign: the message signature is the signature of the message's hash.
        client.psa_verify_hash(name, &hash, alg, &sig).unwrap();
        let hash_sig = client.psa_sign_hash(name, &hash, alg).unwrap();
        client
            .psa_verify_message(name, message, alg, &hash_sig)
            .unwrap();
        check(
            client.psa_verify_message(name, b"another message", alg, &sig),
            ResponseStatus::PsaErrorInvalidSignature,
        );
        check(
            client.psa_verify_message(name, message, alg, &flip(&sig, 5)),
            ResponseStatus::PsaErrorInvalidSignature,
        );
    }

    // No signing flag at all.
    client
        .psa_generate_key(
            "msg-verify-only",
            ecc_pair(256, ecdsa(Hash::Sha256), "verify"),
        )
        .unwrap();
    check(
        client.psa_sign_message("msg-verify-only", message, ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(
        client.psa_sign_message("msg-missing", message, ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorDoesNotExist,
    );
}

#[test]
fn sign_message_with_message_flags_only() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("message-flags-app");
    let message = b"signed with message flags only";
    let hash = sha256(&client, message);

    let alg = ecdsa(Hash::Sha256);

    // The same private key twice: with every signing flag, and with the message flags only
    // (sign_message / verify_message, which PsaSignMessage / PsaVerifyMessage accept).
    let private =
        hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721").unwrap();
    client
        .psa_import_key("full", &private, ecc_pair(256, alg, "sign verify"))
        .unwrap();
    client
        .psa_import_key(
            "msg-only",
            &private,
            ecc_pair(256, alg, "sign_message verify_message"),
        )
        .unwrap();
    let reference = client.psa_sign_message("full", message, alg).unwrap();

    let signed = client.psa_sign_message("msg-only", message, alg);
    let verified = client.psa_verify_message("msg-only", message, alg, &reference);
    assert!(
        signed.is_ok() && verified.is_ok(),
        "key with sign_message/verify_message only: sign_message -> {signed:?}, \
         verify_message -> {verified:?}"
    );
    client
        .psa_verify_message("full", message, alg, &signed.unwrap())
        .unwrap();
    check(
        client.psa_verify_message("msg-only", message, alg, &flip(&reference, 3)),
        ResponseStatus::PsaErrorInvalidSignature,
    );

    // The hash operations need the hash flags.
    check(
        client.psa_sign_hash("msg-only", &hash, alg),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(
        client.psa_verify_hash("msg-only", &hash, alg, &reference),
        ResponseStatus::PsaErrorNotPermitted,
    );
}

#[test]
fn signature_errors() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("errors-app");
    let hash = sha256(&client, b"error cases");
    let ecc = ecc_pair(256, ecdsa(Hash::Sha256), "sign verify");

    // Key already exists, for generate and import; the first key is untouched.
    client.psa_generate_key("dup", ecc).unwrap();
    let public = client.psa_export_public_key("dup").unwrap();
    check(
        client.psa_generate_key("dup", ecc),
        ResponseStatus::PsaErrorAlreadyExists,
    );
    check(
        client.psa_import_key("dup", &[1; 32], ecc),
        ResponseStatus::PsaErrorAlreadyExists,
    );
    assert_eq!(client.psa_export_public_key("dup").unwrap(), public);

    // Missing keys.
    check(
        client.psa_sign_hash("nope", &hash, ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    check(
        client.psa_verify_hash("nope", &hash, ecdsa(Hash::Sha256), &[0; 64]),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    check(
        client.psa_export_key("nope"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    check(
        client.psa_export_public_key("nope"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    check(
        client.psa_destroy_key("nope"),
        ResponseStatus::PsaErrorDoesNotExist,
    );

    // Sign without the sign flag.
    client
        .psa_generate_key("verify-only", ecc_pair(256, ecdsa(Hash::Sha256), "verify"))
        .unwrap();
    check(
        client.psa_sign_hash("verify-only", &hash, ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorNotPermitted,
    );
    // Verify without the verify flag.
    client
        .psa_generate_key("sign-only", ecc_pair(256, ecdsa(Hash::Sha256), "sign"))
        .unwrap();
    let sig = client
        .psa_sign_hash("sign-only", &hash, ecdsa(Hash::Sha256))
        .unwrap();
    check(
        client.psa_verify_hash("sign-only", &hash, ecdsa(Hash::Sha256), &sig),
        ResponseStatus::PsaErrorNotPermitted,
    );

    // An algorithm the policy does not permit (SHA-384 on an ECDSA-SHA-256 key, deterministic
    // ECDSA on a randomised-ECDSA key).
    let hash384 = client
        .psa_hash_compute(Hash::Sha384, b"error cases")
        .unwrap();
    check(
        client.psa_sign_hash("dup", &hash384, ecdsa(Hash::Sha384)),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(
        client.psa_sign_hash(
            "dup",
            &hash,
            AsymmetricSignature::DeterministicEcdsa {
                hash_alg: SignHash::Specific(Hash::Sha256),
            },
        ),
        ResponseStatus::PsaErrorNotPermitted,
    );

    // Wrong key type: ECDSA on an RSA key, RSA on an ECC key.
    client
        .psa_generate_key("rsa", rsa_pair(pkcs1v15_sign(Hash::Sha256), "sign verify"))
        .unwrap();
    check(
        client.psa_sign_hash("rsa", &hash, ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(
        client.psa_sign_hash("dup", &hash, pkcs1v15_sign(Hash::Sha256)),
        ResponseStatus::PsaErrorNotPermitted,
    );

    // Wrong hash length for the algorithm.
    check(
        client.psa_sign_hash("dup", &hash[..31], ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorInvalidArgument,
    );
    check(
        client.psa_sign_hash("dup", &hash384, ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorInvalidArgument,
    );
    check(
        client.psa_sign_hash("rsa", &[0; 20], pkcs1v15_sign(Hash::Sha256)),
        ResponseStatus::PsaErrorInvalidArgument,
    );

    // Invalid signatures.
    let sig = client
        .psa_sign_hash("dup", &hash, ecdsa(Hash::Sha256))
        .unwrap();
    check(
        client.psa_verify_hash("dup", &hash, ecdsa(Hash::Sha256), &flip(&sig, 63)),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    let rsa_sig = client
        .psa_sign_hash("rsa", &hash, pkcs1v15_sign(Hash::Sha256))
        .unwrap();
    check(
        client.psa_verify_hash(
            "rsa",
            &flip(&hash, 31),
            pkcs1v15_sign(Hash::Sha256),
            &rsa_sig,
        ),
        ResponseStatus::PsaErrorInvalidSignature,
    );
}

// ---------------------------------------------------------------------------------------------
// Asymmetric encryption.

#[test]
fn rsa_encrypt_and_decrypt() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("rsa-crypt-app");
    let plaintext = b"secret message for RSA";

    // PKCS#1 v1.5.
    let pkcs1 = AsymmetricEncryption::RsaPkcs1v15Crypt;
    client
        .psa_generate_key("rsa-pkcs1", rsa_pair(pkcs1, "encrypt decrypt"))
        .unwrap();
    let ct = client
        .psa_asymmetric_encrypt("rsa-pkcs1", pkcs1, plaintext, None)
        .unwrap();
    assert_eq!(ct.len(), 256);
    let ct2 = client
        .psa_asymmetric_encrypt("rsa-pkcs1", pkcs1, plaintext, None)
        .unwrap();
    assert_ne!(ct, ct2, "PKCS#1 v1.5 encryption is randomised");
    assert_eq!(
        client
            .psa_asymmetric_decrypt("rsa-pkcs1", pkcs1, &ct, None)
            .unwrap(),
        plaintext
    );
    assert_eq!(
        client
            .psa_asymmetric_decrypt("rsa-pkcs1", pkcs1, &ct2, None)
            .unwrap(),
        plaintext
    );
    // Largest plaintext is k - 11 bytes.
    let ct = client
        .psa_asymmetric_encrypt("rsa-pkcs1", pkcs1, &[0xab; 245], None)
        .unwrap();
    assert_eq!(
        client
            .psa_asymmetric_decrypt("rsa-pkcs1", pkcs1, &ct, None)
            .unwrap(),
        vec![0xab; 245]
    );
    check(
        client.psa_asymmetric_encrypt("rsa-pkcs1", pkcs1, &[0xab; 246], None),
        ResponseStatus::PsaErrorInvalidArgument,
    );
    // A label with PKCS#1 v1.5, an empty plaintext.
    check(
        client.psa_asymmetric_encrypt("rsa-pkcs1", pkcs1, plaintext, Some(b"label")),
        ResponseStatus::PsaErrorInvalidArgument,
    );
    check(
        client.psa_asymmetric_encrypt("rsa-pkcs1", pkcs1, &[], None),
        ResponseStatus::PsaErrorInvalidArgument,
    );
    // A ciphertext that does not decrypt to valid padding.
    check(
        client.psa_asymmetric_decrypt("rsa-pkcs1", pkcs1, &flip(&ct, 128), None),
        ResponseStatus::PsaErrorInvalidPadding,
    );

    // OAEP SHA-256, with and without a label.
    let oaep = oaep_sha256();
    client
        .psa_generate_key("rsa-oaep", rsa_pair(oaep, "encrypt decrypt"))
        .unwrap();
    let ct = client
        .psa_asymmetric_encrypt("rsa-oaep", oaep, plaintext, None)
        .unwrap();
    assert_eq!(ct.len(), 256);
    assert_eq!(
        client
            .psa_asymmetric_decrypt("rsa-oaep", oaep, &ct, None)
            .unwrap(),
        plaintext
    );
    let labelled = client
        .psa_asymmetric_encrypt("rsa-oaep", oaep, plaintext, Some(b"my label"))
        .unwrap();
    assert_eq!(
        client
            .psa_asymmetric_decrypt("rsa-oaep", oaep, &labelled, Some(b"my label"))
            .unwrap(),
        plaintext
    );
    check(
        client.psa_asymmetric_decrypt("rsa-oaep", oaep, &labelled, Some(b"other label")),
        ResponseStatus::PsaErrorInvalidPadding,
    );
    check(
        client.psa_asymmetric_decrypt("rsa-oaep", oaep, &labelled, None),
        ResponseStatus::PsaErrorInvalidPadding,
    );
    // Largest OAEP-SHA-256 plaintext is k - 2*32 - 2 = 190 bytes.
    let ct = client
        .psa_asymmetric_encrypt("rsa-oaep", oaep, &[1; 190], None)
        .unwrap();
    assert_eq!(
        client
            .psa_asymmetric_decrypt("rsa-oaep", oaep, &ct, None)
            .unwrap(),
        vec![1; 190]
    );
    check(
        client.psa_asymmetric_encrypt("rsa-oaep", oaep, &[1; 191], None),
        ResponseStatus::PsaErrorInvalidArgument,
    );

    // Policy and flag checks.
    check(
        client.psa_asymmetric_encrypt("rsa-oaep", pkcs1, plaintext, None),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(
        client.psa_asymmetric_encrypt(
            "rsa-oaep",
            AsymmetricEncryption::RsaOaep {
                hash_alg: Hash::Sha384,
            },
            plaintext,
            None,
        ),
        ResponseStatus::PsaErrorNotPermitted,
    );
    client
        .psa_generate_key("rsa-enc-only", rsa_pair(oaep, "encrypt"))
        .unwrap();
    let ct = client
        .psa_asymmetric_encrypt("rsa-enc-only", oaep, plaintext, None)
        .unwrap();
    check(
        client.psa_asymmetric_decrypt("rsa-enc-only", oaep, &ct, None),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(
        client.psa_asymmetric_decrypt("rsa-missing", oaep, &ct, None),
        ResponseStatus::PsaErrorDoesNotExist,
    );

    // Encrypting with an imported public key, decrypting with the pair.
    let public = client.psa_export_public_key("rsa-oaep").unwrap();
    client
        .psa_import_key(
            "rsa-oaep-public",
            &public,
            attrs(Type::RsaPublicKey, 2048, oaep, "encrypt"),
        )
        .unwrap();
    let ct = client
        .psa_asymmetric_encrypt("rsa-oaep-public", oaep, plaintext, Some(b"L"))
        .unwrap();
    assert_eq!(
        client
            .psa_asymmetric_decrypt("rsa-oaep", oaep, &ct, Some(b"L"))
            .unwrap(),
        plaintext
    );
}

// ---------------------------------------------------------------------------------------------
// AEAD.

#[test]
fn aead_round_trips() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("aead-app");
    let plaintext = b"authenticated encryption plaintext";
    let aad = b"associated data";

    let cases = [
        ("aes-gcm", Type::Aes, 128, AeadWithDefaultLengthTag::Gcm, 12),
        (
            "aes-256-gcm",
            Type::Aes,
            256,
            AeadWithDefaultLengthTag::Gcm,
            12,
        ),
        ("aes-ccm", Type::Aes, 128, AeadWithDefaultLengthTag::Ccm, 13),
        (
            "chacha",
            Type::Chacha20,
            256,
            AeadWithDefaultLengthTag::Chacha20Poly1305,
            12,
        ),
    ];
    for (name, key_type, bits, mode, nonce_len) in cases {
        let alg = aead(mode);
        client
            .psa_generate_key(name, attrs(key_type, bits, alg, "encrypt decrypt"))
            .unwrap();
        let nonce: Vec<u8> = (0..nonce_len).collect();
        let ct = client
            .psa_aead_encrypt(name, alg, &nonce, aad, plaintext)
            .unwrap();
        assert_eq!(ct.len(), plaintext.len() + 16, "{name}");
        assert_ne!(&ct[..plaintext.len()], plaintext, "{name}");
        // Same key and nonce: same output (AEAD is deterministic).
        assert_eq!(
            client
                .psa_aead_encrypt(name, alg, &nonce, aad, plaintext)
                .unwrap(),
            ct,
            "{name}"
        );
        assert_eq!(
            client
                .psa_aead_decrypt(name, alg, &nonce, aad, &ct)
                .unwrap(),
            plaintext,
            "{name}"
        );
        // Empty additional data works too.
        let ct_no_aad = client
            .psa_aead_encrypt(name, alg, &nonce, &[], plaintext)
            .unwrap();
        assert_eq!(
            client
                .psa_aead_decrypt(name, alg, &nonce, &[], &ct_no_aad)
                .unwrap(),
            plaintext
        );

        // Tampered tag, ciphertext, additional data or nonce.
        let last = ct.len() - 1;
        for (what, result) in [
            (
                "tag",
                client.psa_aead_decrypt(name, alg, &nonce, aad, &flip(&ct, last)),
            ),
            (
                "ciphertext",
                client.psa_aead_decrypt(name, alg, &nonce, aad, &flip(&ct, 0)),
            ),
            (
                "aad",
                client.psa_aead_decrypt(name, alg, &nonce, b"other data", &ct),
            ),
            (
                "nonce",
                client.psa_aead_decrypt(name, alg, &flip(&nonce, 0), aad, &ct),
            ),
        ] {
            match result {
                Err(Error::Service(ResponseStatus::PsaErrorInvalidSignature)) => {}
                other => {
                    panic!("{name}: tampered {what}: expected InvalidSignature, got {other:?}")
                }
            }
        }
        // Empty plaintext and empty nonce are refused.
        check(
            client.psa_aead_encrypt(name, alg, &nonce, aad, &[]),
            ResponseStatus::PsaErrorInvalidArgument,
        );
        check(
            client.psa_aead_encrypt(name, alg, &[], aad, plaintext),
            ResponseStatus::PsaErrorInvalidArgument,
        );
        check(
            client.psa_aead_decrypt(name, alg, &nonce, aad, &[]),
            ResponseStatus::PsaErrorInvalidArgument,
        );
    }

    // Policy: a GCM key cannot do CCM; an encrypt-only key cannot decrypt.
    let gcm = aead(AeadWithDefaultLengthTag::Gcm);
    check(
        client.psa_aead_encrypt(
            "aes-gcm",
            aead(AeadWithDefaultLengthTag::Ccm),
            &[0; 13],
            aad,
            plaintext,
        ),
        ResponseStatus::PsaErrorNotPermitted,
    );
    client
        .psa_generate_key("gcm-enc-only", attrs(Type::Aes, 128, gcm, "encrypt"))
        .unwrap();
    let ct = client
        .psa_aead_encrypt("gcm-enc-only", gcm, &[0; 12], aad, plaintext)
        .unwrap();
    check(
        client.psa_aead_decrypt("gcm-enc-only", gcm, &[0; 12], aad, &ct),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(
        client.psa_aead_encrypt("gcm-missing", gcm, &[0; 12], aad, plaintext),
        ResponseStatus::PsaErrorDoesNotExist,
    );
}

// ---------------------------------------------------------------------------------------------
// Hash, random, key agreement, capability discovery.

#[test]
fn hash_compute_and_compare() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("hash-app");
    let digest = client.psa_hash_compute(Hash::Sha256, b"abc").unwrap();
    assert_eq!(hex::encode(&digest), SHA256_ABC);
    assert_eq!(
        hex::encode(client.psa_hash_compute(Hash::Sha256, b"").unwrap()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex::encode(client.psa_hash_compute(Hash::Sha512, b"abc").unwrap()),
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
         2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    );
    assert_eq!(
        client.psa_hash_compute(Hash::Sha384, b"abc").unwrap().len(),
        48
    );
    assert_eq!(
        client.psa_hash_compute(Hash::Sha224, b"abc").unwrap().len(),
        28
    );

    client
        .psa_hash_compare(Hash::Sha256, b"abc", &digest)
        .unwrap();
    check(
        client.psa_hash_compare(Hash::Sha256, b"abd", &digest),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    check(
        client.psa_hash_compare(Hash::Sha256, b"abc", &flip(&digest, 31)),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    check(
        client.psa_hash_compare(Hash::Sha256, b"abc", &digest[..31]),
        ResponseStatus::PsaErrorInvalidArgument,
    );
    check(
        client.psa_hash_compare(Hash::Sha512, b"abc", &digest),
        ResponseStatus::PsaErrorInvalidArgument,
    );
}

#[test]
fn generate_random() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("random-app");
    assert!(client.psa_generate_random(0).unwrap().is_empty());
    let a = client.psa_generate_random(16).unwrap();
    let b = client.psa_generate_random(16).unwrap();
    assert_eq!(a.len(), 16);
    assert_ne!(a, b);
    let big = client.psa_generate_random(1024).unwrap();
    assert_eq!(big.len(), 1024);
    assert!(
        big.iter().collect::<HashSet<_>>().len() > 128,
        "1024 random bytes use few values"
    );
    // The limit is 1 MiB: exactly that is served, one byte more is refused.
    assert_eq!(client.psa_generate_random(1 << 20).unwrap().len(), 1 << 20);
    check(
        client.psa_generate_random((1 << 20) + 1),
        ResponseStatus::ResponseTooLarge,
    );
}

#[test]
fn raw_ecdh_agreement() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("ecdh-app");
    client
        .psa_generate_key("alice-ecdh", ecc_pair(256, ecdh(), "derive"))
        .unwrap();
    client
        .psa_generate_key("bob-ecdh", ecc_pair(256, ecdh(), "derive"))
        .unwrap();
    let alice_public = client.psa_export_public_key("alice-ecdh").unwrap();
    let bob_public = client.psa_export_public_key("bob-ecdh").unwrap();

    let a = client
        .psa_raw_key_agreement(RawKeyAgreement::Ecdh, "alice-ecdh", &bob_public)
        .unwrap();
    let b = client
        .psa_raw_key_agreement(RawKeyAgreement::Ecdh, "bob-ecdh", &alice_public)
        .unwrap();
    assert_eq!(a.len(), 32);
    assert_eq!(a, b);
    assert_ne!(a, vec![0; 32]);
    // A different peer gives a different secret.
    client
        .psa_generate_key("carol-ecdh", ecc_pair(256, ecdh(), "derive"))
        .unwrap();
    let carol_public = client.psa_export_public_key("carol-ecdh").unwrap();
    let c = client
        .psa_raw_key_agreement(RawKeyAgreement::Ecdh, "alice-ecdh", &carol_public)
        .unwrap();
    assert_ne!(a, c);

    // P-384: 48 bytes.
    client
        .psa_generate_key("p384-a", ecc_pair(384, ecdh(), "derive"))
        .unwrap();
    client
        .psa_generate_key("p384-b", ecc_pair(384, ecdh(), "derive"))
        .unwrap();
    let x = client
        .psa_raw_key_agreement(
            RawKeyAgreement::Ecdh,
            "p384-a",
            &client.psa_export_public_key("p384-b").unwrap(),
        )
        .unwrap();
    let y = client
        .psa_raw_key_agreement(
            RawKeyAgreement::Ecdh,
            "p384-b",
            &client.psa_export_public_key("p384-a").unwrap(),
        )
        .unwrap();
    assert_eq!(x.len(), 48);
    assert_eq!(x, y);

    // An invalid peer key (a point off the curve).
    check(
        client.psa_raw_key_agreement(RawKeyAgreement::Ecdh, "alice-ecdh", &flip(&bob_public, 64)),
        ResponseStatus::PsaErrorInvalidArgument,
    );
    // Without the derive flag, and with a signing policy.
    client
        .psa_generate_key("no-derive", ecc_pair(256, ecdh(), "sign"))
        .unwrap();
    check(
        client.psa_raw_key_agreement(RawKeyAgreement::Ecdh, "no-derive", &bob_public),
        ResponseStatus::PsaErrorNotPermitted,
    );
    client
        .psa_generate_key("signing", ecc_pair(256, ecdsa(Hash::Sha256), "derive sign"))
        .unwrap();
    check(
        client.psa_raw_key_agreement(RawKeyAgreement::Ecdh, "signing", &bob_public),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(
        client.psa_raw_key_agreement(RawKeyAgreement::Ecdh, "missing", &bob_public),
        ResponseStatus::PsaErrorDoesNotExist,
    );
}

#[test]
fn can_do_crypto() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("cando-app");
    let ecc = ecc_pair(256, ecdsa(Hash::Sha256), "sign verify");
    let rsa = rsa_pair(oaep_sha256(), "encrypt decrypt");
    let gcm = attrs(
        Type::Aes,
        128,
        aead(AeadWithDefaultLengthTag::Gcm),
        "encrypt decrypt",
    );

    // Supported.
    for (check_type, attributes) in [
        (CheckType::Use, ecc),
        (CheckType::Generate, ecc),
        (CheckType::Import, ecc),
        (CheckType::Use, rsa),
        (CheckType::Generate, rsa),
        (CheckType::Generate, gcm),
        (
            CheckType::Import,
            attrs(
                Type::RsaPublicKey,
                2048,
                pkcs1v15_sign(Hash::Sha256),
                "verify",
            ),
        ),
    ] {
        client
            .can_do_crypto(check_type, attributes)
            .unwrap_or_else(|e| panic!("{check_type:?} {attributes:?}: {e:?}"));
    }

    // Not supported.
    for (check_type, attributes) in [
        (CheckType::Derive, ecc),
        // RSA-3072 is not a size the provider generates.
        (
            CheckType::Generate,
            attrs(Type::RsaKeyPair, 3072, pkcs1v15_sign(Hash::Sha256), "sign"),
        ),
        // ECDSA with an RSA key, and no algorithm at all for use.
        (CheckType::Use, rsa_pair(ecdsa(Hash::Sha256), "sign")),
        (CheckType::Use, ecc_pair(256, Algorithm::None, "sign")),
        // FRP curves are not available.
        (
            CheckType::Generate,
            attrs(
                Type::EccKeyPair {
                    curve_family: EccFamily::Frp,
                },
                256,
                ecdsa(Hash::Sha256),
                "sign",
            ),
        ),
        // A public key cannot be generated.
        (
            CheckType::Generate,
            attrs(
                Type::RsaPublicKey,
                2048,
                pkcs1v15_sign(Hash::Sha256),
                "verify",
            ),
        ),
    ] {
        match client.can_do_crypto(check_type, attributes) {
            Err(Error::Service(ResponseStatus::PsaErrorNotSupported)) => {}
            other => panic!("{check_type:?} {attributes:?}: expected NotSupported, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Administration and tenancy.

/// After a change of authenticator, ListClients still names the clients of the old one, and
/// DeleteClient destroys their keys (audited), then answers DoesNotExist for them.
#[test]
fn delete_client_reaches_the_keys_of_a_former_authenticator() {
    let mut daemon = Daemon::start(Auth::Direct {
        admins: vec!["admin".into()],
    });
    let ecc = ecc_pair(256, ecdsa(Hash::Sha256), "sign verify");
    daemon
        .parsec_client("alice")
        .psa_generate_key("alice-1", ecc)
        .unwrap();
    daemon
        .parsec_client("alice")
        .psa_generate_key("alice-2", ecc)
        .unwrap();
    daemon.stop();
    // Now Unix peer credentials, with this test's uid as administrator.
    let uid = nix::unistd::getuid().as_raw();
    daemon.edit_config(
        "auth_type = \"Direct\"\nadmins = [ { name = \"admin\" } ]",
        &format!("auth_type = \"UnixPeerCredentials\"\nadmins = [ {{ name = \"{uid}\" }} ]"),
    );
    daemon.spawn();
    let admin = daemon.parsec_client("admin");
    assert_eq!(admin.list_clients().unwrap(), vec!["alice".to_owned()]);

    admin.delete_client("alice").unwrap();
    assert!(admin.list_clients().unwrap().is_empty());
    check(
        admin.delete_client("alice"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    let audit = std::fs::read_to_string(daemon.dir().join("kim/bulwark-audit.log")).unwrap();
    let destroyed: Vec<&str> = audit
        .lines()
        .filter(|line| {
            line.contains("\"event\":\"key_destroyed\"")
                && line.contains("\"opcode\":\"DeleteClient\"")
                && line.contains("\"key_owner\":\"alice\"")
                && line.contains("\"status\":\"Success\"")
        })
        .collect();
    assert_eq!(destroyed.len(), 2, "{audit}");
    // The old authenticator's keys are gone from the back end too: Alice under Direct again
    // owns nothing.
    daemon.stop();
    daemon.edit_config(
        &format!("auth_type = \"UnixPeerCredentials\"\nadmins = [ {{ name = \"{uid}\" }} ]"),
        "auth_type = \"Direct\"\nadmins = [ { name = \"admin\" } ]",
    );
    daemon.spawn();
    assert!(daemon
        .parsec_client("alice")
        .list_keys()
        .unwrap()
        .is_empty());
}

#[test]
fn admin_lists_and_deletes_clients() {
    let daemon = Daemon::start(Auth::Direct {
        admins: vec!["admin".into()],
    });
    let admin = daemon.parsec_client("admin");
    let alice = daemon.parsec_client("alice");
    let bob = daemon.parsec_client("bob");
    let ecc = ecc_pair(256, ecdsa(Hash::Sha256), "sign verify");

    assert!(admin.list_clients().unwrap().is_empty());
    alice.psa_generate_key("alice-1", ecc).unwrap();
    alice.psa_generate_key("alice-2", ecc).unwrap();
    bob.psa_generate_key("bob-1", ecc).unwrap();
    assert_eq!(
        admin.list_clients().unwrap(),
        vec!["alice".to_owned(), "bob".to_owned()]
    );

    // Not an admin.
    check(bob.list_clients(), ResponseStatus::AdminOperation);
    check(bob.delete_client("alice"), ResponseStatus::AdminOperation);
    assert_eq!(alice.list_keys().unwrap().len(), 2);

    admin.delete_client("alice").unwrap();
    assert!(alice.list_keys().unwrap().is_empty());
    check(
        alice.psa_sign_hash("alice-1", &[1; 32], ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    assert_eq!(admin.list_clients().unwrap(), vec!["bob".to_owned()]);
    // Bob is untouched.
    let sig = bob
        .psa_sign_hash("bob-1", &[1; 32], ecdsa(Hash::Sha256))
        .unwrap();
    bob.psa_verify_hash("bob-1", &[1; 32], ecdsa(Hash::Sha256), &sig)
        .unwrap();
    // Alice can use her names again.
    alice.psa_generate_key("alice-1", ecc).unwrap();

    // Deleting a client that owns no key is not a success.
    check(
        admin.delete_client("nobody"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    assert_eq!(
        admin.list_clients().unwrap(),
        vec!["alice".to_owned(), "bob".to_owned()]
    );

    // On a daemon without admins, nobody is one.
    let plain = Daemon::start(Auth::direct());
    check(
        plain.parsec_client("admin").list_clients(),
        ResponseStatus::AdminOperation,
    );
}

#[test]
fn applications_cannot_reach_each_others_keys() {
    let daemon = Daemon::start(Auth::direct());
    let alice = daemon.parsec_client("alice");
    let bob = daemon.parsec_client("bob");
    let ecc = ecc_pair(256, ecdsa(Hash::Sha256), "sign verify export");
    let hash = sha256(&alice, b"tenancy");

    // Both own a key named "shared"; they are different keys.
    alice.psa_generate_key("shared", ecc).unwrap();
    bob.psa_generate_key("shared", ecc).unwrap();
    bob.psa_generate_key("bob-only", ecc).unwrap();
    let alice_public = alice.psa_export_public_key("shared").unwrap();
    let bob_public = bob.psa_export_public_key("shared").unwrap();
    assert_ne!(alice_public, bob_public);
    assert_ne!(
        alice.psa_export_key("shared").unwrap(),
        bob.psa_export_key("shared").unwrap()
    );

    // Listing shows only one's own keys.
    let alice_keys: Vec<String> = alice
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(alice_keys, vec!["shared".to_owned()]);
    let mut bob_keys: Vec<String> = bob
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    bob_keys.sort();
    assert_eq!(bob_keys, vec!["bob-only".to_owned(), "shared".to_owned()]);

    // Alice cannot use, export or destroy Bob's key.
    check(
        alice.psa_sign_hash("bob-only", &hash, ecdsa(Hash::Sha256)),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    check(
        alice.psa_export_key("bob-only"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    check(
        alice.psa_export_public_key("bob-only"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    check(
        alice.psa_destroy_key("bob-only"),
        ResponseStatus::PsaErrorDoesNotExist,
    );

    // Alice's "shared" signs with Alice's key: Bob's "shared" does not verify it.
    let sig = alice
        .psa_sign_hash("shared", &hash, ecdsa(Hash::Sha256))
        .unwrap();
    alice
        .psa_verify_hash("shared", &hash, ecdsa(Hash::Sha256), &sig)
        .unwrap();
    check(
        bob.psa_verify_hash("shared", &hash, ecdsa(Hash::Sha256), &sig),
        ResponseStatus::PsaErrorInvalidSignature,
    );

    // Alice destroys her "shared"; Bob's keys still work.
    alice.psa_destroy_key("shared").unwrap();
    check(
        alice.psa_export_public_key("shared"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    assert_eq!(bob.psa_export_public_key("shared").unwrap(), bob_public);
    for name in ["shared", "bob-only"] {
        let sig = bob.psa_sign_hash(name, &hash, ecdsa(Hash::Sha256)).unwrap();
        bob.psa_verify_hash(name, &hash, ecdsa(Hash::Sha256), &sig)
            .unwrap();
    }
    assert_eq!(bob.list_keys().unwrap().len(), 2);
    assert!(alice.list_keys().unwrap().is_empty());
}
