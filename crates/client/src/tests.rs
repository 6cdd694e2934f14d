//! Client tests against in-process fake services: connection reuse, the fallback to a
//! connection per request, what is and is not retried, timeouts, limits, discovery, errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::{self, Opcode, Operation};
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{
    Limits, RawHeader, RequestFrame, ResponseFrame, ResponseHeader, FLAG_KEEP_OPEN, HEADER_LEN,
};
use nix::sys::socket::{recv, MsgFlags};

use crate::transport::socket_from_uri;
use crate::{Auth, Client, ClientBuilder, ErrorKind, TokenSource};

/// How the fake service treats its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Serves requests until the client closes (bulwarkd).
    KeepAlive,
    /// Answers one request, then closes (the upstream service).
    CloseAfterAnswer,
    /// Answers one request, waits until the next one has arrived, closes without reading it.
    LingerThenClose,
    /// Reads a request and closes without answering.
    CloseWithoutAnswer,
    /// Answers the first request; sends 10 bytes of the second's answer and closes.
    HalfAnswerOnSecond,
    /// Reads a request and never answers.
    NeverAnswer,
    /// Reads only the header and answers BodySizeExceedsLimit, then closes.
    RefuseAfterHeader,
    /// Serves two requests per connection, then closes (an idle-timeout-like close).
    TwoPerConnection,
}

#[derive(Clone)]
struct Script {
    mode: Mode,
    authenticators: Vec<AuthType>,
    providers: Vec<ProviderId>,
    refuse: Option<(Opcode, ResponseStatus)>,
    custom: Option<fn(&RequestFrame) -> Vec<u8>>,
    /// The key-name limit ListProviders states for crypto providers (`None`: unstated).
    key_name_limit: Option<u32>,
    /// Whether answers carry `FLAG_KEEP_OPEN` when the request asked for it and the mode keeps
    /// connections open (as bulwarkd does); false answers 0 whatever the mode (as upstream).
    says_keep_open: bool,
}

impl Script {
    fn new(mode: Mode) -> Script {
        Script {
            mode,
            authenticators: vec![AuthType::Direct],
            providers: vec![ProviderId::MbedCrypto, ProviderId::Core],
            refuse: None,
            custom: None,
            key_name_limit: None,
            says_keep_open: true,
        }
    }
}

/// A fake service on a temporary socket; its threads end with the test process.
struct Fake {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    /// Every request read: opcode and, for PsaGenerateRandom, the size asked (a unique tag).
    log: Arc<Mutex<Vec<(Opcode, usize)>>>,
    connections: Arc<AtomicUsize>,
}

impl Fake {
    fn start(script: Script) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (l, c) = (Arc::clone(&log), Arc::clone(&connections));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let (script, log) = (script.clone(), Arc::clone(&l));
                std::thread::spawn(move || serve(stream, &script, &log));
            }
        });
        Fake {
            _dir: dir,
            socket,
            log,
            connections,
        }
    }

    fn of(mode: Mode) -> Fake {
        Fake::start(Script::new(mode))
    }

    /// A client without discovery, Direct "tester", Mbed provider.
    fn builder(&self) -> ClientBuilder {
        Client::builder()
            .socket(&self.socket)
            .discover(false)
            .provider(ProviderId::MbedCrypto)
            .auth(Auth::Direct("tester".into()))
            .timeout(Duration::from_secs(10))
    }

    fn client(&self) -> Client {
        self.builder().build().unwrap()
    }

    fn requests(&self) -> Vec<(Opcode, usize)> {
        self.log.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn serve(mut stream: UnixStream, script: &Script, log: &Mutex<Vec<(Opcode, usize)>>) {
    let mut served = 0;
    loop {
        if script.mode == Mode::RefuseAfterHeader {
            if RawHeader::read_from(&mut stream).is_err() {
                return;
            }
            let refusal =
                ResponseFrame::error(ResponseHeader::bare(ResponseStatus::BodySizeExceedsLimit));
            let _ = stream.write_all(&refusal.to_bytes().unwrap());
            return;
        }
        let limits = Limits {
            body_len: 64 << 20,
            auth_len: 1 << 16,
        };
        let Ok(frame) = RequestFrame::read_from(&mut stream, &limits) else {
            return;
        };
        let tag = if frame.header.opcode == Opcode::PsaGenerateRandom {
            ops::decode_request::<ops::PsaGenerateRandom>(&frame.body)
                .unwrap()
                .size
        } else {
            0
        };
        log.lock().unwrap().push((frame.header.opcode, tag));
        served += 1;
        let mut answer = match script.custom {
            Some(custom) => custom(&frame),
            None => answer(&frame, script),
        };
        let keeps_open = !matches!(
            script.mode,
            Mode::CloseAfterAnswer | Mode::CloseWithoutAnswer | Mode::NeverAnswer
        );
        if script.says_keep_open
            && keeps_open
            && frame.header.wants_keep_open()
            && answer.len() >= HEADER_LEN
        {
            answer[8..10].copy_from_slice(&FLAG_KEEP_OPEN.to_le_bytes());
        }
        match script.mode {
            Mode::CloseWithoutAnswer => return,
            Mode::NeverAnswer => {
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            Mode::HalfAnswerOnSecond if served == 2 => {
                let _ = stream.write_all(&answer[..10]);
                return;
            }
            _ => {}
        }
        if stream.write_all(&answer).is_err() {
            return;
        }
        match script.mode {
            Mode::CloseAfterAnswer => return,
            Mode::TwoPerConnection if served == 2 => return,
            Mode::LingerThenClose => {
                // Block until the next request is there, then close with it unread.
                let mut byte = [0u8; 1];
                let _ = recv(stream.as_raw_fd(), &mut byte, MsgFlags::MSG_PEEK);
                return;
            }
            _ => {}
        }
    }
}

fn encode<O: Operation>(frame: &RequestFrame, response: O::Response) -> Vec<u8> {
    ResponseFrame {
        header: ResponseHeader::echo(&frame.header, ResponseStatus::Success),
        body: ops::encode_response::<O>(response).unwrap(),
    }
    .to_bytes()
    .unwrap()
    .to_vec()
}

fn status_answer(frame: &RequestFrame, status: ResponseStatus) -> Vec<u8> {
    ResponseFrame::error(ResponseHeader::echo(&frame.header, status))
        .to_bytes()
        .unwrap()
        .to_vec()
}

fn answer(frame: &RequestFrame, script: &Script) -> Vec<u8> {
    let opcode = frame.header.opcode;
    if let Some((refused, status)) = script.refuse {
        if refused == opcode {
            return status_answer(frame, status);
        }
    }
    match opcode {
        Opcode::Ping => encode::<ops::Ping>(
            frame,
            ops::ping::Response {
                wire_protocol_version_maj: 1,
                wire_protocol_version_min: 0,
            },
        ),
        Opcode::PsaGenerateRandom => {
            let size = ops::decode_request::<ops::PsaGenerateRandom>(&frame.body)
                .unwrap()
                .size;
            encode::<ops::PsaGenerateRandom>(
                frame,
                ops::psa_generate_random::Response {
                    random_bytes: vec![0xAB; size].into(),
                },
            )
        }
        Opcode::ListAuthenticators => {
            let authenticators = script
                .authenticators
                .iter()
                .map(|id| ops::list_authenticators::AuthenticatorInfo {
                    description: id.display_name().into(),
                    version_maj: 0,
                    version_min: 1,
                    version_rev: 0,
                    id: *id,
                })
                .collect();
            encode::<ops::ListAuthenticators>(
                frame,
                ops::list_authenticators::Response { authenticators },
            )
        }
        Opcode::ListProviders => {
            let providers = script
                .providers
                .iter()
                .map(|id| ops::list_providers::ProviderInfo {
                    uuid: "1c1139dc-ad7c-47dc-ad6b-db6fdb466552".parse().unwrap(),
                    description: id.display_name().into(),
                    vendor: String::new(),
                    version_maj: 0,
                    version_min: 1,
                    version_rev: 0,
                    id: *id,
                    max_key_name_len: script.key_name_limit.filter(|_| *id != ProviderId::Core),
                })
                .collect();
            encode::<ops::ListProviders>(frame, ops::list_providers::Response { providers })
        }
        _ => status_answer(frame, ResponseStatus::PsaErrorNotSupported),
    }
}

/// Asserts every GenerateRandom tag in `log` appears exactly once: no request ran twice.
fn assert_each_once(fake: &Fake, expected: impl IntoIterator<Item = usize>) {
    let mut seen: Vec<usize> = fake
        .requests()
        .iter()
        .filter(|(op, _)| *op == Opcode::PsaGenerateRandom)
        .map(|(_, tag)| *tag)
        .collect();
    seen.sort_unstable();
    let mut expected: Vec<usize> = expected.into_iter().collect();
    expected.sort_unstable();
    assert_eq!(
        seen, expected,
        "each request must reach the service exactly once"
    );
}

// ---------------------------------------------------------------------------------------------

#[test]
fn client_is_send_sync_and_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Client>();
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<crate::Error>();
}

#[test]
fn one_connection_serves_many_requests_when_the_service_keeps_it_open() {
    let fake = Fake::of(Mode::KeepAlive);
    let client = fake.client();
    for _ in 0..1000 {
        assert_eq!(client.ping().unwrap(), (1, 0));
    }
    let stats = client.connection_stats();
    assert_eq!(stats.opened, 1, "{stats:?}");
    assert_eq!(stats.reused, 999);
    assert_eq!(
        (stats.retried, stats.idle, stats.per_request),
        (0, 1, false)
    );
    assert_eq!(fake.connections(), 1);
    assert_eq!(fake.requests().len(), 1000);
}

#[test]
fn reuse_can_be_turned_off() {
    let fake = Fake::of(Mode::KeepAlive);
    let client = fake.builder().reuse_connections(false).build().unwrap();
    for _ in 0..20 {
        client.ping().unwrap();
    }
    let stats = client.connection_stats();
    assert_eq!((stats.opened, stats.reused, stats.idle), (20, 0, 0));
    assert!(stats.per_request);
    assert_eq!(fake.connections(), 20);
}

#[test]
fn falls_back_to_a_connection_per_request_when_the_service_closes_after_each_answer() {
    let fake = Fake::of(Mode::CloseAfterAnswer);
    let client = fake.client();
    for size in 1..=50 {
        assert_eq!(client.generate_random(size).unwrap().len(), size);
    }
    assert_each_once(&fake, 1..=50);
    assert_eq!(fake.requests().len(), 50);
    let stats = client.connection_stats();
    assert!(stats.per_request, "{stats:?}");
    assert_eq!(stats.idle, 0);
    // Every answer said the connection closes after it: none was reused, none was sent twice.
    assert_eq!((stats.reused, stats.retried), (0, 0), "{stats:?}");
    assert_eq!(fake.connections(), 50);
}

#[test]
fn a_connection_is_reused_only_when_its_answer_says_it_stays_open() {
    // A service that keeps connections open but answers flags 0 (as an upstream service that
    // closes late would): the client never sends a second request on them.
    let mut script = Script::new(Mode::KeepAlive);
    script.says_keep_open = false;
    let fake = Fake::start(script);
    let client = fake.client();
    for size in 1..=20 {
        assert_eq!(client.generate_random(size).unwrap().len(), size);
    }
    assert_each_once(&fake, 1..=20);
    let stats = client.connection_stats();
    assert_eq!(
        (stats.opened, stats.reused, stats.idle),
        (20, 0, 0),
        "{stats:?}"
    );
    assert!(stats.per_request, "{stats:?}");
    assert_eq!(fake.connections(), 20);
}

#[test]
fn requests_ask_to_keep_the_connection_only_when_reuse_is_on() {
    let mut script = Script::new(Mode::KeepAlive);
    script.custom = Some(|frame| {
        // Answer the flags received in the status-free way: a random-bytes body of that size.
        let size = usize::from(frame.header.flags);
        encode::<ops::PsaGenerateRandom>(
            frame,
            ops::psa_generate_random::Response {
                random_bytes: vec![0; size].into(),
            },
        )
    });
    let fake = Fake::start(script);
    let flags_sent = |client: Client| client.generate_random(1).unwrap().len();
    assert_eq!(
        flags_sent(fake.client()),
        usize::from(FLAG_KEEP_OPEN),
        "reuse on"
    );
    assert_eq!(
        flags_sent(fake.builder().reuse_connections(false).build().unwrap()),
        0,
        "reuse off"
    );
}

#[test]
fn a_request_the_service_never_read_is_sent_again_on_a_fresh_connection() {
    // The service says it keeps each connection open, then closes it only once our next
    // request is in its queue (an idle timeout striking at that moment): the probe sees it
    // open, the write succeeds, the read fails with ECONNRESET.
    let fake = Fake::of(Mode::LingerThenClose);
    let client = fake.client();
    for size in 1..=20 {
        assert_eq!(client.generate_random(size).unwrap().len(), size);
    }
    assert_each_once(&fake, 1..=20);
    let stats = client.connection_stats();
    assert_eq!(stats.retried, 19, "{stats:?}");
    assert_eq!(stats.opened, 20, "{stats:?}");
}

#[test]
fn a_failure_on_a_fresh_connection_is_not_retried() {
    let fake = Fake::of(Mode::CloseWithoutAnswer);
    let client = fake.client();
    let error = client.generate_random(7).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionLost, "{error}");
    assert!(error.to_string().contains("PsaGenerateRandom"), "{error}");
    assert_each_once(&fake, [7]);
    assert_eq!(client.connection_stats().retried, 0);
}

#[test]
fn a_failure_after_part_of_the_answer_is_not_retried() {
    let fake = Fake::of(Mode::HalfAnswerOnSecond);
    let client = fake.client();
    client.generate_random(1).unwrap();
    let error = client.generate_random(2).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionLost, "{error}");
    assert!(error.to_string().contains("after 10 bytes"), "{error}");
    assert_each_once(&fake, [1, 2]);
    // The connection is gone; the next call works on a fresh one.
    client.generate_random(3).unwrap();
    assert_each_once(&fake, [1, 2, 3]);
}

#[test]
fn a_timeout_is_reported_and_not_retried() {
    let fake = Fake::of(Mode::NeverAnswer);
    let client = fake
        .builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let start = Instant::now();
    let error = client.generate_random(5).unwrap_err();
    let took = start.elapsed();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(
        error.to_string().contains("ClientBuilder::timeout"),
        "{error}"
    );
    assert_each_once(&fake, [5]);
}

#[test]
fn connections_closed_by_an_idle_timeout_do_not_stop_reuse() {
    // Two requests per connection, both answered "kept open", then the service closes it: an
    // idle timeout striking after each second answer.
    let fake = Fake::of(Mode::TwoPerConnection);
    let client = fake.client();
    for size in 1..=30 {
        client.generate_random(size).unwrap();
    }
    assert_each_once(&fake, 1..=30);
    let stats = client.connection_stats();
    assert!(!stats.per_request, "{stats:?}");
    assert_eq!(stats.found_closed + stats.retried, 14, "{stats:?}");
    assert_eq!(fake.connections(), 15);
}

#[test]
fn an_answer_sent_before_the_request_was_read_whole_is_returned() {
    // The service refuses the request after its header and closes: our write of the body
    // fails, and the answer it sent is what the caller gets.
    let fake = Fake::of(Mode::RefuseAfterHeader);
    let client = fake.client();
    let big = vec![0u8; 4 << 20];
    let error = client
        .import_key("big", crate::attributes::aes_gcm_key(128), &big)
        .unwrap_err();
    assert_eq!(
        error.status(),
        Some(ResponseStatus::BodySizeExceedsLimit),
        "{error:?}"
    );
    assert!(error.to_string().contains("body_len_limit"), "{error}");
}

#[test]
fn many_threads_share_one_client() {
    let fake = Fake::of(Mode::KeepAlive);
    let client = fake.builder().max_idle_connections(8).build().unwrap();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let client = &client;
            scope.spawn(move || {
                for i in 0..200 {
                    let size = t * 1000 + i + 1;
                    assert_eq!(client.generate_random(size).unwrap().len(), size);
                }
            });
        }
    });
    assert_each_once(
        &fake,
        (0..8).flat_map(|t| (0..200).map(move |i| t * 1000 + i + 1)),
    );
    let stats = client.connection_stats();
    assert!(stats.opened <= 8, "{stats:?}");
    assert_eq!(stats.opened as usize, fake.connections());
    assert_eq!(stats.reused + stats.opened, 1600);
}

#[test]
fn clones_share_the_pool() {
    let fake = Fake::of(Mode::KeepAlive);
    let client = fake.client();
    let clone = client.clone();
    client.ping().unwrap();
    clone.ping().unwrap();
    assert_eq!(clone.connection_stats().opened, 1);
}

#[test]
fn the_answer_size_limit_is_applied_before_the_body_is_read() {
    let fake = Fake::of(Mode::KeepAlive);
    let client = fake.builder().max_response_size(1024).build().unwrap();
    assert_eq!(client.generate_random(1000).unwrap().len(), 1000);
    let error = client.generate_random(5000).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ResponseTooLarge, "{error}");
    assert!(error.to_string().contains("max_response_size"), "{error}");
    // The connection that carried the oversized answer is not reused.
    client.generate_random(10).unwrap();
    assert_eq!(client.connection_stats().opened, 2);
}

#[test]
fn malformed_answers_are_protocol_errors() {
    let mut script = Script::new(Mode::KeepAlive);
    script.custom = Some(|_| vec![0xFF; 36]);
    let fake = Fake::start(script);
    let error = fake.client().ping().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
    assert!(error.to_string().contains("bad magic"), "{error}");

    let mut script = Script::new(Mode::KeepAlive);
    script.custom = Some(|frame| {
        let mut header = ResponseHeader::echo(&frame.header, ResponseStatus::Success);
        header.opcode = Opcode::ListKeys;
        ResponseFrame::error(header).to_bytes().unwrap().to_vec()
    });
    let fake = Fake::start(script);
    let error = fake.client().ping().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
    assert!(error.to_string().contains("ListKeys to a Ping"), "{error}");
}

#[test]
fn service_statuses_carry_the_key_and_say_what_to_do() {
    let mut script = Script::new(Mode::KeepAlive);
    script.refuse = Some((Opcode::PsaDestroyKey, ResponseStatus::PsaErrorDoesNotExist));
    let fake = Fake::start(script);
    let error = fake.client().destroy_key("ghost").unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::Service(ResponseStatus::PsaErrorDoesNotExist)
    );
    assert_eq!(error.status(), Some(ResponseStatus::PsaErrorDoesNotExist));
    assert_eq!(error.opcode(), Some(Opcode::PsaDestroyKey));
    assert_eq!(error.key_name(), Some("ghost"));
    assert!(error.is_key_not_found());
    assert_eq!(
        error.to_string(),
        "no key named \"ghost\" for this application: create it first or check the name"
    );
}

#[test]
fn a_missing_service_is_a_connect_error_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let client = Client::builder()
        .socket(&socket)
        .discover(false)
        .build()
        .unwrap();
    let error = client.ping().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect);
    assert_eq!(
        error.to_string(),
        format!(
            "the service is not running at {}: start bulwarkd or set PARSEC_SERVICE_ENDPOINT",
            socket.display()
        )
    );
    // Building with discovery fails the same way.
    let error = Client::builder().socket(&socket).build().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect);
    assert_eq!(error.opcode(), Some(Opcode::ListProviders));
}

#[test]
fn crypto_calls_without_a_crypto_provider_fail_before_any_io() {
    let fake = Fake::of(Mode::KeepAlive);
    let client = fake.builder().provider(ProviderId::Core).build().unwrap();
    let error = client.generate_random(4).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoProvider);
    assert!(
        error.to_string().contains("ClientBuilder::provider"),
        "{error}"
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn discovery_takes_the_first_provider_and_walks_the_authenticators() {
    let fake = Fake::of(Mode::KeepAlive);
    let client = Client::builder()
        .socket(&fake.socket)
        .app_name("app")
        .build()
        .unwrap();
    assert_eq!(client.provider(), ProviderId::MbedCrypto);
    assert_eq!(client.auth(), &Auth::Direct("app".into()));
    assert_eq!(
        fake.requests(),
        vec![(Opcode::ListProviders, 0), (Opcode::ListAuthenticators, 0)]
    );

    // Direct without a name: a clear error.
    let error = Client::builder().socket(&fake.socket).build().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MissingAppName);
    assert!(
        error.to_string().contains("ClientBuilder::app_name"),
        "{error}"
    );

    // Unsupported entries are skipped; Unix peer credentials need no name.
    let mut script = Script::new(Mode::KeepAlive);
    script.authenticators = vec![AuthType::JwtSvid, AuthType::UnixPeerCredentials];
    script.providers = vec![ProviderId::Pkcs11, ProviderId::MbedCrypto, ProviderId::Core];
    let fake = Fake::start(script);
    let client = Client::builder().socket(&fake.socket).build().unwrap();
    assert_eq!(client.auth(), &Auth::UnixPeerCredentials);
    assert_eq!(client.provider(), ProviderId::Pkcs11);

    // Nothing usable.
    let mut script = Script::new(Mode::KeepAlive);
    script.authenticators = vec![AuthType::JwtSvid];
    let fake = Fake::start(script);
    let error = Client::builder().socket(&fake.socket).build().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoAuthenticator);
    assert!(error.to_string().contains("JWT-SVID"), "{error}");

    // No provider at all.
    let mut script = Script::new(Mode::KeepAlive);
    script.providers = vec![];
    let fake = Fake::start(script);
    let error = Client::builder().socket(&fake.socket).build().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoProvider);

    // What is given explicitly is not discovered.
    let fake = Fake::of(Mode::KeepAlive);
    let client = Client::builder()
        .socket(&fake.socket)
        .provider(ProviderId::Tpm)
        .auth(Auth::None)
        .build()
        .unwrap();
    assert_eq!(
        (client.provider(), client.auth()),
        (ProviderId::Tpm, &Auth::None)
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn discovery_uses_token_sources_in_the_order_the_service_lists_them() {
    let svid = TokenSource::fixed("svid");
    let token = TokenSource::fixed("token");
    let mut script = Script::new(Mode::KeepAlive);
    script.authenticators = vec![
        AuthType::JwtSvid,
        AuthType::Jwt,
        AuthType::UnixPeerCredentials,
    ];
    let fake = Fake::start(script);
    let build = |token: Option<&TokenSource>, svid: Option<&TokenSource>| {
        let mut builder = Client::builder().socket(&fake.socket);
        if let Some(t) = token {
            builder = builder.token(t.clone());
        }
        if let Some(s) = svid {
            builder = builder.jwt_svid(s.clone());
        }
        builder.build().unwrap().auth().clone()
    };
    assert_eq!(
        build(Some(&token), Some(&svid)),
        Auth::JwtSvid(svid.clone())
    );
    assert_eq!(build(Some(&token), None), Auth::Token(token.clone()));
    assert_eq!(build(None, None), Auth::UnixPeerCredentials);
}

#[test]
fn without_discovery_an_app_name_means_direct() {
    let client = Client::builder()
        .socket("/nonexistent")
        .discover(false)
        .app_name("x")
        .build()
        .unwrap();
    assert_eq!(client.auth(), &Auth::Direct("x".into()));
    assert_eq!(client.provider(), ProviderId::Core);
}

#[test]
fn endpoints_are_unix_uris() {
    assert_eq!(
        socket_from_uri("unix:/tmp/s.sock").unwrap(),
        PathBuf::from("/tmp/s.sock")
    );
    assert_eq!(
        socket_from_uri("unix:///tmp/s.sock").unwrap(),
        PathBuf::from("/tmp/s.sock")
    );
    assert_eq!(
        socket_from_uri("unix:/tmp/a%20b.sock").unwrap(),
        PathBuf::from("/tmp/a b.sock")
    );
    for bad in [
        "tcp://x",
        "unix:relative",
        "unix://host/p",
        "",
        "/tmp/s.sock",
        "unix:/%zz",
    ] {
        let error = socket_from_uri(bad).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidEndpoint, "{bad}");
    }
    let error = Client::builder().endpoint("http://x").build().unwrap_err();
    assert!(error
        .to_string()
        .starts_with("invalid service endpoint \"http://x\""));
    let client = Client::builder()
        .endpoint("unix:///tmp/e.sock")
        .discover(false)
        .build()
        .unwrap();
    assert_eq!(client.socket(), std::path::Path::new("/tmp/e.sock"));
}

#[test]
fn auth_bytes_are_those_of_the_spec() {
    let (t, b) = Auth::Direct("app".into()).wire().unwrap();
    assert_eq!((t, b.as_slice()), (AuthType::Direct, &b"app"[..]));
    let (t, b) = Auth::UnixPeerCredentials.wire().unwrap();
    assert_eq!(t, AuthType::UnixPeerCredentials);
    assert_eq!(b.as_slice(), nix::unistd::getuid().as_raw().to_le_bytes());
    let (t, b) = Auth::None.wire().unwrap();
    assert_eq!((t, b.len()), (AuthType::NoAuth, 0));
    // Tokens go as their UTF-8 text, as upstream sends JWT-SVIDs.
    let (t, b) = Auth::JwtSvid(TokenSource::fixed("h.p.s")).wire().unwrap();
    assert_eq!((t, b.as_slice()), (AuthType::JwtSvid, &b"h.p.s"[..]));
    let (t, b) = Auth::Token(TokenSource::fixed("a.b.c")).wire().unwrap();
    assert_eq!((t, b.as_slice()), (AuthType::Jwt, &b"a.b.c"[..]));
}

#[test]
fn big_answers_are_read_whole() {
    let fake = Fake::of(Mode::KeepAlive);
    let client = fake.client();
    let size = 3 << 20;
    let bytes = client.generate_random(size).unwrap();
    assert_eq!(bytes.len(), size);
    assert!(bytes.iter().all(|&b| b == 0xAB));
    assert_eq!(HEADER_LEN, 36);
    client.ping().unwrap();
    assert_eq!(client.connection_stats().opened, 1);
}

#[test]
fn a_key_name_over_the_stated_limit_is_refused_before_sending() {
    let mut script = Script::new(Mode::KeepAlive);
    script.key_name_limit = Some(8);
    let fake = Fake::start(script);
    let client = Client::builder()
        .socket(&fake.socket)
        .app_name("app")
        .build()
        .unwrap();
    assert_eq!(client.max_key_name_len(), Some(8));
    let before = fake.requests().len();
    let long = "k".repeat(9);
    let error = client.destroy_key(&long).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert!(error.to_string().contains("at most 8"), "{error}");
    let error = client.sign_message(&long, b"data").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert_eq!(fake.requests().len(), before, "nothing was sent");
    // A name within the limit goes to the service (which answers NotSupported here).
    let error = client.destroy_key("k".repeat(8).as_str()).unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::Service(ResponseStatus::PsaErrorNotSupported)
    );
    assert_eq!(fake.requests().len(), before + 1);

    // An upstream service states no limit: the client leaves names to it.
    let fake = Fake::of(Mode::KeepAlive);
    let client = Client::builder()
        .socket(&fake.socket)
        .app_name("app")
        .build()
        .unwrap();
    assert_eq!(client.max_key_name_len(), None);
}

#[test]
fn a_key_of_the_same_name_in_another_provider_is_not_the_clients() {
    let mut script = Script::new(Mode::KeepAlive);
    script.custom = Some(|frame| {
        assert_eq!(
            frame.header.opcode,
            Opcode::ListKeys,
            "no request past ListKeys"
        );
        let keys = [ProviderId::Pkcs11, ProviderId::MbedCrypto]
            .into_iter()
            .map(|provider_id| ops::list_keys::KeyInfo {
                provider_id,
                name: if provider_id == ProviderId::Pkcs11 {
                    "elsewhere".into()
                } else {
                    "here".into()
                },
                attributes: crate::attributes::ecc_signing_key(crate::EccFamily::SecpR1, 256),
            })
            .collect();
        encode::<ops::ListKeys>(frame, ops::list_keys::Response { keys })
    });
    let fake = Fake::start(script);
    let client = fake.client();
    assert!(client.key_attributes("here").is_ok());
    let error = client.key_attributes("elsewhere").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::KeyNotFound, "{error}");
    let error = client.sign_message("elsewhere", b"message").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::KeyNotFound, "{error}");
}
