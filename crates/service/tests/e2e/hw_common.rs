//! What the hardware providers' end-to-end tests share: discovery of a provider that serves the
//! hardware operation set, and an ECDSA P-256 key whose signatures RustCrypto checks.

use std::collections::HashSet;

use bulwark_interface::ops::Family;
use parsec_client::core::interface::operations::psa_algorithm::{AsymmetricSignature, Hash};
use parsec_client::core::interface::operations::psa_key_attributes::{
    Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
};
use parsec_client::core::interface::requests::ProviderId;
use parsec_client::BasicClient;
use sha2::{Digest, Sha256};

/// Asserts that the daemon's only providers are `id` (by `vendor`) and Core, and that `id`
/// advertises exactly the listed operations the operations table says `family` serves
/// (docs/protocol.md#operations-per-provider), as an upstream client decodes them.
pub(crate) fn assert_discovery(client: &BasicClient, id: ProviderId, vendor: &str, family: Family) {
    let providers = client.list_providers().expect("providers");
    let ids: Vec<ProviderId> = providers.iter().map(|p| p.id).collect();
    assert_eq!(ids, [id, ProviderId::Core]);
    assert_eq!(providers[0].vendor, vendor);
    let opcodes = client.list_opcodes(id).expect("opcodes");
    let advertised: HashSet<u32> = opcodes.into_iter().map(|opcode| opcode as u32).collect();
    let expected: HashSet<u32> = bulwark_interface::ops::Opcode::ALL
        .iter()
        .filter(|opcode| opcode.is_served_by(family) && opcode.is_listed())
        .map(|opcode| opcode.value())
        .collect();
    assert_eq!(advertised, expected);
}

/// An ECDSA P-256 signing key made in the provider, with its exported public key.
pub(crate) struct SigningKey {
    pub name: &'static str,
    pub alg: AsymmetricSignature,
    pub public: Vec<u8>,
    /// The SHA-256 hash the tests sign.
    pub hash: Vec<u8>,
}

impl SigningKey {
    /// Generates the key `name` and exports its public key.
    pub(crate) fn generate(client: &BasicClient, name: &'static str) -> SigningKey {
        let alg = AsymmetricSignature::Ecdsa {
            hash_alg: Hash::Sha256.into(),
        };
        let mut usage = UsageFlags::default();
        usage.set_sign_hash().set_verify_hash();
        let attributes = Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            },
            bits: 256,
            policy: Policy {
                usage_flags: usage,
                permitted_algorithms: alg.into(),
            },
        };
        client
            .psa_generate_key(name, attributes)
            .expect("generated");
        SigningKey {
            name,
            alg,
            public: client.psa_export_public_key(name).expect("exported"),
            hash: Sha256::digest(b"survives").to_vec(),
        }
    }

    /// Signs the hash through `client` and checks the signature with RustCrypto.
    pub(crate) fn sign_and_check(&self, client: &BasicClient, when: &str) -> Vec<u8> {
        let signature = client
            .psa_sign_hash(self.name, &self.hash, self.alg)
            .unwrap_or_else(|e| panic!("signed {when}: {e:?}"));
        self.check(&signature);
        signature
    }

    /// Checks `signature` (`r ‖ s`) of the hash with RustCrypto.
    pub(crate) fn check(&self, signature: &[u8]) {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.public)
            .expect("point")
            .verify_prehash(
                &self.hash,
                &p256::ecdsa::Signature::from_slice(signature).expect("r || s"),
            )
            .expect("RustCrypto verifies");
    }
}
