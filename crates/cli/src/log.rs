//! Log lines on standard error, in parsec-tool's format (`[INFO  bulwark] ...`), filtered by
//! `RUST_LOG` as env_logger does for parsec-tool (default `info`).

use std::fmt;
use std::io::Write as _;
use std::sync::OnceLock;

/// The levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Nothing is logged.
    Off,
    /// Failures.
    Error,
    /// Warnings.
    Warn,
    /// What the command does (the default).
    Info,
    /// More detail.
    Debug,
}

static LEVEL: OnceLock<Level> = OnceLock::new();

/// The level `RUST_LOG` asks for: the last bare level among its comma-separated directives
/// (directives naming a module apply when they name `bulwark` or `parsec_tool`), else `info`.
pub(crate) fn level_from(spec: Option<&str>) -> Level {
    let mut level = Level::Info;
    for directive in spec.unwrap_or("").split(',').map(str::trim) {
        let text = match directive.split_once('=') {
            None => directive,
            // parsec-tool's module name too, so scripts that quieten it quieten bulwark.
            Some((module, text)) if matches!(module.trim(), "bulwark" | "parsec_tool") => text,
            Some(_) => continue,
        };
        level = match text.trim().to_ascii_lowercase().as_str() {
            "off" => Level::Off,
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" | "trace" => Level::Debug,
            _ => continue,
        };
    }
    level
}

fn level() -> Level {
    *LEVEL.get_or_init(|| level_from(std::env::var("RUST_LOG").ok().as_deref()))
}

fn write(at: Level, tag: &str, message: fmt::Arguments<'_>) {
    if level() >= at {
        let _ = writeln!(std::io::stderr().lock(), "[{tag} bulwark] {message}");
    }
}

/// Logs what the command does.
pub(crate) fn info(message: fmt::Arguments<'_>) {
    write(Level::Info, "INFO ", message);
}

/// Logs a failure.
pub(crate) fn error(message: fmt::Arguments<'_>) {
    write(Level::Error, "ERROR", message);
}

/// Whether info lines are shown (the spinner is not drawn when they are not).
pub(crate) fn info_enabled() -> bool {
    level() >= Level::Info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_sets_the_level() {
        assert_eq!(level_from(None), Level::Info);
        assert_eq!(level_from(Some("error")), Level::Error);
        assert_eq!(level_from(Some("OFF")), Level::Off);
        assert_eq!(level_from(Some("warn,other=debug")), Level::Warn);
        assert_eq!(level_from(Some("bulwark=debug")), Level::Debug);
        assert_eq!(level_from(Some("parsec_tool=off")), Level::Off);
        assert_eq!(level_from(Some("nonsense")), Level::Info);
    }
}
