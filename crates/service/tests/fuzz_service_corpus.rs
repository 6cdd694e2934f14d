#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replays the committed corpus of the `service` fuzz target (`fuzz/corpus/service/`) through
//! the very checks the target runs (`fuzz/src/service.rs`, compiled in here), so that a plain
//! `cargo test` keeps every input the fuzzer found interesting passing, without libFuzzer.
//!
//! The checks build one service for the whole process and change its working directory to a
//! temporary directory (Mbed TLS writes its key files there), so this file holds one test.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

// The fuzz crate's public checks, private to this test.
#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/service.rs"]
mod checks;

/// The files of the corpus, sorted; fails when the directory is missing or empty.
fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/service");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "fuzz corpus {} is empty; seed it (see fuzz/README.md)",
        dir.display()
    );
    files
}

#[test]
fn service_corpus() {
    let files = corpus();
    let mut failures = Vec::new();
    // The generated seeds first, then every corpus file, all read before the first check runs
    // (the checks change the working directory).
    let inputs: Vec<(String, Vec<u8>)> = checks::seeds()
        .into_iter()
        .enumerate()
        .map(|(i, data)| (format!("seed {i}"), data))
        .chain(
            files
                .iter()
                .map(|path| (path.display().to_string(), std::fs::read(path).unwrap())),
        )
        .collect();
    let count = inputs.len();
    for (name, data) in inputs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| checks::check_service_request(&data)))
        {
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
            failures.push(format!("{name}: {message}\n  input: {shown}"));
        }
    }
    // The service lives on in a static; its files need not.
    let _ = std::fs::remove_dir_all(checks::work_dir());
    assert!(
        failures.is_empty(),
        "{} of {count} service corpus inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
