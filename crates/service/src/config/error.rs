//! Why a configuration could not be loaded, and where in the file.
//!
//! Every message names the key at fault as a path (`provider[1].slot_number`); errors found
//! while reading the text also give its line and column.

use std::fmt;
use std::path::PathBuf;

/// Where in the file something is (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Location {
    /// The location of a byte offset into `text`.
    pub(super) fn of_offset(text: &str, offset: usize) -> Location {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// " (line L, column C)" or nothing.
fn at(location: &Option<Location>) -> String {
    location.map(|l| format!(" ({l})")).unwrap_or_default()
}

/// Why a configuration could not be loaded. The message names the key and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("TOML syntax error{}: {message}", at(location))]
    Syntax {
        /// Where the parser stopped.
        location: Option<Location>,
        /// What the parser expected.
        message: String,
    },
    /// A value has the wrong type, a required key is missing, or a value is not one of those
    /// accepted.
    #[error("{key}: {message}{}", at(location))]
    Type {
        /// Path of the key, e.g. `listener.timeout` or `provider[1].slot_number`.
        key: String,
        /// What is wrong.
        message: String,
        /// Where the value (or the table missing the key) is.
        location: Option<Location>,
    },
    /// The file is well-formed but inconsistent (see [`Config::validate`](super::Config::validate)).
    #[error("{key}: {reason}")]
    Invalid {
        /// Path of the key, e.g. `provider[1].key_info_manager`.
        key: String,
        /// What is wrong, in one sentence.
        reason: String,
    },
}

impl ConfigError {
    /// The path of the offending key, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Type { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    pub(super) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}
