//! `[[provider]]`: the back ends that hold keys and do the cryptography, one variant of
//! [`ProviderKind`] per `provider_type`, with the keys each type reads.

use std::path::PathBuf;

use bulwark_interface::ids::ProviderId;

use super::{ConfigError, KeyManagerConfig, SecretString};

/// File name of the OpenSSL provider's key-encryption key when `kek_path` is not given; the file
/// lives next to the store of the provider's key manager ([`OpenSslConfig::kek_path_or_default`]).
pub const DEFAULT_KEK_FILE_NAME: &str = "openssl-provider.kek";

/// One `[[provider]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The name given in the file, if any; see [`ProviderConfig::name`] for the effective one.
    pub name: Option<String>,
    /// The `[[key_manager]]` holding this provider's key mappings.
    pub key_info_manager: String,
    /// `provider_type` and the keys specific to it.
    pub kind: ProviderKind,
}

impl ProviderConfig {
    /// The effective name: the configured one, or the type's default. Part of every key's
    /// identity.
    pub fn name(&self) -> &str {
        self.name
            .as_deref()
            .unwrap_or_else(|| self.kind.default_name())
    }

    /// `provider_type`, as the file names it.
    pub fn provider_type(&self) -> &'static str {
        self.kind.type_name()
    }

    /// The provider id requests use to address this provider.
    pub fn provider_id(&self) -> ProviderId {
        self.kind.provider_id()
    }
}

/// `provider_type` with the keys specific to each type: the one list of provider types.
///
/// Everything else about a type (its name in the file, its default provider name, its
/// provider id, the keys it reads) is a method of this enum, so a new type is one variant
/// here and the arms the compiler then asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// Mbed Crypto (PSA Crypto reference implementation); no keys of its own.
    MbedCrypto,
    /// A PKCS #11 token.
    Pkcs11(Pkcs11Config),
    /// A TPM 2.0.
    Tpm(TpmConfig),
    /// Microchip ATECCx08 through CryptoAuthLib.
    CryptoAuthLib(CryptoAuthLibConfig),
    /// The Crypto Trusted Service; no keys of its own.
    TrustedService,
    /// Bulwark's OpenSSL software provider (answers as provider id 1, like Mbed Crypto).
    OpenSsl(OpenSslConfig),
}

/// Keys of a `Pkcs11` provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Config {
    /// The PKCS #11 library (required).
    pub library_path: PathBuf,
    /// The slot to use.
    pub slot_number: Option<u64>,
    /// Serial number of the token to use (preferred over `slot_number`).
    pub serial_number: Option<String>,
    /// The user PIN (`str:`/`hex:` prefixes allowed); `None` → sessions are not logged in.
    pub user_pin: Option<SecretString>,
    /// Do public-key operations (verify, encrypt) in software. Default false.
    pub software_public_operations: bool,
    /// Allow keys with the export flag. Default true.
    pub allow_export: bool,
}

/// Keys of a `Tpm` provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmConfig {
    /// The TCTI, e.g. `device:/dev/tpmrm0`, `mssim:host=localhost,port=2321` (required).
    pub tcti: String,
    /// Owner hierarchy auth value (required, may be empty; `str:`/`hex:` prefixes allowed).
    pub owner_hierarchy_auth: SecretString,
    /// Endorsement hierarchy auth value, for attestation with the EK.
    pub endorsement_hierarchy_auth: Option<SecretString>,
    /// Leave the provider out silently when the TCTI cannot be opened. Default false.
    pub skip_if_no_tpm: bool,
}

/// Keys of a `CryptoAuthLib` provider. Values are passed to the library as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAuthLibConfig {
    /// `atecc508a`, `atecc608a`, `always-fail`, `always-success` or `fail-unimplemented`
    /// (required).
    pub device_type: String,
    /// `i2c` or `test-interface` (required).
    pub iface_type: String,
    /// Wake delay.
    pub wake_delay: Option<u16>,
    /// Receive retries.
    pub rx_retries: Option<i32>,
    /// I²C address.
    pub slave_address: Option<u8>,
    /// I²C bus.
    pub bus: Option<u8>,
    /// Bus speed.
    pub baud: Option<u32>,
    /// File of slot access keys.
    pub access_key_file_name: Option<PathBuf>,
}

/// Keys of Bulwark's `OpenSsl` provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenSslConfig {
    /// The key-encryption-key file; `None` → [`DEFAULT_KEK_FILE_NAME`] next to the key
    /// manager's store (see [`OpenSslConfig::kek_path_or_default`]).
    pub kek_path: Option<PathBuf>,
}

impl OpenSslConfig {
    /// `kek_path`, or [`DEFAULT_KEK_FILE_NAME`] in the directory of `key_manager`'s store (the
    /// SQLite database's directory; for OnDisk, the directory containing the mapping
    /// directory).
    pub fn kek_path_or_default(&self, key_manager: &KeyManagerConfig) -> PathBuf {
        match &self.kek_path {
            Some(path) => path.clone(),
            None => key_manager.store_dir().join(DEFAULT_KEK_FILE_NAME),
        }
    }
}

impl ProviderKind {
    /// One provider of each type, in the order of the documentation, its settings empty
    /// (a required path or TCTI is empty): what `provider_type` names before the type's own
    /// keys are read, and the list of the names accepted.
    pub(super) fn each_type() -> [ProviderKind; 6] {
        [
            ProviderKind::MbedCrypto,
            ProviderKind::Pkcs11(Pkcs11Config {
                library_path: PathBuf::new(),
                slot_number: None,
                serial_number: None,
                user_pin: None,
                software_public_operations: false,
                allow_export: true,
            }),
            ProviderKind::Tpm(TpmConfig {
                tcti: String::new(),
                owner_hierarchy_auth: SecretString::default(),
                endorsement_hierarchy_auth: None,
                skip_if_no_tpm: false,
            }),
            ProviderKind::CryptoAuthLib(CryptoAuthLibConfig {
                device_type: String::new(),
                iface_type: String::new(),
                wake_delay: None,
                rx_retries: None,
                slave_address: None,
                bus: None,
                baud: None,
                access_key_file_name: None,
            }),
            ProviderKind::TrustedService,
            ProviderKind::OpenSsl(OpenSslConfig::default()),
        ]
    }

    /// The type's name in the file (`provider_type`).
    pub const fn type_name(&self) -> &'static str {
        match self {
            ProviderKind::MbedCrypto => "MbedCrypto",
            ProviderKind::Pkcs11(_) => "Pkcs11",
            ProviderKind::Tpm(_) => "Tpm",
            ProviderKind::CryptoAuthLib(_) => "CryptoAuthLib",
            ProviderKind::TrustedService => "TrustedService",
            ProviderKind::OpenSsl(_) => "OpenSsl",
        }
    }

    /// The provider name used when `name` is not given.
    pub const fn default_name(&self) -> &'static str {
        match self {
            ProviderKind::MbedCrypto => "mbed-crypto-provider",
            ProviderKind::Pkcs11(_) => "pkcs11-provider",
            ProviderKind::Tpm(_) => "tpm-provider",
            ProviderKind::CryptoAuthLib(_) => "cryptoauthlib-provider",
            ProviderKind::TrustedService => "trusted-service-provider",
            ProviderKind::OpenSsl(_) => "openssl-provider",
        }
    }

    /// The provider id: MbedCrypto and OpenSsl both answer as id 1.
    pub const fn provider_id(&self) -> ProviderId {
        match self {
            ProviderKind::MbedCrypto | ProviderKind::OpenSsl(_) => ProviderId::MbedCrypto,
            ProviderKind::Pkcs11(_) => ProviderId::Pkcs11,
            ProviderKind::Tpm(_) => ProviderId::Tpm,
            ProviderKind::TrustedService => ProviderId::TrustedService,
            ProviderKind::CryptoAuthLib(_) => ProviderId::CryptoAuthLib,
        }
    }

    /// The keys this type reads besides `provider_type`, `name` and `key_info_manager`.
    pub const fn specific_keys(&self) -> &'static [&'static str] {
        match self {
            ProviderKind::MbedCrypto | ProviderKind::TrustedService => &[],
            ProviderKind::Pkcs11(_) => &[
                "library_path",
                "slot_number",
                "serial_number",
                "user_pin",
                "software_public_operations",
                "allow_export",
            ],
            ProviderKind::Tpm(_) => &[
                "tcti",
                "owner_hierarchy_auth",
                "endorsement_hierarchy_auth",
                "skip_if_no_tpm",
            ],
            ProviderKind::CryptoAuthLib(_) => &[
                "device_type",
                "iface_type",
                "wake_delay",
                "rx_retries",
                "slave_address",
                "bus",
                "baud",
                "access_key_file_name",
            ],
            ProviderKind::OpenSsl(_) => &["kek_path"],
        }
    }
}

impl ProviderConfig {
    pub(super) fn validate_secrets(&self, index: usize) -> Result<(), ConfigError> {
        let secrets: Vec<(&str, &SecretString)> = match &self.kind {
            ProviderKind::Pkcs11(p) => p.user_pin.iter().map(|s| ("user_pin", s)).collect(),
            ProviderKind::Tpm(t) => {
                std::iter::once(("owner_hierarchy_auth", &t.owner_hierarchy_auth))
                    .chain(
                        t.endorsement_hierarchy_auth
                            .iter()
                            .map(|s| ("endorsement_hierarchy_auth", s)),
                    )
                    .collect()
            }
            _ => Vec::new(),
        };
        for (key, secret) in secrets {
            if let Err(e) = secret.decode() {
                return Err(ConfigError::invalid(
                    format!("provider[{index}].{key}"),
                    e.to_string(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use bulwark_interface::ids::ProviderId;

    use crate::config::testing::*;
    use crate::config::*;

    #[test]
    fn openssl_provider_and_its_kek_path() {
        let config = Config::parse(&with_providers(
            r#"
[[provider]]
provider_type = "OpenSsl"
key_info_manager = "sqlite-manager"
"#,
        ))
        .unwrap();
        let provider = &config.provider[0];
        assert_eq!(provider.name(), "openssl-provider");
        assert_eq!(provider.provider_id(), ProviderId::MbedCrypto);
        let ProviderKind::OpenSsl(openssl) = &provider.kind else {
            panic!("not OpenSSL")
        };
        let km = config.key_manager_of(provider).unwrap();
        assert_eq!(
            openssl.kek_path_or_default(km),
            Path::new("/var/lib/parsec/kim-mappings/sqlite/openssl-provider.kek")
        );

        let explicit = Config::parse(&with_providers(
            r#"
[[provider]]
provider_type = "OpenSsl"
key_info_manager = "sqlite-manager"
kek_path = "/etc/bulwark/kek"
"#,
        ))
        .unwrap();
        let ProviderKind::OpenSsl(openssl) = &explicit.provider[0].kind else {
            panic!("not OpenSSL")
        };
        assert_eq!(
            openssl.kek_path.as_deref(),
            Some(Path::new("/etc/bulwark/kek"))
        );
    }

    /// `each_type` is written by hand; this match is exhaustive, so a new provider type does
    /// not compile until it has a place here, and then fails until `each_type` has it too.
    #[test]
    fn each_type_lists_every_provider_type_once() {
        let place = |kind: &ProviderKind| match kind {
            ProviderKind::MbedCrypto => 0,
            ProviderKind::Pkcs11(_) => 1,
            ProviderKind::Tpm(_) => 2,
            ProviderKind::CryptoAuthLib(_) => 3,
            ProviderKind::TrustedService => 4,
            ProviderKind::OpenSsl(_) => 5,
        };
        let places: Vec<usize> = ProviderKind::each_type().iter().map(place).collect();
        assert_eq!(places, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn provider_ids_follow_the_spec() {
        let ids: Vec<(&str, u8)> = ProviderKind::each_type()
            .iter()
            .map(|kind| (kind.type_name(), kind.provider_id().value()))
            .collect();
        assert_eq!(
            ids,
            [
                ("MbedCrypto", 1),
                ("Pkcs11", 2),
                ("Tpm", 3),
                ("CryptoAuthLib", 5),
                ("TrustedService", 4),
                ("OpenSsl", 1),
            ]
        );
    }
}
