//! Building a [`Service`] from a [`Config`]: authenticator, key store, providers, recovery of
//! interrupted key operations, registries.
//!
//! Stores are kept across reloads ([`Resources`]): a reload must not open a second connection
//! with its own cache on a database the running service still writes.
//!
//! Recovery of interrupted key operations runs once per provider and process, when the
//! provider is first built (at start-up, or at the reload that adds it): on a later reload the
//! unfinished rows are the operations in flight, not leftovers of a crash.
//!
//! `bulwarkd --check` runs this same builder on [`Resources::for_check`], so every check of
//! start-up (but binding the socket) is a check of `--check` too. Nothing is created or changed
//! then: the key store is checked on a copy ([`KeyStore::open_copy`]), a missing
//! key-encryption key or audit log is made in a scratch directory after checking that its
//! directory exists or can be created, and recovery only counts the unfinished operations it
//! would finish.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::list_authenticators::AuthenticatorInfo;
use bulwark_interface::wire::Limits;

use crate::audit::AuditLog;
use crate::auth::{self, Authenticator, Authenticators, Method};
use crate::config::{AuditLogSetting, AuthenticatorType, Config, KeyManagerType, ProviderKind};
use crate::dispatch::Registry;
use crate::keystore::KeyStore;
use crate::migration;
use crate::providers::core::CoreProvider;
use crate::providers::mbed::MbedProvider;
use crate::providers::openssl::OpenSslProvider;
use crate::providers::{Provider, ProviderSettings};
use crate::service::Service;

/// Why a service could not be built; the message names the configuration key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct BuildError {
    /// The configuration key (or part of the set-up) at fault.
    pub key: String,
    /// What is wrong, in one sentence.
    pub reason: String,
}

fn fail(key: impl Into<String>, reason: impl ToString) -> BuildError {
    BuildError {
        key: key.into(),
        reason: reason.to_string(),
    }
}

/// Long-lived resources shared by successive services of one process.
#[derive(Debug, Default)]
pub struct Resources {
    stores: HashMap<PathBuf, Arc<KeyStore>>,
    /// Providers (by name) whose interrupted operations were already recovered.
    recovered: BTreeSet<String>,
    /// Set for a check (`--check`): the scratch directory that stands in for the state files.
    check: Option<Scratch>,
}

impl Resources {
    /// No resources opened yet.
    pub fn new() -> Self {
        Resources::default()
    }

    /// Resources for checking a configuration: [`build`] then runs every check of start-up
    /// and creates or changes no file of the configuration (see the [module
    /// documentation](self)).
    ///
    /// # Errors
    /// The scratch directory cannot be made in the temporary directory.
    pub fn for_check() -> Result<Self, BuildError> {
        let template = std::env::temp_dir().join("bulwarkd-check.XXXXXX");
        let path = nix::unistd::mkdtemp(&template)
            .map_err(|e| fail("--check", format!("{}: {e}", template.display())))?;
        Ok(Resources {
            check: Some(Scratch(path)),
            ..Resources::default()
        })
    }

    fn store(&mut self, path: PathBuf, key: &str) -> Result<Arc<KeyStore>, BuildError> {
        if let Some(store) = self.stores.get(&path) {
            return Ok(Arc::clone(store));
        }
        let opened = match &self.check {
            None => KeyStore::open(&path),
            Some(scratch) => KeyStore::open_copy(&path, &scratch.0),
        };
        let store = Arc::new(opened.map_err(|e| fail(key, format!("{}: {e}", path.display())))?);
        self.stores.insert(path, Arc::clone(&store));
        Ok(store)
    }
}

/// The scratch directory of a check, removed when dropped.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    /// Where a check puts a state file that does not exist yet at `path` (named `name` in the
    /// scratch directory); `path` itself when it exists. `path`'s directory must exist, or be
    /// one of `created` (directories start-up creates, with their ancestors), else the nearest
    /// existing ancestor of `created` must be a directory.
    fn stand_in(
        &self,
        path: &Path,
        name: &str,
        key: &str,
        created: &Path,
    ) -> Result<PathBuf, BuildError> {
        if path.exists() {
            return Ok(path.to_owned());
        }
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if parent.is_dir() {
            return Ok(self.0.join(name));
        }
        if parent.exists() || !created.starts_with(parent) {
            return Err(fail(
                key,
                format!(
                    "{}: the directory {} does not exist",
                    path.display(),
                    parent.display()
                ),
            ));
        }
        for ancestor in parent.ancestors().skip(1) {
            if ancestor.is_dir() {
                break;
            }
            if ancestor.exists() {
                return Err(fail(
                    key,
                    format!("{}: not a directory", ancestor.display()),
                ));
            }
        }
        Ok(self.0.join(name))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the service a configuration describes.
///
/// # Errors
/// A [`BuildError`] naming the configuration key that cannot be served.
pub fn build(config: &Config, resources: &mut Resources) -> Result<Service, BuildError> {
    let mut list = Vec::with_capacity(config.authenticators.len());
    for (i, auth) in config.authenticators.iter().enumerate() {
        let method = match auth.auth_type {
            AuthenticatorType::Direct if config.authenticators.len() > 1 => {
                tracing::warn!(
                    "the Direct authenticator runs beside others \
                     (allow_with_other_authenticators): any client may claim any Direct name, \
                     so keys owned under Direct are open to every local user"
                );
                Method::Direct
            }
            AuthenticatorType::Direct => {
                tracing::warn!(
                    "the Direct authenticator trusts the name each client gives: use it only \
                     when all clients trust each other"
                );
                Method::Direct
            }
            AuthenticatorType::UnixPeerCredentials => Method::UnixPeerCredentials,
            AuthenticatorType::JwtSvid | AuthenticatorType::Jwt => {
                let key = |name: &str| config.authenticator_key(i, name);
                let validator =
                    auth::setup::start(auth, &key).map_err(|(key, reason)| fail(key, reason))?;
                list.push(Authenticator::with_tokens(
                    validator,
                    auth.admins.iter().map(|a| a.name.clone()),
                ));
                continue;
            }
        };
        list.push(Authenticator::new(
            method,
            auth.admins.iter().map(|a| a.name.clone()),
        ));
    }
    let authenticators = Authenticators::new(list).map_err(|_| {
        fail(
            "authenticator",
            "one authenticator per auth type, at least one",
        )
    })?;

    // One key store serves every provider (see ARCHITECTURE.md): all providers must name the
    // same SQLite key manager.
    let mut manager_name: Option<&str> = None;
    for (i, provider) in config.provider.iter().enumerate() {
        match manager_name {
            None => manager_name = Some(&provider.key_info_manager),
            Some(name) if name != provider.key_info_manager => {
                return Err(fail(
                    format!("provider[{i}].key_info_manager"),
                    "every provider must use the same key manager",
                ));
            }
            Some(_) => {}
        }
    }
    let manager_name = manager_name.ok_or_else(|| fail("provider", "no provider configured"))?;
    let manager = config
        .key_manager
        .iter()
        .find(|m| m.name == manager_name)
        .ok_or_else(|| {
            fail(
                "key_manager",
                format!("no key manager named {manager_name:?}"),
            )
        })?;
    // Bulwark's own store, and the upstream store whose keys it takes over (see `migration`).
    let location_key = match manager.manager_type {
        KeyManagerType::SQLite => "key_manager.sqlite_db_path",
        KeyManagerType::OnDisk => "key_manager.store_path",
    };
    let layout = migration::layout(manager).map_err(|e| fail(location_key, e))?;
    let store = resources.store(layout.store.clone(), location_key)?;
    if let Some(upstream) = &layout.upstream {
        // Upstream runs one authenticator: its OnDisk tree, which does not record it, belongs
        // to the first one configured (upstream's own table, in its configuration file).
        let first = authenticators
            .methods()
            .next()
            .unwrap_or(Method::UnixPeerCredentials);
        let mappings = upstream
            .read(first.auth_type())
            .map_err(|e| fail(location_key, e))?;
        migration::take_over(config, upstream.path(), mappings, &store)
            .map_err(|(key, reason)| fail(key, reason))?;
    }

    let core_settings = &config.core_settings;
    let settings = ProviderSettings {
        allow_deprecated: core_settings.allow_deprecated,
        buffer_size_limit: core_settings.buffer_size_limit,
        max_key_name_len: core_settings.max_key_name_len,
        max_keys_per_client: core_settings.max_keys_per_client,
    };
    if core_settings.largest_key_list() > core_settings.buffer_size_limit {
        tracing::warn!(
            max_keys_per_client = core_settings.max_keys_per_client,
            max_key_name_len = core_settings.max_key_name_len,
            buffer_size_limit = core_settings.buffer_size_limit,
            largest_key_list = core_settings.largest_key_list(),
            "a client at its key quota with names of the maximum length would get \
             ResponseTooLarge from ListKeys: lower max_keys_per_client or max_key_name_len, or \
             raise buffer_size_limit"
        );
    }

    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    let mut crypto = Registry::new();
    let mut configured = BTreeSet::new();
    for (i, provider_config) in config.provider.iter().enumerate() {
        let key = format!("provider[{i}]");
        let name = provider_config.name().to_owned();
        let provider: Arc<dyn Provider> = match &provider_config.kind {
            ProviderKind::MbedCrypto => {
                crate::providers::mbed::check_working_directory().map_err(|e| fail(&key, e))?;
                let provider = MbedProvider::new(name).map_err(|e| fail(&key, e))?;
                provider.drop_vanished_keys(&store);
                Arc::new(provider)
            }
            ProviderKind::OpenSsl(openssl) => {
                let mut kek_path = openssl.kek_path_or_default(manager);
                if let Some(scratch) = &resources.check {
                    // The key-encryption key's directory is created as needed.
                    let created = kek_path.parent().unwrap_or(Path::new("."));
                    kek_path =
                        scratch.stand_in(&kek_path, "kek", &format!("{key}.kek_path"), created)?;
                }
                Arc::new(
                    OpenSslProvider::new(name, &kek_path, &store)
                        .map_err(|e| fail(format!("{key}.kek_path"), e))?,
                )
            }
            #[cfg(feature = "tpm")]
            ProviderKind::Tpm(tpm) => match crate::providers::tpm::TpmProvider::new(name, tpm) {
                Ok(provider) => Arc::new(provider),
                Err(crate::providers::tpm::OpenError::Unreachable { tcti, reason })
                    if tpm.skip_if_no_tpm =>
                {
                    tracing::warn!(
                        %tcti,
                        %reason,
                        "the TPM cannot be reached: provider left out (skip_if_no_tpm)"
                    );
                    continue;
                }
                Err(e) => return Err(fail(format!("{key}.tcti"), e)),
            },
            #[cfg(feature = "pkcs11")]
            ProviderKind::Pkcs11(pkcs11) => {
                match crate::providers::pkcs11::Pkcs11Provider::new(name, pkcs11, &store) {
                    Ok(provider) => Arc::new(provider),
                    // A token not there yet (a token created later, a device not plugged in):
                    // the service runs without the provider, and a reload once the token is
                    // there brings it in (the library is initialised again then).
                    Err(e) if e.token_absent() => {
                        tracing::error!(
                            provider = %key,
                            reason = %e,
                            "the PKCS #11 token is not present: provider left out until a \
                             reload (SIGHUP) finds it"
                        );
                        continue;
                    }
                    Err(e) => return Err(fail(&key, e)),
                }
            }
            other => {
                return Err(fail(
                    format!("{key}.provider_type"),
                    format!("{:?} is not available in this build", other.type_name()),
                ));
            }
        };
        if resources.check.is_some() {
            let unfinished = store
                .unfinished(provider.name())
                .map_err(|e| fail(&key, e))?;
            if !unfinished.is_empty() {
                tracing::info!(
                    provider = provider.name(),
                    count = unfinished.len(),
                    "key operations interrupted by a crash: start-up will finish them"
                );
            }
        } else if !resources.recovered.contains(provider.name()) {
            recover(&*provider, &store).map_err(|e| fail(&key, e))?;
        }
        let id = provider_config.provider_id();
        Arc::clone(&provider).register(&mut crypto.registrar(id));
        configured.insert(id);
        providers.push(provider);
    }

    resources
        .recovered
        .extend(providers.iter().map(|p| p.name().to_owned()));

    let crypto = Arc::new(crypto);
    let auth_infos = authenticators
        .methods()
        .map(|method| AuthenticatorInfo {
            description: method.description().to_owned(),
            version_maj: 0,
            version_min: 1,
            version_rev: 0,
            id: method.auth_type(),
        })
        .collect();
    let infos: Vec<_> = providers
        .iter()
        .map(|p| (p.info(), p.name().to_owned()))
        .collect();
    let provider_names = infos
        .iter()
        .map(|(info, name)| (info.id, name.clone()))
        .collect();
    let audit_sink = match config.core_settings.audit_log_or_default(manager) {
        AuditLogSetting::Off => "off".to_owned(),
        AuditLogSetting::Journal => "journal".to_owned(),
        AuditLogSetting::File(path) => format!("file:{}", path.display()),
    };
    let core = Arc::new(
        CoreProvider::new(infos, auth_infos, Arc::clone(&store), Arc::clone(&crypto))
            .with_audit_sink(audit_sink),
    );
    let mut core_registry = Registry::new();
    Arc::clone(&core).register(&mut core_registry.registrar(ProviderId::Core));
    core.set_opcodes(&core_registry);

    let limits = Limits {
        body_len: config.core_settings.body_len_limit,
        auth_len: usize::from(u16::MAX),
    };
    let service = Service::new(
        authenticators,
        store,
        settings,
        limits,
        configured,
        crypto,
        core_registry,
    )
    .with_inline_crypto(
        config
            .provider
            .iter()
            .all(|p| matches!(p.kind, ProviderKind::OpenSsl(_))),
    )
    .with_provider_names(provider_names);
    let audit = match config.core_settings.audit_log_or_default(manager) {
        AuditLogSetting::Off => return Ok(service),
        AuditLogSetting::Journal => AuditLog::journal(),
        AuditLogSetting::File(mut path) => {
            if let Some(scratch) = &resources.check {
                // Start-up creates the key store's directory, not the audit log's.
                path = scratch.stand_in(
                    &path,
                    "audit.log",
                    "core_settings.audit_log",
                    &manager.store_dir(),
                )?;
            }
            AuditLog::file(&path).map_err(|e| fail("core_settings.audit_log", e))?
        }
    };
    let names = providers
        .iter()
        .map(|p| (p.info().id, p.name().to_owned()))
        .collect();
    Ok(service.with_audit(audit.with_providers(names)))
}

/// Finishes what a crash interrupted: back-end keys of unfinished creations and destructions
/// are removed, then their rows. Nothing unfinished was ever acknowledged to a client.
fn recover(provider: &dyn Provider, store: &KeyStore) -> Result<(), String> {
    let unfinished = store
        .unfinished(provider.name())
        .map_err(|e| e.to_string())?;
    for (identity, record, state) in unfinished {
        provider
            .discard(&record.key_id)
            .map_err(|e| e.to_string())?;
        store.forget(&identity).map_err(|e| e.to_string())?;
        tracing::info!(
            ?state,
            "removed a key left unfinished by an interrupted operation"
        );
    }
    Ok(())
}
