//! Registration: what a provider registers, and so advertises.

use super::*;

/// The provider registers exactly the operations of its expectations (so ListOpcodes
/// advertises them, and every other operation answers NotSupported).
pub(crate) fn advertises_exactly_the_expected_operations<P: Subject>() -> Outcome {
    let f = Fixture::<P>::new();
    let expected: BTreeSet<Opcode> = Opcode::ALL
        .iter()
        .copied()
        .filter(|opcode| P::EXPECTED.serves(*opcode))
        .collect();
    assert!(expected.iter().all(|opcode| !opcode.is_core()));
    assert_eq!(f.registered(), expected);
    for opcode in [Opcode::PsaGenerateKey, Opcode::PsaDestroyKey] {
        assert!(
            expected.contains(&opcode),
            "{opcode}: every provider holds keys"
        );
    }
    if !expected.contains(&Opcode::PsaHashCompute) {
        f.assert_not_served::<PsaHashCompute>(psa_hash_compute::Request {
            alg: Hash::Sha256,
            input: b"abc".to_vec(),
        });
    }
    Outcome::Passed
}
