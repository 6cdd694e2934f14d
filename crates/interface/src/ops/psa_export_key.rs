//! PsaExportKey (0x000C): the key material of a named key: a public key always, a key pair or
//! secret key when its policy allows export.

use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_export_key as proto;
use crate::secret::SecretBytes;

/// Export the key `key_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the key, in the caller's namespace.
    pub key_name: String,
}

/// The key material, in the export format of docs/protocol.md#key-data-formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The exported key; private key material for key pairs and symmetric keys.
    pub data: SecretBytes,
}

impl Request {
    /// The policy check that needs the key's attributes (docs/protocol.md#key-management).
    ///
    /// A public key's data is never secret: exporting it needs no usage flag (the PSA rule).
    /// Key pairs and secret keys need the `export` flag.
    ///
    /// # Errors
    /// `NotPermitted` when the key is not a public key and its usage flags do not include
    /// `export`.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        if attributes.key_type.is_public_key() {
            return Ok(());
        }
        attributes.can_export()
    }
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            key_name: op.key_name,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response {
            data: SecretBytes::new(result.data),
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(mut response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            data: response.data.take(),
        })
    }
}

#[cfg(test)]
mod tests {
    use psa_crypto::types::algorithm::{Algorithm, Cipher};
    use psa_crypto::types::key::{Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaExportKey,
    };

    fn aes_key(usage_flags: UsageFlags) -> Attributes {
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::Aes,
            bits: 128,
            policy: Policy {
                usage_flags,
                permitted_algorithms: Algorithm::Cipher(Cipher::Ctr),
            },
        }
    }

    fn request() -> Request {
        Request {
            key_name: "k".into(),
        }
    }

    #[test]
    fn request_and_response_round_trip() {
        let body = encode_request::<PsaExportKey>(request()).unwrap();
        assert_eq!(body.as_slice(), b"\x0a\x01k");
        assert_eq!(decode_request::<PsaExportKey>(&body).unwrap(), request());

        let response = Response {
            data: SecretBytes::new(vec![7; 16]),
        };
        let body = encode_response::<PsaExportKey>(response.clone()).unwrap();
        assert_eq!(&body[..2], [0x0a, 0x10]);
        assert_eq!(decode_response::<PsaExportKey>(&body).unwrap(), response);
    }

    #[test]
    fn exported_material_is_not_shown_by_debug() {
        let response = Response {
            data: SecretBytes::new(b"private-scalar".to_vec()),
        };
        let shown = format!("{response:?}");
        assert!(!shown.contains("private-scalar"), "{shown}");
    }

    #[test]
    fn export_flag_permits_export() {
        let mut flags = UsageFlags::default();
        flags.set_export();
        assert_eq!(request().validate(aes_key(flags)), Ok(()));
    }

    #[test]
    fn without_export_flag_export_is_not_permitted() {
        let mut flags = UsageFlags::default();
        flags.set_encrypt().set_decrypt().set_copy().set_cache();
        assert_eq!(
            request().validate(aes_key(flags)),
            Err(PsaError::NotPermitted)
        );
        assert_eq!(
            request().validate(aes_key(UsageFlags::default())),
            Err(PsaError::NotPermitted)
        );
    }
}
