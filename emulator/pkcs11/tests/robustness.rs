//! Hostile callers: every export with NULL pointers, short buffers, bad handles and wrong lengths
//! returns the right CKR and never crashes. Calls the exported functions themselves (the same code
//! as in the .so), in one test so the order of initialisation is fixed.

use cryptoki_sys::*;
use kilt_pkcs11::*;
use std::ptr::null_mut;

const SO: &[u8] = b"00000000";
const USER: &[u8] = b"1234567890";

fn ulong_attr(t: CK_ATTRIBUTE_TYPE, v: &mut CK_ULONG) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: t,
        pValue: v as *mut CK_ULONG as *mut _,
        ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
    }
}

fn bytes_attr(t: CK_ATTRIBUTE_TYPE, v: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: t,
        pValue: v.as_mut_ptr() as *mut _,
        ulValueLen: v.len() as CK_ULONG,
    }
}

#[test]
fn every_export_survives_hostile_arguments() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY of set_var: before the library reads it, in the only test of this process.
    unsafe { std::env::set_var("KILT_TOKEN_DIR", dir.path()) };
    unsafe { hostile(dir.path()) }
}

unsafe fn hostile(_dir: &std::path::Path) {
    unsafe {
        // Before C_Initialize.
        let mut info: CK_INFO = std::mem::zeroed();
        assert_eq!(C_GetInfo(&mut info), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(C_Finalize(null_mut()), CKR_CRYPTOKI_NOT_INITIALIZED);
        let mut fl: *mut CK_FUNCTION_LIST = null_mut();
        assert_eq!(C_GetFunctionList(null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_GetFunctionList(&mut fl), CKR_OK);
        assert_eq!((*fl).version.major, 2);

        // C_Initialize argument rules (§5.4).
        let mut args: CK_C_INITIALIZE_ARGS = std::mem::zeroed();
        args.pReserved = std::ptr::dangling_mut();
        assert_eq!(
            C_Initialize(&mut args as *mut _ as *mut _),
            CKR_ARGUMENTS_BAD
        );
        args.pReserved = null_mut();
        unsafe extern "C" fn mx(_: *mut *mut std::ffi::c_void) -> CK_RV {
            CKR_OK
        }
        args.CreateMutex = Some(mx);
        assert_eq!(
            C_Initialize(&mut args as *mut _ as *mut _),
            CKR_ARGUMENTS_BAD
        );
        args.CreateMutex = None;
        args.flags = CKF_OS_LOCKING_OK;
        assert_eq!(C_Initialize(&mut args as *mut _ as *mut _), CKR_OK);
        assert_eq!(C_Initialize(null_mut()), CKR_CRYPTOKI_ALREADY_INITIALIZED);

        // Interfaces, with the length protocol on the count.
        let mut n: CK_ULONG = 0;
        assert_eq!(
            C_GetInterfaceList(null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_GetInterfaceList(null_mut(), &mut n), CKR_OK);
        assert_eq!(n, 2);
        let mut ifaces: [CK_INTERFACE; 2] = std::mem::zeroed();
        n = 1;
        assert_eq!(
            C_GetInterfaceList(ifaces.as_mut_ptr(), &mut n),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(n, 2);
        assert_eq!(C_GetInterfaceList(ifaces.as_mut_ptr(), &mut n), CKR_OK);
        let mut iface: *mut CK_INTERFACE = null_mut();
        assert_eq!(
            C_GetInterface(null_mut(), null_mut(), null_mut(), 0),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GetInterface(c"nope".as_ptr() as *mut _, null_mut(), &mut iface, 0),
            CKR_ARGUMENTS_BAD
        );
        let mut v2 = CK_VERSION {
            major: 2,
            minor: 40,
        };
        assert_eq!(
            C_GetInterface(c"PKCS 11".as_ptr() as *mut _, &mut v2, &mut iface, 0),
            CKR_OK
        );
        let v = *((*iface).pFunctionList as *const CK_VERSION);
        assert_eq!((v.major, v.minor), (2, 40));
        assert_eq!(
            C_GetInterface(null_mut(), null_mut(), &mut iface, CKF_INTERFACE_FORK_SAFE),
            CKR_ARGUMENTS_BAD
        );

        // Slots: NULL count, short list, bad slot ids.
        assert_eq!(C_GetInfo(null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_GetSlotList(CK_FALSE, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_GetSlotList(CK_FALSE, null_mut(), &mut n), CKR_OK);
        assert_eq!(n, 1, "one spare slot");
        let mut slots = [0 as CK_SLOT_ID; 4];
        n = 0;
        assert_eq!(
            C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut n),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(n, 1);
        let mut si: CK_SLOT_INFO = std::mem::zeroed();
        let mut ti: CK_TOKEN_INFO = std::mem::zeroed();
        assert_eq!(C_GetSlotInfo(999, &mut si), CKR_SLOT_ID_INVALID);
        assert_eq!(C_GetSlotInfo(0, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_GetTokenInfo(999, &mut ti), CKR_SLOT_ID_INVALID);
        assert_eq!(C_GetTokenInfo(0, null_mut()), CKR_ARGUMENTS_BAD);
        let mut mi: CK_MECHANISM_INFO = std::mem::zeroed();
        assert_eq!(
            C_GetMechanismInfo(0, CKM_RSA_PKCS, &mut mi),
            CKR_MECHANISM_INVALID
        );
        assert_eq!(
            C_GetMechanismInfo(0, CKM_ECDSA, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GetMechanismList(0, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_GetMechanismList(0, null_mut(), &mut n), CKR_OK);
        assert_eq!(n, 8, "P-256: 3 + SHA-256 + GOST: 4");
        let mut mechs = [0 as CK_MECHANISM_TYPE; 2];
        n = 2;
        assert_eq!(
            C_GetMechanismList(0, mechs.as_mut_ptr(), &mut n),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(n, 8);

        // Token initialisation: NULL PIN, NULL label, then a real one.
        let mut label = [b' '; 32];
        label[..5].copy_from_slice(b"hosty");
        assert_eq!(
            C_InitToken(0, null_mut(), 8, label.as_mut_ptr()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_InitToken(0, SO.as_ptr() as *mut _, 8, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_InitToken(0, SO.as_ptr() as *mut _, 2, label.as_mut_ptr()),
            CKR_PIN_LEN_RANGE
        );
        assert_eq!(
            C_InitToken(0, SO.as_ptr() as *mut _, 8, label.as_mut_ptr()),
            CKR_OK
        );

        // Sessions.
        let mut h: CK_SESSION_HANDLE = 0;
        assert_eq!(
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_OpenSession(0, CKF_RW_SESSION, null_mut(), None, &mut h),
            CKR_SESSION_PARALLEL_NOT_SUPPORTED
        );
        assert_eq!(
            C_OpenSession(42, CKF_SERIAL_SESSION, null_mut(), None, &mut h),
            CKR_SLOT_ID_INVALID
        );
        assert_eq!(
            C_OpenSession(1, CKF_SERIAL_SESSION, null_mut(), None, &mut h),
            CKR_TOKEN_NOT_RECOGNIZED
        );
        let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        assert_eq!(C_OpenSession(0, flags, null_mut(), None, &mut h), CKR_OK);
        let mut sinfo: CK_SESSION_INFO = std::mem::zeroed();
        assert_eq!(C_GetSessionInfo(h, null_mut()), CKR_ARGUMENTS_BAD);
        for bad in [0, 777_777, CK_ULONG::MAX] {
            assert_eq!(
                C_GetSessionInfo(bad, &mut sinfo),
                CKR_SESSION_HANDLE_INVALID
            );
            assert_eq!(C_CloseSession(bad), CKR_SESSION_HANDLE_INVALID);
            assert_eq!(C_Logout(bad), CKR_SESSION_HANDLE_INVALID);
            assert_eq!(C_FindObjectsFinal(bad), CKR_SESSION_HANDLE_INVALID);
            assert_eq!(C_SignUpdate(bad, null_mut(), 0), CKR_SESSION_HANDLE_INVALID);
            assert_eq!(
                C_GenerateRandom(bad, null_mut(), 0),
                CKR_SESSION_HANDLE_INVALID
            );
        }

        // Login: bad user type, NULL PIN with a length, NULL PIN without a PIN pad.
        assert_eq!(
            C_Login(h, 77, SO.as_ptr() as *mut _, 8),
            CKR_USER_TYPE_INVALID
        );
        assert_eq!(C_Login(h, CKU_SO, null_mut(), 8), CKR_ARGUMENTS_BAD);
        assert_eq!(C_Login(h, CKU_SO, null_mut(), 0), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_Login(h, CKU_USER, USER.as_ptr() as *mut _, 10),
            CKR_USER_PIN_NOT_INITIALIZED
        );
        assert_eq!(C_Login(h, CKU_SO, SO.as_ptr() as *mut _, 8), CKR_OK);
        assert_eq!(C_InitPIN(h, null_mut(), 4), CKR_ARGUMENTS_BAD);
        assert_eq!(C_InitPIN(h, USER.as_ptr() as *mut _, 10), CKR_OK);
        assert_eq!(C_Logout(h), CKR_OK);
        assert_eq!(C_Logout(h), CKR_USER_NOT_LOGGED_IN);
        assert_eq!(C_Login(h, CKU_USER, USER.as_ptr() as *mut _, 10), CKR_OK);

        // Templates: NULL with a count, absurd counts, values of the wrong length.
        let mut obj: CK_OBJECT_HANDLE = 0;
        assert_eq!(
            C_CreateObject(h, null_mut(), 1, &mut obj),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_CreateObject(h, null_mut(), CK_ULONG::MAX, &mut obj),
            CKR_ARGUMENTS_BAD
        );
        let mut class = CKO_DATA;
        let mut t = [ulong_attr(CKA_CLASS, &mut class)];
        assert_eq!(
            C_CreateObject(h, t.as_mut_ptr(), 1, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        t[0].ulValueLen = 4;
        assert_eq!(
            C_CreateObject(h, t.as_mut_ptr(), 1, &mut obj),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        t[0].ulValueLen = 8;
        t[0].pValue = null_mut();
        assert_eq!(
            C_CreateObject(h, t.as_mut_ptr(), 1, &mut obj),
            CKR_ARGUMENTS_BAD
        );
        let mut two = [1u8, 1];
        let mut t2 = [
            ulong_attr(CKA_CLASS, &mut class),
            bytes_attr(CKA_TOKEN, &mut two),
        ];
        assert_eq!(
            C_CreateObject(h, t2.as_mut_ptr(), 2, &mut obj),
            CKR_ATTRIBUTE_VALUE_INVALID
        );
        let mut value = *b"secret data";
        let mut t3 = [
            ulong_attr(CKA_CLASS, &mut class),
            bytes_attr(CKA_VALUE, &mut value),
        ];
        assert_eq!(C_CreateObject(h, t3.as_mut_ptr(), 2, &mut obj), CKR_OK);

        // C_GetAttributeValue: per-attribute outcomes (§5.7).
        let mut small = [0u8; 3];
        let mut class_out: CK_ULONG = 0;
        let mut get = [
            ulong_attr(CKA_CLASS, &mut class_out),
            bytes_attr(CKA_VALUE, &mut small),
            CK_ATTRIBUTE {
                type_: CKA_SIGN,
                pValue: null_mut(),
                ulValueLen: 0,
            },
            CK_ATTRIBUTE {
                type_: CKA_LABEL,
                pValue: null_mut(),
                ulValueLen: 0,
            },
        ];
        let rv = C_GetAttributeValue(h, obj, get.as_mut_ptr(), 4);
        assert!(
            rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID,
            "{rv:#x}"
        );
        assert_eq!(class_out, CKO_DATA);
        assert_eq!(
            get[1].ulValueLen, CK_UNAVAILABLE_INFORMATION,
            "short buffer"
        );
        assert_eq!(
            get[2].ulValueLen, CK_UNAVAILABLE_INFORMATION,
            "invalid type"
        );
        assert_eq!(get[3].ulValueLen, 0, "length query of an empty label");
        assert_eq!(
            C_GetAttributeValue(h, 123_456, get.as_mut_ptr(), 1),
            CKR_OBJECT_HANDLE_INVALID
        );
        assert_eq!(
            C_GetAttributeValue(h, obj, null_mut(), 1),
            CKR_ARGUMENTS_BAD
        );
        let mut size: CK_ULONG = 0;
        assert_eq!(C_GetObjectSize(h, obj, null_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_GetObjectSize(h, obj, &mut size), CKR_OK);
        assert_eq!(C_DestroyObject(h, 123_456), CKR_OBJECT_HANDLE_INVALID);

        // Find: NULL output with room asked, operations out of order.
        let mut found = [0 as CK_OBJECT_HANDLE; 4];
        assert_eq!(
            C_FindObjects(h, found.as_mut_ptr(), 4, &mut n),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(C_FindObjectsInit(h, null_mut(), 0), CKR_OK);
        assert_eq!(C_FindObjectsInit(h, null_mut(), 0), CKR_OPERATION_ACTIVE);
        assert_eq!(C_FindObjects(h, null_mut(), 4, &mut n), CKR_ARGUMENTS_BAD);
        assert_eq!(
            C_FindObjects(h, found.as_mut_ptr(), 4, null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(C_FindObjects(h, found.as_mut_ptr(), 4, &mut n), CKR_OK);
        assert_eq!((n, found[0]), (1, obj));
        assert_eq!(C_FindObjectsFinal(h), CKR_OK);

        // A key pair, then the signing output-length protocol (§5.2).
        let mut ecdsa = CK_MECHANISM {
            mechanism: CKM_ECDSA,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        let mut keygen = CK_MECHANISM {
            mechanism: CKM_EC_KEY_PAIR_GEN,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        let mut params = [0x06u8, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let mut pubt = [bytes_attr(CKA_EC_PARAMS, &mut params)];
        let (mut pubk, mut privk) = (0, 0);
        assert_eq!(
            C_GenerateKeyPair(
                h,
                null_mut(),
                pubt.as_mut_ptr(),
                1,
                null_mut(),
                0,
                &mut pubk,
                &mut privk
            ),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_GenerateKeyPair(
                h,
                &mut ecdsa,
                pubt.as_mut_ptr(),
                1,
                null_mut(),
                0,
                &mut pubk,
                &mut privk
            ),
            CKR_MECHANISM_INVALID
        );
        assert_eq!(
            C_GenerateKeyPair(
                h,
                &mut keygen,
                pubt.as_mut_ptr(),
                1,
                null_mut(),
                0,
                null_mut(),
                &mut privk
            ),
            CKR_ARGUMENTS_BAD
        );
        let mut other_curve = [0x06u8, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        let mut bad_pub = [bytes_attr(CKA_EC_PARAMS, &mut other_curve)];
        assert_eq!(
            C_GenerateKeyPair(
                h,
                &mut keygen,
                bad_pub.as_mut_ptr(),
                1,
                null_mut(),
                0,
                &mut pubk,
                &mut privk
            ),
            CKR_CURVE_NOT_SUPPORTED
        );
        assert_eq!(
            C_GenerateKeyPair(
                h,
                &mut keygen,
                null_mut(),
                0,
                null_mut(),
                0,
                &mut pubk,
                &mut privk
            ),
            CKR_TEMPLATE_INCOMPLETE
        );
        assert_eq!(
            C_GenerateKeyPair(
                h,
                &mut keygen,
                pubt.as_mut_ptr(),
                1,
                null_mut(),
                0,
                &mut pubk,
                &mut privk
            ),
            CKR_OK
        );

        let mut digest = [7u8; 32];
        let mut sig = [0u8; 64];
        let mut len: CK_ULONG = 0;
        assert_eq!(
            C_Sign(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(C_SignInit(h, null_mut(), privk), CKR_ARGUMENTS_BAD);
        assert_eq!(C_SignInit(h, &mut ecdsa, 999), CKR_KEY_HANDLE_INVALID);
        assert_eq!(C_SignInit(h, &mut ecdsa, pubk), CKR_KEY_TYPE_INCONSISTENT);
        let mut with_param = CK_MECHANISM {
            mechanism: CKM_ECDSA,
            pParameter: digest.as_mut_ptr() as *mut _,
            ulParameterLen: 4,
        };
        assert_eq!(
            C_SignInit(h, &mut with_param, privk),
            CKR_MECHANISM_PARAM_INVALID
        );
        assert_eq!(C_SignInit(h, &mut ecdsa, privk), CKR_OK);
        assert_eq!(C_SignInit(h, &mut ecdsa, privk), CKR_OPERATION_ACTIVE);
        assert_eq!(
            C_Sign(h, digest.as_mut_ptr(), 32, null_mut(), &mut len),
            CKR_OK
        );
        assert_eq!(len, 64, "length query");
        len = 10;
        assert_eq!(
            C_Sign(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 64, "needed length written back");
        assert_eq!(sig, [0u8; 64], "nothing written to a short buffer");
        // Still active after a length query and a short buffer (§5.2).
        assert_eq!(
            C_Sign(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len),
            CKR_OK
        );
        assert_eq!(len, 64);
        assert_eq!(
            C_Sign(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // NULL data is refused, and like every failed C_Sign it ends the operation (§5.11).
        let mut other = [0u8; 64];
        assert_eq!(C_SignInit(h, &mut ecdsa, privk), CKR_OK);
        assert_eq!(
            C_Sign(h, null_mut(), 32, other.as_mut_ptr(), &mut len),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_Sign(h, digest.as_mut_ptr(), 32, other.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );

        // Verify: wrong signature lengths, a bad signature, then the good one.
        assert_eq!(C_VerifyInit(h, &mut ecdsa, pubk), CKR_OK);
        assert_eq!(
            C_Verify(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), 10),
            CKR_SIGNATURE_LEN_RANGE
        );
        assert_eq!(C_VerifyInit(h, &mut ecdsa, pubk), CKR_OK);
        let mut bad = sig;
        bad[5] ^= 1;
        assert_eq!(
            C_Verify(h, digest.as_mut_ptr(), 32, bad.as_mut_ptr(), 64),
            CKR_SIGNATURE_INVALID
        );
        assert_eq!(C_VerifyInit(h, &mut ecdsa, pubk), CKR_OK);
        assert_eq!(
            C_Verify(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), 64),
            CKR_OK
        );

        // Digest: same length protocol.
        let mut sha = CK_MECHANISM {
            mechanism: CKM_SHA256,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        let mut out = [0u8; 32];
        assert_eq!(C_DigestInit(h, &mut sha), CKR_OK);
        len = 31;
        assert_eq!(
            C_Digest(h, digest.as_mut_ptr(), 32, out.as_mut_ptr(), &mut len),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 32);
        assert_eq!(
            C_Digest(h, digest.as_mut_ptr(), 32, out.as_mut_ptr(), &mut len),
            CKR_OK
        );
        assert_eq!(
            C_DigestFinal(h, out.as_mut_ptr(), &mut len),
            CKR_OPERATION_NOT_INITIALIZED
        );

        // Random: NULL with a length.
        assert_eq!(C_GenerateRandom(h, null_mut(), 16), CKR_ARGUMENTS_BAD);
        assert_eq!(C_GenerateRandom(h, out.as_mut_ptr(), 32), CKR_OK);
        assert_eq!(
            C_GenerateRandom(h, out.as_mut_ptr(), CK_ULONG::MAX),
            CKR_ARGUMENTS_BAD
        );

        // Unsupported functions say so, whatever their arguments.
        assert_eq!(C_EncryptInit(h, null_mut(), 0), CKR_FUNCTION_NOT_SUPPORTED);
        assert_eq!(
            C_Decrypt(h, null_mut(), 5, null_mut(), null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            C_WrapKey(h, null_mut(), 0, 0, null_mut(), null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            C_GetOperationState(h, null_mut(), null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(
            C_SignMessage(h, null_mut(), 0, null_mut(), 0, null_mut(), null_mut()),
            CKR_FUNCTION_NOT_SUPPORTED
        );
        assert_eq!(C_GetFunctionStatus(h), CKR_FUNCTION_NOT_PARALLEL);

        // Slot events.
        let mut slot: CK_SLOT_ID = 0;
        assert_eq!(
            C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, std::ptr::dangling_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_WaitForSlotEvent(CKF_DONT_BLOCK, null_mut(), null_mut()),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut()),
            CKR_NO_EVENT
        );

        // Finalize.
        assert_eq!(C_Finalize(std::ptr::dangling_mut()), CKR_ARGUMENTS_BAD);
        assert_eq!(C_Finalize(null_mut()), CKR_OK);
        assert_eq!(
            C_GetSessionInfo(h, &mut sinfo),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(
            C_Sign(h, null_mut(), 0, null_mut(), null_mut()),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
    }
}
