//! A SoftHSMv2 token on a temporary path.
//!
//! SoftHSM finds its token directory through the configuration file named by the environment
//! variable [`CONF_VARIABLE`], which it reads once, when the library is initialised. So:
//!
//! - in-process tests (the provider's unit tests) share ONE configuration per test process, and
//!   since SoftHSM does not reliably see tokens made after it was initialised, the tokens are
//!   all made when the first one is asked for ([`PROCESS_TOKENS`] of them, before any library
//!   initialisation in the process): [`SoftHsm::new`] hands out the next unused one;
//! - a daemon started by a test gets a configuration of its own, [`SoftHsm::isolated`], passed
//!   in its environment as `(CONF_VARIABLE, token.conf_path())`.
//!
//! Tokens are made with `softhsm2-util --init-token --free`; a missing `softhsm2` package is a
//! panic naming the install script, never a silently skipped test.

// Test-environment code: a failure to set up is reported by panicking, with the reason.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tempfile::TempDir;

/// The environment variable naming SoftHSM's configuration file.
pub const CONF_VARIABLE: &str = "SOFTHSM2_CONF";

/// The user PIN of every token made here.
pub const USER_PIN: &str = "4711-user";

/// The security officer PIN of every token made here.
pub const SO_PIN: &str = "4711-so";

const INSTALL_HINT: &str = "install softhsm2 (scripts/install-deps.sh --test)";

/// Where distributions put the SoftHSM PKCS #11 library.
const LIBRARY_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The SoftHSM PKCS #11 library.
///
/// # Panics
/// When SoftHSM is not installed, with a message naming the install script.
pub fn library_path() -> PathBuf {
    if let Some(path) = std::env::var_os("BULWARK_SOFTHSM2_LIBRARY") {
        return PathBuf::from(path);
    }
    for candidate in LIBRARY_CANDIDATES {
        if Path::new(candidate).is_file() {
            return PathBuf::from(candidate);
        }
    }
    // Multiarch directories other than the usual ones.
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        for entry in entries.flatten() {
            let path = entry.path().join("softhsm/libsofthsm2.so");
            if path.is_file() {
                return path;
            }
        }
    }
    panic!("libsofthsm2.so not found: {INSTALL_HINT}");
}

/// A SoftHSM configuration: a token directory and the file pointing at it.
#[derive(Debug)]
struct Conf {
    dir: TempDir,
    path: PathBuf,
}

impl Conf {
    fn new() -> Conf {
        let dir = tempfile::Builder::new()
            .prefix("bulwark-softhsm-")
            .tempdir()
            .expect("temporary directory for SoftHSM");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("SoftHSM token directory");
        let path = dir.path().join("softhsm2.conf");
        std::fs::write(
            &path,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                tokens.display()
            ),
        )
        .expect("SoftHSM configuration file");
        Conf { dir, path }
    }
}

/// How many tokens a test process's configuration holds ([`SoftHsm::new`]).
pub const PROCESS_TOKENS: usize = 96;

/// The tokens of this process ([`SoftHsm::new`]), made on first use in a configuration
/// exported in this process's environment.
fn process_tokens() -> &'static [SoftHsm] {
    static TOKENS: OnceLock<Vec<SoftHsm>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let conf = Arc::new(Conf::new());
        // Set once, before any PKCS #11 initialisation of this process (tests reach the
        // library only through these tokens): SoftHSM reads it at C_Initialize.
        std::env::set_var(CONF_VARIABLE, &conf.path);
        (0..PROCESS_TOKENS)
            .map(|i| SoftHsm::init(Arc::clone(&conf), &format!("test{i}")))
            .collect()
    })
}

/// An initialised SoftHSM token.
#[derive(Debug, Clone)]
pub struct SoftHsm {
    conf: Arc<Conf>,
    /// The slot the token was given.
    pub slot: u64,
    /// The token's serial number (16 hexadecimal digits).
    pub serial: String,
    /// The token's label.
    pub label: String,
}

impl SoftHsm {
    /// An unused token of the configuration shared by this process, which is exported in the
    /// process's environment ([`CONF_VARIABLE`]) when the first token is asked for. Its label
    /// is not `label` (the tokens are made in advance); `label` only names the use in a panic.
    ///
    /// # Panics
    /// When SoftHSM is not installed, or all [`PROCESS_TOKENS`] tokens are in use.
    pub fn new(label: &str) -> SoftHsm {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tokens = process_tokens();
        let index = NEXT.fetch_add(1, Ordering::Relaxed);
        tokens.get(index).cloned().unwrap_or_else(|| {
            panic!(
                "token for {label:?}: all {PROCESS_TOKENS} SoftHSM tokens of this test process \
                 are in use (raise PROCESS_TOKENS)"
            )
        })
    }

    /// A new token in a configuration of its own, for another process (give it
    /// `(CONF_VARIABLE, token.conf_path())` in its environment).
    ///
    /// # Panics
    /// When SoftHSM is not installed or the token cannot be made.
    pub fn isolated(label: &str) -> SoftHsm {
        SoftHsm::init(Arc::new(Conf::new()), label)
    }

    /// Another token in the same configuration as `self` (for [`SoftHsm::isolated`] tokens: a
    /// process that initialised the library before it was made may not see it).
    ///
    /// # Panics
    /// When the token cannot be made.
    pub fn another(&self, label: &str) -> SoftHsm {
        SoftHsm::init(Arc::clone(&self.conf), label)
    }

    fn init(conf: Arc<Conf>, label: &str) -> SoftHsm {
        // Labels are unique per configuration, so the slot can be found again by label.
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        // PKCS #11 labels hold 32 bytes.
        let label = format!(
            "{label:.16}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let output = util(&conf.path)
            .args(["--init-token", "--free", "--label", &label])
            .args(["--so-pin", SO_PIN, "--pin", USER_PIN])
            .output()
            .unwrap_or_else(|e| panic!("softhsm2-util cannot be run ({e}): {INSTALL_HINT}"));
        assert!(
            output.status.success(),
            "softhsm2-util --init-token failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let (slot, serial) = find_token(&conf.path, &label);
        SoftHsm {
            conf,
            slot,
            serial,
            label,
        }
    }

    /// The configuration file to name in [`CONF_VARIABLE`].
    pub fn conf_path(&self) -> &Path {
        &self.conf.path
    }

    /// The directory holding the token files.
    pub fn token_dir(&self) -> PathBuf {
        self.conf.dir.path().join("tokens")
    }

    /// The SoftHSM PKCS #11 library ([`library_path`]).
    pub fn library_path(&self) -> PathBuf {
        library_path()
    }

    /// A slot of the same configuration whose token is not initialised (SoftHSM always keeps
    /// one free).
    ///
    /// # Panics
    /// When `softhsm2-util --show-slots` lists none.
    pub fn uninitialised_slot(&self) -> u64 {
        let output = util(&self.conf.path)
            .arg("--show-slots")
            .output()
            .unwrap_or_else(|e| panic!("softhsm2-util cannot be run ({e}): {INSTALL_HINT}"));
        let text = String::from_utf8_lossy(&output.stdout);
        let mut slot = None;
        for line in text.lines() {
            let line = line.trim();
            if let Some(number) = line
                .strip_prefix("Slot ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                slot = Some(number);
            } else if line.strip_prefix("Initialized:").map(str::trim) == Some("no") {
                if let Some(slot) = slot {
                    return slot;
                }
            }
        }
        panic!("no uninitialised SoftHSM slot listed:\n{text}");
    }

    /// The user PIN ([`USER_PIN`], unless [`SoftHsm::set_user_pin`] changed it).
    pub fn user_pin(&self) -> &'static str {
        USER_PIN
    }

    /// Changes the token's user PIN to `pin`, with the security officer PIN (`p11tool` of
    /// GnuTLS: `softhsm2-util` cannot change a PIN), in a process of its own: SoftHSM keeps
    /// the token in files, which the processes using the token read again. `p11tool` looks at
    /// the first 48 slots only: meant for a configuration of a few tokens, such as an
    /// [`SoftHsm::isolated`] one.
    ///
    /// # Panics
    /// When `p11tool` is not installed or fails.
    pub fn set_user_pin(&self, pin: &str) {
        let output = Command::new("p11tool")
            .env(CONF_VARIABLE, &self.conf.path)
            .env("GNUTLS_SO_PIN", SO_PIN)
            .arg(format!("--provider={}", self.library_path().display()))
            .args(["--initialize-pin", "--set-pin", pin])
            .arg(format!("pkcs11:serial={}", self.serial))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("p11tool cannot be run ({e}): install gnutls-bin (scripts/install-deps.sh --test)")
            });
        assert!(
            output.status.success(),
            "p11tool --initialize-pin failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn util(conf: &Path) -> Command {
    let mut command = Command::new("softhsm2-util");
    command.env(CONF_VARIABLE, conf);
    command
}

/// The slot and serial number of the token labelled `label`, from `softhsm2-util --show-slots`
/// (a slot's token lists its serial number before its label).
fn find_token(conf: &Path, label: &str) -> (u64, String) {
    let output = util(conf)
        .arg("--show-slots")
        .output()
        .unwrap_or_else(|e| panic!("softhsm2-util cannot be run ({e}): {INSTALL_HINT}"));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut slot = None;
    let mut serial = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(number) = line
            .strip_prefix("Slot ")
            .and_then(|n| n.parse::<u64>().ok())
        {
            slot = Some(number);
            serial = None;
        } else if let Some(value) = line.strip_prefix("Serial number:") {
            serial = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("Label:") {
            if let (true, Some(slot), Some(serial)) = (value.trim() == label, slot, &serial) {
                return (slot, serial.clone());
            }
        }
    }
    panic!("token {label:?} not listed by softhsm2-util --show-slots:\n{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_get_distinct_slots_and_serials() {
        let a = SoftHsm::isolated("a");
        let b = a.another("b");
        assert_ne!(a.slot, b.slot);
        assert_ne!(a.serial, b.serial);
        assert_eq!(a.serial.len(), 16, "{}", a.serial);
        assert!(a.conf_path().is_file());
        assert!(library_path().is_file());
        let free = a.uninitialised_slot();
        assert!(free != a.slot && free != b.slot);
    }
}
