//! The Mbed Crypto provider's working directory, where Mbed TLS writes every key file through
//! the fixed name `tempfile.psa_its`: another user must not be able to plant that file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::migration::{Deployment, Manager, Service, MBED};

/// The other local user of the tests.
const OTHER_UID: u32 = 65534;

fn set_mode(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn another_users_tempfile_psa_its_never_receives_a_key() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root, to act as uid {OTHER_UID} too"
    );
    let mut deployment = Deployment::new(Manager::Sqlite, MBED);
    let dir = deployment.dir.path().to_owned();
    let planted = dir.join("tempfile.psa_its");

    // A world-writable working directory: uid 65534 plants the temporary file, mode 0666.
    set_mode(&dir, 0o777);
    let status = Command::new("sh")
        .args(["-c", "umask 0; : > tempfile.psa_its"])
        .current_dir(&dir)
        .uid(OTHER_UID)
        .gid(OTHER_UID)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::metadata(&planted).unwrap().uid(), OTHER_UID);

    let refused = deployment
        .try_start(Service::Bulwarkd)
        .expect_err("bulwarkd started in a world-writable working directory");
    assert!(
        refused.contains("writable by group or others (mode 0777)")
            && refused.contains("tempfile.psa_its"),
        "{refused}"
    );

    // Closed again, the planted file is still there and writable by all: refused, by its name;
    // and so it is while it is another user's, even closed.
    set_mode(&dir, 0o700);
    let refused = deployment
        .try_start(Service::Bulwarkd)
        .expect_err("bulwarkd started with another user's tempfile.psa_its");
    assert!(
        refused.contains(&format!(
            "{} is writable by group or others (mode 0666)",
            planted.display()
        )),
        "{refused}"
    );

    set_mode(&planted, 0o600);
    let refused = deployment
        .try_start(Service::Bulwarkd)
        .expect_err("bulwarkd started with another user's tempfile.psa_its");
    assert!(
        refused.contains(&format!(
            "{} is owned by uid {OTHER_UID}",
            planted.display()
        )),
        "{refused}"
    );

    // Once it is gone, the daemon starts and its key files are its own, closed to others.
    std::fs::remove_file(&planted).unwrap();
    deployment.start(Service::Bulwarkd);
    deployment.tool(&["create-ecc-key", "-k", "private"]);
    let key_files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "psa_its"))
        .collect();
    assert_eq!(key_files.len(), 1, "{key_files:?}");
    let metadata = std::fs::metadata(&key_files[0]).unwrap();
    assert_eq!(metadata.uid(), nix::unistd::geteuid().as_raw());
    assert_eq!(metadata.mode() & 0o077, 0, "{:o}", metadata.mode());
    deployment.stop();
}
