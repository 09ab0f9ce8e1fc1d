//! `kilt-token attach` with other people's middleware: a real pcscd with vsmartcard's virtual
//! reader, Debian's unmodified OpenSC (`opensc-tool`, `pkcs11-tool` with `opensc-pkcs11.so`),
//! `yubico-piv-tool` and plain `openssl` — and the same token through `libkilt_pkcs11.so`.
//! One test, because the virtual reader is one per machine.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use kilt_test_support::{PCSC_PEERS, Pcscd, card_present, peers_installed, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const READER: &str = "Virtual PCD 00 00";
/// PIV carries at most 8 PIN characters, so this token's PINs fit.
const PIN: &str = "12345678";
const SO_PIN: &str = "00000000";
const JACARTA_ATR: &str = "3b:dc:18:ff:81:91:fe:1f:c3:80:73:c8:21:13:66:01:06:11:59:00:01:28";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tokens(&self) -> PathBuf {
        self.path("tokens")
    }

    fn kilt_token(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kilt-token"))
            .args(args)
            .env("KILT_TOKEN_DIR", self.tokens())
            .env("PIN", PIN)
            .env("SO_PIN", SO_PIN)
            .output()
            .unwrap()
    }

    fn tries_left(&self) -> u64 {
        let o = self.kilt_token(&["slots", "--json"]);
        assert!(o.status.success(), "{o:?}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let slot = v
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["label"] == "card")
            .cloned()
            .unwrap_or_else(|| panic!("no token 'card' in {v}"));
        slot["user_pin_tries_left"]
            .as_u64()
            .unwrap_or_else(|| panic!("no tries in {slot}"))
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .current_dir(self.dir.path())
            .env("KILT_TOKEN_DIR", self.tokens())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `kilt-token attach` as a child, ended by SIGTERM on drop.
struct Attached {
    child: Child,
    log: PathBuf,
}

impl Attached {
    fn start(env: &Env, trace: &Path) -> Attached {
        let log = env.path("attach.log");
        let child = Command::new(env!("CARGO_BIN_EXE_kilt-token"))
            .args(["attach", "--token", "card", "--trace"])
            .arg(trace)
            .env("KILT_TOKEN_DIR", env.tokens())
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Attached { child, log }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn p11(env: &Env, args: &[&str]) -> Output {
    let mut all = vec!["--module", OPENSC];
    all.extend_from_slice(args);
    env.run("pkcs11-tool", &all)
}

/// `pkcs11-tool` through kilt's own module on the same token.
fn kilt_p11(env: &Env, args: &[&str]) -> Output {
    let module = String::from_utf8(env.kilt_token(&["module-path"]).stdout).unwrap();
    let mut all = vec!["--module", module.trim(), "--token-label", "card"];
    all.extend_from_slice(args);
    env.run("pkcs11-tool", &all)
}

fn sign_and_verify(env: &Env, id: &str, public_pem: &str) {
    let sig = format!("doc-{id}.sig");
    let o = p11(
        env,
        &[
            "--login",
            "--pin",
            PIN,
            "--sign",
            "-m",
            "ECDSA-SHA256",
            "--id",
            id,
            "-i",
            "doc.txt",
            "-o",
            &sig,
            "--signature-format",
            "openssl",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // pkcs11-tool --verify exits 0 on a bad signature (DESIGN.md): plain openssl judges.
    let v = env.run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            public_pem,
            "-signature",
            &sig,
            "doc.txt",
        ],
    );
    assert!(text(&v).contains("Verified OK"), "{}", text(&v));
    let bad = env.run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            public_pem,
            "-signature",
            &sig,
            "other.txt",
        ],
    );
    assert!(!bad.status.success(), "{}", text(&bad));
}

#[test]
fn opensc_and_yubico_piv_tool_use_the_token_through_pcscd() {
    let mut needed = PCSC_PEERS.to_vec();
    needed.extend([
        "/usr/bin/opensc-tool",
        OPENSC,
        "/usr/bin/yubico-piv-tool",
        "/usr/bin/openssl",
    ]);
    if !peers_installed(&needed) {
        return;
    }
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
    };
    let o = env.kilt_token(&[
        "init",
        "--label",
        "card",
        "--so-pin-source",
        "env:SO_PIN",
        "--pin-source",
        "env:PIN",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(env.path("doc.txt"), "Заявление\n").unwrap();
    std::fs::write(env.path("other.txt"), "another document\n").unwrap();
    // An AUTH key set as the CA issues it (EKU clientAuth), imported through the token core.
    let o = env.run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "auth.key",
            "-out",
            "auth.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Card Test/serialNumber=IIN880214400555",
            "-addext",
            "extendedKeyUsage=clientAuth",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = env.kilt_token(&[
        "import",
        "--token",
        "card",
        "--cert",
        &env.path("auth.pem").to_string_lossy(),
        "--key",
        &env.path("auth.key").to_string_lossy(),
        "--id",
        "a1",
        "--label",
        "auth-1",
        "--pin-source",
        "env:PIN",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(
        "openssl",
        &[
            "x509", "-in", "auth.pem", "-pubkey", "-noout", "-out", "auth.pub",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    // No reader: one line that says what to start.
    let o = Command::new(env!("CARGO_BIN_EXE_kilt-token"))
        .args(["attach", "--token", "card", "--port", "1"])
        .env("KILT_TOKEN_DIR", env.tokens())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        err.contains("no virtual reader on 127.0.0.1:1: is pcscd running with vsmartcard-vpcd?")
            && err.trim().lines().count() == 1,
        "{err}"
    );

    let pcscd = Pcscd::start();
    let trace = env.path("trace.txt");
    let attached = Attached::start(&env, &trace);
    wait_until("the card in the reader", || card_present(READER));

    // The reader shows a JaCarta's ATR; OpenSC drives the card as PIV.
    let atr = text(&env.run("opensc-tool", &["-r", READER, "-a"]));
    assert!(atr.contains(JACARTA_ATR), "{atr}");
    let slots = text(&p11(&env, &["-L"]));
    assert!(
        slots.contains(READER) && slots.contains("token manufacturer : piv_II"),
        "{slots}"
    );
    let objects = text(&p11(&env, &["--login", "--pin", PIN, "-O"]));
    assert!(objects.contains("Private Key Object; EC"), "{objects}");
    assert!(
        objects.contains("Certificate for PIV Authentication"),
        "{objects}"
    );
    assert!(
        objects.contains("serialNumber=IIN880214400555"),
        "{objects}"
    );
    sign_and_verify(&env, "01", "auth.pub");

    // A wrong PIN through OpenSC is a try on the token; one through the module shows too.
    assert_eq!(env.tries_left(), 10);
    let wrong = p11(&env, &["--login", "--pin", "87654321", "-O"]);
    assert!(
        text(&wrong).contains("CKR_PIN_INCORRECT"),
        "{}",
        text(&wrong)
    );
    assert_eq!(env.tries_left(), 9);
    let wrong = kilt_p11(&env, &["--login", "--pin", "87654321", "-O"]);
    assert!(
        text(&wrong).contains("CKR_PIN_INCORRECT"),
        "{}",
        text(&wrong)
    );
    assert_eq!(env.tries_left(), 8);
    for _ in 0..7 {
        p11(&env, &["--login", "--pin", "87654321", "-O"]);
    }
    assert_eq!(env.tries_left(), 1);
    let last = p11(&env, &["--login", "--pin", "87654321", "-O"]);
    assert!(!last.status.success(), "{}", text(&last));
    assert_eq!(env.tries_left(), 0);
    // Locked through both doors, the right PIN included; the card said 6983.
    let locked = p11(&env, &["--login", "--pin", PIN, "-O"]);
    assert!(
        text(&locked).contains("CKR_PIN_LOCKED"),
        "{}",
        text(&locked)
    );
    let locked = kilt_p11(&env, &["--login", "--pin", PIN, "-O"]);
    assert!(
        text(&locked).contains("CKR_PIN_LOCKED"),
        "{}",
        text(&locked)
    );
    let t = std::fs::read_to_string(&trace).unwrap();
    assert!(t.contains("6983 (authentication method blocked)"), "{t}");
    // The SO unblocks through the card: the PUK is the token's SO PIN.
    let o = env.run(
        "yubico-piv-tool",
        &["-r", READER, "-a", "unblock-pin", "-P", SO_PIN, "-N", PIN],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(env.tries_left(), 10);
    let objects = text(&kilt_p11(&env, &["--login", "--pin", PIN, "-O"]));
    assert!(objects.contains("auth-1"), "{objects}");

    // yubico-piv-tool makes a new key in 9A (the PIN first: keys are sealed under it) and
    // imports a certificate for it, issued here by a throwaway CA. A set made through the card
    // under 9A takes the reference over from the imported AUTH certificate.
    let o = env.run(
        "yubico-piv-tool",
        &[
            "-r",
            READER,
            "-a",
            "verify-pin",
            "-P",
            PIN,
            "-a",
            "generate",
            "-s",
            "9a",
            "-A",
            "ECCP256",
            "-o",
            "sign.pub",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    for args in [
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Test CA",
        ][..],
        &[
            "req",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=Card Test PIV",
            "-out",
            "sign.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "sign.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-force_pubkey",
            "sign.pub",
            "-days",
            "30",
            "-out",
            "sign.pem",
        ],
    ] {
        let o = env.run("openssl", args);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = env.run(
        "yubico-piv-tool",
        &[
            "-r",
            READER,
            "-a",
            "import-certificate",
            "-s",
            "9a",
            "-i",
            "sign.pem",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    sign_and_verify(&env, "01", "sign.pub");
    // The module sees that key and certificate (CKA_ID 9C).
    let objects = text(&kilt_p11(&env, &["--login", "--pin", PIN, "-O"]));
    assert!(
        objects.contains("PIV AUTH certificate") && objects.contains("ID:         9a"),
        "{objects}"
    );
    assert!(objects.contains("PIV AUTH key"), "{objects}");

    // Unplugged while OpenSC holds a logged-in session (its module loaded here through
    // cryptoki): the next call that needs the card fails as on a pulled device, and the reader
    // shows no card; plugged back, a new session works.
    let opensc = Pkcs11::new(OPENSC).unwrap();
    opensc
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = opensc.get_slots_with_token().unwrap()[0];
    let session = opensc.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))
        .unwrap();
    let key = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![1]),
        ])
        .unwrap()[0];
    session.sign(&Mechanism::Ecdsa, key, &[7u8; 32]).unwrap();
    let o = env.kilt_token(&["unplug", "--token", "card"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_until("the card's removal", || !card_present(READER));
    match session.sign(&Mechanism::Ecdsa, key, &[7u8; 32]) {
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => assert!(
            matches!(
                rv,
                RvError::DeviceRemoved | RvError::TokenNotPresent | RvError::SessionHandleInvalid
            ),
            "{rv:?}"
        ),
        other => panic!("a sign on a pulled card answered {other:?}"),
    }
    drop(session);
    drop(opensc);
    let slots = text(&p11(&env, &["-L"]));
    assert!(!slots.contains("piv_II"), "{slots}");
    let o = env.kilt_token(&["plug", "--token", "card"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_until("the card back in the reader", || card_present(READER));
    sign_and_verify(&env, "01", "sign.pub");

    // pcscd restarting (only when this test owns it): the card goes back into the new reader.
    let pcscd = if pcscd.owned() {
        drop(pcscd);
        wait_until("pcscd to stop", || !Pcscd::running());
        let again = Pcscd::start();
        wait_until("the card in the new reader", || card_present(READER));
        again
    } else {
        pcscd
    };

    // SIGTERM ends it cleanly; the trace names commands and never holds a PIN.
    let log = attached.log.clone();
    let status = attached.stop();
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("unplugged: the card is out of the reader"),
        "{log}"
    );
    let t = std::fs::read_to_string(&trace).unwrap();
    for name in [
        "SELECT",
        "GET DATA",
        "VERIFY",
        "GENERAL AUTHENTICATE",
        "PUT DATA",
    ] {
        assert!(t.contains(name), "{name} missing from the trace");
    }
    let hex = |s: &str| {
        s.bytes()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for pin in [PIN, "87654321", SO_PIN] {
        let leaked: Vec<&str> = t.lines().filter(|l| l.contains(&hex(pin))).collect();
        assert!(leaked.is_empty(), "PIN in the trace: {leaked:?}");
    }
    drop(pcscd);
}
