//! Secrets of the file (PKCS #11 PIN, TPM hierarchy auth values): wiped on drop, never shown
//! by `Debug`, decoded from Parsec's `str:` and `hex:` prefixes only when used.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// A secret string of the file: wiped from memory on drop, shown by `Debug` as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

/// A `hex:` secret whose digits are not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the \"hex:\" prefix must be followed by an even number of hexadecimal digits")]
pub struct BadHexSecret;

impl SecretString {
    /// Wraps a string; it is moved, not copied.
    pub fn new(secret: String) -> Self {
        SecretString(Zeroizing::new(secret))
    }

    /// The secret text, exactly as written in the file (prefix included).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret's bytes, following Parsec's prefixes: `str:abc` → `abc`, `hex:0a0b` → bytes
    /// 0x0a 0x0b, anything else → the text's own UTF-8 bytes.
    pub fn decode(&self) -> Result<Zeroizing<Vec<u8>>, BadHexSecret> {
        let text: &str = &self.0;
        if let Some(rest) = text.strip_prefix("str:") {
            return Ok(Zeroizing::new(rest.as_bytes().to_vec()));
        }
        let Some(digits) = text.strip_prefix("hex:") else {
            return Ok(Zeroizing::new(text.as_bytes().to_vec()));
        };
        if digits.len() % 2 != 0 {
            return Err(BadHexSecret);
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
        for pair in digits.as_bytes().chunks_exact(2) {
            let high = hex_digit(pair[0]).ok_or(BadHexSecret)?;
            let low = hex_digit(pair[1]).ok_or(BadHexSecret)?;
            bytes.push((high << 4) | low);
        }
        Ok(bytes)
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        SecretString::new(secret)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretString::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::config::testing::*;
    use crate::config::*;

    #[test]
    fn debug_hides_secrets() {
        let config = Config::parse(UPSTREAM_FULL).unwrap();
        let debug = format!("{config:?}");
        for secret in ["917364", "74706d5f70617373", "ek-secret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("user_pin: Some(<redacted>)"), "{debug}");
        assert!(
            debug.contains("owner_hierarchy_auth: <redacted>"),
            "{debug}"
        );
        assert_eq!(
            format!("{:?}", SecretString::new("hunter2".to_owned())),
            "<redacted>"
        );
        let pretty = format!("{config:#?}");
        assert!(!pretty.contains("917364") && !pretty.contains("ek-secret"));
    }

    #[test]
    fn secrets_decode_with_prefixes() {
        let s = |t: &str| SecretString::new(t.to_owned());
        assert_eq!(&*s("plain").decode().unwrap(), b"plain");
        assert_eq!(&*s("str:hex:00").decode().unwrap(), b"hex:00");
        assert_eq!(&*s("hex:00fF").decode().unwrap(), &[0x00, 0xff]);
        assert_eq!(&*s("").decode().unwrap(), b"");
        assert_eq!(s("hex:0").decode(), Err(BadHexSecret));
        assert_eq!(s("hex:zz").decode(), Err(BadHexSecret));
    }
}
