//! The audit log: one JSON line per key lifecycle event and per denied request.
//!
//! # What is recorded
//!
//! | `event` | When |
//! |---|---|
//! | `key_generated` | PsaGenerateKey created a key (the key store committed it) |
//! | `key_imported` | PsaImportKey created a key |
//! | `key_destroyed` | a key was removed from the key store: PsaDestroyKey, or DeleteClient for each key of the deleted client (then `opcode` is `DeleteClient`, `application` the administrator and `key_owner` the client) |
//! | `request_denied` | authentication failed (AuthenticationError, AuthenticatorNotRegistered, InvalidEncoding of the credentials), an administrative operation was refused (AdminOperation), a request needing an identity had none (NotAuthenticated), or a key's policy refused the operation (PsaErrorNotPermitted) |
//!
//! Requests refused while being framed (bad header, oversized body, unknown auth type) never
//! reach the service core and are not recorded; nor are ordinary failures (a missing key, a bad
//! signature), which are the client's business, not a security event.
//!
//! # Format
//!
//! One JSON object per line, fields always in this order, absent values as `null`:
//!
//! ```json
//! {"time":"2025-01-31T12:00:00.123Z","event":"key_generated","opcode":"PsaGenerateKey",
//!  "status":"Success","auth_type":"Direct","application":"alice","peer_uid":1000,
//!  "peer_gid":1000,"peer_pid":4242,"provider":"openssl-provider","provider_id":1,
//!  "key_name":"my-key","key_owner":"alice"}
//! ```
//!
//! (shown folded; a record is a single line). `time` is RFC 3339 in UTC with milliseconds;
//! `auth_type` is the authenticator the request named (`NoAuth`, `Direct`, `Jwt`,
//! `UnixPeerCredentials`, `JwtSvid`); `application` is the name the authenticator derived, `null`
//! when authentication failed or none was asked for; `peer_*` come from the socket
//! (`SO_PEERCRED`); `provider` is the configured provider name; `status` is the response
//! status's name (for `key_destroyed` under DeleteClient, the status of that one destruction).
//! `key_name` is the key the request named, when it reached one.
//!
//! A record never holds a secret: no key material, plaintext or signature, and of the auth
//! bytes only the application name derived from them.
//!
//! # Where records go
//!
//! `core_settings.audit_log`: a file (created with mode 0600, opened with `O_APPEND`, each
//! record written with one `write` as soon as the request is answered, not fsynced), `journal`
//! (each record as one line on standard error, which systemd stores in the journal; written
//! directly, so `log_level` does not silence it), or `off`.
//!
//! # How records are gathered
//!
//! [`Service::handle_frame`](crate::service::Service::handle_frame) answers a request
//! synchronously on one thread, and every key a provider reaches goes through
//! [`ScopedKeys`](crate::providers::ScopedKeys). So `handle_frame` opens a [`RequestScope`] (a
//! thread-local note pad) for the request, `ScopedKeys` notes the key names it is asked for and
//! the keys it creates and destroys, and `handle_frame` writes the records once the outcome is
//! known. This also catches DeleteClient's destructions, which the core provider runs through
//! the crypto providers' ordinary destroy path under a context of its own. Without an audit log
//! no scope is opened and the notes cost one thread-local check.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::RequestHeader;
use psa_crypto::types::status::Error as PsaError;

use crate::auth::{Identity, PeerCredentials};
use crate::error::{AuthError, DispatchError, ProviderError, ServiceError};

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be created or opened.
    #[error("cannot open the audit log {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file exists but others could forge records in it.
    #[error("unsafe audit log {}: {reason}", path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Where records are written.
enum Sink {
    /// Standard error (the journal under systemd).
    Journal,
    /// An append-only file.
    File { path: PathBuf, file: Mutex<File> },
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Journal => f.write_str("Journal"),
            Sink::File { path, .. } => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// An open audit log and the names of the providers requests can address.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sink: Arc<Sink>,
    providers: Vec<(ProviderId, String)>,
}

impl AuditLog {
    /// An audit log written to standard error.
    pub fn journal() -> AuditLog {
        AuditLog {
            sink: Arc::new(Sink::Journal),
            providers: Vec::new(),
        }
    }

    /// An audit log appended to `path`, created with mode 0600 if missing.
    ///
    /// # Errors
    /// The file cannot be opened (a symbolic link is refused), is not a regular file, is
    /// writable by group or others, or is owned by another user.
    pub fn file(path: &Path) -> Result<AuditLog, AuditError> {
        let open_error = |source| AuditError::Open {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(
                nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_CLOEXEC.bits(),
            )
            .open(path)
            .map_err(open_error)?;
        let metadata = file.metadata().map_err(open_error)?;
        let unsafe_file = |reason: String| AuditError::Permissions {
            path: path.to_owned(),
            reason,
        };
        if !metadata.is_file() {
            return Err(unsafe_file("not a regular file".to_owned()));
        }
        let mode = metadata.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(unsafe_file(format!(
                "writable by group or others (mode {mode:04o})"
            )));
        }
        let us = nix::unistd::geteuid().as_raw();
        if metadata.uid() != us {
            return Err(unsafe_file(format!(
                "owned by uid {}, not by this process's uid {us}",
                metadata.uid()
            )));
        }
        Ok(AuditLog {
            sink: Arc::new(Sink::File {
                path: path.to_owned(),
                file: Mutex::new(file),
            }),
            providers: Vec::new(),
        })
    }

    /// The same log, naming provider ids with the given configured names in its records.
    pub fn with_providers(mut self, providers: Vec<(ProviderId, String)>) -> AuditLog {
        self.providers = providers;
        self
    }

    /// Opens the note pad of one request on this thread; records are written by
    /// [`RequestScope::finish`].
    pub fn begin(&self) -> RequestScope<'_> {
        NOTES.with(|notes| *notes.borrow_mut() = Some(Notes::default()));
        RequestScope { log: self }
    }

    fn provider_name(&self, id: ProviderId) -> Option<&str> {
        if id == ProviderId::Core {
            return Some("core-provider");
        }
        self.providers
            .iter()
            .find(|(p, _)| *p == id)
            .map(|(_, name)| name.as_str())
    }

    fn write(&self, line: &str) {
        let result = match &*self.sink {
            Sink::Journal => {
                let mut stderr = io::stderr().lock();
                stderr.write_all(line.as_bytes())
            }
            Sink::File { file, .. } => {
                // One write per record (O_APPEND): records of concurrent requests, or of a
                // service still finishing requests after a reload, never interleave.
                let mut file = file
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                file.write_all(line.as_bytes())
            }
        };
        crate::metrics::audit_record(result.is_ok());
        if let Err(error) = result {
            let path = match &*self.sink {
                Sink::File { path, .. } => path.display().to_string(),
                Sink::Journal => "standard error".to_owned(),
            };
            tracing::error!(%error, path, "could not write an audit record");
        }
    }
}

/// What kind of lifecycle event a key went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEvent {
    /// PsaGenerateKey.
    Generated,
    /// PsaImportKey.
    Imported,
    /// PsaDestroyKey, or DeleteClient.
    Destroyed,
}

impl KeyEvent {
    fn name(self) -> &'static str {
        match self {
            KeyEvent::Generated => "key_generated",
            KeyEvent::Imported => "key_imported",
            KeyEvent::Destroyed => "key_destroyed",
        }
    }
}

/// A key as `ScopedKeys` names it.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    /// The owning application.
    pub owner: &'a str,
    /// The configured provider name.
    pub provider_name: &'a str,
    /// The provider's id.
    pub provider_id: ProviderId,
    /// The key's name.
    pub key_name: &'a str,
}

#[derive(Debug)]
struct OwnedKey {
    owner: String,
    provider_name: String,
    provider_id: ProviderId,
    key_name: String,
}

impl From<KeyRef<'_>> for OwnedKey {
    fn from(key: KeyRef<'_>) -> Self {
        OwnedKey {
            owner: key.owner.to_owned(),
            provider_name: key.provider_name.to_owned(),
            provider_id: key.provider_id,
            key_name: key.key_name.to_owned(),
        }
    }
}

/// What one request did to keys, noted while it runs.
#[derive(Debug, Default)]
struct Notes {
    /// The first key the request named.
    subject: Option<OwnedKey>,
    /// Keys created or destroyed, in order, with the status of each.
    events: Vec<(KeyEvent, OwnedKey, ResponseStatus)>,
}

thread_local! {
    static NOTES: RefCell<Option<Notes>> = const { RefCell::new(None) };
}

/// Notes that the current request named `key` (the first one named is the record's key).
/// Does nothing outside an audited request.
pub fn note_key(key: KeyRef<'_>) {
    NOTES.with(|notes| {
        if let Ok(mut notes) = notes.try_borrow_mut() {
            if let Some(notes) = notes.as_mut() {
                if notes.subject.is_none() {
                    notes.subject = Some(key.into());
                }
            }
        }
    });
}

/// Notes that the current request created or destroyed `key`, with that step's status. Does
/// nothing outside an audited request.
pub fn note_event(event: KeyEvent, key: KeyRef<'_>, status: ResponseStatus) {
    NOTES.with(|notes| {
        if let Ok(mut notes) = notes.try_borrow_mut() {
            if let Some(notes) = notes.as_mut() {
                notes.events.push((event, key.into(), status));
            }
        }
    });
}

/// The notes of the request being served on this thread; closed when dropped.
#[derive(Debug)]
pub struct RequestScope<'a> {
    log: &'a AuditLog,
}

impl Drop for RequestScope<'_> {
    fn drop(&mut self) {
        NOTES.with(|notes| {
            if let Ok(mut notes) = notes.try_borrow_mut() {
                *notes = None;
            }
        });
    }
}

impl RequestScope<'_> {
    /// Writes the records of the request now answered: one per key event, then one if the
    /// request was denied.
    pub fn finish(
        self,
        header: &RequestHeader,
        identity: Option<&Identity>,
        peer: Option<&PeerCredentials>,
        error: Option<&ServiceError>,
        status: ResponseStatus,
    ) {
        let notes = NOTES
            .with(|notes| notes.try_borrow_mut().ok().and_then(|mut n| n.take()))
            .unwrap_or_default();
        let denied = error.is_some_and(is_denial);
        if notes.events.is_empty() && !denied {
            return;
        }
        let who = Who {
            time: rfc3339_now(),
            opcode: header.opcode,
            auth_type: header.auth_type,
            application: identity.map(|i| i.name.as_str()),
            peer,
        };
        let mut lines = String::new();
        for (event, key, status) in &notes.events {
            who.record(
                &mut lines,
                event.name(),
                *status,
                Some(&key.provider_name),
                Some(key.provider_id),
                Some(key),
            );
        }
        if denied {
            let key = notes.subject.as_ref();
            // The key's provider when the request reached one, else the one it addressed.
            let (name, id) = match key {
                Some(key) => (Some(key.provider_name.as_str()), key.provider_id),
                None => (self.log.provider_name(header.provider), header.provider),
            };
            who.record(&mut lines, "request_denied", status, name, Some(id), key);
        }
        self.log.write(&lines);
    }
}

/// Whether an error is a refusal worth an audit record. Exhaustive on purpose: a new error
/// variant does not compile until someone decides.
fn is_denial(error: &ServiceError) -> bool {
    match error {
        ServiceError::Auth(AuthError::NotRegistered)
        | ServiceError::Auth(AuthError::Rejected(_))
        | ServiceError::Auth(AuthError::InvalidEncoding)
        | ServiceError::Dispatch(DispatchError::NotAuthenticated)
        | ServiceError::Dispatch(DispatchError::AdminOnly)
        | ServiceError::Provider(ProviderError::NotAuthenticated) => true,
        ServiceError::Provider(ProviderError::Psa(error)) => *error == PsaError::NotPermitted,
        ServiceError::Wire(_)
        | ServiceError::Body(_)
        | ServiceError::Dispatch(DispatchError::ProviderNotRegistered)
        | ServiceError::Dispatch(DispatchError::NotSupported)
        | ServiceError::Provider(ProviderError::KeyStore(_))
        | ServiceError::Provider(ProviderError::Deprecated)
        | ServiceError::Provider(ProviderError::ResponseTooLarge)
        | ServiceError::Provider(ProviderError::ProviderNotRegistered)
        | ServiceError::Internal(_) => false,
    }
}

/// The request-wide fields of a record.
struct Who<'a> {
    time: String,
    opcode: Opcode,
    auth_type: AuthType,
    application: Option<&'a str>,
    peer: Option<&'a PeerCredentials>,
}

impl Who<'_> {
    /// Appends one record, newline included, to `out`.
    fn record(
        &self,
        out: &mut String,
        event: &str,
        status: ResponseStatus,
        provider: Option<&str>,
        provider_id: Option<ProviderId>,
        key: Option<&OwnedKey>,
    ) {
        out.push_str("{\"time\":");
        json_string(out, &self.time);
        out.push_str(",\"event\":");
        json_string(out, event);
        out.push_str(",\"opcode\":");
        json_string(out, self.opcode.name());
        out.push_str(",\"status\":");
        json_string(out, status.name());
        out.push_str(",\"auth_type\":");
        json_string(out, auth_type_name(self.auth_type));
        out.push_str(",\"application\":");
        json_option(out, self.application);
        out.push_str(",\"peer_uid\":");
        json_number(out, self.peer.map(|p| i64::from(p.uid)));
        out.push_str(",\"peer_gid\":");
        json_number(out, self.peer.map(|p| i64::from(p.gid)));
        out.push_str(",\"peer_pid\":");
        json_number(out, self.peer.and_then(|p| p.pid).map(i64::from));
        out.push_str(",\"provider\":");
        json_option(out, provider);
        out.push_str(",\"provider_id\":");
        json_number(out, provider_id.map(|id| i64::from(id.value())));
        out.push_str(",\"key_name\":");
        json_option(out, key.map(|k| k.key_name.as_str()));
        out.push_str(",\"key_owner\":");
        json_option(out, key.map(|k| k.owner.as_str()));
        out.push_str("}\n");
    }
}

/// The configuration-file spelling of an auth type.
fn auth_type_name(auth_type: AuthType) -> &'static str {
    match auth_type {
        AuthType::NoAuth => "NoAuth",
        AuthType::Direct => "Direct",
        AuthType::Jwt => "Jwt",
        AuthType::UnixPeerCredentials => "UnixPeerCredentials",
        AuthType::JwtSvid => "JwtSvid",
    }
}

fn json_option(out: &mut String, value: Option<&str>) {
    match value {
        Some(value) => json_string(out, value),
        None => out.push_str("null"),
    }
}

fn json_number(out: &mut String, value: Option<i64>) {
    match value {
        Some(value) => {
            let _ = write!(out, "{value}");
        }
        None => out.push_str("null"),
    }
}

/// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped, so a
/// key or application name can never break out of its field or its line.
fn json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // U+2028 and U+2029 are valid JSON but end lines for some readers.
            c if c < ' ' || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The current time as RFC 3339 in UTC with milliseconds, e.g. `2025-01-31T12:00:00.123Z`.
fn rfc3339_now() -> String {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(elapsed.as_secs(), elapsed.subsec_millis())
}

fn rfc3339(seconds: u64, millis: u32) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic Gregorian calendar; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(rfc3339(4_102_444_800, 0), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn strings_cannot_escape_their_field_or_line() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\u{1}\u{2028}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001\u2028é""#);
    }

    fn header(opcode: Opcode, auth_type: AuthType) -> RequestHeader {
        RequestHeader::new(ProviderId::MbedCrypto, opcode, auth_type)
    }

    #[test]
    fn records_are_written_for_events_and_denials_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::file(&path)
            .unwrap()
            .with_providers(vec![(ProviderId::MbedCrypto, "mbed".to_owned())]);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let alice = Identity {
            name: "alice".to_owned(),
            auth_type: AuthType::Direct,
            is_admin: false,
        };
        let peer = PeerCredentials {
            uid: 7,
            gid: 8,
            pid: Some(9),
        };
        let key = KeyRef {
            owner: "alice",
            provider_name: "mbed",
            provider_id: ProviderId::MbedCrypto,
            key_name: "k\n1",
        };

        // An ordinary request: nothing.
        let scope = log.begin();
        note_key(key);
        scope.finish(
            &header(Opcode::PsaSignHash, AuthType::Direct),
            Some(&alice),
            Some(&peer),
            None,
            ResponseStatus::Success,
        );
        // A creation.
        let scope = log.begin();
        note_key(key);
        note_event(KeyEvent::Generated, key, ResponseStatus::Success);
        scope.finish(
            &header(Opcode::PsaGenerateKey, AuthType::Direct),
            Some(&alice),
            Some(&peer),
            None,
            ResponseStatus::Success,
        );
        // A policy refusal.
        let scope = log.begin();
        note_key(key);
        let error = ServiceError::Provider(ProviderError::Psa(PsaError::NotPermitted));
        scope.finish(
            &header(Opcode::PsaSignHash, AuthType::Direct),
            Some(&alice),
            Some(&peer),
            Some(&error),
            ResponseStatus::PsaErrorNotPermitted,
        );
        // An authentication failure, without peer.
        let scope = log.begin();
        let error = ServiceError::Auth(AuthError::Rejected("x"));
        scope.finish(
            &header(Opcode::Ping, AuthType::Direct),
            None,
            None,
            Some(&error),
            ResponseStatus::AuthenticationError,
        );
        // Notes outside a scope go nowhere.
        note_event(KeyEvent::Destroyed, key, ResponseStatus::Success);

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let tail = |line: &str| line.split_once(",\"event\"").unwrap().1.to_owned();
        assert!(lines[0].starts_with("{\"time\":\"20"), "{}", lines[0]);
        assert_eq!(
            tail(lines[0]),
            ":\"key_generated\",\"opcode\":\"PsaGenerateKey\",\"status\":\"Success\",\
             \"auth_type\":\"Direct\",\"application\":\"alice\",\"peer_uid\":7,\"peer_gid\":8,\
             \"peer_pid\":9,\"provider\":\"mbed\",\"provider_id\":1,\"key_name\":\"k\\n1\",\
             \"key_owner\":\"alice\"}"
        );
        assert_eq!(
            tail(lines[1]),
            ":\"request_denied\",\"opcode\":\"PsaSignHash\",\"status\":\"PsaErrorNotPermitted\",\
             \"auth_type\":\"Direct\",\"application\":\"alice\",\"peer_uid\":7,\"peer_gid\":8,\
             \"peer_pid\":9,\"provider\":\"mbed\",\"provider_id\":1,\"key_name\":\"k\\n1\",\
             \"key_owner\":\"alice\"}"
        );
        assert_eq!(
            tail(lines[2]),
            ":\"request_denied\",\"opcode\":\"Ping\",\"status\":\"AuthenticationError\",\
             \"auth_type\":\"Direct\",\"application\":null,\"peer_uid\":null,\"peer_gid\":null,\
             \"peer_pid\":null,\"provider\":\"mbed\",\"provider_id\":1,\"key_name\":null,\
             \"key_owner\":null}"
        );
    }

    #[test]
    fn unsafe_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622)).unwrap();
        let e = AuditLog::file(&path).unwrap_err();
        assert!(e.to_string().contains("writable by group or others"), "{e}");

        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            AuditLog::file(&link),
            Err(AuditError::Open { .. })
        ));
    }
}
