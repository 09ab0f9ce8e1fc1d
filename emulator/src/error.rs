//! The token's one error type, in domain terms. The PKCS#11 edge (`kilt-pkcs11`) maps each variant
//! to a `CK_RV` in one exhaustive `match`; nothing here knows about return codes.

/// What went wrong inside the token. Messages are one line a person can act on; they never contain
/// a PIN or key material.
// Not `#[non_exhaustive]`: the C edge must match every variant, so a new one fails its build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("slot {0} does not exist; list slots with `kilt-token slots`")]
    SlotNotFound(u64),
    #[error("no token is present in the slot; insert it with `kilt-token plug`")]
    TokenNotPresent,
    #[error("the token was removed during the operation; insert it and open a new session")]
    DeviceRemoved,
    #[error("the token is not initialised; initialise it with `kilt-token init`")]
    TokenNotInitialized,
    #[error("the session handle is not valid (closed, or the token was removed)")]
    SessionNotFound,
    #[error("the session is read-only; open a read/write session")]
    SessionReadOnly,
    #[error("a read-only session is open, so the security officer cannot log in; close it first")]
    ReadOnlySessionExists,
    #[error("the security officer is logged in, so a read-only session cannot be opened")]
    SoSessionExists,
    #[error("sessions are open on the token; close them first")]
    SessionsOpen,
    #[error("only serial sessions are supported (CKF_SERIAL_SESSION must be set)")]
    ParallelSessionNotSupported,
    #[error("the user is not logged in; log in first")]
    NotLoggedIn,
    #[error("this user is already logged in")]
    AlreadyLoggedIn,
    #[error("another user type is already logged in; log out first")]
    AnotherUserLoggedIn,
    #[error("the user PIN is not initialised; the security officer must set it (C_InitPIN)")]
    UserPinNotInitialized,
    #[error("incorrect PIN: {tries_left} tries left before the PIN is locked")]
    PinIncorrect { tries_left: u32 },
    #[error("the PIN is locked after too many wrong tries; the security officer must unblock it")]
    PinLocked,
    #[error("the PIN must be {min} to {max} characters long")]
    PinLenRange { min: usize, max: usize },
    #[error("the PIN contains characters the token does not accept (printable ASCII only)")]
    PinInvalid,
    #[error("PIN entry was cancelled")]
    PinEntryCancelled,
    #[error("no PIN was given and the token has no protected authentication path; pass the PIN")]
    PinMissing,
    #[error("cannot read the PIN: {0}")]
    PinSourceUnavailable(String),
    #[error("the object handle is not valid")]
    ObjectNotFound,
    #[error("the key handle is not valid")]
    KeyNotFound,
    #[error("attribute 0x{0:x} is not valid for this object")]
    AttributeTypeInvalid(u64),
    #[error("attribute 0x{0:x} has a value the token does not accept")]
    AttributeValueInvalid(u64),
    #[error("attribute 0x{0:x} cannot be set or changed")]
    AttributeReadOnly(u64),
    #[error("the template lacks required attribute 0x{0:x}")]
    TemplateIncomplete(u64),
    #[error("the template is inconsistent: {0}")]
    TemplateInconsistent(&'static str),
    #[error("the object's attributes forbid this action (not destroyable or not copyable)")]
    ActionProhibited,
    #[error("mechanism 0x{0:x} is not supported by the token")]
    MechanismInvalid(u64),
    #[error("the mechanism parameter is not valid")]
    MechanismParamInvalid,
    #[error("only the P-256 curve (prime256v1) is supported")]
    CurveNotSupported,
    #[error("the key's type does not fit the mechanism")]
    KeyTypeInconsistent,
    #[error("the key's attributes do not allow this use (e.g. CKA_SIGN is false)")]
    KeyFunctionNotPermitted,
    #[error("another operation of this kind is already active in the session")]
    OperationActive,
    #[error("no operation of this kind was initialised in the session")]
    OperationNotInitialized,
    #[error("this mechanism supports single-part operations only")]
    SinglePartOnly,
    #[error("the input has a length the mechanism does not accept")]
    DataLenRange,
    #[error("the signature is not valid")]
    SignatureInvalid,
    #[error("the signature has the wrong length")]
    SignatureLenRange,
    #[error("this token does not accept seeding its random number generator")]
    RandomSeedNotSupported,
    #[error("the token reported a device error: {0}")]
    DeviceError(String),
    #[error("the token ran out of memory")]
    DeviceMemory,
    #[error("the token store failed: {0}; check KILT_TOKEN_DIR and the file's permissions")]
    Store(String),
    #[error("the profile is not valid: {0}")]
    Profile(String),
    #[error("the library is being finalised")]
    Finalizing,
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(e.to_string())
    }
}

/// The result of a token operation.
impl From<kilt_console::ConsoleError> for Error {
    fn from(e: kilt_console::ConsoleError) -> Error {
        match e {
            kilt_console::ConsoleError::PinUnavailable(why) => Error::PinSourceUnavailable(why),
            // Only `module_path` answers this; it never reaches the token core.
            other @ kilt_console::ConsoleError::ModuleNotFound(_) => {
                Error::PinSourceUnavailable(other.to_string())
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
