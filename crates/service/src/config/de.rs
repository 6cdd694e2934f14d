//! The serde layer: the file as serde reads it ([`RawConfig`]), then given its typed shape
//! ([`RawConfig::into_config`]), with serde's errors turned into [`ConfigError`]s that name the
//! key as the file writes it, and the keys serde ignored collected as paths.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::authenticator::{self, AuthenticatorConfig};
use super::{
    Config, ConfigError, CoreSettings, CryptoAuthLibConfig, KeyManagerConfig, KeyManagerType,
    ListenerConfig, Location, OpenSslConfig, Pkcs11Config, ProviderConfig, ProviderKind,
    SecretString, TpmConfig, DEFAULT_ON_DISK_STORE_PATH, DEFAULT_SQLITE_DB_PATH,
};

/// Reads `text` into a configuration, not validated yet: TOML syntax, then types and required
/// keys.
pub(super) fn read(text: &str) -> Result<Config, ConfigError> {
    let toml_de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
        location: e.span().map(|span| Location::of_offset(text, span.start)),
        message: e.message().to_owned(),
    })?;

    let mut unknown_keys = Vec::new();
    let mut on_ignored = |path: serde_ignored::Path<'_>| {
        let mut key = String::new();
        write_ignored_path(&mut key, &path);
        unknown_keys.push(key);
    };
    let raw: RawConfig = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        toml_de,
        &mut on_ignored,
    ))
    .map_err(|e| type_error(text, e))?;

    raw.into_config(unknown_keys)
}

/// The file as serde reads it; providers and key managers get their type-specific shape after.
#[derive(Deserialize)]
struct RawConfig {
    core_settings: CoreSettings,
    listener: ListenerConfig,
    authenticator: OneOrMany<AuthenticatorConfig>,
    #[serde(default)]
    key_manager: Vec<RawKeyManager>,
    #[serde(default)]
    provider: Vec<RawProvider>,
}

#[derive(Deserialize)]
struct RawKeyManager {
    name: String,
    manager_type: KeyManagerType,
    #[serde(default)]
    sqlite_db_path: Option<PathBuf>,
    #[serde(default)]
    store_path: Option<PathBuf>,
}

/// Every key any provider type reads; `provider_type` decides which matter.
#[derive(Deserialize)]
struct RawProvider {
    #[serde(deserialize_with = "provider_type")]
    provider_type: ProviderKind,
    #[serde(default)]
    name: Option<String>,
    key_info_manager: String,
    // Pkcs11
    #[serde(default)]
    library_path: Option<PathBuf>,
    #[serde(default)]
    slot_number: Option<u64>,
    #[serde(default)]
    serial_number: Option<String>,
    #[serde(default)]
    user_pin: Option<SecretString>,
    #[serde(default)]
    software_public_operations: Option<bool>,
    #[serde(default)]
    allow_export: Option<bool>,
    // Tpm
    #[serde(default)]
    tcti: Option<String>,
    #[serde(default)]
    owner_hierarchy_auth: Option<SecretString>,
    #[serde(default)]
    endorsement_hierarchy_auth: Option<SecretString>,
    #[serde(default)]
    skip_if_no_tpm: Option<bool>,
    // CryptoAuthLib
    #[serde(default)]
    device_type: Option<String>,
    #[serde(default)]
    iface_type: Option<String>,
    #[serde(default)]
    wake_delay: Option<u16>,
    #[serde(default)]
    rx_retries: Option<i32>,
    #[serde(default)]
    slave_address: Option<u8>,
    #[serde(default)]
    bus: Option<u8>,
    #[serde(default)]
    baud: Option<u32>,
    #[serde(default)]
    access_key_file_name: Option<PathBuf>,
    // OpenSsl
    #[serde(default)]
    kek_path: Option<PathBuf>,
}

impl RawConfig {
    fn into_config(self, mut unknown_keys: Vec<String>) -> Result<Config, ConfigError> {
        let authenticators = self.authenticator.0;
        authenticator::unused_keys(&authenticators, &mut unknown_keys);
        let key_manager = self
            .key_manager
            .into_iter()
            .enumerate()
            .map(|(i, km)| km.into_config(i, &mut unknown_keys))
            .collect();
        let provider = self
            .provider
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.into_config(i, &mut unknown_keys))
            .collect::<Result<_, _>>()?;
        // serde_ignored reports in the deserializer's order, not the file's: sort for a stable
        // list.
        unknown_keys.sort();
        Ok(Config {
            core_settings: self.core_settings,
            listener: self.listener,
            authenticators,
            key_manager,
            provider,
            unknown_keys,
        })
    }
}

impl RawKeyManager {
    fn into_config(self, index: usize, unknown_keys: &mut Vec<String>) -> KeyManagerConfig {
        let unused = match self.manager_type {
            KeyManagerType::SQLite => self.store_path.as_ref().map(|_| "store_path"),
            KeyManagerType::OnDisk => self.sqlite_db_path.as_ref().map(|_| "sqlite_db_path"),
        };
        if let Some(key) = unused {
            unknown_keys.push(format!("key_manager[{index}].{key}"));
        }
        KeyManagerConfig {
            name: self.name,
            manager_type: self.manager_type,
            sqlite_db_path: self
                .sqlite_db_path
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SQLITE_DB_PATH)),
            store_path: self
                .store_path
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ON_DISK_STORE_PATH)),
        }
    }
}

impl RawProvider {
    fn into_config(
        self,
        index: usize,
        unknown_keys: &mut Vec<String>,
    ) -> Result<ProviderConfig, ConfigError> {
        let ty = self.provider_type.type_name();
        let present = [
            ("library_path", self.library_path.is_some()),
            ("slot_number", self.slot_number.is_some()),
            ("serial_number", self.serial_number.is_some()),
            ("user_pin", self.user_pin.is_some()),
            (
                "software_public_operations",
                self.software_public_operations.is_some(),
            ),
            ("allow_export", self.allow_export.is_some()),
            ("tcti", self.tcti.is_some()),
            ("owner_hierarchy_auth", self.owner_hierarchy_auth.is_some()),
            (
                "endorsement_hierarchy_auth",
                self.endorsement_hierarchy_auth.is_some(),
            ),
            ("skip_if_no_tpm", self.skip_if_no_tpm.is_some()),
            ("device_type", self.device_type.is_some()),
            ("iface_type", self.iface_type.is_some()),
            ("wake_delay", self.wake_delay.is_some()),
            ("rx_retries", self.rx_retries.is_some()),
            ("slave_address", self.slave_address.is_some()),
            ("bus", self.bus.is_some()),
            ("baud", self.baud.is_some()),
            ("access_key_file_name", self.access_key_file_name.is_some()),
            ("kek_path", self.kek_path.is_some()),
        ];
        for (key, is_present) in present {
            if is_present && !self.provider_type.specific_keys().contains(&key) {
                unknown_keys.push(format!("provider[{index}].{key}"));
            }
        }

        let required = |key: &str| {
            ConfigError::invalid(
                format!("provider[{index}].{key}"),
                format!("is required when provider_type is \"{ty}\", but it is missing"),
            )
        };
        let kind = match self.provider_type {
            ProviderKind::MbedCrypto => ProviderKind::MbedCrypto,
            ProviderKind::TrustedService => ProviderKind::TrustedService,
            ProviderKind::Pkcs11(_) => ProviderKind::Pkcs11(Pkcs11Config {
                library_path: self.library_path.ok_or_else(|| required("library_path"))?,
                slot_number: self.slot_number,
                serial_number: self.serial_number,
                user_pin: self.user_pin,
                software_public_operations: self.software_public_operations.unwrap_or(false),
                allow_export: self.allow_export.unwrap_or(true),
            }),
            ProviderKind::Tpm(_) => ProviderKind::Tpm(TpmConfig {
                tcti: self.tcti.ok_or_else(|| required("tcti"))?,
                owner_hierarchy_auth: self
                    .owner_hierarchy_auth
                    .ok_or_else(|| required("owner_hierarchy_auth"))?,
                endorsement_hierarchy_auth: self.endorsement_hierarchy_auth,
                skip_if_no_tpm: self.skip_if_no_tpm.unwrap_or(false),
            }),
            ProviderKind::CryptoAuthLib(_) => ProviderKind::CryptoAuthLib(CryptoAuthLibConfig {
                device_type: self.device_type.ok_or_else(|| required("device_type"))?,
                iface_type: self.iface_type.ok_or_else(|| required("iface_type"))?,
                wake_delay: self.wake_delay,
                rx_retries: self.rx_retries,
                slave_address: self.slave_address,
                bus: self.bus,
                baud: self.baud,
                access_key_file_name: self.access_key_file_name,
            }),
            ProviderKind::OpenSsl(_) => ProviderKind::OpenSsl(OpenSslConfig {
                kek_path: self.kek_path,
            }),
        };
        Ok(ProviderConfig {
            name: self.name,
            key_info_manager: self.key_info_manager,
            kind,
        })
    }
}

/// A table or an array of tables of `T`: `[authenticator]` as upstream writes it, or
/// `[[authenticator]]`.
struct OneOrMany<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableOrArray<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for TableOrArray<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table or an array of tables")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|one| OneOrMany(vec![one]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }
        }
        deserializer.deserialize_any(TableOrArray(std::marker::PhantomData))
    }
}

/// A serde error, with the key's path and the value's location.
fn type_error(text: &str, error: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    let mut key = String::new();
    for segment in error.path() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                let _ = write!(key, "[{index}]");
            }
            serde_path_to_error::Segment::Map { key: name } => push_key(&mut key, name),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    let inner = error.inner();
    let location = inner
        .span()
        .map(|span| Location::of_offset(text, span.start));
    let message = inner.message();
    // serde says "missing field `timeout`" at the table; name the key itself instead.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    match missing {
        Some(field) => {
            push_key(&mut key, field);
            ConfigError::Type {
                key,
                message: "this required key is missing".to_owned(),
                location,
            }
        }
        None => ConfigError::Type {
            key: if key.is_empty() { ".".to_owned() } else { key },
            message: plain_serde_message(message),
            location,
        },
    }
}

/// serde's wording with Rust names replaced by the file's notions.
fn plain_serde_message(message: &str) -> String {
    let message = match message.strip_prefix("unknown variant ") {
        Some(rest) => format!("unknown value {rest}"),
        None => message.to_owned(),
    };
    match message.find("expected struct ") {
        Some(at) => format!("{}expected a table", &message[..at]),
        None => message,
    }
}

/// Appends `.name` (or `name` at the start), quoting names that are not bare TOML keys.
fn push_key(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        path.push_str(name);
    } else {
        let _ = write!(path, "{name:?}");
    }
}

fn write_ignored_path(out: &mut String, path: &serde_ignored::Path<'_>) {
    match path {
        serde_ignored::Path::Root => {}
        serde_ignored::Path::Seq { parent, index } => {
            write_ignored_path(out, parent);
            let _ = write!(out, "[{index}]");
        }
        serde_ignored::Path::Map { parent, key } => {
            write_ignored_path(out, parent);
            push_key(out, key);
        }
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => write_ignored_path(out, parent),
    }
}

/// `provider_type`: the variant of [`ProviderKind`] it names, its settings still empty (they
/// are read next, by [`RawProvider::into_config`]). Read as serde reads a unit enum, with the
/// same messages at the same places.
fn provider_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ProviderKind, D::Error> {
    struct TypeVisitor;

    impl<'de> Visitor<'de> for TypeVisitor {
        type Value = ProviderKind;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a provider type")
        }

        fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<ProviderKind, A::Error> {
            let (kind, variant) = data.variant_seed(TypeName)?;
            de::VariantAccess::unit_variant(variant)?;
            Ok(kind)
        }
    }

    /// The name itself, looked up while it is read so that an error points at it.
    struct TypeName;

    impl<'de> de::DeserializeSeed<'de> for TypeName {
        type Value = ProviderKind;

        fn deserialize<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<ProviderKind, D::Error> {
            deserializer.deserialize_identifier(self)
        }
    }

    impl Visitor<'_> for TypeName {
        type Value = ProviderKind;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("variant identifier")
        }

        fn visit_str<E: de::Error>(self, name: &str) -> Result<ProviderKind, E> {
            ProviderKind::each_type()
                .into_iter()
                .find(|kind| kind.type_name() == name)
                .ok_or_else(|| {
                    let names: Vec<String> = ProviderKind::each_type()
                        .iter()
                        .map(|kind| format!("`{}`", kind.type_name()))
                        .collect();
                    E::custom(format_args!(
                        "unknown variant `{name}`, expected one of {}",
                        names.join(", ")
                    ))
                })
        }
    }

    deserializer.deserialize_enum("ProviderKind", &[], TypeVisitor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::config::testing::*;
    use crate::config::*;

    #[test]
    fn keys_of_other_types_and_nested_unknown_keys_are_reported() {
        let text = file(
            "",
            "listener_type = \"DomainSocket\"\ntimeout = 200\nbacklog = 5",
            "auth_type = \"Direct\"\nworkload_endpoint = \"unix:///x\"\nadmins = [{ name = \"a\", role = \"x\" }]",
            &format!(
                "{KM}\n[[provider]]\nprovider_type = \"MbedCrypto\"\nkey_info_manager = \"sqlite-manager\"\nlibrary_path = \"/x.so\"\n\"odd key\" = 1\n\n[extra]\nx = 1\n"
            ),
        );
        let config = Config::parse(&text).unwrap();
        assert_eq!(
            config.unknown_keys,
            [
                "authenticator.admins[0].role",
                "authenticator.workload_endpoint",
                "extra",
                "listener.backlog",
                "provider[0].\"odd key\"",
                "provider[0].library_path",
            ]
        );
    }

    #[test]
    fn syntax_errors_keep_line_and_column() {
        let e = err("[core_settings]\nallow_root = \n");
        let ConfigError::Syntax { location, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(location.map(|l| l.line), Some(2), "{e}");
        assert!(
            e.to_string()
                .starts_with("TOML syntax error (line 2, column"),
            "{e}"
        );
        assert_eq!(e.key(), None);

        let duplicate = err("[core_settings]\nallow_root = true\nallow_root = false\n");
        assert!(
            matches!(duplicate, ConfigError::Syntax { .. }),
            "{duplicate}"
        );
    }

    #[test]
    fn type_errors_name_the_key_and_place() {
        let text = with_providers(
            r#"
[[provider]]
provider_type = "Pkcs11"
key_info_manager = "sqlite-manager"
library_path = "/lib/p11.so"
slot_number = "one"
"#,
        );
        let e = err(&text);
        assert_eq!(e.key(), Some("provider[0].slot_number"), "{e}");
        let line = text
            .lines()
            .position(|l| l.starts_with("slot_number"))
            .unwrap()
            + 1;
        assert!(
            e.to_string().contains(&format!("(line {line}, column 15)")),
            "{e}"
        );
        assert!(e.to_string().contains("invalid type"), "{e}");

        let listener = "listener_type = \"DomainSocket\"\ntimeout = 1";
        assert_err(
            &file(
                "thread_pool_size = -1",
                listener,
                "auth_type = \"Direct\"",
                "",
            ),
            "core_settings.thread_pool_size",
            &["invalid value"],
        );
        assert_err(
            &file(
                "log_level = \"loud\"",
                listener,
                "auth_type = \"Direct\"",
                "",
            ),
            "core_settings.log_level",
            &["\"loud\"", "\"off\"", "\"trace\""],
        );
        assert_err(
            &file(
                "log_format = \"xml\"",
                "listener_type = \"DomainSocket\"\ntimeout = 1",
                "auth_type = \"Direct\"",
                "",
            ),
            "core_settings.log_format",
            &["`text`", "`json`"],
        );
    }

    #[test]
    fn missing_required_keys_are_named() {
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"",
                "auth_type = \"Direct\"",
                "",
            ),
            "listener.timeout",
            &["required key is missing"],
        );
        assert_err(
            "[listener]\nlistener_type = \"DomainSocket\"\ntimeout = 1\n",
            "core_settings",
            &["required key is missing"],
        );
        assert_err(
            &with_providers("[[provider]]\nprovider_type = \"MbedCrypto\"\n"),
            "provider[0].key_info_manager",
            &["required key is missing"],
        );
        assert_err(
            &with_providers(
                "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"sqlite-manager\"\n",
            ),
            "provider[0].library_path",
            &["required when provider_type is \"Pkcs11\""],
        );
        assert_err(
            &with_providers(
                "[[provider]]\nprovider_type = \"Tpm\"\nkey_info_manager = \"sqlite-manager\"\ntcti = \"device\"\n",
            ),
            "provider[0].owner_hierarchy_auth",
            &["required when provider_type is \"Tpm\""],
        );
        assert_err(
            &with_providers(
                "[[provider]]\nprovider_type = \"CryptoAuthLib\"\nkey_info_manager = \"sqlite-manager\"\ndevice_type = \"always-success\"\n",
            ),
            "provider[0].iface_type",
            &["required"],
        );
    }

    #[test]
    fn unknown_type_names_list_the_accepted_ones() {
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"\ntimeout = 1",
                "auth_type = \"Password\"",
                "",
            ),
            "authenticator.auth_type",
            &[
                "`Password`",
                "`Direct`",
                "`UnixPeerCredentials`",
                "`JwtSvid`",
            ],
        );
        assert_err(
            &file(
                "",
                "listener_type = \"Tcp\"\ntimeout = 1",
                "auth_type = \"Direct\"",
                "",
            ),
            "listener.listener_type",
            &["`Tcp`", "`DomainSocket`"],
        );
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"\ntimeout = 1",
                "auth_type = \"Direct\"",
                "[[key_manager]]\nname = \"k\"\nmanager_type = \"Redis\"\n",
            ),
            "key_manager[0].manager_type",
            &["`Redis`", "`SQLite`", "`OnDisk`"],
        );
        assert_err(
            &with_providers(
                "[[provider]]\nprovider_type = \"Hsm\"\nkey_info_manager = \"sqlite-manager\"\n",
            ),
            "provider[0].provider_type",
            &[
                "`Hsm`",
                "`MbedCrypto`",
                "`Pkcs11`",
                "`Tpm`",
                "`CryptoAuthLib`",
                "`TrustedService`",
                "`OpenSsl`",
            ],
        );
    }

    #[test]
    fn provider_type_errors_read_as_for_any_other_enum() {
        let at = |text: &str| {
            let line = text
                .lines()
                .position(|l| l.starts_with("provider_type"))
                .unwrap()
                + 1;
            format!("(line {line}, column 17)")
        };
        let text = with_providers(
            "[[provider]]\nprovider_type = \"Hsm\"\nkey_info_manager = \"sqlite-manager\"\n",
        );
        assert_eq!(
            err(&text).to_string(),
            format!(
                "provider[0].provider_type: unknown value `Hsm`, expected one of `MbedCrypto`, \
                 `Pkcs11`, `Tpm`, `CryptoAuthLib`, `TrustedService`, `OpenSsl` {}",
                at(&text)
            )
        );
        let text = with_providers(
            "[[provider]]\nprovider_type = 2\nkey_info_manager = \"sqlite-manager\"\n",
        );
        assert_eq!(
            err(&text).to_string(),
            format!(
                "provider[0].provider_type: wanted string or table {}",
                at(&text)
            )
        );
        // The name given as a table's key: the error points at the key.
        let text = with_providers(
            "[[provider]]\nprovider_type = { Hsm = 1 }\nkey_info_manager = \"sqlite-manager\"\n",
        );
        assert!(
            err(&text)
                .to_string()
                .ends_with(&at(&text).replace("column 17", "column 19")),
            "{}",
            err(&text)
        );
        // Names are exact, as for the other types.
        assert_err(
            &with_providers(
                "[[provider]]\nprovider_type = \"openssl\"\nkey_info_manager = \"sqlite-manager\"\n",
            ),
            "provider[0].provider_type",
            &["unknown value `openssl`"],
        );
    }
}
