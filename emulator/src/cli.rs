//! The `kilt-token` command line (filled in below).
