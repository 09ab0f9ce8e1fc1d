//! A host may unload the module (`dlclose`, as cryptoki does when its `Pkcs11` is dropped) while
//! threads that called into it live on. Their exit must not crash the host (build.rs links with
//! `-z nodelete`; without it this test's child died of SIGSEGV at thread exit).

mod common;

use std::process::Command;
use std::sync::{Arc, Barrier};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;

/// Child: a thread uses the module, the module is dropped, then the thread exits.
#[test]
#[ignore = "entry point of the child process the other test starts"]
fn child_unload_while_a_thread_lives() {
    if std::env::var_os("KILT_UNLOAD_CHILD").is_none() {
        return;
    }
    let pkcs11 = Pkcs11::new(common::module_path()).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let used = Arc::new(Barrier::new(2));
    let unloaded = Arc::new(Barrier::new(2));
    let thread = {
        let (pkcs11, used, unloaded) = (pkcs11.clone(), used.clone(), unloaded.clone());
        std::thread::spawn(move || {
            let slot = pkcs11.get_slots_with_token().unwrap()[0];
            let session = pkcs11.open_rw_session(slot).unwrap();
            session
                .login(UserType::User, Some(&common::pin(common::USER_PIN)))
                .unwrap();
            // Signing runs aws-lc, whose per-thread state is freed by a pthread-key destructor
            // that lives in the module.
            let (_, private) = session
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[Attribute::EcParams(common::P256.to_vec())],
                    &[Attribute::Sign(true)],
                )
                .unwrap();
            session
                .sign(&Mechanism::Ecdsa, private, &[7u8; 32])
                .unwrap();
            drop(session);
            drop(pkcs11);
            used.wait();
            unloaded.wait(); // exit only after the module is gone
        })
    };
    used.wait();
    drop(pkcs11); // the last handle: C_Finalize and dlclose
    unloaded.wait();
    thread.join().unwrap();
    println!("UNLOAD-OK");
}

#[test]
fn unloading_the_module_does_not_crash_threads_that_used_it() {
    let dir = tempfile::tempdir().unwrap();
    kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(dir.path()))
        .unwrap()
        .provision(
            0,
            "unload",
            &kilt_emulator::Pin::from(common::SO_PIN),
            &kilt_emulator::Pin::from(common::USER_PIN),
        )
        .unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_unload_while_a_thread_lives",
            "--ignored",
            "--nocapture",
        ])
        .env("KILT_UNLOAD_CHILD", "1")
        .env("KILT_TOKEN_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("UNLOAD-OK"),
        "child ended with {}:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
