//! Generates the protobuf message types from `proto/*.proto`.
//!
//! The `.proto` files are parsed by `protox` (pure Rust), so no system `protoc` is needed; the
//! resulting descriptor set is handed to `prost-build`, which writes one `<package>.rs` per
//! package into `OUT_DIR`.

use std::error::Error;
use std::fs;
use std::path::PathBuf;

const PROTO_DIR: &str = "proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");

    let mut files: Vec<PathBuf> = fs::read_dir(PROTO_DIR)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "proto"));
    // Deterministic order keeps the generated output stable between builds.
    files.sort();

    let fds = protox::compile(&files, [PROTO_DIR])?;
    prost_build::Config::new()
        // Every message can be wiped after encoding: bodies carry key material and plaintexts.
        .message_attribute(".", "#[derive(::zeroize::Zeroize)]")
        .enum_attribute(".", "#[derive(::zeroize::Zeroize)]")
        .compile_fds(fds)?;
    Ok(())
}
