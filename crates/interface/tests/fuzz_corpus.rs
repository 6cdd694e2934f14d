#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the very checks the fuzz
//! targets run (`fuzz/src/lib.rs`, compiled in here), so that a plain `cargo test` keeps every
//! input the fuzzers found interesting passing, without libFuzzer or a nightly toolchain.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

// The fuzz crate's public checks, private to this test.
#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/lib.rs"]
mod checks;

/// The check a fuzz target runs on one input.
type Check = fn(&[u8]);

/// Every fuzz target and its check.
const TARGETS: [(&str, Check); 3] = [
    ("request_parser", checks::check_request_bytes),
    ("op_bodies", checks::check_op_body),
    ("response_parser", checks::check_response_bytes),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// The files of one target's corpus, sorted; fails when the directory is missing or empty.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir().join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "fuzz corpus {} is empty; seed it with fuzz/seed-corpus.py",
        dir.display()
    );
    files
}

/// Runs `check` on every file of `target`'s corpus and reports every failing file at once.
fn replay(target: &str) {
    let check = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .unwrap();
    let files = corpus(target);
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            let shown = if data.len() <= 256 {
                hex::encode(&data)
            } else {
                format!("{}… ({} bytes)", hex::encode(&data[..256]), data.len())
            };
            failures.push(format!("{}: {message}\n  input: {shown}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} corpus files fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn request_parser_corpus() {
    replay("request_parser");
}

#[test]
fn op_bodies_corpus() {
    replay("op_bodies");
}

#[test]
fn response_parser_corpus() {
    replay("response_parser");
}

/// Corpora replayed by another crate's test, because their target needs more than this crate:
/// `service` drives the whole daemon pipeline (crates/service/tests/fuzz_service_corpus.rs).
const REPLAYED_ELSEWHERE: &[&str] = &["service"];

/// A target added to `fuzz/` must be replayed here too, or be listed in `REPLAYED_ELSEWHERE`.
#[test]
fn every_corpus_directory_is_replayed() {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} is missing: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                TARGETS.iter().any(|(target, _)| *target == name)
                    || REPLAYED_ELSEWHERE.contains(&name.as_str()),
                "fuzz/corpus/{name} has no replay test in {}",
                file!()
            );
        }
    }
    for (target, _) in TARGETS {
        assert!(dir.join(target).is_dir(), "fuzz/corpus/{target} is missing");
    }
}
