//! The Prometheus endpoint, scraped by a real Prometheus server (Debian `prometheus`) on the
//! loopback interface while clients sign under load: the scraped counts are the requests the
//! test made, and the p99 latency of PsaSignHash can be queried.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parsec_client::core::interface::operations::psa_algorithm::Hash;

use crate::client_ops::{ecc_pair, ecdsa};
use crate::harness::{Auth, Daemon};

const SIGNING_THREADS: usize = 4;
const SIGNATURES_PER_THREAD: usize = 50;

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP GET on the loopback interface; the body, or `None` if the server is not there yet.
fn http_get(port: u16, path_and_query: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

/// Percent-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of an instant query with one result, if it has one.
fn query(port: u16, promql: &str) -> Option<f64> {
    let body = http_get(port, &format!("/api/v1/query?query={}", encode(promql)))?;
    // {"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.5,"200"]}]}}
    let value = body.split("\"value\":[").nth(1)?;
    let value = value.split(',').nth(1)?;
    value
        .trim_start_matches('"')
        .split('"')
        .next()?
        .parse()
        .ok()
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_the_requests_made_and_the_p99_of_sign_hash() {
    let metrics_port = free_port();
    let daemon = Daemon::start_with(
        Auth::direct(),
        &format!("metrics_endpoint = \"127.0.0.1:{metrics_port}\""),
    );

    // The endpoint answers before any scrape, with the build information.
    let page = http_get(metrics_port, "/metrics").expect("the metrics endpoint answers");
    assert!(page.contains("bulwark_build_info{version=\""), "{page}");

    let prometheus_port = free_port();
    let config = daemon.dir().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: bulwark\n    \
             static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(daemon.dir().join("prometheus.log")).unwrap();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                daemon.dir().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package prometheus) is installed"),
    );

    // Load: one key, signed with from several clients at once.
    let owner = daemon.parsec_client("metrics");
    owner
        .psa_generate_key("signer", ecc_pair(256, ecdsa(Hash::Sha256), "sign verify"))
        .unwrap();
    std::thread::scope(|scope| {
        for _ in 0..SIGNING_THREADS {
            scope.spawn(|| {
                let client = daemon.parsec_client("metrics");
                for i in 0..SIGNATURES_PER_THREAD {
                    let hash = [u8::try_from(i).unwrap(); 32];
                    client
                        .psa_sign_hash("signer", &hash, ecdsa(Hash::Sha256))
                        .unwrap();
                }
            });
        }
    });
    let signed = SIGNING_THREADS * SIGNATURES_PER_THREAD;

    // Prometheus scrapes every second; wait (bounded) until it has seen the whole load.
    let count = r#"sum(bulwark_requests_total{opcode="PsaSignHash",status="Success"})"#;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = query(prometheus_port, count);
        if seen == Some(signed as f64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        seen,
        Some(signed as f64),
        "scraped PsaSignHash count\n{}",
        std::fs::read_to_string(daemon.dir().join("prometheus.log")).unwrap_or_default()
    );
    let generated = query(
        prometheus_port,
        r#"sum(bulwark_requests_total{opcode="PsaGenerateKey"})"#,
    );
    assert_eq!(generated, Some(1.0));

    let p99 = query(
        prometheus_port,
        r#"histogram_quantile(0.99, sum by (le) (bulwark_request_duration_seconds_bucket{opcode="PsaSignHash"}))"#,
    )
    .expect("a p99 latency for PsaSignHash");
    assert!(p99 > 0.0 && p99.is_finite(), "p99 = {p99}");
    println!(
        "PsaSignHash p99 latency scraped by Prometheus: {:.6} s",
        p99
    );

    // The key made above is counted under its provider (both software providers are
    // provider 1), read at the time of the scrape.
    let page = http_get(metrics_port, "/metrics").unwrap();
    let provider = 1;
    assert!(
        page.lines()
            .any(|line| line == format!("bulwark_keys{{provider=\"{provider}\"}} 1")),
        "{page}"
    );
    owner.psa_destroy_key("signer").unwrap();
    let page = http_get(metrics_port, "/metrics").unwrap();
    assert!(
        page.lines()
            .any(|line| line == format!("bulwark_keys{{provider=\"{provider}\"}} 0")),
        "{page}"
    );

    // Only bounded labels: no key or application name anywhere on the page.
    assert!(
        !page.contains("signer") && !page.contains("\"metrics\""),
        "{page}"
    );
}
