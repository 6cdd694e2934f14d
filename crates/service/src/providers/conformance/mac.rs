//! MACs, hashes and random numbers.

use super::*;

pub(crate) fn hmac_compute_and_verify<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = Mac::FullLength(FullLengthMac::Hmac {
        hash_alg: Hash::Sha256,
    });
    let compute = psa_mac_compute::Request {
        key_name: "hmac".into(),
        alg,
        input: b"data".to_vec(),
    };
    let verify = |mac: Vec<u8>| psa_mac_verify::Request {
        key_name: "hmac".into(),
        alg,
        input: b"data".to_vec(),
        mac,
    };
    if !P::EXPECTED.serves(Opcode::PsaMacCompute) {
        f.assert_not_served::<PsaMacCompute>(compute);
        f.assert_not_served::<PsaMacVerify>(verify(vec![0; 32]));
        return Outcome::NotSupported("MAC operations");
    }
    let usage = flags(|f| {
        f.set_sign_message().set_verify_message();
    });
    f.generate("hmac", attrs(Type::Hmac, 256, alg, usage));
    let mac = f.call::<PsaMacCompute>(compute).expect("computed").mac;
    assert_eq!(mac.len(), 32);
    f.call::<PsaMacVerify>(verify(mac.clone()))
        .expect("verified");
    let mut wrong = mac;
    wrong[0] ^= 1;
    assert_eq!(
        status(f.call::<PsaMacVerify>(verify(wrong))),
        ResponseStatus::PsaErrorInvalidSignature
    );
    Outcome::Passed
}

pub(crate) fn hash_compute_and_compare<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let compare = |hash: Vec<u8>| psa_hash_compare::Request {
        alg: Hash::Sha256,
        input: b"abc".to_vec(),
        hash,
    };
    if !P::EXPECTED.serves(Opcode::PsaHashCompute) {
        f.assert_not_served::<PsaHashCompute>(psa_hash_compute::Request {
            alg: Hash::Sha256,
            input: b"abc".to_vec(),
        });
        f.assert_not_served::<PsaHashCompare>(compare(vec![0; 32]));
        return Outcome::NotSupported("hash operations");
    }
    let hash = digest(&f, Hash::Sha256, b"abc");
    assert_eq!(
        hash,
        hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            .expect("hex")
    );
    f.call::<PsaHashCompare>(compare(hash.clone()))
        .expect("equal");
    let mut wrong = hash.clone();
    wrong[31] ^= 1;
    assert_eq!(
        status(f.call::<PsaHashCompare>(compare(wrong))),
        ResponseStatus::PsaErrorInvalidSignature
    );
    assert_eq!(
        status(f.call::<PsaHashCompare>(compare(hash[..31].to_vec()))),
        ResponseStatus::PsaErrorInvalidArgument
    );
    Outcome::Passed
}

pub(crate) fn key_names_and_keys_per_client_are_bounded<P: Subject>() -> Outcome {
    let f = Fixture::<P>::with_settings(ProviderSettings {
        max_key_name_len: 16,
        max_keys_per_client: 2,
        ..ProviderSettings::default()
    });
    let p256 = || attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify());
    let long = "x".repeat(17);
    // Creation, use and destruction of a name over the limit: InvalidArgument, nothing stored.
    assert_eq!(
        status(f.try_generate(&long, p256())),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_sign(&long, ecdsa(Hash::Sha256), &[0; 32])),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_export_public(&long)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.destroy(&long)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert!(f.key_names().is_empty());
    // A name of exactly the limit is a name like any other; the quota counts keys.
    let longest = "y".repeat(16);
    f.generate(&longest, p256());
    f.generate("second", p256());
    assert_eq!(
        status(f.try_generate("third", p256())),
        ResponseStatus::PsaErrorInsufficientStorage
    );
    // A taken name is still reported as taken, and a destroyed key frees its place.
    assert_eq!(
        status(f.try_generate("second", p256())),
        ResponseStatus::PsaErrorAlreadyExists
    );
    f.destroy(&longest).expect("destroyed");
    f.generate("third", p256());
    assert_eq!(f.key_names(), vec!["second".to_owned(), "third".to_owned()]);
    Outcome::Passed
}

pub(crate) fn random_respects_the_buffer_limit<P: Subject>() -> Outcome {
    let settings = ProviderSettings {
        buffer_size_limit: 64,
        ..ProviderSettings::default()
    };
    let f = Fixture::<P>::with_settings(settings);
    let random = |size| f.call::<PsaGenerateRandom>(psa_generate_random::Request { size });
    assert!(random(0).expect("empty").random_bytes.is_empty());
    let bytes = random(64).expect("random").random_bytes;
    assert_eq!(bytes.len(), 64);
    assert_ne!(
        bytes.to_vec(),
        random(64).expect("random").random_bytes.to_vec()
    );
    assert_eq!(status(random(65)), ResponseStatus::ResponseTooLarge);
    // No identity is needed.
    let anonymous = f
        .call_as::<PsaGenerateRandom>(None, psa_generate_random::Request { size: 16 })
        .expect("random without an identity");
    assert_eq!(anonymous.random_bytes.len(), 16);
    Outcome::Passed
}

/// HMAC with a key whose policy has no usage flag.
pub(crate) fn mac_uses_without_flags<P: Subject>(f: &Fixture<P>, uses: &mut KeyUses) {
    let mac = Mac::FullLength(FullLengthMac::Hmac {
        hash_alg: Hash::Sha256,
    });
    if P::EXPECTED.serves(Opcode::PsaMacCompute) {
        f.generate("hmac", attrs(Type::Hmac, 256, mac, UsageFlags::default()));
    }
    uses.refused::<P, PsaMacCompute>(
        f,
        psa_mac_compute::Request {
            key_name: "hmac".into(),
            alg: mac,
            input: b"data".to_vec(),
        },
    );
    uses.refused::<P, PsaMacVerify>(
        f,
        psa_mac_verify::Request {
            key_name: "hmac".into(),
            alg: mac,
            input: b"data".to_vec(),
            mac: vec![1; 32],
        },
    );
}
