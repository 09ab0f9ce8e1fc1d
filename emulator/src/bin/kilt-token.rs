//! `kilt-token`: manage emulated JaCarta PKI tokens. All logic is in [`kilt_emulator::cli`].

fn main() {
    std::process::exit(kilt_emulator::cli::main_with_args(std::env::args_os()));
}
