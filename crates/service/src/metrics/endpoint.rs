//! The metrics endpoint: a minimal HTTP/1.1 responder (Prometheus scrapes with `GET`), on a
//! loopback TCP address or a Unix socket. One response per connection, bounded in size and
//! time, so a client that never finishes its request holds only its own connection.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

use super::Endpoint;

/// Longest request head read; a scrape's is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request and read the answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Histograms are folded into their buckets at least this often.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

pub(super) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    pub(super) async fn bind(endpoint: &Endpoint) -> io::Result<Self> {
        Ok(match endpoint {
            Endpoint::Tcp(address) => Listener::Tcp(TcpListener::bind(address).await?),
            Endpoint::Unix(path) => {
                // A socket file left by an earlier run is replaced (metrics hold no state).
                if std::fs::symlink_metadata(path).is_ok() {
                    std::fs::remove_file(path)?;
                }
                let listener = UnixListener::bind(path)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
                Listener::Unix(listener)
            }
        })
    }
}

pub(super) async fn serve(listener: Listener, handle: PrometheusHandle) {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            interval.tick().await;
            upkeep.run_upkeep();
        }
    });
    loop {
        let handle = handle.clone();
        let accepted = match &listener {
            Listener::Tcp(listener) => listener.accept().await.map(|(stream, _)| {
                tokio::spawn(answer(stream, handle));
            }),
            Listener::Unix(listener) => listener.accept().await.map(|(stream, _)| {
                tokio::spawn(answer(stream, handle));
            }),
        };
        if let Err(error) = accepted {
            tracing::warn!(%error, "metrics endpoint: accept failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn answer(mut stream: impl AsyncRead + AsyncWrite + Unpin, handle: PrometheusHandle) {
    let _ = tokio::time::timeout(TIMEOUT, async {
        let response = match read_head(&mut stream).await {
            Some(head) if head.starts_with(b"GET ") => {
                super::refresh_key_counts();
                let body = handle.render();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            }
            Some(_) => "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\n\
                        Connection: close\r\n\r\n"
                .to_owned(),
            None => return,
        };
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The request head (up to the blank line), or `None` if the client closed or sent too much.
async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(head)
}
