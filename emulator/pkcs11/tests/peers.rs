//! The module with the tools people already use: OpenSC's pkcs11-tool, GnuTLS's p11tool, plain
//! openssl, and OpenSSL's pkcs11 engine addressing the key by an RFC 7512 URI. Outputs are
//! checked, not only exit codes (pkcs11-tool --verify exits 0 on a bad signature).
//!
//! A missing tool skips the test with a message, unless KILT_REQUIRE_PEERS=1 (as in CI), where
//! it fails: `scripts/ensure-deps` installs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SO: &str = "00000000";
const PIN: &str = "1234567890";

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("KILT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "{tool} is required (KILT_REQUIRE_PEERS=1); run scripts/ensure-deps"
        );
        eprintln!("skipping: {tool} is not installed (scripts/ensure-deps installs it)");
    }
    found
}

fn kilt_token() -> PathBuf {
    let p = common::module_path().with_file_name("kilt-token");
    assert!(
        p.exists(),
        "build kilt-token first: cargo build -p kilt-token"
    );
    p
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("KILT_TOKEN_DIR", dir)
        .env("SO_PIN", SO)
        .env("USER_PIN", PIN)
        .env("PKCS11_MODULE_PATH", common::module_path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn ok(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = run(dir, program, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// pkcs11-tool on token "peer" of `module`, logged in, with `args`; its output.
fn p11(dir: &Path, module: &str, args: &[&str]) -> String {
    let mut all = vec![
        "--module",
        module,
        "--token-label",
        "peer",
        "--login",
        "--pin",
        PIN,
    ];
    all.extend_from_slice(args);
    ok(dir, "pkcs11-tool", &all)
}

/// Plain OpenSSL (no engine, no kilt) checks that `signature` in `dir` is the SHA-256 ECDSA
/// signature of `data` under the public key in `public_pem`.
fn openssl_verifies(dir: &Path, public_pem: &str, signature: &str, data: &str) {
    let file = |n: &str| dir.join(n).display().to_string();
    let said = ok(
        dir,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            &file(public_pem),
            "-signature",
            &file(signature),
            &file(data),
        ],
    );
    assert!(said.contains("Verified OK"), "{said}");
}

/// Signs `input` with key 01 of token "peer", output in OpenSSL's DER form.
fn p11_sign(dir: &Path, module: &str, mechanism: &str, input: &str, output: &str) {
    p11(
        dir,
        module,
        &[
            "--sign",
            "--mechanism",
            mechanism,
            "--id",
            "01",
            "--input-file",
            input,
            "--output-file",
            output,
            "--signature-format",
            "openssl",
        ],
    );
}

/// A token "peer" with an EC key pair made by pkcs11-tool.
fn token_with_key(dir: &Path) -> String {
    let t = kilt_token();
    ok(
        dir,
        t.to_str().unwrap(),
        &[
            "init",
            "--label",
            "peer",
            "--so-pin-source",
            "env:SO_PIN",
            "--pin-source",
            "env:USER_PIN",
        ],
    );
    let m = common::module_path().display().to_string();
    let out = p11(
        dir,
        &m,
        &[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            "01",
            "--label",
            "k1",
        ],
    );
    assert!(out.contains("never extractable"), "{out}");
    m
}

#[test]
fn pkcs11_tool_lists_generates_signs_and_openssl_verifies() {
    if !have("pkcs11-tool") || !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = token_with_key(d);
    let slots = ok(d, "pkcs11-tool", &["--module", &m, "--list-slots"]);
    assert!(slots.contains("Aladdin R.D. JaCarta 00 00"), "{slots}");
    assert!(slots.contains("JaCarta PKI"), "{slots}");
    let mechs = ok(
        d,
        "pkcs11-tool",
        &["--module", &m, "--token-label", "peer", "--list-mechanisms"],
    );
    for mech in ["ECDSA-SHA256", "ECDSA,", "SHA256", "ECDSA-KEY-PAIR-GEN"] {
        assert!(mechs.contains(mech), "{mech} missing:\n{mechs}");
    }
    let file = |n: &str| d.join(n).display().to_string();
    std::fs::write(d.join("doc.txt"), "Платёжное поручение").unwrap();
    ok(
        d,
        "pkcs11-tool",
        &[
            "--module",
            &m,
            "--token-label",
            "peer",
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            "01",
            "--output-file",
            &file("pub.der"),
        ],
    );
    ok(
        d,
        "openssl",
        &[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            &file("pub.der"),
            "-out",
            &file("pub.pem"),
        ],
    );

    p11_sign(d, &m, "ECDSA-SHA256", &file("doc.txt"), &file("sha.sig"));
    openssl_verifies(d, "pub.pem", "sha.sig", "doc.txt");

    ok(
        d,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-binary",
            "-out",
            &file("doc.hash"),
            &file("doc.txt"),
        ],
    );
    p11_sign(d, &m, "ECDSA", &file("doc.hash"), &file("raw.sig"));
    let v = ok(
        d,
        "openssl",
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &file("pub.pem"),
            "-in",
            &file("doc.hash"),
            "-sigfile",
            &file("raw.sig"),
        ],
    );
    assert!(v.contains("Signature Verified Successfully"), "{v}");

    // A signature over other data must not verify (openssl's answer, not an exit code alone).
    std::fs::write(d.join("other.txt"), "forged").unwrap();
    let bad = run(
        d,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            &file("pub.pem"),
            "-signature",
            &file("sha.sig"),
            &file("other.txt"),
        ],
    );
    assert!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stdout).contains("Verification failure")
    );

    // A wrong PIN is refused and counted.
    let wrong = run(
        d,
        "pkcs11-tool",
        &[
            "--module",
            &m,
            "--token-label",
            "peer",
            "--login",
            "--pin",
            "0000",
            "--list-objects",
        ],
    );
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("CKR_PIN_INCORRECT"));
    let slots = ok(d, kilt_token().to_str().unwrap(), &["slots"]);
    assert!(slots.contains("9 tries left"), "{slots}");
}

#[test]
fn p11tool_and_the_openssl_engine_address_the_key_by_uri() {
    if !have("p11tool") || !have("openssl") {
        return;
    }
    let engine_installed = Path::new("/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so").exists();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = token_with_key(d);
    let list = ok(
        d,
        "p11tool",
        &["--provider", &m, "--list-all", "pkcs11:token=peer"],
    );
    assert!(list.contains("object=k1;type=public"), "{list}");
    assert!(list.contains("manufacturer=Aladdin%20R.D."), "{list}");
    let tokens = ok(d, "p11tool", &["--provider", &m, "--list-tokens"]);
    assert!(tokens.contains("Model: JaCarta PKI"), "{tokens}");

    if !engine_installed {
        assert!(
            std::env::var("KILT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "libengine-pkcs11-openssl is required; run scripts/ensure-deps"
        );
        eprintln!("skipping the engine half: libengine-pkcs11-openssl is not installed");
        return;
    }
    let file = |n: &str| d.join(n).display().to_string();
    std::fs::write(d.join("doc.txt"), "signed through the engine").unwrap();
    let uri = format!("pkcs11:token=peer;object=k1;type=private;pin-value={PIN}");
    ok(
        d,
        "openssl",
        &[
            "dgst",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-sha256",
            "-sign",
            &uri,
            "-out",
            &file("doc.sig"),
            &file("doc.txt"),
        ],
    );
    let pem = ok(
        d,
        "p11tool",
        &[
            "--provider",
            &m,
            "--export",
            "pkcs11:token=peer;object=k1;type=public",
        ],
    );
    std::fs::write(
        d.join("pub.pem"),
        pem.lines()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    )
    .unwrap();
    openssl_verifies(d, "pub.pem", "doc.sig", "doc.txt");
}

#[test]
fn kilt_token_removal_is_seen_by_pkcs11_tool() {
    if !have("pkcs11-tool") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = token_with_key(d);
    let t = kilt_token();
    ok(d, t.to_str().unwrap(), &["unplug"]);
    let slots = ok(d, "pkcs11-tool", &["--module", &m, "--list-slots"]);
    assert!(
        slots.contains("(empty)") && !slots.contains("token label        : peer"),
        "{slots}"
    );
    ok(d, t.to_str().unwrap(), &["plug"]);
    let slots = ok(d, "pkcs11-tool", &["--module", &m, "--list-slots"]);
    assert!(slots.contains("token label        : peer"), "{slots}");
}

/// Removes kilt's p11-kit registration when the test ends, however it ends.
struct Registered {
    dir: PathBuf,
    args: Vec<&'static str>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut args = vec!["unregister"];
        args.extend(&self.args);
        run(&self.dir, kilt_token().to_str().unwrap(), &args);
    }
}

#[test]
fn kilt_token_register_makes_p11_kit_programs_find_the_token() {
    if !have("p11-kit") || !have("p11tool") || !have("pkcs11-tool") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    token_with_key(d);
    let t = kilt_token();
    let t = t.to_str().unwrap();
    // p11-kit reads no per-user files for root (CI): there the registration is system-wide.
    let home = d.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let system = kilt_emulator::p11kit::running_as_root();
    let args: Vec<&'static str> = if system { vec!["--system"] } else { vec![] };
    let in_home = |program: &str, a: &[&str]| {
        let out = Command::new(program)
            .args(a)
            .env("KILT_TOKEN_DIR", d)
            .env("HOME", &home)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let before = in_home("p11-kit", &["list-modules"]);
    assert!(!before.lines().any(|l| l.starts_with("kilt:")), "{before}");

    if system {
        let refused = in_home(t, &["register"]);
        assert!(refused.contains("--system"), "{refused}");
    }
    let mut register = vec![t, "register"];
    register.extend(&args);
    let said = in_home(register[0], &register[1..]);
    assert!(said.contains("registered"), "{said}");
    let _registered = Registered {
        dir: d.to_path_buf(),
        args: args.clone(),
    };
    let modules = in_home("p11-kit", &["list-modules"]);
    // kilt's entry: its "kilt: PATH" line and the indented lines under it.
    let kilt: String = modules
        .lines()
        .skip_while(|l| !l.starts_with("kilt: "))
        .take_while(|l| l.starts_with("kilt: ") || l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        kilt.contains("libkilt_pkcs11.so"),
        "kilt is not listed:\n{modules}"
    );
    assert!(
        kilt.contains("token: peer") && kilt.contains("model: JaCarta PKI"),
        "{kilt}"
    );
    // No --provider: p11tool finds the token through p11-kit alone.
    let tokens = in_home("p11tool", &["--list-tokens"]);
    assert!(
        tokens.contains("token=peer") && tokens.contains("Model: JaCarta PKI"),
        "{tokens}"
    );

    let mut unregister = vec![t, "unregister"];
    unregister.extend(&args);
    assert!(in_home(unregister[0], &unregister[1..]).contains("removed"));
    let after = in_home("p11tool", &["--list-tokens"]);
    assert!(!after.contains("token=peer"), "{after}");
}

#[test]
fn nss_lists_both_slots_as_pcsc_names_readers() {
    if !have("modutil") || !have("certutil") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = token_with_key(d);
    let db = format!("sql:{}", d.display());
    ok(d, "certutil", &["-N", "-d", &db, "--empty-password"]);
    ok(
        d,
        "modutil",
        &["-dbdir", &db, "-add", "kilt", "-libfile", &m, "-force"],
    );
    let list = ok(d, "modutil", &["-dbdir", &db, "-list", "kilt"]);
    // The token's slot and the spare one, numbered like two readers of one kind.
    assert!(list.contains("Aladdin R.D. JaCarta 00 00"), "{list}");
    assert!(list.contains("Aladdin R.D. JaCarta 01 00"), "{list}");
    assert!(
        list.contains("Token Name: peer") || list.contains("token: peer"),
        "{list}"
    );
}

#[test]
fn java_signs_through_sunpkcs11_and_a_wrong_pin_costs_one_try() {
    if !have("java") || !have("keytool") || !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = token_with_key(d);
    let file = |n: &str| d.join(n).display().to_string();
    // A key and certificate as a CA would have issued them, written with kilt-token import.
    ok(
        d,
        "openssl",
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &file("java.key"),
        ],
    );
    ok(
        d,
        "openssl",
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            &file("java.key"),
            "-subj",
            "/CN=ТЕСТОВ ТЕСТ",
            "-utf8",
            "-days",
            "30",
            "-out",
            &file("java.pem"),
        ],
    );
    let t = kilt_token();
    ok(
        d,
        t.to_str().unwrap(),
        &[
            "import",
            "--cert",
            &file("java.pem"),
            "--key",
            &file("java.key"),
            "--id",
            "02",
            "--label",
            "java",
            "--pin-source",
            "env:USER_PIN",
        ],
    );
    // The README's configuration file and keytool line.
    std::fs::write(
        d.join("kilt.cfg"),
        format!("name = kilt\nlibrary = {m}\nslot = 0\n"),
    )
    .unwrap();
    let listed = ok(
        d,
        "keytool",
        &[
            "-list",
            "-storetype",
            "PKCS11",
            "-providername",
            "SunPKCS11-kilt",
            "-addprovider",
            "SunPKCS11",
            "-providerArg",
            &file("kilt.cfg"),
            "-storepass",
            PIN,
        ],
    );
    assert!(listed.contains("java, PrivateKeyEntry"), "{listed}");

    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/KiltSign.java");
    let program = program.to_str().unwrap();
    std::fs::write(d.join("doc.txt"), "подписано в Java").unwrap();
    let sign = |pin: &str| {
        run(
            d,
            "java",
            &[
                program,
                &file("kilt.cfg"),
                pin,
                "java",
                &file("doc.txt"),
                &file("doc.sig"),
                &file("cert.der"),
            ],
        )
    };
    let signed = sign(PIN);
    assert!(signed.status.success(), "{signed:?}");
    ok(
        d,
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            &file("cert.der"),
            "-pubkey",
            "-noout",
            "-out",
            &file("pub.pem"),
        ],
    );
    openssl_verifies(d, "pub.pem", "doc.sig", "doc.txt");

    let refused = sign("0000000000");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{said}");
    assert!(
        said.contains("javax.security.auth.login.FailedLoginException")
            && said.contains("CKR_PIN_INCORRECT"),
        "{said}"
    );
    let slots = ok(d, t.to_str().unwrap(), &["slots"]);
    assert!(slots.contains("user PIN: 9 tries left"), "{slots}");
}

/// PyKCS11 (a peer binding, `python3-pykcs11`) for what pkcs11-tool cannot do with GOST: make a
/// 512-bit key with the standard mechanism (pkcs11-tool asks a vendor one) and read a public
/// key's `CKA_VALUE` (it cannot export GOST public keys).
const PYKCS11: &str = r#"
import PyKCS11, sys
lib = PyKCS11.PyKCS11Lib(); lib.load(sys.argv[1])
slot = [s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == "peer"][0]
s = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
s.login(sys.argv[4])
kid = bytes.fromhex(sys.argv[3])
if sys.argv[2] == "gen512":
    tc26_512_a = bytes.fromhex("06092a8503070102010201")
    s.generateKeyPair(
        [(PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_GOSTR3410_PARAMS, tc26_512_a), (PyKCS11.CKA_ID, kid)],
        [(PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_ID, kid), (PyKCS11.CKA_SIGN, True)],
        mecha=PyKCS11.Mechanism(PyKCS11.CKM_GOSTR3410_KEY_PAIR_GEN, None))
pub = s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_ID, kid)])[0]
print(bytes(s.getAttributeValue(pub, [PyKCS11.CKA_VALUE])[0]).hex())
"#;

/// GOST keys made in the token sign with pkcs11-tool, and OpenSSL's GOST engine (Debian's
/// `libengine-gost-openssl`, which kilt did not write) verifies: CKM_GOSTR3410 over a digest
/// with `pkeyutl`, CKM_GOSTR3410_WITH_GOSTR3411 over a message with `dgst` — for a 2004 key
/// (`--key-type GOSTR3410-2001:A`, hashed with the CryptoPro set pkcs11-tool names) and a 512-bit
/// one (Streebog-512, kilt's default for that curve).
#[test]
fn gost_keys_sign_through_pkcs11_tool_and_openssls_gost_engine_verifies() {
    if !have("pkcs11-tool") || !have("openssl") || !have("/usr/bin/python3") {
        return;
    }
    let engine = std::path::Path::new("/usr/lib/x86_64-linux-gnu/engines-3/gost.so");
    let pykcs11 = Command::new("/usr/bin/python3")
        .args(["-c", "import PyKCS11"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !engine.exists() || !pykcs11 {
        assert!(
            std::env::var("KILT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "libengine-gost-openssl and python3-pykcs11 are required; run scripts/ensure-deps"
        );
        eprintln!("skipping: libengine-gost-openssl or python3-pykcs11 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = token_with_key(d);
    let file = |n: &str| d.join(n).display().to_string();
    let tool = |args: &[&str]| p11(d, &m, args);
    let out = tool(&[
        "--keypairgen",
        "--key-type",
        "GOSTR3410-2001:A",
        "--id",
        "20",
    ]);
    assert!(
        out.contains("GOSTR3410") && out.contains("never extractable"),
        "{out}"
    );
    std::fs::write(d.join("py"), PYKCS11).unwrap();
    let value = |cmd: &str, id: &str| {
        let said = ok(d, "/usr/bin/python3", &[&file("py"), &m, cmd, id, PIN]);
        hex::decode(said.trim()).unwrap()
    };
    value("gen512", "40");
    std::fs::write(d.join("doc.txt"), "Платёжное поручение, ГОСТ").unwrap();
    let verify = |args: &[&str]| {
        let out = run(d, "openssl", args);
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    for (id, curve, digest_md) in [
        ("20", kilt_gost::CurveId::CryptoProA, "-md_gost94"),
        ("40", kilt_gost::CurveId::Tc26_512A, "-md_gost12_512"),
    ] {
        let public = value("value", id);
        let spki = kilt_gost::pkcs11::spki_der(curve, &public).unwrap();
        std::fs::write(d.join("pub.der"), spki).unwrap();
        ok(
            d,
            "openssl",
            &[
                "pkey",
                "-engine",
                "gost",
                "-pubin",
                "-inform",
                "DER",
                "-in",
                &file("pub.der"),
                "-out",
                &file("pub.pem"),
            ],
        );
        // CKM_GOSTR3410 over a digest: any bytes of the curve's length serve pkeyutl.
        let digest: Vec<u8> = (0..curve.int_len() as u8)
            .map(|i| i.wrapping_mul(37))
            .collect();
        std::fs::write(d.join("digest.bin"), &digest).unwrap();
        tool(&[
            "--sign",
            "--mechanism",
            "GOSTR3410",
            "--id",
            id,
            "--input-file",
            &file("digest.bin"),
            "--output-file",
            &file("raw.sig"),
        ]);
        let pkeyutl = |sig: &str| {
            verify(&[
                "pkeyutl",
                "-engine",
                "gost",
                "-verify",
                "-pubin",
                "-inkey",
                &file("pub.pem"),
                "-in",
                &file("digest.bin"),
                "-sigfile",
                &file(sig),
            ])
        };
        let said = pkeyutl("raw.sig");
        assert!(
            said.contains("Signature Verified Successfully"),
            "{id}: {said}"
        );
        let mut bad = std::fs::read(d.join("raw.sig")).unwrap();
        bad[3] ^= 1;
        std::fs::write(d.join("bad.sig"), bad).unwrap();
        assert!(pkeyutl("bad.sig").contains("Signature Verification Failure"));
        // CKM_GOSTR3410_WITH_GOSTR3411 over the message, hashed with the key's set.
        tool(&[
            "--sign",
            "--mechanism",
            "GOSTR3410-WITH-GOSTR3411",
            "--id",
            id,
            "--input-file",
            &file("doc.txt"),
            "--output-file",
            &file("hashed.sig"),
        ]);
        let dgst = |data: &str| {
            verify(&[
                "dgst",
                "-engine",
                "gost",
                digest_md,
                "-verify",
                &file("pub.pem"),
                "-signature",
                &file("hashed.sig"),
                &file(data),
            ])
        };
        assert!(
            dgst("doc.txt").contains("Verified OK"),
            "{id}: {}",
            dgst("doc.txt")
        );
        std::fs::write(d.join("other.txt"), "Платёжное поручение, ГОСТ!").unwrap();
        assert!(dgst("other.txt").contains("Verification failure"));
    }
}
