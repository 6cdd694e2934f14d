//! Token authenticators against the real bulwarkd: JWT-SVIDs (auth type 4, bundles from JWKS
//! files) and authentication tokens (auth type 2, issuers with JWKS or PEM keys), beside Unix
//! peer credentials.
//!
//! Keys are generated for each test with OpenSSL; bundles (JWKS) and tokens are made by the
//! `jsonwebtoken` crate from them, never pasted in. Every refusal has its own test, and each
//! first shows that a good token is accepted by the same daemon, so a refusal is the check at
//! work and not a daemon that refuses everything.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use bulwark_client::{attributes, Auth, Client, EccFamily, ErrorKind, ResponseStatus, TokenSource};
use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::Opcode;
use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::harness::{Auth as DaemonAuth, Daemon};
use crate::parsec_tool::parsec_tool_path;

const TRUST_DOMAIN: &str = "example.org";
const ISSUER: &str = "https://idp.example";
const OTHER_ISSUER: &str = "https://other.example";
/// The uid of the second Unix owner.
const OTHER_UID: u32 = 65534;

/// A signing key, its public JWK (with `kid`) and what signs with it.
pub(crate) struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
    public_pem: Vec<u8>,
}

impl Signer {
    pub(crate) fn ec(kid: &str) -> Signer {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let pkey = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let key = EncodingKey::from_ec_pem(&pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
        Signer::new(
            kid,
            Algorithm::ES256,
            key,
            pkey.public_key_to_pem().unwrap(),
        )
    }

    fn rsa(kid: &str) -> Signer {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let key = EncodingKey::from_rsa_pem(&rsa.private_key_to_pem().unwrap()).unwrap();
        let public_pem = rsa.public_key_to_pem().unwrap();
        Signer::new(kid, Algorithm::RS256, key, public_pem)
    }

    fn new(kid: &str, alg: Algorithm, key: EncodingKey, public_pem: Vec<u8>) -> Signer {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        Signer {
            kid: kid.to_owned(),
            alg,
            key,
            jwk,
            public_pem,
        }
    }

    /// A JWS compact token of `claims` with this key's `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_as(claims, &self.kid)
    }

    fn sign_as(&self, claims: &Value, kid: &str) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// A JWKS document of the signers' public keys, each marked with `key_use`.
pub(crate) fn jwks(signers: &[&Signer], key_use: &str) -> String {
    let keys: Vec<Value> = signers
        .iter()
        .map(|s| {
            let mut jwk = s.jwk.clone();
            jwk["use"] = json!(key_use);
            jwk
        })
        .collect();
    json!({ "keys": keys, "spiffe_refresh_hint": 300 }).to_string()
}

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap()
}

/// Claims of a JWT-SVID for `id`, valid for a minute.
pub(crate) fn svid_claims(id: &str) -> Value {
    json!({ "sub": id, "aud": ["parsec"], "exp": now() + 60, "iat": now() })
}

/// Claims of a token of `issuer` naming `name` in `claim`, valid for a minute.
fn token_claims(issuer: &str, claim: &str, name: &str) -> Value {
    let mut claims = json!({ "iss": issuer, "aud": "parsec", "exp": now() + 60 });
    claims[claim] = json!(name);
    claims
}

/// A daemon with Unix peer credentials, JWT-SVID and authentication tokens, and the keys its
/// trust domain and issuers sign with.
struct World {
    daemon: Daemon,
    svid: Signer,
    idp: Signer,
    other: Signer,
}

impl World {
    fn start() -> World {
        let svid = Signer::ec("svid-1");
        let idp = Signer::rsa("idp-1");
        let other = Signer::ec("other-1");
        let mut daemon = Daemon::configure(DaemonAuth::unix());
        let dir = daemon.dir().to_owned();
        let bundle = dir.join("example.org.jwks");
        let idp_jwks = dir.join("idp.jwks");
        let other_pem = dir.join("other.pem");
        std::fs::write(&bundle, jwks(&[&svid], "jwt-svid")).unwrap();
        std::fs::write(&idp_jwks, jwks(&[&idp], "sig")).unwrap();
        std::fs::write(&other_pem, &other.public_pem).unwrap();
        // Each list of administrators also names identities that another authenticator
        // produces: they must not make those clients administrators.
        daemon.edit_config(
            "[authenticator]\nauth_type = \"UnixPeerCredentials\"\nadmins = [  ]",
            &format!(
                "[[authenticator]]\n\
                 auth_type = \"UnixPeerCredentials\"\n\
                 admins = [ {{ name = \"0\" }}, {{ name = \"spiffe://example.org/app-a\" }}, \
                            {{ name = \"{ISSUER}#alice\" }} ]\n\n\
                 [[authenticator]]\n\
                 auth_type = \"JwtSvid\"\n\
                 bundles = [ {{ trust_domain = \"{TRUST_DOMAIN}\", jwks_path = \"{bundle}\" }} ]\n\
                 admins = [ {{ name = \"spiffe://example.org/ops\" }}, {{ name = \"0\" }} ]\n\n\
                 [[authenticator]]\n\
                 auth_type = \"Jwt\"\n\
                 issuer = \"{ISSUER}\"\n\
                 jwks_path = \"{idp_jwks}\"\n\
                 issuers = [ {{ issuer = \"{OTHER_ISSUER}\", public_key_path = \"{other_pem}\", \
                               identity_claim = \"app\" }} ]\n\
                 admins = [ {{ name = \"{ISSUER}#ops\" }}, {{ name = \"0\" }} ]\n",
                bundle = bundle.display(),
                idp_jwks = idp_jwks.display(),
                other_pem = other_pem.display(),
            ),
        );
        daemon.spawn();
        World {
            daemon,
            svid,
            idp,
            other,
        }
    }

    fn client(&self, auth: Auth) -> Client {
        Client::builder()
            .socket(&self.daemon.socket)
            .auth(auth)
            .build()
            .unwrap()
    }

    fn svid_client(&self, id: &str) -> Client {
        self.client(Auth::JwtSvid(TokenSource::fixed(
            self.svid.sign(&svid_claims(id)),
        )))
    }

    fn token_client(&self, name: &str) -> Client {
        self.client(Auth::Token(TokenSource::fixed(
            self.idp.sign(&token_claims(ISSUER, "sub", name)),
        )))
    }

    /// The status of a ListKeys request with these auth type and bytes.
    fn status(&self, auth_type: AuthType, auth: &[u8]) -> ResponseStatus {
        auth_status(&self.daemon, auth_type, auth)
    }

    /// Asserts that `good` is accepted as a JWT-SVID and `bad` refused with AuthenticationError.
    fn svid_refused(&self, good: &str, bad: &str) {
        assert_eq!(
            self.status(AuthType::JwtSvid, good.as_bytes()),
            ResponseStatus::Success,
            "the good token is accepted\n{}",
            self.daemon.log()
        );
        assert_eq!(
            self.status(AuthType::JwtSvid, bad.as_bytes()),
            ResponseStatus::AuthenticationError
        );
    }

    /// Asserts that `good` is accepted as a token and `bad` refused with AuthenticationError.
    fn token_refused(&self, good: &str, bad: &str) {
        assert_eq!(
            self.status(AuthType::Jwt, good.as_bytes()),
            ResponseStatus::Success,
            "the good token is accepted\n{}",
            self.daemon.log()
        );
        assert_eq!(
            self.status(AuthType::Jwt, bad.as_bytes()),
            ResponseStatus::AuthenticationError
        );
    }

    fn good_svid(&self) -> String {
        self.svid.sign(&svid_claims("spiffe://example.org/app"))
    }

    fn good_token(&self) -> String {
        self.idp.sign(&token_claims(ISSUER, "sub", "alice"))
    }
}

/// The status of a ListKeys request to `daemon` with these auth type and bytes.
pub(crate) fn auth_status(daemon: &Daemon, auth_type: AuthType, auth: &[u8]) -> ResponseStatus {
    let frame = RequestFrame {
        header: RequestHeader::new(ProviderId::Core, Opcode::ListKeys, auth_type),
        body: Default::default(),
        auth: auth.to_vec().into(),
    };
    let raw = daemon.send_raw(&frame.to_bytes().unwrap());
    ResponseFrame::read_from(&mut &raw[..], 1 << 20)
        .unwrap()
        .header
        .status
}

/// A copy of parsec-tool that any uid can run (the workspace may be closed to other users).
fn tool_copy() -> &'static std::path::Path {
    static COPY: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    &COPY
        .get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("bulwark-tool")
                .tempdir()
                .unwrap();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let exe = dir.path().join("parsec-tool");
            std::fs::copy(parsec_tool_path(), &exe).unwrap();
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            (dir, exe)
        })
        .1
}

/// Runs parsec-tool (the upstream client) as `uid` against the daemon; its stdout, or its
/// stderr as the error.
fn tool_as(daemon: &Daemon, uid: u32, args: &[&str]) -> Result<String, String> {
    let output = Command::new(tool_copy())
        .args(args)
        .env(
            "PARSEC_SERVICE_ENDPOINT",
            format!("unix:{}", daemon.socket.display()),
        )
        .env_remove("RUST_LOG")
        .uid(uid)
        .gid(uid)
        .output()
        .unwrap();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The public key of `name` as parsec-tool run as `uid` exports it (PEM text).
fn tool_public_key(daemon: &Daemon, uid: u32, name: &str) -> Result<String, String> {
    tool_as(daemon, uid, &["export-public-key", "--key-name", name])
}

fn assert_status<T: std::fmt::Debug>(result: bulwark_client::Result<T>, status: ResponseStatus) {
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Service(status), "{error}");
}

#[test]
fn three_authenticators_six_isolated_owners() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs as root (uid 0 is one owner, uid {OTHER_UID} another)"
    );
    let world = World::start();
    let daemon = &world.daemon;
    // The other uid must reach the socket inside the daemon's temporary directory.
    std::fs::set_permissions(daemon.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let unix = world.client(Auth::UnixPeerCredentials);
    let listed: Vec<AuthType> = unix
        .list_authenticators()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(
        listed,
        [
            AuthType::UnixPeerCredentials,
            AuthType::JwtSvid,
            AuthType::Jwt
        ]
    );
    // Upstream's client decodes the list of three.
    assert_eq!(
        daemon
            .parsec_client("x")
            .list_authenticators()
            .unwrap()
            .len(),
        3
    );

    let clients = [
        ("uid 0", unix),
        ("app-a", world.svid_client("spiffe://example.org/app-a")),
        ("app-b", world.svid_client("spiffe://example.org/app-b")),
        ("alice", world.token_client("alice")),
        ("bob", world.token_client("bob")),
    ];
    let attrs = attributes::ecc_signing_key(EccFamily::SecpR1, 256);
    for (who, client) in &clients {
        client
            .generate_key("k", attrs)
            .unwrap_or_else(|e| panic!("{who}: {e}"));
    }
    tool_as(daemon, OTHER_UID, &["create-ecc-key", "--key-name", "k"]).unwrap();

    // Six keys named "k", six different public keys.
    let mut publics: Vec<Vec<u8>> = clients
        .iter()
        .map(|(_, c)| c.export_public_key("k").unwrap())
        .collect();
    let tool_pem = tool_public_key(daemon, OTHER_UID, "k").unwrap();
    publics.push(tool_pem.into_bytes());
    for i in 0..publics.len() {
        for j in 0..i {
            assert_ne!(publics[i], publics[j], "owners {i} and {j} share a key");
        }
    }
    // Each lists its own key only.
    for (who, client) in &clients {
        let keys = client.list_keys().unwrap();
        assert_eq!(keys.len(), 1, "{who}: {keys:?}");
        assert_eq!(keys[0].name, "k");
    }
    // parsec-tool prints one "* <name> (<provider>, ...)" line per key.
    let listed = tool_as(daemon, OTHER_UID, &["list-keys"]).unwrap();
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|line| line.strip_prefix("* "))
        .map(|line| line.split(" (").next().unwrap_or(line))
        .collect();
    assert_eq!(names, ["k"], "{listed}");

    // A signature by one owner's "k" verifies under no other owner's "k".
    for (who, client) in &clients {
        let signature = client.sign_message("k", b"m").unwrap();
        client.verify_message("k", b"m", &signature).unwrap();
        for (other, other_client) in &clients {
            if other != who {
                assert!(
                    other_client.verify_message("k", b"m", &signature).is_err(),
                    "{who}'s signature verifies under {other}'s key"
                );
            }
        }
    }

    // Destroying one owner's key leaves every other owner's key as it was.
    for (i, (who, client)) in clients.iter().enumerate() {
        client.destroy_key("k").unwrap();
        assert_status(
            client.export_public_key("k"),
            ResponseStatus::PsaErrorDoesNotExist,
        );
        assert!(client.list_keys().unwrap().is_empty(), "{who}");
        for (j, (other, other_client)) in clients.iter().enumerate().skip(i + 1) {
            assert_eq!(
                other_client.export_public_key("k").unwrap(),
                publics[j],
                "{other}'s key after {who} destroyed its own"
            );
        }
        assert_eq!(
            tool_public_key(daemon, OTHER_UID, "k")
                .unwrap()
                .into_bytes(),
            publics[5],
            "uid {OTHER_UID}'s key after {who} destroyed its own"
        );
    }
    tool_as(daemon, OTHER_UID, &["delete-key", "--key-name", "k"]).unwrap();
    assert!(tool_public_key(daemon, OTHER_UID, "k").is_err());
}

#[test]
fn administrators_of_one_authenticator_are_not_administrators_under_another() {
    let world = World::start();
    let admins = [
        world.client(Auth::UnixPeerCredentials),
        world.svid_client("spiffe://example.org/ops"),
        world.token_client("ops"),
    ];
    for admin in &admins {
        admin.list_clients().unwrap();
    }
    // Each of these names is in another authenticator's admins, never in its own.
    let others = [
        world.svid_client("spiffe://example.org/app-a"),
        world.token_client("alice"),
        world.client(Auth::Token(TokenSource::fixed(
            world.other.sign(&token_claims(OTHER_ISSUER, "app", "ops")),
        ))),
    ];
    for other in &others {
        assert_status(other.list_clients(), ResponseStatus::AdminOperation);
    }
}

#[test]
fn issuers_are_namespaces() {
    let world = World::start();
    // The same name from two issuers: two owners.
    let from_idp = world.token_client("carol");
    let from_other = world.client(Auth::Token(TokenSource::fixed(
        world
            .other
            .sign(&token_claims(OTHER_ISSUER, "app", "carol")),
    )));
    let attrs = attributes::ecc_signing_key(EccFamily::SecpR1, 256);
    from_idp.generate_key("k", attrs).unwrap();
    assert!(from_other.list_keys().unwrap().is_empty());
    from_other.generate_key("k", attrs).unwrap();
    assert_ne!(
        from_idp.export_public_key("k").unwrap(),
        from_other.export_public_key("k").unwrap()
    );
    let admin = world.client(Auth::UnixPeerCredentials);
    let mut names = admin.list_clients().unwrap();
    names.sort();
    assert_eq!(
        names,
        [format!("{ISSUER}#carol"), format!("{OTHER_ISSUER}#carol")]
    );
}

#[test]
fn upstream_jwt_svid_bytes_are_accepted() {
    // What parsec-client sends for Authentication::JwtSvid: the token fetched from the
    // Workload API, as RequestAuth::new(token.as_bytes()), auth type 4 (auth.md §7). The
    // request is built with upstream's own interface types and converter; only the fetch from
    // the Workload API is left out (the upstream feature that does it builds on grpcio).
    use parsec_client::core::interface::operations::{
        list_keys, Convert, NativeOperation, NativeResult,
    };
    use parsec_client::core::interface::operations_protobuf::ProtobufConverter;
    use parsec_client::core::interface::requests::request::{
        RequestAuth, RequestHeader as UpHeader,
    };
    use parsec_client::core::interface::requests::{
        AuthType as UpAuth, BodyType, Opcode as UpOpcode, ProviderId as UpProvider, Request,
        Response, ResponseStatus as UpStatus,
    };

    let world = World::start();
    let owner = world.svid_client("spiffe://example.org/upstream");
    owner
        .generate_key(
            "upstream-key",
            attributes::ecc_signing_key(EccFamily::SecpR1, 256),
        )
        .unwrap();
    let token = world
        .svid
        .sign(&svid_claims("spiffe://example.org/upstream"));
    let converter = ProtobufConverter {};
    let request = Request {
        header: UpHeader {
            provider: UpProvider::Core,
            session: 0,
            content_type: BodyType::Protobuf,
            accept_type: BodyType::Protobuf,
            auth_type: UpAuth::JwtSvid,
            opcode: UpOpcode::ListKeys,
        },
        body: converter
            .operation_to_body(NativeOperation::ListKeys(list_keys::Operation {}))
            .unwrap(),
        auth: RequestAuth::new(token.as_bytes().into()),
    };
    let mut stream = UnixStream::connect(&world.daemon.socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    request.write_to_stream(&mut stream).unwrap();
    stream.flush().unwrap();
    let response = Response::read_from_stream(&mut stream, 1 << 20).unwrap();
    assert_eq!(response.header.status, UpStatus::Success);
    let NativeResult::ListKeys(result) = converter
        .body_to_result(response.body, UpOpcode::ListKeys)
        .unwrap()
    else {
        panic!("not a ListKeys result");
    };
    let names: Vec<&str> = result.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["upstream-key"]);
}

#[test]
fn refused_expired() {
    let w = World::start();
    let mut claims = svid_claims("spiffe://example.org/app");
    claims["exp"] = json!(now() - 120);
    w.svid_refused(&w.good_svid(), &w.svid.sign(&claims));
    let mut claims = token_claims(ISSUER, "sub", "alice");
    claims["exp"] = json!(now() - 120);
    w.token_refused(&w.good_token(), &w.idp.sign(&claims));
}

#[test]
fn refused_not_yet_valid() {
    let w = World::start();
    let mut claims = svid_claims("spiffe://example.org/app");
    claims["nbf"] = json!(now() + 40);
    w.svid_refused(&w.good_svid(), &w.svid.sign(&claims));
    let mut claims = token_claims(ISSUER, "sub", "alice");
    claims["nbf"] = json!(now() + 40);
    w.token_refused(&w.good_token(), &w.idp.sign(&claims));
}

#[test]
fn refused_wrong_audience() {
    let w = World::start();
    let mut claims = svid_claims("spiffe://example.org/app");
    claims["aud"] = json!(["vault", "kms"]);
    w.svid_refused(&w.good_svid(), &w.svid.sign(&claims));
    let mut claims = token_claims(ISSUER, "sub", "alice");
    claims["aud"] = json!("vault");
    w.token_refused(&w.good_token(), &w.idp.sign(&claims));
}

#[test]
fn refused_unknown_kid() {
    let w = World::start();
    let claims = svid_claims("spiffe://example.org/app");
    w.svid_refused(&w.good_svid(), &w.svid.sign_as(&claims, "svid-2"));
    let claims = token_claims(ISSUER, "sub", "alice");
    w.token_refused(&w.good_token(), &w.idp.sign_as(&claims, "idp-2"));
}

#[test]
fn refused_unknown_trust_domain() {
    let w = World::start();
    let bad = w.svid.sign(&svid_claims("spiffe://elsewhere.org/app"));
    w.svid_refused(&w.good_svid(), &bad);
}

#[test]
fn refused_unknown_issuer() {
    let w = World::start();
    let bad = w
        .idp
        .sign(&token_claims("https://rogue.example", "sub", "alice"));
    w.token_refused(&w.good_token(), &bad);
}

/// URL-safe base64 without padding, as JWS uses.
fn b64url(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

#[test]
fn refused_alg_none() {
    let w = World::start();
    // No library signs with "none": the unsecured JWS is assembled from its parts.
    let unsecured = |claims: &Value, kid: &str| {
        format!(
            "{}.{}.",
            b64url(
                json!({ "alg": "none", "typ": "JWT", "kid": kid })
                    .to_string()
                    .as_bytes()
            ),
            b64url(claims.to_string().as_bytes())
        )
    };
    w.svid_refused(
        &w.good_svid(),
        &unsecured(&svid_claims("spiffe://example.org/app"), "svid-1"),
    );
    w.token_refused(
        &w.good_token(),
        &unsecured(&token_claims(ISSUER, "sub", "alice"), "idp-1"),
    );
}

#[test]
fn refused_hs256_with_the_public_key_as_secret() {
    let w = World::start();
    // The classic confusion: an HMAC "signature" keyed with the trusted public key, in the
    // forms a verifier might hold it (PEM, JWK text).
    for secret in [
        w.svid.public_pem.clone(),
        w.svid.jwk.to_string().into_bytes(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("svid-1".into());
        let bad = jsonwebtoken::encode(
            &header,
            &svid_claims("spiffe://example.org/app"),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        w.svid_refused(&w.good_svid(), &bad);
    }
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("idp-1".into());
    let bad = jsonwebtoken::encode(
        &header,
        &token_claims(ISSUER, "sub", "alice"),
        &EncodingKey::from_secret(&w.idp.public_pem),
    )
    .unwrap();
    w.token_refused(&w.good_token(), &bad);
}

#[test]
fn refused_signature_from_a_key_not_in_the_bundle() {
    let w = World::start();
    // Another key under the trusted key's kid.
    let impostor = Signer::ec("svid-1");
    w.svid_refused(
        &w.good_svid(),
        &impostor.sign(&svid_claims("spiffe://example.org/app")),
    );
    let impostor = Signer::rsa("idp-1");
    w.token_refused(
        &w.good_token(),
        &impostor.sign(&token_claims(ISSUER, "sub", "alice")),
    );
}

#[test]
fn refused_truncated_token() {
    let w = World::start();
    let good = w.good_svid();
    for cut in [
        good.len() - 1,
        good.len() - 20,
        good.rfind('.').unwrap(),
        30,
    ] {
        w.svid_refused(&w.good_svid(), &good[..cut]);
    }
    let good = w.good_token();
    w.token_refused(&w.good_token(), &good[..good.len() - 5]);
}

#[test]
fn non_utf8_is_invalid_encoding() {
    let w = World::start();
    let mut bytes = w.good_svid().into_bytes();
    bytes[10] = 0xff;
    assert_eq!(
        w.status(AuthType::JwtSvid, &bytes),
        ResponseStatus::InvalidEncoding
    );
    let mut bytes = w.good_token().into_bytes();
    bytes[10] = 0xc3;
    bytes[11] = 0x28;
    assert_eq!(
        w.status(AuthType::Jwt, &bytes),
        ResponseStatus::InvalidEncoding
    );
}

#[test]
fn a_token_is_refused_as_a_jwt_svid_and_the_reverse() {
    let w = World::start();
    let token = w.good_token();
    let svid = w.good_svid();
    // Each accepted under its own auth type (and cached there)...
    assert_eq!(
        w.status(AuthType::Jwt, token.as_bytes()),
        ResponseStatus::Success
    );
    assert_eq!(
        w.status(AuthType::JwtSvid, svid.as_bytes()),
        ResponseStatus::Success
    );
    // ...and refused under the other. An issued token whose sub is a SPIFFE ID of the trust
    // domain, signed by the issuer, is not a JWT-SVID either.
    assert_eq!(
        w.status(AuthType::JwtSvid, token.as_bytes()),
        ResponseStatus::AuthenticationError
    );
    assert_eq!(
        w.status(AuthType::Jwt, svid.as_bytes()),
        ResponseStatus::AuthenticationError
    );
    let spiffe_sub = w
        .idp
        .sign(&token_claims(ISSUER, "sub", "spiffe://example.org/app"));
    assert_eq!(
        w.status(AuthType::Jwt, spiffe_sub.as_bytes()),
        ResponseStatus::Success
    );
    assert_eq!(
        w.status(AuthType::JwtSvid, spiffe_sub.as_bytes()),
        ResponseStatus::AuthenticationError
    );
}
