//! Results of the real daemon checked against independent implementations (RustCrypto), in both
//! directions: what bulwarkd produces verifies/decrypts with RustCrypto, and what RustCrypto
//! produces verifies/decrypts in bulwarkd.

use aes_gcm::aead::{Aead as _, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use parsec_client::core::interface::operations::psa_algorithm::{
    AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Hash, SignHash,
};
use parsec_client::core::interface::operations::psa_key_attributes::{EccFamily, Type};
use parsec_client::core::interface::requests::ResponseStatus;
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::{Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

use crate::client_ops::{
    aead, attrs, check, ecc_pair, ecdsa, flip, oaep_sha256, pkcs1v15_sign, pss, rsa_pair,
};
use crate::harness::{provider, Auth, Daemon, Provider};

#[test]
fn ecdsa_p256_against_p256_crate() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("xcheck-ecdsa");
    let message = b"ECDSA P-256 cross-check";
    let hash = Sha256::digest(message);

    // bulwarkd signs, p256 verifies (with the exported public key).
    client
        .psa_generate_key("ecdsa", ecc_pair(256, ecdsa(Hash::Sha256), "sign verify"))
        .unwrap();
    let public = client.psa_export_public_key("ecdsa").unwrap();
    let verifying = VerifyingKey::from_sec1_bytes(&public).unwrap();
    for _ in 0..4 {
        let raw = client
            .psa_sign_hash("ecdsa", &hash, ecdsa(Hash::Sha256))
            .unwrap();
        assert_eq!(raw.len(), 64);
        let signature = Signature::from_slice(&raw).unwrap();
        verifying.verify_prehash(&hash, &signature).unwrap();
        verifying.verify(message, &signature).unwrap();
        assert!(verifying.verify(b"another message", &signature).is_err());
    }
    let raw = client
        .psa_sign_message("ecdsa", message, ecdsa(Hash::Sha256))
        .unwrap();
    verifying
        .verify(message, &Signature::from_slice(&raw).unwrap())
        .unwrap();

    // p256 signs, bulwarkd verifies with the imported public key.
    let signing = SigningKey::random(&mut OsRng);
    let point = signing.verifying_key().to_encoded_point(false);
    client
        .psa_import_key(
            "p256-public",
            point.as_bytes(),
            attrs(
                Type::EccPublicKey {
                    curve_family: EccFamily::SecpR1,
                },
                256,
                ecdsa(Hash::Sha256),
                "verify",
            ),
        )
        .unwrap();
    assert_eq!(
        client.psa_export_public_key("p256-public").unwrap(),
        point.as_bytes()
    );
    let signature: Signature = signing.sign(message);
    let raw = signature.to_bytes().to_vec();
    client
        .psa_verify_hash("p256-public", &hash, ecdsa(Hash::Sha256), &raw)
        .unwrap();
    client
        .psa_verify_message("p256-public", message, ecdsa(Hash::Sha256), &raw)
        .unwrap();
    // A modified signature, or the signature of another message, fails.
    for index in [0, 31, 32, 63] {
        check(
            client.psa_verify_hash(
                "p256-public",
                &hash,
                ecdsa(Hash::Sha256),
                &flip(&raw, index),
            ),
            ResponseStatus::PsaErrorInvalidSignature,
        );
    }
    check(
        client.psa_verify_message("p256-public", b"another message", ecdsa(Hash::Sha256), &raw),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    // bulwarkd's own key does not verify it.
    check(
        client.psa_verify_hash("ecdsa", &hash, ecdsa(Hash::Sha256), &raw),
        ResponseStatus::PsaErrorInvalidSignature,
    );
}

#[test]
fn deterministic_ecdsa_matches_rfc6979_and_p256() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("xcheck-rfc6979");
    let deterministic = AsymmetricSignature::DeterministicEcdsa {
        hash_alg: SignHash::Specific(Hash::Sha256),
    };

    // RFC 6979 A.2.5, P-256, SHA-256, message "sample".
    let private =
        hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721").unwrap();
    client
        .psa_import_key(
            "rfc6979",
            &private,
            ecc_pair(256, deterministic, "sign verify"),
        )
        .unwrap();
    if provider() == Provider::OpenSsl {
        // OpenSSL 3.0 cannot make RFC 6979 nonces: the OpenSSL provider says so.
        check(
            client.psa_sign_message("rfc6979", b"sample", deterministic),
            ResponseStatus::PsaErrorNotSupported,
        );
        check(
            client.psa_sign_hash("rfc6979", &Sha256::digest(b"sample"), deterministic),
            ResponseStatus::PsaErrorNotSupported,
        );
        return;
    }
    let raw = client
        .psa_sign_message("rfc6979", b"sample", deterministic)
        .unwrap();
    assert_eq!(
        hex::encode(&raw),
        "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716\
         f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"
    );
    let hash = Sha256::digest(b"sample");
    assert_eq!(
        client
            .psa_sign_hash("rfc6979", &hash, deterministic)
            .unwrap(),
        raw
    );

    // A random key known to both sides: p256's (RFC 6979) signature is bulwarkd's.
    let signing = SigningKey::random(&mut OsRng);
    client
        .psa_import_key(
            "shared",
            &signing.to_bytes(),
            ecc_pair(256, deterministic, "sign verify"),
        )
        .unwrap();
    let message = b"deterministic cross-check";
    let expected: Signature = signing.sign(message);
    let raw = client
        .psa_sign_message("shared", message, deterministic)
        .unwrap();
    assert_eq!(raw, expected.to_bytes().to_vec());
}

#[test]
fn rsa_against_rsa_crate() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("xcheck-rsa");
    let message = b"RSA cross-check";
    let hash = Sha256::digest(message);

    // Signatures from bulwarkd keys verify with the rsa crate and the exported public key.
    client
        .psa_generate_key(
            "pkcs1",
            rsa_pair(pkcs1v15_sign(Hash::Sha256), "sign verify"),
        )
        .unwrap();
    client
        .psa_generate_key("pss", rsa_pair(pss(Hash::Sha256), "sign verify"))
        .unwrap();
    let pkcs1_public =
        RsaPublicKey::from_pkcs1_der(&client.psa_export_public_key("pkcs1").unwrap()).unwrap();
    let pss_public =
        RsaPublicKey::from_pkcs1_der(&client.psa_export_public_key("pss").unwrap()).unwrap();
    let sig = client
        .psa_sign_hash("pkcs1", &hash, pkcs1v15_sign(Hash::Sha256))
        .unwrap();
    pkcs1_public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &sig)
        .unwrap();
    assert!(pkcs1_public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &flip(&hash, 0), &sig)
        .is_err());
    let sig = client
        .psa_sign_message("pkcs1", message, pkcs1v15_sign(Hash::Sha256))
        .unwrap();
    pkcs1_public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &sig)
        .unwrap();
    let sig = client
        .psa_sign_hash("pss", &hash, pss(Hash::Sha256))
        .unwrap();
    pss_public
        .verify(Pss::new::<Sha256>(), &hash, &sig)
        .unwrap();
    assert!(pss_public
        .verify(Pss::new::<Sha256>(), &flip(&hash, 0), &sig)
        .is_err());
    let sig = client
        .psa_sign_message("pss", message, pss(Hash::Sha256))
        .unwrap();
    pss_public
        .verify(Pss::new::<Sha256>(), &hash, &sig)
        .unwrap();

    // Ciphertexts made by the rsa crate with an exported public key decrypt in bulwarkd.
    let pkcs1_crypt = AsymmetricEncryption::RsaPkcs1v15Crypt;
    client
        .psa_generate_key("enc-pkcs1", rsa_pair(pkcs1_crypt, "encrypt decrypt"))
        .unwrap();
    client
        .psa_generate_key("enc-oaep", rsa_pair(oaep_sha256(), "encrypt decrypt"))
        .unwrap();
    let enc_pkcs1 =
        RsaPublicKey::from_pkcs1_der(&client.psa_export_public_key("enc-pkcs1").unwrap()).unwrap();
    let enc_oaep =
        RsaPublicKey::from_pkcs1_der(&client.psa_export_public_key("enc-oaep").unwrap()).unwrap();
    let ct = enc_pkcs1
        .encrypt(&mut OsRng, Pkcs1v15Encrypt, message)
        .unwrap();
    assert_eq!(
        client
            .psa_asymmetric_decrypt("enc-pkcs1", pkcs1_crypt, &ct, None)
            .unwrap(),
        message
    );
    let ct = enc_oaep
        .encrypt(&mut OsRng, Oaep::new::<Sha256>(), message)
        .unwrap();
    assert_eq!(
        client
            .psa_asymmetric_decrypt("enc-oaep", oaep_sha256(), &ct, None)
            .unwrap(),
        message
    );
    let ct = enc_oaep
        .encrypt(
            &mut OsRng,
            Oaep::new_with_label::<Sha256, _>("a label"),
            message,
        )
        .unwrap();
    assert_eq!(
        client
            .psa_asymmetric_decrypt("enc-oaep", oaep_sha256(), &ct, Some(b"a label"))
            .unwrap(),
        message
    );
    check(
        client.psa_asymmetric_decrypt("enc-oaep", oaep_sha256(), &ct, None),
        ResponseStatus::PsaErrorInvalidPadding,
    );

    // A private key made by the rsa crate, imported (DER RSAPrivateKey) so both sides hold it.
    let private = RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    let public = private.to_public_key();
    let der = private.to_pkcs1_der().unwrap();
    let both = |name: &str, alg: Algorithm, flags: &str| {
        client
            .psa_import_key(name, der.as_bytes(), rsa_pair(alg, flags))
            .unwrap();
        assert_eq!(
            client.psa_export_public_key(name).unwrap(),
            public.to_pkcs1_der().unwrap().as_bytes(),
            "{name}: public part of the imported key"
        );
    };
    both("imp-pkcs1-crypt", pkcs1_crypt.into(), "encrypt decrypt");
    both("imp-oaep", oaep_sha256().into(), "encrypt decrypt");
    both(
        "imp-pkcs1-sign",
        pkcs1v15_sign(Hash::Sha256).into(),
        "sign verify",
    );
    both("imp-pss", pss(Hash::Sha256).into(), "sign verify");

    // bulwarkd encrypts, the rsa crate decrypts.
    let ct = client
        .psa_asymmetric_encrypt("imp-pkcs1-crypt", pkcs1_crypt, message, None)
        .unwrap();
    assert_eq!(private.decrypt(Pkcs1v15Encrypt, &ct).unwrap(), message);
    let ct = client
        .psa_asymmetric_encrypt("imp-oaep", oaep_sha256(), message, None)
        .unwrap();
    assert_eq!(
        private.decrypt(Oaep::new::<Sha256>(), &ct).unwrap(),
        message
    );
    let ct = client
        .psa_asymmetric_encrypt("imp-oaep", oaep_sha256(), message, Some(b"label!"))
        .unwrap();
    assert_eq!(
        private
            .decrypt(Oaep::new_with_label::<Sha256, _>("label!"), &ct)
            .unwrap(),
        message
    );
    assert!(private.decrypt(Oaep::new::<Sha256>(), &ct).is_err());

    // The rsa crate encrypts with the same key, bulwarkd decrypts.
    let ct = public
        .encrypt(&mut OsRng, Pkcs1v15Encrypt, message)
        .unwrap();
    assert_eq!(
        client
            .psa_asymmetric_decrypt("imp-pkcs1-crypt", pkcs1_crypt, &ct, None)
            .unwrap(),
        message
    );
    let ct = public
        .encrypt(&mut OsRng, Oaep::new_with_label::<Sha256, _>("L2"), message)
        .unwrap();
    assert_eq!(
        client
            .psa_asymmetric_decrypt("imp-oaep", oaep_sha256(), &ct, Some(b"L2"))
            .unwrap(),
        message
    );

    // PKCS#1 v1.5 signatures are deterministic: both sides produce the same bytes.
    let ours = client
        .psa_sign_hash("imp-pkcs1-sign", &hash, pkcs1v15_sign(Hash::Sha256))
        .unwrap();
    let theirs = private.sign(Pkcs1v15Sign::new::<Sha256>(), &hash).unwrap();
    assert_eq!(ours, theirs);
    // PSS signatures cross both ways.
    let sig = client
        .psa_sign_hash("imp-pss", &hash, pss(Hash::Sha256))
        .unwrap();
    public.verify(Pss::new::<Sha256>(), &hash, &sig).unwrap();
    let sig = private
        .sign_with_rng(&mut OsRng, Pss::new::<Sha256>(), &hash)
        .unwrap();
    client
        .psa_verify_hash("imp-pss", &hash, pss(Hash::Sha256), &sig)
        .unwrap();
    client
        .psa_verify_message("imp-pss", message, pss(Hash::Sha256), &sig)
        .unwrap();
    check(
        client.psa_verify_hash("imp-pss", &hash, pss(Hash::Sha256), &flip(&sig, 10)),
        ResponseStatus::PsaErrorInvalidSignature,
    );
}

#[test]
fn aes_gcm_against_aes_gcm_crate() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("xcheck-gcm");
    let mut key = [0u8; 16];
    OsRng.fill_bytes(&mut key);
    let gcm = aead(AeadWithDefaultLengthTag::Gcm);
    client
        .psa_import_key("gcm", &key, attrs(Type::Aes, 128, gcm, "encrypt decrypt"))
        .unwrap();
    let cipher = Aes128Gcm::new_from_slice(&key).unwrap();
    let nonce = [0x5a; 12];
    let aad = b"header";
    let plaintext = b"AES-GCM cross-check plaintext, longer than one block";

    // bulwarkd encrypts, aes-gcm decrypts (and produces the same bytes).
    let ct = client
        .psa_aead_encrypt("gcm", gcm, &nonce, aad, plaintext)
        .unwrap();
    let expected = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap();
    assert_eq!(ct, expected);
    let pt = cipher
        .decrypt(&Nonce::from(nonce), Payload { msg: &ct, aad })
        .unwrap();
    assert_eq!(pt, plaintext);

    // aes-gcm encrypts, bulwarkd decrypts.
    let nonce = [0x17; 12];
    let ct = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: b"the other way",
                aad: b"",
            },
        )
        .unwrap();
    assert_eq!(
        client
            .psa_aead_decrypt("gcm", gcm, &nonce, &[], &ct)
            .unwrap(),
        b"the other way"
    );
    check(
        client.psa_aead_decrypt("gcm", gcm, &nonce, &[], &flip(&ct, ct.len() - 1)),
        ResponseStatus::PsaErrorInvalidSignature,
    );

    // A known answer: NIST GCM test case 3 (AES-128, 96-bit IV, no AAD).
    let key = hex::decode("feffe9928665731c6d6a8f9467308308").unwrap();
    client
        .psa_import_key(
            "gcm-kat",
            &key,
            attrs(Type::Aes, 128, gcm, "encrypt decrypt"),
        )
        .unwrap();
    let iv = hex::decode("cafebabefacedbaddecaf888").unwrap();
    let pt = hex::decode(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
         1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
    )
    .unwrap();
    let ct = client
        .psa_aead_encrypt("gcm-kat", gcm, &iv, &[], &pt)
        .unwrap();
    assert_eq!(
        hex::encode(&ct),
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
         21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985\
         4d5c2af327cd64a62cf35abd2ba6fab4"
    );
}

#[test]
fn sha256_against_sha2_crate() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("xcheck-sha");
    let mut long = vec![0u8; 100_000];
    OsRng.fill_bytes(&mut long);
    for input in [
        &b""[..],
        b"abc",
        &[0x61; 55],
        &[0x61; 56],
        &[0x61; 64],
        &long,
    ] {
        let ours = client.psa_hash_compute(Hash::Sha256, input).unwrap();
        assert_eq!(
            ours,
            Sha256::digest(input).to_vec(),
            "input of {} bytes",
            input.len()
        );
        client.psa_hash_compare(Hash::Sha256, input, &ours).unwrap();
    }
}
