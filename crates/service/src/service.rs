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
use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{Limits, RequestFrame, RequestHeader, ResponseFrame, ResponseHeader};
use zeroize::Zeroizing;

use crate::audit::{AuditLog, AuditNotes, RequestScope};
use crate::auth::{Authenticators, Identity, PeerCredentials};
use crate::dispatch::Registry;
use crate::error::{DispatchError, ServiceError};
use crate::keystore::KeyStore;
use crate::providers::{ProviderSettings, RequestContext};

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

    /// Whether the request may be answered on the calling thread rather than handed to the
    /// blocking pool.
    ///
    /// Handing a request to another thread and back costs two thread wake-ups, more than the
    /// whole of a Ping or of an OpenSSL ECDSA signature. Requests whose answer is small and
    /// fixed (Ping and the core provider's descriptions of itself) always qualify; ListKeys and
    /// ListClients do not: their cost grows with the keys held (up to `buffer_size_limit` of
    /// answer), and two of them must not hold both I/O threads while other clients wait.
    /// Short crypto operations (signatures, hashes,
    /// MACs, ciphers, random bytes: tens to hundreds of microseconds, bounded by the body size
    /// limit) qualify only with [`with_inline_crypto`](Self::with_inline_crypto). Anything
    /// that may wait (key creation and destruction write the key store, a provider behind a
    /// lock or a device) goes to the pool.
    pub fn runs_inline(&self, header: &RequestHeader) -> bool {
        match header.opcode {
            Opcode::Ping
            | Opcode::ListProviders
            | Opcode::ListOpcodes
            | Opcode::ListAuthenticators => true,
            Opcode::PsaSignHash
            | Opcode::PsaVerifyHash
            | Opcode::PsaSignMessage
            | Opcode::PsaVerifyMessage
            | Opcode::PsaHashCompute
            | Opcode::PsaHashCompare
            | Opcode::PsaGenerateRandom
            | Opcode::PsaAeadEncrypt
            | Opcode::PsaAeadDecrypt
            | Opcode::PsaCipherEncrypt
            | Opcode::PsaCipherDecrypt
            | Opcode::PsaMacCompute
            | Opcode::PsaMacVerify
            | Opcode::PsaExportPublicKey => self.inline_crypto,
            _ => false,
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
        let header = &frame.header;
        let started = Instant::now();
        let _in_flight = crate::metrics::Occupancy::in_flight();
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
            self.serve(frame, peer, &span, notes, &mut identity)
        }))
        .unwrap_or(Err(ServiceError::Internal("a handler panicked")));
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
        response
    }

    fn serve(
        &self,
        frame: &RequestFrame,
        peer: Option<&PeerCredentials>,
        span: &tracing::Span,
        notes: Option<&AuditNotes>,
        identity: &mut Option<Identity>,
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
        let ctx = RequestContext::new(identity, &self.store, &self.settings).with_notes(notes);
        let registry = if is_core { &self.core } else { &*self.crypto };
        registry.dispatch(header.provider, header.opcode, &ctx, &frame.body)
    }
}
