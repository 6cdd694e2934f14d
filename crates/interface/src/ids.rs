//! Provider ids, authenticator types and body types: the small enums of the fixed header.

use std::fmt;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident : $repr:ty { $($(#[$vdoc:meta])* $variant:ident = $value:literal => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr($repr)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $value,)*
        }

        impl $name {
            /// Every defined value, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The value carried on the wire.
            pub const fn value(self) -> $repr {
                self as $repr
            }

            /// A short human name.
            pub const fn display_name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = $repr;
            /// Fails with the value itself when it is not defined.
            fn try_from(value: $repr) -> Result<Self, $repr> {
                match value {
                    $($value => Ok($name::$variant),)*
                    other => Err(other),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.display_name())
            }
        }
    };
}

wire_enum! {
    /// The provider a request is addressed to (header byte 10).
    ProviderId: u8 {
        /// Service discovery and administration; always present.
        Core = 0 => "Core provider",
        /// Software provider. Mbed Crypto answers as this id, and so does the OpenSSL provider.
        MbedCrypto = 1 => "Mbed Crypto provider",
        /// PKCS #11 token.
        Pkcs11 = 2 => "PKCS #11 provider",
        /// TPM 2.0.
        Tpm = 3 => "TPM provider",
        /// Crypto Trusted Service in a TEE.
        TrustedService = 4 => "Trusted Service provider",
        /// Microchip ATECCx08 through CryptoAuthLib.
        CryptoAuthLib = 5 => "CryptoAuthentication Library provider",
    }
}

wire_enum! {
    /// How the auth bytes of a request are to be read (header byte 21).
    AuthType: u8 {
        /// No authentication: the request carries no identity.
        NoAuth = 0 => "No authentication",
        /// The auth bytes are the application name in UTF-8.
        Direct = 1 => "Direct",
        /// JSON Web Token; defined but served by no authenticator.
        Jwt = 2 => "JWT",
        /// The auth bytes are the caller's uid, checked against the socket peer.
        UnixPeerCredentials = 3 => "Unix peer credentials",
        /// A JWT SPIFFE Verifiable Identity Document.
        JwtSvid = 4 => "JWT-SVID",
    }
}

wire_enum! {
    /// Encoding of a body (header bytes 19 and 20).
    BodyType: u8 {
        /// Protocol Buffers (proto3), the only encoding defined.
        Protobuf = 0 => "Protobuf",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_cover_zero_to_five_only() {
        for v in 0..=5u8 {
            assert_eq!(ProviderId::try_from(v).map(ProviderId::value), Ok(v));
        }
        assert_eq!(ProviderId::try_from(6), Err(6));
        assert_eq!(ProviderId::try_from(255), Err(255));
    }

    #[test]
    fn auth_types_cover_zero_to_four_only() {
        assert_eq!(AuthType::try_from(3), Ok(AuthType::UnixPeerCredentials));
        assert_eq!(AuthType::try_from(5), Err(5));
    }

    #[test]
    fn only_protobuf_bodies_exist() {
        assert_eq!(BodyType::try_from(0), Ok(BodyType::Protobuf));
        assert_eq!(BodyType::try_from(1), Err(1));
    }
}
