//! The token: the PKCS #11 library, the slot chosen from the configuration, the login, and a
//! pool of logged-in read/write sessions.
//!
//! # One library context per process, initialised again by each new provider
//!
//! `C_Initialize` may be called once per process and library until `C_Finalize`, and a library
//! sees the tokens present when it was initialised: SoftHSM, for one, does not see a token made
//! after it. A reload (SIGHUP) must see the token and the user PIN as they are now, so every
//! provider built on a library the process already uses initialises it again (`C_Finalize`
//! then `C_Initialize`), while the provider it replaces may still be serving requests.
//!
//! The library context is process-wide, one per library path ([`Library`]), with a generation
//! number behind a read/write lock. Every use of the library holds the read lock: a lent
//! session ([`PooledSession`]) from before its first call until it is returned. The
//! re-initialisation holds the write lock, so it waits for the requests in flight to return
//! their sessions, and the requests that come meanwhile wait for it; it then bumps the
//! generation. The new provider chooses its slot and logs in under the same write lock, so its
//! PIN is checked by the token before anything else can log in.
//!
//! `C_Finalize` ends every session of the process and its login, and session and object
//! handles are numbers the library hands out again. So sessions are tagged with the generation
//! they were opened in: a pool that finds the generation changed drops its sessions without
//! closing them (a handle of the old generation may name a session of the new one), finds its
//! token again by serial number, and opens new sessions as requests need them, logging in with
//! its own PIN if the token is not logged in yet (a refused PIN is not tried again in that
//! generation). The object-handle cache of the provider is emptied likewise. A provider being
//! replaced therefore keeps answering the requests routed to it until the new service takes
//! over, and closes its sessions when it is dropped, only if they belong to the current
//! generation.
//!
//! # Login
//!
//! A PKCS #11 login belongs to the application and the token, not to one session: the first
//! session of a generation logs in, and every session of the process on that token is then
//! logged in. Since each new provider logs in on a freshly initialised library, the token
//! checks its PIN: a reload with a changed `user_pin` logs in with it (the PIN having been
//! changed on the token), and a reload with a wrong one is refused.
//!
//! # Sessions
//!
//! Opening a session and logging in per request would cost two to four library calls and a
//! PIN check each time: the provider instead opens [`POOL_SIZE`] read/write sessions (fewer if
//! the token allows fewer) at start-up and lends one to each request ([`SessionPool::get`]),
//! waiting while all are in use.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard,
    RwLockWriteGuard,
};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Limit, Slot};
use cryptoki::types::RawAuthPin;
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::error;
use crate::config::Pkcs11Config;

/// The most sessions a provider opens.
pub(super) const POOL_SIZE: usize = 8;

/// Why a PKCS #11 provider could not start; each message names the cause.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The library file does not exist.
    #[error("library_path: the PKCS #11 library {0} does not exist")]
    LibraryNotFound(PathBuf),
    /// The library exists but could not be loaded as a PKCS #11 library.
    #[error("library_path: {path} cannot be loaded as a PKCS #11 library: {reason}")]
    LibraryLoad {
        /// The library.
        path: PathBuf,
        /// The loader's or the library's reason.
        reason: String,
    },
    /// `C_Initialize` failed.
    #[error("library_path: the PKCS #11 library {path} failed to initialise: {reason}")]
    Initialise {
        /// The library.
        path: PathBuf,
        /// The library's reason.
        reason: String,
    },
    /// No slot has the configured number.
    #[error(
        "slot_number: the PKCS #11 library {path} has no slot {slot} holding a token (slots \
         with a token: {available})"
    )]
    SlotNotFound {
        /// The library.
        path: PathBuf,
        /// The configured slot.
        slot: u64,
        /// The slots that hold a token.
        available: String,
    },
    /// No token has the configured serial number.
    #[error(
        "serial_number: no token of the PKCS #11 library {path} has serial number {serial:?} \
         (serial numbers present: {available})"
    )]
    SerialNotFound {
        /// The library.
        path: PathBuf,
        /// The configured serial number.
        serial: String,
        /// The serial numbers of the tokens present.
        available: String,
    },
    /// Neither slot nor serial number given, and no slot holds an initialised token.
    #[error("the PKCS #11 library {0} has no slot holding an initialised token")]
    NoToken(PathBuf),
    /// Neither slot nor serial number given, and several slots hold an initialised token.
    #[error(
        "the PKCS #11 library {path} has several initialised tokens (in slots {slots}): set \
         serial_number or slot_number to choose one"
    )]
    Ambiguous {
        /// The library.
        path: PathBuf,
        /// The slots holding an initialised token.
        slots: String,
    },
    /// The chosen token was never initialised.
    #[error(
        "the token in slot {0} is not initialised: initialise it first (for SoftHSM: \
         softhsm2-util --init-token)"
    )]
    TokenNotInitialised(u64),
    /// The chosen token has no user PIN yet.
    #[error("user_pin: the token in slot {0} has no user PIN set (CKR_USER_PIN_NOT_INITIALIZED)")]
    UserPinNotInitialised(u64),
    /// The token refused the user PIN.
    #[error("user_pin: the token in slot {0} refused the user PIN (CKR_PIN_INCORRECT)")]
    WrongPin(u64),
    /// The token's user PIN is locked.
    #[error("user_pin: the user PIN of the token in slot {0} is locked (CKR_PIN_LOCKED)")]
    PinLocked(u64),
    /// The configured PIN cannot be decoded.
    #[error("user_pin: {0}")]
    BadPin(String),
    /// Another failure of the token while starting.
    #[error("the token in slot {slot} failed while {action}: {reason}")]
    Token {
        /// The slot.
        slot: u64,
        /// What was being done.
        action: &'static str,
        /// The library's reason.
        reason: String,
    },
}

impl StartError {
    /// Whether the cause is that the configured token is not there (yet): no slot or serial
    /// number matches, or the slot's token is not initialised. The library and the rest of
    /// the configuration were usable.
    pub fn token_absent(&self) -> bool {
        matches!(
            self,
            StartError::SlotNotFound { .. }
                | StartError::SerialNotFound { .. }
                | StartError::NoToken(_)
                | StartError::TokenNotInitialised(_)
        )
    }
}

/// A PKCS #11 library of the process (see the [module documentation](self)).
pub(super) struct Library {
    path: PathBuf,
    context: Pkcs11,
    /// Read-locked by every use of the library, write-locked while it is initialised again.
    state: RwLock<LibraryState>,
    /// Held around every call that searches, creates or destroys token objects
    /// ([`PooledSession::object_list`]).
    object_list: Mutex<()>,
}

/// What an initialisation of a [`Library`] changes.
#[derive(Debug)]
pub(super) struct LibraryState {
    /// How many times the library was finalised in this process: sessions and object handles
    /// are valid only in the generation they were obtained in.
    generation: u64,
    /// Whether the last `C_Initialize` succeeded. A re-initialisation that failed leaves the
    /// library finalised until the next provider initialises it.
    initialised: bool,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Library {
    /// The library at `path`, loaded on first use (not initialised yet then). Paths naming the
    /// same file (symbolic links) give the same library: one `C_Finalize` ends the sessions of
    /// both.
    fn get(path: &Path) -> Result<Arc<Library>, StartError> {
        static LIBRARIES: OnceLock<Mutex<HashMap<PathBuf, Arc<Library>>>> = OnceLock::new();
        let mut libraries = LIBRARIES
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Ok(file) = std::fs::canonicalize(path) else {
            return Err(StartError::LibraryNotFound(path.to_owned()));
        };
        if let Some(library) = libraries.get(&file) {
            return Ok(Arc::clone(library));
        }
        let context = Pkcs11::new(&file).map_err(|e| StartError::LibraryLoad {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let library = Arc::new(Library {
            path: path.to_owned(),
            context,
            state: RwLock::new(LibraryState {
                generation: 0,
                initialised: false,
            }),
            object_list: Mutex::new(()),
        });
        libraries.insert(file, Arc::clone(&library));
        Ok(library)
    }

    fn read(&self) -> RwLockReadGuard<'_, LibraryState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, LibraryState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Initialises the library, finalising it first if it is initialised: the caller holds the
    /// write lock, so no session is in use.
    fn initialise(&self, state: &mut LibraryState) -> Result<(), StartError> {
        if state.initialised {
            state.initialised = false;
            state.generation += 1;
            match self.context.clone().finalize() {
                Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiNotInitialized, _)) => {}
                // C_Initialize below says whether the library can still be used.
                Err(error) => tracing::warn!(
                    library = %self.path.display(),
                    %error,
                    "C_Finalize failed before the PKCS #11 library is initialised again"
                ),
            }
        }
        match self
            .context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            // Already initialised: by another part of the process, outside this map.
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
                state.initialised = true;
                if state.generation > 0 {
                    tracing::info!(
                        library = %self.path.display(),
                        generation = state.generation,
                        "PKCS #11 library initialised again"
                    );
                }
                Ok(())
            }
            Err(e) => Err(StartError::Initialise {
                path: self.path.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

/// The token chosen by the configuration, logged in, with its session pool.
#[derive(Debug)]
pub(super) struct Token {
    pub(super) pool: SessionPool,
}

impl Token {
    /// Loads the library, initialises it (again, if the process already uses it: see the
    /// [module documentation](self)), chooses the slot, opens the sessions and logs in.
    ///
    /// # Errors
    /// A [`StartError`] naming the cause.
    pub(super) fn open(config: &Pkcs11Config) -> Result<Token, StartError> {
        let pin = match &config.user_pin {
            Some(pin) => Some(
                pin.decode()
                    .map_err(|e| StartError::BadPin(e.to_string()))?,
            ),
            None => None,
        };
        let library = Library::get(&config.library_path)?;
        let mut state = library.write();
        library.initialise(&mut state)?;
        let context = &library.context;
        let slot = choose_slot(context, config)?;
        let id = slot.id();
        let failure = |action: &'static str| {
            move |e: CkError| StartError::Token {
                slot: id,
                action,
                reason: e.to_string(),
            }
        };
        let info = context
            .get_token_info(slot)
            .map_err(failure("reading its information"))?;
        if !info.token_initialized() {
            return Err(StartError::TokenNotInitialised(id));
        }
        let size = match info.max_rw_session_count() {
            Limit::Max(max) => usize::try_from(max)
                .unwrap_or(POOL_SIZE)
                .clamp(1, POOL_SIZE),
            Limit::Infinite | Limit::Unavailable => POOL_SIZE,
        };
        // Closed again if the start fails: they are of the current generation.
        let mut sessions = Opened(Vec::with_capacity(size));
        for _ in 0..size {
            sessions.0.push(
                context
                    .open_rw_session_no_drop(slot)
                    .map_err(failure("opening a read/write session"))?,
            );
        }
        if let (Some(pin), Some(first)) = (&pin, sessions.0.first()) {
            login(first, pin).map_err(|e| match e {
                CkError::Pkcs11(RvError::PinIncorrect, _) => StartError::WrongPin(id),
                CkError::Pkcs11(RvError::PinLocked, _) => StartError::PinLocked(id),
                CkError::Pkcs11(RvError::UserPinNotInitialized, _) => {
                    StartError::UserPinNotInitialised(id)
                }
                e => failure("logging in with the user PIN")(e),
            })?;
        }
        let pool = SessionPool {
            library: Arc::clone(&library),
            serial: info.serial_number().trim().to_owned(),
            pin,
            size,
            state: Mutex::new(PoolState {
                generation: state.generation,
                slot,
                idle: std::mem::take(&mut sessions.0),
                open: size,
                logged_in: true,
                refused: None,
            }),
            returned: Condvar::new(),
        };
        drop(state);
        Ok(Token { pool })
    }
}

/// Sessions opened while a token is being opened, closed if it fails.
struct Opened(Vec<Session>);

impl Drop for Opened {
    fn drop(&mut self) {
        for session in self.0.drain(..) {
            let _ = session.close();
        }
    }
}

/// Logs the user in on `session`'s token with `pin`; a token already logged in by this
/// process is not an error.
fn login(session: &Session, pin: &Zeroizing<Vec<u8>>) -> Result<(), CkError> {
    let raw = RawAuthPin::new(Box::new(pin.to_vec()));
    match session.login_with_raw(UserType::User, &raw) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The slot holding the token with serial number `serial`.
fn slot_of(context: &Pkcs11, serial: &str) -> Option<Slot> {
    context
        .get_slots_with_token()
        .ok()?
        .into_iter()
        .find(|slot| {
            context
                .get_token_info(*slot)
                .is_ok_and(|info| info.serial_number().trim() == serial)
        })
}

fn list<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// The slot the configuration names (operations of docs/protocol.md#configuration): the serial number if given
/// (compared without surrounding whitespace; it wins over a slot number that disagrees), else
/// the slot number, else the only slot holding an initialised token.
fn choose_slot(context: &Pkcs11, config: &Pkcs11Config) -> Result<Slot, StartError> {
    let path = &config.library_path;
    let slots = context
        .get_slots_with_token()
        .map_err(|e| StartError::Initialise {
            path: path.clone(),
            reason: format!("listing its slots: {e}"),
        })?;
    if let Some(serial) = &config.serial_number {
        let wanted = serial.trim();
        let mut present = Vec::new();
        for slot in &slots {
            let Ok(info) = context.get_token_info(*slot) else {
                continue;
            };
            let found = info.serial_number().trim().to_owned();
            if found == wanted {
                if let Some(number) = config.slot_number.filter(|n| *n != slot.id()) {
                    tracing::warn!(
                        slot_number = number,
                        slot = slot.id(),
                        "the token with the configured serial number is not in the configured \
                         slot: using the serial number"
                    );
                }
                return Ok(*slot);
            }
            present.push(format!("{found:?}"));
        }
        return Err(StartError::SerialNotFound {
            path: path.clone(),
            serial: wanted.to_owned(),
            available: list(present),
        });
    }
    if let Some(number) = config.slot_number {
        return slots
            .iter()
            .find(|slot| slot.id() == number)
            .copied()
            .ok_or_else(|| StartError::SlotNotFound {
                path: path.clone(),
                slot: number,
                available: list(slots.iter().map(Slot::id)),
            });
    }
    let initialised: Vec<Slot> = slots
        .iter()
        .filter(|slot| {
            context
                .get_token_info(**slot)
                .is_ok_and(|info| info.token_initialized())
        })
        .copied()
        .collect();
    match initialised.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(StartError::NoToken(path.clone())),
        _ => Err(StartError::Ambiguous {
            path: path.clone(),
            slots: list(initialised.iter().map(Slot::id)),
        }),
    }
}

/// A bounded set of open sessions lent to one request at a time.
pub(super) struct SessionPool {
    library: Arc<Library>,
    /// The token's serial number: how its slot is found again in a new generation.
    serial: String,
    /// The user PIN, to log in again in a new generation.
    pin: Option<Zeroizing<Vec<u8>>>,
    /// The most sessions open at once.
    size: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

/// The sessions of a [`SessionPool`], all of one generation of the library.
struct PoolState {
    generation: u64,
    slot: Slot,
    idle: Vec<Session>,
    /// Sessions open in this generation, idle or lent.
    open: usize,
    /// Whether the token was logged in in this generation.
    logged_in: bool,
    /// Why the token cannot be used in this generation (its slot is gone, or it refused the
    /// PIN): answered without asking the token again, so a refused PIN is not retried.
    refused: Option<PsaError>,
}

impl fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionPool")
            .field("library", &self.library.path)
            .field("serial", &self.serial)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl SessionPool {
    fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many sessions the pool holds.
    #[cfg(test)]
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// A session, waiting until one is free (or the library's re-initialisation is over).
    ///
    /// # Errors
    /// After a re-initialisation of the library: the token cannot be found again or refuses
    /// the PIN, or a session cannot be opened.
    pub(super) fn get(&self) -> Result<PooledSession<'_>, PsaError> {
        let library = self.library.read();
        if !library.initialised {
            return Err(PsaError::HardwareFailure);
        }
        let mut state = self.state();
        if state.generation != library.generation {
            self.renew(&mut state, library.generation);
        }
        if let Some(error) = state.refused {
            return Err(error);
        }
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(PooledSession {
                    pool: self,
                    session: Some(session),
                    slot: state.slot,
                    generation: state.generation,
                    _library: library,
                });
            }
            if state.open < self.size {
                let session = self.open(&mut state)?;
                return Ok(PooledSession {
                    pool: self,
                    session: Some(session),
                    slot: state.slot,
                    generation: state.generation,
                    _library: library,
                });
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Moves the pool to `generation`: the sessions of the previous one ended with it, and
    /// their handles may now name sessions of another pool, so they are dropped unclosed.
    fn renew(&self, state: &mut PoolState, generation: u64) {
        state.idle.clear();
        state.open = 0;
        state.generation = generation;
        state.logged_in = false;
        state.refused = None;
        match slot_of(&self.library.context, &self.serial) {
            Some(slot) => state.slot = slot,
            None => {
                tracing::error!(
                    library = %self.library.path.display(),
                    serial = %self.serial,
                    "the PKCS #11 token is gone since the library was initialised again"
                );
                state.refused = Some(PsaError::HardwareFailure);
            }
        }
    }

    /// Opens a session of the current generation, logging in first if nobody did yet.
    fn open(&self, state: &mut PoolState) -> Result<Session, PsaError> {
        let session = self
            .library
            .context
            .open_rw_session_no_drop(state.slot)
            .map_err(error::psa)?;
        if let (false, Some(pin)) = (state.logged_in, &self.pin) {
            if let Err(e) = login(&session, pin) {
                let _ = session.close();
                return Err(match e {
                    CkError::Pkcs11(
                        rv @ (RvError::PinIncorrect
                        | RvError::PinLocked
                        | RvError::PinExpired
                        | RvError::UserPinNotInitialized),
                        _,
                    ) => {
                        tracing::error!(
                            library = %self.library.path.display(),
                            serial = %self.serial,
                            rv = ?rv,
                            "the PKCS #11 token refused this provider's user PIN after the \
                             library was initialised again: its requests are refused until \
                             the next reload"
                        );
                        state.refused = Some(PsaError::NotPermitted);
                        PsaError::NotPermitted
                    }
                    e => error::psa(e),
                });
            }
        }
        state.logged_in = true;
        state.open += 1;
        Ok(session)
    }
}

impl Drop for SessionPool {
    fn drop(&mut self) {
        let library = self.library.read();
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        // Sessions of an earlier generation ended with it; their handles are not closed.
        if library.initialised && state.generation == library.generation {
            for session in state.idle.drain(..) {
                if let Err(error) = session.close() {
                    tracing::debug!(%error, "closing a PKCS #11 session failed");
                }
            }
        }
    }
}

/// A session lent by a [`SessionPool`]; returned to it on drop. It holds the library's read
/// lock, so the library is not initialised again while the session is in use.
pub(super) struct PooledSession<'a> {
    pool: &'a SessionPool,
    session: Option<Session>,
    slot: Slot,
    generation: u64,
    _library: RwLockReadGuard<'a, LibraryState>,
}

impl PooledSession<'_> {
    /// The generation of the library the session (and the object handles found with it)
    /// belong to.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// The token's slot.
    pub(super) fn slot(&self) -> Slot {
        self.slot
    }

    /// The library context, for calls that take no session.
    pub(super) fn context(&self) -> &Pkcs11 {
        &self.pool.library.context
    }

    /// The lock to hold around a call that searches, creates or destroys token objects
    /// (`C_FindObjects*`, `C_GenerateKeyPair`, `C_CreateObject`, `C_DestroyObject`).
    ///
    /// SoftHSM 2.6 keeps a token's list of objects in memory and brings it up to date with
    /// the token directory at each search (`OSToken::index`), partly outside the lock it
    /// takes when it creates or deletes an object: a search in one thread while another
    /// creates or deletes an object of the same token can drop the new object from the list or
    /// count a deleted one twice, and the creation then fails (`CKR_FUNCTION_FAILED` or
    /// `CKR_GENERAL_ERROR`). Signing, verifying and the other uses of a known object handle do
    /// not take it.
    pub(super) fn object_list(&self) -> MutexGuard<'_, ()> {
        self.pool
            .library
            .object_list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Deref for PooledSession<'_> {
    type Target = Session;

    fn deref(&self) -> &Session {
        // Present from creation until drop.
        self.session.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let mut state = self.pool.state();
            // Always the same generation: the read lock is still held.
            if state.generation == self.generation {
                state.idle.push(session);
            }
            drop(state);
            self.pool.returned.notify_one();
        }
    }
}
