//! The daemon's log writer: standard error, where a failed write is counted and forgotten.
//!
//! `tracing-subscriber`'s own writer reports a failed write with `eprintln!`, which panics when
//! standard error cannot be written (a pipe whose reader is gone, a full disk): a log line could
//! then end the task that logged it, and with it the whole service. [`StderrWriter`] never
//! returns an error: a line that cannot be written is counted
//! ([`counters::Counters::log_lines_lost`](crate::counters::Counters::log_lines_lost)), and the
//! first line written after a loss is preceded by one saying how many were lost since the last
//! such note.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::fmt::MakeWriter;

use crate::counters;

/// Lines lost and not yet reported in the log itself.
static UNREPORTED: AtomicU64 = AtomicU64::new(0);

/// A [`MakeWriter`] for standard error whose writers never fail (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrWriter;

impl<'a> MakeWriter<'a> for StderrWriter {
    type Writer = StderrLine;

    fn make_writer(&'a self) -> StderrLine {
        StderrLine { failed: false }
    }
}

/// The writer of one log line; counts the line as lost, once, if any part of it failed.
#[derive(Debug)]
pub struct StderrLine {
    failed: bool,
}

impl Write for StderrLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Ok(buf.len());
        }
        let mut stderr = io::stderr().lock();
        let unreported = UNREPORTED.swap(0, Ordering::Relaxed);
        if unreported > 0 {
            let note = format!("bulwarkd: {unreported} log lines could not be written\n");
            if stderr.write_all(note.as_bytes()).is_err() {
                UNREPORTED.fetch_add(unreported, Ordering::Relaxed);
            }
        }
        if stderr.write_all(buf).is_err() {
            self.failed = true;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if io::stderr().flush().is_err() {
            self.failed = true;
        }
        Ok(())
    }
}

impl Drop for StderrLine {
    fn drop(&mut self) {
        if self.failed {
            counters::log_line_lost();
            UNREPORTED.fetch_add(1, Ordering::Relaxed);
        }
    }
}
