//! Key management: export, import, sizes, names, tenancy, deprecation.

use super::*;

pub(crate) fn public_keys_export_in_psa_format<P: Subject>() -> Outcome {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let f = Fixture::<P>::new();
    let mut outcome = Outcome::Passed;
    let alg = ecdsa(Hash::Sha256);
    f.generate("p256", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let p256 = f.export_public("p256");
    assert_eq!((p256.len(), p256[0]), (65, 0x04));
    p256::PublicKey::from_sec1_bytes(&p256).expect("a P-256 point");

    // RSA: the DER RSAPublicKey (PKCS#1) of a 2048-bit modulus and exponent 65537.
    let v15 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    f.generate("rsa", attrs(Type::RsaKeyPair, 2048, v15, sign_verify()));
    let rsa = f.export_public("rsa");
    assert_eq!((rsa.len(), &rsa[..4]), (270, &[0x30, 0x82, 0x01, 0x0a][..]));
    let parsed = rsa::RsaPublicKey::from_pkcs1_der(&rsa).expect("PKCS#1 RSAPublicKey");
    assert_eq!(parsed.n().bits(), 2048);
    assert_eq!(parsed.e(), &rsa::BigUint::from(65537u32));

    let p384 = attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify());
    if expect_support(P::EXPECTED.p384, f.try_generate("p384", p384)).is_some() {
        let p384 = f.export_public("p384");
        assert_eq!((p384.len(), p384[0]), (97, 0x04));
        p384::PublicKey::from_sec1_bytes(&p384).expect("a P-384 point");
    } else {
        outcome = outcome.except("P-384 keys");
    }

    let aes = attrs(Type::Aes, 128, Cipher::Ctr, encrypt_decrypt());
    if expect_support(P::EXPECTED.aes_keys, f.try_generate("aes", aes)).is_some() {
        assert_eq!(
            status(f.try_export_public("aes")),
            ResponseStatus::PsaErrorInvalidArgument
        );
    } else {
        outcome = outcome.except("AES keys");
    }
    outcome
}

pub(crate) fn export_needs_the_export_flag<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("locked", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    if !P::EXPECTED.serves(Opcode::PsaExportKey) {
        f.assert_not_served::<PsaExportKey>(psa_export_key::Request {
            key_name: "locked".into(),
        });
        return Outcome::NotSupported("PsaExportKey");
    }
    assert_eq!(
        status(f.try_export("locked")),
        ResponseStatus::PsaErrorNotPermitted
    );
    let mut usage = sign_verify();
    usage.set_export();
    f.generate("open", attrs(secp_r1_pair(), 256, alg, usage));
    assert_eq!(f.try_export("open").expect("exported").len(), 32);
    Outcome::Passed
}

/// A public key's data is never secret (the PSA rule): PsaExportKey answers an RSA or ECC public
/// key whose policy lacks the export flag, with the data PsaExportPublicKey gives, while the key
/// pair it comes from still needs the flag. A provider that does not serve PsaExportKey refuses
/// it as NotSupported and still exports the public keys with PsaExportPublicKey.
pub(crate) fn public_keys_export_without_the_export_flag<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let v15 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    let cases = [
        (
            "rsa pair",
            Type::RsaKeyPair,
            2048,
            "rsa public",
            Type::RsaPublicKey,
            v15,
        ),
        (
            "ecc pair",
            secp_r1_pair(),
            256,
            "ecc public",
            secp_r1_public(),
            ecdsa(Hash::Sha256),
        ),
    ];
    let serves_export = P::EXPECTED.serves(Opcode::PsaExportKey);
    for (pair, pair_type, bits, public, public_type, alg) in cases {
        f.generate(pair, attrs(pair_type, bits, alg, sign_verify()));
        let data = f.export_public(pair);
        let policy = attrs(public_type, 0, alg, verify_only());
        assert!(!policy.policy.usage_flags.export());
        f.try_import(public, policy, &data)
            .expect("public key imported");
        assert_eq!(f.export_public(public), data, "{public}");
        if serves_export {
            assert_eq!(
                f.try_export(public).expect("public key exported"),
                data,
                "{public}"
            );
            assert_eq!(
                status(f.try_export(pair)),
                ResponseStatus::PsaErrorNotPermitted,
                "{pair}"
            );
        } else {
            f.assert_not_served::<PsaExportKey>(psa_export_key::Request {
                key_name: public.into(),
            });
        }
    }
    if serves_export {
        Outcome::Passed
    } else {
        Outcome::Passed.except("PsaExportKey")
    }
}

/// Imports the fixed SECP-R1 key of `bits` with and without its size, and checks what the
/// copies do.
fn imported_key_pair_works<P: Subject>(f: &Fixture<P>, bits: usize, hash_alg: Hash) {
    let alg = ecdsa(hash_alg);
    let (private, public) = fixed_secp_r1_key(bits);
    let name = |what: &str| format!("{what}-{bits}");

    // With its size given, and with the size taken from the data.
    let sized = attrs(secp_r1_pair(), bits, alg, sign_verify());
    f.try_import(&name("sized"), sized, &private)
        .expect("imported");
    let unsized_ = attrs(secp_r1_pair(), 0, alg, sign_verify());
    f.try_import(&name("unsized"), unsized_, &private)
        .expect("imported");
    assert_eq!(
        f.record(&name("unsized")).attributes,
        unsized_,
        "stored exactly as sent"
    );
    assert_eq!(f.export_public(&name("unsized")), public);
    assert_eq!(f.export_public(&name("sized")), public);

    // Sign with a copy, verify with an imported public key.
    let hash = sha2(hash_alg, b"message");
    let signature = f.try_sign(&name("unsized"), alg, &hash).expect("signed");
    let verify_attrs = attrs(secp_r1_public(), 0, alg, verify_only());
    f.try_import(&name("public"), verify_attrs, &public)
        .expect("imported");
    f.try_verify(&name("public"), alg, &hash, &signature)
        .expect("verified");

    // A size that does not match the data (a size the provider does not serve at all is
    // refused as such), and data that is not a key.
    let (other_bits, other_support) = match bits {
        256 => (384, P::EXPECTED.p384),
        _ => (256, Support::Yes),
    };
    let wrong = attrs(secp_r1_pair(), other_bits, alg, sign_verify());
    let refusal = match other_support {
        Support::Yes => ResponseStatus::PsaErrorInvalidArgument,
        Support::No(refusal) => refusal,
    };
    assert_eq!(
        status(f.try_import(&name("wrong"), wrong, &private)),
        refusal
    );
    assert_eq!(
        status(f.try_import(&name("junk"), verify_attrs, b"junk")),
        ResponseStatus::PsaErrorInvalidArgument
    );
    // Failed imports leave the names free.
    f.try_import(&name("wrong"), sized, &private)
        .expect("name is free");
}

pub(crate) fn imported_keys_work_and_keep_the_attributes_as_sent<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    if let Support::No(refusal) = P::EXPECTED.private_key_import {
        let (private, _) = fixed_secp_r1_key(256);
        let alg = ecdsa(Hash::Sha256);
        for bits in [256, 0] {
            let pair = attrs(secp_r1_pair(), bits, alg, sign_verify());
            assert_eq!(status(f.try_import("pair", pair, &private)), refusal);
        }
        assert!(f.key_names().is_empty());
        return Outcome::NotSupported("private-key import");
    }
    imported_key_pair_works(&f, 256, Hash::Sha256);
    match P::EXPECTED.p384 {
        Support::Yes => {
            imported_key_pair_works(&f, 384, Hash::Sha384);
            Outcome::Passed
        }
        Support::No(refusal) => {
            let (private, _) = fixed_secp_r1_key(384);
            let p384 = attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify());
            assert_eq!(status(f.try_import("p384", p384, &private)), refusal);
            Outcome::Passed.except("P-384 keys")
        }
    }
}

pub(crate) fn provider_size_and_type_checks<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let expected = P::EXPECTED;
    assert!(expected.rsa_bits.contains(&2048), "RSA 2048 is served");
    let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
    let mut kept = Vec::new();
    for bits in [0, 1536, 3072] {
        let rsa = attrs(Type::RsaKeyPair, bits, v15, encrypt_decrypt());
        let name = format!("rsa-{bits}");
        if expected.rsa_bits.contains(&bits) {
            f.generate(&name, rsa);
            kept.push(name);
        } else {
            assert_eq!(
                status(f.try_generate(&name, rsa)),
                expected.refused_size,
                "{bits}"
            );
        }
        if bits != 0 {
            let refusal = match expected.private_key_import {
                Support::Yes => ResponseStatus::PsaErrorInvalidArgument,
                Support::No(refusal) => refusal,
            };
            assert_eq!(
                status(f.try_import("imported", rsa, b"not a key")),
                refusal,
                "{bits}"
            );
        }
    }
    let public = attrs(Type::RsaPublicKey, 2048, v15, encrypt_decrypt());
    assert_eq!(
        status(f.try_generate("public", public)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    let ecc = attrs(secp_r1_public(), 256, ecdsa(Hash::Sha256), sign_verify());
    assert_eq!(
        status(f.try_generate("public", ecc)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    // 284 is not a SECP-R1 size (psa-crypto 0.13 wrongly accepts it instead of 384).
    let typo = attrs(secp_r1_pair(), 284, ecdsa(Hash::Sha256), sign_verify());
    assert_eq!(status(f.try_generate("typo", typo)), expected.refused_size);
    // Nothing else was stored.
    kept.sort();
    assert_eq!(f.key_names(), kept);
    Outcome::Passed
}

pub(crate) fn a_name_can_only_be_used_once<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    let ecc = attrs(secp_r1_pair(), 256, alg, sign_verify());
    f.generate("key", ecc);
    assert_eq!(
        status(f.try_generate("key", ecc)),
        ResponseStatus::PsaErrorAlreadyExists
    );
    let (_, public) = fixed_secp_r1_key(256);
    let verify_attrs = attrs(secp_r1_public(), 0, alg, verify_only());
    assert_eq!(
        status(f.try_import("key", verify_attrs, &public)),
        ResponseStatus::PsaErrorAlreadyExists
    );
    // The first key is untouched.
    let hash = [0x42; 32];
    let signature = f.try_sign("key", alg, &hash).expect("signed");
    f.try_verify("key", alg, &hash, &signature)
        .expect("verified");

    let aes = attrs(Type::Aes, 128, Cipher::Ctr, encrypt_decrypt());
    match P::EXPECTED.aes_keys {
        Support::Yes => {
            f.generate("aes", aes);
            assert_eq!(
                status(f.try_generate("aes", aes)),
                ResponseStatus::PsaErrorAlreadyExists
            );
            assert_eq!(
                status(f.try_import("aes", aes, &[0; 16])),
                ResponseStatus::PsaErrorAlreadyExists
            );
            Outcome::Passed
        }
        Support::No(refusal) => {
            assert_eq!(status(f.try_generate("aes", aes)), refusal);
            Outcome::Passed.except("AES keys")
        }
    }
}

pub(crate) fn missing_and_destroyed_keys_do_not_exist<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    assert_eq!(
        status(f.try_sign("nowhere", alg, &[0; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(f.destroy("nowhere")),
        ResponseStatus::PsaErrorDoesNotExist
    );

    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    (P::EXPECTED.key_id)(&f.record("ecc").key_id);
    let old_public = f.export_public("ecc");
    f.destroy("ecc").expect("destroyed");
    assert_eq!(
        status(f.try_sign("ecc", alg, &[0; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(f.try_export_public("ecc")),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(f.destroy("ecc")),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert!(f.key_names().is_empty());
    // The name is free again, for a new key that works.
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    assert_ne!(f.export_public("ecc"), old_public, "a new key");
    let signature = f.try_sign("ecc", alg, &[0x42; 32]).expect("signed");
    f.try_verify("ecc", alg, &[0x42; 32], &signature)
        .expect("verified");
    Outcome::Passed
}

pub(crate) fn keys_of_another_application_are_invisible<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("mine", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let other = Identity {
        name: "other".into(),
        auth_type: AuthType::Direct,
        is_admin: false,
    };
    let sign = || psa_sign_hash::Request {
        key_name: "mine".into(),
        alg,
        hash: vec![0; 32],
    };
    assert_eq!(
        status(f.call_as::<PsaSignHash>(Some(&other), sign())),
        ResponseStatus::PsaErrorDoesNotExist
    );
    let destroy = psa_destroy_key::Request {
        key_name: "mine".into(),
    };
    assert_eq!(
        status(f.call_as::<PsaDestroyKey>(Some(&other), destroy)),
        ResponseStatus::PsaErrorDoesNotExist
    );
    // Without an identity, nothing is reached at all.
    assert_eq!(
        status(f.call_as::<PsaSignHash>(None, sign())),
        ResponseStatus::NotAuthenticated
    );
    // The other application may use the same name for its own key.
    let generate = psa_generate_key::Request {
        key_name: "mine".into(),
        attributes: attrs(secp_r1_pair(), 256, alg, sign_verify()),
    };
    f.call_as::<PsaGenerateKey>(Some(&other), generate)
        .expect("the other application's own key");
    f.call_as::<PsaSignHash>(Some(&other), sign())
        .expect("signed with the other application's key");
    f.try_sign("mine", alg, &[0; 32]).expect("still mine");
    Outcome::Passed
}

#[allow(deprecated)]
pub(crate) fn deprecated_generation_needs_allow_deprecated<P: Subject>() -> Outcome {
    let sha1 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha1), sign_verify());
    let strict = Fixture::<P>::new();
    assert_eq!(
        status(strict.try_generate("old", sha1)),
        ResponseStatus::DeprecatedPrimitive
    );
    assert!(strict.key_names().is_empty());

    let lenient = Fixture::<P>::with_settings(ProviderSettings {
        allow_deprecated: true,
        ..ProviderSettings::default()
    });
    lenient.generate("old", sha1);
    // Deprecation outranks the provider's own checks, as in the reference.
    let rsa_sha1 = attrs(
        Type::RsaKeyPair,
        3072,
        AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: Hash::Sha1.into(),
        },
        sign_verify(),
    );
    assert_eq!(
        status(strict.try_generate("rsa", rsa_sha1)),
        ResponseStatus::DeprecatedPrimitive
    );

    // Importing a deprecated primitive is only logged: a public key always, a key pair where
    // key pairs can be imported.
    let public_sha1 = attrs(secp_r1_public(), 0, ecdsa(Hash::Sha1), verify_only());
    strict
        .try_import("old-public", public_sha1, &lenient.export_public("old"))
        .expect("imported despite SHA-1");
    let (private, _) = fixed_secp_r1_key(256);
    let imported = strict.try_import("old", sha1, &private);
    if expect_support(P::EXPECTED.private_key_import, imported).is_some() {
        Outcome::Passed
    } else {
        Outcome::Passed.except("private-key import")
    }
}

/// FFDH is supported by no provider; whether DH keys can be held at all is per provider
/// ([`Expectations::dh_keys`]).
pub(crate) fn ffdh_agreement_is_not_supported<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = RawKeyAgreement::Ffdh;
    let derive = flags(|f| {
        f.set_derive();
    });
    let group_family = DhFamily::Rfc7919;
    let dh = attrs(
        Type::DhKeyPair { group_family },
        2048,
        KeyAgreement::Raw(alg),
        derive,
    );
    if P::EXPECTED.dh_keys {
        f.generate("dh", dh);
        let request = psa_raw_key_agreement::Request {
            alg,
            private_key_name: "dh".into(),
            peer_key: f.export_public("dh"),
        };
        assert_eq!(
            status(f.call::<PsaRawKeyAgreement>(request)),
            ResponseStatus::PsaErrorNotSupported
        );
    } else {
        assert_eq!(
            status(f.try_generate("dh", dh)),
            ResponseStatus::PsaErrorNotSupported
        );
        assert!(f.key_names().is_empty());
    }
    Outcome::Passed
}

/// Export with a key whose policy has no usage flag: refused; its public export needs no flag.
pub(crate) fn export_uses_without_flags<P: Subject>(f: &Fixture<P>, uses: &mut KeyUses) {
    let alg = ecdsa(Hash::Sha256);
    f.generate(
        "ecc-export",
        attrs(secp_r1_pair(), 256, alg, UsageFlags::default()),
    );
    uses.refused::<P, PsaExportKey>(
        f,
        psa_export_key::Request {
            key_name: "ecc-export".into(),
        },
    );
    assert_eq!(
        f.export_public("ecc-export").len(),
        65,
        "public export needs no flag"
    );
}
