//! What a customer installs for a physical token carries no mock server (DESIGN.md, `client/`):
//! without the default `demo` feature, neither `kilt-mock-ca` nor `kilt-mock-bank` is a
//! dependency of `kilt-client`. (`make test` also builds it that way, so it keeps compiling.)

fn normal_dependencies(features: &[&str]) -> String {
    let mut args = vec!["-e", "normal"];
    args.extend_from_slice(features);
    kilt_test_support::cargo_tree("kilt-client", &args)
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
