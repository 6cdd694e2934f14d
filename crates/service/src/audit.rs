//! The audit log: one JSON line per key lifecycle event and per denied request.
//!
//! # What is recorded
//!
//! | `event` | When |
//! |---|---|
//! | `key_generated` | PsaGenerateKey created a key (the key store committed it) |
//! | `key_imported` | PsaImportKey created a key |
//! | `key_destroyed` | a key was removed from the key store: PsaDestroyKey, or DeleteClient for each key of the deleted client (then `opcode` is `DeleteClient`, `application` the administrator and `key_owner` the client) |
//! | `request_denied` | authentication failed (AuthenticationError, AuthenticatorNotRegistered, InvalidEncoding of the credentials), an administrative operation was refused (AdminOperation), a request needing an identity had none (NotAuthenticated), or a key's policy refused the operation (PsaErrorNotPermitted); one record may stand for several (`count`, see "Denials") |
//! | `audit_records_lost` | records could not be written (their number in `count`); written before the next record that can be, every other field `null` |
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
//!  "key_name":"my-key","key_owner":"alice","application_sha256":null,"key_name_sha256":null,
//!  "key_owner_sha256":null,"count":1}
//! ```
//!
//! (shown folded; a record is a single line). `time` is RFC 3339 in UTC with milliseconds;
//! `auth_type` is the authenticator the request named (`NoAuth`, `Direct`, `Jwt`,
//! `UnixPeerCredentials`, `JwtSvid`); `application` is the name the authenticator derived, `null`
//! when authentication failed or none was asked for; `peer_*` come from the socket
//! (`SO_PEERCRED`); `provider` is the configured provider name; `status` is the response
//! status's name (for `key_destroyed` under DeleteClient, the status of that one destruction).
//! `key_name` is the key the request named, when it reached one. `count` is how many events
//! the record stands for: 1, except for folded denials (below) and `audit_records_lost`.
//!
//! The names a client chooses (`application`, `key_name`, `key_owner`) are cut to
//! [`MAX_NAME_BYTES`] bytes (at a character boundary); a cut name's `*_sha256` field holds the
//! SHA-256 of the whole name in hex, and is `null` for a name written whole. A record is
//! therefore at most about 1.5 KB, whatever the request.
//!
//! # Denials
//!
//! A client can make denials as fast as it can send requests. The first denial of a peer uid
//! with a given status is written at once, with `count` 1; the further ones of that uid and
//! status in the next second are folded: when the second is over, one record stands for them,
//! with the fields of the last of them and their number in `count`. So the counts of the records
//! add up to the denials, and each uid writes at most two records a second per status (there
//! are six denial statuses) however fast it sends. Key lifecycle events are never folded.
//!
//! # When a record cannot be written
//!
//! The request is still served (SECURITY.md, "Accountability", says why): the record is
//! counted as lost ([`crate::counters`]), an error is logged at most once every ten
//! seconds, and the next record that can be written is preceded by an `audit_records_lost`
//! record whose `count` is the number lost since the last one that could be written, so a gap
//! in the trail is never silent. Writing never panics.
//! A record never holds a secret: no key material, plaintext or signature, and of the auth
//! bytes only the application name derived from them.
//!
//! # Where records go
//!
//! `core_settings.audit_log`: a file (created with mode 0600, opened with `O_APPEND`, each
//! record written with one `write` as soon as the request is answered, not fsynced; reopened at
//! its path when bulwarkd reloads on SIGHUP, which is how log rotation hands over), `journal`
//! (each record as one line on standard error, which systemd stores in the journal; written
//! directly, so `log_level` does not silence it), or `off`.
//!
//! # How records are gathered
//!
//! Every key a provider reaches goes through [`ScopedKeys`](crate::providers::ScopedKeys).
//! So [`Service::handle_frame`](crate::service::Service::handle_frame) opens a [`RequestScope`]
//! for the request, whose [`AuditNotes`] travel in the request's
//! [`RequestContext`](crate::providers::RequestContext); `ScopedKeys` notes there the key names
//! it is asked for and the keys it creates and destroys, and `handle_frame` writes the records
//! once the outcome is known. The notes are a value of the request, not of the thread: work a
//! provider moves to another thread (the Mbed provider's queue) still notes into them. This also
//! catches DeleteClient's destructions, which the core provider runs through the crypto
//! providers' ordinary destroy path under a context of its own that keeps the notes. Without an
//! audit log no scope is opened and the context carries no notes.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::RequestHeader;
use psa_crypto::types::status::Error as PsaError;

use crate::auth::{Identity, PeerCredentials};
use crate::counters;
use crate::error::{AuthError, DispatchError, ProviderError, ServiceError};

/// The most bytes of a client-chosen name (application, key name, key owner) a record holds.
pub const MAX_NAME_BYTES: usize = 256;

/// How long denials of one peer uid with one status are folded into one record.
pub const DENIAL_WINDOW: Duration = Duration::from_secs(1);

/// The least time between two error lines about records that could not be written.
const LOST_REPORT_INTERVAL: Duration = Duration::from_secs(10);

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
    inner: Arc<Inner>,
    providers: Vec<(ProviderId, String)>,
}

/// The sink and what writing to it needs to remember.
#[derive(Debug)]
struct Inner {
    sink: Sink,
    /// Denial windows per (peer uid, status); see "Denials" in the module documentation.
    denials: Mutex<HashMap<(Option<u32>, ResponseStatus), Window>>,
    /// Records lost since the last one written, and when that was last logged.
    lost: Mutex<Lost>,
}

/// The denials of one peer uid with one status since `started`.
#[derive(Debug)]
struct Window {
    started: Instant,
    /// Denials folded since `started` (the first one was written on its own).
    folded: u64,
    /// The record of the last folded denial, without its `count` and closing brace.
    last: String,
}

#[derive(Debug, Default)]
struct Lost {
    /// Records lost since the last record written.
    unreported: u64,
    last_logged: Option<Instant>,
}

impl AuditLog {
    /// An audit log written to standard error.
    pub fn journal() -> AuditLog {
        AuditLog::over(Sink::Journal)
    }

    fn over(sink: Sink) -> AuditLog {
        let inner = Arc::new(Inner {
            sink,
            denials: Mutex::new(HashMap::new()),
            lost: Mutex::new(Lost::default()),
        });
        spawn_flusher(Arc::downgrade(&inner));
        AuditLog {
            inner,
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
        Ok(AuditLog::over(Sink::File {
            path: path.to_owned(),
            file: Mutex::new(file),
        }))
    }

    /// The same log, naming provider ids with the given configured names in its records.
    pub fn with_providers(mut self, providers: Vec<(ProviderId, String)>) -> AuditLog {
        self.providers = providers;
        self
    }

    /// Opens the note pad of one request; records are written by [`RequestScope::finish`].
    pub fn begin(&self) -> RequestScope<'_> {
        RequestScope {
            log: self,
            notes: AuditNotes::default(),
        }
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

    /// Writes the records of one request; `denial` is the request's denial, if it was one.
    fn write(&self, mut lines: String, mut records: u64, denial: Option<Denial>) {
        if let Some((text, count)) = denial.and_then(|d| self.inner.fold(d, Instant::now())) {
            lines.push_str(&text);
            records += count;
        }
        if records > 0 {
            self.inner.write(&lines, records);
        }
    }
}

/// A denial about to be recorded: its window's key and its record without `count`.
struct Denial {
    key: (Option<u32>, ResponseStatus),
    record: String,
}

impl Inner {
    /// The records to write for `denial` now and how many they are (its own, with `count` 1,
    /// after the one of the window it closes), or `None` when it is folded into its window.
    fn fold(&self, denial: Denial, now: Instant) -> Option<(String, u64)> {
        let mut windows = lock(&self.denials);
        if let Some(window) = windows.get_mut(&denial.key) {
            if now.duration_since(window.started) < DENIAL_WINDOW {
                window.folded += 1;
                window.last = denial.record;
                counters::denials_folded(1);
                return None;
            }
        }
        // A new window: the one it replaces, if it folded denials, is written first.
        let previous = windows.insert(
            denial.key,
            Window {
                started: now,
                folded: 0,
                last: String::new(),
            },
        );
        let mut out = String::new();
        let mut records = 1;
        if let Some(previous) = previous.filter(|w| w.folded > 0) {
            close(&mut out, &previous.last, previous.folded);
            records += 1;
        }
        close(&mut out, &denial.record, 1);
        Some((out, records))
    }

    /// Writes the windows that are over and forgets them; all of them with `all`.
    fn flush(&self, now: Instant, all: bool) {
        let mut out = String::new();
        let mut records = 0;
        lock(&self.denials).retain(|_, window| {
            if !all && now.duration_since(window.started) < DENIAL_WINDOW {
                return true;
            }
            if window.folded > 0 {
                close(&mut out, &window.last, window.folded);
                records += 1;
            }
            false
        });
        if records > 0 {
            self.write(&out, records);
        }
    }

    /// Writes `records` records (`lines`) with one `write`, preceded by an
    /// `audit_records_lost` record if earlier ones were lost; counts them as lost if that fails.
    fn write(&self, lines: &str, records: u64) {
        let mut lost = lock(&self.lost);
        let mut text = String::new();
        if lost.unreported > 0 {
            lost_record(&mut text, lost.unreported);
        }
        text.push_str(lines);
        let result = match &self.sink {
            Sink::Journal => io::stderr().lock().write_all(text.as_bytes()),
            // One write per request (O_APPEND): records of concurrent requests, or of a service
            // still finishing requests after a reload, never interleave.
            Sink::File { file, .. } => lock(file).write_all(text.as_bytes()),
        };
        for _ in 0..records {
            crate::metrics::audit_record(result.is_ok());
        }
        match result {
            Ok(()) => lost.unreported = 0,
            Err(error) => {
                counters::audit_records_lost(records);
                lost.unreported += records;
                let now = Instant::now();
                if lost
                    .last_logged
                    .is_none_or(|last| now.duration_since(last) >= LOST_REPORT_INTERVAL)
                {
                    lost.last_logged = Some(now);
                    let path = match &self.sink {
                        Sink::File { path, .. } => path.display().to_string(),
                        Sink::Journal => "standard error".to_owned(),
                    };
                    tracing::error!(
                        %error,
                        path,
                        lost_since_last_written = lost.unreported,
                        lost_since_start = counters::now().audit_records_lost,
                        "could not write audit records; requests are still served"
                    );
                }
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Folded denials not yet written (a reload or a shutdown within their second).
        self.flush(Instant::now(), true);
    }
}

/// Writes the windows of `inner` that are over, every [`DENIAL_WINDOW`], until it is dropped.
fn spawn_flusher(inner: Weak<Inner>) {
    // Without the thread (it could not be started), windows are still written when the next
    // denial of the same uid and status comes, and when the log is dropped.
    let _ = std::thread::Builder::new()
        .name("audit-flush".to_owned())
        .spawn(move || loop {
            std::thread::sleep(DENIAL_WINDOW);
            let Some(inner) = inner.upgrade() else {
                return;
            };
            inner.flush(Instant::now(), false);
        });
}

/// Locks `mutex`, whose data stay consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Appends `record` (a record without `count`, see [`Who::record`]) closed with `count`.
fn close(out: &mut String, record: &str, count: u64) {
    out.push_str(record);
    let _ = writeln!(out, ",\"count\":{count}}}");
}

/// Appends an `audit_records_lost` record: `count` records could not be written.
fn lost_record(out: &mut String, count: u64) {
    out.push_str("{\"time\":");
    json_string(out, &rfc3339_now());
    out.push_str(",\"event\":\"audit_records_lost\"");
    for field in [
        "opcode",
        "status",
        "auth_type",
        "application",
        "peer_uid",
        "peer_gid",
        "peer_pid",
        "provider",
        "provider_id",
        "key_name",
        "key_owner",
        "application_sha256",
        "key_name_sha256",
        "key_owner_sha256",
    ] {
        let _ = write!(out, ",\"{field}\":null");
    }
    close(out, "", count);
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

/// What one request did to keys, noted while it runs: carried by the request's context, so
/// that whichever thread does the work notes into the same pad.
#[derive(Debug, Default)]
pub struct AuditNotes {
    notes: Mutex<Notes>,
}

impl AuditNotes {
    /// Notes that the request named `key` (the first one named is the record's key).
    pub fn note_key(&self, key: KeyRef<'_>) {
        let mut notes = lock(&self.notes);
        if notes.subject.is_none() {
            notes.subject = Some(key.into());
        }
    }

    /// Notes that the request created or destroyed `key`, with that step's status.
    pub fn note_event(&self, event: KeyEvent, key: KeyRef<'_>, status: ResponseStatus) {
        lock(&self.notes).events.push((event, key.into(), status));
    }
}

/// The notes of one request being served.
#[derive(Debug)]
pub struct RequestScope<'a> {
    log: &'a AuditLog,
    notes: AuditNotes,
}

impl RequestScope<'_> {
    /// Where the request's providers note what they do (through its `RequestContext`).
    pub fn notes(&self) -> &AuditNotes {
        &self.notes
    }

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
        let notes = std::mem::take(&mut *lock(&self.notes.notes));
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
        let mut record = String::new();
        for (event, key, status) in &notes.events {
            record.clear();
            who.record(
                &mut record,
                event.name(),
                *status,
                Some(&key.provider_name),
                Some(key.provider_id),
                Some(key),
            );
            close(&mut lines, &record, 1);
        }
        let denial = denied.then(|| {
            let key = notes.subject.as_ref();
            // The key's provider when the request reached one, else the one it addressed.
            let (name, id) = match key {
                Some(key) => (Some(key.provider_name.as_str()), key.provider_id),
                None => (self.log.provider_name(header.provider), header.provider),
            };
            let mut record = String::new();
            who.record(&mut record, "request_denied", status, name, Some(id), key);
            Denial {
                key: (peer.map(|p| p.uid), status),
                record,
            }
        });
        let records = u64::try_from(notes.events.len()).unwrap_or(u64::MAX);
        self.log.write(lines, records, denial);
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
        | ServiceError::Provider(ProviderError::TakesLong)
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
    /// Appends one record to `out`, all but its `count` and closing brace ([`close`] adds
    /// them).
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
        json_option(out, self.application.map(cut));
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
        json_option(out, key.map(|k| cut(&k.key_name)));
        out.push_str(",\"key_owner\":");
        json_option(out, key.map(|k| cut(&k.owner)));
        out.push_str(",\"application_sha256\":");
        json_option(out, self.application.and_then(digest).as_deref());
        out.push_str(",\"key_name_sha256\":");
        json_option(out, key.and_then(|k| digest(&k.key_name)).as_deref());
        out.push_str(",\"key_owner_sha256\":");
        json_option(out, key.and_then(|k| digest(&k.owner)).as_deref());
    }
}

/// `name`, or its first bytes if it is longer than [`MAX_NAME_BYTES`] (at a character
/// boundary).
fn cut(name: &str) -> &str {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.get(..end).unwrap_or_default()
}

/// The SHA-256 of `name` in hex if [`cut`] cuts it, else `None`.
fn digest(name: &str) -> Option<String> {
    if name.len() <= MAX_NAME_BYTES {
        return None;
    }
    let mut hex = String::with_capacity(64);
    for byte in openssl::sha::sha256(name.as_bytes()) {
        let _ = write!(hex, "{byte:02x}");
    }
    Some(hex)
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
        scope.notes().note_key(key);
        scope.finish(
            &header(Opcode::PsaSignHash, AuthType::Direct),
            Some(&alice),
            Some(&peer),
            None,
            ResponseStatus::Success,
        );
        // A creation.
        let scope = log.begin();
        scope.notes().note_key(key);
        scope
            .notes()
            .note_event(KeyEvent::Generated, key, ResponseStatus::Success);
        scope.finish(
            &header(Opcode::PsaGenerateKey, AuthType::Direct),
            Some(&alice),
            Some(&peer),
            None,
            ResponseStatus::Success,
        );
        // A policy refusal.
        let scope = log.begin();
        scope.notes().note_key(key);
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
        AuditNotes::default().note_event(KeyEvent::Destroyed, key, ResponseStatus::Success);

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
             \"key_owner\":\"alice\",\"application_sha256\":null,\"key_name_sha256\":null,\
             \"key_owner_sha256\":null,\"count\":1}"
        );
        assert_eq!(
            tail(lines[1]),
            ":\"request_denied\",\"opcode\":\"PsaSignHash\",\"status\":\"PsaErrorNotPermitted\",\
             \"auth_type\":\"Direct\",\"application\":\"alice\",\"peer_uid\":7,\"peer_gid\":8,\
             \"peer_pid\":9,\"provider\":\"mbed\",\"provider_id\":1,\"key_name\":\"k\\n1\",\
             \"key_owner\":\"alice\",\"application_sha256\":null,\"key_name_sha256\":null,\
             \"key_owner_sha256\":null,\"count\":1}"
        );
        assert_eq!(
            tail(lines[2]),
            ":\"request_denied\",\"opcode\":\"Ping\",\"status\":\"AuthenticationError\",\
             \"auth_type\":\"Direct\",\"application\":null,\"peer_uid\":null,\"peer_gid\":null,\
             \"peer_pid\":null,\"provider\":\"mbed\",\"provider_id\":1,\"key_name\":null,\
             \"key_owner\":null,\"application_sha256\":null,\"key_name_sha256\":null,\
             \"key_owner_sha256\":null,\"count\":1}"
        );
    }

    /// The notes are the request's, not the thread's: a key created by work that runs on
    /// another thread than the one that opened the scope is still recorded.
    #[test]
    fn notes_follow_the_request_to_another_thread() {
        use bulwark_interface::ops::{encode_request, psa_generate_key, PsaGenerateKey};
        use psa_crypto::types::algorithm::Cipher;
        use psa_crypto::types::key::{Type, UsageFlags};

        use crate::dispatch::Registry;
        use crate::keystore::KeyStore;
        use crate::providers::conformance::attrs;
        use crate::providers::openssl::OpenSslProvider;
        use crate::providers::{Provider, ProviderSettings, RequestContext};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::file(&path).unwrap();
        let store = KeyStore::open_in_memory().unwrap();
        let provider = Arc::new(
            OpenSslProvider::new("openssl".to_owned(), &dir.path().join("kek"), &store).unwrap(),
        );
        let mut registry = Registry::new();
        Arc::clone(&provider).register(&mut registry.registrar(ProviderId::MbedCrypto));
        let settings = ProviderSettings::default();
        let alice = Identity {
            name: "alice".to_owned(),
            auth_type: AuthType::Direct,
            is_admin: false,
        };
        let body = encode_request::<PsaGenerateKey>(psa_generate_key::Request {
            key_name: "moved".to_owned(),
            attributes: attrs(Type::Aes, 128, Cipher::Ctr, UsageFlags::default()),
        })
        .unwrap();

        let scope = log.begin();
        let ctx =
            RequestContext::new(Some(&alice), &store, &settings).with_notes(Some(scope.notes()));
        std::thread::scope(|threads| {
            threads
                .spawn(|| {
                    registry.dispatch(ProviderId::MbedCrypto, Opcode::PsaGenerateKey, &ctx, &body)
                })
                .join()
                .unwrap()
        })
        .unwrap();
        scope.finish(
            &header(Opcode::PsaGenerateKey, AuthType::Direct),
            Some(&alice),
            None,
            None,
            ResponseStatus::Success,
        );

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("\"event\":\"key_generated\"")
                && text.contains("\"provider\":\"openssl\"")
                && text.contains("\"key_name\":\"moved\""),
            "{text}"
        );
    }

    fn denial(log: &AuditLog, uid: u32, status: ResponseStatus, key_name: &str) {
        let scope = log.begin();
        scope.notes().note_key(KeyRef {
            owner: "alice",
            provider_name: "mbed",
            provider_id: ProviderId::MbedCrypto,
            key_name,
        });
        let error = ServiceError::Dispatch(DispatchError::AdminOnly);
        let peer = PeerCredentials {
            uid,
            gid: uid,
            pid: None,
        };
        scope.finish(
            &header(Opcode::ListClients, AuthType::UnixPeerCredentials),
            None,
            Some(&peer),
            Some(&error),
            status,
        );
    }

    fn records(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn count(line: &str) -> u64 {
        let (_, count) = line.rsplit_once(",\"count\":").unwrap();
        count.trim_end_matches('}').parse().unwrap()
    }

    #[test]
    fn denials_of_one_peer_and_status_are_folded_for_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::file(&path).unwrap();
        let folded_before = counters::now().denials_folded;
        for i in 0..100 {
            denial(&log, 7, ResponseStatus::AdminOperation, &format!("k{i}"));
        }
        denial(&log, 8, ResponseStatus::AdminOperation, "other uid");
        denial(&log, 7, ResponseStatus::AuthenticationError, "other status");
        // The first of each (uid, status) is written at once.
        let first = records(&path);
        assert_eq!(first.len(), 3, "{first:#?}");
        assert!(first[0].contains("\"key_name\":\"k0\""), "{}", first[0]);
        assert!(first.iter().all(|line| count(line) == 1), "{first:#?}");
        assert!(counters::now().denials_folded >= folded_before + 99);

        // When the second is over, one record stands for the rest, with the last one's fields.
        log.inner.flush(Instant::now() + DENIAL_WINDOW, false);
        let all = records(&path);
        assert_eq!(all.len(), 4, "{all:#?}");
        assert!(all[3].contains("\"key_name\":\"k99\""), "{}", all[3]);
        assert_eq!(count(&all[3]), 99);
        assert_eq!(all.iter().map(|line| count(line)).sum::<u64>(), 102);

        // Windows that are over are forgotten: the next denial is written at once.
        denial(&log, 7, ResponseStatus::AdminOperation, "again");
        assert_eq!(records(&path).len(), 5);
        // Dropping the log writes what is still folded.
        denial(&log, 7, ResponseStatus::AdminOperation, "folded");
        drop(log);
        // (The flush thread may hold the log for a moment: then it writes them.)
        let deadline = Instant::now() + Duration::from_secs(10);
        while records(&path).len() < 6 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let all = records(&path);
        assert_eq!(all.len(), 6, "{all:#?}");
        assert!(all[5].contains("\"key_name\":\"folded\""), "{}", all[5]);
    }

    #[test]
    fn long_names_are_cut_and_carry_the_digest_of_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::file(&path).unwrap();
        // A multi-byte character across the cut: the cut falls before it.
        let name = format!("{}é{}", "a".repeat(MAX_NAME_BYTES - 1), "b".repeat(1 << 20));
        denial(&log, 7, ResponseStatus::AdminOperation, &name);
        let line = records(&path).remove(0);
        assert!(line.len() < 1500, "{} bytes", line.len());
        let cut = "a".repeat(MAX_NAME_BYTES - 1);
        assert!(line.contains(&format!("\"key_name\":\"{cut}\"")), "{line}");
        let digest: String = openssl::sha::sha256(name.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            line.contains(&format!("\"key_name_sha256\":\"{digest}\"")),
            "{line}"
        );
        // Short names are written whole, without a digest.
        assert!(line.contains("\"key_owner\":\"alice\""), "{line}");
        assert!(line.contains("\"key_owner_sha256\":null"), "{line}");
    }

    #[test]
    fn records_that_cannot_be_written_are_counted_and_reported_when_writing_works_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::file(&path).unwrap();
        let Sink::File { file, .. } = &log.inner.sink else {
            unreachable!()
        };
        // A full disk.
        let working = std::mem::replace(
            &mut *lock(file),
            OpenOptions::new().append(true).open("/dev/full").unwrap(),
        );
        let lost_before = counters::now().audit_records_lost;
        denial(&log, 7, ResponseStatus::AdminOperation, "lost 1");
        denial(&log, 8, ResponseStatus::AdminOperation, "lost 2");
        assert!(counters::now().audit_records_lost >= lost_before + 2);
        assert!(records(&path).is_empty());

        *lock(file) = working;
        denial(&log, 9, ResponseStatus::AdminOperation, "written");
        let all = records(&path);
        assert_eq!(all.len(), 2, "{all:#?}");
        assert!(
            all[0].contains("\"event\":\"audit_records_lost\""),
            "{}",
            all[0]
        );
        assert_eq!(count(&all[0]), 2);
        assert!(all[1].contains("\"key_name\":\"written\""), "{}", all[1]);
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
