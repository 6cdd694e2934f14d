//! ListKeys (0x001A): every key the caller owns, across the crypto providers.

use psa_crypto::types::key::Attributes;

use crate::error::BodyError;
use crate::ids::ProviderId;
use crate::proto::list_keys as proto;

/// The caller's identity selects the keys; an optional pattern (a Bulwark extension, which
/// upstream services ignore) keeps those whose names match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Only keys whose names match; `None`: every key.
    pub pattern: Option<KeyPattern>,
}

/// Longest pattern accepted, in bytes (a key name is at most as long in every configuration
/// that keeps the default name limit of 1024 bytes; a longer pattern could match nothing more).
pub const MAX_PATTERN_LEN: usize = 4096;

/// Most wildcards (runs of `*`) a pattern may hold: a few are all a path needs, and each one
/// multiplies the states a name may be matched in.
pub const MAX_PATTERN_WILDCARDS: usize = 16;

/// A pattern over key names shaped like paths: `*` matches any run of characters within one
/// segment (no `/`), `**` any run across segments, every other character itself; the whole name
/// must match. `/keys/rsa/*` matches `/keys/rsa/signing` but not `/keys/rsa/old/signing`, which
/// `/keys/**` matches.
///
/// Matching takes time linear in the name whatever the pattern (a compiled automaton, never
/// backtracking), so a pattern cannot make a listing slow.
#[derive(Clone)]
pub struct KeyPattern {
    text: String,
    regex: regex::bytes::Regex,
}

impl KeyPattern {
    /// Compiles `text`.
    ///
    /// # Errors
    /// [`BodyError::InvalidEncoding`] (`pattern`) when it is longer than [`MAX_PATTERN_LEN`]
    /// or holds more than [`MAX_PATTERN_WILDCARDS`] wildcards.
    pub fn new(text: &str) -> Result<Self, BodyError> {
        let wildcards = text
            .split(|c| c != '*')
            .filter(|run| !run.is_empty())
            .count();
        if text.len() > MAX_PATTERN_LEN || wildcards > MAX_PATTERN_WILDCARDS {
            return Err(BodyError::InvalidEncoding("pattern"));
        }
        // Bytes, not characters: `/` is never part of a longer UTF-8 sequence, so a byte
        // automaton matches the same names and stays small for any pattern.
        let mut source = String::from(r"\A(?s-u:");
        let mut rest = text;
        while !rest.is_empty() {
            let stars = rest.len() - rest.trim_start_matches('*').len();
            if stars > 0 {
                // A run of stars is one wildcard: across segments if it holds `**`.
                source.push_str(if stars >= 2 { ".*" } else { "[^/]*" });
                rest = &rest[stars..];
            } else {
                let end = rest.find('*').unwrap_or(rest.len());
                source.push_str(&regex::escape(&rest[..end]));
                rest = &rest[end..];
            }
        }
        source.push_str(r")\z");
        let regex = regex::bytes::RegexBuilder::new(&source)
            .unicode(false)
            .size_limit(1 << 20)
            .build()
            .map_err(|_| BodyError::InvalidEncoding("pattern"))?;
        Ok(KeyPattern {
            text: text.to_owned(),
            regex,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name.as_bytes())
    }
}

impl std::fmt::Debug for KeyPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyPattern").field(&self.text).finish()
    }
}

impl PartialEq for KeyPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for KeyPattern {}

/// The caller's keys, grouped by provider in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// One entry per key.
    pub keys: Vec<KeyInfo>,
}

/// One key of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The provider holding the key.
    pub provider_id: ProviderId,
    /// The key's name in the caller's namespace.
    pub name: String,
    /// The attributes recorded when the key was created.
    pub attributes: Attributes,
}

impl KeyInfo {
    /// The bytes this entry adds to an encoded ListKeys answer, without encoding it: a service
    /// can stop building an answer as soon as it would outgrow its limit.
    pub fn encoded_len(&self) -> usize {
        use prost::encoding::encoded_len_varint;
        use prost::Message;

        let without_name = proto::KeyInfo {
            provider_id: self.provider_id.value().into(),
            name: String::new(),
            attributes: self.attributes.try_into().ok(),
        }
        .encoded_len();
        let name = self.name.len();
        let name_field = if name == 0 {
            0
        } else {
            1 + encoded_len_varint(name as u64) + name
        };
        let entry = without_name + name_field;
        1 + encoded_len_varint(entry as u64) + entry
    }
}

impl TryFrom<proto::KeyInfo> for KeyInfo {
    type Error = BodyError;
    fn try_from(info: proto::KeyInfo) -> Result<Self, BodyError> {
        let provider_id = u8::try_from(info.provider_id)
            .ok()
            .and_then(|v| ProviderId::try_from(v).ok())
            .ok_or(BodyError::ProviderDoesNotExist(info.provider_id))?;
        // Optional in proto3, but a key without attributes tells the client nothing usable.
        let attributes = info
            .attributes
            .ok_or(BodyError::InvalidEncoding("attributes"))?;
        Ok(KeyInfo {
            provider_id,
            name: info.name,
            attributes: attributes.try_into()?,
        })
    }
}

impl TryFrom<KeyInfo> for proto::KeyInfo {
    type Error = BodyError;
    fn try_from(info: KeyInfo) -> Result<Self, BodyError> {
        Ok(proto::KeyInfo {
            provider_id: info.provider_id.value().into(),
            name: info.name,
            attributes: Some(info.attributes.try_into()?),
        })
    }
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(operation: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            pattern: operation
                .pattern
                .as_deref()
                .map(KeyPattern::new)
                .transpose()?,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            pattern: request.pattern.map(|pattern| pattern.text),
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        let keys = result
            .keys
            .into_iter()
            .map(KeyInfo::try_from)
            .collect::<Result<_, _>>()?;
        Ok(Response { keys })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        let keys = response
            .keys
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?;
        Ok(proto::Result { keys })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::{Algorithm, AsymmetricSignature, Hash};
    use psa_crypto::types::key::{EccFamily, Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{decode_request, decode_response, encode_request, encode_response, ListKeys};

    /// Response line of `testdata/vectors/direct-11-list-keys.hex`.
    const CAPTURED_RESPONSE: &str = "10a7c05e1e00010000000000000000000000000000003100000000001a000000000000000a2f0801120a766563746f722d6b65791a1f0a045a0208021080021a140a0830013801400148011208320622040a021007";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    /// The ECC P-256 ECDSA-SHA-256 signing key `parsec-tool create-ecc-key` makes.
    fn ecc_p256_signing_key() -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_sign_hash().set_verify_hash();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            },
            bits: 256,
            policy: Policy {
                usage_flags,
                permitted_algorithms: Algorithm::AsymmetricSignature(AsymmetricSignature::Ecdsa {
                    hash_alg: Hash::Sha256.into(),
                }),
            },
        }
    }

    #[test]
    fn captured_response_decodes_and_re_encodes_identically() {
        let body = captured_body(CAPTURED_RESPONSE);
        let response = decode_response::<ListKeys>(&body).unwrap();
        assert_eq!(
            response.keys,
            vec![KeyInfo {
                provider_id: ProviderId::MbedCrypto,
                name: "vector-key".into(),
                attributes: ecc_p256_signing_key(),
            }]
        );
        assert_eq!(
            encode_response::<ListKeys>(response).unwrap().as_slice(),
            body.as_slice()
        );
    }

    #[test]
    fn empty_list_and_empty_request_are_empty_bodies() {
        let body = encode_response::<ListKeys>(Response { keys: vec![] }).unwrap();
        assert!(body.is_empty());
        assert_eq!(decode_response::<ListKeys>(&body).unwrap().keys, vec![]);
        assert!(encode_request::<ListKeys>(Request::default())
            .unwrap()
            .is_empty());
        assert_eq!(decode_request::<ListKeys>(&[]), Ok(Request::default()));
    }

    fn matches(pattern: &str, name: &str) -> bool {
        KeyPattern::new(pattern).unwrap().matches(name)
    }

    #[test]
    fn one_star_stays_in_its_segment_two_cross_segments() {
        assert!(matches("/keys/rsa/*", "/keys/rsa/signing"));
        assert!(matches("/keys/rsa/*", "/keys/rsa/"));
        assert!(!matches("/keys/rsa/*", "/keys/rsa/old/signing"));
        assert!(!matches("/keys/rsa/*", "/keys/ecc/signing"));
        assert!(matches("/keys/**", "/keys/rsa/old/signing"));
        assert!(matches("**", "any/thing\nat all"));
        assert!(matches("/keys/*/signing", "/keys/ecc/signing"));
        assert!(!matches("/keys/*/signing", "/keys/ecc/p256/signing"));
        assert!(matches("/keys/**/signing", "/keys/ecc/p256/signing"));
        assert!(matches("dev-*-key", "dev-42-key"));
        assert!(!matches("dev-*-key", "dev-4/2-key"));
    }

    #[test]
    fn everything_else_matches_itself_and_the_whole_name_must_match() {
        assert!(matches("a.b+(c)?[d]{1}|^$\\", "a.b+(c)?[d]{1}|^$\\"));
        assert!(!matches("a.b", "axb"));
        assert!(!matches("key", "key2"));
        assert!(!matches("key", "my-key"));
        assert!(matches("", ""));
        assert!(!matches("", "k"));
        assert!(matches("ключ/*", "ключ/é"));
        assert!(!matches("ключ/*", "ключ/é/x"));
        // Runs of stars: one wildcard, across segments as soon as two are together.
        assert!(matches("a***b", "a/x/b"));
        assert!(matches("a**", "a/x"));
    }

    #[test]
    fn patterns_travel_in_field_1_and_a_long_one_is_refused() {
        let request = Request {
            pattern: Some(KeyPattern::new("/keys/*").unwrap()),
        };
        let body = encode_request::<ListKeys>(request.clone()).unwrap();
        assert_eq!(*body, [&[0x0a, 7][..], b"/keys/*"].concat());
        assert_eq!(decode_request::<ListKeys>(&body), Ok(request));
        let long = "*".repeat(MAX_PATTERN_LEN + 1);
        assert_eq!(
            KeyPattern::new(&long).unwrap_err(),
            BodyError::InvalidEncoding("pattern")
        );
        assert!(KeyPattern::new(&"*".repeat(MAX_PATTERN_LEN)).is_ok());
        let many = "*a".repeat(MAX_PATTERN_WILDCARDS);
        assert!(KeyPattern::new(&many).is_ok());
        assert_eq!(
            KeyPattern::new(&format!("{many}*")).unwrap_err(),
            BodyError::InvalidEncoding("pattern")
        );
        // The largest pattern allowed still compiles and matches.
        let widest = format!("{}{}", "*é".repeat(MAX_PATTERN_WILDCARDS), "x".repeat(4000));
        let widest = KeyPattern::new(&widest).unwrap();
        assert!(!widest.matches(&"é".repeat(1000)));
        assert!(widest.matches(&format!("{}{}", "é".repeat(20), "x".repeat(4000))));
    }

    #[test]
    fn missing_attributes_are_invalid_encoding() {
        let body = proto::Result {
            keys: vec![proto::KeyInfo {
                provider_id: 1,
                name: "k".into(),
                attributes: None,
            }],
        }
        .encode_to_vec();
        assert_eq!(
            decode_response::<ListKeys>(&body),
            Err(BodyError::InvalidEncoding("attributes"))
        );
    }

    #[test]
    fn provider_ids_above_five_do_not_exist() {
        let attributes = Some(ecc_p256_signing_key().try_into().unwrap());
        for id in [6, 256, u32::MAX] {
            let body = proto::Result {
                keys: vec![proto::KeyInfo {
                    provider_id: id,
                    name: "k".into(),
                    attributes,
                }],
            }
            .encode_to_vec();
            assert_eq!(
                decode_response::<ListKeys>(&body),
                Err(BodyError::ProviderDoesNotExist(id))
            );
        }
    }

    #[test]
    fn encoded_len_is_what_each_entry_adds_to_the_answer() {
        let mut keys = Vec::new();
        let mut total = 0;
        for name in [
            "",
            "k",
            &"n".repeat(127),
            &"x".repeat(128),
            &"é".repeat(3000),
        ] {
            keys.push(KeyInfo {
                provider_id: ProviderId::Pkcs11,
                name: name.to_owned(),
                attributes: ecc_p256_signing_key(),
            });
            total += keys.last().unwrap().encoded_len();
            let body = encode_response::<ListKeys>(Response { keys: keys.clone() }).unwrap();
            assert_eq!(total, body.len(), "after {} entries", keys.len());
        }
    }
}
