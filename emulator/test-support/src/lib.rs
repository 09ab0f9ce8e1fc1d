//! Fixtures shared by the tests of several kilt crates (unpublished, like rustls' test
//! support): test tokens on the emulator and on SoftHSM2, test functions re-run as child
//! processes (so a PKCS#11 module reads its own environment), and server binaries started on
//! ephemeral ports.
//!
//! ```no_run
//! let token = kilt_test_support::kilt_token("e2e");
//! kilt_test_support::run_child("child_flow", &[("KILT_TOKEN_DIR", token.path().as_os_str())]);
//! ```

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The national CA's default SO PIN.
pub const SO_PIN: &str = "00000000";
/// The national CA's default user PIN.
pub const USER_PIN: &str = "1234567890";
/// What a child prints when its test body finished.
pub const CHILD_OK: &str = "CHILD-OK";
/// SoftHSM2's module on Debian.
pub const SOFTHSM2: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The built `libkilt_pkcs11.so`: cargo puts it in `target/<profile>`, test binaries in
/// `target/<profile>/deps`.
pub fn kilt_module() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let module = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("libkilt_pkcs11.so");
    assert!(
        module.exists(),
        "{} missing: cargo build -p kilt-pkcs11",
        module.display()
    );
    module
}

/// A fresh emulated token labelled `label`, with the default PINs, in a new token folder
/// (pass it as `KILT_TOKEN_DIR`).
pub fn kilt_token(label: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    kilt_emulator::Emulator::new(kilt_emulator::Config::in_dir(dir.path()))
        .expect("emulator")
        .provision(
            0,
            label,
            &kilt_emulator::Pin::from(SO_PIN),
            &kilt_emulator::Pin::from(USER_PIN),
        )
        .expect("provision");
    dir
}

/// A SoftHSM2 token labelled `label` with the default PINs, in its own configuration (pass
/// the returned file as `SOFTHSM2_CONF`). `None` when SoftHSM2 is not installed — a failure
/// instead when `KILT_REQUIRE_PEERS=1` (CI).
pub fn softhsm_token(label: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    if !Path::new(SOFTHSM2).exists() {
        assert!(
            std::env::var("KILT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "SoftHSM2 is required (KILT_REQUIRE_PEERS=1); run scripts/ensure-deps"
        );
        eprintln!("skipping: softhsm2 is not installed");
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::create_dir_all(dir.path().join("tokens")).expect("token dir");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\n",
            dir.path().join("tokens").display()
        ),
    )
    .expect("conf");
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            SO_PIN,
            "--pin",
            USER_PIN,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util runs");
    assert!(
        out.status.success(),
        "softhsm2-util: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some((dir, conf))
}

/// Re-runs this test binary's `#[ignore]`d test `name` as a child with `env`, and asserts it
/// printed [`CHILD_OK`] and exited 0 (a crash at exit counts as a failure).
pub fn run_child(name: &str, env: &[(&str, &OsStr)]) {
    let out = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().copied())
        .output()
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(CHILD_OK),
        "child {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server binary (`kilt-ca`, `kilt-bank`) started with `args`; it prints `api URL` and
/// `admin URL` on its first two lines.
pub struct ServerProcess {
    /// The process (kill it to simulate a crash).
    pub child: Child,
    /// `https://127.0.0.1:PORT`.
    pub api: String,
    /// `http://127.0.0.1:PORT`.
    pub admin: String,
}

impl ServerProcess {
    /// Starts `exe --data-dir DIR serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 EXTRA…`.
    pub fn start(exe: &str, dir: &Path, extra: &[&str]) -> ServerProcess {
        let mut child = Command::new(exe)
            .arg("--data-dir")
            .arg(dir)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut line = |prefix: &str| {
            let line = lines.next().expect("an address line").expect("readable");
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"))
                .to_owned()
        };
        let api = line("api ");
        let admin = line("admin ");
        ServerProcess { child, api, admin }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

/// Whether every program in `paths` is installed; when one is not, `false` (the test skips
/// with a message) — a failure instead when `KILT_REQUIRE_PEERS=1` (CI).
pub fn peers_installed(paths: &[&str]) -> bool {
    let missing: Vec<&&str> = paths.iter().filter(|p| !Path::new(p).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("KILT_REQUIRE_PEERS").as_deref() != Ok("1"),
        "{missing:?} required (KILT_REQUIRE_PEERS=1); run scripts/ensure-deps"
    );
    eprintln!("skipping: {missing:?} not installed");
    false
}

/// vsmartcard's virtual reader "Virtual PCD 00 00" listens for a card here.
pub const VPCD: &str = "127.0.0.1:35963";
/// What pcscd and vsmartcard-vpcd install.
pub const PCSC_PEERS: [&str; 2] = [
    "/usr/sbin/pcscd",
    "/usr/lib/pcsc/drivers/serial/libifdvpcd.so",
];

/// pcscd for a test: the one running, or one started as the test's child (a container has no
/// service manager) and stopped when this is dropped. Waits until vpcd listens and pcscd takes
/// clients.
pub struct Pcscd(Option<Child>);

impl Pcscd {
    pub fn running() -> bool {
        Command::new("pgrep")
            .args(["-x", "pcscd"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    pub fn start() -> Pcscd {
        let child = (!Pcscd::running()).then(|| {
            Command::new("/usr/sbin/pcscd")
                .arg("--foreground")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pcscd starts")
        });
        let start = std::time::Instant::now();
        // pcscd opens vpcd's port while loading its readers, before its own client socket: a
        // client in between hears "pcscd is not running". Both must answer.
        while std::net::TcpStream::connect(VPCD).is_err()
            || pcsc::Context::establish(pcsc::Scope::User).is_err()
        {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "pcscd does not answer, or vpcd does not listen on {VPCD}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Pcscd(child)
    }

    /// Whether this test started pcscd (and so may stop it).
    pub fn owned(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

/// Polls `ok` every 100 ms for up to 10 s; panics naming `what` if it never holds.
pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A card played over vpcd's socket in "Virtual PCD 00 00" until dropped: the ATR given, and
/// every APDU answered by `answer`. vpcd's protocol: a 2-byte big-endian length, then the
/// payload; a 1-byte payload is a control (0 off, 1 on, 2 reset, 4 the ATR, which is answered).
/// Dropping it pulls the card out.
pub struct ScriptedCard {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ScriptedCard {
    pub fn insert(atr: &'static [u8], answer: fn(&[u8]) -> Vec<u8>) -> ScriptedCard {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        use std::time::Duration;
        let mut stream =
            std::net::TcpStream::connect(VPCD).expect("vpcd listens (pcscd with vsmartcard-vpcd)");
        let idle = Some(Duration::from_millis(100));
        stream.set_read_timeout(idle).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let send = |s: &mut std::net::TcpStream, data: &[u8]| {
                let mut msg = (data.len() as u16).to_be_bytes().to_vec();
                msg.extend_from_slice(data);
                s.write_all(&msg)
            };
            while !flag.load(Ordering::SeqCst) {
                let mut len = [0u8; 2];
                match stream.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue;
                    }
                    Err(_) => return,
                }
                let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                if stream.read_exact(&mut payload).is_err() {
                    return;
                }
                stream.set_read_timeout(idle).unwrap();
                let sent = match payload.as_slice() {
                    [4] => send(&mut stream, atr),
                    [_] => Ok(()),
                    apdu => send(&mut stream, &answer(apdu)),
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        ScriptedCard {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ScriptedCard {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// Whether PC/SC reports a card in `reader` (a status query, as `kilt readers` does: polling by
/// connecting would power the card up and down between every look).
pub fn card_present(reader: &str) -> bool {
    let Ok(ctx) = pcsc::Context::establish(pcsc::Scope::User) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(reader) else {
        return false;
    };
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
    ctx.get_status_change(std::time::Duration::from_millis(100), &mut states)
        .is_ok()
        && states[0].event_state().contains(pcsc::State::PRESENT)
}

/// Debian's Chromium, headless, with the flags a closed network needs (no background traffic,
/// no component updates, no sync: otherwise it keeps trying Google's hosts) and a profile of
/// its own in `profile`. `None` when it is not installed (a failure under `KILT_REQUIRE_PEERS=1`).
pub fn headless_chromium(profile: &Path) -> Option<Command> {
    let program = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(program) = program else {
        assert!(
            std::env::var("KILT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "Chromium is required (KILT_REQUIRE_PEERS=1); run scripts/ensure-deps"
        );
        eprintln!("skipping: chromium is not installed");
        return None;
    };
    let mut command = Command::new(program);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    Some(command)
}

/// `cargo tree -p PACKAGE --prefix none ARGS…` of this workspace: the dependency names a build
/// of PACKAGE carries (for tests that hold a crate to what it may link).
pub fn cargo_tree(package: &str, args: &[&str]) -> String {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["tree", "-p", package, "--prefix", "none"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every operation of an OpenAPI document as `(METHOD, path)`, path parameters filled with `0`.
fn operations(doc: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("a paths object") {
        let concrete: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { "0" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().expect("a path item").keys() {
            out.push((method.to_uppercase(), concrete.clone()));
        }
    }
    out
}

/// Holds a listener to its OpenAPI document (`doc`, as the listener at `base` served it):
/// OpenAPI 3.1 naming the listener as its server; every documented operation is routed (no
/// router `404`, no `405`); every operation only the other listener documents (`other`) is
/// not routed here. Requests carry no body or session, so they change nothing.
pub async fn assert_serves_exactly(
    client: &reqwest::Client,
    base: &str,
    doc: &serde_json::Value,
    other: &serde_json::Value,
) {
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], base);
    let ours = operations(doc);
    assert!(
        ours.len() >= 10,
        "only {} operations documented",
        ours.len()
    );
    let unrouted = |status: u16, body: &str| {
        status == 405 || (status == 404 && body.contains("the routes are in /openapi.json"))
    };
    let probe = |method: String, path: String| async move {
        let response = client
            .request(method.parse().expect("a method"), format!("{base}{path}"))
            .send()
            .await
            .expect("the listener answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    };
    for (method, path) in &ours {
        let (status, body) = probe(method.clone(), path.clone()).await;
        assert!(
            !unrouted(status, &body),
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
    for (method, path) in operations(other) {
        if ours.iter().any(|(_, p)| *p == path) {
            continue;
        }
        let (status, body) = probe(method.clone(), path.clone()).await;
        assert!(
            unrouted(status, &body),
            "{method} {path} is served here but documented only on the other listener: {status}"
        );
    }
}

/// What the national CA's verification scripts need (the fixtures' README): rhash for the
/// Test-S-box hash, xxd, and OpenSSL with Debian's GOST engine.
pub const GOST_SCRIPT_PEERS: [&str; 4] = [
    "/usr/bin/rhash",
    "/usr/bin/xxd",
    "/usr/bin/openssl",
    "/usr/lib/x86_64-linux-gnu/engines-3/gost.so",
];

/// Runs one of the fixtures' verification scripts (`verify-2004.sh`, `verify-2015-512.sh`,
/// copied unchanged into `mock-server/tests/data`) on a certificate and its issuer's, in a
/// fresh directory: what it printed, or `None` (skipped, see [`peers_installed`]).
pub fn gost_fixture_script(name: &str, child: &[u8], issuer: &[u8]) -> Option<String> {
    if !peers_installed(&GOST_SCRIPT_PEERS) {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("child.der"), child).expect("write");
    std::fs::write(dir.path().join("issuer.der"), issuer).expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../mock-server/tests/data")
        .join(name);
    let out = Command::new("bash")
        .arg(script)
        .args(["child.der", "issuer.der"])
        .current_dir(dir.path())
        .output()
        .expect("bash runs");
    Some(String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}
