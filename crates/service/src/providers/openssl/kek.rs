//! The key-encryption key (KEK) and the at-rest format of keys.
//!
//! # The KEK file
//!
//! 32 random bytes, nothing else, in a file created by the first start with mode 0600 (in a
//! directory created with mode 0700 if missing). It is written to a temporary file, synced, then
//! linked into place, so a crash never leaves a partial KEK behind. A KEK file that group or
//! others may access, or that another user owns, is refused, as is one that is not exactly 32
//! bytes long. The KEK is wiped from memory when the provider is dropped.
//!
//! # Wrapped keys
//!
//! The key store's `key_id` column of a key of this provider holds its wrapped key material:
//!
//! ```text
//! version (1 byte, = 1) ‖ nonce (12 bytes, random) ‖ ciphertext ‖ GCM tag (16 bytes)
//! ```
//!
//! The ciphertext is AES-256-GCM under the KEK of the key material in its PSA export format
//! (docs/protocol.md#key-data-formats; public keys too, so that every row has one format). The associated data
//! binds the blob to its key:
//!
//! ```text
//! "bulwark openssl-provider key\0" ‖ version ‖ len ‖ identity ‖ len ‖ attributes
//! ```
//!
//! where `identity` is [`encode_key_identity`] (authenticator, application, provider name, key
//! name), `attributes` the key's attributes in their protobuf form (the form the key store keeps
//! them in, without the lifetime), and each `len` 8 bytes big-endian. A blob copied into another
//! row, or a row whose attributes were edited, fails to unwrap: `DataCorrupt`.
//!
//! [`encode_key_identity`]: crate::providers::encode_key_identity

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ::openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use bulwark_interface::psa::encode_attributes;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::error;

/// Length of the KEK in bytes (AES-256).
pub(super) const KEK_LEN: usize = 32;

/// The only blob format so far.
pub(super) const BLOB_VERSION: u8 = 1;

/// GCM nonce length.
const NONCE_LEN: usize = 12;

/// GCM tag length.
const TAG_LEN: usize = 16;

/// Domain separation of the associated data.
const AD_LABEL: &[u8] = b"bulwark openssl-provider key\0";

/// Why the KEK could not be used; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("key-encryption key {}: {reason}", path.display())]
pub struct KekError {
    /// The KEK file.
    pub path: PathBuf,
    /// What is wrong, in one sentence.
    pub reason: String,
}

impl KekError {
    pub(super) fn new(path: &Path, reason: impl Into<String>) -> Self {
        KekError {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    fn io(path: &Path, what: &str, error: &io::Error) -> Self {
        KekError::new(path, format!("{what}: {error}"))
    }
}

/// The key-encryption key: AES-256, wiped on drop, never printed.
pub(super) struct Kek {
    key: Zeroizing<[u8; KEK_LEN]>,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

impl Kek {
    /// Reads the KEK file at `path`, or `None` if there is no such file.
    ///
    /// # Errors
    /// The file cannot be read, is not a regular file, is not exactly 32 bytes, is accessible
    /// to group or others, or is owned by another user.
    pub(super) fn read(path: &Path) -> Result<Option<Kek>, KekError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(KekError::io(path, "cannot be opened", &error)),
        };
        let metadata = file
            .metadata()
            .map_err(|e| KekError::io(path, "cannot be inspected", &e))?;
        if !metadata.is_file() {
            return Err(KekError::new(path, "is not a regular file"));
        }
        let mode = metadata.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KekError::new(
                path,
                format!(
                    "has mode {mode:04o}: a key-encryption key must be readable by its owner \
                     only (chmod 600)"
                ),
            ));
        }
        let uid = nix::unistd::geteuid().as_raw();
        if metadata.uid() != uid {
            return Err(KekError::new(
                path,
                format!(
                    "is owned by uid {}, not by the uid bulwarkd runs as ({uid})",
                    metadata.uid()
                ),
            ));
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(KEK_LEN + 1));
        Read::by_ref(&mut file)
            .take(KEK_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| KekError::io(path, "cannot be read", &e))?;
        let mut key = Zeroizing::new([0; KEK_LEN]);
        if bytes.len() != KEK_LEN {
            return Err(KekError::new(
                path,
                format!(
                    "is not a key-encryption key: it must hold exactly {KEK_LEN} bytes, it holds \
                     {}{}",
                    bytes.len(),
                    if bytes.len() > KEK_LEN {
                        " or more"
                    } else {
                        ""
                    }
                ),
            ));
        }
        key.copy_from_slice(&bytes);
        Ok(Some(Kek { key }))
    }

    /// Creates a new random KEK file at `path` (mode 0600), creating its directory (mode 0700)
    /// if missing.
    ///
    /// # Errors
    /// The directory or file cannot be created or written, or a file appeared at `path`
    /// meanwhile.
    pub(super) fn create(path: &Path) -> Result<Kek, KekError> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| KekError::io(path, "its directory cannot be created", &e))?;
        }
        let mut key = Zeroizing::new([0; KEK_LEN]);
        ::openssl::rand::rand_priv_bytes(&mut key[..])
            .map_err(|e| KekError::new(path, format!("no random bytes to make a new key: {e}")))?;
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut suffix = [0; 4];
        ::openssl::rand::rand_bytes(&mut suffix)
            .map_err(|e| KekError::new(path, format!("no random bytes: {e}")))?;
        let temporary = dir.join(format!(
            ".{file_name}.{}.{}.tmp",
            std::process::id(),
            u32::from_le_bytes(suffix)
        ));
        let written = Self::write_new(&temporary, &key[..]);
        // Linking fails if `path` exists: an existing KEK is never replaced.
        let linked = written.and_then(|()| fs::hard_link(&temporary, path));
        let _ = fs::remove_file(&temporary);
        linked.map_err(|e| KekError::io(path, "cannot be created", &e))?;
        File::open(&dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| KekError::io(path, "its directory cannot be synced", &e))?;
        tracing::info!(path = %path.display(), "created a new key-encryption key");
        Ok(Kek { key })
    }

    fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        // The umask cannot add permissions, but it could remove the owner's.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// Wraps `plaintext` for the key whose associated data is `ad` ([`associated_data`]).
    ///
    /// # Errors
    /// An OpenSSL failure (no random nonce, cipher unavailable).
    pub(super) fn wrap(&self, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, PsaError> {
        let mut nonce = [0; NONCE_LEN];
        ::openssl::rand::rand_bytes(&mut nonce).map_err(error::internal)?;
        let mut tag = [0; TAG_LEN];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key[..],
            Some(&nonce),
            ad,
            plaintext,
            &mut tag,
        )
        .map_err(error::internal)?;
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len() + TAG_LEN);
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        blob.extend_from_slice(&tag);
        Ok(blob)
    }

    /// Unwraps a blob made by [`Kek::wrap`] with the same associated data.
    ///
    /// # Errors
    /// `DataCorrupt` when the blob is malformed, of an unknown version, was made for another
    /// key (other associated data) or under another KEK, or was altered.
    pub(super) fn unwrap(&self, ad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, PsaError> {
        let (&version, rest) = blob.split_first().ok_or(PsaError::DataCorrupt)?;
        if version != BLOB_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(PsaError::DataCorrupt);
        }
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key[..],
            Some(nonce),
            ad,
            ciphertext,
            tag,
        )
        .map(Zeroizing::new)
        .map_err(|_| PsaError::DataCorrupt)
    }
}

/// The associated data binding a wrapped key to its identity (the output of
/// [`encode_key_identity`](crate::providers::encode_key_identity)) and attributes.
///
/// # Errors
/// `InvalidArgument` for attributes that have no protobuf form (the key store could not hold
/// them either).
pub(super) fn associated_data(
    identity: &[u8],
    attributes: Attributes,
) -> Result<Vec<u8>, PsaError> {
    let attributes = encode_attributes(attributes).map_err(|_| PsaError::InvalidArgument)?;
    let mut ad = Vec::with_capacity(AD_LABEL.len() + 17 + identity.len() + attributes.len());
    ad.extend_from_slice(AD_LABEL);
    ad.push(BLOB_VERSION);
    for field in [identity, &attributes[..]] {
        ad.extend_from_slice(&(field.len() as u64).to_be_bytes());
        ad.extend_from_slice(field);
    }
    Ok(ad)
}
