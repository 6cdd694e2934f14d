//! Micro-benchmarks of the sans-IO core: `Service::handle_bytes` (framing, authentication,
//! dispatch, provider call, encoding of the answer) on a Ping and on a PsaGenerateRandom of
//! 32 bytes, with the real Mbed Crypto provider and a temporary key store. No socket.
//!
//! `cargo bench -p bulwark-service --bench dispatch`
// `criterion_main!` writes the `main` function, without documentation.
#![allow(missing_docs)]
// A benchmark's set-up failing is a bug in the benchmark: unwrap says so.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::{encode_request, ping, psa_generate_random, Opcode};
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame};
use bulwark_service::service::Service;
use bulwark_service::test_support::mbed_service_in;
use criterion::{criterion_group, criterion_main, Criterion};
use zeroize::Zeroizing;

fn request(provider: ProviderId, opcode: Opcode, body: Zeroizing<Vec<u8>>) -> Zeroizing<Vec<u8>> {
    RequestFrame {
        header: RequestHeader::new(provider, opcode, AuthType::NoAuth),
        body,
        auth: Zeroizing::new(Vec::new()),
    }
    .to_bytes()
    .unwrap()
}

/// Checks once that the service answers `bytes` with success, so the benchmark measures the
/// path it means to.
fn assert_success(service: &Service, bytes: &[u8]) {
    let answer = service.handle_bytes(bytes, None).unwrap();
    let (response, _) = ResponseFrame::parse(&answer, 1 << 20).unwrap();
    assert_eq!(response.header.status, ResponseStatus::Success);
}

fn dispatch(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("bulwark-bench-dispatch")
        .tempdir()
        .unwrap();
    // Also the working directory, for Mbed TLS's key files.
    let service = mbed_service_in(dir.path()).unwrap();

    let ping = request(
        ProviderId::Core,
        Opcode::Ping,
        encode_request::<bulwark_interface::ops::Ping>(ping::Request).unwrap(),
    );
    let random = request(
        ProviderId::MbedCrypto,
        Opcode::PsaGenerateRandom,
        encode_request::<bulwark_interface::ops::PsaGenerateRandom>(psa_generate_random::Request {
            size: 32,
        })
        .unwrap(),
    );
    assert_success(&service, &ping);
    assert_success(&service, &random);

    let mut group = c.benchmark_group("handle_bytes");
    group.bench_function("Ping", |b| {
        b.iter(|| service.handle_bytes(black_box(&ping), None).unwrap())
    });
    group.bench_function("PsaGenerateRandom 32 B (Mbed Crypto)", |b| {
        b.iter(|| service.handle_bytes(black_box(&random), None).unwrap())
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
