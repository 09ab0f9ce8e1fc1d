//! `kilt demo`, the README's main job, as a user runs it: no configuration, both flows, a
//! summary, exit 0, nothing left behind; and the binary's help.

use std::process::Command;

fn kilt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kilt"))
        .args(args)
        // Whatever the caller's environment says, the demo uses its own token and journal.
        .env("KILT_TOKEN_DIR", "/nonexistent/kilt-demo-must-not-use-this")
        .env("KILT_STATE_DIR", "/nonexistent/kilt-demo-must-not-use-this")
        .output()
        .unwrap()
}

#[test]
fn the_demo_runs_both_flows_and_leaves_nothing_behind() {
    let out = kilt(&["demo", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = &events.last().unwrap()["summary"];
    let statuses: Vec<&str> = summary["bank"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "regeneration_required",
            "new",
            "accepted_by_bank",
            "new_certificate_received",
            "in_operation"
        ]
    );
    let sets = summary["key_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 3, "{sets:?}");
    assert!(
        sets.iter()
            .all(|s| s["certificate"]["days_left"].as_i64().unwrap() > 300)
    );
    assert_eq!(summary["ca"]["certificates"].as_array().unwrap().len(), 2);
    // The temporary folder, with the application in it, is gone.
    let app = summary["ca"]["application"].as_str().unwrap();
    assert!(app.contains("kilt-demo-"), "{app}");
    assert!(!std::path::Path::new(app).exists(), "{app} was left behind");
}

#[test]
fn the_demo_speaks_russian_and_english_and_keeps_the_application_on_request() {
    let keep = tempfile::tempdir().unwrap();
    let out = kilt(&["demo", "--keep", keep.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for text in [
        "Вход «По сертификату»",
        "Login by certificate",
        "Статус: Принят банком / Status: Accepted by the bank",
        "Вы переведены на работу с новым комплектом ключей.",
        "Ключи на токене после демонстрации",
        "Flow 1 (bank): regeneration 1: необходима плановая регенерация → Новый → Принят банком → Получен новый сертификат → В эксплуатации",
    ] {
        assert!(stdout.contains(text), "missing {text:?} in\n{stdout}");
    }
    let pdfs: Vec<_> = std::fs::read_dir(keep.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pdfs.len(), 1, "{pdfs:?}");
    assert!(std::fs::read(&pdfs[0]).unwrap().starts_with(b"%PDF-"));
}

#[test]
fn help_names_the_commands_and_exit_codes_and_bad_usage_exits_2() {
    let out = kilt(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "status",
        "readers",
        "regen",
        "keys",
        "demo",
        "pkcs11:",
        "env:VAR",
        "Exit status",
    ] {
        assert!(help.contains(word), "{word} missing from\n{help}");
    }
    let out = kilt(&["regen", "bank"]);
    assert_eq!(out.status.code(), Some(2));
    let out = kilt(&["--lang", "fr", "status"]);
    assert_eq!(out.status.code(), Some(2));
    // A bad URI is one line, exit 1.
    let out = kilt(&["--uri", "pkcs11:token=x?pin-value=1", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--pin-source"), "{err}");
}
