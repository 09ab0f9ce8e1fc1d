//! A world for the client's end-to-end tests: the mock CA and bank on `127.0.0.1:0` in this
//! (child) process, a token provisioned with first certificates through the module, and the
//! real `kilt` binary run against them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kilt_client::token::{Selector, Token};
use serde_json::Value;

pub const LABEL: &str = "client-e2e";
pub const PIN_VAR: &str = "KILT_CLIENT_TEST_PIN";

pub struct World {
    pub ca: kilt_mock_ca::Server,
    pub bank: kilt_mock_bank::Server,
    pub dir: tempfile::TempDir,
    pub module: PathBuf,
    pub profile: String,
}

/// The module the parent test chose (`KILT_CLIENT_CHILD`), or `None` outside a child.
pub fn module() -> Option<PathBuf> {
    std::env::var_os("KILT_CLIENT_CHILD").map(PathBuf::from)
}

pub fn open(module: &Path) -> Token {
    let sel = Selector {
        label: Some(LABEL.into()),
        ..Selector::default()
    };
    let mut token = Token::open(module, &sel).unwrap();
    token
        .login(&format!("env:{PIN_VAR}").parse().unwrap(), &mut |_| {})
        .unwrap();
    token
}

/// Servers up, first certificates valid for `valid_days` on the token; the token is closed
/// again so the `kilt` processes have it to themselves.
pub async fn world(
    module: PathBuf,
    valid_days: i64,
    tune_bank: impl FnOnce(&mut kilt_mock_bank::Config),
    tune_ca: impl FnOnce(&mut kilt_mock_ca::Config),
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_config = kilt_mock_ca::Config::ephemeral(dir.path().join("ca"));
    tune_ca(&mut ca_config);
    let ca = kilt_mock_ca::serve(ca_config).await.unwrap();
    let mut bank_config = kilt_mock_bank::Config::ephemeral(dir.path().join("bank"));
    bank_config.settings.processing_seconds = 0;
    tune_bank(&mut bank_config);
    let bank = kilt_mock_bank::serve(bank_config).await.unwrap();
    std::fs::write(dir.path().join("ca-root.pem"), ca.ca().pki().root_pem()).unwrap();
    std::fs::write(
        dir.path().join("bank-root.pem"),
        bank.bank().pki().root_pem(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let profile = {
        let token = open(&module);
        let admin = kilt_client::admin::Admin::new(&ca.admin_url(), &bank.admin_url()).unwrap();
        kilt_client::admin::provision(
            &token,
            &admin,
            &kilt_client::admin::Identity::example(),
            valid_days,
        )
        .await
        .unwrap()
        .profile
    };
    World {
        ca,
        bank,
        dir,
        module,
        profile,
    }
}

/// A serial as hex without case or leading zeros, to compare the bank's form with the token's.
pub fn norm(serial: &str) -> String {
    serial.to_lowercase().trim_start_matches('0').to_owned()
}

/// The result of one `kilt` run: exit code, JSON events, stderr.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub events: Vec<Value>,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn events(&self, name: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == name).collect()
    }

    pub fn statuses(&self) -> Vec<String> {
        self.events("status")
            .iter()
            .map(|e| e["status"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn parse(out: Output) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout);
    Run {
        code: out.status.code(),
        events: stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl World {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `kilt ARGS --json` on the test token, with `extra_env` (e.g. `KILT_CRASH_AT`).
    pub fn kilt(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_kilt"))
            .args(args)
            .args(["--json", "--token", LABEL, "--pin-source"])
            .arg(format!("env:{PIN_VAR}"))
            .arg("--module")
            .arg(&self.module)
            .arg("--state-dir")
            .arg(self.path("state"))
            .envs(extra_env.iter().copied())
            .output()
            .unwrap();
        parse(out)
    }

    pub fn regen_ca(&self, extra_env: &[(&str, &str)]) -> Run {
        self.regen_ca_with(&[], extra_env)
    }

    /// `kilt regen ca` with `extra_args` (e.g. `--wait 1`).
    pub fn regen_ca_with(&self, extra_args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        let url = self.ca.url();
        let root = self.path("ca-root.pem");
        let app = self.path("out");
        let mut args = vec![
            "regen",
            "ca",
            "--ca-url",
            &url,
            "--ca-root",
            root.to_str().unwrap(),
            "--application",
            app.to_str().unwrap(),
            "--yes",
        ];
        args.extend_from_slice(extra_args);
        self.kilt(&args, extra_env)
    }

    pub fn regen_bank(&self, extra_env: &[(&str, &str)]) -> Run {
        let url = self.bank.url();
        let root = self.path("bank-root.pem");
        self.kilt(
            &[
                "regen",
                "bank",
                "--bank-url",
                &url,
                "--bank-root",
                root.to_str().unwrap(),
                "--yes",
                "--wait",
                "30",
            ],
            extra_env,
        )
    }

    /// The customer can always log in: the bank's active certificate is on the token.
    pub fn assert_bank_key_on_token(&self) {
        let active = norm(
            &self
                .bank
                .bank()
                .signature_params(&self.profile)
                .unwrap()
                .serial,
        );
        let sets = self.key_sets();
        assert!(
            sets.iter().any(|s| s["certificate"]["serial"]
                .as_str()
                .is_some_and(|c| norm(c) == active)),
            "the bank's active certificate {active} is not on the token: {sets:?}"
        );
    }

    /// The token's key sets as `kilt status --json` shows them.
    pub fn key_sets(&self) -> Vec<Value> {
        let run = self.kilt(&["status"], &[]);
        assert!(run.ok(), "{run:?}");
        run.events[0]["key_sets"].as_array().unwrap().clone()
    }
}

/// Wipes the token (a child may reuse one token across cases).
pub fn wipe(module: &Path) {
    let token = open(module);
    for s in token.key_sets().unwrap() {
        token.delete_set(&s.id_bytes).unwrap();
    }
}

/// Runs the child test `name` with the emulator's module and a fresh emulated token.
pub fn with_kilt_token(name: &str) {
    let module = kilt_test_support::kilt_module();
    let tokens = kilt_test_support::kilt_token(LABEL);
    kilt_test_support::run_child(
        name,
        &[
            ("KILT_CLIENT_CHILD", module.as_os_str()),
            ("KILT_TOKEN_DIR", tokens.path().as_os_str()),
            (PIN_VAR, kilt_test_support::USER_PIN.as_ref()),
        ],
    );
}

/// Runs the child test `name` with SoftHSM2 (skipped when absent, failing in CI).
pub fn with_softhsm_token(name: &str) {
    let Some((_dir, conf)) = kilt_test_support::softhsm_token(LABEL) else {
        return;
    };
    kilt_test_support::run_child(
        name,
        &[
            (
                "KILT_CLIENT_CHILD",
                std::ffi::OsStr::new(kilt_test_support::SOFTHSM2),
            ),
            ("SOFTHSM2_CONF", conf.as_os_str()),
            (PIN_VAR, kilt_test_support::USER_PIN.as_ref()),
        ],
    );
}
