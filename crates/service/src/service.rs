//! The sans-IO core: one request in, one response out.
//!
//! [`Service::handle_frame`] runs steps B–F of docs/protocol.md#request-pipeline on a frame the front end has read;
//! [`Service::handle_bytes`] also runs the framing steps A1–A11 on raw bytes, which is what
//! the fuzzer and the in-process tests drive. Nothing here touches a socket.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::Cost;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{Limits, RequestFrame, ResponseFrame, ResponseHeader};
use zeroize::Zeroizing;

use crate::audit::{AuditLog, AuditNotes, RequestScope};
use crate::auth::{Authenticators, Identity, PeerCredentials};
use crate::dispatch::Registry;
use crate::error::ProviderError;
use crate::error::{DispatchError, ServiceError};
use crate::keystore::KeyStore;
use crate::providers::{ProviderSettings, RequestContext};

/// The largest request body answered on the front end's I/O threads. Hashing, encrypting or
/// MACing 16 KiB takes tens of microseconds, about what handing the request to the blocking
/// pool costs; a larger body (up to `body_len_limit`, 1 MiB by default) would hold an I/O
/// thread, and every connection waiting on it, for milliseconds.
pub const INLINE_BODY_LIMIT: usize = 16 * 1024;

/// Everything needed to answer requests; shared by all connections.
#[derive(Debug)]
pub struct Service {
    authenticators: Authenticators,
    store: Arc<KeyStore>,
    settings: ProviderSettings,
    limits: Limits,
    configured: BTreeSet<ProviderId>,
    crypto: Arc<Registry>,
    core: Registry,
    audit: Option<AuditLog>,
    /// Whether short crypto operations may run on the front end's own threads
    /// ([`Service::runs_inline`]).
    inline_crypto: bool,
    /// Each configured crypto provider's id and name, for [`Service::keys_by_provider`].
    provider_names: Vec<(ProviderId, String)>,
}

impl Service {
    /// Assembles a service from its parts (see `builder.rs` for the usual way).
    pub fn new(
        authenticators: Authenticators,
        store: Arc<KeyStore>,
        settings: ProviderSettings,
        limits: Limits,
        configured: BTreeSet<ProviderId>,
        crypto: Arc<Registry>,
        core: Registry,
    ) -> Self {
        Service {
            authenticators,
            store,
            settings,
            limits,
            configured,
            crypto,
            core,
            audit: None,
            inline_crypto: false,
            provider_names: Vec::new(),
        }
    }

    /// The same service, knowing each crypto provider's id and name (the key store counts keys
    /// by provider name).
    pub fn with_provider_names(mut self, names: Vec<(ProviderId, String)>) -> Self {
        self.provider_names = names;
        self
    }

    /// How many keys each configured crypto provider holds (committed keys only), providers
    /// holding none included.
    pub fn keys_by_provider(&self) -> Vec<(ProviderId, u64)> {
        let counts = self.store.counts_by_provider();
        self.provider_names
            .iter()
            .map(|(id, name)| (*id, counts.get(name).copied().unwrap_or(0)))
            .collect()
    }

    /// The same service, telling the front end that its crypto providers' short operations
    /// never block (no lock shared with other requests, no storage write, no device): the
    /// OpenSSL provider. See [`Service::runs_inline`].
    pub fn with_inline_crypto(mut self, inline: bool) -> Self {
        self.inline_crypto = inline;
        self
    }

    /// Whether the request may be tried on the calling thread (one of the front end's two I/O
    /// threads) with [`Service::handle_frame_inline`] rather than handed to the blocking pool.
    ///
    /// Handing a request to another thread and back costs two thread wake-ups, more than the
    /// whole of a Ping or of an OpenSSL ECDSA signature. The operations table's cost column
    /// ([`Opcode::cost`](bulwark_interface::ops::Opcode::cost)) decides. Requests whose answer is small and fixed ([`Cost::Fixed`]:
    /// Ping and the core provider's descriptions of itself) always qualify; ListKeys and
    /// ListClients do not: their cost grows with the keys held (up to `buffer_size_limit` of
    /// answer), and two of them must not hold both I/O threads while other clients wait.
    /// Short crypto operations ([`Cost::Short`]: signatures, hashes, MACs, ciphers, random
    /// bytes: tens to hundreds of microseconds) qualify only with
    /// [`with_inline_crypto`](Self::with_inline_crypto), and only with a body of at most
    /// [`INLINE_BODY_LIMIT`]. Whether a signature is short depends on its key, known only once
    /// resolved: the attempt gives the request back when the key is a large RSA key
    /// ([`providers::takes_long`](crate::providers::takes_long)). Anything that may wait or
    /// take long (every key creation and destruction, which write the key store; asymmetric
    /// decryption and key agreement; a provider behind a lock or a device) goes to the pool.
    pub fn runs_inline(&self, frame: &RequestFrame) -> bool {
        let header = &frame.header;
        if frame.body.len() > INLINE_BODY_LIMIT {
            return false;
        }
        match header.opcode.cost() {
            Cost::Fixed => true,
            Cost::Short => self.inline_crypto,
            Cost::Long => false,
        }
    }

    /// The same service, writing an audit record for each key lifecycle event and each denied
    /// request (see `audit.rs`).
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The framing limits requests are read with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Answers one request given as raw bytes; `None` only if the response cannot be encoded.
    pub fn handle_bytes(
        &self,
        bytes: &[u8],
        peer: Option<&PeerCredentials>,
    ) -> Option<Zeroizing<Vec<u8>>> {
        let response = match RequestFrame::parse(bytes, &self.limits) {
            Ok((frame, _)) => self.handle_frame(&frame, peer),
            // Bytes that end before a request starts are answered ConnectionError, as the
            // reference service answers a connection closed before it sent anything.
            Err(error) => ResponseFrame::error(ResponseHeader::bare(error.into())),
        };
        response.to_bytes().ok()
    }

    /// Answers one interpreted request (steps B–F).
    pub fn handle_frame(
        &self,
        frame: &RequestFrame,
        peer: Option<&PeerCredentials>,
    ) -> ResponseFrame {
        match self.answer(frame, peer, false) {
            Some(response) => response,
            // Only a quick-only attempt is given back.
            None => ResponseFrame::error(ResponseHeader::echo(
                &frame.header,
                ResponseStatus::PsaErrorGenericError,
            )),
        }
    }

    /// Answers one request [`runs_inline`](Self::runs_inline) accepted, on the calling
    /// thread, unless the key it names makes it long
    /// ([`providers::takes_long`](crate::providers::takes_long)): then `None`, with nothing
    /// done, logged, audited or counted, and the request is to be served with
    /// [`handle_frame`](Self::handle_frame) on the blocking pool.
    pub fn handle_frame_inline(
        &self,
        frame: &RequestFrame,
        peer: Option<&PeerCredentials>,
    ) -> Option<ResponseFrame> {
        self.answer(frame, peer, true)
    }

    fn answer(
        &self,
        frame: &RequestFrame,
        peer: Option<&PeerCredentials>,
        quick_only: bool,
    ) -> Option<ResponseFrame> {
        let header = &frame.header;
        let started = Instant::now();
        // A quick-only answer (on the thread that read the request) is not counted: it lasts
        // microseconds, or is given back untouched and counted where the pool serves it.
        let _in_flight = (!quick_only).then(crate::metrics::Occupancy::in_flight);
        let span = tracing::debug_span!(
            "request",
            opcode = header.opcode.name(),
            provider = header.provider.value(),
            app = tracing::field::Empty,
        );
        let _entered = span.enter();
        let audit = self.audit.as_ref().map(AuditLog::begin);
        let mut identity = None;
        let notes = audit.as_ref().map(RequestScope::notes);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.serve(frame, peer, &span, notes, &mut identity, quick_only)
        }))
        .unwrap_or(Err(ServiceError::Internal("a handler panicked")));
        if quick_only
            && matches!(
                outcome,
                Err(ServiceError::Provider(ProviderError::TakesLong))
            )
        {
            // Given back before the provider did anything: the audit scope is dropped
            // unwritten, and the request is counted once, where it is served.
            return None;
        }
        let (response, error) = match outcome {
            Ok(body) => (
                ResponseFrame {
                    header: ResponseHeader::echo(header, ResponseStatus::Success),
                    body,
                },
                None,
            ),
            Err(error) => {
                let status = ResponseStatus::from(&error);
                tracing::debug!(error = %error, "request refused");
                (
                    ResponseFrame::error(ResponseHeader::echo(header, status)),
                    Some(error),
                )
            }
        };
        if let Some(audit) = audit {
            audit.finish(
                header,
                identity.as_ref(),
                peer,
                error.as_ref(),
                response.header.status,
            );
        }
        tracing::debug!(
            status = response.header.status.name(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "request served"
        );
        crate::metrics::request_served(
            header.opcode,
            header.provider,
            response.header.status,
            started.elapsed(),
        );
        Some(response)
    }

    fn serve(
        &self,
        frame: &RequestFrame,
        peer: Option<&PeerCredentials>,
        span: &tracing::Span,
        notes: Option<&AuditNotes>,
        identity: &mut Option<Identity>,
        quick_only: bool,
    ) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        let header = &frame.header;
        // B: authentication, for every opcode whenever an auth type is given. The identity is
        // handed back for the audit record.
        *identity = self
            .authenticators
            .authenticate(header.auth_type, &frame.auth, peer)?;
        let identity = identity.as_ref();
        if let Some(identity) = identity {
            span.record("app", identity.name.as_str());
        }
        // C: provider and opcode kind.
        let is_core = header.provider == ProviderId::Core;
        if !is_core && !self.configured.contains(&header.provider) {
            return Err(DispatchError::ProviderNotRegistered.into());
        }
        if header.opcode.is_core() != is_core {
            return Err(DispatchError::NotSupported.into());
        }
        // D: administrative operations are refused before their body is read.
        if header.opcode.is_admin() {
            match identity {
                None => return Err(DispatchError::NotAuthenticated.into()),
                Some(identity) if !identity.is_admin => {
                    return Err(DispatchError::AdminOnly.into());
                }
                Some(_) => {}
            }
        }
        // E, F: decode, identity rule, provider.
        // Providers that serve clients in turns (the Mbed TLS thread) learn whose call it is.
        let ctx = RequestContext::new(identity, &self.store, &self.settings)
            .with_notes(notes)
            .for_client(crate::fair::Client(peer.map(|peer| peer.uid)));
        let ctx = if quick_only { ctx.quick_only() } else { ctx };
        let registry = if is_core { &self.core } else { &*self.crypto };
        registry.dispatch(header.provider, header.opcode, &ctx, &frame.body)
    }
}

#[cfg(test)]
mod tests {
    use bulwark_interface::ids::AuthType;
    use bulwark_interface::ops::{
        self, psa_generate_key, psa_hash_compute, psa_import_key, psa_sign_hash, Operation,
        PsaGenerateKey, PsaHashCompute, PsaImportKey, PsaSignHash,
    };
    use bulwark_interface::secret::SecretBytes;
    use bulwark_interface::wire::RequestHeader;
    use psa_crypto::types::algorithm::{AsymmetricSignature, Hash};
    use psa_crypto::types::key::Type;

    use super::*;
    use crate::builder::{build, Resources};
    use crate::providers::conformance::{attrs, ecdsa, secp_r1_pair, sign_verify};

    fn frame<O: Operation>(request: O::Request) -> RequestFrame {
        RequestFrame {
            header: RequestHeader::new(ProviderId::MbedCrypto, O::OPCODE, AuthType::Direct),
            body: ops::encode_request::<O>(request).unwrap(),
            auth: Zeroizing::new(b"app".to_vec()),
        }
    }

    fn rsa_pkcs1() -> AsymmetricSignature {
        AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: Hash::Sha256.into(),
        }
    }

    fn sign(key_name: &str, alg: AsymmetricSignature) -> RequestFrame {
        frame::<PsaSignHash>(psa_sign_hash::Request {
            key_name: key_name.into(),
            alg,
            hash: vec![7; 32],
        })
    }

    fn generate(service: &Service, key_name: &str, key_type: Type, bits: usize) {
        let alg: AsymmetricSignature = match key_type {
            Type::RsaKeyPair => rsa_pkcs1(),
            _ => ecdsa(Hash::Sha256),
        };
        let request = frame::<PsaGenerateKey>(psa_generate_key::Request {
            key_name: key_name.into(),
            attributes: attrs(key_type, bits, alg, sign_verify()),
        });
        assert!(!service.runs_inline(&request), "key generation is long");
        let response = service.handle_frame(&request, None);
        assert_eq!(response.header.status, ResponseStatus::Success);
    }

    /// What the front end does: the inline attempt where `runs_inline` allows it, else (or when
    /// given back) the pool's `handle_frame`. Whether the answer came from the attempt.
    fn serve(service: &Service, request: &RequestFrame) -> (ResponseStatus, bool) {
        if service.runs_inline(request) {
            if let Some(response) = service.handle_frame_inline(request, None) {
                return (response.header.status, true);
            }
        }
        (service.handle_frame(request, None).header.status, false)
    }

    #[test]
    fn long_work_never_runs_on_the_io_threads() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::test_support::config_in(dir.path(), "OpenSsl").unwrap();
        let service = build(&config, &mut Resources::new()).unwrap();
        generate(&service, "ec", secp_r1_pair(), 256);
        generate(&service, "rsa-2048", Type::RsaKeyPair, 2048);
        generate(&service, "rsa-4096", Type::RsaKeyPair, 4096);
        // An import that takes its size from the data is recorded without one: it may be as
        // large as 8192 bits, so it counts as long whatever its real size (1024 bits here).
        let rsa = openssl::rsa::Rsa::generate(1024).unwrap();
        let request = frame::<PsaImportKey>(psa_import_key::Request {
            key_name: "rsa-imported".into(),
            attributes: attrs(Type::RsaKeyPair, 0, rsa_pkcs1(), sign_verify()),
            data: SecretBytes::new(rsa.private_key_to_der().unwrap()),
        });
        assert_eq!(serve(&service, &request), (ResponseStatus::Success, false));

        // Quick signatures are answered by the attempt itself.
        let ecc = sign("ec", ecdsa(Hash::Sha256));
        assert_eq!(serve(&service, &ecc), (ResponseStatus::Success, true));
        let rsa_2048 = sign("rsa-2048", rsa_pkcs1());
        assert_eq!(serve(&service, &rsa_2048), (ResponseStatus::Success, true));
        // Large keys are given back untouched, and served on the pool.
        for key in ["rsa-4096", "rsa-imported"] {
            let request = sign(key, rsa_pkcs1());
            assert!(
                service.runs_inline(&request),
                "{key}: the key is not known yet"
            );
            assert!(
                service.handle_frame_inline(&request, None).is_none(),
                "{key} is given back"
            );
            assert_eq!(serve(&service, &request), (ResponseStatus::Success, false));
        }
        // Refusals that come before the key's size is known are answered inline, as before.
        let missing = sign("missing", rsa_pkcs1());
        assert_eq!(
            serve(&service, &missing),
            (ResponseStatus::PsaErrorDoesNotExist, true)
        );

        // Bodies over the limit go to the pool, whatever the operation.
        let hash = |len: usize| {
            frame::<PsaHashCompute>(psa_hash_compute::Request {
                alg: Hash::Sha256,
                input: vec![1; len],
            })
        };
        // The body's protobuf framing adds a few bytes to the input.
        assert_eq!(
            serve(&service, &hash(INLINE_BODY_LIMIT - 16)),
            (ResponseStatus::Success, true)
        );
        assert_eq!(
            serve(&service, &hash(INLINE_BODY_LIMIT + 1)),
            (ResponseStatus::Success, false)
        );
    }

    #[test]
    fn an_inline_attempt_given_back_leaves_no_audit_record() {
        let dir = tempfile::tempdir().unwrap();
        // The default audit log, beside the key store.
        let audit_path = dir
            .path()
            .join("kim")
            .join(crate::config::DEFAULT_AUDIT_FILE_NAME);
        let config = crate::test_support::config_in(dir.path(), "OpenSsl").unwrap();
        let service = build(&config, &mut Resources::new()).unwrap();
        // An RSA key recorded without its size counts as long (and imports quickly).
        let rsa = openssl::rsa::Rsa::generate(1024).unwrap();
        let import = frame::<PsaImportKey>(psa_import_key::Request {
            key_name: "rsa".into(),
            attributes: attrs(Type::RsaKeyPair, 0, rsa_pkcs1(), sign_verify()),
            data: SecretBytes::new(rsa.private_key_to_der().unwrap()),
        });
        assert_eq!(
            service.handle_frame(&import, None).header.status,
            ResponseStatus::Success
        );
        let before = std::fs::read_to_string(&audit_path).unwrap();
        // A signature the key's policy refuses is a denial: audited once, by the pool's run.
        let refused = sign(
            "rsa",
            AsymmetricSignature::RsaPss {
                hash_alg: Hash::Sha256.into(),
            },
        );
        assert!(service.handle_frame_inline(&refused, None).is_none());
        assert_eq!(std::fs::read_to_string(&audit_path).unwrap(), before);
        let response = service.handle_frame(&refused, None);
        assert_eq!(response.header.status, ResponseStatus::PsaErrorNotPermitted);
        let after = std::fs::read_to_string(&audit_path).unwrap();
        assert_eq!(after.lines().count(), before.lines().count() + 1, "{after}");
    }
}
