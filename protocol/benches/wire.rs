//! Encode, decode and round trips of an I/O exit record with general registers and of a
//! 16-field read request, against a plain copy of as many bytes.
//!
//! The `Message` methods are what the components call (for these two messages, direct paths
//! that skip serde's visitors); "round trip via serde" is the generic `encode`/`decode`, which
//! produce and accept the same bytes.
//!
//! `cargo bench -p vmm-protocol --bench wire`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vmm_protocol::heapless::Vec as HVec;
use vmm_protocol::*;

/// An OUT to the UART's data register, with the general registers (the common exit).
fn io_exit_record() -> ExitRecord {
    ExitRecord {
        seq: 123_456,
        vcpu: 0,
        reason: 30,
        entry_failure: false,
        detail: ExitDetail::Io {
            port: 0x3F8,
            size: AccessSize::Byte,
            direction: IoDirection::Out,
            string: false,
            rep: false,
            value: Some(0x41),
        },
        rip: 0xFFFF_FFFF_8100_2A37,
        instruction_len: 1,
        state: GuestState {
            gprs: Some(GeneralRegisters {
                rax: 0x41,
                rcx: 0x0000_0000_0000_000D,
                rdx: 0x3F8,
                rbx: 0xFFFF_8880_0012_3000,
                rbp: 0xFFFF_C900_0001_3E48,
                rsi: 0xFFFF_FFFF_8250_1A20,
                rdi: 0xFFFF_FFFF_8280_0000,
                r8: 0,
                r9: 0x1,
                r10: 0xFFFF_8880_0400_0000,
                r11: 0x246,
                r12: 0x3F8,
                r13: 0xFFFF_FFFF_8250_1A00,
                r14: 0,
                r15: 0xFFFF_8880_0012_3100,
            }),
            ..GuestState::EMPTY
        },
        rejected: None,
    }
}

/// A 16-field read of the usual guest state.
fn read_request() -> Request {
    let fields: [u32; 16] = [
        0x681E, 0x681C, 0x6820, 0x6800, 0x6802, 0x6804, 0x2806, 0x4824, 0x4826, 0x0802, 0x6808, 0x4802,
        0x4816, 0x6816, 0x6818, 0x681A,
    ];
    Request::ReadFields(HVec::from_slice(&fields).expect("16 fields fit"))
}

/// Encode, decode, and encode + decode of `message`, and a copy of as many bytes.
fn bench_message<M: Message + PartialEq + std::fmt::Debug>(c: &mut Criterion, name: &str, message: &M) {
    let mut serde_buf = [0u8; MAX_MESSAGE_SIZE];
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let len = message.encode(&mut buf).unwrap().len();
    let encoded = buf[..len].to_vec();
    assert_eq!(&M::decode(&encoded).unwrap(), message);

    let mut group = c.benchmark_group(format!("{name} ({len} bytes)"));
    group.bench_function("encode", |b| {
        b.iter(|| black_box(message).encode(&mut buf).unwrap().len())
    });
    group.bench_function("decode", |b| b.iter(|| M::decode(black_box(&encoded)).unwrap()));
    group.bench_function("round trip", |b| {
        b.iter(|| {
            let bytes = black_box(message).encode(&mut buf).unwrap();
            M::decode(black_box(bytes)).unwrap()
        })
    });
    group.bench_function("round trip via serde", |b| {
        b.iter(|| {
            let bytes = encode(black_box(message), &mut serde_buf).unwrap();
            decode::<M>(black_box(bytes)).unwrap()
        })
    });
    group.bench_function("decode canonical", |b| {
        b.iter(|| M::decode_canonical(black_box(&encoded)).unwrap())
    });
    // Baseline: one plain copy of the encoded bytes (the least any transport does).
    let mut target = vec![0u8; len];
    group.bench_function("copy baseline", |b| {
        b.iter(|| {
            target.copy_from_slice(black_box(&encoded));
            black_box(&mut target);
        })
    });
    group.finish();
}

fn wire(c: &mut Criterion) {
    bench_message(c, "exit-record io+gprs", &io_exit_record());
    bench_message(c, "request read-16-fields", &read_request());
}

criterion_group!(benches, wire);
criterion_main!(benches);
