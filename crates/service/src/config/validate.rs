//! The rules serde cannot check: positive sizes, unique names, references that resolve,
//! well-formed secrets.

use std::collections::HashMap;

use bulwark_interface::ids::ProviderId;

use super::{Config, ConfigError};

impl Config {
    /// Checks the rules that serde cannot: positive sizes and timeout, JwtSvid endpoint, unique
    /// key manager and provider names, at least one provider, at most one of MbedCrypto and
    /// OpenSsl, `key_info_manager` naming a key manager, well-formed `hex:` secrets. Called by
    /// [`Config::parse`]; useful for configurations built in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let core = &self.core_settings;
        if self.listener.timeout == 0 {
            return Err(ConfigError::invalid(
                "listener.timeout",
                "must be greater than 0 (it is in milliseconds)",
            ));
        }
        for (key, value) in [
            ("body_len_limit", core.body_len_limit),
            ("thread_pool_size", core.thread_pool_size),
            ("max_connections", core.max_connections),
            ("max_requests_in_flight", core.max_requests_in_flight),
            ("max_key_name_len", core.max_key_name_len),
            ("max_keys_per_client", core.max_keys_per_client),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    format!("core_settings.{key}"),
                    "must be greater than 0",
                ));
            }
        }
        for (key, value) in [
            (
                "max_connections_per_client",
                core.max_connections_per_client,
            ),
            (
                "max_requests_in_flight_per_client",
                core.max_requests_in_flight_per_client,
            ),
        ] {
            if value == Some(0) {
                return Err(ConfigError::invalid(
                    format!("core_settings.{key}"),
                    "must be greater than 0",
                ));
            }
        }

        self.validate_authenticators()?;

        let mut km_names: HashMap<&str, usize> = HashMap::new();
        for (i, km) in self.key_manager.iter().enumerate() {
            if let Some(first) = km_names.insert(&km.name, i) {
                return Err(ConfigError::invalid(
                    format!("key_manager[{i}].name"),
                    format!(
                        "\"{}\" is already the name of key_manager[{first}]; key manager names \
                         must be unique",
                        km.name
                    ),
                ));
            }
        }

        if self.provider.is_empty() {
            return Err(ConfigError::invalid(
                "provider",
                "at least one [[provider]] is required",
            ));
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut id_one: Option<(usize, &str)> = None;
        for (i, provider) in self.provider.iter().enumerate() {
            let ty = provider.provider_type();
            let name = provider.name();
            if provider.name.is_some() && name.is_empty() {
                return Err(ConfigError::invalid(
                    format!("provider[{i}].name"),
                    "must not be empty",
                ));
            }
            if let Some(first) = names.insert(name, i) {
                let reason = match provider.name {
                    Some(_) => format!(
                        "\"{name}\" is already the name of provider[{first}]; provider names \
                         must be unique"
                    ),
                    None => format!(
                        "the default name \"{name}\" of provider_type \"{ty}\" is already the \
                         name of provider[{first}]; give this provider a distinct name, as \
                         provider names must be unique"
                    ),
                };
                return Err(ConfigError::invalid(format!("provider[{i}].name"), reason));
            }
            if provider.provider_id() == ProviderId::MbedCrypto {
                if let Some((first, first_ty)) = id_one {
                    return Err(ConfigError::invalid(
                        format!("provider[{i}].provider_type"),
                        format!(
                            "\"{ty}\" cannot be configured together with provider[{first}] \
                             (\"{first_ty}\"): both answer as provider id 1, so at most one \
                             MbedCrypto or OpenSsl provider is allowed"
                        ),
                    ));
                }
                id_one = Some((i, ty));
            }
            if self.key_manager_of(provider).is_none() {
                return Err(ConfigError::invalid(
                    format!("provider[{i}].key_info_manager"),
                    format!(
                        "names key manager \"{}\", but no [[key_manager]] has that name",
                        provider.key_info_manager
                    ),
                ));
            }
            provider.validate_secrets(i)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::config::testing::*;
    use crate::config::*;

    #[test]
    fn provider_names_must_be_unique() {
        let tpm = |name: &str| {
            format!(
                "[[provider]]\n{name}provider_type = \"Tpm\"\nkey_info_manager = \"sqlite-manager\"\ntcti = \"device\"\nowner_hierarchy_auth = \"\"\n"
            )
        };
        assert_err(
            &with_providers(&format!("{}{}", tpm(""), tpm(""))),
            "provider[1].name",
            &["default name \"tpm-provider\"", "provider[0]", "unique"],
        );
        assert_err(
            &with_providers(&format!(
                "{MBED}{}",
                tpm("name = \"mbed-crypto-provider\"\n")
            )),
            "provider[1].name",
            &["\"mbed-crypto-provider\" is already the name of provider[0]"],
        );
        assert_err(
            &with_providers(&tpm("name = \"\"\n")),
            "provider[0].name",
            &["must not be empty"],
        );
        // Same type, distinct names: accepted, like upstream.
        let two = Config::parse(&with_providers(&format!(
            "{}{}",
            tpm(""),
            tpm("name = \"tpm2\"\n")
        )))
        .unwrap();
        assert_eq!(two.provider[1].name(), "tpm2");
    }

    #[test]
    fn at_least_one_provider() {
        assert_err(
            &with_providers(""),
            "provider",
            &["at least one [[provider]] is required"],
        );
    }

    #[test]
    fn mbed_crypto_and_openssl_exclude_each_other() {
        let openssl =
            "[[provider]]\nprovider_type = \"OpenSsl\"\nkey_info_manager = \"sqlite-manager\"\n";
        assert_err(
            &with_providers(&format!("{MBED}{openssl}")),
            "provider[1].provider_type",
            &[
                "\"OpenSsl\"",
                "provider[0] (\"MbedCrypto\")",
                "provider id 1",
            ],
        );
        assert_err(
            &with_providers(&format!("{MBED}name = \"one\"\n{MBED}name = \"two\"\n")),
            "provider[1].provider_type",
            &["provider id 1"],
        );
    }

    #[test]
    fn key_info_manager_must_exist() {
        let e = err(&with_providers(
            "[[provider]]\nprovider_type = \"MbedCrypto\"\nkey_info_manager = \"foo\"\n",
        ));
        assert_eq!(
            e.to_string(),
            "provider[0].key_info_manager: names key manager \"foo\", but no [[key_manager]] \
             has that name"
        );
        assert_err(
            &format!("{}{KM}", with_providers(MBED)),
            "key_manager[1].name",
            &["\"sqlite-manager\" is already the name of key_manager[0]"],
        );
    }

    #[test]
    fn sizes_and_timeout_must_be_positive() {
        let listener = "listener_type = \"DomainSocket\"\ntimeout = 1";
        let rest = format!("{KM}{MBED}");
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"\ntimeout = 0",
                "auth_type = \"Direct\"",
                &rest,
            ),
            "listener.timeout",
            &["greater than 0"],
        );
        for key in [
            "body_len_limit",
            "thread_pool_size",
            "max_connections",
            "max_requests_in_flight",
        ] {
            assert_err(
                &file(
                    &format!("{key} = 0"),
                    listener,
                    "auth_type = \"Direct\"",
                    &rest,
                ),
                &format!("core_settings.{key}"),
                &["greater than 0"],
            );
        }
    }

    #[test]
    fn malformed_hex_secrets_are_refused_without_showing_them() {
        let e = err(&with_providers(
            "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"sqlite-manager\"\nlibrary_path = \"/p.so\"\nuser_pin = \"hex:12345\"\n",
        ));
        assert_eq!(e.key(), Some("provider[0].user_pin"));
        assert!(!e.to_string().contains("12345"), "{e}");
    }
}
