//! The key id of a TPM key, as stored in its key-store row.
//!
//! ```text
//! version (1 byte, 1) ‖ kind (1 byte) ‖ fields, each as a 2-byte big-endian length and bytes
//!   kind 1, key pair:   auth value ‖ TPM2B_PRIVATE contents ‖ marshalled TPMT_PUBLIC
//!   kind 2, public key: marshalled TPMT_PUBLIC
//! ```
//!
//! A key pair's private part is the TPM's own wrapping under the primary key (encrypted and
//! integrity-protected by the TPM): the row holds no key material in the clear, only the key's
//! random auth value (the store file is 0600). A public key is its public area alone, loaded as
//! an external object when used.

use psa_crypto::types::status::Error as PsaError;
use tss_esapi::structures::{Auth, Private, Public};
use tss_esapi::traits::{Marshall, UnMarshall};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const KEY_PAIR: u8 = 1;
const PUBLIC_KEY: u8 = 2;

/// A key as the key store holds it.
#[derive(Clone)]
pub(super) enum KeyBlob {
    /// A key pair made in the TPM, wrapped under the primary key.
    Pair {
        /// The key's auth value.
        auth: Zeroizing<Vec<u8>>,
        /// The TPM's wrapping of the private part.
        private: Vec<u8>,
        /// The public area.
        public: Public,
    },
    /// An imported public key.
    Public {
        /// The public area.
        public: Public,
    },
}

impl std::fmt::Debug for KeyBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyBlob::Pair { .. } => f.write_str("KeyBlob::Pair(<redacted>)"),
            KeyBlob::Public { public } => f
                .debug_struct("KeyBlob::Public")
                .field("public", public)
                .finish(),
        }
    }
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) -> Result<(), PsaError> {
    let length = u16::try_from(field.len()).map_err(|_| PsaError::InvalidArgument)?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(field);
    Ok(())
}

fn take_field<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], PsaError> {
    let (length, rest) = input
        .split_first_chunk::<2>()
        .ok_or(PsaError::DataCorrupt)?;
    let length = usize::from(u16::from_be_bytes(*length));
    if rest.len() < length {
        return Err(PsaError::DataCorrupt);
    }
    let (field, rest) = rest.split_at(length);
    *input = rest;
    Ok(field)
}

impl KeyBlob {
    /// The public area.
    pub(super) fn public(&self) -> &Public {
        match self {
            KeyBlob::Pair { public, .. } | KeyBlob::Public { public } => public,
        }
    }

    /// The key id bytes (a secret for a key pair: it holds the auth value).
    ///
    /// # Errors
    /// `InvalidArgument` if the public area cannot be marshalled or a field is too long.
    pub(super) fn encode(&self) -> Result<Zeroizing<Vec<u8>>, PsaError> {
        let mut out = Zeroizing::new(vec![VERSION]);
        let marshalled = self
            .public()
            .marshall()
            .map_err(|_| PsaError::InvalidArgument)?;
        match self {
            KeyBlob::Pair { auth, private, .. } => {
                out.push(KEY_PAIR);
                push_field(&mut out, auth)?;
                push_field(&mut out, private)?;
            }
            KeyBlob::Public { .. } => out.push(PUBLIC_KEY),
        }
        push_field(&mut out, &marshalled)?;
        Ok(out)
    }

    /// Reads a key id.
    ///
    /// # Errors
    /// `DataCorrupt` when the bytes are not a key id of this format.
    pub(super) fn decode(bytes: &[u8]) -> Result<KeyBlob, PsaError> {
        let [VERSION, kind, rest @ ..] = bytes else {
            return Err(PsaError::DataCorrupt);
        };
        let mut rest = rest;
        let blob = match *kind {
            KEY_PAIR => {
                let auth = Zeroizing::new(take_field(&mut rest)?.to_vec());
                let private = take_field(&mut rest)?.to_vec();
                let public = take_field(&mut rest)?;
                KeyBlob::Pair {
                    auth,
                    private,
                    public: Public::unmarshall(public).map_err(|_| PsaError::DataCorrupt)?,
                }
            }
            PUBLIC_KEY => KeyBlob::Public {
                public: Public::unmarshall(take_field(&mut rest)?)
                    .map_err(|_| PsaError::DataCorrupt)?,
            },
            _ => return Err(PsaError::DataCorrupt),
        };
        if !rest.is_empty() {
            return Err(PsaError::DataCorrupt);
        }
        Ok(blob)
    }

    /// The auth value, as the TSS takes it (empty for a public key).
    ///
    /// # Errors
    /// `DataCorrupt` if the stored value is longer than an auth value may be.
    pub(super) fn auth(&self) -> Result<Auth, PsaError> {
        match self {
            KeyBlob::Pair { auth, .. } => {
                Auth::try_from(auth.to_vec()).map_err(|_| PsaError::DataCorrupt)
            }
            KeyBlob::Public { .. } => Ok(Auth::default()),
        }
    }

    /// The private part, as the TSS takes it.
    ///
    /// # Errors
    /// `DataCorrupt` if the stored value is too long.
    pub(super) fn private(&self) -> Result<Option<Private>, PsaError> {
        match self {
            KeyBlob::Pair { private, .. } => Private::try_from(private.clone())
                .map(Some)
                .map_err(|_| PsaError::DataCorrupt),
            KeyBlob::Public { .. } => Ok(None),
        }
    }
}
