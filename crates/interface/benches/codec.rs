//! Micro-benchmarks of the wire codec: the fixed header, request framing, and the protobuf
//! bodies of PsaSignHash and PsaGenerateKey.
//!
//! `cargo bench -p bulwark-interface --bench codec`
// `criterion_main!` writes the `main` function, without documentation.
#![allow(missing_docs)]
// A benchmark's set-up failing is a bug in the benchmark: unwrap says so.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::{
    decode_request, encode_request, psa_generate_key, psa_sign_hash, Opcode, PsaGenerateKey,
    PsaSignHash,
};
use bulwark_interface::psa_types::algorithm::{AsymmetricSignature, Hash, SignHash};
use bulwark_interface::psa_types::key::{
    Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
};
use bulwark_interface::wire::{Limits, RawHeader, RequestFrame, RequestHeader};
use criterion::{criterion_group, criterion_main, Criterion};
use zeroize::Zeroizing;

const ECDSA_SHA256: AsymmetricSignature = AsymmetricSignature::Ecdsa {
    hash_alg: SignHash::Specific(Hash::Sha256),
};

fn sign_hash_request() -> psa_sign_hash::Request {
    psa_sign_hash::Request {
        key_name: "device-signing-key".into(),
        alg: ECDSA_SHA256,
        hash: vec![0xA5; 32],
    }
}

fn generate_key_request() -> psa_generate_key::Request {
    let mut usage_flags = UsageFlags::default();
    usage_flags.set_sign_hash().set_verify_hash();
    psa_generate_key::Request {
        key_name: "device-signing-key".into(),
        attributes: Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            },
            bits: 256,
            policy: Policy {
                usage_flags,
                permitted_algorithms: ECDSA_SHA256.into(),
            },
        },
    }
}

/// A whole PsaSignHash request with Direct authentication, as a client sends it.
fn sign_hash_frame() -> Zeroizing<Vec<u8>> {
    let frame = RequestFrame {
        header: RequestHeader::new(
            ProviderId::MbedCrypto,
            Opcode::PsaSignHash,
            AuthType::Direct,
        ),
        body: encode_request::<PsaSignHash>(sign_hash_request()).unwrap(),
        auth: Zeroizing::new(b"my-application".to_vec()),
    };
    frame.to_bytes().unwrap()
}

fn header(c: &mut Criterion) {
    let bytes = sign_hash_frame();
    let header = RawHeader::parse_partial(&bytes).unwrap().unwrap();
    let mut group = c.benchmark_group("header");
    group.bench_function("parse", |b| {
        b.iter(|| RawHeader::parse_partial(black_box(&bytes[..])))
    });
    group.bench_function("write", |b| b.iter(|| black_box(&header).to_bytes()));
    group.finish();
}

fn frame(c: &mut Criterion) {
    let bytes = sign_hash_frame();
    let limits = Limits::default();
    c.bench_function("frame/parse PsaSignHash request", |b| {
        b.iter(|| RequestFrame::parse(black_box(&bytes[..]), &limits).unwrap())
    });
}

fn bodies(c: &mut Criterion) {
    let mut group = c.benchmark_group("body");
    let sign = sign_hash_request();
    let sign_body = encode_request::<PsaSignHash>(sign.clone()).unwrap();
    group.bench_function("decode PsaSignHash", |b| {
        b.iter(|| decode_request::<PsaSignHash>(black_box(&sign_body)).unwrap())
    });
    group.bench_function("encode PsaSignHash", |b| {
        b.iter(|| encode_request::<PsaSignHash>(black_box(sign.clone())).unwrap())
    });
    let generate = generate_key_request();
    let generate_body = encode_request::<PsaGenerateKey>(generate.clone()).unwrap();
    group.bench_function("decode PsaGenerateKey", |b| {
        b.iter(|| decode_request::<PsaGenerateKey>(black_box(&generate_body)).unwrap())
    });
    group.bench_function("encode PsaGenerateKey", |b| {
        b.iter(|| encode_request::<PsaGenerateKey>(black_box(generate.clone())).unwrap())
    });
    group.finish();
}

criterion_group!(benches, header, frame, bodies);
criterion_main!(benches);
