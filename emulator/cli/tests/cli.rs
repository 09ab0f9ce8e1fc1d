//! `kilt-token` as a user runs it: non-interactive init, listing, import, deletion, removal, and
//! one-line errors that change nothing.

use std::process::{Command, Output};

fn kilt_token(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kilt-token"))
        .args(args)
        .env("KILT_TOKEN_DIR", dir)
        .env("SO_PIN", "00000000")
        .env("PIN", "1234567890")
        .env("SHORT", "12")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn init(dir: &std::path::Path) {
    let o = kilt_token(
        dir,
        &[
            "init",
            "--label",
            "demo",
            "--so-pin-source",
            "env:SO_PIN",
            "--pin-source",
            "env:PIN",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn init_then_slots_show_the_jacarta_token_and_a_spare_slot() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let o = kilt_token(dir.path(), &["slots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["label"], "demo");
    assert_eq!(v[0]["model"], "JaCarta PKI");
    assert_eq!(v[0]["user_pin_tries_left"], 10);
    assert_eq!(v[1]["initialized"], false, "a spare slot like SoftHSM2");
}

#[test]
fn errors_are_one_line_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A user PIN that is too short: refused before the spare slot is touched.
    let o = kilt_token(
        dir.path(),
        &[
            "init",
            "--label",
            "x",
            "--so-pin-source",
            "env:SO_PIN",
            "--pin-source",
            "env:SHORT",
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("4 to 16 characters"), "{err}");
    let o = kilt_token(dir.path(), &["slots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["initialized"], false);
    // Bad usage is exit status 2 (clap), unknown token a clear line.
    assert_eq!(
        kilt_token(dir.path(), &["frobnicate"]).status.code(),
        Some(2)
    );
    let o = kilt_token(dir.path(), &["keys", "--token", "nope"]);
    assert!(text(&o).1.contains("no token labelled \"nope\""));
}

#[test]
fn import_keys_delete_and_unplug() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    // A P-256 key as PKCS#8 PEM, written by p256 itself.
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let key = p256::SecretKey::from_slice(&[0x11; 32]).unwrap();
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let kf = dir.path().join("k.pem");
    std::fs::write(&kf, pem.as_bytes()).unwrap();
    let o = kilt_token(
        dir.path(),
        &[
            "import",
            "--key",
            kf.to_str().unwrap(),
            "--id",
            "0a0b",
            "--label",
            "old",
            "--pin-source",
            "env:PIN",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    // Without a PIN only the public key shows; with it, the private key too.
    let o = kilt_token(dir.path(), &["keys", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            v[0]["id"].as_str(),
            v[0]["public_key"].as_bool(),
            v[0]["private_key"].as_bool()
        ),
        (Some("0a0b"), Some(true), Some(false))
    );
    let o = kilt_token(dir.path(), &["keys", "--json", "--pin-source", "env:PIN"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["private_key"], true);
    // Deleting without --yes and without a terminal answer is cancelled: nothing goes.
    let o = kilt_token(
        dir.path(),
        &["delete", "--id", "0a0b", "--pin-source", "env:PIN"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("cancelled"));
    let o = kilt_token(
        dir.path(),
        &["delete", "--id", "0a0b", "--yes", "--pin-source", "env:PIN"],
    );
    assert!(text(&o).0.contains("deleted 2 object(s)"), "{:?}", text(&o));
    // Removal is visible to every process, including the next kilt-token.
    assert!(kilt_token(dir.path(), &["unplug"]).status.success());
    let o = kilt_token(dir.path(), &["slots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["present"], false);
    assert!(kilt_token(dir.path(), &["plug"]).status.success());
}

#[test]
fn module_path_points_at_the_built_module() {
    let dir = tempfile::tempdir().unwrap();
    let o = kilt_token(dir.path(), &["module-path"]);
    let path = text(&o).0.trim().to_string();
    // CI builds the module first; a developer who has not gets told how.
    if o.status.success() || std::env::var("KILT_REQUIRE_PEERS").as_deref() == Ok("1") {
        assert!(path.ends_with("libkilt_pkcs11.so") && std::path::Path::new(&path).is_absolute());
        assert!(std::path::Path::new(&path).exists());
    } else {
        assert!(text(&o).1.contains("cargo build -p kilt-pkcs11"));
    }
}

/// A GOST PKCS#8 file: `key_oid` with parameters {`curve`, `hash`}, the private key as `inner`
/// puts it (the little-endian bytes themselves, as OpenSSL's GOST engine writes, or an INTEGER).
fn gost_pkcs8(key_oid: &str, curve: &str, hash: &str, inner: &[u8]) -> Vec<u8> {
    use p256::pkcs8::der::asn1::ObjectIdentifier as Oid;
    use p256::pkcs8::der::{Any, Encode};
    let params = Any::encode_from(&vec![Oid::new_unwrap(curve), Oid::new_unwrap(hash)]).unwrap();
    p256::pkcs8::PrivateKeyInfo {
        algorithm: p256::pkcs8::AlgorithmIdentifierRef {
            oid: Oid::new_unwrap(key_oid),
            parameters: Some((&params).into()),
        },
        private_key: inner,
        public_key: None,
    }
    .to_der()
    .unwrap()
}

/// Kazakh GOST keys (the national CA's OIDs, the fixtures' README) import as GOST key pairs and
/// `keys` names their algorithm; a key that is not the certificate's, or of an unknown
/// algorithm, is refused in one line and nothing is imported.
#[test]
fn gost_keys_import_under_the_kazakh_oids_and_show_their_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    // Three keys (big-endian scalars), each written as the Kazakh OIDs name it.
    let d: Vec<u8> = (1..=32).collect();
    let d2: Vec<u8> = (2..=33).collect();
    let d512: Vec<u8> = (1..=64).collect();
    let le = kilt_gost::reversed(&d);
    let kz2004 = |inner: &[u8]| {
        gost_pkcs8(
            "1.2.398.3.10.1.1.1.1",
            "1.2.398.3.10.1.1.1.1.1",
            "1.2.398.3.10.1.3.1.1.0",
            inner,
        )
    };
    let files = [
        ("2004.der", kz2004(&le)),
        (
            "2004-integer.der",
            kz2004(&[&[0x02, 0x20][..], &d2].concat()),
        ),
        (
            "2015.der",
            gost_pkcs8(
                "1.2.398.3.10.1.1.2.2",
                "1.2.398.3.10.1.1.2.2.1",
                "1.2.398.3.10.1.3.3",
                &kilt_gost::reversed(&d512),
            ),
        ),
    ];
    for (name, der) in &files {
        let f = dir.path().join(name);
        std::fs::write(&f, der).unwrap();
        let o = kilt_token(
            dir.path(),
            &[
                "import",
                "--key",
                f.to_str().unwrap(),
                "--pin-source",
                "env:PIN",
            ],
        );
        assert!(o.status.success(), "{name}: {:?}", text(&o));
    }
    // The default CKA_ID is derived from the public key the token computed: the right key.
    let id = |curve, d: &[u8]| {
        use sha2::Digest;
        let value = kilt_gost::pkcs11::public_value(curve, d).unwrap();
        hex::encode(&sha2::Sha256::digest(&value)[..20])
    };
    let (a, b) = (
        kilt_gost::CurveId::CryptoProA,
        kilt_gost::CurveId::Tc26_512A,
    );
    let mut want = vec![
        (id(a, &d), "GOST 34.310-2004"),
        (id(a, &d2), "GOST 34.310-2004"),
        (id(b, &d512), "GOST R 34.10-2015 512"),
    ];
    want.sort();
    let o = kilt_token(dir.path(), &["keys", "--json", "--pin-source", "env:PIN"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut got: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["algorithm"].as_str().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|k| k["private_key"] == true)
    );
    // The national CA's test user certificate is not this key's: refused, nothing imported.
    let cert = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../gost/tests/data/user-2004.der"
    );
    let f = dir.path().join("2004.der");
    let o = kilt_token(
        dir.path(),
        &[
            "import",
            "--key",
            f.to_str().unwrap(),
            "--cert",
            cert,
            "--id",
            "20",
            "--pin-source",
            "env:PIN",
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("does not belong to the certificate"), "{err}");
    let unknown = dir.path().join("unknown.der");
    std::fs::write(
        &unknown,
        gost_pkcs8(
            "1.2.398.3.10.1.1.9",
            "1.2.398.3.10.1.1.1.1.1",
            "1.2.398.3.10.1.3.1.1.0",
            &le,
        ),
    )
    .unwrap();
    let o = kilt_token(
        dir.path(),
        &[
            "import",
            "--key",
            unknown.to_str().unwrap(),
            "--pin-source",
            "env:PIN",
        ],
    );
    assert!(
        text(&o).1.contains("is not a P-256 or GOST private key"),
        "{:?}",
        text(&o)
    );
    let o = kilt_token(dir.path(), &["keys", "--json", "--pin-source", "env:PIN"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3, "nothing more was imported");
}
