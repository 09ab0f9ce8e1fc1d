//! The card engine alone, in process (no pcscd, no socket): what one APDU costs before the
//! transport, to set beside kilt-bench's round trip through pcscd and vpcd.

use criterion::{Criterion, criterion_group, criterion_main};
use kilt_card::Card;
use kilt_emulator::{Config, Emulator, Pin};
use std::sync::Arc;

fn apdus(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let emu = Arc::new(Emulator::new(Config::in_dir(dir.path())).unwrap());
    emu.provision(0, "bench", &Pin::from("00000000"), &Pin::from("12345678"))
        .unwrap();
    let mut card = Card::new(emu, 0).unwrap();
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
    ];
    assert_eq!(card.transmit(&select).last(), Some(&0x00));
    c.bench_function("apdu/verify-status-query", |b| {
        b.iter(|| card.transmit(&[0x00, 0x20, 0x00, 0x80]))
    });
    c.bench_function("apdu/get-data-discovery", |b| {
        b.iter(|| card.transmit(&[0x00, 0xCB, 0x3F, 0xFF, 0x03, 0x5C, 0x01, 0x7E, 0x00]))
    });
    c.bench_function("apdu/unknown-ins", |b| {
        b.iter(|| card.transmit(&[0x00, 0x02, 0x00, 0x00]))
    });
}

criterion_group!(benches, apdus);
criterion_main!(benches);
