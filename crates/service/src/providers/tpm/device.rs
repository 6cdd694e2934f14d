//! The TPM connection: one ESAPI context per TCTI string in the process, behind a mutex, with
//! the storage primary key every key of the provider is wrapped under.
//!
//! # One connection per TCTI
//!
//! A TPM reached through `device:/dev/tpm0` or a simulator's socket serves one client at a
//! time, and bulwarkd builds a new provider on SIGHUP while the old one still serves requests.
//! So [`Tpm::open`] keeps a process-wide table of the open TPMs by TCTI string (weak
//! references): a provider built while another one on the same TCTI is alive shares its context
//! instead of opening a second connection. The hierarchy auth values of the newest provider are
//! the ones used from then on (checked by re-creating the primary key with them).
//!
//! # The primary key and TPM resets
//!
//! The primary key is an ECC NIST P-256 restricted decryption (storage) key with AES-128-CFB,
//! made under the owner hierarchy from a fixed template with an empty unique field and an empty
//! auth value: the TPM derives the same key from the owner seed every time, so keys wrapped
//! under it load again after the primary key is lost (TPM reset, daemon restart). It is created
//! at start-up; when a command fails in a way a reset or a lost connection explains (a TCTI or
//! ESAPI failure, an unknown handle, an uninitialised TPM), [`Tpm::run`] drops the context, opens
//! a new one, re-creates the primary key and runs the command again, once.
//!
//! Keys are loaded for each operation and flushed after it: a TPM has few object slots (three in
//! swtpm), and the primary key holds one of them.

use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::response_code::Tss2ResponseCode;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::handles::{KeyHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, Digest, EccPoint, EccScheme, KeyDerivationFunctionScheme, Public, PublicEccParameters,
    SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::Context;
use zeroize::Zeroizing;

/// Why a TPM could not be opened; the message names the cause.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The TCTI string does not parse.
    #[error("tcti {0:?} is not a TCTI string (device[:path], mssim[:host=…,port=…], swtpm[:host=…,port=…], tabrmd[:bus_name=…,bus_type=…])")]
    BadTcti(String),
    /// The TCTI could not be loaded or the TPM did not answer.
    #[error("the TPM cannot be reached through tcti {tcti:?}: {reason}")]
    Unreachable {
        /// The TCTI string.
        tcti: String,
        /// The TSS library's error.
        reason: String,
    },
    /// The owner hierarchy refused the auth value.
    #[error(
        "owner_hierarchy_auth is not the owner hierarchy's auth value (the TPM refused it: {0})"
    )]
    WrongOwnerAuth(String),
    /// Creating the primary key failed otherwise.
    #[error("the primary key cannot be created under the owner hierarchy: {0}")]
    Primary(String),
}

/// One TPM, reached through one TCTI; shared by the providers of the process using that TCTI.
#[derive(Debug)]
pub(super) struct Tpm {
    tcti: String,
    inner: Mutex<Inner>,
}

/// The TPM's state behind the mutex.
pub(super) struct Inner {
    tcti: TctiNameConf,
    context: Option<Context>,
    primary: Option<KeyHandle>,
    owner_auth: Zeroizing<Vec<u8>>,
    endorsement_auth: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("connected", &self.context.is_some())
            .field("primary", &self.primary)
            .finish_non_exhaustive()
    }
}

/// The open TPMs of the process: TCTI string and TPM.
type OpenTpms = Mutex<Vec<(String, Weak<Tpm>)>>;

/// The open TPMs of the process, by TCTI string.
fn open_tpms() -> &'static OpenTpms {
    static OPEN: OnceLock<OpenTpms> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(Vec::new()))
}

/// A failure of a TPM command, before it is given a PSA status.
#[derive(Debug)]
pub enum Failure {
    /// The TSS or the TPM refused.
    Tss(tss_esapi::Error),
    /// A check of this provider refused.
    Psa(psa_crypto::types::status::Error),
}

impl From<tss_esapi::Error> for Failure {
    fn from(error: tss_esapi::Error) -> Self {
        Failure::Tss(error)
    }
}

impl From<psa_crypto::types::status::Error> for Failure {
    fn from(error: psa_crypto::types::status::Error) -> Self {
        Failure::Psa(error)
    }
}

/// The raw TSS2 response code of a TSS error (layer in bits 16–23).
pub(super) fn raw_code(code: Tss2ResponseCode) -> u32 {
    // The crate gives no accessor; both formats display the raw value in hexadecimal.
    let shown = match code {
        Tss2ResponseCode::Success => return 0,
        Tss2ResponseCode::FormatZero(rc) => rc.to_string(),
        Tss2ResponseCode::FormatOne(rc) => rc.to_string(),
    };
    shown
        .rsplit("0x")
        .next()
        .and_then(|digits| u32::from_str_radix(digits.trim(), 16).ok())
        .unwrap_or(u32::MAX)
}

/// Whether a failure may come from a TPM reset or a lost connection, so that reconnecting and
/// re-creating the primary key may cure it.
fn may_be_reset(failure: &Failure) -> bool {
    let Failure::Tss(tss_esapi::Error::Tss2Error(code)) = failure else {
        return false;
    };
    let layer = (raw_code(*code) >> 16) & 0xff;
    if layer != 0 {
        // Not the TPM's answer: the TCTI, the ESAPI or a resource manager failed.
        return true;
    }
    matches!(
        code.kind(),
        Some(
            Tss2ResponseCodeKind::Handle
                | Tss2ResponseCodeKind::Initialize
                | Tss2ResponseCodeKind::ReferenceH0
                | Tss2ResponseCodeKind::ReferenceH1
                | Tss2ResponseCodeKind::ReferenceH2
                | Tss2ResponseCodeKind::Integrity
                | Tss2ResponseCodeKind::Reboot
        )
    )
}

/// The template of the primary key (see the module documentation).
fn primary_template() -> Result<Public, tss_esapi::Error> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    Ok(Public::Ecc {
        object_attributes: attributes,
        name_hashing_algorithm: HashingAlgorithm::Sha256,
        auth_policy: Digest::default(),
        parameters: PublicEccParameters::new(
            SymmetricDefinitionObject::AES_128_CFB,
            EccScheme::Null,
            EccCurve::NistP256,
            KeyDerivationFunctionScheme::Null,
        ),
        unique: EccPoint::default(),
    })
}

/// Whether a TPM error is an authorisation failure.
pub(super) fn is_auth_failure(error: &tss_esapi::Error) -> bool {
    matches!(
        error,
        tss_esapi::Error::Tss2Error(code) if matches!(
            code.kind(),
            Some(Tss2ResponseCodeKind::BadAuth | Tss2ResponseCodeKind::AuthFail)
        )
    )
}

impl Inner {
    /// Opens the context and creates the primary key.
    fn connect(&mut self, tcti_text: &str) -> Result<(), OpenError> {
        self.disconnect();
        let mut context = Context::new(self.tcti.clone()).map_err(|e| OpenError::Unreachable {
            tcti: tcti_text.to_owned(),
            reason: e.to_string(),
        })?;
        let owner = Auth::try_from(self.owner_auth.to_vec())
            .map_err(|e| OpenError::WrongOwnerAuth(e.to_string()))?;
        context
            .tr_set_auth(ObjectHandle::from(Hierarchy::Owner), owner)
            .map_err(|e| OpenError::Primary(e.to_string()))?;
        if let Some(auth) = &self.endorsement_auth {
            let auth =
                Auth::try_from(auth.to_vec()).map_err(|e| OpenError::Primary(e.to_string()))?;
            context
                .tr_set_auth(ObjectHandle::from(Hierarchy::Endorsement), auth)
                .map_err(|e| OpenError::Primary(e.to_string()))?;
        }
        let template = primary_template().map_err(|e| OpenError::Primary(e.to_string()))?;
        let primary = context
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
            })
            .map_err(|e| {
                if is_auth_failure(&e) {
                    OpenError::WrongOwnerAuth(e.to_string())
                } else if may_be_reset(&Failure::Tss(e)) {
                    OpenError::Unreachable {
                        tcti: tcti_text.to_owned(),
                        reason: e.to_string(),
                    }
                } else {
                    OpenError::Primary(e.to_string())
                }
            })?;
        self.primary = Some(primary.key_handle);
        self.context = Some(context);
        Ok(())
    }

    /// Drops the context (the TPM flushes what it held when the connection goes, or already
    /// lost it).
    fn disconnect(&mut self) {
        if let (Some(context), Some(primary)) = (self.context.as_mut(), self.primary.take()) {
            let _ = context.flush_context(primary.into());
        }
        self.context = None;
    }
}

/// What a command sees: the context and the primary key.
pub(super) struct Session<'a> {
    /// The ESAPI context.
    pub context: &'a mut Context,
    /// The primary key, parent of every key of the provider.
    pub primary: KeyHandle,
}

impl Tpm {
    /// The TPM reached through `tcti`, shared with any provider of this process already using
    /// that TCTI string, after creating the primary key with `owner_auth`.
    ///
    /// # Errors
    /// An [`OpenError`] naming the cause: bad TCTI string, TPM unreachable, wrong owner auth.
    pub(super) fn open(
        tcti: &str,
        owner_auth: Zeroizing<Vec<u8>>,
        endorsement_auth: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Arc<Tpm>, OpenError> {
        let name = TctiNameConf::from_str(tcti).map_err(|_| OpenError::BadTcti(tcti.to_owned()))?;
        let mut open = open_tpms().lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|(_, tpm)| tpm.strong_count() > 0);
        if let Some(tpm) = open
            .iter()
            .find(|(text, _)| text == tcti)
            .and_then(|(_, tpm)| tpm.upgrade())
        {
            let mut inner = tpm.lock();
            let previous = (
                std::mem::replace(&mut inner.owner_auth, owner_auth),
                std::mem::replace(&mut inner.endorsement_auth, endorsement_auth),
            );
            if let Err(error) = inner.connect(tcti) {
                // The running provider keeps working with what it had.
                inner.owner_auth = previous.0;
                inner.endorsement_auth = previous.1;
                let _ = inner.connect(tcti);
                return Err(error);
            }
            drop(inner);
            return Ok(tpm);
        }
        let mut inner = Inner {
            tcti: name,
            context: None,
            primary: None,
            owner_auth,
            endorsement_auth,
        };
        inner.connect(tcti)?;
        let tpm = Arc::new(Tpm {
            tcti: tcti.to_owned(),
            inner: Mutex::new(inner),
        });
        open.push((tcti.to_owned(), Arc::downgrade(&tpm)));
        Ok(tpm)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `command` on the TPM; if it fails in a way a TPM reset or a lost connection
    /// explains, reconnects, re-creates the primary key and runs it once more.
    ///
    /// `command` must be safe to run twice (loading, signing, decrypting, creating a key whose
    /// first result was lost).
    ///
    /// # Errors
    /// The command's failure (the second one when it was retried), or the reconnection's.
    pub(super) fn run<T>(
        &self,
        mut command: impl FnMut(&mut Session<'_>) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut inner = self.lock();
        let first = match Self::attempt(&mut inner, &mut command) {
            Some(Ok(value)) => return Ok(value),
            Some(Err(failure)) if !may_be_reset(&failure) => return Err(failure),
            Some(Err(failure)) => Some(failure),
            None => None,
        };
        if let Err(error) = inner.connect(&self.tcti) {
            tracing::error!(tcti = %self.tcti, %error, "the TPM cannot be reached again");
            return Err(first.unwrap_or(Failure::Psa(
                psa_crypto::types::status::Error::CommunicationFailure,
            )));
        }
        tracing::warn!(tcti = %self.tcti, "reconnected to the TPM and re-created the primary key");
        Self::attempt(&mut inner, &mut command).unwrap_or(Err(Failure::Psa(
            psa_crypto::types::status::Error::CommunicationFailure,
        )))
    }

    /// One run of `command`, or `None` when there is no connection.
    fn attempt<T>(
        inner: &mut Inner,
        command: &mut impl FnMut(&mut Session<'_>) -> Result<T, Failure>,
    ) -> Option<Result<T, Failure>> {
        let primary = inner.primary?;
        let context = inner.context.as_mut()?;
        let mut session = Session { context, primary };
        Some(command(&mut session))
    }
}

impl Drop for Tpm {
    fn drop(&mut self) {
        self.lock().disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_tcti_strings_are_named() {
        let error = Tpm::open("carrier-pigeon", Zeroizing::new(Vec::new()), None).unwrap_err();
        assert!(matches!(error, OpenError::BadTcti(_)), "{error}");
        assert!(error.to_string().contains("carrier-pigeon"));
    }

    #[test]
    fn unreachable_tpms_are_named() {
        // Nothing listens on port 1.
        let error = Tpm::open(
            "swtpm:host=127.0.0.1,port=1",
            Zeroizing::new(Vec::new()),
            None,
        )
        .unwrap_err();
        assert!(matches!(error, OpenError::Unreachable { .. }), "{error}");
        assert!(error.to_string().contains("port=1"), "{error}");
    }
}
