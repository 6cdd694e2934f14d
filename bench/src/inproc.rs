//! The limit: the same crypto operations called directly on the back ends, no service, no
//! socket, no encoding.
//!
//! OpenSSL is called through the `openssl` crate, from every thread at once. Mbed TLS, as the
//! `psa-crypto` crate builds it, is not thread-safe: every call into it holds one process-wide
//! mutex (as bulwarkd's Mbed provider does), so its throughput does not grow with threads.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::measure::{closed_loop, Label, Worker};
use crate::ops::{digest, payload, Op};
use crate::record::{Kind, Record};
use crate::Backend;

/// What to run in process.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The back ends.
    pub backend: Backend,
    /// The operations (key-less service operations are refused).
    pub ops: Vec<Op>,
    /// The thread counts.
    pub threads: Vec<usize>,
    /// Warm-up of each cell.
    pub warmup: Duration,
    /// Measured time of each cell.
    pub duration: Duration,
}

// ---------------------------------------------------------------------------------------------
// OpenSSL

mod ossl {
    use std::sync::Arc;

    use anyhow::Result;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::ecdsa::EcdsaSig;
    use openssl::md::Md;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::pkey_ctx::PkeyCtx;
    use openssl::rsa::{Padding, Rsa};
    use openssl::symm::{encrypt_aead, Cipher};

    use crate::measure::Worker;
    use crate::ops::{next_nonce, Op};

    /// The RSA key shared by the threads, as the socket benchmark shares one.
    pub(super) fn rsa_key() -> Result<Arc<PKey<Private>>> {
        Ok(Arc::new(PKey::from_rsa(Rsa::generate(2048)?)?))
    }

    /// One thread's keys, made once and used by every cell.
    pub(super) struct ThreadKeys {
        ec: EcKey<Private>,
        signature: Vec<u8>,
        aes: [u8; 16],
    }

    impl ThreadKeys {
        pub(super) fn new(digest: &[u8]) -> Result<ThreadKeys> {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            let ec = EcKey::generate(&group)?;
            let signature = EcdsaSig::sign(digest, &ec)?.to_der()?;
            let mut aes = [0u8; 16];
            openssl::rand::rand_bytes(&mut aes)?;
            Ok(ThreadKeys { ec, signature, aes })
        }
    }

    pub(super) struct OsslWorker {
        op: Op,
        ec: EcKey<Private>,
        signature: EcdsaSig,
        rsa: Arc<PKey<Private>>,
        aes: [u8; 16],
        payload: Arc<Vec<u8>>,
        digest: [u8; 32],
    }

    impl OsslWorker {
        pub(super) fn new(
            op: Op,
            keys: &ThreadKeys,
            rsa: Arc<PKey<Private>>,
            payload: Arc<Vec<u8>>,
            digest: [u8; 32],
        ) -> Result<OsslWorker> {
            Ok(OsslWorker {
                op,
                ec: keys.ec.clone(),
                signature: EcdsaSig::from_der(&keys.signature)?,
                rsa,
                aes: keys.aes,
                payload,
                digest,
            })
        }
    }

    impl Worker for OsslWorker {
        fn call(&mut self) -> Result<()> {
            match self.op {
                Op::Sha256 => {
                    std::hint::black_box(openssl::sha::sha256(&self.payload));
                }
                Op::EcdsaSign => {
                    std::hint::black_box(EcdsaSig::sign(&self.digest, &self.ec)?);
                }
                Op::EcdsaVerify => {
                    anyhow::ensure!(
                        self.signature.verify(&self.digest, &self.ec)?,
                        "bad signature"
                    );
                }
                Op::RsaSign => {
                    // As bulwarkd's OpenSSL provider signs: a context per call.
                    let mut ctx = PkeyCtx::new(&*self.rsa)?;
                    ctx.sign_init()?;
                    ctx.set_rsa_padding(Padding::PKCS1)?;
                    ctx.set_signature_md(Md::sha256())?;
                    let mut signature = Vec::with_capacity(256);
                    ctx.sign_to_vec(&self.digest, &mut signature)?;
                    std::hint::black_box(signature);
                }
                Op::AesGcmEncrypt => {
                    let mut tag = [0u8; 16];
                    let nonce = next_nonce();
                    let ciphertext = encrypt_aead(
                        Cipher::aes_128_gcm(),
                        &self.aes,
                        Some(&nonce),
                        &[],
                        &self.payload,
                        &mut tag,
                    )?;
                    std::hint::black_box((ciphertext, tag));
                }
                other => anyhow::bail!("{} is not measured in process", other.name()),
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mbed TLS

mod mbed {
    use std::sync::Arc;

    use anyhow::{anyhow, Result};
    use bulwark_client::{attributes, Aead, AeadWithDefaultLengthTag, EccFamily, Hash};
    use bulwark_client::{AsymmetricSignature, Attributes, Lifetime};
    use psa_crypto::operations::{aead, asym_signature, hash, key_management};
    use psa_crypto::types::key::Id;

    use super::psa_lock;
    use crate::measure::Worker;
    use crate::ops::{next_nonce, Op};

    fn volatile(mut attributes: Attributes) -> Attributes {
        attributes.lifetime = Lifetime::Volatile;
        attributes
    }

    const ECDSA: AsymmetricSignature = AsymmetricSignature::Ecdsa {
        hash_alg: bulwark_client::SignHash::Specific(Hash::Sha256),
    };
    const PKCS1: AsymmetricSignature = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: bulwark_client::SignHash::Specific(Hash::Sha256),
    };
    const GCM: Aead = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);

    fn psa(e: psa_crypto::types::status::Error) -> anyhow::Error {
        anyhow!("PSA status {e:?}")
    }

    /// A volatile RSA-2048 signing key, shared by the threads.
    pub(super) fn rsa_key() -> Result<Id> {
        let _lock = psa_lock()?;
        key_management::generate(volatile(attributes::rsa_signing_key(2048)), None).map_err(psa)
    }

    /// One thread's keys, made once and used by every cell: Mbed TLS has few key slots.
    #[derive(Debug, Clone)]
    pub(super) struct ThreadKeys {
        ec: Id,
        signature: Vec<u8>,
        aes: Id,
    }

    impl ThreadKeys {
        pub(super) fn new(digest: &[u8]) -> Result<ThreadKeys> {
            let _lock = psa_lock()?;
            // Volatile keys: they vanish with the process, nothing is written to disk.
            let ec = key_management::generate(
                volatile(attributes::ecc_signing_key(EccFamily::SecpR1, 256)),
                None,
            )
            .map_err(psa)?;
            let aes = key_management::generate(volatile(attributes::aes_gcm_key(128)), None)
                .map_err(psa)?;
            let mut signature = vec![0u8; 64];
            let length =
                asym_signature::sign_hash(ec, ECDSA, digest, &mut signature).map_err(psa)?;
            signature.truncate(length);
            Ok(ThreadKeys { ec, signature, aes })
        }
    }

    pub(super) struct MbedWorker {
        op: Op,
        keys: ThreadKeys,
        rsa: Id,
        payload: Arc<Vec<u8>>,
        digest: [u8; 32],
    }

    impl MbedWorker {
        pub(super) fn new(
            op: Op,
            keys: &ThreadKeys,
            rsa: Id,
            payload: Arc<Vec<u8>>,
            digest: [u8; 32],
        ) -> MbedWorker {
            MbedWorker {
                op,
                keys: keys.clone(),
                rsa,
                payload,
                digest,
            }
        }
    }

    impl Worker for MbedWorker {
        fn call(&mut self) -> Result<()> {
            let _lock = psa_lock()?;
            match self.op {
                Op::Sha256 => {
                    let mut out = [0u8; 32];
                    hash::hash_compute(Hash::Sha256, &self.payload, &mut out).map_err(psa)?;
                    std::hint::black_box(out);
                }
                Op::EcdsaSign => {
                    let mut out = [0u8; 64];
                    asym_signature::sign_hash(self.keys.ec, ECDSA, &self.digest, &mut out)
                        .map_err(psa)?;
                    std::hint::black_box(out);
                }
                Op::EcdsaVerify => {
                    asym_signature::verify_hash(
                        self.keys.ec,
                        ECDSA,
                        &self.digest,
                        &self.keys.signature,
                    )
                    .map_err(psa)?;
                }
                Op::RsaSign => {
                    let mut out = [0u8; 256];
                    asym_signature::sign_hash(self.rsa, PKCS1, &self.digest, &mut out)
                        .map_err(psa)?;
                    std::hint::black_box(out);
                }
                Op::AesGcmEncrypt => {
                    let mut out = vec![0u8; self.payload.len() + 16];
                    let nonce = next_nonce();
                    aead::encrypt(self.keys.aes, GCM, &nonce, &[], &self.payload, &mut out)
                        .map_err(psa)?;
                    std::hint::black_box(out);
                }
                other => anyhow::bail!("{} is not measured in process", other.name()),
            }
            Ok(())
        }
    }
}

/// The one lock every Mbed TLS call holds; initialises the library on first use.
fn psa_lock() -> Result<MutexGuard<'static, ()>> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let guard = LOCK
        .get_or_init(|| Mutex::new(()))
        .lock()
        // A panic elsewhere does not leave Mbed TLS half-called: the lock only orders calls.
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    INIT.get_or_init(|| psa_crypto::init().map_err(|e| format!("{e:?}")))
        .clone()
        .map_err(|e| anyhow!("psa_crypto::init: {e}"))?;
    Ok(guard)
}

fn check_ops(ops: &[Op]) -> Result<()> {
    for op in ops {
        if !Op::IN_PROCESS.contains(op) {
            bail!(
                "{} has no in-process form; use some of: {}",
                op.name(),
                Op::IN_PROCESS.map(Op::name).join(", ")
            );
        }
    }
    Ok(())
}

/// Runs every (back end, operation, thread count) cell.
///
/// # Errors
/// When an operation has no in-process form, or a back end fails to make its keys.
pub(crate) fn run(plan: &Plan, sink: &mut dyn FnMut(&Record) -> Result<()>) -> Result<Vec<Record>> {
    check_ops(&plan.ops)?;
    let payload = Arc::new(payload());
    let digest = digest();
    let mut records = Vec::new();
    let mut measure = |target: &str, op: Op, workers: Vec<Box<dyn Worker>>| -> Result<()> {
        let label = Label {
            kind: Kind::InProcess,
            target: target.to_owned(),
            client: "in-process".to_owned(),
            op: op.name().to_owned(),
        };
        let record = closed_loop(label, workers, plan.warmup, plan.duration, None)?;
        crate::load::progress(&record);
        sink(&record)?;
        records.push(record);
        Ok(())
    };
    let max_threads = plan.threads.iter().copied().max().unwrap_or(1);
    if matches!(plan.backend, Backend::Openssl | Backend::All) {
        let rsa = ossl::rsa_key().context("OpenSSL: generating the RSA key")?;
        let keys = (0..max_threads)
            .map(|_| ossl::ThreadKeys::new(&digest))
            .collect::<Result<Vec<_>>>()
            .context("OpenSSL: generating the keys")?;
        for &op in &plan.ops {
            for &threads in &plan.threads {
                let workers = keys[..threads]
                    .iter()
                    .map(|k| {
                        ossl::OsslWorker::new(op, k, Arc::clone(&rsa), Arc::clone(&payload), digest)
                            .map(|w| Box::new(w) as Box<dyn Worker>)
                    })
                    .collect::<Result<Vec<_>>>()?;
                measure("openssl", op, workers)?;
            }
        }
    }
    if matches!(plan.backend, Backend::Mbed | Backend::All) {
        let rsa = mbed::rsa_key().context("Mbed TLS: generating the RSA key")?;
        let keys = (0..max_threads)
            .map(|_| mbed::ThreadKeys::new(&digest))
            .collect::<Result<Vec<_>>>()
            .context("Mbed TLS: generating the keys")?;
        for &op in &plan.ops {
            for &threads in &plan.threads {
                let workers = keys[..threads]
                    .iter()
                    .map(|k| {
                        Box::new(mbed::MbedWorker::new(
                            op,
                            k,
                            rsa,
                            Arc::clone(&payload),
                            digest,
                        )) as Box<dyn Worker>
                    })
                    .collect();
                measure("mbedtls", op, workers)?;
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(backend: Backend) -> Vec<Record> {
        let plan = Plan {
            backend,
            ops: Op::IN_PROCESS.to_vec(),
            threads: vec![1, 3],
            warmup: Duration::ZERO,
            duration: Duration::from_millis(30),
        };
        run(&plan, &mut |_| Ok(())).unwrap()
    }

    #[test]
    fn every_in_process_operation_succeeds_on_both_back_ends() {
        for (backend, target) in [(Backend::Openssl, "openssl"), (Backend::Mbed, "mbedtls")] {
            let records = quick(backend);
            assert_eq!(records.len(), 2 * Op::IN_PROCESS.len());
            for record in records {
                assert_eq!(record.target, target);
                assert_eq!(record.errors, 0, "{record:?}");
                assert!(record.ops > 0, "{record:?}");
            }
        }
    }

    #[test]
    fn service_only_operations_are_refused() {
        assert!(check_ops(&[Op::Ping]).is_err());
        assert!(check_ops(&Op::IN_PROCESS).is_ok());
    }
}
