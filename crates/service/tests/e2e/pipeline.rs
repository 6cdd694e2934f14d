//! Steps B–F of the request pipeline over the socket, each with its status and response shape,
//! plus the daemon's observable duties: readiness notification and request logging.

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::{self, Opcode};
use bulwark_interface::status::ResponseStatus as S;
use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame};

use crate::harness::{Auth, Daemon};

/// Sends one request and returns the parsed response.
fn exchange(
    daemon: &Daemon,
    provider: ProviderId,
    opcode: Opcode,
    auth_type: AuthType,
    auth: &[u8],
    body: &[u8],
) -> ResponseFrame {
    let mut header = RequestHeader::new(provider, opcode, auth_type);
    header.session = 0xDEAD_BEEF;
    let frame = RequestFrame {
        header,
        body: body.to_vec().into(),
        auth: auth.to_vec().into(),
    };
    let bytes = daemon.send_raw(&frame.to_bytes().unwrap());
    ResponseFrame::parse(&bytes, usize::MAX).unwrap().0
}

fn status(
    daemon: &Daemon,
    provider: ProviderId,
    opcode: Opcode,
    auth: Option<&str>,
    body: &[u8],
) -> S {
    let (auth_type, bytes) = match auth {
        Some(name) => (AuthType::Direct, name.as_bytes()),
        None => (AuthType::NoAuth, &[][..]),
    };
    let response = exchange(daemon, provider, opcode, auth_type, bytes, body);
    // Every step from B on answers in the echo shape.
    assert_eq!(response.header.opcode, opcode);
    assert_eq!(response.header.provider, provider);
    assert_eq!(response.header.session, 0xDEAD_BEEF);
    if !response.header.status.is_success() {
        assert!(response.body.is_empty());
    }
    response.header.status
}

fn random_body(size: usize) -> Vec<u8> {
    ops::encode_request::<ops::PsaGenerateRandom>(ops::psa_generate_random::Request { size })
        .unwrap()
        .to_vec()
}

#[test]
fn each_pipeline_step_answers_with_its_status() {
    let daemon = Daemon::start(Auth::Direct {
        admins: vec!["root-app".into()],
    });
    let mbed = ProviderId::MbedCrypto;

    // B1: an auth type other than the configured one, even for Ping.
    let r = exchange(
        &daemon,
        ProviderId::Core,
        Opcode::Ping,
        AuthType::UnixPeerCredentials,
        &0u32.to_le_bytes(),
        &[],
    );
    assert_eq!(r.header.status, S::AuthenticatorNotRegistered);
    let r = exchange(
        &daemon,
        ProviderId::Core,
        Opcode::Ping,
        AuthType::Jwt,
        b"x",
        &[],
    );
    assert_eq!(r.header.status, S::AuthenticatorNotRegistered);
    // B2: credentials rejected.
    let r = exchange(
        &daemon,
        ProviderId::Core,
        Opcode::Ping,
        AuthType::Direct,
        &[0xff],
        &[],
    );
    assert_eq!(r.header.status, S::AuthenticationError);
    let r = exchange(
        &daemon,
        ProviderId::Core,
        Opcode::Ping,
        AuthType::Direct,
        &[],
        &[],
    );
    assert_eq!(r.header.status, S::AuthenticationError);

    // C1: a defined provider that is not configured.
    assert_eq!(
        status(
            &daemon,
            ProviderId::Tpm,
            Opcode::PsaGenerateRandom,
            None,
            &random_body(4)
        ),
        S::ProviderNotRegistered
    );
    // C2: a core opcode to a crypto provider, and the reverse.
    assert_eq!(
        status(&daemon, mbed, Opcode::ListKeys, Some("app"), &[]),
        S::PsaErrorNotSupported
    );
    assert_eq!(
        status(
            &daemon,
            ProviderId::Core,
            Opcode::PsaGenerateRandom,
            None,
            &random_body(4)
        ),
        S::PsaErrorNotSupported
    );

    // D1/D2: admin operations, refused before the body is read (garbage body here).
    assert_eq!(
        status(
            &daemon,
            ProviderId::Core,
            Opcode::ListClients,
            None,
            &[0xff]
        ),
        S::NotAuthenticated
    );
    assert_eq!(
        status(
            &daemon,
            ProviderId::Core,
            Opcode::ListClients,
            Some("app"),
            &[0xff]
        ),
        S::AdminOperation
    );
    assert_eq!(
        status(
            &daemon,
            ProviderId::Core,
            Opcode::ListClients,
            Some("root-app"),
            &[]
        ),
        S::Success
    );

    // E1: not protobuf for the operation; E2: a mandatory field missing or an enum out of range.
    assert_eq!(
        status(
            &daemon,
            mbed,
            Opcode::PsaGenerateRandom,
            None,
            &[0xff, 0xff]
        ),
        S::DeserializingBodyFailed
    );
    let no_attributes = [0x0a, 0x01, b'k']; // PsaGenerateKey with a name and no attributes
    assert_eq!(
        status(
            &daemon,
            mbed,
            Opcode::PsaGenerateKey,
            Some("app"),
            &no_attributes
        ),
        S::InvalidEncoding
    );
    let list_opcodes = |id: u8| vec![0x08, id];
    assert_eq!(
        status(
            &daemon,
            ProviderId::Core,
            Opcode::ListOpcodes,
            None,
            &list_opcodes(9)
        ),
        S::ProviderDoesNotExist
    );
    assert_eq!(
        status(
            &daemon,
            ProviderId::Core,
            Opcode::ListOpcodes,
            None,
            &list_opcodes(2)
        ),
        S::ProviderNotRegistered
    );
    // E3: an identity is needed (checked after decoding), but not for random, hash, discovery.
    assert_eq!(
        status(&daemon, ProviderId::Core, Opcode::ListKeys, None, &[]),
        S::NotAuthenticated
    );
    let sign =
        ops::encode_request::<ops::PsaExportPublicKey>(ops::psa_export_public_key::Request {
            key_name: "k".into(),
        })
        .unwrap();
    assert_eq!(
        status(&daemon, mbed, Opcode::PsaExportPublicKey, None, &sign),
        S::NotAuthenticated
    );
    assert_eq!(
        status(
            &daemon,
            mbed,
            Opcode::PsaExportPublicKey,
            Some("app"),
            &sign
        ),
        S::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(
            &daemon,
            mbed,
            Opcode::PsaGenerateRandom,
            None,
            &random_body(4)
        ),
        S::Success
    );
    // F1: an operation the provider does not serve; its body is still decoded first.
    assert_eq!(
        status(&daemon, mbed, Opcode::AttestKey, Some("app"), &[0xff]),
        S::DeserializingBodyFailed
    );
    assert_eq!(
        status(
            &daemon,
            mbed,
            Opcode::PrepareKeyAttestation,
            None,
            &[0x0a, 0x00]
        ),
        S::InvalidEncoding
    );
    let attest = [0x0a, 0x02, 0x0a, 0x00]; // parameters.activate_credential = {}
    assert_eq!(
        status(&daemon, mbed, Opcode::PrepareKeyAttestation, None, &attest),
        S::NotAuthenticated
    );
    assert_eq!(
        status(
            &daemon,
            mbed,
            Opcode::PrepareKeyAttestation,
            Some("app"),
            &attest
        ),
        S::PsaErrorNotSupported
    );
    // F2: the buffer limit on random output.
    assert_eq!(
        status(
            &daemon,
            mbed,
            Opcode::PsaGenerateRandom,
            None,
            &random_body((1 << 20) + 1)
        ),
        S::ResponseTooLarge
    );
}

#[test]
fn readiness_is_notified_to_systemd() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&notify).unwrap();
    listener
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut daemon = Daemon::configure(Auth::direct());
    daemon
        .env
        .push(("NOTIFY_SOCKET".into(), notify.display().to_string()));
    daemon.spawn();
    let mut buf = [0u8; 256];
    let n = listener.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    daemon.stop();
    let n = listener.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
}

#[test]
fn every_request_is_logged_once_without_its_secrets() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("logged-app");
    let secret = [0x5Au8; 16];
    let mut flags =
        parsec_client::core::interface::operations::psa_key_attributes::UsageFlags::default();
    flags.set_encrypt().set_decrypt();
    use parsec_client::core::interface::operations::psa_algorithm::{
        Aead, AeadWithDefaultLengthTag, Algorithm,
    };
    use parsec_client::core::interface::operations::psa_key_attributes::{
        Attributes, Lifetime, Policy, Type,
    };
    let attributes = Attributes {
        lifetime: Lifetime::Persistent,
        key_type: Type::Aes,
        bits: 128,
        policy: Policy {
            usage_flags: flags,
            permitted_algorithms: Algorithm::Aead(Aead::AeadWithDefaultLengthTag(
                AeadWithDefaultLengthTag::Gcm,
            )),
        },
    };
    client
        .psa_import_key("imported", &secret, attributes)
        .unwrap();
    let log = daemon.log();
    let served: Vec<_> = log
        .lines()
        .filter(|l| l.contains("request served"))
        .collect();
    assert!(
        served.iter().any(|l| l.contains("PsaImportKey")
            && l.contains("logged-app")
            && l.contains("Success")),
        "{log}"
    );
    for needle in ["5a5a5a5a", "5A5A5A5A", "90, 90, 90", "ZZZZ"] {
        assert!(!log.contains(needle), "secret material in the log:\n{log}");
    }
}
