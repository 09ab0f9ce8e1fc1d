//! criterion benches of the token core (no C boundary): the raw signing backends, a signature
//! through the emulator's API, key generation, login (PBKDF2 with the profile's rounds) and
//! finding one object among 10,000. The signing path through the built `.so`, side by side with
//! SoftHSM2, is `cargo bench -p kilt-pkcs11 --bench sign` and `kilt-bench`.

use criterion::{Criterion, criterion_group, criterion_main};
use cryptoki_sys::{
    CKA_CLASS, CKA_EC_PARAMS, CKA_LABEL, CKA_TOKEN, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, CKO_DATA,
};
use kilt_emulator::crypto::{EcPrivateKey, EcdsaSigner, P256_PARAMS, P256Signer};
use kilt_emulator::object::{bool as ckbool, ulong};
use kilt_emulator::{Config, Emulator, Mechanism, Pin, UserType};

fn token() -> (tempfile::TempDir, Emulator, kilt_emulator::SessionHandle) {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::new(Config::in_dir(dir.path())).unwrap();
    emu.provision(0, "bench", &Pin::from("00000000"), &Pin::from("1234567890"))
        .unwrap();
    let s = emu.open_session(0, true, true).unwrap();
    emu.login(s, UserType::User, Some(&Pin::from("1234567890")))
        .unwrap();
    (dir, emu, s)
}

fn bench(c: &mut Criterion) {
    let digest = [0x42u8; 32];
    let key = EcPrivateKey::generate().unwrap();
    let portable = p256::ecdsa::SigningKey::from_slice(&key.scalar()).unwrap();
    let mut g = c.benchmark_group("backend sign (32-byte digest)");
    g.bench_function("aws-lc-rs (kilt's hot path)", |b| {
        b.iter(|| key.sign_digest(&digest).unwrap())
    });
    g.bench_function("p256 (fallback, verifier)", |b| {
        b.iter(|| P256Signer(&portable).sign_digest(&digest).unwrap())
    });
    g.finish();

    let (_dir, emu, s) = token();
    let mech = Mechanism::new(CKM_EC_KEY_PAIR_GEN);
    let (_, private) = emu
        .generate_key_pair(
            s,
            &mech,
            &[
                (CKA_EC_PARAMS, P256_PARAMS.to_vec()),
                (CKA_TOKEN, ckbool(true)),
            ],
            &[(CKA_TOKEN, ckbool(true))],
        )
        .unwrap();
    c.bench_function("emulator core: C_SignInit + C_Sign (stored key)", |b| {
        b.iter(|| {
            emu.sign_init(s, &Mechanism::new(CKM_ECDSA), private)
                .unwrap();
            emu.sign(s, &digest).unwrap()
        })
    });
    c.bench_function(
        "emulator core: generate P-256 key pair (session objects)",
        |b| {
            b.iter(|| {
                emu.generate_key_pair(s, &mech, &[(CKA_EC_PARAMS, P256_PARAMS.to_vec())], &[])
                    .unwrap()
            })
        },
    );
    let login_session = emu.open_session(0, false, true).unwrap();
    c.bench_function(
        "emulator core: C_Login + C_Logout (user PIN, PBKDF2)",
        |b| {
            b.iter(|| {
                emu.logout(login_session).unwrap();
                emu.login(
                    login_session,
                    UserType::User,
                    Some(&Pin::from("1234567890")),
                )
                .unwrap();
            })
        },
    );
    for i in 0..10_000u32 {
        emu.create_object(
            s,
            &[
                (CKA_CLASS, ulong(CKO_DATA)),
                (CKA_LABEL, i.to_be_bytes().to_vec()),
            ],
        )
        .unwrap();
    }
    c.bench_function(
        "emulator core: find 1 of 10,000 objects by CKA_LABEL",
        |b| {
            b.iter(|| {
                emu.find_init(s, &[(CKA_LABEL, 4242u32.to_be_bytes().to_vec())])
                    .unwrap();
                let found = emu.find_next(s, 10).unwrap();
                emu.find_final(s).unwrap();
                assert_eq!(found.len(), 1);
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
