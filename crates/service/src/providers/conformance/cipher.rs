//! Unauthenticated ciphers: CBC, CTR, ECB.

use super::*;

pub(crate) fn cipher_encrypt<P: Provider>(
    f: &Fixture<P>,
    alg: Cipher,
    plaintext: &[u8],
) -> Vec<u8> {
    let request = psa_cipher_encrypt::Request {
        key_name: "aes".into(),
        alg,
        plaintext: SecretBytes::from(plaintext),
    };
    f.call::<PsaCipherEncrypt>(request)
        .expect("encrypted")
        .ciphertext
}

pub(crate) fn cipher_decrypt<P: Provider>(
    f: &Fixture<P>,
    alg: Cipher,
    ciphertext: &[u8],
) -> Result<Vec<u8>, ResponseStatus> {
    let request = psa_cipher_decrypt::Request {
        key_name: "aes".into(),
        alg,
        ciphertext: ciphertext.to_vec(),
    };
    f.call::<PsaCipherDecrypt>(request)
        .map(|response| response.plaintext.to_vec())
}

/// Asserts that the cipher operations are not served, if the expectations say so.
fn ciphers_not_served<P: Subject>(f: &Fixture<P>, alg: Cipher) -> Option<Outcome> {
    if P::EXPECTED.serves(Opcode::PsaCipherEncrypt) {
        return None;
    }
    f.assert_not_served::<PsaCipherEncrypt>(psa_cipher_encrypt::Request {
        key_name: "aes".into(),
        alg,
        plaintext: SecretBytes::from(&b"0123456789abcdef"[..]),
    });
    f.assert_not_served::<PsaCipherDecrypt>(psa_cipher_decrypt::Request {
        key_name: "aes".into(),
        alg,
        ciphertext: vec![0; 32],
    });
    Some(Outcome::NotSupported("cipher operations"))
}

pub(crate) fn aes_cbc_pkcs7_round_trip_with_a_fresh_iv<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Cipher::CbcPkcs7;
    if let Some(outcome) = ciphers_not_served(&f, alg) {
        return outcome;
    }
    f.generate("aes", attrs(Type::Aes, 128, alg, encrypt_decrypt()));
    let plaintext = b"twenty bytes of text";
    let ciphertext = cipher_encrypt(&f, alg, plaintext);
    // 16-byte IV, then 20 bytes padded to 32.
    assert_eq!(ciphertext.len(), 16 + 32);
    assert_ne!(
        cipher_encrypt(&f, alg, plaintext)[..16],
        ciphertext[..16],
        "IV is random"
    );
    assert_eq!(
        cipher_decrypt(&f, alg, &ciphertext).expect("decrypted"),
        plaintext
    );
    Outcome::Passed
}

pub(crate) fn aes_cbc_pkcs7_bad_padding_is_invalid_padding<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    if let Some(outcome) = ciphers_not_served(&f, Cipher::CbcPkcs7) {
        return outcome;
    }
    f.generate(
        "aes",
        attrs(Type::Aes, 128, Cipher::CbcPkcs7, encrypt_decrypt()),
    );
    // One block: 10 bytes of data and 6 bytes of padding 0x06. The last byte of the decrypted
    // block is the IV's last byte XOR the block's decryption, so flipping a bit of the IV turns
    // the padding byte into 0x16, more than a block.
    let ciphertext = cipher_encrypt(&f, Cipher::CbcPkcs7, b"0123456789");
    let mut tampered = ciphertext;
    tampered[15] ^= 0x10;
    assert_eq!(
        status(cipher_decrypt(&f, Cipher::CbcPkcs7, &tampered)),
        ResponseStatus::PsaErrorInvalidPadding
    );
    Outcome::Passed
}

pub(crate) fn aes_ctr_round_trip_keeps_the_length<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Cipher::Ctr;
    if let Some(outcome) = ciphers_not_served(&f, alg) {
        return outcome;
    }
    f.generate("aes", attrs(Type::Aes, 256, alg, encrypt_decrypt()));
    let plaintext = b"odd length message";
    let ciphertext = cipher_encrypt(&f, alg, plaintext);
    assert_eq!(ciphertext.len(), 16 + plaintext.len());
    assert_eq!(
        cipher_decrypt(&f, alg, &ciphertext).expect("decrypted"),
        plaintext
    );
    // A key with a cipher policy (which psa-crypto cannot read back) can be destroyed.
    f.destroy("aes").expect("destroyed");
    assert_eq!(
        status(cipher_decrypt(&f, alg, &ciphertext)),
        ResponseStatus::PsaErrorDoesNotExist
    );
    Outcome::Passed
}

pub(crate) fn aes_ecb_has_no_iv<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Cipher::EcbNoPadding;
    if let Some(outcome) = ciphers_not_served(&f, alg) {
        return outcome;
    }
    f.generate("aes", attrs(Type::Aes, 128, alg, encrypt_decrypt()));
    let plaintext = [0x5a; 32];
    let ciphertext = cipher_encrypt(&f, alg, &plaintext);
    assert_eq!(ciphertext.len(), 32);
    assert_eq!(
        ciphertext[..16],
        ciphertext[16..],
        "ECB: equal blocks, equal ciphertext"
    );
    assert_eq!(
        cipher_decrypt(&f, alg, &ciphertext).expect("decrypted"),
        plaintext
    );
    Outcome::Passed
}

/// AES-CTR with a key whose policy has no usage flag.
pub(crate) fn cipher_uses_without_flags<P: Subject>(f: &Fixture<P>, uses: &mut KeyUses) {
    let cipher = Cipher::Ctr;
    if P::EXPECTED.serves(Opcode::PsaCipherEncrypt) {
        f.generate("aes", attrs(Type::Aes, 128, cipher, UsageFlags::default()));
    }
    uses.refused::<P, PsaCipherEncrypt>(
        f,
        psa_cipher_encrypt::Request {
            key_name: "aes".into(),
            alg: cipher,
            plaintext: SecretBytes::from(&b"secret"[..]),
        },
    );
    uses.refused::<P, PsaCipherDecrypt>(
        f,
        psa_cipher_decrypt::Request {
            key_name: "aes".into(),
            alg: cipher,
            ciphertext: vec![1; 32],
        },
    );
}
