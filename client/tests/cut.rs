//! What a customer installs for a physical token carries no mock server (DESIGN.md, `client/`)
//! and no emulated token: without the default `demo` feature, neither `kilt-mock-ca`,
//! `kilt-mock-bank` nor `kilt-emulator` is a dependency of `kilt-client`. (`make test` also
//! builds it that way, so it keeps compiling.)

fn normal_dependencies(features: &[&str]) -> String {
    let mut args = vec!["-e", "normal"];
    args.extend_from_slice(features);
    kilt_test_support::cargo_tree("kilt-client", &args)
}

#[test]
fn without_the_demo_feature_the_client_carries_no_mock_server_and_no_emulator() {
    let lean = normal_dependencies(&["--no-default-features"]);
    for demo_only in [
        "kilt-mock-ca",
        "kilt-mock-bank",
        "kilt-emulator",
        "kilt-mock-server",
    ] {
        assert!(
            !lean.contains(demo_only),
            "{demo_only} in the lean client: {lean}"
        );
    }
    // The check can tell: with the default features they are there, for `kilt demo`.
    let full = normal_dependencies(&[]);
    for demo_only in ["kilt-mock-ca", "kilt-mock-bank", "kilt-emulator"] {
        assert!(full.contains(demo_only), "{demo_only} missing: {full}");
    }
}
