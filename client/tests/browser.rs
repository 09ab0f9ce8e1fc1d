//! «Вход по сертификату» in a real browser: headless Chromium (Debian's) with an NSS database in
//! which kilt's module is registered by `modutil`, as the README's recipe does, and the policy
//! that picks the client certificate for the CA's origin. The TLS client authentication is
//! signed in the emulated token; the cabinet shows the user; the CA logs the certificate login;
//! with the token pulled out the page says why and nothing hangs. The screenshot stays in
//! `target/browser/`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const POLICIES: &str = "/etc/chromium/policies/managed";

#[test]
fn chromium_logs_in_to_the_ca_by_the_tokens_certificate() {
    if !kilt_test_support::peers_installed(&[CHROMIUM, "/usr/bin/certutil", "/usr/bin/modutil"]) {
        return;
    }
    with_kilt_token("child_chromium_login");
}

/// Log lines of this process, for what the in-process CA says.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The managed policy file, removed again when the test ends however it ends.
struct Policy(PathBuf);

impl Policy {
    /// `AutoSelectCertificateForUrls` for `origin`: Chromium presents the (only) matching client
    /// certificate without its selection dialog, which a headless browser cannot show.
    fn auto_select(origin: &str) -> std::io::Result<Policy> {
        std::fs::create_dir_all(POLICIES)?;
        let path = Path::new(POLICIES).join(format!("kilt-test-{}.json", std::process::id()));
        let rule = serde_json::json!({ "pattern": origin, "filter": {} }).to_string();
        let policy = serde_json::json!({ "AutoSelectCertificateForUrls": [rule] });
        std::fs::write(&path, policy.to_string())?;
        Ok(Policy(path))
    }
}

impl Drop for Policy {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Headless Chromium as the machine's probe starts it, with HOME (its NSS database) and the
/// module's PIN cache; what it printed, or a failure when it has not finished within a minute.
fn chromium(home: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let mut child = kilt_test_support::headless_chromium(profile)
        .expect("chromium, checked by the parent test")
        .args(args)
        .arg(url)
        .env("HOME", home)
        .env("KILT_LOGIN", format!("env:{PIN_VAR}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("chromium hung on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    out
}

/// Child: the CA in this process, the token provisioned, then the browser.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "entry point of the child processes the other tests start"]
async fn child_chromium_login() {
    let Some(module) = module() else { return };
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the first subscriber of this process");
    let w = world(module.clone(), 300, |_| {}, |_| {}).await;
    let origin = w.ca.url();
    let Ok(_policy) = Policy::auto_select(&origin) else {
        // Chromium reads policies only from /etc; without root there is nothing to select with.
        assert!(
            std::env::var_os("KILT_REQUIRE_PEERS").is_none(),
            "cannot write {POLICIES}: the browser test needs root"
        );
        eprintln!("SKIP: cannot write {POLICIES} (needs root)");
        println!("{}", kilt_test_support::CHILD_OK);
        return;
    };

    tokio::task::block_in_place(|| {
        // The README's recipe: an NSS database, kilt's module in it, the CA trusted.
        let home = w.path("home");
        let db = home.join(".pki/nssdb");
        std::fs::create_dir_all(&db).unwrap();
        let db = format!("sql:{}", db.display());
        run("certutil", &["-N", "-d", &db, "--empty-password"]);
        let libfile = module.to_str().unwrap();
        run(
            "modutil",
            &["-dbdir", &db, "-add", "kilt", "-libfile", libfile, "-force"],
        );
        let root = w.path("ca-root.pem");
        let issuing = w.path("ca-issuing.pem");
        std::fs::write(&issuing, w.ca.ca().pki().issuing_pem()).unwrap();
        // The root trusted for servers; the issuing CA known, so NSS can chain the client
        // certificate to the CA the server names.
        for (nick, trust, file) in [
            ("kilt-ca-root", "C,,", &root),
            ("kilt-ca-issuing", ",,", &issuing),
        ] {
            let file = file.to_str().unwrap();
            run(
                "certutil",
                &["-A", "-d", &db, "-n", nick, "-t", trust, "-i", file],
            );
        }

        let login = format!("{origin}/login/certificate?lang=ru");
        let page = chromium(&home, &w.path("profile-1"), &["--dump-dom"], &login);
        let who = kilt_client::admin::Identity::example();
        assert!(page.contains("Личный кабинет"), "{page}");
        assert!(page.contains(&who.full_name), "{page}");
        assert!(page.contains("Аутентификация"), "{page}");
        let said = log.text();
        assert!(
            said.contains("login by certificate") && said.contains(&format!("login={}", who.login)),
            "{said}"
        );

        // What the person sees, kept for the record.
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser");
        std::fs::create_dir_all(&shots).unwrap();
        let shot = shots.join("ca-cabinet.png");
        std::fs::remove_file(&shot).ok();
        chromium(
            &home,
            &w.path("profile-2"),
            &[
                "--window-size=1000,640",
                &format!("--screenshot={}", shot.display()),
            ],
            &login,
        );
        let png = std::fs::read(&shot).expect("a screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{}",
            png.len()
        );

        // The token pulled out: no certificate to present; the page says so, promptly.
        let kilt_token = module.with_file_name("kilt-token");
        let kilt_token = kilt_token.to_str().unwrap();
        run(kilt_token, &["unplug", "--token", LABEL]);
        let started = Instant::now();
        let refused = chromium(&home, &w.path("profile-3"), &["--dump-dom"], &login);
        run(kilt_token, &["plug", "--token", LABEL]);
        assert!(
            refused.contains("carries no client certificate"),
            "{refused}"
        );
        assert!(!refused.contains("Личный кабинет"), "{refused}");
        assert!(
            log.text().contains("login by certificate refused"),
            "{}",
            log.text()
        );
        eprintln!("unplugged: refused in {:?}", started.elapsed());
    });
    println!("{}", kilt_test_support::CHILD_OK);
}
