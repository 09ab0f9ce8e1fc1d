//! `kilt`: see the library's `cli` module.
fn main() -> std::process::ExitCode {
    kilt_client::cli::main()
}
