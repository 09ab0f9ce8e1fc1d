//! The client's one error type: each message says what failed, why, and what to do.

use cryptoki::error::{Error as CkError, RvError};

use crate::p11::P11Error;
use crate::uri::UriError;

/// What can stop a `kilt` command.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A bad `pkcs11:` URI.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("cannot load the PKCS#11 module {path}: {reason}; pass --module PATH")]
    Module {
        /// The module's path.
        path: String,
        /// cryptoki's or the loader's words.
        reason: String,
    },
    /// No token matches the selection.
    #[error("no token matches {wanted}; tokens present: {present}")]
    NoToken {
        /// What was asked for.
        wanted: String,
        /// What there is.
        present: String,
    },
    /// More than one token matches.
    #[error(
        "{count} tokens match {wanted}; choose one with --token LABEL, --serial or a pkcs11: URI"
    )]
    AmbiguousToken {
        /// What was asked for.
        wanted: String,
        /// How many matched.
        count: usize,
    },
    /// The PIN could not be read.
    #[error("cannot read the PIN: {0}")]
    PinSource(String),
    /// The token refused the PIN.
    #[error("the PIN is wrong: {tries}; check it and run the command again")]
    PinIncorrect {
        /// What the token says of the tries left.
        tries: String,
    },
    /// The user PIN is locked.
    #[error(
        "the user PIN of token {0:?} is locked after too many wrong tries; the administrator (SO) must set a new one before you go on: `pkcs11-tool --module MODULE --token-label LABEL --login --login-type so --init-pin` (any module), or the JaCarta Unified Client"
    )]
    PinLocked(String),
    /// The PIN window of a protected authentication path was closed.
    #[error(
        "PIN entry on the token was cancelled; run the command again and enter the PIN in the token's window"
    )]
    PinCancelled,
    /// The token went away mid-operation.
    #[error(
        "the token was removed ({0}); insert it again and rerun the same command: the journal resumes where it stopped"
    )]
    TokenRemoved(&'static str),
    /// Any other token failure.
    #[error(transparent)]
    Token(P11Error),
    /// The module cannot make key pairs on the token, so a regeneration cannot start.
    #[error(
        "the module {module} cannot make key pairs on token {token:?} (no CKM_EC_KEY_PAIR_GEN; OpenSC offers no PIV key generation through PKCS#11); nothing was changed: run kilt with the token's own module, or make the keys with yubico-piv-tool"
    )]
    CannotGenerate { module: String, token: String },
    /// No key set with a certificate the server accepts.
    #[error("{0}")]
    NoKeySet(String),
    /// The current certificate has expired: a regeneration needs a valid one.
    #[error(
        "the certificate {serial} expired on {not_after}; an expired key set cannot be renewed online — apply to the {issuer} in person"
    )]
    Expired {
        /// Serial, hex.
        serial: String,
        /// RFC 3339.
        not_after: String,
        /// "bank" or "CA".
        issuer: &'static str,
    },
    /// The server could not be reached (after retries).
    #[error(
        "cannot reach the {server} at {url}: {reason}; check that it runs and rerun: the journal resumes"
    )]
    Unreachable {
        /// "bank" or "CA".
        server: &'static str,
        /// Base URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with a refusal.
    #[error("the {server} refused {what} ({status}): {message}")]
    Refused {
        /// "bank" or "CA".
        server: &'static str,
        /// The step.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server answered something unreadable.
    #[error(
        "the {server} answered {what} with an unreadable body ({reason}); rerun the same command: the journal resumes where it stopped (if it repeats, check that the URL is the server's API, not a proxy page)"
    )]
    Malformed {
        /// "bank" or "CA".
        server: &'static str,
        /// The step.
        what: &'static str,
        /// Why it was unreadable.
        reason: String,
    },
    /// The request was rejected by the operator.
    #[error(
        "the request was rejected: {0}; start a new regeneration after resolving it with the bank/CA"
    )]
    Rejected(String),
    /// An issued certificate does not fit the key or the trusted root.
    #[error("the issued certificate is not acceptable: {0}; nothing was written to the token")]
    BadCertificate(String),
    /// A deletion the client will not do.
    #[error("{0}")]
    DeleteRefused(String),
    /// The user answered no.
    #[error("cancelled; nothing was changed")]
    Cancelled,
    /// The journal could not be read or written.
    #[error("the journal {path}: {reason}")]
    Journal {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// A certificate request could not be made with the token's key.
    #[error("cannot make the certificate request with the key in the token: {0}")]
    Csr(String),
    /// The demo's own servers or token could not be set up.
    #[error("the demo could not start: {0}")]
    Demo(String),
    /// PC/SC is not available.
    #[error("{0}")]
    Pcsc(String),
}

impl From<P11Error> for ClientError {
    fn from(e: P11Error) -> ClientError {
        if let P11Error::Token {
            call,
            source: CkError::Pkcs11(rv, _),
        } = &e
        {
            match rv {
                RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed => return ClientError::TokenRemoved(call),
                RvError::FunctionCanceled => return ClientError::PinCancelled,
                _ => {}
            }
        }
        ClientError::Token(e)
    }
}

/// Shorthand for the client's results.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
