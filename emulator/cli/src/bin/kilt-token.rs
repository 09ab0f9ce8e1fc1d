//! `kilt-token`: manage emulated JaCarta PKI tokens. All logic is in [`kilt_token`].

fn main() {
    std::process::exit(kilt_token::main_with_args(std::env::args_os()));
}
