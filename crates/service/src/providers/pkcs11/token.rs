//! The token: the PKCS #11 library (initialised once per process), the slot chosen from the
//! configuration, the login, and a pool of logged-in read/write sessions.
//!
//! # One library context per process
//!
//! `C_Initialize` may be called once per process and library. The service builds a new provider
//! on every reload while the old one still serves, and tests build many providers in one
//! process, so library contexts are kept in a process-wide map keyed by the library's path and
//! never finalised.
//!
//! # Login
//!
//! A PKCS #11 login belongs to the application and the token, not to one session: the first
//! session of the pool logs in, and every session of the process on that token is then logged
//! in. A provider built while another one of the same process is still logged in to the same
//! token (a reload) finds the token already logged in and does not log in again. The token then
//! does not check that provider's PIN (`CKR_USER_ALREADY_LOGGED_IN` whatever PIN is given), so
//! the PIN is compared with the one the token was logged in with ([`LOGINS`]): a reload with a
//! wrong PIN is refused, as a start with it would be.
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
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Limit, Slot};
use cryptoki::types::RawAuthPin;
use zeroize::Zeroizing;

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
    /// The token is logged in with another PIN by this process, and cannot check a new one.
    #[error(
        "user_pin: the token in slot {0} is logged in with another PIN by this service; the new \
         PIN cannot be checked while it is: restart bulwarkd to log in with it"
    )]
    PinDiffers(u64),
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

/// A token of the process: its library's path and its slot.
type TokenKey = (PathBuf, u64);

/// The user PIN each token of the process was logged in with.
static LOGINS: OnceLock<Mutex<HashMap<TokenKey, Zeroizing<Vec<u8>>>>> = OnceLock::new();

/// [`LOGINS`], locked.
fn logins() -> MutexGuard<'static, HashMap<TokenKey, Zeroizing<Vec<u8>>>> {
    LOGINS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Whether `pin` is the PIN the token at `token` was logged in with (or the login was not made
/// here: nothing to compare with).
fn logged_in_with(token: &TokenKey, pin: &[u8]) -> bool {
    logins()
        .get(token)
        .is_none_or(|logged_in| logged_in.len() == pin.len() && openssl::memcmp::eq(logged_in, pin))
}

/// The library context for `path`, loaded and initialised on first use.
fn library(path: &Path) -> Result<Pkcs11, StartError> {
    static LIBRARIES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut libraries = LIBRARIES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(context) = libraries.get(path) {
        return Ok(context.clone());
    }
    if !path.exists() {
        return Err(StartError::LibraryNotFound(path.to_owned()));
    }
    let context = Pkcs11::new(path).map_err(|e| StartError::LibraryLoad {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Already initialised: the same library reached by another path (a symbolic link).
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(StartError::Initialise {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
    }
    libraries.insert(path.to_owned(), context.clone());
    Ok(context)
}

/// The token chosen by the configuration, logged in, with its session pool.
pub(super) struct Token {
    pub(super) context: Pkcs11,
    pub(super) slot: Slot,
    pub(super) pool: SessionPool,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("slot", &self.slot.id())
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Loads the library, chooses the slot, opens the sessions and logs in.
    ///
    /// # Errors
    /// A [`StartError`] naming the cause.
    pub(super) fn open(config: &Pkcs11Config) -> Result<Token, StartError> {
        let path = config.library_path.as_path();
        let context = library(path)?;
        let slot = choose_slot(&context, config)?;
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
        let mut sessions = Vec::with_capacity(size);
        for _ in 0..size {
            sessions.push(
                context
                    .open_rw_session(slot)
                    .map_err(failure("opening a read/write session"))?,
            );
        }
        if let Some(pin) = &config.user_pin {
            let pin = pin
                .decode()
                .map_err(|e| StartError::BadPin(e.to_string()))?;
            let raw = RawAuthPin::new(Box::new(pin.to_vec()));
            let token = (path.to_owned(), id);
            match sessions[0].login_with_raw(UserType::User, &raw) {
                Ok(()) => {
                    logins().insert(token, pin);
                }
                Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                    if !logged_in_with(&token, &pin) {
                        return Err(StartError::PinDiffers(id));
                    }
                }
                Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                    return Err(StartError::WrongPin(id))
                }
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                    return Err(StartError::PinLocked(id))
                }
                Err(CkError::Pkcs11(RvError::UserPinNotInitialized, _)) => {
                    return Err(StartError::UserPinNotInitialised(id))
                }
                Err(e) => return Err(failure("logging in with the user PIN")(e)),
            }
        }
        Ok(Token {
            context,
            slot,
            pool: SessionPool::new(sessions),
        })
    }
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
    idle: Mutex<Vec<Session>>,
    returned: Condvar,
    size: usize,
}

impl fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionPool")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl SessionPool {
    fn new(sessions: Vec<Session>) -> SessionPool {
        SessionPool {
            size: sessions.len(),
            idle: Mutex::new(sessions),
            returned: Condvar::new(),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Session>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many sessions the pool holds.
    #[cfg(test)]
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// A session, waiting until one is free.
    pub(super) fn get(&self) -> PooledSession<'_> {
        let mut idle = self.idle();
        loop {
            if let Some(session) = idle.pop() {
                return PooledSession {
                    pool: self,
                    session: Some(session),
                };
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A session lent by a [`SessionPool`]; returned to it on drop.
pub(super) struct PooledSession<'a> {
    pool: &'a SessionPool,
    session: Option<Session>,
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
            self.pool.idle().push(session);
            self.pool.returned.notify_one();
        }
    }
}
