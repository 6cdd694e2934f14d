//! [`SecretBytes`]: key material, plaintexts and other secrets carried in operation bodies.
//!
//! A thin wrapper over `Zeroizing<Vec<u8>>` whose `Debug` prints only the length, so that a
//! request or response can be logged or printed without leaking what it carries.

use std::fmt;
use std::ops::Deref;

use zeroize::Zeroizing;

/// Secret bytes: wiped from memory on drop, never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps bytes; the vector is moved, not copied.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// The bytes, still wiped on drop.
    pub fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }

    /// Moves the bytes out, leaving this value empty.
    ///
    /// The caller takes over the duty of wiping them (protobuf messages are wiped after
    /// encoding, see `ops::encode_request`).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut *self.0)
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SecretBytes::new(bytes)
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(bytes: &[u8]) -> Self {
        SecretBytes::new(bytes.to_vec())
    }
}

impl Deref for SecretBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = SecretBytes::from(b"hunter2".to_vec());
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("104"),
            "{shown}"
        );
        assert!(shown.contains("7 bytes"));
    }
}
