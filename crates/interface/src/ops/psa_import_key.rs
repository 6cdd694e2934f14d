//! PsaImportKey (0x0006): store caller-supplied key material under a name, with attributes.

use psa_crypto::types::key::Attributes;

use crate::error::BodyError;
use crate::proto::psa_import_key as proto;
use crate::secret::SecretBytes;

/// Import `data` as the key `key_name` with `attributes`.
///
/// Deprecated primitives are not refused here: the service only logs a warning for them (see
/// [`crate::ops::psa_generate_key::uses_deprecated_primitive`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the new key, in the caller's namespace.
    pub key_name: String,
    /// Type, size and policy; `bits` 0 means "take the size from the data".
    pub attributes: Attributes,
    /// The key material, in the import format of docs/protocol.md#key-data-formats.
    pub data: SecretBytes,
}

/// PsaImportKey returns nothing; the status says it all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response;

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            key_name: op.key_name,
            attributes: op
                .attributes
                .ok_or(BodyError::InvalidEncoding("attributes"))?
                .try_into()?,
            data: SecretBytes::new(op.data),
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(mut request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            attributes: Some(request.attributes.try_into()?),
            data: request.data.take(),
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(_: proto::Result) -> Result<Self, BodyError> {
        Ok(Response)
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(_: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {})
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::{Algorithm, Cipher};
    use psa_crypto::types::key::{Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaImportKey,
    };

    fn aes_key() -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_encrypt().set_decrypt();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::Aes,
            bits: 0,
            policy: Policy {
                usage_flags,
                permitted_algorithms: Algorithm::Cipher(Cipher::Ctr),
            },
        }
    }

    #[test]
    fn request_round_trips_with_key_material() {
        let request = Request {
            key_name: "imported".into(),
            attributes: aes_key(),
            data: SecretBytes::new(vec![0x5a; 16]),
        };
        let body = encode_request::<PsaImportKey>(request.clone()).unwrap();
        let proto = proto::Operation::decode(body.as_slice()).unwrap();
        assert_eq!(proto.key_name, "imported");
        assert_eq!(proto.data, vec![0x5a; 16]);
        // key_bits 0 ("from the data") is kept, so it is absent on the wire.
        assert_eq!(proto.attributes.unwrap().key_bits, 0);
        assert_eq!(decode_request::<PsaImportKey>(&body).unwrap(), request);
    }

    #[test]
    fn key_material_is_not_shown_by_debug() {
        let request = Request {
            key_name: "k".into(),
            attributes: aes_key(),
            data: SecretBytes::new(b"top-secret-bytes".to_vec()),
        };
        let shown = format!("{request:?}");
        assert!(
            !shown.contains("top-secret") && shown.contains("16 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn missing_attributes_are_invalid_encoding() {
        let body = proto::Operation {
            key_name: "k".into(),
            attributes: None,
            data: vec![1],
        }
        .encode_to_vec();
        assert_eq!(
            decode_request::<PsaImportKey>(&body),
            Err(BodyError::InvalidEncoding("attributes"))
        );
    }

    #[test]
    fn response_is_an_empty_body() {
        assert!(encode_response::<PsaImportKey>(Response)
            .unwrap()
            .is_empty());
        assert_eq!(decode_response::<PsaImportKey>(&[]), Ok(Response));
    }
}
