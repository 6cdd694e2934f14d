//! Taking over the keys of an upstream Parsec deployment at start-up.
//!
//! The configuration names upstream's key-info store (`sqlite_db_path` of a SQLite manager,
//! `store_path` of an OnDisk manager). Bulwark never writes into it: its own store is a
//! separate SQLite file, and upstream's mappings are imported into it once each
//! ([`KeyStore::import`]), in one transaction, with a marker that keeps a later start from
//! importing them again. Upstream's files are only read, so the upstream service can be started
//! again on the same configuration and finds its keys as it left them.
//!
//! # Where Bulwark's store lives ([`layout`])
//!
//! - SQLite manager, `sqlite_db_path` = P: if [`BULWARK_STORE_FILE_NAME`] exists beside P, it
//!   is the store. Otherwise, if P is upstream's database (it has upstream's tables and not
//!   Bulwark's), the store is created as [`BULWARK_STORE_FILE_NAME`] beside P. Otherwise P is
//!   Bulwark's own store (a new deployment, or one made by bulwarkd), as before.
//! - OnDisk manager, `store_path` = D: [`BULWARK_STORE_FILE_NAME`] beside D.
//!
//! The key-encryption key and the audit log keep their default places in that same directory.
//!
//! # What is taken over ([`take_over`])
//!
//! Mbed Crypto keys (the PSA key id is the same in both; the key material stays in Mbed TLS's
//! files in the working directory) and PKCS #11 keys (upstream's `u32` id is the object's
//! `CKA_ID`, big-endian) become keys of the configured provider of that kind, under the same
//! authenticator, application and name. TPM keys are not: upstream's key id holds the public
//! key, the auth value and the private part wrapped by the TPM under upstream's own primary key
//! (the one `tss-esapi`'s transient key context creates), which Bulwark's TPM provider does not
//! load keys under, and a wrapped key cannot be moved to another parent; each is named in an
//! error line at every start, and stays upstream's. A mapping whose key no longer
//! exists in its provider is imported and then dropped by the provider's start-up check (logged),
//! and, its marker recorded, never comes back. With the OpenSsl provider as provider 1,
//! upstream Mbed Crypto mappings not taken over yet stop the start: OpenSSL cannot use Mbed TLS
//! key files.

use std::path::{Path, PathBuf};

use bulwark_interface::ids::{AuthType, ProviderId};

use crate::config::{Config, KeyManagerConfig, KeyManagerType, ProviderKind};
use crate::keystore::upstream::{self, UpstreamMapping};
use crate::keystore::{Import, ImportMarker, ImportOutcome, KeyRecord, KeyStore};

/// The file name of Bulwark's store when it sits beside an upstream store.
pub(crate) const BULWARK_STORE_FILE_NAME: &str = "bulwark-key-store.sqlite3";

/// Where Bulwark's store is and which upstream store, if any, to take keys over from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bulwark's own SQLite store.
    pub store: PathBuf,
    /// Upstream's store, when one is there.
    pub upstream: Option<UpstreamStore>,
}

/// An upstream key-info store on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpstreamStore {
    /// The SQLite manager's database file.
    Sqlite(PathBuf),
    /// The OnDisk manager's directory.
    OnDisk(PathBuf),
}

impl UpstreamStore {
    /// The file or directory.
    pub(crate) fn path(&self) -> &Path {
        match self {
            UpstreamStore::Sqlite(path) | UpstreamStore::OnDisk(path) => path,
        }
    }

    /// Every client key mapping it holds; OnDisk mappings are owned through `authenticator`.
    ///
    /// # Errors
    /// See [`upstream::read_sqlite`] and [`upstream::read_on_disk`].
    pub(crate) fn read(
        &self,
        authenticator: AuthType,
    ) -> Result<Vec<UpstreamMapping>, upstream::UpstreamError> {
        match self {
            UpstreamStore::Sqlite(path) => upstream::read_sqlite(path),
            UpstreamStore::OnDisk(path) => upstream::read_on_disk(path, authenticator),
        }
    }
}

/// Where Bulwark's store lives for `manager`, and upstream's store if there is one (see the
/// module documentation).
///
/// # Errors
/// `sqlite_db_path` exists but cannot be read as a SQLite database.
pub(crate) fn layout(manager: &KeyManagerConfig) -> Result<Layout, upstream::UpstreamError> {
    let beside = manager.store_dir().join(BULWARK_STORE_FILE_NAME);
    match manager.manager_type {
        KeyManagerType::OnDisk => Ok(Layout {
            store: beside,
            upstream: manager
                .store_path
                .is_dir()
                .then(|| UpstreamStore::OnDisk(manager.store_path.clone())),
        }),
        KeyManagerType::SQLite => {
            let path = &manager.sqlite_db_path;
            let tables = upstream::tables(path)?;
            let upstream = tables.upstream.then(|| UpstreamStore::Sqlite(path.clone()));
            let store = if beside.exists() || (tables.upstream && !tables.bulwark) {
                beside
            } else {
                // Bulwark's own file. One that an earlier bulwarkd shared with upstream (both
                // sets of tables) stays as it is: upstream ignores tables it does not know.
                path.clone()
            };
            Ok(Layout { store, upstream })
        }
    }
}

/// Imports into `store` the mappings of `mappings` that the configured providers can serve,
/// once each, and logs what was taken.
///
/// # Errors
/// A message naming the configuration key at fault: upstream Mbed Crypto keys with the
/// OpenSsl provider configured, or a store failure.
pub(crate) fn take_over(
    config: &Config,
    source: &Path,
    mappings: Vec<UpstreamMapping>,
    store: &KeyStore,
) -> Result<(), (String, String)> {
    let storage = |e: crate::keystore::KeyStoreError| ("key_manager".to_owned(), e.to_string());
    let mut imports = Vec::new();
    let mut refused_by_openssl = Vec::new();
    for mapping in mappings {
        let marker = ImportMarker {
            authenticator: mapping.authenticator,
            application: mapping.application.clone(),
            provider_id: mapping.provider_id,
            key_name: mapping.key_name.clone(),
            upstream_key_id: mapping.key_id.to_vec(),
        };
        let Some(provider) = config
            .provider
            .iter()
            .find(|p| p.provider_id() == mapping.provider_id)
        else {
            tracing::info!(
                application = %mapping.application,
                key = %mapping.key_name,
                provider = %mapping.provider_id,
                "upstream key of a provider that is not configured: left in upstream's store"
            );
            continue;
        };
        if matches!(provider.kind, ProviderKind::OpenSsl(_)) {
            if !store.imported(&marker).map_err(storage)? {
                refused_by_openssl
                    .push(format!("{:?}/{:?}", mapping.application, mapping.key_name));
            }
            continue;
        }
        if let Some(name) = &mapping.provider_name {
            if name != provider.name() {
                // Upstream itself matches keys to providers by name: with this configuration
                // it would not see this key either.
                tracing::info!(
                    application = %mapping.application,
                    key = %mapping.key_name,
                    upstream_provider = %name,
                    "upstream key of a provider of another name: left in upstream's store"
                );
                continue;
            }
        }
        let key_id = match mapping.provider_id {
            ProviderId::MbedCrypto => upstream::u32_key_id(&mapping.key_id).map(u32::to_le_bytes),
            ProviderId::Pkcs11 => upstream::u32_key_id(&mapping.key_id).map(u32::to_be_bytes),
            _ => {
                tracing::error!(
                    application = %mapping.application,
                    key = %mapping.key_name,
                    provider = %mapping.provider_id,
                    "upstream TPM key not carried over: it is wrapped by the TPM under \
                     upstream's own primary key, which Bulwark's TPM provider does not use, and \
                     cannot be moved to another parent; it stays usable with upstream parsec \
                     only (create the key again in bulwarkd)"
                );
                continue;
            }
        };
        let Some(key_id) = key_id else {
            tracing::error!(
                application = %mapping.application,
                key = %mapping.key_name,
                "upstream key not carried over: its key id is not a 32-bit PSA or PKCS #11 id"
            );
            continue;
        };
        imports.push(Import {
            record: KeyRecord {
                provider_id: mapping.provider_id,
                key_id: key_id.to_vec().into(),
                attributes: mapping.attributes,
            },
            identity: mapping.into_identity(provider.name()),
            marker,
        });
    }
    if !refused_by_openssl.is_empty() {
        return Err((
            "provider".to_owned(),
            format!(
                "{} holds {} key(s) of upstream's Mbed Crypto provider ({}), which the OpenSsl \
                 provider cannot use: configure provider_type = \"MbedCrypto\" to keep using \
                 them (bulwarkd takes them over from the same store and working directory), \
                 or point the key manager at another store to start without them",
                source.display(),
                refused_by_openssl.len(),
                refused_by_openssl.join(", ")
            ),
        ));
    }
    let outcomes = store.import(&imports).map_err(storage)?;
    let mut taken = 0usize;
    for (import, outcome) in imports.iter().zip(outcomes) {
        let identity = &import.identity;
        match outcome {
            ImportOutcome::Imported => {
                taken += 1;
                tracing::info!(
                    application = %identity.application(),
                    key = %identity.key_name(),
                    provider = %identity.provider_name(),
                    "took over an upstream key"
                );
            }
            ImportOutcome::NameTaken => tracing::warn!(
                application = %identity.application(),
                key = %identity.key_name(),
                provider = %identity.provider_name(),
                "upstream key not taken over: a Bulwark key of that name exists"
            ),
            ImportOutcome::AlreadyImported => {}
        }
    }
    if taken > 0 {
        tracing::info!(
            keys = taken,
            store = %source.display(),
            "upstream key mappings taken over (upstream's store left unchanged)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn manager(manager_type: KeyManagerType, dir: &Path) -> KeyManagerConfig {
        KeyManagerConfig {
            name: "m".to_owned(),
            manager_type,
            sqlite_db_path: dir.join("kim/db.sqlite3"),
            store_path: dir.join("mappings"),
        }
    }

    use psa_crypto::types::algorithm::{Algorithm, AsymmetricSignature, Hash};
    use psa_crypto::types::key::{Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags};
    use zeroize::Zeroizing;

    fn config(providers: &str) -> Config {
        Config::parse(&format!(
            "[core_settings]\n[listener]\nlistener_type = \"DomainSocket\"\ntimeout = 200\n[authenticator]\nauth_type = \"Direct\"\n[[key_manager]]\nname = \"m\"\nmanager_type = \"SQLite\"\n{providers}"
        ))
        .unwrap()
    }

    fn mapping(provider_id: ProviderId, name: &str, key_id: &[u8]) -> UpstreamMapping {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_sign_hash().set_verify_hash();
        UpstreamMapping {
            authenticator: AuthType::Direct,
            application: "app".to_owned(),
            provider_id,
            provider_name: None,
            key_name: name.to_owned(),
            key_id: Zeroizing::new(key_id.to_vec()),
            attributes: Attributes {
                lifetime: Lifetime::Persistent,
                key_type: Type::EccKeyPair {
                    curve_family: EccFamily::SecpR1,
                },
                bits: 256,
                policy: Policy {
                    usage_flags,
                    permitted_algorithms: Algorithm::AsymmetricSignature(
                        AsymmetricSignature::Ecdsa {
                            hash_alg: Hash::Sha256.into(),
                        },
                    ),
                },
            },
        }
    }

    fn identity(provider_name: &str, key_name: &str) -> crate::keystore::KeyIdentity {
        crate::keystore::KeyIdentity::for_tests(AuthType::Direct, "app", provider_name, key_name)
    }

    #[test]
    fn pkcs11_ids_become_big_endian_and_tpm_keys_stay_upstreams() {
        let config = config(
            "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"m\"\n\
             library_path = \"/nonexistent.so\"\n\
             [[provider]]\nprovider_type = \"Tpm\"\nkey_info_manager = \"m\"\n\
             tcti = \"mssim\"\nowner_hierarchy_auth = \"\"\n",
        );
        let store = KeyStore::open_in_memory().unwrap();
        let mappings = vec![
            mapping(ProviderId::Pkcs11, "token-key", &5u32.to_le_bytes()),
            mapping(ProviderId::Tpm, "tpm-key", &[7; 40]),
        ];
        take_over(&config, Path::new("upstream"), mappings, &store).unwrap();
        let record = store
            .get(&identity("pkcs11-provider", "token-key"))
            .unwrap()
            .unwrap();
        assert_eq!(record.key_id.as_slice(), [0, 0, 0, 5]);
        assert_eq!(record.provider_id, ProviderId::Pkcs11);
        assert_eq!(
            store.get(&identity("tpm-provider", "tpm-key")).unwrap(),
            None
        );
        assert_eq!(store.list(AuthType::Direct, "app").len(), 1);
    }

    #[test]
    fn upstream_mbed_keys_stop_an_openssl_start_until_taken_over() {
        let store = KeyStore::open_in_memory().unwrap();
        let mbed =
            config("[[provider]]\nprovider_type = \"MbedCrypto\"\nkey_info_manager = \"m\"\n");
        let openssl =
            config("[[provider]]\nprovider_type = \"OpenSsl\"\nkey_info_manager = \"m\"\n");
        let upstream = || vec![mapping(ProviderId::MbedCrypto, "k", &2u32.to_le_bytes())];

        let (key, reason) =
            take_over(&openssl, Path::new("/up/store"), upstream(), &store).unwrap_err();
        assert_eq!(key, "provider");
        assert!(reason.contains("/up/store holds 1 key(s)"), "{reason}");
        assert!(reason.contains("\"app\"/\"k\""), "{reason}");
        assert!(store.list(AuthType::Direct, "app").is_empty());

        // Taken over by the Mbed Crypto provider, the key is no longer a reason to refuse.
        take_over(&mbed, Path::new("/up/store"), upstream(), &store).unwrap();
        assert_eq!(
            store
                .get(&identity("mbed-crypto-provider", "k"))
                .unwrap()
                .unwrap()
                .key_id
                .as_slice(),
            2u32.to_le_bytes()
        );
        take_over(&openssl, Path::new("/up/store"), upstream(), &store).unwrap();
    }

    #[test]
    fn bulwarks_store_moves_beside_an_upstream_database_and_stays_in_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = manager(KeyManagerType::SQLite, dir.path());
        // Nothing yet: the configured file is Bulwark's.
        let fresh = layout(&sqlite).unwrap();
        assert_eq!(fresh.store, sqlite.sqlite_db_path);
        assert_eq!(fresh.upstream, None);

        // Upstream's tables only: Bulwark's store goes beside it.
        std::fs::create_dir_all(dir.path().join("kim")).unwrap();
        let connection = rusqlite::Connection::open(&sqlite.sqlite_db_path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE kim_metadata (id TEXT NOT NULL, int_value INTEGER NOT NULL, \
                 PRIMARY KEY (id)); INSERT INTO kim_metadata VALUES ('schema_version', 1);",
            )
            .unwrap();
        let beside = dir.path().join("kim").join(BULWARK_STORE_FILE_NAME);
        let migrated = layout(&sqlite).unwrap();
        assert_eq!(migrated.store, beside);
        assert_eq!(
            migrated.upstream,
            Some(UpstreamStore::Sqlite(sqlite.sqlite_db_path.clone()))
        );

        // OnDisk: always beside the mapping directory.
        let on_disk = manager(KeyManagerType::OnDisk, dir.path());
        assert_eq!(
            layout(&on_disk).unwrap().store,
            dir.path().join(BULWARK_STORE_FILE_NAME)
        );
        assert_eq!(layout(&on_disk).unwrap().upstream, None);
    }
}
