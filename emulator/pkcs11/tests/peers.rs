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

/// Signs `input` with key 01 of token "peer", output in OpenSSL's DER form.
fn p11_sign(dir: &Path, module: &str, mechanism: &str, input: &str, output: &str) {
    ok(
        dir,
        "pkcs11-tool",
        &[
            "--module",
            module,
            "--token-label",
            "peer",
            "--login",
            "--pin",
            PIN,
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
    let out = ok(
        dir,
        "pkcs11-tool",
        &[
            "--module",
            &m,
            "--token-label",
            "peer",
            "--login",
            "--pin",
            PIN,
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
    let v = ok(
        d,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            &file("pub.pem"),
            "-signature",
            &file("sha.sig"),
            &file("doc.txt"),
        ],
    );
    assert!(v.contains("Verified OK"), "{v}");

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
    let v = ok(
        d,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            &file("pub.pem"),
            "-signature",
            &file("doc.sig"),
            &file("doc.txt"),
        ],
    );
    assert!(v.contains("Verified OK"), "{v}");
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
