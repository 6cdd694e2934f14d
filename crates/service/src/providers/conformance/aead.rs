//! AEAD: AES-GCM, AES-CCM and ChaCha20-Poly1305.

use super::*;

pub(crate) fn aead_round_trip<P: Subject>(
    key_type: Type,
    alg: AeadWithDefaultLengthTag,
    nonce_len: usize,
) -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Aead::AeadWithDefaultLengthTag(alg);
    let nonce = vec![7; nonce_len];
    let encrypt = psa_aead_encrypt::Request {
        key_name: "aead".into(),
        alg,
        nonce: nonce.clone(),
        additional_data: b"header".to_vec(),
        plaintext: SecretBytes::from(&b"secret payload"[..]),
    };
    let decrypt = |ciphertext: Vec<u8>| psa_aead_decrypt::Request {
        key_name: "aead".into(),
        alg,
        nonce: nonce.clone(),
        additional_data: b"header".to_vec(),
        ciphertext,
    };
    if !P::EXPECTED.serves(Opcode::PsaAeadEncrypt) {
        f.assert_not_served::<PsaAeadEncrypt>(encrypt);
        f.assert_not_served::<PsaAeadDecrypt>(decrypt(vec![0; 30]));
        return Outcome::NotSupported("AEAD operations");
    }
    f.generate("aead", attrs(key_type, 256, alg, encrypt_decrypt()));
    let ciphertext = f
        .call::<PsaAeadEncrypt>(encrypt)
        .expect("encrypted")
        .ciphertext;
    assert_eq!(ciphertext.len(), b"secret payload".len() + 16);
    let plaintext = f
        .call::<PsaAeadDecrypt>(decrypt(ciphertext.clone()))
        .expect("decrypted")
        .plaintext;
    assert_eq!(&plaintext[..], b"secret payload");
    let mut tampered = ciphertext;
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    assert_eq!(
        status(f.call::<PsaAeadDecrypt>(decrypt(tampered))),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

pub(crate) fn aes_gcm_round_trip_and_tag_failure<P: Subject>() -> Outcome {
    aead_round_trip::<P>(Type::Aes, AeadWithDefaultLengthTag::Gcm, 12)
}

pub(crate) fn aes_ccm_round_trip_and_tag_failure<P: Subject>() -> Outcome {
    aead_round_trip::<P>(Type::Aes, AeadWithDefaultLengthTag::Ccm, 13)
}

pub(crate) fn chacha20_poly1305_round_trip_and_tag_failure<P: Subject>() -> Outcome {
    aead_round_trip::<P>(
        Type::Chacha20,
        AeadWithDefaultLengthTag::Chacha20Poly1305,
        12,
    )
}

/// AES-GCM with a key whose policy has no usage flag.
pub(crate) fn aead_uses_without_flags<P: Subject>(f: &Fixture<P>, uses: &mut KeyUses) {
    let aead = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
    if P::EXPECTED.serves(Opcode::PsaAeadEncrypt) {
        f.generate("aead", attrs(Type::Aes, 128, aead, UsageFlags::default()));
    }
    uses.refused::<P, PsaAeadEncrypt>(
        f,
        psa_aead_encrypt::Request {
            key_name: "aead".into(),
            alg: aead,
            nonce: vec![7; 12],
            additional_data: Vec::new(),
            plaintext: SecretBytes::from(&b"secret"[..]),
        },
    );
    uses.refused::<P, PsaAeadDecrypt>(
        f,
        psa_aead_decrypt::Request {
            key_name: "aead".into(),
            alg: aead,
            nonce: vec![7; 12],
            additional_data: Vec::new(),
            ciphertext: vec![1; 32],
        },
    );
}
