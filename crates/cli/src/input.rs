//! The data of sign, verify, encrypt, decrypt and hash: the argument, a file, or standard
//! input.

use std::io::{IsTerminal as _, Read as _};

use crate::cli::Input;
use crate::error::Failure;

/// The bytes `input` names: the argument's UTF-8 bytes; the file of `--input-file`; standard
/// input for `-`, or when there is no argument and standard input is not a terminal.
pub(crate) fn read(input: &Input) -> Result<Vec<u8>, Failure> {
    if let Some(path) = &input.input_file {
        return std::fs::read(path).map_err(|e| {
            Failure::generic(format!(
                "cannot read the input file {}: {e}",
                path.display()
            ))
        });
    }
    match input.input_data.as_deref() {
        Some("-") => read_stdin(),
        Some(text) => Ok(text.as_bytes().to_vec()),
        None if !std::io::stdin().is_terminal() => read_stdin(),
        None => Err(Failure::generic(
            "no input data: give it as an argument, with --input-file <path>, or on standard \
             input (`-`)",
        )),
    }
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut data = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut data)
        .map_err(|e| Failure::generic(format!("cannot read standard input: {e}")))?;
    Ok(data)
}
