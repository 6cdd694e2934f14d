//! Key agreement: ECDH, and FFDH refused.

use super::*;

pub(crate) fn ecdh_gives_both_sides_the_same_secret<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let alg = RawKeyAgreement::Ecdh;
    let derive = flags(|f| {
        f.set_derive();
    });
    let request = |own: &str, peer: Vec<u8>| psa_raw_key_agreement::Request {
        alg,
        private_key_name: own.to_owned(),
        peer_key: peer,
    };
    if !P::EXPECTED.serves(Opcode::PsaRawKeyAgreement) {
        f.assert_not_served::<PsaRawKeyAgreement>(request("alice", vec![0x04; 65]));
        return Outcome::NotSupported("PsaRawKeyAgreement");
    }
    f.generate(
        "alice",
        attrs(secp_r1_pair(), 256, KeyAgreement::Raw(alg), derive),
    );
    f.generate(
        "bob",
        attrs(secp_r1_pair(), 256, KeyAgreement::Raw(alg), derive),
    );
    let agree = |own: &str, peer: &str| {
        f.call::<PsaRawKeyAgreement>(request(own, f.export_public(peer)))
            .map(|response| response.shared_secret.to_vec())
    };
    let alice = agree("alice", "bob").expect("agreed");
    assert_eq!(alice.len(), 32);
    assert_eq!(alice, agree("bob", "alice").expect("agreed"));
    assert_eq!(
        status(f.call::<PsaRawKeyAgreement>(request("alice", vec![0x04; 65]))),
        ResponseStatus::PsaErrorInvalidArgument
    );
    let ffdh = psa_raw_key_agreement::Request {
        alg: RawKeyAgreement::Ffdh,
        private_key_name: "alice".into(),
        peer_key: f.export_public("bob"),
    };
    // The policy names ECDH, so FFDH is refused by policy first.
    assert_eq!(
        status(f.call::<PsaRawKeyAgreement>(ffdh)),
        ResponseStatus::PsaErrorNotPermitted
    );
    Outcome::Passed
}

/// ECDH with a private key whose policy has no usage flag.
pub(crate) fn agreement_uses_without_flags<P: Subject>(f: &Fixture<P>, uses: &mut KeyUses) {
    let ecdh = KeyAgreement::Raw(RawKeyAgreement::Ecdh);
    if P::EXPECTED.serves(Opcode::PsaRawKeyAgreement) {
        f.generate(
            "ecdh",
            attrs(secp_r1_pair(), 256, ecdh, UsageFlags::default()),
        );
    }
    let (_, peer_key) = fixed_secp_r1_key(256);
    uses.refused::<P, PsaRawKeyAgreement>(
        f,
        psa_raw_key_agreement::Request {
            alg: RawKeyAgreement::Ecdh,
            private_key_name: "ecdh".into(),
            peer_key,
        },
    );
}
