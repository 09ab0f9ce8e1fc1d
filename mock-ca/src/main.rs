//! `kilt-ca`: the mock CA. All logic is in [`kilt_mock_ca::cli`].

fn main() {
    std::process::exit(kilt_mock_ca::cli::main_with_args(std::env::args_os()));
}
