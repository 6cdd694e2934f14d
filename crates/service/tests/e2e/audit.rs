//! The audit log (`core_settings.audit_log`): one JSON line per key generated, imported or
//! destroyed (DeleteClient included) and per denied request, with who, what, which provider, the
//! status and the time, and never a secret.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus as S;
use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame};
use parsec_client::core::interface::operations::psa_algorithm::{AeadWithDefaultLengthTag, Hash};
use parsec_client::core::interface::operations::psa_key_attributes::Type;
use parsec_client::core::interface::requests::ResponseStatus;

use crate::client_ops::{aead, attrs, check, ecc_pair, ecdsa};
use crate::harness::{provider, Auth, Daemon, Provider};

// ---------------------------------------------------------------------------------------------
// Reading records: a small parser for the flat JSON objects the audit log writes.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Str(String),
    Num(i64),
    Null,
}

type Record = BTreeMap<String, Value>;

/// Parses one record: a flat JSON object of strings, integers and nulls. Panics on anything
/// else, which is what a record must not contain.
fn parse_record(line: &str) -> Record {
    let mut chars = line.chars().peekable();
    let mut record = Record::new();
    let expect = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, c: char| {
        assert_eq!(chars.next(), Some(c), "expected {c:?} in {line}");
    };
    fn string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &str) -> String {
        assert_eq!(chars.next(), Some('"'), "expected a string in {line}");
        let mut out = String::new();
        loop {
            match chars.next() {
                Some('"') => return out,
                Some('\\') => match chars.next() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('/') => out.push('/'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).unwrap();
                        out.push(char::from_u32(code).expect("no surrogates in records"));
                    }
                    other => panic!("bad escape {other:?} in {line}"),
                },
                Some(c) if c < ' ' => panic!("raw control character in {line}"),
                Some(c) => out.push(c),
                None => panic!("unterminated string in {line}"),
            }
        }
    }
    expect(&mut chars, '{');
    loop {
        let key = string(&mut chars, line);
        expect(&mut chars, ':');
        let value = match chars.peek() {
            Some('"') => Value::Str(string(&mut chars, line)),
            Some('n') => {
                let word: String = chars.by_ref().take(4).collect();
                assert_eq!(word, "null", "{line}");
                Value::Null
            }
            Some(c) if c.is_ascii_digit() || *c == '-' => {
                let mut number = String::new();
                while let Some(c) = chars.peek().filter(|c| c.is_ascii_digit() || **c == '-') {
                    number.push(*c);
                    chars.next();
                }
                Value::Num(number.parse().unwrap())
            }
            other => panic!("unexpected {other:?} in {line}"),
        };
        assert!(
            record.insert(key, value).is_none(),
            "duplicate key in {line}"
        );
        match chars.next() {
            Some(',') => continue,
            Some('}') => break,
            other => panic!("unexpected {other:?} in {line}"),
        }
    }
    assert_eq!(chars.next(), None, "trailing characters in {line}");
    record
}

/// Every field a record has, in order.
const FIELDS: [&str; 17] = [
    "time",
    "event",
    "opcode",
    "status",
    "auth_type",
    "application",
    "peer_uid",
    "peer_gid",
    "peer_pid",
    "provider",
    "provider_id",
    "key_name",
    "key_owner",
    "application_sha256",
    "key_name_sha256",
    "key_owner_sha256",
    "count",
];

fn read_records(text: &str) -> Vec<Record> {
    text.lines()
        .map(|line| {
            let record = parse_record(line);
            // Field order is part of the format.
            let order: Vec<usize> = FIELDS
                .iter()
                .map(|f| line.find(&format!("\"{f}\":")).unwrap())
                .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{line}");
            assert_eq!(record.len(), FIELDS.len(), "{line}");
            check_time(&record);
            record
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, and within a day of now.
fn check_time(record: &Record) {
    let Some(Value::Str(time)) = record.get("time") else {
        panic!("{record:?}")
    };
    let b = time.as_bytes();
    assert_eq!(b.len(), 24, "{time}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{time}"),
            10 => assert_eq!(*c, b'T', "{time}"),
            13 | 16 => assert_eq!(*c, b':', "{time}"),
            19 => assert_eq!(*c, b'.', "{time}"),
            23 => assert_eq!(*c, b'Z', "{time}"),
            _ => assert!(c.is_ascii_digit(), "{time}"),
        }
    }
    let year: i64 = time[..4].parse().unwrap();
    assert!((2024..2200).contains(&year), "{time}");
}

fn s(value: &str) -> Value {
    Value::Str(value.to_owned())
}

fn get<'r>(record: &'r Record, field: &str) -> &'r Value {
    record
        .get(field)
        .unwrap_or_else(|| panic!("{field} in {record:?}"))
}

/// The fields that vary by request, as a tuple: event, opcode, status, application, key name,
/// key owner.
fn summary(record: &Record) -> [Value; 6] {
    [
        "event",
        "opcode",
        "status",
        "application",
        "key_name",
        "key_owner",
    ]
    .map(|f| get(record, f).clone())
}

fn provider_name() -> &'static str {
    match provider() {
        Provider::MbedCrypto => "mbed-crypto-provider",
        Provider::OpenSsl => "openssl-provider",
    }
}

/// One raw request; returns the response status.
fn raw(
    daemon: &Daemon,
    provider: ProviderId,
    opcode: Opcode,
    auth_type: AuthType,
    auth: &[u8],
) -> S {
    let frame = RequestFrame {
        header: RequestHeader::new(provider, opcode, auth_type),
        body: Vec::new().into(),
        auth: auth.to_vec().into(),
    };
    let bytes = daemon.send_raw(&frame.to_bytes().unwrap());
    ResponseFrame::parse(&bytes, usize::MAX)
        .unwrap()
        .0
        .header
        .status
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------------------------

#[test]
fn key_lifecycle_and_denials_are_audited_without_secrets() {
    let daemon = Daemon::start(Auth::Direct {
        admins: vec!["admin".into()],
    });
    // The default: a file next to the key store.
    let path = daemon.dir().join("kim/bulwark-audit.log");
    let admin = daemon.parsec_client("admin");
    let alice = daemon.parsec_client("alice");
    let bob = daemon.parsec_client("bob");
    let ecc = ecc_pair(256, ecdsa(Hash::Sha256), "sign verify");
    let secret: [u8; 16] = [
        0xc3, 0x1f, 0x7a, 0x90, 0x5e, 0x2b, 0xd4, 0x68, 0x0f, 0xa1, 0x36, 0xe9, 0x84, 0x4d, 0xbb,
        0x72,
    ];

    // Lifecycle.
    alice.psa_generate_key("generated", ecc).unwrap();
    alice
        .psa_import_key(
            "imported",
            &secret,
            attrs(
                Type::Aes,
                128,
                aead(AeadWithDefaultLengthTag::Gcm),
                "encrypt decrypt",
            ),
        )
        .unwrap();
    // Ordinary use and ordinary failures are not audited.
    alice
        .psa_sign_hash("generated", &[7; 32], ecdsa(Hash::Sha256))
        .unwrap();
    check(
        alice.psa_generate_key("generated", ecc),
        ResponseStatus::PsaErrorAlreadyExists,
    );
    check(
        bob.psa_destroy_key("imported"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    alice.list_keys().unwrap();
    // Denials: key policy, administration, no identity, bad credentials.
    check(
        alice.psa_export_key("generated"),
        ResponseStatus::PsaErrorNotPermitted,
    );
    check(bob.list_clients(), ResponseStatus::AdminOperation);
    assert_eq!(
        raw(
            &daemon,
            ProviderId::Core,
            Opcode::ListKeys,
            AuthType::NoAuth,
            &[]
        ),
        S::NotAuthenticated
    );
    assert_eq!(
        raw(
            &daemon,
            ProviderId::Core,
            Opcode::Ping,
            AuthType::Direct,
            &[0xff, 0xfe]
        ),
        S::AuthenticationError
    );
    // Destruction, by the owner and by an administrator.
    alice.psa_destroy_key("generated").unwrap();
    alice.psa_generate_key("second", ecc).unwrap();
    admin.delete_client("alice").unwrap();

    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let records = read_records(&text);
    let summaries: Vec<[Value; 6]> = records.iter().map(summary).collect();
    let n = Value::Null;
    let mut expected = vec![
        [
            s("key_generated"),
            s("PsaGenerateKey"),
            s("Success"),
            s("alice"),
            s("generated"),
            s("alice"),
        ],
        [
            s("key_imported"),
            s("PsaImportKey"),
            s("Success"),
            s("alice"),
            s("imported"),
            s("alice"),
        ],
        [
            s("request_denied"),
            s("PsaExportKey"),
            s("PsaErrorNotPermitted"),
            s("alice"),
            s("generated"),
            s("alice"),
        ],
        [
            s("request_denied"),
            s("ListClients"),
            s("AdminOperation"),
            s("bob"),
            n.clone(),
            n.clone(),
        ],
        [
            s("request_denied"),
            s("ListKeys"),
            s("NotAuthenticated"),
            n.clone(),
            n.clone(),
            n.clone(),
        ],
        [
            s("request_denied"),
            s("Ping"),
            s("AuthenticationError"),
            n.clone(),
            n.clone(),
            n.clone(),
        ],
        [
            s("key_destroyed"),
            s("PsaDestroyKey"),
            s("Success"),
            s("alice"),
            s("generated"),
            s("alice"),
        ],
        [
            s("key_generated"),
            s("PsaGenerateKey"),
            s("Success"),
            s("alice"),
            s("second"),
            s("alice"),
        ],
        // DeleteClient: the administrator destroys each of alice's keys.
        [
            s("key_destroyed"),
            s("DeleteClient"),
            s("Success"),
            s("admin"),
            s("imported"),
            s("alice"),
        ],
        [
            s("key_destroyed"),
            s("DeleteClient"),
            s("Success"),
            s("admin"),
            s("second"),
            s("alice"),
        ],
    ];
    // DeleteClient's order among the client's keys is the store's; compare those two as a set.
    let mut actual = summaries.clone();
    actual[8..].sort_by_key(|r| format!("{r:?}"));
    expected[8..].sort_by_key(|r| format!("{r:?}"));
    assert_eq!(actual, expected, "{text}");

    // Who: the peer is this process; which provider.
    let uid = i64::from(nix::unistd::getuid().as_raw());
    let pid = i64::from(std::process::id());
    for record in &records {
        assert_eq!(get(record, "peer_uid"), &Value::Num(uid), "{record:?}");
        assert_eq!(get(record, "peer_pid"), &Value::Num(pid), "{record:?}");
        let auth = get(record, "auth_type");
        if get(record, "opcode") == &s("ListKeys") {
            assert_eq!(auth, &s("NoAuth"));
        } else {
            assert_eq!(auth, &s("Direct"));
        }
        if get(record, "opcode") == &s("ListClients") {
            assert_eq!(get(record, "provider"), &s("core-provider"));
            assert_eq!(get(record, "provider_id"), &Value::Num(0));
        } else if get(record, "opcode") != &s("ListKeys") && get(record, "opcode") != &s("Ping") {
            assert_eq!(get(record, "provider"), &s(provider_name()), "{record:?}");
            assert_eq!(get(record, "provider_id"), &Value::Num(1));
        }
    }

    // No secret: neither the imported key (hex either case, base64, decimal bytes) nor the
    // rejected credentials.
    let hex = hex::encode(secret);
    for needle in [
        hex.clone(),
        hex.to_uppercase(),
        hex[..12].to_owned(),
        base64(&secret),
        base64(&secret)[..12].to_owned(),
        "195, 31, 122".to_owned(),
        "\u{fffd}".to_owned(),
    ] {
        assert!(
            !text.contains(&needle),
            "{needle:?} in the audit log:\n{text}"
        );
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_spoofed_uid_is_audited_with_the_real_peer() {
    let daemon = Daemon::start(Auth::unix());
    let me = nix::unistd::getuid().as_raw();
    let other = me.wrapping_add(4242);
    assert_eq!(
        raw(
            &daemon,
            ProviderId::Core,
            Opcode::ListKeys,
            AuthType::UnixPeerCredentials,
            &other.to_le_bytes()
        ),
        S::AuthenticationError
    );
    let text = std::fs::read_to_string(daemon.dir().join("kim/bulwark-audit.log")).unwrap();
    let records = read_records(&text);
    assert_eq!(records.len(), 1, "{text}");
    let record = &records[0];
    assert_eq!(get(record, "event"), &s("request_denied"));
    assert_eq!(get(record, "auth_type"), &s("UnixPeerCredentials"));
    // The claimed uid is not an identity: only the kernel's word is recorded.
    assert_eq!(get(record, "application"), &Value::Null);
    assert_eq!(get(record, "peer_uid"), &Value::Num(i64::from(me)));
    assert!(!text.contains(&other.to_string()), "{text}");
}

#[test]
fn the_audit_log_goes_where_configured() {
    let ecc = ecc_pair(256, ecdsa(Hash::Sha256), "sign verify");

    // An explicit file, created 0600.
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().join("audit.jsonl");
    let daemon = Daemon::start_with(
        Auth::direct(),
        &format!("audit_log = \"{}\"", path.display()),
    );
    daemon
        .parsec_client("app")
        .psa_generate_key("k", ecc)
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    let records = read_records(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(records.len(), 1);
    assert_eq!(get(&records[0], "event"), &s("key_generated"));
    assert!(!daemon.dir().join("kim/bulwark-audit.log").exists());
    drop(daemon);

    // The journal: one JSON line on standard error (here the daemon's log file), even though
    // the log level would not show it.
    let daemon = Daemon::start_with(Auth::direct(), "audit_log = \"journal\"");
    daemon
        .parsec_client("app")
        .psa_generate_key("k", ecc)
        .unwrap();
    daemon.parsec_client("app").psa_destroy_key("k").unwrap();
    let log = daemon.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("{\"time\":"))
        .collect();
    let records = read_records(&lines.join("\n"));
    let events: Vec<&Value> = records.iter().map(|r| get(r, "event")).collect();
    assert_eq!(events, [&s("key_generated"), &s("key_destroyed")], "{log}");
    assert!(!daemon.dir().join("kim/bulwark-audit.log").exists());
    drop(daemon);

    // Off.
    let daemon = Daemon::start_with(Auth::direct(), "audit_log = \"off\"");
    daemon
        .parsec_client("app")
        .psa_generate_key("k", ecc)
        .unwrap();
    assert!(!daemon.dir().join("kim/bulwark-audit.log").exists());
    drop(daemon);

    // A file others can write is refused at start-up, naming the setting.
    let unsafe_dir = tempfile::tempdir().unwrap();
    let unsafe_path = unsafe_dir.path().join("audit.log");
    std::fs::write(&unsafe_path, "").unwrap();
    std::fs::set_permissions(&unsafe_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut daemon = Daemon::configure(Auth::direct());
    let config = std::fs::read_to_string(&daemon.config).unwrap().replacen(
        "[core_settings]\n",
        &format!(
            "[core_settings]\naudit_log = \"{}\"\n",
            unsafe_path.display()
        ),
        1,
    );
    std::fs::write(&daemon.config, config).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bulwarkd"))
        .arg("--config")
        .arg(&daemon.config)
        .current_dir(daemon.dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("core_settings.audit_log")
            && stderr.contains("writable by group or others"),
        "{stderr}"
    );
    daemon.kill9();
}
