//! PsaSignHash (0x0004): sign an already computed hash with a named key.

use psa_crypto::types::algorithm::AsymmetricSignature;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_sign_hash as proto;

/// Sign `hash` with the key `key_name` using `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the signing key, in the caller's namespace.
    pub key_name: String,
    /// Signature scheme; must be permitted by the key's policy.
    pub alg: AsymmetricSignature,
    /// The hash to sign; its length must match the hash named in `alg`.
    pub hash: Vec<u8>,
}

/// The signature, in the format of docs/protocol.md#output-sizes (`r ‖ s` for ECDSA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#signatures).
    ///
    /// # Errors
    /// `NotPermitted` when the key may not sign hashes, its policy does not permit `alg`, or
    /// `alg` does not fit the key type; `InvalidArgument` when the hash length is wrong.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_sign_hash()?;
        attributes.permits_alg(self.alg.into())?;
        attributes.compatible_with_alg(self.alg.into())?;
        if !self.alg.is_hash_len_permitted(self.hash.len()) {
            return Err(PsaError::InvalidArgument);
        }
        Ok(())
    }
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            key_name: op.key_name,
            alg: op
                .alg
                .ok_or(BodyError::InvalidEncoding("alg"))?
                .try_into()?,
            hash: op.hash,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            alg: Some(request.alg.into()),
            hash: request.hash,
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response {
            signature: result.signature,
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            signature: response.signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use psa_crypto::types::algorithm::{Hash, SignHash};

    use super::*;
    use crate::ops::{decode_request, encode_request, PsaSignHash};

    fn ecdsa_sha256() -> AsymmetricSignature {
        AsymmetricSignature::Ecdsa {
            hash_alg: SignHash::Specific(Hash::Sha256),
        }
    }

    #[test]
    fn encodes_as_psa_types_example() {
        let request = Request {
            key_name: "k".into(),
            alg: ecdsa_sha256(),
            hash: vec![0xAB; 32],
        };
        let body = encode_request::<PsaSignHash>(request.clone()).unwrap();
        let mut expected = hex::decode("0a016b120622040a0210071a20").unwrap();
        expected.extend([0xAB; 32]);
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(decode_request::<PsaSignHash>(&body).unwrap(), request);
    }

    #[test]
    fn missing_algorithm_is_invalid_encoding() {
        assert_eq!(
            decode_request::<PsaSignHash>(&[0x0a, 0x01, b'k']),
            Err(BodyError::InvalidEncoding("alg"))
        );
    }
}
