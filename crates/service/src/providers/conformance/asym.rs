//! Asymmetric encryption: RSA PKCS#1 v1.5 and OAEP.

use super::*;

fn asymmetric_encrypt_request(
    alg: AsymmetricEncryption,
    salt: Option<Vec<u8>>,
) -> psa_asymmetric_encrypt::Request {
    psa_asymmetric_encrypt::Request {
        key_name: "rsa".into(),
        alg,
        plaintext: SecretBytes::from(&b"attack at dawn"[..]),
        salt,
    }
}

/// Asserts that asymmetric encryption is not served, if the expectations say so.
fn asymmetric_encryption_not_served<P: Subject>(
    f: &Fixture<P>,
    alg: AsymmetricEncryption,
) -> Option<Outcome> {
    if P::EXPECTED.serves(Opcode::PsaAsymmetricEncrypt) {
        return None;
    }
    f.assert_not_served::<PsaAsymmetricEncrypt>(asymmetric_encrypt_request(alg, None));
    f.assert_not_served::<PsaAsymmetricDecrypt>(psa_asymmetric_decrypt::Request {
        key_name: "rsa".into(),
        alg,
        ciphertext: vec![0; 256],
        salt: None,
    });
    Some(Outcome::NotSupported("asymmetric encryption"))
}

pub(crate) fn rsa_encryption_round_trip<P: Subject>(
    alg: AsymmetricEncryption,
    salt: Option<Vec<u8>>,
) -> Outcome {
    let f = Fixture::<P>::new();
    if let Some(outcome) = asymmetric_encryption_not_served(&f, alg) {
        return outcome;
    }
    f.generate("rsa", attrs(Type::RsaKeyPair, 2048, alg, encrypt_decrypt()));
    let encrypted = f.try_encrypt("rsa", alg, b"attack at dawn", salt.as_deref());
    let oaep_sha256 = matches!(
        alg,
        AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256
        }
    );
    if let (None, true, Support::No(refusal)) = (&salt, oaep_sha256, P::EXPECTED.oaep_sha256) {
        assert_eq!(status(encrypted), refusal);
        return Outcome::NotSupported("OAEP with SHA-256");
    }
    if let (Some(_), Support::No(refusal)) = (&salt, P::EXPECTED.oaep_label) {
        assert_eq!(status(encrypted), refusal);
        return Outcome::NotSupported("OAEP labels");
    }
    let ciphertext = encrypted.expect("encrypted");
    assert_eq!(ciphertext.len(), 256);
    let decrypt = |salt: Option<&[u8]>| f.try_decrypt("rsa", alg, &ciphertext, salt);
    let plaintext = decrypt(salt.as_deref()).expect("decrypted");
    assert_eq!(plaintext, b"attack at dawn");
    match salt {
        // Another OAEP label does not decrypt.
        Some(_) => assert_eq!(
            status(decrypt(Some(b"other"))),
            ResponseStatus::PsaErrorInvalidPadding
        ),
        // Randomised padding: the same plaintext encrypts differently.
        None => {
            let again = f
                .try_encrypt("rsa", alg, b"attack at dawn", None)
                .expect("encrypted");
            assert_ne!(again, ciphertext);
        }
    }
    Outcome::Passed
}

pub(crate) fn rsa_pkcs1v15_encryption_round_trip<P: Subject>() -> Outcome {
    rsa_encryption_round_trip::<P>(AsymmetricEncryption::RsaPkcs1v15Crypt, None)
}

pub(crate) fn rsa_oaep_encryption_round_trip<P: Subject>() -> Outcome {
    rsa_encryption_round_trip::<P>(
        AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256,
        },
        None,
    )
}

pub(crate) fn rsa_oaep_encryption_round_trip_with_a_label<P: Subject>() -> Outcome {
    rsa_encryption_round_trip::<P>(
        AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256,
        },
        Some(b"label".to_vec()),
    )
}

/// RSA encryption and decryption with a key whose policy has no usage flag.
pub(crate) fn asym_uses_without_flags<P: Subject>(f: &Fixture<P>, uses: &mut KeyUses) {
    let alg = AsymmetricEncryption::RsaPkcs1v15Crypt;
    if P::EXPECTED.serves(Opcode::PsaAsymmetricEncrypt) {
        f.generate(
            "rsa",
            attrs(Type::RsaKeyPair, 2048, alg, UsageFlags::default()),
        );
    }
    uses.refused::<P, PsaAsymmetricEncrypt>(f, asymmetric_encrypt_request(alg, None));
    uses.refused::<P, PsaAsymmetricDecrypt>(
        f,
        psa_asymmetric_decrypt::Request {
            key_name: "rsa".into(),
            alg,
            ciphertext: vec![1; 256],
            salt: None,
        },
    );
}
