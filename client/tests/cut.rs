//! What a customer installs for a physical token carries no mock server (DESIGN.md, `client/`):
//! without the default `demo` feature, neither `kilt-mock-ca` nor `kilt-mock-bank` is a
//! dependency of `kilt-client`. (`make test` also builds it that way, so it keeps compiling.)

use std::process::Command;

fn normal_dependencies(features: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "kilt-client",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn without_the_demo_feature_the_client_carries_no_mock_server() {
    let lean = normal_dependencies(&["--no-default-features"]);
    assert!(
        !lean.contains("kilt-mock-ca") && !lean.contains("kilt-mock-bank"),
        "{lean}"
    );
    // The check can tell: with the default features both servers are there, for `kilt demo`.
    let full = normal_dependencies(&[]);
    assert!(full.contains("kilt-mock-ca") && full.contains("kilt-mock-bank"));
}
