//! Process-wide counters of what the daemon could not do out of any client's sight: log lines
//! and audit records it could not write, denials it folded into one audit record.
//!
//! They are kept here, in one place, so that whatever exposes them (a periodic log line, an
//! audit record, metrics) reads the same numbers; they live for the whole process, across
//! configuration reloads, which build a new service and a new audit log. Counting is one relaxed
//! atomic increment: it never blocks, allocates or fails, so it is safe on every error path.

use std::sync::atomic::{AtomicU64, Ordering};

static LOG_LINES_LOST: AtomicU64 = AtomicU64::new(0);
static AUDIT_RECORDS_LOST: AtomicU64 = AtomicU64::new(0);
static DENIALS_FOLDED: AtomicU64 = AtomicU64::new(0);

/// The counters at one moment, each counted since the process started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Log lines that could not be written (standard error closed, its disk full).
    pub log_lines_lost: u64,
    /// Audit records that could not be written.
    pub audit_records_lost: u64,
    /// Denied requests that got no record of their own and were counted in the `count` of
    /// another denial's record instead (see `audit.rs`, "Denials").
    pub denials_folded: u64,
}

/// The counters now.
pub fn now() -> Counters {
    Counters {
        log_lines_lost: LOG_LINES_LOST.load(Ordering::Relaxed),
        audit_records_lost: AUDIT_RECORDS_LOST.load(Ordering::Relaxed),
        denials_folded: DENIALS_FOLDED.load(Ordering::Relaxed),
    }
}

pub(crate) fn log_line_lost() {
    LOG_LINES_LOST.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn audit_records_lost(records: u64) {
    AUDIT_RECORDS_LOST.fetch_add(records, Ordering::Relaxed);
}

pub(crate) fn denials_folded(denials: u64) {
    DENIALS_FOLDED.fetch_add(denials, Ordering::Relaxed);
}
