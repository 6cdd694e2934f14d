//! CanDoCrypto: the reference rules and their agreement with key generation.

use super::*;

/// Asserts that CanDoCrypto is not served, if the expectations say so.
fn can_do_not_served<P: Subject>(f: &Fixture<P>) -> Option<Outcome> {
    if P::EXPECTED.serves(Opcode::CanDoCrypto) {
        return None;
    }
    f.assert_not_served::<CanDoCrypto>(can_do_crypto::Request {
        check_type: CheckType::Use,
        attributes: attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify()),
    });
    Some(Outcome::NotSupported("CanDoCrypto"))
}

pub(crate) fn can_do_crypto_follows_the_reference_rules<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    if let Some(outcome) = can_do_not_served(&f) {
        return outcome;
    }
    let ecdsa256 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify());
    let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
    let rsa = |bits| attrs(Type::RsaKeyPair, bits, v15, encrypt_decrypt());
    let ok = |check, attributes| f.can_do(check, attributes).is_ok();
    let no = |check, attributes| {
        status(f.can_do(check, attributes)) == ResponseStatus::PsaErrorNotSupported
    };
    // Where the providers differ: supported means Ok, otherwise exactly NotSupported.
    let expect = |supported: bool, check, attributes| {
        if supported {
            ok(check, attributes)
        } else {
            no(check, attributes)
        }
    };
    let expected = P::EXPECTED;
    let rsa_bits = |bits| expected.rsa_bits.contains(&bits);

    // USE
    assert!(ok(CheckType::Use, ecdsa256));
    assert!(ok(CheckType::Use, rsa(2048)));
    assert!(ok(CheckType::Use, rsa(0)), "0 bits is any size");
    assert!(expect(rsa_bits(3072), CheckType::Use, rsa(3072)));
    assert!(no(
        CheckType::Use,
        attrs(Type::Aes, 128, Algorithm::None, encrypt_decrypt())
    ));
    let derive_only = flags(|f| {
        f.set_derive();
    });
    let ecdh = attrs(
        secp_r1_pair(),
        256,
        KeyAgreement::Raw(RawKeyAgreement::Ecdh),
        derive_only,
    );
    assert!(
        no(CheckType::Use, ecdh),
        "derive is not among the flags USE looks at"
    );
    let mismatched = attrs(Type::RsaKeyPair, 2048, ecdsa(Hash::Sha256), sign_verify());
    assert!(no(CheckType::Use, mismatched));

    // GENERATE
    assert!(ok(CheckType::Generate, ecdsa256));
    assert!(expect(
        expected.p384 == Support::Yes,
        CheckType::Generate,
        attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify())
    ));
    assert!(expect(
        expected.aes_keys == Support::Yes,
        CheckType::Generate,
        attrs(Type::Aes, 256, Algorithm::None, UsageFlags::default())
    ));
    assert!(
        no(CheckType::Generate, ecdh),
        "GENERATE runs USE when the policy names an algorithm"
    );
    assert!(no(
        CheckType::Generate,
        attrs(Type::RsaPublicKey, 2048, v15, encrypt_decrypt())
    ));
    assert!(expect(
        expected.can_do_bare_hmac_keys,
        CheckType::Generate,
        attrs(Type::Hmac, 256, Algorithm::None, UsageFlags::default())
    ));
    let deterministic = AsymmetricSignature::DeterministicEcdsa {
        hash_alg: Hash::Sha256.into(),
    };
    assert!(expect(
        expected.deterministic_ecdsa,
        CheckType::Use,
        attrs(secp_r1_pair(), 256, deterministic, sign_verify())
    ));
    assert!(expect(
        expected.cbc_mac,
        CheckType::Generate,
        attrs(
            Type::Aes,
            128,
            Mac::FullLength(FullLengthMac::CbcMac),
            flags(|f| {
                f.set_sign_message();
            })
        )
    ));
    assert!(expect(rsa_bits(1536), CheckType::Generate, rsa(1536)));
    assert!(no(
        CheckType::Generate,
        attrs(secp_r1_pair(), 383, ecdsa(Hash::Sha256), sign_verify())
    ));
    let frp = Type::EccKeyPair {
        curve_family: EccFamily::Frp,
    };
    assert!(no(
        CheckType::Generate,
        attrs(frp, 256, ecdsa(Hash::Sha256), sign_verify())
    ));

    // IMPORT
    assert!(ok(
        CheckType::Import,
        attrs(Type::RsaPublicKey, 2048, v15, encrypt_decrypt())
    ));
    assert!(ok(
        CheckType::Import,
        attrs(Type::RsaPublicKey, 0, v15, encrypt_decrypt())
    ));
    assert!(expect(
        expected.can_do_bare_hmac_keys,
        CheckType::Import,
        attrs(Type::Hmac, 256, Algorithm::None, UsageFlags::default())
    ));
    let dh = Type::DhKeyPair {
        group_family: DhFamily::Rfc7919,
    };
    assert!(expect(
        expected.dh_keys,
        CheckType::Import,
        attrs(dh, 2048, Algorithm::None, UsageFlags::default())
    ));

    // DERIVE
    assert!(no(CheckType::Derive, ecdsa256));
    Outcome::Passed
}

/// CanDoCrypto's GENERATE answer agrees with what key generation does, over the key kinds the
/// providers differ on: a provider says it can generate exactly the keys it generates.
pub(crate) fn can_do_crypto_agrees_with_key_generation<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    if let Some(outcome) = can_do_not_served(&f) {
        return outcome;
    }
    let rsa_sign = |bits, alg| attrs(Type::RsaKeyPair, bits, alg, sign_verify());
    let rsa_crypt = |bits, alg| attrs(Type::RsaKeyPair, bits, alg, encrypt_decrypt());
    let v15_sign = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    let pss = AsymmetricSignature::RsaPss {
        hash_alg: Hash::Sha256.into(),
    };
    let oaep = AsymmetricEncryption::RsaOaep {
        hash_alg: Hash::Sha256,
    };
    let probes = [
        (
            "p256",
            attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify()),
        ),
        (
            "p384",
            attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify()),
        ),
        ("rsa-v15-sign", rsa_sign(2048, v15_sign)),
        ("rsa-pss", rsa_sign(2048, pss)),
        (
            "rsa-v15-crypt",
            rsa_crypt(2048, AsymmetricEncryption::RsaPkcs1v15Crypt),
        ),
        ("rsa-oaep", rsa_crypt(2048, oaep)),
        ("rsa-1536", rsa_sign(1536, v15_sign)),
        (
            "aes-gcm",
            attrs(
                Type::Aes,
                256,
                Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm),
                encrypt_decrypt(),
            ),
        ),
        (
            "ecc-public",
            attrs(secp_r1_public(), 256, ecdsa(Hash::Sha256), sign_verify()),
        ),
    ];
    let mut generated = Vec::new();
    for (name, attributes) in probes {
        let answer = f.can_do(CheckType::Generate, attributes);
        let result = f.try_generate(name, attributes);
        match answer {
            Ok(()) => {
                result.unwrap_or_else(|refusal| {
                    panic!("{name}: CanDoCrypto says yes, generation answers {refusal:?}")
                });
                generated.push(name.to_owned());
            }
            Err(answer) => {
                assert_eq!(answer, ResponseStatus::PsaErrorNotSupported, "{name}");
                // Panics if the key was generated after all.
                status(result);
            }
        }
    }
    generated.sort();
    assert_eq!(f.key_names(), generated);
    Outcome::Passed
}
