//! Our own client, `bulwark-client`, against the real daemon: every wrapper method with its real
//! outcome (checked with RustCrypto where the output is checkable), connection reuse counted by
//! a relay in front of the daemon, the fallback against a service that closes after each
//! answer, many threads on one client, and the statuses and messages of errors.
//!
//! `sequence` is also run against the upstream service (see `upstream_service`).

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bulwark_client::interface::wire::{Limits, RawRequest, ResponseFrame};
use bulwark_client::Payload as Sealed;
use bulwark_client::{
    attributes, Aead, AeadWithDefaultLengthTag, AsymmetricEncryption, AsymmetricSignature, Auth,
    CheckType, Cipher, Client, EccFamily, Error, ErrorKind, Hash, Opcode, ProviderId,
    RawKeyAgreement, ResponseStatus,
};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::Verifier;
use rsa::pkcs1::DecodeRsaPublicKey;
use sha2::{Digest, Sha256};

use crate::harness::{Auth as DaemonAuth, Daemon};

/// A client of `socket` for application `app` (Direct) with discovery.
fn client_for(socket: &Path, app: &str) -> Client {
    Client::builder()
        .socket(socket)
        .app_name(app)
        .build()
        .unwrap()
}

/// Asserts `result` is the service status `expected`; returns the error for further checks.
#[track_caller]
fn service_error<T: std::fmt::Debug>(result: Result<T, Error>, expected: ResponseStatus) -> Error {
    let error = result.unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::Service(expected),
        "expected {expected:?}, got {error:?}"
    );
    assert_eq!(error.status(), Some(expected));
    error
}

fn flip(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[0] ^= 1;
    out
}

// ---------------------------------------------------------------------------------------------
// A relay in front of the daemon: counts connections and requests, and can behave like the
// upstream service (one request per connection, then close).

pub(crate) struct Relay {
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Relay {
    /// Relays to `target`; with `one_shot`, answers one request per connection and closes it.
    pub(crate) fn start(target: &Path, one_shot: bool) -> Relay {
        let dir = tempfile::Builder::new().prefix("relay").tempdir().unwrap();
        let socket = dir.path().join("relay.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (c, r, target) = (
            Arc::clone(&connections),
            Arc::clone(&requests),
            target.to_path_buf(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let (r, target) = (Arc::clone(&r), target.clone());
                std::thread::spawn(move || relay(stream, &target, one_shot, &r));
            }
        });
        Relay {
            _dir: dir,
            socket,
            connections,
            requests,
        }
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub(crate) fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }
}

fn relay(mut conn: UnixStream, target: &Path, one_shot: bool, log: &Mutex<Vec<Vec<u8>>>) {
    let limits = Limits {
        body_len: 64 << 20,
        auth_len: 1 << 16,
    };
    let mut upstream: Option<UnixStream> = None;
    loop {
        let Ok(request) = RawRequest::read_from(&mut conn, &limits) else {
            return;
        };
        let mut bytes = request.header.to_bytes().to_vec();
        bytes.extend_from_slice(&request.body);
        bytes.extend_from_slice(&request.auth);
        log.lock().unwrap().push(bytes.clone());
        let up = upstream.get_or_insert_with(|| UnixStream::connect(target).unwrap());
        up.write_all(&bytes).unwrap();
        let mut response = ResponseFrame::read_from(up, usize::MAX).unwrap();
        if one_shot {
            // As the upstream service answers: flags 0, the connection closes after this.
            response.header.flags = 0;
        }
        if conn.write_all(&response.to_bytes().unwrap()).is_err() {
            return;
        }
        if one_shot {
            return; // Both connections close, as the upstream service closes.
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The sequence run against both services.

/// Runs the same calls on any service with the Mbed Crypto provider and Direct authentication,
/// and returns one line per step: `ok` with the deterministic part of the output, or the
/// error's kind. Only operations the upstream Mbed Crypto provider serves are used.
pub(crate) fn sequence(socket: &Path, app: &str) -> Vec<String> {
    let mut out = Vec::new();
    let client = match Client::builder().socket(socket).app_name(app).build() {
        Ok(client) => client,
        Err(e) => panic!("client for {}: {e}", socket.display()),
    };
    record(
        &mut out,
        "discovery",
        Ok::<_, Error>(format!("{} {:?}", client.provider(), client.auth())),
    );
    record(&mut out, "ping", client.ping().map(|v| format!("{v:?}")));
    record(
        &mut out,
        "list_providers",
        client
            .list_providers()
            .map(|p| format!("{:?}", p.iter().map(|p| p.id).collect::<Vec<_>>())),
    );
    record(
        &mut out,
        "list_authenticators",
        client
            .list_authenticators()
            .map(|a| format!("{:?}", a.iter().map(|a| a.id).collect::<Vec<_>>())),
    );
    record(
        &mut out,
        "list_opcodes core",
        client
            .list_opcodes(ProviderId::Core)
            .map(|o| format!("{o:?}")),
    );
    record(
        &mut out,
        "list_keys empty",
        client.list_keys().map(|k| format!("{k:?}")),
    );

    // ECC signatures.
    let ecc = attributes::ecc_signing_key(EccFamily::SecpR1, 256);
    record(
        &mut out,
        "generate ecc",
        client.generate_key("ecc", ecc).map(|()| String::new()),
    );
    record(
        &mut out,
        "generate ecc again",
        client.generate_key("ecc", ecc).map(|()| String::new()),
    );
    record(
        &mut out,
        "key_attributes ecc",
        client.key_attributes("ecc").map(|a| format!("{a:?}")),
    );
    record(
        &mut out,
        "key_attributes missing",
        client.key_attributes("missing").map(|a| format!("{a:?}")),
    );
    let public = client.export_public_key("ecc");
    record(
        &mut out,
        "export_public_key ecc",
        public
            .as_ref()
            .map(|p| format!("{} {:02x}", p.len(), p[0]))
            .map_err(Error::kind),
    );
    record(
        &mut out,
        "export_key ecc",
        client.export_key("ecc").map(|k| k.len().to_string()),
    );
    let hash = client.hash_compute(Hash::Sha256, b"abc");
    record(
        &mut out,
        "hash_compute",
        hash.as_ref().map(hex::encode).map_err(Error::kind),
    );
    let hash = hash.unwrap_or_default();
    record(
        &mut out,
        "hash_compare",
        client
            .hash_compare(Hash::Sha256, b"abc", &hash)
            .map(|()| String::new()),
    );
    record(
        &mut out,
        "hash_compare wrong",
        client
            .hash_compare(Hash::Sha256, b"abd", &hash)
            .map(|()| String::new()),
    );
    let ecdsa = AsymmetricSignature::Ecdsa {
        hash_alg: Hash::Sha256.into(),
    };
    let signature = client.sign_hash("ecc", ecdsa, &hash);
    record(
        &mut out,
        "sign_hash",
        signature
            .as_ref()
            .map(|s| s.len().to_string())
            .map_err(Error::kind),
    );
    let signature = signature.unwrap_or_default();
    record(
        &mut out,
        "verify_hash",
        client
            .verify_hash("ecc", ecdsa, &hash, &signature)
            .map(|()| String::new()),
    );
    record(
        &mut out,
        "verify_hash tampered",
        client
            .verify_hash("ecc", ecdsa, &hash, &flip(&signature))
            .map(|()| String::new()),
    );
    record(
        &mut out,
        "sign_hash short hash",
        client
            .sign_hash("ecc", ecdsa, &hash[..20])
            .map(|s| s.len().to_string()),
    );
    record(
        &mut out,
        "sign_hash wrong alg",
        client
            .sign_hash(
                "ecc",
                AsymmetricSignature::Ecdsa {
                    hash_alg: Hash::Sha384.into(),
                },
                &[0; 48],
            )
            .map(|s| s.len().to_string()),
    );
    record(
        &mut out,
        "sign_hash missing key",
        client
            .sign_hash("missing", ecdsa, &hash)
            .map(|s| s.len().to_string()),
    );

    // RSA encryption (2048 bits).
    record(
        &mut out,
        "generate rsa",
        client
            .generate_key("rsa", attributes::rsa_encryption_key(2048))
            .map(|()| String::new()),
    );
    let ciphertext = client.encrypt("rsa", b"secret message");
    record(
        &mut out,
        "encrypt",
        ciphertext
            .as_ref()
            .map(|c| c.len().to_string())
            .map_err(Error::kind),
    );
    let ciphertext = ciphertext.unwrap_or_default();
    record(
        &mut out,
        "decrypt",
        client
            .decrypt("rsa", &ciphertext)
            .map(|p| String::from_utf8_lossy(&p).into_owned()),
    );
    let oaep = AsymmetricEncryption::RsaOaep {
        hash_alg: Hash::Sha256,
    };
    let labelled = client
        .asymmetric_encrypt("rsa", oaep, b"labelled", Some(b"label"))
        .unwrap_or_default();
    record(
        &mut out,
        "asymmetric_decrypt label",
        client
            .asymmetric_decrypt("rsa", oaep, &labelled, Some(b"label"))
            .map(|p| String::from_utf8_lossy(&p).into_owned()),
    );
    record(
        &mut out,
        "asymmetric_decrypt wrong label",
        client
            .asymmetric_decrypt("rsa", oaep, &labelled, Some(b"other"))
            .map(|p| p.len().to_string()),
    );
    record(
        &mut out,
        "encrypt with a signing key",
        client.encrypt("ecc", b"x").map(|c| c.len().to_string()),
    );

    // AES-GCM with a fixed imported key: deterministic ciphertext.
    let mut aes = attributes::aes_gcm_key(128);
    aes.policy.usage_flags.set_export();
    record(
        &mut out,
        "import aes",
        client
            .import_key("aes", aes, &[0x42; 16])
            .map(|()| String::new()),
    );
    record(
        &mut out,
        "export_key aes",
        client.export_key("aes").map(|k| hex::encode(&k[..])),
    );
    let gcm = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
    let sealed = client.aead_encrypt(
        "aes",
        gcm,
        &[0x5a; 12],
        Sealed {
            msg: b"plaintext",
            aad: b"header",
        },
    );
    record(
        &mut out,
        "aead_encrypt",
        sealed.as_ref().map(hex::encode).map_err(Error::kind),
    );
    let sealed = sealed.unwrap_or_default();
    record(
        &mut out,
        "aead_decrypt",
        client
            .aead_decrypt(
                "aes",
                gcm,
                &[0x5a; 12],
                Sealed {
                    msg: &sealed,
                    aad: b"header",
                },
            )
            .map(|p| String::from_utf8_lossy(&p).into_owned()),
    );
    record(
        &mut out,
        "aead_decrypt tampered",
        client
            .aead_decrypt(
                "aes",
                gcm,
                &[0x5a; 12],
                Sealed {
                    msg: &flip(&sealed),
                    aad: b"header",
                },
            )
            .map(|p| p.len().to_string()),
    );
    let random_sealed = client.aead_seal(
        "aes",
        Sealed {
            msg: b"sealed secret",
            aad: b"aad",
        },
    );
    record(
        &mut out,
        "aead_seal",
        random_sealed
            .as_ref()
            .map(|s| s.len().to_string())
            .map_err(Error::kind),
    );
    record(
        &mut out,
        "aead_open",
        client
            .aead_open(
                "aes",
                Sealed {
                    msg: &random_sealed.unwrap_or_default(),
                    aad: b"aad",
                },
            )
            .map(|p| String::from_utf8_lossy(&p).into_owned()),
    );

    // ECDH with fixed private keys: deterministic public keys and shared secret.
    let ecdh = attributes::ecc_key_agreement_key(EccFamily::SecpR1, 256);
    record(
        &mut out,
        "import ecdh a",
        client
            .import_key("ecdh-a", ecdh, &[0x11; 32])
            .map(|()| String::new()),
    );
    record(
        &mut out,
        "import ecdh b",
        client
            .import_key("ecdh-b", ecdh, &[0x22; 32])
            .map(|()| String::new()),
    );
    let public_b = client.export_public_key("ecdh-b");
    record(
        &mut out,
        "export_public_key ecdh-b",
        public_b.as_ref().map(hex::encode).map_err(Error::kind),
    );
    record(
        &mut out,
        "raw_key_agreement",
        client
            .raw_key_agreement(
                "ecdh-a",
                RawKeyAgreement::Ecdh,
                &public_b.unwrap_or_default(),
            )
            .map(|s| hex::encode(&s[..])),
    );

    // Random, capabilities, attestation, administration, identity.
    record(
        &mut out,
        "generate_random",
        client.generate_random(48).map(|r| r.len().to_string()),
    );
    record(
        &mut out,
        "can_do_crypto generate p256",
        client
            .can_do_crypto(CheckType::Generate, ecc)
            .map(|b| b.to_string()),
    );
    record(
        &mut out,
        "can_do_crypto use rsa 3072",
        client
            .can_do_crypto(CheckType::Use, attributes::rsa_encryption_key(3072))
            .map(|b| b.to_string()),
    );
    record(
        &mut out,
        "prepare_activate_credential",
        client
            .prepare_activate_credential("ecc", None)
            .map(|c| format!("{c:?}")),
    );
    record(
        &mut out,
        "list_clients",
        client.list_clients().map(|c| format!("{c:?}")),
    );
    record(
        &mut out,
        "list_keys",
        client.list_keys().map(|keys| {
            let mut keys: Vec<_> = keys
                .iter()
                .map(|k| format!("{} {} {:?}", k.name, k.provider_id, k.attributes))
                .collect();
            keys.sort();
            keys.join("; ")
        }),
    );
    let mut anonymous = client.clone();
    anonymous.set_auth(Auth::None);
    record(
        &mut out,
        "list_keys without identity",
        anonymous.list_keys().map(|k| k.len().to_string()),
    );
    for key in ["ecc", "rsa", "aes", "ecdh-a", "ecdh-b"] {
        record(
            &mut out,
            &format!("destroy {key}"),
            client.destroy_key(key).map(|()| String::new()),
        );
    }
    record(
        &mut out,
        "destroy ecc again",
        client.destroy_key("ecc").map(|()| String::new()),
    );
    record(
        &mut out,
        "list_keys at end",
        client.list_keys().map(|k| k.len().to_string()),
    );
    out
}

fn record(out: &mut Vec<String>, step: &str, outcome: impl Outcome) {
    out.push(match outcome.outcome() {
        Ok(detail) => format!("{step}: ok {detail}"),
        Err(kind) => format!("{step}: err {kind:?}"),
    });
}

/// What `sequence` records of a step: the output's description, or the error's kind.
trait Outcome {
    fn outcome(self) -> Result<String, ErrorKind>;
}

impl Outcome for Result<String, Error> {
    fn outcome(self) -> Result<String, ErrorKind> {
        self.map_err(|e| e.kind())
    }
}

impl Outcome for Result<String, ErrorKind> {
    fn outcome(self) -> Result<String, ErrorKind> {
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Against bulwarkd.

#[test]
fn discovery_and_core_operations() {
    let daemon = Daemon::start(DaemonAuth::direct());
    let client = client_for(&daemon.socket, "alice");
    assert_eq!(client.provider(), ProviderId::MbedCrypto);
    assert_eq!(client.auth(), &Auth::Direct("alice".into()));
    assert_eq!(client.ping().unwrap(), (1, 0));
    let providers = client.list_providers().unwrap();
    assert_eq!(providers.first().unwrap().id, ProviderId::MbedCrypto);
    assert_eq!(providers.last().unwrap().id, ProviderId::Core);
    let authenticators = client.list_authenticators().unwrap();
    assert_eq!(authenticators.len(), 1);
    assert_eq!(authenticators[0].id, bulwark_client::AuthType::Direct);
    let opcodes = client.list_opcodes(ProviderId::MbedCrypto).unwrap();
    assert!(opcodes.contains(&Opcode::PsaSignHash) && opcodes.contains(&Opcode::CanDoCrypto));
    assert!(
        !opcodes.contains(&Opcode::PsaMacCompute),
        "MAC is served but not listed"
    );
    // The core provider's listed operations, as the table says (in ascending order).
    let core = client.list_opcodes(ProviderId::Core).unwrap();
    assert_eq!(
        core.into_iter().collect::<Vec<_>>(),
        Opcode::ALL
            .iter()
            .copied()
            .filter(|opcode| opcode.is_core() && opcode.is_listed())
            .collect::<Vec<_>>()
    );
    service_error(
        client.list_opcodes(ProviderId::Tpm),
        ResponseStatus::ProviderNotRegistered,
    );
    assert!(client.list_keys().unwrap().is_empty());

    // The naked client: no call when built, ping works, identity operations do not.
    let naked = Client::builder()
        .socket(&daemon.socket)
        .discover(false)
        .build()
        .unwrap();
    assert_eq!(naked.connection_stats().opened, 0);
    assert_eq!(naked.ping().unwrap(), (1, 0));
    let error = service_error(naked.list_keys(), ResponseStatus::NotAuthenticated);
    assert!(
        error
            .to_string()
            .contains("needs an authenticated application"),
        "{error}"
    );
    assert_eq!(
        naked.generate_random(1).unwrap_err().kind(),
        ErrorKind::NoProvider
    );
}

#[test]
fn a_direct_service_needs_an_app_name() {
    let daemon = Daemon::start(DaemonAuth::direct());
    let error = Client::builder()
        .socket(&daemon.socket)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MissingAppName);
    assert_eq!(
        error.to_string(),
        "the service identifies applications by name (Direct authenticator) and this client \
         has none: give one with ClientBuilder::app_name"
    );
}

#[test]
fn unix_peer_credentials_are_discovered() {
    let daemon = Daemon::start(DaemonAuth::unix());
    // No app name needed: the uid is the identity.
    let client = Client::builder().socket(&daemon.socket).build().unwrap();
    assert_eq!(client.auth(), &Auth::UnixPeerCredentials);
    client
        .generate_key("mine", attributes::ecc_signing_key(EccFamily::SecpR1, 256))
        .unwrap();
    let keys = client.list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "mine");
    // Direct is not what this service uses.
    let mut direct = client.clone();
    direct.set_auth(Auth::Direct("x".into()));
    let error = service_error(
        direct.list_keys(),
        ResponseStatus::AuthenticatorNotRegistered,
    );
    assert!(
        error.to_string().contains("authentication method"),
        "{error}"
    );
    client.destroy_key("mine").unwrap();
}

#[test]
fn ecc_keys_sign_and_verify_checked_with_p256() {
    let daemon = Daemon::start(DaemonAuth::direct());
    let client = client_for(&daemon.socket, "ecc-app");
    let attrs = attributes::ecc_signing_key(EccFamily::SecpR1, 256);
    client.generate_key("ecc", attrs).unwrap();
    assert_eq!(client.key_attributes("ecc").unwrap(), attrs);
    let error = service_error(
        client.generate_key("ecc", attrs),
        ResponseStatus::PsaErrorAlreadyExists,
    );
    assert!(
        error
            .to_string()
            .contains("a key named \"ecc\" already exists"),
        "{error}"
    );

    let public = client.export_public_key("ecc").unwrap();
    assert_eq!((public.len(), public[0]), (65, 0x04));
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
    let message = b"message signed by bulwarkd";
    let digest = Sha256::digest(message);

    // sign_hash with an explicit algorithm; the hash computed by the service.
    let alg = AsymmetricSignature::Ecdsa {
        hash_alg: Hash::Sha256.into(),
    };
    let hash = client.hash_compute(Hash::Sha256, message).unwrap();
    assert_eq!(hash, digest.to_vec());
    let signature = client.sign_hash("ecc", alg, &hash).unwrap();
    let parsed = p256::ecdsa::Signature::from_slice(&signature).unwrap();
    verifying.verify_prehash(&hash, &parsed).unwrap();
    client.verify_hash("ecc", alg, &hash, &signature).unwrap();
    let error = service_error(
        client.verify_hash("ecc", alg, &hash, &flip(&signature)),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    assert!(error.to_string().contains("does not match"), "{error}");

    // sign_message with the policy's algorithm, and explicitly.
    assert_eq!(client.signature_algorithm("ecc").unwrap(), alg);
    let signature = client.sign_message("ecc", message).unwrap();
    verifying
        .verify(
            message,
            &p256::ecdsa::Signature::from_slice(&signature).unwrap(),
        )
        .unwrap();
    client.verify_message("ecc", message, &signature).unwrap();
    service_error(
        client.verify_message("ecc", b"another message", &signature),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    let signature = client.sign_message_with("ecc", alg, message).unwrap();
    client
        .verify_message_with("ecc", alg, message, &signature)
        .unwrap();

    // The public key imported elsewhere verifies the same signatures.
    client
        .import_key(
            "ecc-public",
            attributes::ecc_verification_key(EccFamily::SecpR1, 256),
            &public,
        )
        .unwrap();
    client
        .verify_message("ecc-public", message, &signature)
        .unwrap();
    let error = service_error(
        client.sign_message_with("ecc-public", alg, message),
        ResponseStatus::PsaErrorNotPermitted,
    );
    assert!(
        error
            .to_string()
            .contains("is not permitted with key \"ecc-public\""),
        "{error}"
    );

    // Not exportable; wrong algorithm; wrong hash length.
    let error = service_error(
        client.export_key("ecc"),
        ResponseStatus::PsaErrorNotPermitted,
    );
    assert_eq!(error.key_name(), Some("ecc"));
    assert_eq!(error.opcode(), Some(Opcode::PsaExportKey));
    service_error(
        client.sign_hash(
            "ecc",
            AsymmetricSignature::Ecdsa {
                hash_alg: Hash::Sha384.into(),
            },
            &[0; 48],
        ),
        ResponseStatus::PsaErrorNotPermitted,
    );
    service_error(
        client.sign_hash("ecc", alg, &hash[..20]),
        ResponseStatus::PsaErrorInvalidArgument,
    );

    // Destroyed keys are gone, with a message that says so.
    client.destroy_key("ecc").unwrap();
    client.destroy_key("ecc-public").unwrap();
    let error = service_error(
        client.destroy_key("ecc"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
    assert!(error.is_key_not_found());
    assert_eq!(
        error.to_string(),
        "no key named \"ecc\" for this application: create it first or check the name"
    );
    let error = client.sign_message("ecc", message).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::KeyNotFound);
    assert!(error.is_key_not_found());
    assert_eq!(error.opcode(), Some(Opcode::PsaSignMessage));
    assert!(client.list_keys().unwrap().is_empty());
}

#[test]
fn rsa_keys_checked_with_the_rsa_crate() {
    let daemon = Daemon::start(DaemonAuth::direct());
    let client = client_for(&daemon.socket, "rsa-app");
    client
        .generate_key("enc", attributes::rsa_encryption_key(2048))
        .unwrap();
    let public =
        rsa::RsaPublicKey::from_pkcs1_der(&client.export_public_key("enc").unwrap()).unwrap();
    // Encrypted here with OAEP-SHA-256, decrypted by the service with the policy's padding.
    let ciphertext = public
        .encrypt(
            &mut rand::rngs::OsRng,
            rsa::Oaep::new::<Sha256>(),
            b"to the service",
        )
        .unwrap();
    assert_eq!(
        &client.decrypt("enc", &ciphertext).unwrap()[..],
        b"to the service"
    );
    let ciphertext = client.encrypt("enc", b"round trip").unwrap();
    assert_eq!(ciphertext.len(), 256);
    assert_eq!(
        &client.decrypt("enc", &ciphertext).unwrap()[..],
        b"round trip"
    );
    // An explicit label.
    let oaep = AsymmetricEncryption::RsaOaep {
        hash_alg: Hash::Sha256,
    };
    let labelled = client
        .asymmetric_encrypt("enc", oaep, b"labelled", Some(b"label"))
        .unwrap();
    assert_eq!(
        &client
            .asymmetric_decrypt("enc", oaep, &labelled, Some(b"label"))
            .unwrap()[..],
        b"labelled"
    );
    assert!(client
        .asymmetric_decrypt("enc", oaep, &labelled, Some(b"other"))
        .is_err());
    // An encryption key has no signature algorithm for sign_message.
    let error = client.sign_message("enc", b"x").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert!(
        error.to_string().contains("not a signature algorithm"),
        "{error}"
    );

    // PKCS#1 v1.5 and PSS signatures verify with the rsa crate.
    client
        .generate_key("sign", attributes::rsa_signing_key(2048))
        .unwrap();
    client
        .generate_key("pss", attributes::rsa_pss_signing_key(2048))
        .unwrap();
    let digest = Sha256::digest(b"signed message");
    let signature = client.sign_message("sign", b"signed message").unwrap();
    rsa::RsaPublicKey::from_pkcs1_der(&client.export_public_key("sign").unwrap())
        .unwrap()
        .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .unwrap();
    let signature = client.sign_message("pss", b"signed message").unwrap();
    rsa::RsaPublicKey::from_pkcs1_der(&client.export_public_key("pss").unwrap())
        .unwrap()
        .verify(rsa::Pss::new::<Sha256>(), &digest, &signature)
        .unwrap();
    client
        .verify_message("pss", b"signed message", &signature)
        .unwrap();

    // CanDoCrypto: Ok(true), or Ok(false) for NotSupported.
    assert!(client
        .can_do_crypto(CheckType::Generate, attributes::rsa_encryption_key(2048))
        .unwrap());
    assert!(!client
        .can_do_crypto(CheckType::Generate, attributes::rsa_encryption_key(3072))
        .unwrap());
    for key in ["enc", "sign", "pss"] {
        client.destroy_key(key).unwrap();
    }
}

#[test]
fn symmetric_keys_aead_cipher_and_mac() {
    use aes_gcm::aead::{Aead as _, KeyInit, Payload};

    let daemon = Daemon::start(DaemonAuth::direct());
    let client = client_for(&daemon.socket, "sym-app");

    // AES-GCM: the service's output decrypts with the aes-gcm crate.
    let mut attrs = attributes::aes_gcm_key(128);
    attrs.policy.usage_flags.set_export();
    client.generate_key("gcm", attrs).unwrap();
    let key = client.export_key("gcm").unwrap();
    assert_eq!(key.len(), 16);
    let gcm = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
    let nonce = client.generate_random(12).unwrap();
    let ciphertext = client
        .aead_encrypt(
            "gcm",
            gcm,
            &nonce,
            Sealed {
                msg: b"plaintext",
                aad: b"header",
            },
        )
        .unwrap();
    let local = aes_gcm::Aes128Gcm::new_from_slice(&key).unwrap();
    let plaintext = local
        .decrypt(
            &aes_gcm::Nonce::from(<[u8; 12]>::try_from(&nonce[..]).unwrap()),
            Payload {
                msg: &ciphertext,
                aad: b"header",
            },
        )
        .unwrap();
    assert_eq!(plaintext, b"plaintext");
    assert_eq!(
        &client
            .aead_decrypt(
                "gcm",
                gcm,
                &nonce,
                Sealed {
                    msg: &ciphertext,
                    aad: b"header"
                }
            )
            .unwrap()[..],
        b"plaintext"
    );
    // Seal/open: a fresh nonce each time, prefixed.
    let payload = Sealed {
        msg: b"secret",
        aad: b"aad",
    };
    let sealed = client.aead_seal("gcm", payload).unwrap();
    let again = client.aead_seal("gcm", payload).unwrap();
    assert_eq!(sealed.len(), 12 + 6 + 16);
    assert_ne!(sealed, again, "each seal uses a fresh nonce");
    let (n, c) = sealed.split_at(12);
    assert_eq!(
        local
            .decrypt(
                &aes_gcm::Nonce::from(<[u8; 12]>::try_from(n).unwrap()),
                Payload {
                    msg: c,
                    aad: b"aad"
                },
            )
            .unwrap(),
        b"secret"
    );
    assert_eq!(
        &client
            .aead_open(
                "gcm",
                Sealed {
                    msg: &sealed,
                    aad: b"aad"
                }
            )
            .unwrap()[..],
        b"secret"
    );
    service_error(
        client.aead_open(
            "gcm",
            Sealed {
                msg: &sealed,
                aad: b"other aad",
            },
        ),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    let error = client.aead_open("gcm", &sealed[..5]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);

    // AES-CBC with PKCS#7: IV ‖ ciphertext, round trip.
    client
        .generate_key("cbc", attributes::aes_cipher_key(128, Cipher::CbcPkcs7))
        .unwrap();
    let ciphertext = client
        .cipher_encrypt("cbc", Cipher::CbcPkcs7, b"0123456789")
        .unwrap();
    assert_eq!(ciphertext.len(), 16 + 16);
    assert_eq!(
        &client
            .cipher_decrypt("cbc", Cipher::CbcPkcs7, &ciphertext)
            .unwrap()[..],
        b"0123456789"
    );

    // HMAC-SHA-256, RFC 4231 test case 1.
    let mut hmac = attributes::hmac_key(Hash::Sha256);
    hmac.bits = 0;
    client.import_key("hmac", hmac, &[0x0b; 20]).unwrap();
    let alg = attributes::hmac(Hash::Sha256);
    let mac = client.mac_compute("hmac", alg, b"Hi There").unwrap();
    assert_eq!(
        hex::encode(&mac),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    client.mac_verify("hmac", alg, b"Hi There", &mac).unwrap();
    service_error(
        client.mac_verify("hmac", alg, b"Hi There", &flip(&mac)),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    client
        .generate_key("hmac-generated", attributes::hmac_key(Hash::Sha256))
        .unwrap();
    assert_eq!(
        client
            .mac_compute("hmac-generated", alg, b"x")
            .unwrap()
            .len(),
        32
    );

    // Hashes and random bytes.
    let hash = client.hash_compute(Hash::Sha256, b"abc").unwrap();
    assert_eq!(
        hex::encode(&hash),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    client.hash_compare(Hash::Sha256, b"abc", &hash).unwrap();
    service_error(
        client.hash_compare(Hash::Sha256, b"abd", &hash),
        ResponseStatus::PsaErrorInvalidSignature,
    );
    let a = client.generate_random(32).unwrap();
    let b = client.generate_random(32).unwrap();
    assert_eq!((a.len(), b.len()), (32, 32));
    assert_ne!(a, b);
    assert!(!format!("{a:?}").contains(&format!("{}", a[0])) || a.len() == 32);
    assert!(format!("{a:?}").contains("redacted"));
}

#[test]
fn key_agreement_gives_both_sides_the_same_secret() {
    let daemon = Daemon::start(DaemonAuth::direct());
    let client = client_for(&daemon.socket, "ecdh-app");
    let attrs = attributes::ecc_key_agreement_key(EccFamily::SecpR1, 256);
    client.generate_key("a", attrs).unwrap();
    client.generate_key("b", attrs).unwrap();
    let public_a = client.export_public_key("a").unwrap();
    let public_b = client.export_public_key("b").unwrap();
    let ab = client
        .raw_key_agreement("a", RawKeyAgreement::Ecdh, &public_b)
        .unwrap();
    let ba = client
        .raw_key_agreement("b", RawKeyAgreement::Ecdh, &public_a)
        .unwrap();
    assert_eq!(ab.len(), 32);
    assert_eq!(ab, ba);
    service_error(
        client.raw_key_agreement("a", RawKeyAgreement::Ecdh, &public_b[..10]),
        ResponseStatus::PsaErrorInvalidArgument,
    );
}

#[test]
fn attestation_goes_to_the_tpm_provider_which_this_daemon_lacks() {
    let daemon = Daemon::start(DaemonAuth::direct());
    let client = client_for(&daemon.socket, "attest-app");
    let error = client.prepare_activate_credential("k", None).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoProvider);
    assert_eq!(error.opcode(), Some(Opcode::PrepareKeyAttestation));
    assert!(error.to_string().contains("TPM provider (id 3)"), "{error}");
    let error = client
        .activate_credential("k", Some("attester"), vec![1], vec![2])
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoProvider);
    assert_eq!(error.opcode(), Some(Opcode::AttestKey));
    // Sent anyway through the generic call, the service refuses the provider.
    let answer = client.call::<bulwark_client::interface::ops::AttestKey>(
        ProviderId::Tpm,
        bulwark_client::interface::ops::attest_key::Request {
            attested_key_name: "k".into(),
            parameters: bulwark_client::AttestationMechanismParams::ActivateCredential {
                credential_blob: vec![1],
                secret: vec![2],
            },
            attesting_key_name: None,
        },
    );
    service_error(answer, ResponseStatus::ProviderNotRegistered);
}

#[test]
fn administration_is_for_administrators() {
    let daemon = Daemon::start(DaemonAuth::Direct {
        admins: vec!["admin".into()],
    });
    let alice = client_for(&daemon.socket, "alice");
    let admin = client_for(&daemon.socket, "admin");
    alice
        .generate_key("k", attributes::aes_gcm_key(128))
        .unwrap();
    let error = service_error(alice.list_clients(), ResponseStatus::AdminOperation);
    assert_eq!(
        error.to_string(),
        "ListClients is reserved to administrators: add this application to the service's \
         `admins` list in its configuration"
    );
    service_error(alice.delete_client("admin"), ResponseStatus::AdminOperation);
    assert_eq!(admin.list_clients().unwrap(), vec!["alice".to_owned()]);
    admin.delete_client("alice").unwrap();
    assert!(alice.list_keys().unwrap().is_empty());
    assert!(admin.list_clients().unwrap().is_empty());
    // Nothing to delete is not a success.
    service_error(
        admin.delete_client("nobody"),
        ResponseStatus::PsaErrorDoesNotExist,
    );
}

#[test]
fn one_connection_serves_a_thousand_pings() {
    let daemon = Daemon::start(DaemonAuth::direct());
    // Counted from outside the client: a relay in front of the daemon.
    let relay = Relay::start(&daemon.socket, false);
    let client = client_for(&relay.socket, "pinger");
    for _ in 0..1000 {
        assert_eq!(client.ping().unwrap(), (1, 0));
    }
    client
        .generate_key("k", attributes::ecc_signing_key(EccFamily::SecpR1, 256))
        .unwrap();
    let signature = client.sign_message("k", b"m").unwrap();
    client.verify_message("k", b"m", &signature).unwrap();
    client.destroy_key("k").unwrap();
    // 2 discovery calls, 1000 pings, generate, 2×(ListKeys + op), destroy.
    assert_eq!(relay.requests().len(), 2 + 1000 + 1 + 4 + 1);
    assert_eq!(
        relay.connections(),
        1,
        "every request on the same connection"
    );
    let stats = client.connection_stats();
    assert_eq!(
        (stats.opened, stats.idle, stats.retried),
        (1, 1, 0),
        "{stats:?}"
    );
    assert_eq!(stats.reused, 1007);
    assert!(!stats.per_request);

    // Turned off, each request has its own connection.
    let client = Client::builder()
        .socket(&relay.socket)
        .app_name("pinger")
        .reuse_connections(false)
        .build()
        .unwrap();
    let before = relay.connections();
    for _ in 0..10 {
        client.ping().unwrap();
    }
    assert_eq!(relay.connections() - before, 10);
}

#[test]
fn falls_back_to_a_connection_per_request_with_a_service_that_closes() {
    let daemon = Daemon::start(DaemonAuth::direct());
    // Like the upstream service: one request per connection, then close.
    let relay = Relay::start(&daemon.socket, true);
    let client = client_for(&relay.socket, "closer");
    let mut calls = 2; // discovery
    for i in 0..10 {
        let name = format!("key-{i}");
        client
            .generate_key(&name, attributes::ecc_signing_key(EccFamily::SecpR1, 256))
            .unwrap();
        let signature = client.sign_message(&name, b"message").unwrap();
        client
            .verify_message(&name, b"message", &signature)
            .unwrap();
        assert_eq!(client.generate_random(100 + i).unwrap().len(), 100 + i);
        calls += 1 + 2 + 2 + 1;
    }
    assert_eq!(client.list_keys().unwrap().len(), 10);
    calls += 1;
    for i in 0..10 {
        client.destroy_key(&format!("key-{i}")).unwrap();
        calls += 1;
    }
    assert!(client.list_keys().unwrap().is_empty());
    calls += 1;

    let requests = relay.requests();
    assert_eq!(
        requests.len(),
        calls,
        "no request reached the service twice"
    );
    // Each GenerateKey (unique name) was sent exactly once.
    for i in 0..10 {
        let name = format!("key-{i}");
        let sent = requests
            .iter()
            .filter(|r| {
                u32::from_le_bytes(r[28..32].try_into().unwrap()) == Opcode::PsaGenerateKey.value()
                    && r.windows(name.len()).any(|w| w == name.as_bytes())
            })
            .count();
        assert_eq!(sent, 1, "{name}");
    }
    assert_eq!(relay.connections(), calls, "one connection per request");
    let stats = client.connection_stats();
    assert!(stats.per_request, "{stats:?}");
    assert_eq!(stats.idle, 0);
    assert_eq!((stats.reused, stats.retried), (0, 0), "{stats:?}");
}

#[test]
fn many_threads_share_one_client() {
    let daemon = Daemon::start(DaemonAuth::direct());
    let client = Client::builder()
        .socket(&daemon.socket)
        .app_name("threads")
        .max_idle_connections(8)
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let client = &client;
            scope.spawn(move || {
                let name = format!("thread-{t}");
                client
                    .generate_key(&name, attributes::ecc_signing_key(EccFamily::SecpR1, 256))
                    .unwrap();
                for i in 0..25 {
                    let message = format!("message {t}/{i}");
                    let signature = client.sign_message(&name, message.as_bytes()).unwrap();
                    client
                        .verify_message(&name, message.as_bytes(), &signature)
                        .unwrap();
                }
                client.destroy_key(&name).unwrap();
            });
        }
    });
    let stats = client.connection_stats();
    assert!(stats.opened <= 8 + 1, "{stats:?}");
    assert!(!stats.per_request);
    assert!(client.list_keys().unwrap().is_empty());
}

#[test]
fn a_restarted_daemon_is_reached_again_transparently() {
    let mut daemon = Daemon::start(DaemonAuth::direct());
    let client = client_for(&daemon.socket, "survivor");
    client
        .generate_key("k", attributes::ecc_signing_key(EccFamily::SecpR1, 256))
        .unwrap();
    assert_eq!(client.connection_stats().idle, 1);
    daemon.restart();
    // The pooled connection died with the old process: found closed, not used.
    let signature = client.sign_message("k", b"after restart").unwrap();
    client
        .verify_message("k", b"after restart", &signature)
        .unwrap();
    let stats = client.connection_stats();
    assert_eq!(stats.opened, 2, "{stats:?}");
    assert!(stats.found_closed + stats.retried >= 1, "{stats:?}");
    assert!(
        !stats.per_request,
        "a restart is not a close after each answer"
    );
    client.destroy_key("k").unwrap();
}

#[test]
fn a_stopped_daemon_gives_a_connect_error_that_says_what_to_do() {
    let mut daemon = Daemon::start(DaemonAuth::direct());
    let client = client_for(&daemon.socket, "orphan");
    daemon.stop();
    let error = client.ping().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error:?}");
    assert!(
        error
            .to_string()
            .contains("start bulwarkd or set PARSEC_SERVICE_ENDPOINT"),
        "{error}"
    );
}

#[test]
fn bulwarkd_answers_the_shared_sequence() {
    let daemon = Daemon::start(DaemonAuth::direct());
    let outcomes = sequence(&daemon.socket, "sequence-app");
    let text = outcomes.join("\n");
    for expected in [
        "ping: ok (1, 0)",
        "generate ecc again: err Service(PsaErrorAlreadyExists)",
        "key_attributes missing: err KeyNotFound",
        "export_key ecc: err Service(PsaErrorNotPermitted)",
        "hash_compute: ok ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "verify_hash tampered: err Service(PsaErrorInvalidSignature)",
        "decrypt: ok secret message",
        "aead_decrypt: ok plaintext",
        "aead_open: ok sealed secret",
        "prepare_activate_credential: err NoProvider",
        "list_clients: err Service(AdminOperation)",
        "list_keys without identity: err Service(NotAuthenticated)",
        "destroy ecc again: err Service(PsaErrorDoesNotExist)",
        "list_keys at end: ok 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn list_keys_by_pattern_narrows_the_callers_own_keys_only() {
    let daemon = Daemon::start(DaemonAuth::direct());
    let alice = client_for(&daemon.socket, "alice");
    let mallory = client_for(&daemon.socket, "mallory");
    let attrs = attributes::ecc_signing_key(EccFamily::SecpR1, 256);
    for name in ["/keys/rsa/a", "/keys/rsa/old/b", "/keys/ecc/c", "plain"] {
        alice.generate_key(name, attrs).unwrap();
    }
    mallory.generate_key("/keys/rsa/m", attrs).unwrap();
    let names = |client: &Client, pattern: &str| {
        let mut names: Vec<String> = client
            .list_keys_matching(pattern)
            .unwrap()
            .into_iter()
            .map(|key| key.name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&alice, "/keys/rsa/*"), ["/keys/rsa/a"]);
    assert_eq!(
        names(&alice, "/keys/**"),
        ["/keys/ecc/c", "/keys/rsa/a", "/keys/rsa/old/b"]
    );
    assert_eq!(names(&alice, "/keys/*/c"), ["/keys/ecc/c"]);
    assert_eq!(names(&alice, "plain"), ["plain"]);
    assert!(names(&alice, "plai").is_empty());
    assert!(names(&alice, "/nothing/**").is_empty());
    // No pattern reaches another owner's keys.
    assert_eq!(names(&alice, "**").len(), 4);
    assert_eq!(names(&mallory, "**"), ["/keys/rsa/m"]);
    assert_eq!(names(&mallory, "/keys/**"), ["/keys/rsa/m"]);
    // The service filtered: a raw request with a pattern gets only the matches.
    let raw = alice
        .call::<bulwark_client::interface::ops::ListKeys>(
            ProviderId::Core,
            bulwark_client::interface::ops::list_keys::Request {
                pattern: Some(bulwark_client::KeyPattern::new("/keys/rsa/*").unwrap()),
            },
        )
        .unwrap();
    assert_eq!(raw.keys.len(), 1);
    // Too many wildcards: refused before anything is sent.
    let error = alice.list_keys_matching(&"*a".repeat(17)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
}
