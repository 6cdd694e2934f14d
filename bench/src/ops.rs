//! The measured operations and their fixed inputs.

use std::sync::atomic::{AtomicU64, Ordering};

use clap::ValueEnum;

/// One measured operation. Each call of a worker is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub(crate) enum Op {
    /// Ping (core provider, no authentication).
    #[value(name = "ping")]
    Ping,
    /// ListProviders (core provider).
    #[value(name = "list-providers")]
    ListProviders,
    /// PsaGenerateRandom of 32 bytes.
    #[value(name = "random-32")]
    Random32,
    /// PsaHashCompute, SHA-256 of 1 KiB.
    #[value(name = "sha256-1k")]
    Sha256,
    /// PsaSignHash, ECDSA P-256 with SHA-256 (one key per thread).
    #[value(name = "ecdsa-p256-sign")]
    EcdsaSign,
    /// PsaVerifyHash, ECDSA P-256 with SHA-256 (one key per thread).
    #[value(name = "ecdsa-p256-verify")]
    EcdsaVerify,
    /// PsaSignHash, RSA-2048 PKCS#1 v1.5 with SHA-256 (one key shared by the threads: RSA key
    /// generation is slow).
    #[value(name = "rsa2048-sign")]
    RsaSign,
    /// PsaAeadEncrypt, AES-128-GCM of 1 KiB, no additional data (one key per thread, a fresh
    /// nonce per call).
    #[value(name = "aes128gcm-encrypt-1k")]
    AesGcmEncrypt,
    /// PsaGenerateKey of an ECC P-256 key pair then PsaDestroyKey of it: two requests, one
    /// measured operation (a key name per thread).
    #[value(name = "ecc-p256-generate-destroy")]
    EccGenerateDestroy,
    /// PsaGenerateKey of an RSA-4096 key pair then PsaDestroyKey of it (a key name per
    /// thread): the longest generation clients can ask for. Not in the default set.
    #[value(name = "rsa4096-generate-destroy")]
    Rsa4096GenerateDestroy,
    /// PsaSignHash, RSA PKCS#1 v1.5 with SHA-256, with an RSA-8192 key made here and imported
    /// (one key shared by the threads; the service generates at most 4096 bits): the longest
    /// private operation clients can ask for. Not in the default set.
    #[value(name = "rsa8192-sign")]
    Rsa8192Sign,
    /// Ping carrying the client's authentication, which the service checks (the bulwark
    /// client only): what an authenticator costs. Not in the default set.
    #[value(name = "ping-auth")]
    PingAuth,
}

/// The payload of the hashing and encryption operations.
pub(crate) const PAYLOAD_LEN: usize = 1024;
/// The size asked of PsaGenerateRandom.
pub(crate) const RANDOM_LEN: usize = 32;

impl Op {
    /// Every operation, in table order.
    pub(crate) const ALL: [Op; 12] = [
        Op::Ping,
        Op::ListProviders,
        Op::Random32,
        Op::Sha256,
        Op::EcdsaSign,
        Op::EcdsaVerify,
        Op::RsaSign,
        Op::AesGcmEncrypt,
        Op::EccGenerateDestroy,
        Op::Rsa4096GenerateDestroy,
        Op::Rsa8192Sign,
        Op::PingAuth,
    ];

    /// The operations measured when none is named: all but the two long ones near the end of
    /// [`Op::ALL`], which serve to load a service while another client measures it, and the
    /// authenticated ping.
    pub(crate) const DEFAULT: &[Op] = Op::ALL.split_at(Op::ALL.len() - 3).0;

    /// The operations `--in-process` measures by default.
    pub(crate) const IN_PROCESS: [Op; 5] = [
        Op::Sha256,
        Op::EcdsaSign,
        Op::EcdsaVerify,
        Op::RsaSign,
        Op::AesGcmEncrypt,
    ];

    /// The name used on the command line, in records and tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Ping => "ping",
            Op::ListProviders => "list-providers",
            Op::Random32 => "random-32",
            Op::Sha256 => "sha256-1k",
            Op::EcdsaSign => "ecdsa-p256-sign",
            Op::EcdsaVerify => "ecdsa-p256-verify",
            Op::RsaSign => "rsa2048-sign",
            Op::AesGcmEncrypt => "aes128gcm-encrypt-1k",
            Op::EccGenerateDestroy => "ecc-p256-generate-destroy",
            Op::Rsa4096GenerateDestroy => "rsa4096-generate-destroy",
            Op::Rsa8192Sign => "rsa8192-sign",
            Op::PingAuth => "ping-auth",
        }
    }

    /// The position of the operation named `name` in [`Op::ALL`] (unknown names last).
    pub(crate) fn order_of(name: &str) -> usize {
        Op::ALL
            .iter()
            .position(|op| op.name() == name)
            .unwrap_or(Op::ALL.len())
    }
}

/// The bytes hashed and encrypted: 1 KiB of a fixed pattern.
pub(crate) fn payload() -> Vec<u8> {
    (0..PAYLOAD_LEN).map(|i| (i % 251) as u8).collect()
}

/// The SHA-256 digest signed by the signature operations (any 32 bytes do).
pub(crate) fn digest() -> [u8; 32] {
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    digest
}

/// A 12-byte GCM nonce never returned twice by one process (the keys live no longer than the
/// process): a process-wide counter.
pub(crate) fn next_nonce() -> [u8; 12] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_command_line_parser() {
        for op in Op::ALL {
            assert_eq!(Op::from_str(op.name(), false), Ok(op));
            assert_eq!(
                Op::order_of(op.name()),
                Op::ALL.iter().position(|o| *o == op).unwrap()
            );
        }
    }

    #[test]
    fn nonces_are_not_repeated() {
        assert_ne!(next_nonce(), next_nonce());
    }
}
