//! Protobuf message types for every operation body, generated at build time from
//! `proto/*.proto` (see `build.rs`).
//!
//! Each module is one protobuf package; operation packages contain an `Operation` (request body)
//! and a `Result` (response body) message. `psa_key_attributes` and `psa_algorithm` hold the
//! shared PSA types; their conversions to native types live in [`crate::psa`]. The modules are
//! siblings so that prost's `super::psa_algorithm::...` paths resolve.

// Generated code: no docs, no Debug on every type, fully qualified paths, and whatever style
// prost chooses.
#![allow(
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    clippy::all,
    clippy::pedantic,
    clippy::nursery
)]

/// Key attributes: type, size and policy (`psa_key_attributes.proto`).
pub mod psa_key_attributes {
    include!(concat!(env!("OUT_DIR"), "/psa_key_attributes.rs"));
}

/// Algorithm descriptions (`psa_algorithm.proto`).
pub mod psa_algorithm {
    include!(concat!(env!("OUT_DIR"), "/psa_algorithm.rs"));
}

/// Ping (0x0001).
pub mod ping {
    include!(concat!(env!("OUT_DIR"), "/ping.rs"));
}

/// ListProviders (0x0008).
pub mod list_providers {
    include!(concat!(env!("OUT_DIR"), "/list_providers.rs"));
}

/// ListOpcodes (0x0009).
pub mod list_opcodes {
    include!(concat!(env!("OUT_DIR"), "/list_opcodes.rs"));
}

/// ListAuthenticators (0x000E).
pub mod list_authenticators {
    include!(concat!(env!("OUT_DIR"), "/list_authenticators.rs"));
}

/// ListKeys (0x001A).
pub mod list_keys {
    include!(concat!(env!("OUT_DIR"), "/list_keys.rs"));
}

/// ListClients (0x001B).
pub mod list_clients {
    include!(concat!(env!("OUT_DIR"), "/list_clients.rs"));
}

/// DeleteClient (0x001C).
pub mod delete_client {
    include!(concat!(env!("OUT_DIR"), "/delete_client.rs"));
}

/// PsaGenerateKey (0x0002).
pub mod psa_generate_key {
    include!(concat!(env!("OUT_DIR"), "/psa_generate_key.rs"));
}

/// PsaImportKey (0x0006).
pub mod psa_import_key {
    include!(concat!(env!("OUT_DIR"), "/psa_import_key.rs"));
}

/// PsaExportPublicKey (0x0007).
pub mod psa_export_public_key {
    include!(concat!(env!("OUT_DIR"), "/psa_export_public_key.rs"));
}

/// PsaExportKey (0x000C).
pub mod psa_export_key {
    include!(concat!(env!("OUT_DIR"), "/psa_export_key.rs"));
}

/// PsaDestroyKey (0x0003).
pub mod psa_destroy_key {
    include!(concat!(env!("OUT_DIR"), "/psa_destroy_key.rs"));
}

/// PsaHashCompute (0x000F).
pub mod psa_hash_compute {
    include!(concat!(env!("OUT_DIR"), "/psa_hash_compute.rs"));
}

/// PsaHashCompare (0x0010).
pub mod psa_hash_compare {
    include!(concat!(env!("OUT_DIR"), "/psa_hash_compare.rs"));
}

/// PsaSignHash (0x0004).
pub mod psa_sign_hash {
    include!(concat!(env!("OUT_DIR"), "/psa_sign_hash.rs"));
}

/// PsaVerifyHash (0x0005).
pub mod psa_verify_hash {
    include!(concat!(env!("OUT_DIR"), "/psa_verify_hash.rs"));
}

/// PsaSignMessage (0x0018).
pub mod psa_sign_message {
    include!(concat!(env!("OUT_DIR"), "/psa_sign_message.rs"));
}

/// PsaVerifyMessage (0x0019).
pub mod psa_verify_message {
    include!(concat!(env!("OUT_DIR"), "/psa_verify_message.rs"));
}

/// PsaAsymmetricEncrypt (0x000A).
pub mod psa_asymmetric_encrypt {
    include!(concat!(env!("OUT_DIR"), "/psa_asymmetric_encrypt.rs"));
}

/// PsaAsymmetricDecrypt (0x000B).
pub mod psa_asymmetric_decrypt {
    include!(concat!(env!("OUT_DIR"), "/psa_asymmetric_decrypt.rs"));
}

/// PsaAeadEncrypt (0x0011).
pub mod psa_aead_encrypt {
    include!(concat!(env!("OUT_DIR"), "/psa_aead_encrypt.rs"));
}

/// PsaAeadDecrypt (0x0012).
pub mod psa_aead_decrypt {
    include!(concat!(env!("OUT_DIR"), "/psa_aead_decrypt.rs"));
}

/// PsaCipherEncrypt (0x0014).
pub mod psa_cipher_encrypt {
    include!(concat!(env!("OUT_DIR"), "/psa_cipher_encrypt.rs"));
}

/// PsaCipherDecrypt (0x0015).
pub mod psa_cipher_decrypt {
    include!(concat!(env!("OUT_DIR"), "/psa_cipher_decrypt.rs"));
}

/// PsaMacCompute (0x0016).
pub mod psa_mac_compute {
    include!(concat!(env!("OUT_DIR"), "/psa_mac_compute.rs"));
}

/// PsaMacVerify (0x0017).
pub mod psa_mac_verify {
    include!(concat!(env!("OUT_DIR"), "/psa_mac_verify.rs"));
}

/// PsaRawKeyAgreement (0x0013).
pub mod psa_raw_key_agreement {
    include!(concat!(env!("OUT_DIR"), "/psa_raw_key_agreement.rs"));
}

/// PsaGenerateRandom (0x000D).
pub mod psa_generate_random {
    include!(concat!(env!("OUT_DIR"), "/psa_generate_random.rs"));
}

/// CanDoCrypto (0x0020).
pub mod can_do_crypto {
    include!(concat!(env!("OUT_DIR"), "/can_do_crypto.rs"));
}

/// PrepareKeyAttestation (0x001F).
pub mod prepare_key_attestation {
    include!(concat!(env!("OUT_DIR"), "/prepare_key_attestation.rs"));
}

/// AttestKey (0x001E).
pub mod attest_key {
    include!(concat!(env!("OUT_DIR"), "/attest_key.rs"));
}

/// BulwarkStatus (0x8000_0001), Bulwark's own.
pub mod bulwark_status {
    include!(concat!(env!("OUT_DIR"), "/bulwark_status.rs"));
}
