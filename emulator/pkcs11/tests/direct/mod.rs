//! Set-up for the tests that call the module's exported functions themselves (no `cryptoki`):
//! one library state per test process, so each such file has one test.

use cryptoki_sys::*;
use kilt_pkcs11::*;
use std::ptr::null_mut;

pub const SO: &[u8] = b"00000000";
pub const USER: &[u8] = b"1234567890";

pub fn mech(m: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

/// Initialises the library on a fresh token folder (kept in `dir`), makes a token labelled
/// `label` in slot 0 with the national CA's default PINs, and returns a R/W session with the user
/// logged in.
///
/// # Safety
/// Calls the exported functions; the caller must be the only test of its process.
pub unsafe fn token_with_user(dir: &tempfile::TempDir, label: &[u8]) -> CK_SESSION_HANDLE {
    // SAFETY of set_var: before the library reads it, in the only test of this process.
    unsafe { std::env::set_var("KILT_TOKEN_DIR", dir.path()) };
    unsafe {
        assert_eq!(C_Initialize(null_mut()), CKR_OK);
        let mut padded = [b' '; 32];
        padded[..label.len()].copy_from_slice(label);
        assert_eq!(
            C_InitToken(0, SO.as_ptr() as *mut _, 8, padded.as_mut_ptr()),
            CKR_OK
        );
        let mut h: CK_SESSION_HANDLE = 0;
        let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        assert_eq!(C_OpenSession(0, flags, null_mut(), None, &mut h), CKR_OK);
        assert_eq!(C_Login(h, CKU_SO, SO.as_ptr() as *mut _, 8), CKR_OK);
        assert_eq!(C_InitPIN(h, USER.as_ptr() as *mut _, 10), CKR_OK);
        assert_eq!(C_Logout(h), CKR_OK);
        assert_eq!(C_Login(h, CKU_USER, USER.as_ptr() as *mut _, 10), CKR_OK);
        h
    }
}
