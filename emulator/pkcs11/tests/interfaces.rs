//! PKCS#11 3.0 where the module offers it (C_GetInfo per interface, C_SessionCancel) and a
//! forked child (2.40 §5.5.1: the child is another application and performs its own
//! C_Initialize). Calls the exported functions themselves, in one test (one library state per
//! process, and no other test thread when it forks).

use cryptoki_sys::*;
use kilt_pkcs11::*;
use std::ptr::null_mut;

mod direct;

use direct::{USER, mech};

#[test]
fn interfaces_session_cancel_and_a_forked_child() {
    let dir = tempfile::tempdir().unwrap();
    unsafe { run(&dir) }
}

unsafe fn run(dir: &tempfile::TempDir) {
    unsafe {
        let h = direct::token_with_user(dir, b"v30");
        info_per_interface();
        session_cancel(h);
        forked_child(h);
        assert_eq!(C_Finalize(null_mut()), CKR_OK);
    }
}

/// 3.0 §5.4: C_GetInfo reports the version of the interface it is called through.
unsafe fn info_per_interface() {
    unsafe {
        let mut iface: *mut CK_INTERFACE = null_mut();
        assert_eq!(
            C_GetInterface(null_mut(), null_mut(), &mut iface, 0),
            CKR_OK
        );
        let list = (*iface).pFunctionList as *const CK_FUNCTION_LIST_3_0;
        assert_eq!(((*list).version.major, (*list).version.minor), (3, 0));
        let mut info = CK_INFO::default();
        assert_eq!((*list).C_GetInfo.unwrap()(&mut info), CKR_OK);
        assert_eq!(
            (info.cryptokiVersion.major, info.cryptokiVersion.minor),
            (3, 0)
        );
        assert_eq!(C_GetInfo(&mut info), CKR_OK);
        assert_eq!(
            (info.cryptokiVersion.major, info.cryptokiVersion.minor),
            (2, 40)
        );
    }
}

/// 3.0 §5.6: C_SessionCancel ends the operations its flags name, and only those.
unsafe fn session_cancel(h: CK_SESSION_HANDLE) {
    unsafe {
        let mut m = mech(CKM_SHA256);
        let mut found = [0 as CK_OBJECT_HANDLE; 4];
        let mut n: CK_ULONG = 0;
        assert_eq!(C_DigestInit(h, &mut m), CKR_OK);
        assert_eq!(C_FindObjectsInit(h, null_mut(), 0), CKR_OK);
        assert_eq!(C_SessionCancel(h, CKF_FIND_OBJECTS), CKR_OK);
        assert_eq!(
            C_FindObjects(h, found.as_mut_ptr(), 4, &mut n),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(
            C_DigestUpdate(h, b"x".as_ptr() as *mut _, 1),
            CKR_OK,
            "a digest the flags do not name was cancelled"
        );
        assert_eq!(C_SessionCancel(h, CKF_DIGEST), CKR_OK);
        assert_eq!(
            C_DigestUpdate(h, b"x".as_ptr() as *mut _, 1),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Nothing active and no flag: nothing to do.
        assert_eq!(C_SessionCancel(h, 0), CKR_OK);
        assert_eq!(C_DigestInit(h, &mut m), CKR_OK, "the session goes on");
        assert_eq!(C_SessionCancel(h, CKF_SIGN | CKF_VERIFY), CKR_OK);
        assert_eq!(C_DigestUpdate(h, b"x".as_ptr() as *mut _, 1), CKR_OK);
        assert_eq!(C_SessionCancel(h, CKF_DIGEST), CKR_OK);
        assert_eq!(
            C_SessionCancel(h + 1000, CKF_DIGEST),
            CKR_SESSION_HANDLE_INVALID
        );
    }
}

/// 2.40 §5.5.1: a forked child starts uninitialised, its own C_Initialize works and does not
/// know the parent's sessions; what it stores on the token the parent sees.
unsafe fn forked_child(parent: CK_SESSION_HANDLE) {
    unsafe {
        let label = b"from the child";
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            // Exit codes say which step failed (no unwinding out of a forked child).
            let step = |n: i32, ok: bool| {
                if !ok {
                    libc::_exit(n);
                }
            };
            let mut count: CK_ULONG = 0;
            step(
                10,
                C_GetSlotList(CK_TRUE, null_mut(), &mut count) == CKR_CRYPTOKI_NOT_INITIALIZED,
            );
            step(11, C_Initialize(null_mut()) == CKR_OK);
            let mut info = CK_SESSION_INFO::default();
            step(
                12,
                C_GetSessionInfo(parent, &mut info) == CKR_SESSION_HANDLE_INVALID,
            );
            let mut h: CK_SESSION_HANDLE = 0;
            let rw = CKF_SERIAL_SESSION | CKF_RW_SESSION;
            step(13, C_OpenSession(0, rw, null_mut(), None, &mut h) == CKR_OK);
            step(
                14,
                C_Login(h, CKU_USER, USER.as_ptr() as *mut _, 10) == CKR_OK,
            );
            let mut class = CKO_DATA;
            let mut yes = CK_TRUE;
            let mut no = CK_FALSE;
            let mut t = [
                attr(CKA_CLASS, &mut class),
                attr(CKA_TOKEN, &mut yes),
                attr(CKA_PRIVATE, &mut no),
                CK_ATTRIBUTE {
                    type_: CKA_LABEL,
                    pValue: label.as_ptr() as *mut _,
                    ulValueLen: label.len() as CK_ULONG,
                },
            ];
            let mut o: CK_OBJECT_HANDLE = 0;
            step(
                15,
                C_CreateObject(h, t.as_mut_ptr(), t.len() as CK_ULONG, &mut o) == CKR_OK,
            );
            step(16, C_Finalize(null_mut()) == CKR_OK);
            libc::_exit(0);
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the forked child failed at step {}",
            libc::WEXITSTATUS(status)
        );
        // The parent's session lives on and sees the child's token object.
        let mut t = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_ptr() as *mut _,
            ulValueLen: label.len() as CK_ULONG,
        }];
        assert_eq!(C_FindObjectsInit(parent, t.as_mut_ptr(), 1), CKR_OK);
        let mut found = [0 as CK_OBJECT_HANDLE; 4];
        let mut n: CK_ULONG = 0;
        assert_eq!(C_FindObjects(parent, found.as_mut_ptr(), 4, &mut n), CKR_OK);
        assert_eq!(n, 1, "the parent does not see the child's token object");
        assert_eq!(C_FindObjectsFinal(parent), CKR_OK);
    }
}

fn attr<T>(t: CK_ATTRIBUTE_TYPE, v: &mut T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: t,
        pValue: v as *mut T as *mut _,
        ulValueLen: std::mem::size_of::<T>() as CK_ULONG,
    }
}
