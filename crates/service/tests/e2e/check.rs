//! `bulwarkd --check` and start-up agree: on every configuration file the test suite uses (the
//! harness's, the built-in default, the examples in the documentation, the hardware providers'
//! and a few wrong ones), `--check` passes exactly when a real start succeeds, and `--check`
//! changes no file, on a fresh directory and again on the state a start left.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulwark_testenv::softhsm::CONF_VARIABLE;
use bulwark_testenv::swtpm::Swtpm;

use crate::harness::{config_text, provider_table, Auth, Provider};

/// A configuration file for a daemon in a given directory, and the environment it needs.
struct Case {
    name: String,
    text: Box<dyn Fn(&Path) -> String>,
    env: Vec<(String, String)>,
}

impl Case {
    fn new(name: impl Into<String>, text: impl Fn(&Path) -> String + 'static) -> Case {
        Case {
            name: name.into(),
            text: Box::new(text),
            env: Vec::new(),
        }
    }
}

/// Every file's path, size, mode and modification time under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, u32, i64, i64)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).unwrap();
        files.insert(
            path.clone(),
            (
                metadata.len(),
                metadata.mode(),
                metadata.mtime(),
                metadata.mtime_nsec(),
            ),
        );
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        }
    }
    files
}

fn command(config: &Path, dir: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwarkd"));
    command
        .arg("--config")
        .arg(config)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    command
}

/// `bulwarkd --check`: whether it called the file valid, and its output.
fn check(config: &Path, dir: &Path, env: &[(String, String)]) -> (bool, String) {
    let output = command(config, dir, env).arg("--check").output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A real start: whether the daemon came to answer on `socket` (it is then stopped), and its
/// output.
fn start(config: &Path, dir: &Path, socket: &Path, env: &[(String, String)]) -> (bool, String) {
    let log_path = dir.join("start.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = command(config, dir, env)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    // A guard only: a start takes well under a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = loop {
        if UnixStream::connect(socket).is_ok() {
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        assert!(Instant::now() < deadline, "no start and no exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    if started {
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }
    let status = child.wait().unwrap();
    assert!(!started || status.success(), "stopped with {status}");
    let text = std::fs::read_to_string(&log_path).unwrap();
    std::fs::remove_file(&log_path).unwrap();
    (started, text)
}

/// Runs `--check` then a start on `case` in a fresh directory, then both again on the state the
/// start left; returns whether the file is valid.
fn agree(case: &Case) -> bool {
    let dir = tempfile::Builder::new()
        .prefix("bulwark-check")
        .tempdir()
        .unwrap();
    let dir = dir.path();
    let config = dir.join("config.toml");
    let text = (case.text)(dir);
    std::fs::write(&config, &text).unwrap();
    let socket = dir.join("s.sock");
    let mut valid = None;
    for round in ["a fresh directory", "the state a start left"] {
        let before = snapshot(dir);
        let (checked, check_output) = check(&config, dir, &case.env);
        assert_eq!(
            snapshot(dir),
            before,
            "{}, {round}: --check changed files\n{check_output}",
            case.name
        );
        let (started, start_output) = start(&config, dir, &socket, &case.env);
        assert_eq!(
            checked,
            started,
            "{}, {round}: --check says {}, a start {}\n--- file\n{text}\n--- --check\n\
             {check_output}\n--- start\n{start_output}",
            case.name,
            if checked { "valid" } else { "invalid" },
            if started { "succeeds" } else { "fails" },
        );
        valid = Some(started);
        if !started {
            break;
        }
    }
    valid.unwrap()
}

/// The configurations of the harness: both software providers, both authenticators, and the
/// `[core_settings]` lines the tests add.
fn harness_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for provider in [Provider::MbedCrypto, Provider::OpenSsl] {
        for auth in [
            Auth::direct(),
            Auth::unix(),
            Auth::UnixPeer {
                admins: vec!["0".into()],
            },
        ] {
            for extra in [
                "",
                "audit_log = \"journal\"",
                "audit_log = \"off\"",
                "max_connections_per_client = 4",
                "max_connections = 8\nmax_connections_per_client = 8",
            ] {
                let auth_name = format!("{auth:?}");
                let auth = auth.clone();
                cases.push(Case::new(
                    format!("harness {provider:?} {auth_name} [{extra}]"),
                    move |dir| config_text(dir, &auth, extra, &provider_table(provider)),
                ));
            }
        }
        cases.push(Case::new(
            format!("harness {provider:?}, audit log in another directory"),
            move |dir| {
                std::fs::create_dir(dir.join("elsewhere")).unwrap();
                let audit = format!(
                    "audit_log = \"{}\"",
                    dir.join("elsewhere/audit.jsonl").display()
                );
                config_text(dir, &Auth::direct(), &audit, &provider_table(provider))
            },
        ));
    }
    cases
}

/// `text` with every path under `old` (a directory prefix) moved into `dir`.
fn moved(text: &str, old: &str, dir: &Path) -> String {
    text.replace(old, &format!("{}/", dir.display()))
}

/// The built-in default configuration (`--print-default-config`), its paths moved into the
/// test's directory; as it is (root refused) and allowing root.
fn default_cases() -> Vec<Case> {
    let output = Command::new(env!("CARGO_BIN_EXE_bulwarkd"))
        .arg("--print-default-config")
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("/run/parsec/parsec.sock"), "{text}");
    let at = |dir: &Path, text: &str| {
        moved(text, "/var/lib/parsec/", dir).replace(
            "/run/parsec/parsec.sock",
            &dir.join("s.sock").display().to_string(),
        )
    };
    let as_is = text.clone();
    let allow_root = text.replace("allow_root = false", "allow_root = true");
    assert_ne!(allow_root, text, "allow_root not in the default file");
    vec![
        Case::new("the default configuration", move |dir| at(dir, &as_is)),
        Case::new("the default configuration, allow_root", move |dir| {
            at(dir, &allow_root)
        }),
    ]
}

/// The complete configuration files shown in BENCHMARKS.md (`$WORK/<name>/` is the directory).
fn documented_cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut cases = Vec::new();
    for (i, block) in text.split("```toml\n").skip(1).enumerate() {
        let block = block.split("```").next().unwrap().to_owned();
        if !block.contains("[listener]") {
            continue;
        }
        cases.push(Case::new(format!("BENCHMARKS.md file {i}"), move |dir| {
            block
                .lines()
                .map(|line| match line.find("$WORK/") {
                    Some(at) => {
                        let rest = &line[at + "$WORK/".len()..];
                        let rest = &rest[rest.find('/').map_or(0, |slash| slash + 1)..];
                        format!("{}{}/{rest}", &line[..at], dir.display())
                    }
                    None => line.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        }));
    }
    assert!(!cases.is_empty(), "no configuration file in BENCHMARKS.md");
    cases
}

/// Files that must be refused, by both.
fn wrong_cases() -> Vec<Case> {
    let openssl = provider_table(Provider::OpenSsl);
    let missing_manager = openssl.replace("sqlite-manager", "another-manager");
    vec![
        Case::new("a provider naming no key manager", move |dir| {
            config_text(dir, &Auth::direct(), "", &missing_manager)
        }),
        Case::new("a timeout that is not a number", move |dir| {
            config_text(dir, &Auth::direct(), "", &provider_table(Provider::OpenSsl))
                .replace("timeout = 2000", "timeout = \"soon\"")
        }),
        Case::new("JwtSvid authentication", move |dir| {
            config_text(dir, &Auth::direct(), "", &provider_table(Provider::OpenSsl))
                .replace("auth_type = \"Direct\"", "auth_type = \"JwtSvid\"")
        }),
        Case::new("an audit log in a missing directory", move |dir| {
            let audit = format!(
                "audit_log = \"{}\"",
                dir.join("missing/audit.jsonl").display()
            );
            config_text(
                dir,
                &Auth::direct(),
                &audit,
                &provider_table(Provider::OpenSsl),
            )
        }),
        Case::new("a key store under a file", move |dir| {
            std::fs::write(dir.join("kim"), b"not a directory").unwrap();
            config_text(dir, &Auth::direct(), "", &provider_table(Provider::OpenSsl))
        }),
    ]
}

#[test]
fn check_and_start_agree_on_every_configuration_file() {
    let mut cases = harness_cases();
    cases.extend(default_cases());
    cases.extend(documented_cases());
    // Upstream's OnDisk key manager: its mappings are read, Bulwark's own store sits beside.
    // Its store is named inside the case's directory: the default, /var/lib/parsec/mappings,
    // belongs to whatever daemon last ran on the machine.
    let on_disk = provider_table(Provider::OpenSsl);
    cases.push(Case::new("upstream's OnDisk key manager", move |dir| {
        config_text(dir, &Auth::direct(), "", &on_disk).replace(
            "manager_type = \"SQLite\"",
            &format!(
                "manager_type = \"OnDisk\"\nstore_path = \"{}\"",
                dir.join("mappings").display()
            ),
        )
    }));
    let wrong = wrong_cases();
    let wrong_names: Vec<String> = wrong.iter().map(|c| c.name.clone()).collect();
    cases.extend(wrong);

    // The hardware providers as the hardware tests configure them, right and wrong.
    let token = crate::hw_pkcs11::root().another("check");
    let pkcs11 = |pin: &str| {
        format!(
            "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"sqlite-manager\"\n\
             library_path = \"{}\"\nserial_number = \"{}\"\nuser_pin = \"{pin}\"\n",
            token.library_path().display(),
            token.serial,
        )
    };
    let softhsm_env = vec![(
        CONF_VARIABLE.to_owned(),
        token.conf_path().display().to_string(),
    )];
    for (name, providers) in [
        ("PKCS #11", pkcs11(token.user_pin())),
        ("PKCS #11, wrong PIN", pkcs11("str:wrong pin")),
    ] {
        let mut case = Case::new(name, move |dir| {
            config_text(dir, &Auth::unix(), "", &providers)
        });
        case.env = softhsm_env.clone();
        cases.push(case);
    }
    let tpm = Swtpm::start();
    let tpm_providers = format!(
        "[[provider]]\nprovider_type = \"Tpm\"\nkey_info_manager = \"sqlite-manager\"\n\
         tcti = \"{}\"\nowner_hierarchy_auth = \"\"\n",
        tpm.tcti()
    );
    cases.push(Case::new("TPM", move |dir| {
        config_text(dir, &Auth::unix(), "", &tpm_providers)
    }));

    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    for case in &cases {
        if agree(case) {
            valid.push(case.name.clone());
        } else {
            invalid.push(case.name.clone());
        }
    }
    println!("valid: {valid:#?}\ninvalid: {invalid:#?}");
    for name in &wrong_names {
        assert!(invalid.contains(name), "{name} was accepted");
    }
    let mut refused = vec!["PKCS #11, wrong PIN"];
    if nix::unistd::getuid().is_root() {
        // allow_root = false.
        refused.push("the default configuration");
    }
    for name in &refused {
        assert!(invalid.contains(&name.to_string()), "{name} was accepted");
    }
    assert!(
        valid.len() + wrong_names.len() + refused.len() == cases.len(),
        "files the suite uses were refused: {invalid:?}"
    );
}
