//! Creating the store's directory and file with safe modes, and refusing unsafe ones.
//!
//! The file is created here, with mode 0600, before SQLite sees it: SQLite would create it with
//! 0644 minus the umask, and it gives its `-wal` and `-shm` files the database file's mode, so
//! getting the main file right gets all three right.

use std::fs::{DirBuilder, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::KeyStoreError;

/// Mode bits that let group or others write.
const GROUP_OR_OTHER_WRITE: u32 = 0o022;

/// Creates missing directories (0700) and the database file (0600), then checks that the parent
/// directory, the file and any SQLite side file are safe.
pub(super) fn prepare(path: &Path) -> Result<(), KeyStoreError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(io_error)?;
    let directory = std::fs::metadata(parent).map_err(io_error)?;
    if !directory.is_dir() {
        return Err(KeyStoreError::Io(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", parent.display()),
        )));
    }
    check(parent, &directory)?;

    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        // An existing store is opened as it is.
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(KeyStoreError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        )));
    }
    check(path, &metadata)?;

    // SQLite reuses existing side files as they are; a planted writable WAL is a way in.
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        match std::fs::metadata(&side) {
            Ok(metadata) => check(&side, &metadata)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(error)),
        }
    }
    Ok(())
}

/// The checks of [`prepare`] without creating anything: whether the store file exists.
///
/// A missing directory is acceptable when its nearest existing ancestor is a directory
/// (`prepare` would create the rest).
pub(super) fn inspect(path: &Path) -> Result<bool, KeyStoreError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match std::fs::metadata(parent) {
        Ok(directory) if directory.is_dir() => check(parent, &directory)?,
        Ok(_) => return Err(not_a_directory(parent)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            creatable(parent)?;
            return Ok(false);
        }
        Err(error) => return Err(io_error(error)),
    }
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(io_error(error)),
    };
    if !metadata.is_file() {
        return Err(KeyStoreError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        )));
    }
    check(path, &metadata)?;
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        match std::fs::metadata(&side) {
            Ok(metadata) => check(&side, &metadata)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(error)),
        }
    }
    Ok(true)
}

/// Whether the missing directory `path` could be created: its nearest existing ancestor must
/// be a directory.
fn creatable(path: &Path) -> Result<(), KeyStoreError> {
    for ancestor in path.ancestors().skip(1) {
        let ancestor = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        match std::fs::metadata(ancestor) {
            Ok(metadata) if metadata.is_dir() => return Ok(()),
            Ok(_) => return Err(not_a_directory(ancestor)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(error)),
        }
    }
    Ok(())
}

fn not_a_directory(path: &Path) -> KeyStoreError {
    KeyStoreError::Io(io::Error::new(
        io::ErrorKind::NotADirectory,
        format!("{} is not a directory", path.display()),
    ))
}

/// Maps file-system errors that mean "full" or "read-only" to their own variants.
pub(super) fn io_error(error: io::Error) -> KeyStoreError {
    match error.kind() {
        io::ErrorKind::StorageFull => KeyStoreError::Full,
        io::ErrorKind::ReadOnlyFilesystem => KeyStoreError::ReadOnly,
        _ => KeyStoreError::Io(error),
    }
}

fn check(path: &Path, metadata: &Metadata) -> Result<(), KeyStoreError> {
    let mode = metadata.mode() & 0o7777;
    if mode & GROUP_OR_OTHER_WRITE != 0 {
        return Err(KeyStoreError::Permissions(format!(
            "{} is writable by group or others (mode {mode:04o})",
            path.display()
        )));
    }
    let us = nix::unistd::geteuid().as_raw();
    if metadata.uid() != us {
        return Err(KeyStoreError::Permissions(format!(
            "{} is owned by uid {}, not by this process's uid {us}",
            path.display(),
            metadata.uid()
        )));
    }
    Ok(())
}

pub(super) fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
