//! Link the module with `-z nodelete`: code inside the `.so` (aws-lc's per-thread state, found by
//! tests/unload.rs) registers per-thread destructors (pthread keys) on the host's threads. If a host `dlclose`s the module
//! (cryptoki does when its `Pkcs11` is dropped) while those threads live, their destructors would
//! jump into unmapped code and crash the host at thread exit. `nodelete` keeps the code mapped,
//! as glibc does for any library marked `DF_1_NODELETE`.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}
