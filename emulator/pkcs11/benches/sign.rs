//! The signing path side by side in one run: C_SignInit + C_Sign (CKM_ECDSA over a 32-byte
//! digest, key stored on the token) through `cryptoki`, on the kilt module and on SoftHSM2 when it
//! is installed. `cryptoki`'s `sign` makes the same three calls on both (init, length, sign).
//! Two threads with one session each are measured too.
//!
//! Run: `cargo bench -p kilt-pkcs11 --bench sign`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::process::Command;

const SO: &str = "00000000";
const PIN: &str = "1234567890";
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

struct Module {
    name: &'static str,
    pkcs11: Pkcs11,
    slot: Slot,
    key: ObjectHandle,
}

fn kilt_module() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    // Benches build in release; the module beside them is the release build.
    dir.join("libkilt_pkcs11.so")
}

fn prepare(name: &'static str, path: &Path, init: impl FnOnce(&Pkcs11) -> Slot) -> Module {
    let pkcs11 = Pkcs11::new(path).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = init(&pkcs11);
    let s = pkcs11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(PIN.into())))
        .unwrap();
    let (_, key) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &[
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Sensitive(true),
            ],
        )
        .unwrap();
    // Keep the login alive for the bench's sessions: one session stays open.
    std::mem::forget(s);
    Module {
        name,
        pkcs11,
        slot,
        key,
    }
}

fn modules(tmp: &Path) -> Vec<Module> {
    let kilt_dir = tmp.join("kilt");
    std::fs::create_dir_all(&kilt_dir).unwrap();
    // SAFETY of set_var: before either module is loaded, in a single-threaded set-up.
    unsafe { std::env::set_var("KILT_TOKEN_DIR", &kilt_dir) };
    let mut out = vec![prepare("kilt", &kilt_module(), |p| {
        let slot = p.get_all_slots().unwrap()[0];
        p.init_token(slot, &AuthPin::new(SO.into()), "bench")
            .unwrap();
        let s = p.open_rw_session(slot).unwrap();
        s.login(UserType::So, Some(&AuthPin::new(SO.into())))
            .unwrap();
        s.init_pin(&AuthPin::new(PIN.into())).unwrap();
        slot
    })];
    if Path::new(SOFTHSM).exists() {
        let conf = tmp.join("softhsm2.conf");
        let tokens = tmp.join("softhsm");
        std::fs::create_dir_all(&tokens).unwrap();
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\n", tokens.display()),
        )
        .unwrap();
        // SAFETY of set_var: as above.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
        let ok = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                "bench",
                "--so-pin",
                SO,
                "--pin",
                PIN,
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "softhsm2-util --init-token failed");
        out.push(prepare("softhsm2", Path::new(SOFTHSM), |p| {
            // SoftHSM2 renumbers slots on initialisation: select by label (DESIGN.md).
            p.get_slots_with_initialized_token()
                .unwrap()
                .into_iter()
                .find(|s| p.get_token_info(*s).unwrap().label() == "bench")
                .unwrap()
        }));
    } else {
        eprintln!(
            "softhsm2 not installed: only the kilt module is measured (apt-get install softhsm2)"
        );
    }
    out
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let mods = modules(tmp.path());
    let digest = [0x42u8; 32];

    let mut g = c.benchmark_group("sign ECDSA P-256, stored key, 1 thread");
    g.throughput(Throughput::Elements(1));
    for m in &mods {
        let s = m.pkcs11.open_ro_session(m.slot).unwrap();
        g.bench_function(m.name, |b| {
            b.iter(|| s.sign(&Mechanism::Ecdsa, m.key, &digest).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("sign ECDSA P-256, stored key, 2 threads");
    g.throughput(Throughput::Elements(2));
    for m in &mods {
        g.bench_function(m.name, |b| {
            b.iter_custom(|iters| {
                let start = std::time::Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..2 {
                        // Session is Send, not Sync: each thread opens its own.
                        scope.spawn(|| {
                            let s = m.pkcs11.open_ro_session(m.slot).unwrap();
                            for _ in 0..iters {
                                s.sign(&Mechanism::Ecdsa, m.key, &digest).unwrap();
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
