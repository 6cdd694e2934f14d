//! `bulwark-floor` answers what the load generator measures as a service would, and relays the
//! rest: otherwise its figures would not be those of the same client path.

#![allow(clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A Ping request as the upstream client sends it, and the upstream service's answer (wire
/// protocol 1.0), from the recorded vectors.
const PING: &str = "10a7c05e1e00010000000000000000000000000000000000000000000100000000000000";
const PING_ANSWER: &str =
    "10a7c05e1e000100000000000000000000000000000002000000000001000000000000000801";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

struct Floor(Child);

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(listen: &Path, forward: &Path) -> Floor {
    let child = Command::new(env!("CARGO_BIN_EXE_bulwark-floor"))
        .arg("--listen")
        .arg(listen)
        .arg("--forward")
        .arg(forward)
        .arg("--threads")
        .arg("2")
        .spawn()
        .expect("start bulwark-floor");
    let floor = Floor(child);
    let start = Instant::now();
    while !listen.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "no socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    floor
}

/// Sends `request` on a new connection and reads until the server closes it.
fn exchange(socket: &Path, request: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request).expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read to the end");
    answer
}

#[test]
fn ping_and_sign_are_answered_and_the_rest_is_relayed() {
    let dir = std::env::temp_dir().join(format!("bulwark-floor-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (listen, forward) = (dir.join("floor.sock"), dir.join("service.sock"));
    let service = UnixListener::bind(&forward).expect("bind the stand-in service");
    let _floor = start(&listen, &forward);

    // Ping: the upstream service's very bytes, then the end of the stream.
    assert_eq!(exchange(&listen, &hex(PING)), hex(PING_ANSWER));

    // PsaSignHash (opcode 4) of provider 1: a success response of that opcode and provider
    // whose body is field 1, a 64-byte ECDSA P-256 signature.
    let mut sign = hex(PING);
    sign[10] = 1; // provider
    sign[28] = 4; // opcode
    let body = [0x0a, 0x01, b'k'];
    sign[22] = body.len() as u8;
    sign.extend_from_slice(&body);
    let answer = exchange(&listen, &sign);
    assert_eq!(answer.len(), 36 + 66, "{answer:02x?}");
    assert_eq!(answer[10], 1);
    assert_eq!(&answer[28..36], &[4, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&answer[22..28], &[66, 0, 0, 0, 0, 0]);
    assert_eq!(&answer[36..38], &[0x0a, 64]);

    // A request that asks to keep its connection open: the connection serves the next one.
    let mut kept = hex(PING);
    kept[9] = 0x80; // FLAG_KEEP_OPEN
    let mut stream = UnixStream::connect(&listen).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for _ in 0..3 {
        stream.write_all(&kept).expect("write");
        let mut answer = vec![0; hex(PING_ANSWER).len()];
        stream
            .read_exact(&mut answer)
            .expect("answer on the same connection");
        assert_eq!(&answer[36..], &[0x08, 0x01]);
        assert_eq!(answer[9], 0x80);
    }
    drop(stream);

    // Anything else goes to the service, whose answer comes back unchanged.
    let mut list = hex(PING);
    list[28] = 0x0e; // ListProviders
    let relay = std::thread::spawn(move || {
        let (mut stream, _) = service.accept().expect("relayed connection");
        let mut request = vec![0; 36];
        stream.read_exact(&mut request).expect("relayed request");
        let mut answer = hex(PING_ANSWER);
        answer[28] = request[28];
        stream.write_all(&answer).expect("answer");
        answer
    });
    let answer = exchange(&listen, &list);
    assert_eq!(answer, relay.join().expect("stand-in service"));
    assert_eq!(answer[28], 0x0e);
    let _ = std::fs::remove_dir_all(&dir);
}
