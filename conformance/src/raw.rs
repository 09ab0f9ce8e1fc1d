//! Raw calls into the module under test, where `cryptoki` cannot go: NULL pointers, short
//! buffers, absurd counts, calls before `C_Initialize`, the 3.0 interface functions, `fork()`.
//!
//! This is the only `unsafe` code of the suite. The module is treated as hostile: every function
//! pointer is checked before it is called (a missing one is `CKR_FUNCTION_NOT_SUPPORTED`), every
//! pointer the module hands back is checked and copied once, and every length it writes is
//! compared with the buffer the suite gave before a byte is read — a module that claims more is
//! reported ([`Out::overrun`]), never followed.
#![allow(unsafe_code)]

use cryptoki_sys::*;
use std::ffi::{CStr, c_void};
use std::path::Path;
use std::ptr::{null, null_mut};

/// The module's functions, copied out of its lists.
pub struct Raw {
    list: CK_FUNCTION_LIST,
    /// The 3.0 list, when `C_GetInterface` gives one.
    list3: Option<CK_FUNCTION_LIST_3_0>,
    get_interface_list: CK_C_GetInterfaceList,
    get_interface: CK_C_GetInterface,
    get_function_list: CK_C_GetFunctionList,
    // Last: the functions above point into it.
    _lib: libloading::Library,
}

/// An output buffer to give the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    /// A NULL pointer (the length query of §5.2).
    Null,
    /// A buffer of this many bytes.
    Cap(usize),
}

/// What a call with an output buffer answered.
#[derive(Clone, Debug, Default)]
pub struct Out {
    pub rv: CK_RV,
    /// The length the module wrote back.
    pub len: CK_ULONG,
    /// The bytes it wrote, up to the length (never past the buffer).
    pub bytes: Vec<u8>,
    /// The module wrote back a length over the buffer it was given, with `CKR_OK`.
    pub overrun: bool,
}

/// A mechanism to pass.
#[derive(Clone, Debug)]
pub struct Mech {
    pub kind: CK_MECHANISM_TYPE,
    pub param: Vec<u8>,
}

impl Mech {
    pub fn new(kind: CK_MECHANISM_TYPE) -> Mech {
        Mech {
            kind,
            param: vec![],
        }
    }
}

/// An attribute to pass: type and value bytes.
pub type Attr = (CK_ATTRIBUTE_TYPE, Vec<u8>);

/// `C_Initialize` arguments, legal and not (§5.4).
#[derive(Clone, Copy, Debug)]
pub enum Init {
    Null,
    Flags(CK_FLAGS),
    /// `pReserved` not NULL.
    Reserved,
    /// Only `CreateMutex` given.
    SomeMutexFunctions,
    /// All four mutex functions, no `CKF_OS_LOCKING_OK`.
    OwnMutexes,
}

/// Why the module could not be opened raw.
pub fn load(path: &Path) -> Result<Raw, String> {
    // SAFETY: loading runs the library's initialisers, as loading any PKCS#11 module does.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
    // SAFETY: the symbols have the PKCS#11 types; a missing one is None.
    let sym = |name: &[u8]| unsafe { lib.get::<*const c_void>(name).ok().map(|s| *s) };
    // SAFETY: a PKCS#11 symbol of that name has that type (§5.4, 3.0 §5.4).
    let get_function_list: CK_C_GetFunctionList =
        sym(b"C_GetFunctionList\0").map(|p| unsafe { std::mem::transmute(p) });
    let get_interface_list: CK_C_GetInterfaceList =
        sym(b"C_GetInterfaceList\0").map(|p| unsafe { std::mem::transmute(p) });
    let get_interface: CK_C_GetInterface =
        sym(b"C_GetInterface\0").map(|p| unsafe { std::mem::transmute(p) });
    let f = get_function_list.ok_or("the module exports no C_GetFunctionList")?;
    let mut p: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: a valid out-pointer.
    let rv = unsafe { f(&mut p) };
    if rv != CKR_OK {
        return Err(format!("C_GetFunctionList returned {}", name(rv)));
    }
    let list = copy_list(p as *const CK_FUNCTION_LIST).ok_or("C_GetFunctionList gave NULL")?;
    let mut raw = Raw {
        list,
        list3: None,
        get_interface_list,
        get_interface,
        get_function_list,
        _lib: lib,
    };
    if let Some(i) = raw.interface(Some(c"PKCS 11"), Some((3, 0)), false, 0).1
        && i.version.0 == 3
    {
        raw.list3 = copy_list(i.list as *const CK_FUNCTION_LIST_3_0);
    }
    Ok(raw)
}

/// Copies a function list the module pointed at, if the pointer is usable.
fn copy_list<T: Copy>(p: *const T) -> Option<T> {
    if p.is_null() || !p.is_aligned() {
        return None;
    }
    // SAFETY: non-NULL, aligned, and the module says it points at such a list.
    Some(unsafe { p.read() })
}

/// The return value's name (`CKR_…`), or its number.
pub fn name(rv: CK_RV) -> String {
    use cryptoki::error::Rv;
    let debug = match Rv::from(rv) {
        Rv::Ok => return "CKR_OK".into(),
        Rv::Error(e) => format!("{e:?}"),
    };
    if !debug.chars().all(|c| c.is_ascii_alphabetic()) {
        return format!("0x{rv:x} ({debug})");
    }
    // `PinIncorrect` → `CKR_PIN_INCORRECT`.
    let mut out = String::from("CKR");
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// An interface the module described.
#[derive(Clone, Copy, Debug)]
pub struct Interface {
    pub version: (u8, u8),
    pub flags: CK_FLAGS,
    list: *const c_void,
}

macro_rules! call {
    ($self:ident . $f:ident ( $($a:expr),* )) => {
        match $self.list.$f {
            // SAFETY: the arguments are built by the safe wrapper around this call, pointing
            // into buffers that live across the call and sized as the lengths passed say.
            Some(f) => unsafe { f($($a),*) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    };
}

/// Builds the `CK_ATTRIBUTE` array of a template (its values borrowed from `t`).
fn template(t: &[Attr]) -> Vec<CK_ATTRIBUTE> {
    t.iter()
        .map(|(ty, v)| CK_ATTRIBUTE {
            type_: *ty,
            pValue: v.as_ptr() as *mut c_void,
            ulValueLen: v.len() as CK_ULONG,
        })
        .collect()
}

fn mech(m: &Mech) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m.kind,
        pParameter: if m.param.is_empty() {
            null_mut()
        } else {
            m.param.as_ptr() as *mut c_void
        },
        ulParameterLen: m.param.len() as CK_ULONG,
    }
}

fn data_ptr(d: Option<&[u8]>) -> (*mut u8, CK_ULONG) {
    match d {
        Some(d) => (d.as_ptr() as *mut u8, d.len() as CK_ULONG),
        None => (null_mut(), 16),
    }
}

/// The one output-buffer call: `buf` NULL or of `cap` bytes, `*len` = cap; reads back only
/// what fits.
fn output(buf: Buf, len_null: bool, f: impl FnOnce(*mut u8, *mut CK_ULONG) -> CK_RV) -> Out {
    let cap = match buf {
        Buf::Null => 0,
        Buf::Cap(n) => n,
    };
    let mut v = vec![0u8; cap];
    let mut len = cap as CK_ULONG;
    let p = match buf {
        Buf::Null => null_mut(),
        Buf::Cap(_) => v.as_mut_ptr(),
    };
    let rv = f(p, if len_null { null_mut() } else { &mut len });
    let fits = (len as usize).min(cap);
    v.truncate(fits);
    Out {
        rv,
        len,
        overrun: rv == CKR_OK && buf != Buf::Null && len as usize > cap,
        bytes: v,
    }
}

/// A list of `CK_ULONG`s (slots, mechanisms, handles) the module fills: `cap` entries or NULL.
fn ulongs(
    cap: Option<usize>,
    count_null: bool,
    f: impl FnOnce(*mut CK_ULONG, *mut CK_ULONG) -> CK_RV,
) -> (CK_RV, CK_ULONG, Vec<CK_ULONG>) {
    let mut v = vec![0 as CK_ULONG; cap.unwrap_or(0)];
    let mut n = cap.unwrap_or(0) as CK_ULONG;
    let p = if cap.is_some() {
        v.as_mut_ptr()
    } else {
        null_mut()
    };
    let rv = f(p, if count_null { null_mut() } else { &mut n });
    v.truncate((n as usize).min(v.len()));
    (rv, n, v)
}

impl Raw {
    /// Whether the module gave a 3.0 function list.
    pub fn has_v3(&self) -> bool {
        self.list3.is_some()
    }

    /// The version of the 2.x function list.
    pub fn list_version(&self) -> (u8, u8) {
        (self.list.version.major, self.list.version.minor)
    }

    pub fn initialize(&self, args: Init) -> CK_RV {
        unsafe extern "C" fn create(m: *mut *mut c_void) -> CK_RV {
            // SAFETY: the module passes a valid out-pointer (§5.4 CK_CREATEMUTEX).
            if let Some(m) = unsafe { m.as_mut() } {
                *m = std::ptr::dangling_mut::<c_void>();
            }
            CKR_OK
        }
        unsafe extern "C" fn other(_: *mut c_void) -> CK_RV {
            CKR_OK
        }
        let mut a = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: 0,
            pReserved: null_mut(),
        };
        let mut reserved = 0u8;
        match args {
            Init::Null => return call!(self.C_Initialize(null_mut())),
            Init::Flags(f) => a.flags = f,
            Init::Reserved => a.pReserved = &mut reserved as *mut u8 as *mut c_void,
            Init::SomeMutexFunctions => a.CreateMutex = Some(create),
            Init::OwnMutexes => {
                a.CreateMutex = Some(create);
                a.DestroyMutex = Some(other);
                a.LockMutex = Some(other);
                a.UnlockMutex = Some(other);
            }
        }
        call!(self.C_Initialize(&mut a as *mut CK_C_INITIALIZE_ARGS as *mut c_void))
    }

    pub fn finalize(&self, reserved: bool) -> CK_RV {
        let mut r = 0u8;
        let p = if reserved {
            &mut r as *mut u8 as *mut c_void
        } else {
            null_mut()
        };
        call!(self.C_Finalize(p))
    }

    /// `C_GetInfo` of the 2.x list (or of the 3.0 list with `v3`).
    pub fn info(&self, null: bool, v3: bool) -> (CK_RV, CK_INFO) {
        let mut i = CK_INFO::default();
        let p = if null { null_mut() } else { &mut i };
        let f = if v3 {
            self.list3.and_then(|l| l.C_GetInfo)
        } else {
            self.list.C_GetInfo
        };
        let rv = match f {
            // SAFETY: NULL or a valid CK_INFO.
            Some(f) => unsafe { f(p) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        };
        (rv, i)
    }

    /// `C_GetFunctionList`, NULL or not; the list version it gave.
    pub fn function_list(&self, null: bool) -> (CK_RV, Option<(u8, u8)>) {
        let Some(f) = self.get_function_list else {
            return (CKR_FUNCTION_NOT_SUPPORTED, None);
        };
        let mut p: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: NULL or a valid out-pointer.
        let rv = unsafe { f(if null { null_mut() } else { &mut p }) };
        let v = copy_list(p as *const CK_FUNCTION_LIST).map(|l| (l.version.major, l.version.minor));
        (rv, v)
    }

    /// `C_GetInterfaceList` (3.0): `cap` entries or NULL; the count and the versions.
    pub fn interface_list(
        &self,
        cap: Option<usize>,
        count_null: bool,
    ) -> (CK_RV, CK_ULONG, Vec<Interface>) {
        let Some(f) = self.get_interface_list else {
            return (CKR_FUNCTION_NOT_SUPPORTED, 0, vec![]);
        };
        let empty = CK_INTERFACE {
            pInterfaceName: null_mut(),
            pFunctionList: null_mut(),
            flags: 0,
        };
        let mut v = vec![empty; cap.unwrap_or(0)];
        let mut n = cap.unwrap_or(0) as CK_ULONG;
        let p = if cap.is_some() {
            v.as_mut_ptr()
        } else {
            null_mut()
        };
        // SAFETY: NULL or `n` entries; NULL or a valid count.
        let rv = unsafe { f(p, if count_null { null_mut() } else { &mut n }) };
        v.truncate((n as usize).min(v.len()));
        let list = v.iter().map(|i| self.describe(i)).collect();
        (rv, n, list)
    }

    /// Reads an interface's version from the list it points to (both lists start with it).
    fn describe(&self, i: &CK_INTERFACE) -> Interface {
        let version = copy_list(i.pFunctionList as *const CK_VERSION)
            .map(|v| (v.major, v.minor))
            .unwrap_or((0, 0));
        Interface {
            version,
            flags: i.flags,
            list: i.pFunctionList,
        }
    }

    /// `C_GetInterface` (3.0); `out_null` passes a NULL `ppInterface`.
    pub fn interface(
        &self,
        name: Option<&CStr>,
        version: Option<(u8, u8)>,
        out_null: bool,
        flags: CK_FLAGS,
    ) -> (CK_RV, Option<Interface>) {
        let Some(f) = self.get_interface else {
            return (CKR_FUNCTION_NOT_SUPPORTED, None);
        };
        let mut v = version.map(|(major, minor)| CK_VERSION { major, minor });
        let vp = v.as_mut().map_or(null_mut(), |v| v as *mut CK_VERSION);
        let np = name.map_or(null(), |n| n.as_ptr()) as *mut CK_UTF8CHAR;
        let mut out: *mut CK_INTERFACE = null_mut();
        let op = if out_null { null_mut() } else { &mut out };
        // SAFETY: a NUL-terminated name or NULL, a version or NULL, an out-pointer or NULL.
        let rv = unsafe { f(np, vp, op, flags) };
        let i = copy_list(out as *const CK_INTERFACE).map(|i| self.describe(&i));
        (rv, i)
    }

    pub fn slot_list(
        &self,
        present: bool,
        cap: Option<usize>,
        count_null: bool,
    ) -> (CK_RV, CK_ULONG, Vec<CK_SLOT_ID>) {
        ulongs(cap, count_null, |p, n| {
            call!(self.C_GetSlotList(present as CK_BBOOL, p, n))
        })
    }

    pub fn slot_info(&self, slot: CK_SLOT_ID, null: bool) -> (CK_RV, CK_SLOT_INFO) {
        let mut i = CK_SLOT_INFO::default();
        let rv = call!(self.C_GetSlotInfo(slot, if null { null_mut() } else { &mut i }));
        (rv, i)
    }

    pub fn token_info(&self, slot: CK_SLOT_ID, null: bool) -> (CK_RV, CK_TOKEN_INFO) {
        let mut i = CK_TOKEN_INFO::default();
        let rv = call!(self.C_GetTokenInfo(slot, if null { null_mut() } else { &mut i }));
        (rv, i)
    }

    pub fn mechanism_list(
        &self,
        slot: CK_SLOT_ID,
        cap: Option<usize>,
        count_null: bool,
    ) -> (CK_RV, CK_ULONG, Vec<CK_MECHANISM_TYPE>) {
        ulongs(cap, count_null, |p, n| {
            call!(self.C_GetMechanismList(slot, p, n))
        })
    }

    pub fn mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        m: CK_MECHANISM_TYPE,
        null: bool,
    ) -> (CK_RV, CK_MECHANISM_INFO) {
        let mut i = CK_MECHANISM_INFO::default();
        let rv = call!(self.C_GetMechanismInfo(slot, m, if null { null_mut() } else { &mut i }));
        (rv, i)
    }

    pub fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> CK_RV {
        call!(self.C_InitToken(
            slot,
            so_pin.as_ptr() as *mut u8,
            so_pin.len() as CK_ULONG,
            label.as_ptr() as *mut u8
        ))
    }

    pub fn open_session(
        &self,
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        out_null: bool,
    ) -> (CK_RV, CK_SESSION_HANDLE) {
        let mut h = CK_INVALID_HANDLE;
        let p = if out_null { null_mut() } else { &mut h };
        let rv = call!(self.C_OpenSession(slot, flags, null_mut(), None, p));
        (rv, h)
    }

    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self.C_CloseSession(h))
    }

    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> CK_RV {
        call!(self.C_CloseAllSessions(slot))
    }

    pub fn session_info(&self, h: CK_SESSION_HANDLE, null: bool) -> (CK_RV, CK_SESSION_INFO) {
        let mut i = CK_SESSION_INFO::default();
        let rv = call!(self.C_GetSessionInfo(h, if null { null_mut() } else { &mut i }));
        (rv, i)
    }

    /// `C_Login`; `None` passes a NULL PIN with length 4 (not the protected path's 0).
    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: Option<&[u8]>) -> CK_RV {
        let (p, n) = match pin {
            Some(p) => (p.as_ptr() as *mut u8, p.len() as CK_ULONG),
            None => (null_mut(), 4),
        };
        call!(self.C_Login(h, user, p, n))
    }

    /// `C_LoginUser` (3.0).
    pub fn login_user(
        &self,
        h: CK_SESSION_HANDLE,
        user: CK_USER_TYPE,
        pin: &[u8],
        username: &[u8],
    ) -> CK_RV {
        match self.list3.and_then(|l| l.C_LoginUser) {
            // SAFETY: both buffers live across the call with their lengths.
            Some(f) => unsafe {
                f(
                    h,
                    user,
                    pin.as_ptr() as *mut u8,
                    pin.len() as CK_ULONG,
                    username.as_ptr() as *mut u8,
                    username.len() as CK_ULONG,
                )
            },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    }

    /// `C_SessionCancel` (3.0).
    pub fn session_cancel(&self, h: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
        match self.list3.and_then(|l| l.C_SessionCancel) {
            // SAFETY: no pointers.
            Some(f) => unsafe { f(h, flags) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    }

    pub fn logout(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self.C_Logout(h))
    }

    pub fn init_pin(&self, h: CK_SESSION_HANDLE, pin: &[u8]) -> CK_RV {
        call!(self.C_InitPIN(h, pin.as_ptr() as *mut u8, pin.len() as CK_ULONG))
    }

    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> CK_RV {
        call!(self.C_SetPIN(
            h,
            old.as_ptr() as *mut u8,
            old.len() as CK_ULONG,
            new.as_ptr() as *mut u8,
            new.len() as CK_ULONG
        ))
    }

    /// `C_CreateObject`; `None` passes a NULL template with a count of 3.
    pub fn create_object(
        &self,
        h: CK_SESSION_HANDLE,
        t: Option<&[Attr]>,
        out_null: bool,
    ) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut o = CK_INVALID_HANDLE;
        let mut a = template(t.unwrap_or(&[]));
        let (tp, n) = match t {
            Some(_) => (a.as_mut_ptr(), a.len() as CK_ULONG),
            None => (null_mut(), 3),
        };
        let op = if out_null { null_mut() } else { &mut o };
        let rv = call!(self.C_CreateObject(h, tp, n, op));
        (rv, o)
    }

    pub fn copy_object(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        t: &[Attr],
    ) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut out = CK_INVALID_HANDLE;
        let mut a = template(t);
        let rv = call!(self.C_CopyObject(h, o, a.as_mut_ptr(), a.len() as CK_ULONG, &mut out));
        (rv, out)
    }

    pub fn destroy_object(&self, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> CK_RV {
        call!(self.C_DestroyObject(h, o))
    }

    pub fn object_size(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        null: bool,
    ) -> (CK_RV, CK_ULONG) {
        let mut n = 0;
        let rv = call!(self.C_GetObjectSize(h, o, if null { null_mut() } else { &mut n }));
        (rv, n)
    }

    /// `C_GetAttributeValue` with one buffer per requested type; each answer's length and the
    /// bytes that fit. `None` passes a NULL template with a count of 2.
    pub fn get_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        o: CK_OBJECT_HANDLE,
        want: Option<&[(CK_ATTRIBUTE_TYPE, Buf)]>,
    ) -> (CK_RV, Vec<Out>) {
        let Some(want) = want else {
            return (call!(self.C_GetAttributeValue(h, o, null_mut(), 2)), vec![]);
        };
        let mut bufs: Vec<Vec<u8>> = want
            .iter()
            .map(|(_, b)| match b {
                Buf::Null => vec![],
                Buf::Cap(n) => vec![0; *n],
            })
            .collect();
        let mut a: Vec<CK_ATTRIBUTE> = want
            .iter()
            .zip(bufs.iter_mut())
            .map(|((ty, b), v)| CK_ATTRIBUTE {
                type_: *ty,
                pValue: match b {
                    Buf::Null => null_mut(),
                    Buf::Cap(_) => v.as_mut_ptr() as *mut c_void,
                },
                ulValueLen: v.len() as CK_ULONG,
            })
            .collect();
        let rv = call!(self.C_GetAttributeValue(h, o, a.as_mut_ptr(), a.len() as CK_ULONG));
        let outs = a
            .iter()
            .zip(bufs)
            .zip(want)
            .map(|((a, mut v), (_, b))| {
                let cap = v.len();
                let fits = if a.ulValueLen == CK_UNAVAILABLE_INFORMATION {
                    0
                } else {
                    (a.ulValueLen as usize).min(cap)
                };
                v.truncate(fits);
                Out {
                    rv,
                    len: a.ulValueLen,
                    overrun: *b != Buf::Null
                        && a.ulValueLen != CK_UNAVAILABLE_INFORMATION
                        && a.ulValueLen as usize > cap,
                    bytes: v,
                }
            })
            .collect();
        (rv, outs)
    }

    pub fn set_attributes(&self, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE, t: &[Attr]) -> CK_RV {
        let mut a = template(t);
        call!(self.C_SetAttributeValue(h, o, a.as_mut_ptr(), a.len() as CK_ULONG))
    }

    /// `C_FindObjectsInit`; `None` passes a NULL template with a count of 1.
    pub fn find_init(&self, h: CK_SESSION_HANDLE, t: Option<&[Attr]>) -> CK_RV {
        let mut a = template(t.unwrap_or(&[]));
        let (p, n) = match t {
            Some(_) => (a.as_mut_ptr(), a.len() as CK_ULONG),
            None => (null_mut(), 1),
        };
        call!(self.C_FindObjectsInit(h, p, n))
    }

    /// `C_FindObjects` of up to `max` handles (`None`: a NULL array of 4).
    pub fn find(
        &self,
        h: CK_SESSION_HANDLE,
        max: Option<usize>,
        count_null: bool,
    ) -> (CK_RV, Vec<CK_OBJECT_HANDLE>) {
        let mut v = vec![0 as CK_OBJECT_HANDLE; max.unwrap_or(0)];
        let mut n: CK_ULONG = 0;
        let (p, cap) = match max {
            Some(m) => (v.as_mut_ptr(), m as CK_ULONG),
            None => (null_mut(), 4),
        };
        let rv = call!(self.C_FindObjects(h, p, cap, if count_null { null_mut() } else { &mut n }));
        v.truncate((n as usize).min(v.len()));
        (rv, v)
    }

    pub fn find_final(&self, h: CK_SESSION_HANDLE) -> CK_RV {
        call!(self.C_FindObjectsFinal(h))
    }

    /// `C_DigestInit`, `C_SignInit` or `C_VerifyInit` (`None`: a NULL mechanism).
    pub fn init(
        &self,
        op: Op,
        h: CK_SESSION_HANDLE,
        m: Option<&Mech>,
        key: CK_OBJECT_HANDLE,
    ) -> CK_RV {
        let mut cm = m.map(mech);
        let p = cm.as_mut().map_or(null_mut(), |m| m as *mut CK_MECHANISM);
        match op {
            Op::Digest => call!(self.C_DigestInit(h, p)),
            Op::Sign => call!(self.C_SignInit(h, p, key)),
            Op::Verify => call!(self.C_VerifyInit(h, p, key)),
        }
    }

    /// `C_Digest` or `C_Sign`: `data` (`None`: NULL with length 16) into `out`.
    pub fn single(
        &self,
        op: Op,
        h: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        out: Buf,
        len_null: bool,
    ) -> Out {
        let (d, n) = data_ptr(data);
        output(out, len_null, |p, l| match op {
            Op::Digest => call!(self.C_Digest(h, d, n, p, l)),
            Op::Sign => call!(self.C_Sign(h, d, n, p, l)),
            Op::Verify => CKR_FUNCTION_NOT_SUPPORTED,
        })
    }

    /// `C_DigestUpdate`, `C_SignUpdate` or `C_VerifyUpdate` (`None`: NULL with length 16).
    pub fn update(&self, op: Op, h: CK_SESSION_HANDLE, data: Option<&[u8]>) -> CK_RV {
        let (d, n) = data_ptr(data);
        match op {
            Op::Digest => call!(self.C_DigestUpdate(h, d, n)),
            Op::Sign => call!(self.C_SignUpdate(h, d, n)),
            Op::Verify => call!(self.C_VerifyUpdate(h, d, n)),
        }
    }

    /// `C_DigestFinal` or `C_SignFinal` into `out`.
    pub fn finish(&self, op: Op, h: CK_SESSION_HANDLE, out: Buf, len_null: bool) -> Out {
        output(out, len_null, |p, l| match op {
            Op::Digest => call!(self.C_DigestFinal(h, p, l)),
            Op::Sign => call!(self.C_SignFinal(h, p, l)),
            Op::Verify => CKR_FUNCTION_NOT_SUPPORTED,
        })
    }

    /// `C_Verify` (`None` data or signature: NULL with length 16).
    pub fn verify(&self, h: CK_SESSION_HANDLE, data: Option<&[u8]>, sig: Option<&[u8]>) -> CK_RV {
        let (d, n) = data_ptr(data);
        let (s, sn) = data_ptr(sig);
        call!(self.C_Verify(h, d, n, s, sn))
    }

    pub fn verify_final(&self, h: CK_SESSION_HANDLE, sig: Option<&[u8]>) -> CK_RV {
        let (s, sn) = data_ptr(sig);
        call!(self.C_VerifyFinal(h, s, sn))
    }

    /// `C_GenerateKeyPair`; `out_null` passes NULL handle pointers.
    pub fn generate_key_pair(
        &self,
        h: CK_SESSION_HANDLE,
        m: &Mech,
        public: &[Attr],
        private: &[Attr],
        out_null: bool,
    ) -> (CK_RV, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        let mut cm = mech(m);
        let mut pt = template(public);
        let mut st = template(private);
        let (mut a, mut b) = (CK_INVALID_HANDLE, CK_INVALID_HANDLE);
        let (pa, pb) = if out_null {
            (null_mut(), null_mut())
        } else {
            (&mut a as *mut _, &mut b as *mut _)
        };
        let rv = call!(self.C_GenerateKeyPair(
            h,
            &mut cm,
            pt.as_mut_ptr(),
            pt.len() as CK_ULONG,
            st.as_mut_ptr(),
            st.len() as CK_ULONG,
            pa,
            pb
        ));
        (rv, a, b)
    }

    /// `C_GenerateRandom` into a buffer of `n` bytes (`None`: NULL with length 16).
    pub fn random(&self, h: CK_SESSION_HANDLE, n: Option<usize>) -> (CK_RV, Vec<u8>) {
        let mut v = vec![0u8; n.unwrap_or(0)];
        let (p, l) = match n {
            Some(n) => (v.as_mut_ptr(), n as CK_ULONG),
            None => (null_mut(), 16),
        };
        (call!(self.C_GenerateRandom(h, p, l)), v)
    }

    pub fn seed_random(&self, h: CK_SESSION_HANDLE, seed: &[u8]) -> CK_RV {
        call!(self.C_SeedRandom(h, seed.as_ptr() as *mut u8, seed.len() as CK_ULONG))
    }

    /// `C_WaitForSlotEvent`; `reserved` passes a non-NULL `pReserved`.
    pub fn wait_for_slot_event(&self, flags: CK_FLAGS, reserved: bool) -> (CK_RV, CK_SLOT_ID) {
        let mut slot = 0;
        let mut r = 0u8;
        let rp = if reserved {
            &mut r as *mut u8 as *mut c_void
        } else {
            null_mut()
        };
        let rv = call!(self.C_WaitForSlotEvent(flags, &mut slot, rp));
        (rv, slot)
    }

    /// Runs `child` in a `fork()`ed copy of this process and returns the bytes it reports, or
    /// why not (PKCS#11 2.40 §5.5.1 is about exactly such children). The child only runs `child` and exits;
    /// after `timeout` it is killed.
    pub fn in_forked_child(
        &self,
        timeout: std::time::Duration,
        child: impl FnOnce(&Raw) -> Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        use std::io::Read;
        use std::os::fd::FromRawFd;
        let mut fds = [0i32; 2];
        // SAFETY: a valid array of two descriptors.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err("pipe() failed".into());
        }
        // SAFETY: the child runs only `child`, writes, and leaves with `_exit` (no destructors,
        // no atexit handlers of the parent's state).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err("fork() failed".into());
        }
        if pid == 0 {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child(self)))
                .unwrap_or_else(|_| b"the child panicked".to_vec());
            // SAFETY: writing a live buffer to our end of the pipe, then leaving.
            unsafe {
                libc::close(fds[0]);
                libc::write(fds[1], out.as_ptr() as *const c_void, out.len());
                libc::_exit(0);
            }
        }
        // SAFETY: the descriptors are ours; each is owned once.
        unsafe { libc::close(fds[1]) };
        let mut r = unsafe { std::fs::File::from_raw_fd(fds[0]) };
        let deadline = std::time::Instant::now() + timeout;
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child.
            let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if done == pid {
                break;
            }
            if std::time::Instant::now() > deadline {
                // SAFETY: our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return Err(format!("the child hung for {timeout:?} and was killed"));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut out = vec![];
        r.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Functions a token may not offer: each is called with a mechanism and a key, the others of
/// its arguments empty buffers the module must not need (it refuses the mechanism or key first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Other {
    EncryptInit,
    DecryptInit,
    SignRecoverInit,
    VerifyRecoverInit,
    GenerateKey,
    DeriveKey,
    WrapKey,
    UnwrapKey,
}

impl Raw {
    /// Calls one of [`Other`] with `m` and `key`.
    pub fn other(&self, f: Other, h: CK_SESSION_HANDLE, m: &Mech, key: CK_OBJECT_HANDLE) -> CK_RV {
        let mut cm = mech(m);
        let mp = &mut cm as *mut CK_MECHANISM;
        let mut out: CK_OBJECT_HANDLE = CK_INVALID_HANDLE;
        let mut buf = [0u8; 256];
        let mut len = buf.len() as CK_ULONG;
        let mut empty: [CK_ATTRIBUTE; 0] = [];
        let t = empty.as_mut_ptr();
        match f {
            Other::EncryptInit => call!(self.C_EncryptInit(h, mp, key)),
            Other::DecryptInit => call!(self.C_DecryptInit(h, mp, key)),
            Other::SignRecoverInit => call!(self.C_SignRecoverInit(h, mp, key)),
            Other::VerifyRecoverInit => call!(self.C_VerifyRecoverInit(h, mp, key)),
            Other::GenerateKey => call!(self.C_GenerateKey(h, mp, t, 0, &mut out)),
            Other::DeriveKey => call!(self.C_DeriveKey(h, mp, key, t, 0, &mut out)),
            Other::WrapKey => call!(self.C_WrapKey(h, mp, key, key, buf.as_mut_ptr(), &mut len)),
            Other::UnwrapKey => call!(self.C_UnwrapKey(
                h,
                mp,
                key,
                buf.as_mut_ptr(),
                buf.len() as CK_ULONG,
                t,
                0,
                &mut out
            )),
        }
    }

    /// `C_GetFunctionStatus` (`cancel`: `C_CancelFunction`), the legacy pair of §5.16.
    pub fn legacy(&self, h: CK_SESSION_HANDLE, cancel: bool) -> CK_RV {
        if cancel {
            call!(self.C_CancelFunction(h))
        } else {
            call!(self.C_GetFunctionStatus(h))
        }
    }
}

/// The three operations of `C_*Init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Digest,
    Sign,
    Verify,
}
