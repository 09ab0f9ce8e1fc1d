//! `kilt-bank`: the mock bank. All logic is in [`kilt_mock_bank::cli`].

fn main() {
    std::process::exit(kilt_mock_bank::cli::main_with_args(std::env::args_os()));
}
