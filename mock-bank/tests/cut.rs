//! The bank shares with the CA only `kilt-mock-server` (DESIGN.md): no build of the bank, tests
//! included, carries the CA.

#[test]
fn the_bank_does_not_depend_on_the_ca() {
    let tree = kilt_test_support::cargo_tree("kilt-mock-bank", &[]);
    assert!(!tree.contains("kilt-mock-ca"), "{tree}");
    assert!(tree.contains("kilt-mock-server"), "{tree}");
}
