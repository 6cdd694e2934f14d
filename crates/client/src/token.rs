//! Where the client takes the tokens of [`Auth::Token`](crate::Auth::Token) and
//! [`Auth::JwtSvid`](crate::Auth::JwtSvid) from.
//!
//! A [`TokenSource`] is asked for the token at every request, so a token that is renewed (a
//! file rewritten by an identity agent, a callback that fetches a fresh one) is used as soon
//! as it changes, without rebuilding the client. Tokens are held in [`Zeroizing`] buffers and
//! never shown by `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};

/// A function that returns the current token.
type Callback = dyn Fn() -> Result<Zeroizing<String>, String> + Send + Sync;

/// What a file looked like when it was last read.
#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

enum Source {
    Fixed(Zeroizing<String>),
    File {
        path: PathBuf,
        last: Mutex<Option<(Stamp, Zeroizing<String>)>>,
    },
    Callback(Box<Callback>),
}

/// Where a token comes from: a fixed string, a file re-read whenever it changes, or a
/// callback. Cloning shares the source.
///
/// ```no_run
/// use bulwark_client::{Auth, Client, TokenSource};
/// let client = Client::builder()
///     .auth(Auth::Token(TokenSource::file("/run/secrets/bulwark-token")))
///     .build()?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
#[derive(Clone)]
pub struct TokenSource(Arc<Source>);

impl TokenSource {
    /// Always this token.
    pub fn fixed(token: impl Into<String>) -> Self {
        TokenSource(Arc::new(Source::Fixed(Zeroizing::new(token.into()))))
    }

    /// The content of `path`, without surrounding white space, read again whenever the file
    /// changes (its modification time, size or inode; an agent that renews the token by
    /// writing a new file and renaming it over the old one is seen at the next request).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        TokenSource(Arc::new(Source::File {
            path: path.into(),
            last: Mutex::new(None),
        }))
    }

    /// The token `callback` returns, asked at every request (cache in the callback if fetching
    /// is costly). An `Err` fails the request with [`ErrorKind::Credentials`] and its text.
    pub fn callback(
        callback: impl Fn() -> Result<Zeroizing<String>, String> + Send + Sync + 'static,
    ) -> Self {
        TokenSource(Arc::new(Source::Callback(Box::new(callback))))
    }

    /// The current token.
    ///
    /// # Errors
    /// [`ErrorKind::Credentials`] when the file cannot be read or is empty, or the callback
    /// fails.
    pub fn token(&self) -> Result<Zeroizing<String>, Error> {
        match &*self.0 {
            Source::Fixed(token) => Ok(token.clone()),
            Source::File { path, last } => read_file(path, last),
            Source::Callback(callback) => callback().map_err(|why| {
                Error::new(ErrorKind::Credentials).with_detail(format!("token callback: {why}"))
            }),
        }
    }

    /// The file a file source reads.
    pub fn path(&self) -> Option<&Path> {
        match &*self.0 {
            Source::File { path, .. } => Some(path),
            Source::Fixed(_) | Source::Callback(_) => None,
        }
    }
}

fn stamp(metadata: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode: metadata.ino(),
    }
}

fn read_file(
    path: &Path,
    last: &Mutex<Option<(Stamp, Zeroizing<String>)>>,
) -> Result<Zeroizing<String>, Error> {
    let unreadable = |e: std::io::Error| {
        Error::new(ErrorKind::Credentials)
            .with_detail(format!("token file {}: {e}", path.display()))
    };
    let now = stamp(&std::fs::metadata(path).map_err(unreadable)?);
    let mut last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((seen, token)) = &*last {
        if *seen == now {
            return Ok(token.clone());
        }
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(unreadable)?);
    let token = Zeroizing::new(text.trim().to_owned());
    if token.is_empty() {
        return Err(Error::new(ErrorKind::Credentials)
            .with_detail(format!("token file {} is empty", path.display())));
    }
    *last = Some((now, token.clone()));
    Ok(token)
}

impl PartialEq for TokenSource {
    /// Two sources are equal when they are the same source (clones of one another).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TokenSource {}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Source::Fixed(_) => f.write_str("TokenSource::Fixed(<redacted>)"),
            Source::File { path, .. } => write!(f, "TokenSource::File({})", path.display()),
            Source::Callback(_) => f.write_str("TokenSource::Callback"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let source = TokenSource::file(&path);
        assert_eq!(source.token().unwrap().as_str(), "first");
        // Renewed the way agents do it: a new file renamed over the old one.
        let next = dir.path().join("token.new");
        std::fs::write(&next, "second").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(source.token().unwrap().as_str(), "second");
        std::fs::write(&path, "  \n").unwrap();
        assert_eq!(source.token().unwrap_err().kind(), ErrorKind::Credentials);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(source.token().unwrap_err().kind(), ErrorKind::Credentials);
    }

    #[test]
    fn callbacks_are_asked_each_time_and_debug_hides_tokens() {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        let source = TokenSource::callback(move || {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n < 2 {
                Ok(Zeroizing::new(format!("t{n}")))
            } else {
                Err("agent gone".into())
            }
        });
        assert_eq!(source.token().unwrap().as_str(), "t0");
        assert_eq!(source.token().unwrap().as_str(), "t1");
        let e = source.token().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Credentials);
        assert!(e.to_string().contains("agent gone"), "{e}");
        let fixed = TokenSource::fixed("secret.token.value");
        assert!(!format!("{fixed:?}").contains("secret"));
        assert_eq!(fixed, fixed.clone());
        assert_ne!(fixed, TokenSource::fixed("secret.token.value"));
    }
}
