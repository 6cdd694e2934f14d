//! Signatures: hashes and messages, the refusals of their policy, concurrency.

use super::*;

pub(crate) fn ecdsa_round_trip<P: Subject>(f: &Fixture<P>, bits: usize, hash_alg: Hash) {
    let alg = ecdsa(hash_alg);
    let signature_len = 2 * bits / 8;
    f.generate("ecc", attrs(secp_r1_pair(), bits, alg, sign_verify()));
    let hash = sha2(hash_alg, b"message");
    let signature = f.try_sign("ecc", alg, &hash).expect("signed");
    assert_eq!(signature.len(), signature_len);
    f.try_verify("ecc", alg, &hash, &signature)
        .expect("verified");
    let mut bad = signature.clone();
    bad[5] ^= 1;
    assert_eq!(
        status(f.try_verify("ecc", alg, &hash, &bad)),
        ResponseStatus::PsaErrorInvalidSignature
    );
}

pub(crate) fn ecdsa_p256_signs_and_verifies<P: Subject>() -> Outcome {
    ecdsa_round_trip(&Fixture::<P>::new(), 256, Hash::Sha256);
    Outcome::Passed
}

pub(crate) fn ecdsa_p384_signs_and_verifies<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    match P::EXPECTED.p384 {
        Support::Yes => {
            ecdsa_round_trip(&f, 384, Hash::Sha384);
            Outcome::Passed
        }
        Support::No(refusal) => {
            let p384 = attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify());
            assert_eq!(status(f.try_generate("ecc", p384)), refusal);
            assert!(f.key_names().is_empty());
            Outcome::NotSupported("P-384 keys")
        }
    }
}

pub(crate) fn rsa_2048_pkcs1v15_signs_and_verifies<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let hash = sha2(Hash::Sha256, b"message");
    let v15 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: SignHash::Any,
    };
    f.generate("v15", attrs(Type::RsaKeyPair, 2048, v15, sign_verify()));

    // A policy with the `Any` wildcard permits the scheme with a specific hash.
    let v15_sha256 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    let signature = f.try_sign("v15", v15_sha256, &hash).expect("signed");
    assert_eq!(signature.len(), 256);
    assert_eq!(
        f.try_sign("v15", v15_sha256, &hash).expect("signed"),
        signature,
        "deterministic"
    );
    f.try_verify("v15", v15_sha256, &hash, &signature)
        .expect("verified");
    let other = sha2(Hash::Sha256, b"other message");
    assert_eq!(
        status(f.try_verify("v15", v15_sha256, &other, &signature)),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

pub(crate) fn rsa_2048_pss_signs_and_verifies<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let hash = sha2(Hash::Sha256, b"message");
    let pss = AsymmetricSignature::RsaPss {
        hash_alg: Hash::Sha256.into(),
    };
    let generated = f.try_generate("pss", attrs(Type::RsaKeyPair, 2048, pss, sign_verify()));
    if expect_support(P::EXPECTED.rsa_pss, generated).is_none() {
        assert!(f.key_names().is_empty());
        return Outcome::NotSupported("RSA PSS");
    }
    let signature = f.try_sign("pss", pss, &hash).expect("signed");
    assert_eq!(signature.len(), 256);
    assert_ne!(
        f.try_sign("pss", pss, &hash).expect("signed"),
        signature,
        "PSS is salted"
    );
    f.try_verify("pss", pss, &hash, &signature)
        .expect("verified");
    let other = sha2(Hash::Sha256, b"other message");
    assert_eq!(
        status(f.try_verify("pss", pss, &other, &signature)),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

fn sign_message_request(alg: AsymmetricSignature, message: &[u8]) -> psa_sign_message::Request {
    psa_sign_message::Request {
        key_name: "ecc".into(),
        alg,
        message: message.to_vec(),
    }
}

fn verify_message_request(
    alg: AsymmetricSignature,
    message: &[u8],
    signature: &[u8],
) -> psa_verify_message::Request {
    psa_verify_message::Request {
        key_name: "ecc".into(),
        alg,
        message: message.to_vec(),
        signature: signature.to_vec(),
    }
}

/// Asserts that neither PsaSignMessage nor PsaVerifyMessage is served.
fn assert_message_signatures_not_served<P: Subject>(
    f: &Fixture<P>,
    alg: AsymmetricSignature,
) -> Outcome {
    f.assert_not_served::<PsaSignMessage>(sign_message_request(alg, b"hello"));
    f.assert_not_served::<PsaVerifyMessage>(verify_message_request(alg, b"hello", &[0; 64]));
    Outcome::NotSupported("PsaSignMessage, PsaVerifyMessage")
}

pub(crate) fn sign_message_hashes_then_signs<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    if !P::EXPECTED.serves(Opcode::PsaSignMessage) {
        return assert_message_signatures_not_served(&f, alg);
    }
    let signature = f
        .call::<PsaSignMessage>(sign_message_request(alg, b"hello"))
        .expect("signed")
        .signature;
    // The message signature is a signature of the message's hash.
    let hash = sha2(Hash::Sha256, b"hello");
    f.try_verify("ecc", alg, &hash, &signature)
        .expect("verified as a hash signature");
    let verify = |message: &[u8]| {
        f.call::<PsaVerifyMessage>(verify_message_request(alg, message, &signature))
    };
    verify(b"hello").expect("verified");
    assert_eq!(
        status(verify(b"hellO")),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

pub(crate) fn sign_message_without_a_specific_hash_is_not_supported<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = AsymmetricSignature::EcdsaAny;
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    if !P::EXPECTED.serves(Opcode::PsaSignMessage) {
        return assert_message_signatures_not_served(&f, alg);
    }
    assert_eq!(
        status(f.call::<PsaSignMessage>(sign_message_request(alg, b"hello"))),
        ResponseStatus::PsaErrorNotSupported
    );
    Outcome::Passed
}

pub(crate) fn sign_is_refused_without_the_flag_or_with_another_algorithm<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate(
        "verify-only",
        attrs(secp_r1_pair(), 256, alg, verify_only()),
    );
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let hash = [0x42; 32];
    assert_eq!(
        status(f.try_sign("verify-only", alg, &hash)),
        ResponseStatus::PsaErrorNotPermitted
    );
    let sha384 = ecdsa(Hash::Sha384);
    assert_eq!(
        status(f.try_sign("ecc", sha384, &[0x42; 48])),
        ResponseStatus::PsaErrorNotPermitted
    );
    let rsa = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    assert_eq!(
        status(f.try_sign("ecc", rsa, &hash)),
        ResponseStatus::PsaErrorNotPermitted
    );
    Outcome::Passed
}

/// Every operation that uses a key refuses one whose policy lacks the usage flag it needs
/// (the service checks the policy before the provider runs), while public export and
/// destruction, which need no flag, still work on such a key. Each family tries its own
/// operations; [`KeyUses::finish`] checks that together they tried every operation the table
/// gives a policy check.
pub(crate) fn every_key_use_needs_its_usage_flag<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let mut uses = KeyUses::new();
    sign_uses_without_flags(&f, &mut uses);
    export_uses_without_flags(&f, &mut uses);
    agreement_uses_without_flags(&f, &mut uses);
    asym_uses_without_flags(&f, &mut uses);
    aead_uses_without_flags(&f, &mut uses);
    cipher_uses_without_flags(&f, &mut uses);
    mac_uses_without_flags(&f, &mut uses);
    for name in f.key_names() {
        f.destroy(&name).expect("destruction needs no flag");
    }
    uses.finish()
}

/// The signatures, with a key whose policy has no usage flag.
fn sign_uses_without_flags<P: Subject>(f: &Fixture<P>, uses: &mut KeyUses) {
    let alg = ecdsa(Hash::Sha256);
    f.generate(
        "ecc",
        attrs(secp_r1_pair(), 256, alg, UsageFlags::default()),
    );
    let hash = vec![0x42; 32];
    uses.refused::<P, PsaSignHash>(
        f,
        psa_sign_hash::Request {
            key_name: "ecc".into(),
            alg,
            hash: hash.clone(),
        },
    );
    uses.refused::<P, PsaVerifyHash>(
        f,
        psa_verify_hash::Request {
            key_name: "ecc".into(),
            alg,
            hash,
            signature: vec![1; 64],
        },
    );
    uses.refused::<P, PsaSignMessage>(f, sign_message_request(alg, b"hello"));
    uses.refused::<P, PsaVerifyMessage>(f, verify_message_request(alg, b"hello", &[1; 64]));
}

pub(crate) fn a_hash_of_the_wrong_length_is_an_invalid_argument<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    assert_eq!(
        status(f.try_sign("ecc", alg, &[0x42; 31])),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_verify("ecc", alg, &[0x42; 33], &[0; 64])),
        ResponseStatus::PsaErrorInvalidArgument
    );
    Outcome::Passed
}

pub(crate) fn signing_from_eight_threads_at_once_is_safe<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    let Load { keys, rounds } = P::EXPECTED.load;
    assert!(keys > 0 && rounds > 0, "a load that tests something");
    // Many keys: for the software providers more than Mbed TLS has key slots, so that keys are
    // loaded and evicted concurrently there, and unwrapped and cached concurrently in the
    // OpenSSL provider.
    let names: Vec<String> = (0..keys).map(|i| format!("key-{i}")).collect();
    for name in &names {
        f.generate(name, attrs(secp_r1_pair(), 256, alg, sign_verify()));
    }
    std::thread::scope(|scope| {
        for thread in 0..8u8 {
            let (f, names) = (&f, &names);
            scope.spawn(move || {
                for round in 0..rounds {
                    let name = &names
                        [usize::from(thread.wrapping_mul(7).wrapping_add(round)) % names.len()];
                    let hash = [thread ^ round; 32];
                    let signature = f.try_sign(name, alg, &hash).expect("signed");
                    f.try_verify(name, alg, &hash, &signature)
                        .expect("verified");
                }
            });
        }
    });
    Outcome::Passed
}

/// A signature made by a key pair verifies with its public key, exported and imported as a
/// public key; for SECP-R1 P-256 and RSA 2048.
pub(crate) fn a_public_key_imported_from_an_export_verifies<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let ecc = ecdsa(Hash::Sha256);
    let rsa = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    let cases = [
        (secp_r1_pair(), secp_r1_public(), ecc),
        (Type::RsaKeyPair, Type::RsaPublicKey, rsa),
    ];
    for (pair_type, public_type, alg) in cases {
        let bits = if pair_type == Type::RsaKeyPair {
            2048
        } else {
            256
        };
        f.generate("pair", attrs(pair_type, bits, alg, sign_verify()));
        let exported = f.export_public("pair");
        f.try_import(
            "public",
            attrs(public_type, 0, alg, verify_only()),
            &exported,
        )
        .expect("public key imported");
        assert_eq!(f.export_public("public"), exported, "{alg:?}");
        let hash = sha2(Hash::Sha256, b"signed by the pair");
        let signature = f.try_sign("pair", alg, &hash).expect("signed");
        f.try_verify("public", alg, &hash, &signature)
            .expect("verified with the public key");
        let other = sha2(Hash::Sha256, b"something else");
        assert_eq!(
            status(f.try_verify("public", alg, &other, &signature)),
            ResponseStatus::PsaErrorInvalidSignature,
            "{alg:?}"
        );
        // The public key, imported to verify only, does not sign.
        assert_eq!(
            status(f.try_sign("public", alg, &hash)),
            ResponseStatus::PsaErrorNotPermitted,
            "{alg:?}"
        );
        f.destroy("pair").expect("destroyed");
        f.destroy("public").expect("destroyed");
    }
    Outcome::Passed
}
