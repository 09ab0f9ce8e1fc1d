//! The card crate's one error type: what stops a card from being attached or served. Errors a
//! card answers are status words ([`crate::apdu::StatusWord`]), never this.

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    #[error(transparent)]
    Token(#[from] kilt_emulator::Error),
    #[error("the token's profile does not describe a card: {0}")]
    Profile(String),
    #[error(
        "no virtual reader on {0}: is pcscd running with vsmartcard-vpcd? \
         (apt-get install pcscd vsmartcard-vpcd; pcscd --foreground)"
    )]
    NoReader(std::net::SocketAddr),
    #[error("the connection to the virtual reader failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write the trace file {path}: {source}")]
    Trace {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
