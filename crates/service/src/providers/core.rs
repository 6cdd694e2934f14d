//! The core provider (id 0): service discovery and administration, no cryptography.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::list_authenticators::AuthenticatorInfo;
use bulwark_interface::ops::list_keys::KeyInfo;
use bulwark_interface::ops::list_providers::ProviderInfo;
use bulwark_interface::ops::{
    self, bulwark_status, delete_client, list_authenticators, list_clients, list_keys,
    list_opcodes, list_providers, ping, BulwarkStatus, DeleteClient, ListAuthenticators,
    ListClients, ListKeys, ListOpcodes, ListProviders, Opcode, Ping, PsaDestroyKey,
    PsaGenerateRandom,
};
use bulwark_interface::status::ResponseStatus;

use psa_crypto::types::status::Error as PsaError;

use super::{Handles, Provider, RequestContext};
use crate::auth::Identity;
use crate::dispatch::{Registrar, Registry};
use crate::error::{ProviderError, ServiceError};
use crate::keystore::KeyStore;

/// Fixed identity of the core provider.
pub const CORE_UUID: &str = "47049873-2a43-4845-9d72-831eab668784";

/// The core provider.
#[derive(Debug)]
pub struct CoreProvider {
    /// Configured crypto providers in configuration order, as (info, configured name).
    providers: Vec<(ProviderInfo, String)>,
    /// The authenticators, in configuration order (never empty).
    authenticators: Vec<AuthenticatorInfo>,
    store: Arc<KeyStore>,
    crypto: Arc<Registry>,
    /// Opcodes per provider, read from the registries once every provider has registered.
    opcodes: OnceLock<HashMap<ProviderId, BTreeSet<Opcode>>>,
    /// Where audit records go, as BulwarkStatus names it.
    audit_sink: String,
}

impl CoreProvider {
    /// A core provider over the given crypto providers and their registry.
    pub fn new(
        providers: Vec<(ProviderInfo, String)>,
        authenticators: Vec<AuthenticatorInfo>,
        store: Arc<KeyStore>,
        crypto: Arc<Registry>,
    ) -> Self {
        CoreProvider {
            providers,
            authenticators,
            store,
            crypto,
            opcodes: OnceLock::new(),
            audit_sink: "off".to_owned(),
        }
    }

    /// The same provider, naming `sink` as the audit log's in BulwarkStatus answers.
    #[must_use]
    pub fn with_audit_sink(mut self, sink: String) -> Self {
        self.audit_sink = sink;
        self
    }

    /// Asks a provider's back end for one random byte: `None` when it answers, otherwise the
    /// status it failed with.
    fn probe(&self, id: ProviderId, ctx: &RequestContext<'_>) -> Option<String> {
        let request = ops::psa_generate_random::Request { size: 1 };
        let outcome = ops::encode_request::<PsaGenerateRandom>(request)
            .map_err(ServiceError::from)
            .and_then(|body| {
                self.crypto
                    .dispatch(id, Opcode::PsaGenerateRandom, ctx, &body)
            });
        outcome
            .err()
            .map(|error| ResponseStatus::from(&error).name().to_owned())
    }

    /// Records what every provider registered; called once all registration is done.
    /// Operations that are served but not listed (see `Opcode::is_listed`) are left out.
    pub fn set_opcodes(&self, core: &Registry) {
        let listed = |set: BTreeSet<Opcode>| set.into_iter().filter(|o| o.is_listed()).collect();
        let mut map: HashMap<_, _> = self
            .providers
            .iter()
            .map(|(info, _)| (info.id, listed(self.crypto.opcodes(info.id))))
            .collect();
        map.insert(ProviderId::Core, listed(core.opcodes(ProviderId::Core)));
        let _ = self.opcodes.set(map);
    }

    fn core_info() -> ProviderInfo {
        let (maj, min, rev) = version();
        ProviderInfo {
            uuid: uuid::Uuid::parse_str(CORE_UUID).unwrap_or_default(),
            description: "Software provider that implements only administrative (i.e. no \
                          cryptographic) operations"
                .to_owned(),
            vendor: String::new(),
            version_maj: maj,
            version_min: min,
            version_rev: rev,
            id: ProviderId::Core,
            max_key_name_len: None,
        }
    }
}

fn version() -> (u32, u32, u32) {
    let parse = |s: &str| s.parse().unwrap_or(0);
    (
        parse(env!("CARGO_PKG_VERSION_MAJOR")),
        parse(env!("CARGO_PKG_VERSION_MINOR")),
        parse(env!("CARGO_PKG_VERSION_PATCH")),
    )
}

impl Provider for CoreProvider {
    fn info(&self) -> ProviderInfo {
        Self::core_info()
    }

    fn name(&self) -> &str {
        "core-provider"
    }

    fn register(self: Arc<Self>, registrar: &mut Registrar<'_>) {
        super::register_core_operations(&self, registrar);
    }

    fn discard(&self, _key_id: &[u8]) -> Result<(), ProviderError> {
        Ok(())
    }
}

impl Handles<Ping> for CoreProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        _: (),
        _: ping::Request,
    ) -> Result<ping::Response, ProviderError> {
        Ok(ping::Response {
            wire_protocol_version_maj: 1,
            wire_protocol_version_min: 0,
        })
    }
}

impl Handles<ListProviders> for CoreProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        _: list_providers::Request,
    ) -> Result<list_providers::Response, ProviderError> {
        // Capability discovery: every crypto provider states the key-name limit, which
        // `ScopedKeys` enforces for all of them alike.
        let max_key_name_len = u32::try_from(ctx.settings().max_key_name_len).unwrap_or(u32::MAX);
        let mut providers: Vec<ProviderInfo> = self
            .providers
            .iter()
            .map(|(info, _)| ProviderInfo {
                max_key_name_len: Some(max_key_name_len),
                ..info.clone()
            })
            .collect();
        providers.push(Self::core_info());
        Ok(list_providers::Response { providers })
    }
}

impl Handles<ListOpcodes> for CoreProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        _: (),
        request: list_opcodes::Request,
    ) -> Result<list_opcodes::Response, ProviderError> {
        self.opcodes
            .get()
            .and_then(|map| map.get(&request.provider_id))
            .map(|opcodes| list_opcodes::Response {
                opcodes: opcodes.clone(),
            })
            .ok_or(ProviderError::ProviderNotRegistered)
    }
}

impl Handles<ListAuthenticators> for CoreProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        _: (),
        _: list_authenticators::Request,
    ) -> Result<list_authenticators::Response, ProviderError> {
        Ok(list_authenticators::Response {
            authenticators: self.authenticators.clone(),
        })
    }
}

impl Handles<ListKeys> for CoreProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        request: list_keys::Request,
    ) -> Result<list_keys::Response, ProviderError> {
        let identity = ctx.identity().ok_or(ProviderError::NotAuthenticated)?;
        let limit = ctx.settings().buffer_size_limit;
        let mut owned = self.store.list(identity.auth_type, &identity.name);
        // The pattern only narrows the caller's own keys (and the answer's size with them).
        if let Some(pattern) = &request.pattern {
            owned.retain(|(key, _)| pattern.matches(key.key_name()));
        }
        let mut keys = Vec::with_capacity(owned.len());
        let mut size = 0usize;
        // Configuration order first, then name order within a provider.
        for (info, name) in &self.providers {
            for (key, record) in owned.iter().filter(|(key, _)| key.provider_name() == name) {
                let entry = KeyInfo {
                    provider_id: info.id,
                    name: key.key_name().to_owned(),
                    attributes: record.attributes,
                };
                // The answer is never built past the limit: refused as soon as it would be
                // (a client within the default quota and name limit never gets there).
                size = size.saturating_add(entry.encoded_len());
                if size > limit {
                    return Err(ProviderError::ResponseTooLarge);
                }
                keys.push(entry);
            }
        }
        Ok(list_keys::Response { keys })
    }
}

impl Handles<ListClients> for CoreProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        _: list_clients::Request,
    ) -> Result<list_clients::Response, ProviderError> {
        let owners: Vec<list_clients::Owner> = self
            .store
            .owners()
            .into_iter()
            .map(|(name, auth_type)| list_clients::Owner { name, auth_type })
            .collect();
        // The names, once each: owners are sorted by name, so a name's entries are adjacent.
        let mut clients: Vec<String> = owners.iter().map(|owner| owner.name.clone()).collect();
        clients.dedup();
        let size = clients
            .iter()
            .map(|client| list_clients::Response::entry_len(client))
            .chain(
                owners
                    .iter()
                    .map(|owner| list_clients::Response::owner_len(&owner.name)),
            )
            .fold(0usize, usize::saturating_add);
        if size > ctx.settings().buffer_size_limit {
            return Err(ProviderError::ResponseTooLarge);
        }
        Ok(list_clients::Response { clients, owners })
    }
}

impl Handles<DeleteClient> for CoreProvider {
    /// Destroys every key the client's name owns, under every authenticator or only under the
    /// one the request names (a Bulwark extension): the names ListClients shows are the names
    /// DeleteClient acts on, so an administrator can still remove keys made under an
    /// authenticator the service no longer uses. Each key goes through
    /// its provider's ordinary destroy path, as if its owner had asked, and is audited there.
    ///
    /// A name that owns no key is answered PsaErrorDoesNotExist rather than Success, and a key
    /// that could not be destroyed makes the answer that failure's status (after every other key
    /// was tried), so Success always means the client's keys are gone.
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        request: delete_client::Request,
    ) -> Result<delete_client::Response, ProviderError> {
        ctx.identity().ok_or(ProviderError::NotAuthenticated)?;
        let mut keys = self.store.list_under_any_authenticator(&request.client);
        if let Some(auth_type) = request.auth_type {
            keys.retain(|(key, _)| key.authenticator() == auth_type);
        }
        if keys.is_empty() {
            return Err(PsaError::DoesNotExist.into());
        }
        let mut first_failure = None;
        for (key, _) in keys {
            let client = Identity {
                name: key.application().to_owned(),
                auth_type: key.authenticator(),
                is_admin: false,
            };
            let client_ctx = ctx.on_behalf_of(Some(&client));
            let Some((info, _)) = self
                .providers
                .iter()
                .find(|(_, n)| n == key.provider_name())
            else {
                // A provider no longer configured: its keys cannot be reached, nor destroyed.
                tracing::warn!(
                    provider = key.provider_name(),
                    "DeleteClient: a key of the client is held by a provider that is not \
                     configured"
                );
                first_failure.get_or_insert(ProviderError::ProviderNotRegistered);
                continue;
            };
            let destroy = ops::psa_destroy_key::Request {
                key_name: key.into_key_name(),
            };
            let outcome = ops::encode_request::<PsaDestroyKey>(destroy)
                .map_err(ServiceError::from)
                .and_then(|body| {
                    self.crypto
                        .dispatch(info.id, Opcode::PsaDestroyKey, &client_ctx, &body)
                });
            if let Err(error) = outcome {
                tracing::warn!(%error, "DeleteClient could not destroy a key");
                first_failure.get_or_insert(match error {
                    ServiceError::Provider(error) => error,
                    _ => PsaError::GenericError.into(),
                });
            }
        }
        match first_failure {
            Some(error) => Err(error),
            None => Ok(delete_client::Response),
        }
    }
}

impl Handles<BulwarkStatus> for CoreProvider {
    /// Figures read now, without locking the service: each is exact when read, and the
    /// connection and request figures count the request being answered.
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        _: bulwark_status::Request,
    ) -> Result<bulwark_status::Response, ProviderError> {
        ctx.identity().ok_or(ProviderError::NotAuthenticated)?;
        let counts = self.store.counts_by_provider();
        // The probe needs no identity: random numbers are open to every caller.
        let probe_ctx = ctx.on_behalf_of(None);
        let providers = self
            .providers
            .iter()
            .map(|(info, name)| bulwark_status::ProviderStatus {
                id: info.id,
                name: name.clone(),
                problem: self.probe(info.id, &probe_ctx),
                keys: counts.get(name).copied().unwrap_or(0),
            })
            .collect();
        let occupied = crate::metrics::occupied();
        let counters = crate::counters::now();
        Ok(bulwark_status::Response {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: crate::metrics::uptime().as_secs(),
            providers,
            authenticators: self
                .authenticators
                .iter()
                .map(|auth| bulwark_status::AuthenticatorStatus {
                    id: auth.id,
                    description: auth.description.clone(),
                })
                .collect(),
            connections_open: occupied.connections,
            requests_in_flight: occupied.in_flight,
            requests_queued: occupied.queued,
            keys: counts.values().sum(),
            clients: u64::try_from(self.store.applications().len()).unwrap_or(u64::MAX),
            audit: bulwark_status::AuditStatus {
                sink: self.audit_sink.clone(),
                records_lost: counters.audit_records_lost,
                denials_folded: counters.denials_folded,
            },
            log_lines_lost: counters.log_lines_lost,
        })
    }
}
