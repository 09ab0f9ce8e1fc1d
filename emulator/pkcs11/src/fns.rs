//! The exported functions, in the order of PKCS#11 2.40 §5. Each body runs inside [`guard`].

use crate::abi::{self, OutputRoom, padded, unpad};
use crate::{Rv, STATE, emu, guard, init_logging, lifecycle};
use cryptoki_sys::*;
use kilt_emulator::{
    AttrResult, Config, Emulator, ObjectHandle, Operation, Part, Pin, SessionHandle, SessionState,
    UserType,
};
use std::ffi::c_void;
use std::sync::Arc;

const BAD: Rv = Rv(CKR_ARGUMENTS_BAD);

fn sess(h: CK_SESSION_HANDLE) -> SessionHandle {
    SessionHandle(h)
}

fn obj(h: CK_OBJECT_HANDLE) -> ObjectHandle {
    ObjectHandle(h)
}

fn to_ulong(n: usize) -> Result<CK_ULONG, Rv> {
    CK_ULONG::try_from(n).map_err(|_| Rv(CKR_GENERAL_ERROR))
}

/// A PIN argument: NULL means "use the protected authentication path" (§5.6 C_Login).
unsafe fn pin_arg(p: *const CK_UTF8CHAR, n: CK_ULONG) -> Result<Option<Pin>, Rv> {
    if p.is_null() {
        return if n == 0 { Ok(None) } else { Err(BAD) };
    }
    // SAFETY: non-NULL; the caller promises `n` bytes.
    Ok(Some(Pin::new(unsafe { abi::input(p, n) }?)))
}

// ---- §5.4 general-purpose functions -------------------------------------------------------------

/// C_Initialize (§5.4): OS locking is used; an application that insists on its own mutex
/// callbacks without allowing OS locking gets CKR_CANT_LOCK.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Initialize(pInitArgs: *mut c_void) -> CK_RV {
    guard("C_Initialize", || {
        init_logging();
        crate::watch_forks();
        crate::release_after_fork();
        // SAFETY: a non-NULL argument must point to a CK_C_INITIALIZE_ARGS (§5.4).
        if let Some(args) = unsafe { (pInitArgs as *const CK_C_INITIALIZE_ARGS).as_ref() } {
            if !args.pReserved.is_null() {
                return Err(BAD);
            }
            let given = [
                args.CreateMutex.is_some(),
                args.DestroyMutex.is_some(),
                args.LockMutex.is_some(),
                args.UnlockMutex.is_some(),
            ];
            if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
                return Err(BAD);
            }
            if given[0] && args.flags & CKF_OS_LOCKING_OK == 0 {
                return Err(Rv(CKR_CANT_LOCK));
            }
        }
        let _changing = lifecycle();
        if STATE.load().is_some() {
            return Err(Rv(CKR_CRYPTOKI_ALREADY_INITIALIZED));
        }
        let config = Config::from_env()?;
        STATE.store(Some(Arc::new(Emulator::new(config)?)));
        Ok(())
    })
}

/// C_Finalize (§5.4): closes every session and wakes any blocked C_WaitForSlotEvent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Finalize(pReserved: *mut c_void) -> CK_RV {
    guard("C_Finalize", || {
        if !pReserved.is_null() {
            return Err(BAD);
        }
        let emu = {
            let _changing = lifecycle();
            STATE.swap(None).ok_or(Rv(CKR_CRYPTOKI_NOT_INITIALIZED))?
        };
        emu.shut_down();
        for slot in emu.slot_list(false).unwrap_or_default() {
            let _ = emu.close_all_sessions(slot);
        }
        Ok(())
    })
}

/// C_GetInfo of the 2.40 list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInfo(pInfo: *mut CK_INFO) -> CK_RV {
    // SAFETY: forwarded contract.
    unsafe { get_info(pInfo, FUNCTION_LIST.version) }
}

/// C_GetInfo of the 3.0 list: 3.0 §5.4 — the version is the interface's the caller chose.
unsafe extern "C" fn C_GetInfo_3_0(pInfo: *mut CK_INFO) -> CK_RV {
    // SAFETY: forwarded contract.
    unsafe { get_info(pInfo, FUNCTION_LIST_3_0.version) }
}

unsafe fn get_info(pInfo: *mut CK_INFO, version: CK_VERSION) -> CK_RV {
    guard("C_GetInfo", || {
        emu()?;
        // SAFETY: checked by `out`.
        let info = unsafe { abi::out(pInfo) }?;
        *info = CK_INFO {
            cryptokiVersion: version,
            manufacturerID: padded("kilt"),
            flags: 0,
            libraryDescription: padded("JaCarta PKI emulator"),
            libraryVersion: CK_VERSION { major: 0, minor: 1 },
        };
        Ok(())
    })
}

/// C_GetFunctionList: the v2.40 list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard("C_GetFunctionList", || {
        // SAFETY: checked by `out`.
        let p = unsafe { abi::out(ppFunctionList) }?;
        // Callers read the table, never write it (§5.4); the cast only satisfies the C type.
        *p = &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST;
        Ok(())
    })
}

// ---- PKCS#11 3.0 §5.4: interfaces ---------------------------------------------------------------

static INTERFACE_NAME: &[u8] = b"PKCS 11\0";

/// The two interfaces: "PKCS 11" 3.0 (first, the default) and "PKCS 11" 2.40.
struct Interfaces([CK_INTERFACE; 2]);
// SAFETY: the pointers inside point to immutable statics.
unsafe impl Sync for Interfaces {}

static INTERFACES: Interfaces = Interfaces([
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut c_void,
        flags: 0,
    },
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut c_void,
        flags: 0,
    },
]);

fn interface_version(i: &CK_INTERFACE) -> CK_VERSION {
    // Both lists start with their CK_VERSION.
    if std::ptr::eq(
        i.pFunctionList as *const CK_FUNCTION_LIST_3_0,
        &FUNCTION_LIST_3_0,
    ) {
        FUNCTION_LIST_3_0.version
    } else {
        FUNCTION_LIST.version
    }
}

/// C_GetInterfaceList (3.0 §5.4), with the output-length protocol on the count.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: *mut CK_INTERFACE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetInterfaceList", || {
        // SAFETY: checked by `out`.
        let count = unsafe { abi::out(pulCount) }?;
        let n = INTERFACES.0.len() as CK_ULONG;
        if pInterfacesList.is_null() {
            *count = n;
            return Ok(());
        }
        if *count < n {
            *count = n;
            return Err(Rv(CKR_BUFFER_TOO_SMALL));
        }
        for (i, iface) in INTERFACES.0.iter().enumerate() {
            // SAFETY: the caller's array holds at least `n` entries (checked above).
            unsafe {
                pInterfacesList.add(i).write(CK_INTERFACE {
                    pInterfaceName: iface.pInterfaceName,
                    pFunctionList: iface.pFunctionList,
                    flags: iface.flags,
                })
            };
        }
        *count = n;
        Ok(())
    })
}

/// C_GetInterface (3.0 §5.4): by name and version, NULL name for the default.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: *mut CK_UTF8CHAR,
    pVersion: *mut CK_VERSION,
    ppInterface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_GetInterface", || {
        // SAFETY: checked by `out`.
        let out = unsafe { abi::out(ppInterface) }?;
        if !pInterfaceName.is_null() {
            // SAFETY: a non-NULL name is a NUL-terminated string (§5.4).
            let name =
                unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::ffi::c_char) };
            if name.to_bytes() != &INTERFACE_NAME[..INTERFACE_NAME.len() - 1] {
                return Err(BAD);
            }
        }
        // SAFETY: a non-NULL version points to a CK_VERSION.
        let want = unsafe { pVersion.as_ref() };
        let found = INTERFACES.0.iter().find(|i| {
            let v = interface_version(i);
            want.is_none_or(|w| w.major == v.major && w.minor == v.minor)
                && i.flags & flags == flags
        });
        let iface = found.ok_or(BAD)?;
        *out = iface as *const CK_INTERFACE as *mut CK_INTERFACE;
        Ok(())
    })
}

// ---- §5.5 slot and token management -------------------------------------------------------------

/// C_GetSlotList, with the output-length protocol on the count.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotList(
    tokenPresent: CK_BBOOL,
    pSlotList: *mut CK_SLOT_ID,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetSlotList", || {
        let emu = emu()?;
        // SAFETY: checked by `out`.
        let count = unsafe { abi::out(pulCount) }?;
        let slots = emu.slot_list(tokenPresent != CK_FALSE)?;
        let n = to_ulong(slots.len())?;
        if pSlotList.is_null() {
            *count = n;
            return Ok(());
        }
        if *count < n {
            *count = n;
            return Err(Rv(CKR_BUFFER_TOO_SMALL));
        }
        for (i, s) in slots.iter().enumerate() {
            // SAFETY: room for `n` entries was checked above.
            unsafe { pSlotList.add(i).write(*s) };
        }
        *count = n;
        Ok(())
    })
}

/// C_GetSlotInfo.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_SLOT_INFO) -> CK_RV {
    guard("C_GetSlotInfo", || {
        let emu = emu()?;
        // SAFETY: checked by `out`.
        let out = unsafe { abi::out(pInfo) }?;
        let i = emu.slot_info(slotID)?;
        let mut flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
        if i.token_present {
            flags |= CKF_TOKEN_PRESENT;
        }
        *out = CK_SLOT_INFO {
            slotDescription: padded(&i.description),
            manufacturerID: padded(&i.manufacturer),
            flags,
            hardwareVersion: CK_VERSION {
                major: i.hardware_version.0,
                minor: i.hardware_version.1,
            },
            firmwareVersion: CK_VERSION {
                major: i.firmware_version.0,
                minor: i.firmware_version.1,
            },
        };
        Ok(())
    })
}

/// C_GetTokenInfo: PIN state flags as §5.5 Table 8 lists them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_TOKEN_INFO) -> CK_RV {
    guard("C_GetTokenInfo", || {
        let emu = emu()?;
        // SAFETY: checked by `out`.
        let out = unsafe { abi::out(pInfo) }?;
        let t = emu.token_info(slotID)?;
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED;
        let set = |flags: &mut CK_FLAGS, on: bool, f: CK_FLAGS| {
            if on {
                *flags |= f;
            }
        };
        set(&mut flags, t.initialized, CKF_TOKEN_INITIALIZED);
        set(&mut flags, t.user_pin.initialized, CKF_USER_PIN_INITIALIZED);
        set(
            &mut flags,
            t.protected_authentication_path,
            CKF_PROTECTED_AUTHENTICATION_PATH,
        );
        set(&mut flags, t.user_pin.count_low, CKF_USER_PIN_COUNT_LOW);
        set(&mut flags, t.user_pin.final_try, CKF_USER_PIN_FINAL_TRY);
        set(&mut flags, t.user_pin.locked, CKF_USER_PIN_LOCKED);
        set(
            &mut flags,
            t.user_pin.to_be_changed,
            CKF_USER_PIN_TO_BE_CHANGED,
        );
        set(&mut flags, t.so_pin.count_low, CKF_SO_PIN_COUNT_LOW);
        set(&mut flags, t.so_pin.final_try, CKF_SO_PIN_FINAL_TRY);
        set(&mut flags, t.so_pin.locked, CKF_SO_PIN_LOCKED);
        set(&mut flags, t.so_pin.to_be_changed, CKF_SO_PIN_TO_BE_CHANGED);
        let v = |(major, minor): (u8, u8)| CK_VERSION { major, minor };
        *out = CK_TOKEN_INFO {
            label: padded(&t.label),
            manufacturerID: padded(&t.manufacturer),
            model: padded(&t.model),
            serialNumber: padded(&t.serial),
            flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: t.sessions,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: t.rw_sessions,
            ulMaxPinLen: t.max_pin_len,
            ulMinPinLen: t.min_pin_len,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: v(t.hardware_version),
            firmwareVersion: v(t.firmware_version),
            utcTime: [b' '; 16],
        };
        Ok(())
    })
}

/// C_GetMechanismList, with the output-length protocol on the count.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: *mut CK_MECHANISM_TYPE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetMechanismList", || {
        let emu = emu()?;
        let mechs = emu.slot_mechanisms(slotID)?;
        // SAFETY: checked by `out`.
        let count = unsafe { abi::out(pulCount) }?;
        let n = mechs.len() as CK_ULONG;
        if pMechanismList.is_null() {
            *count = n;
            return Ok(());
        }
        if *count < n {
            *count = n;
            return Err(Rv(CKR_BUFFER_TOO_SMALL));
        }
        for (i, m) in mechs.iter().enumerate() {
            // SAFETY: room for `n` entries was checked above.
            unsafe { pMechanismList.add(i).write(m.mechanism) };
        }
        *count = n;
        Ok(())
    })
}

/// C_GetMechanismInfo.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard("C_GetMechanismInfo", || {
        let emu = emu()?;
        let mechs = emu.slot_mechanisms(slotID)?;
        // SAFETY: checked by `out`.
        let out = unsafe { abi::out(pInfo) }?;
        let m = mechs
            .into_iter()
            .find(|m| m.mechanism == type_)
            .ok_or(Rv(CKR_MECHANISM_INVALID))?;
        *out = CK_MECHANISM_INFO {
            ulMinKeySize: m.min_key_bits,
            ulMaxKeySize: m.max_key_bits,
            flags: m.flags,
        };
        Ok(())
    })
}

/// C_InitToken.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    pLabel: *mut CK_UTF8CHAR,
) -> CK_RV {
    guard("C_InitToken", || {
        let emu = emu()?;
        // SAFETY: forwarded pointer contract.
        let pin = unsafe { pin_arg(pPin, ulPinLen) }?.ok_or(BAD)?;
        if pLabel.is_null() {
            return Err(BAD);
        }
        // SAFETY: the label is a 32-byte blank-padded field (§5.5).
        let label = unsafe { std::slice::from_raw_parts(pLabel, 32) };
        emu.init_token(slotID, &pin, &unpad(label))?;
        Ok(())
    })
}

/// C_InitPIN.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    guard("C_InitPIN", || {
        let emu = emu()?;
        // SAFETY: forwarded pointer contract.
        let pin = unsafe { pin_arg(pPin, ulPinLen) }?;
        emu.init_pin(sess(hSession), pin.as_ref())?;
        Ok(())
    })
}

/// C_SetPIN.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: *mut CK_UTF8CHAR,
    ulOldLen: CK_ULONG,
    pNewPin: *mut CK_UTF8CHAR,
    ulNewLen: CK_ULONG,
) -> CK_RV {
    guard("C_SetPIN", || {
        let emu = emu()?;
        // SAFETY: forwarded pointer contracts.
        let old = unsafe { pin_arg(pOldPin, ulOldLen) }?;
        // SAFETY: as above.
        let new = unsafe { pin_arg(pNewPin, ulNewLen) }?;
        emu.set_pin(sess(hSession), old.as_ref(), new.as_ref())?;
        Ok(())
    })
}

// ---- §5.6 session management --------------------------------------------------------------------

/// C_OpenSession. Notification callbacks are accepted and never called (the token has no
/// events to notify, §5.16).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    _pApplication: *mut c_void,
    _Notify: CK_NOTIFY,
    phSession: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard("C_OpenSession", || {
        let emu = emu()?;
        // SAFETY: checked by `out`.
        let out = unsafe { abi::out(phSession) }?;
        let h = emu.open_session(
            slotID,
            flags & CKF_RW_SESSION != 0,
            flags & CKF_SERIAL_SESSION != 0,
        )?;
        *out = h.0;
        Ok(())
    })
}

/// C_CloseSession.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CloseSession", || {
        Ok(emu()?.close_session(sess(hSession))?)
    })
}

/// C_CloseAllSessions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    guard("C_CloseAllSessions", || {
        Ok(emu()?.close_all_sessions(slotID)?)
    })
}

/// C_GetSessionInfo.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: *mut CK_SESSION_INFO,
) -> CK_RV {
    guard("C_GetSessionInfo", || {
        let emu = emu()?;
        // SAFETY: checked by `out`.
        let out = unsafe { abi::out(pInfo) }?;
        let i = emu.session_info(sess(hSession))?;
        *out = CK_SESSION_INFO {
            slotID: i.slot,
            state: match i.state {
                SessionState::RoPublic => CKS_RO_PUBLIC_SESSION,
                SessionState::RoUser => CKS_RO_USER_FUNCTIONS,
                SessionState::RwPublic => CKS_RW_PUBLIC_SESSION,
                SessionState::RwUser => CKS_RW_USER_FUNCTIONS,
                SessionState::RwSo => CKS_RW_SO_FUNCTIONS,
            },
            flags: CKF_SERIAL_SESSION | if i.read_write { CKF_RW_SESSION } else { 0 },
            ulDeviceError: 0,
        };
        Ok(())
    })
}

/// C_Login.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    guard("C_Login", || {
        let emu = emu()?;
        let user = match userType {
            CKU_SO => UserType::So,
            CKU_USER => UserType::User,
            CKU_CONTEXT_SPECIFIC => UserType::ContextSpecific,
            _ => return Err(Rv(CKR_USER_TYPE_INVALID)),
        };
        // SAFETY: forwarded pointer contract.
        let pin = unsafe { pin_arg(pPin, ulPinLen) }?;
        emu.login(sess(hSession), user, pin.as_ref())?;
        Ok(())
    })
}

/// C_Logout.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_Logout", || Ok(emu()?.logout(sess(hSession))?))
}

// ---- §5.7 object management ---------------------------------------------------------------------

/// C_CreateObject.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_CreateObject", || {
        let emu = emu()?;
        // SAFETY: checked by `out` / `template`.
        let out = unsafe { abi::out(phObject) }?;
        // SAFETY: as above.
        let t = unsafe { abi::template(pTemplate, ulCount) }?;
        *out = emu.create_object(sess(hSession), &t)?.0;
        Ok(())
    })
}

/// C_CopyObject.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phNewObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_CopyObject", || {
        let emu = emu()?;
        // SAFETY: checked by `out` / `template`.
        let out = unsafe { abi::out(phNewObject) }?;
        // SAFETY: as above.
        let t = unsafe { abi::template(pTemplate, ulCount) }?;
        *out = emu.copy_object(sess(hSession), obj(hObject), &t)?.0;
        Ok(())
    })
}

/// C_DestroyObject.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_DestroyObject", || {
        Ok(emu()?.destroy_object(sess(hSession), obj(hObject))?)
    })
}

/// C_GetObjectSize.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetObjectSize", || {
        let emu = emu()?;
        // SAFETY: checked by `out`.
        let out = unsafe { abi::out(pulSize) }?;
        *out = to_ulong(emu.object_size(sess(hSession), obj(hObject))?)?;
        Ok(())
    })
}

/// C_GetAttributeValue (§5.7): every attribute is processed; the call returns the last of
/// CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID or CKR_BUFFER_TOO_SMALL that applied, with
/// `ulValueLen` set to CK_UNAVAILABLE_INFORMATION for those attributes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_GetAttributeValue", || {
        let emu = emu()?;
        // SAFETY: checked by `attributes` (read), then written element by element below.
        let types: Vec<CK_ATTRIBUTE_TYPE> = unsafe { abi::attributes(pTemplate, ulCount) }?
            .iter()
            .map(|a| a.type_)
            .collect();
        let results = emu.get_attributes(sess(hSession), obj(hObject), &types)?;
        let mut rv = CKR_OK;
        for (i, r) in results.iter().enumerate() {
            // SAFETY: `i < ulCount`, and the array was checked to be non-NULL above.
            let a = unsafe { &mut *pTemplate.add(i) };
            match r {
                AttrResult::Sensitive => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_SENSITIVE;
                }
                AttrResult::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_TYPE_INVALID;
                }
                AttrResult::Value(v) => {
                    let need = to_ulong(v.len())?;
                    if a.pValue.is_null() {
                        // The `nonsense` defect plays a hostile module: an absurd length.
                        a.ulValueLen = if emu.defects().nonsense {
                            1 << 60
                        } else {
                            need
                        };
                    } else if a.ulValueLen < need {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        rv = CKR_BUFFER_TOO_SMALL;
                    } else {
                        // SAFETY: the caller's buffer holds `ulValueLen >= need` bytes.
                        unsafe {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len())
                        };
                        a.ulValueLen = need;
                    }
                }
            }
        }
        if rv == CKR_OK { Ok(()) } else { Err(Rv(rv)) }
    })
}

/// C_SetAttributeValue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_SetAttributeValue", || {
        let emu = emu()?;
        // SAFETY: checked by `template`.
        let t = unsafe { abi::template(pTemplate, ulCount) }?;
        Ok(emu.set_attributes(sess(hSession), obj(hObject), &t)?)
    })
}

/// C_FindObjectsInit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_FindObjectsInit", || {
        let emu = emu()?;
        // SAFETY: checked by `template`.
        let t = unsafe { abi::template(pTemplate, ulCount) }?;
        Ok(emu.find_init(sess(hSession), &t)?)
    })
}

/// C_FindObjects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: *mut CK_OBJECT_HANDLE,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: *mut CK_ULONG,
) -> CK_RV {
    guard("C_FindObjects", || {
        let emu = emu()?;
        // SAFETY: checked by `out`.
        let count = unsafe { abi::out(pulObjectCount) }?;
        let max = abi::len(ulMaxObjectCount)?;
        if max > 0 && phObject.is_null() {
            return Err(BAD);
        }
        let found = emu.find_next(sess(hSession), max)?;
        let junk = if emu.defects().nonsense {
            0xdead_0000
        } else {
            0
        };
        for (i, h) in found.iter().enumerate() {
            // SAFETY: `found.len() <= max`, and the array holds `max` handles.
            unsafe { phObject.add(i).write(h.0 + junk) };
        }
        *count = to_ulong(found.len())?;
        Ok(())
    })
}

/// C_FindObjectsFinal.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_FindObjectsFinal", || {
        Ok(emu()?.find_final(sess(hSession))?)
    })
}

// ---- §5.10 message digesting --------------------------------------------------------------------

/// C_DigestInit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
) -> CK_RV {
    guard("C_DigestInit", || {
        let emu = emu()?;
        // SAFETY: checked by `mechanism`.
        let m = unsafe { abi::mechanism(pMechanism) }?;
        Ok(emu.digest_init(sess(hSession), &m)?)
    })
}

/// C_Digest: a length query or a short buffer leaves the operation active (§5.2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Digest(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Digest", || {
        let emu = emu()?;
        let h = sess(hSession);
        ending(&emu, h, Operation::Digest, || {
            // SAFETY: checked by `input`.
            let data = unsafe { abi::input(pData, ulDataLen) }?;
            // SAFETY: forwarded contract of the output buffer.
            unsafe {
                finish_output(
                    &emu,
                    pDigest,
                    pulDigestLen,
                    emu.digest_len(h, Part::Single)?,
                    || emu.digest(h, data),
                )
            }
        })
    })
}

/// C_DigestUpdate.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard("C_DigestUpdate", || {
        let emu = emu()?;
        let h = sess(hSession);
        ending(&emu, h, Operation::Digest, || {
            // SAFETY: checked by `input`.
            let data = unsafe { abi::input(pPart, ulPartLen) }?;
            Ok(emu.digest_update(h, data)?)
        })
    })
}

/// C_DigestFinal.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DigestFinal(
    hSession: CK_SESSION_HANDLE,
    pDigest: *mut CK_BYTE,
    pulDigestLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_DigestFinal", || {
        let emu = emu()?;
        let h = sess(hSession);
        ending(&emu, h, Operation::Digest, || {
            // SAFETY: forwarded contract of the output buffer.
            unsafe {
                finish_output(
                    &emu,
                    pDigest,
                    pulDigestLen,
                    emu.digest_len(h, Part::Multi)?,
                    || emu.digest_final(h),
                )
            }
        })
    })
}

/// Runs a digest, sign or verify call; if it fails other than by `CKR_BUFFER_TOO_SMALL`, the
/// operation ends. PKCS#11 2.40 §5.10–§5.12: such a call "always terminates the active operation
/// unless it returns CKR_BUFFER_TOO_SMALL or is a successful call to determine the length" — bad
/// arguments included, which the core never sees.
fn ending(
    emu: &Emulator,
    h: SessionHandle,
    op: Operation,
    body: impl FnOnce() -> Result<(), Rv>,
) -> Result<(), Rv> {
    let r = body();
    if matches!(&r, Err(rv) if rv.0 != CKR_BUFFER_TOO_SMALL)
        && !emu.defects().failed_call_keeps_operation
    {
        emu.end_operation(h, op).ok();
    }
    r
}

/// Runs an operation that produces output only when the caller's buffer fits it, so a length
/// query or a short buffer leaves the operation active (§5.2).
///
/// # Safety
/// As for [`abi::write_output`].
unsafe fn finish_output(
    emu: &Emulator,
    buf: *mut CK_BYTE,
    len_p: *mut CK_ULONG,
    need: usize,
    run: impl FnOnce() -> kilt_emulator::Result<Vec<u8>>,
) -> Result<(), Rv> {
    // SAFETY: forwarded contract.
    match unsafe { abi::output_room(buf, len_p, need) }? {
        // The `length-protocol` defect: the query runs and so ends the operation.
        OutputRoom::LengthOnly if emu.defects().length_protocol => {
            run().map(drop).map_err(Rv::from)
        }
        OutputRoom::LengthOnly => Ok(()),
        OutputRoom::TooSmall => Err(Rv(CKR_BUFFER_TOO_SMALL)),
        OutputRoom::Fits => {
            let data = run()?;
            // SAFETY: forwarded contract; the buffer holds at least `need >= data.len()` bytes.
            unsafe { abi::write_output(buf, len_p, &data) }
        }
    }
}

// ---- §5.11 signing, §5.12 verifying -------------------------------------------------------------

/// C_SignInit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SignInit", || {
        let emu = emu()?;
        // SAFETY: checked by `mechanism`.
        let m = unsafe { abi::mechanism(pMechanism) }?;
        Ok(emu.sign_init(sess(hSession), &m, obj(hKey))?)
    })
}

/// C_Sign: r ‖ s, 64 bytes; a length query or a short buffer leaves the operation active.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Sign(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Sign", || {
        let emu = emu()?;
        let h = sess(hSession);
        ending(&emu, h, Operation::Sign, || {
            // SAFETY: checked by `input`.
            let data = unsafe { abi::input(pData, ulDataLen) }?;
            // SAFETY: forwarded contract of the output buffer.
            unsafe {
                finish_output(
                    &emu,
                    pSignature,
                    pulSignatureLen,
                    emu.sign_len(h, Part::Single)?,
                    || emu.sign(h, data),
                )
            }
        })
    })
}

/// C_SignUpdate.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard("C_SignUpdate", || {
        let emu = emu()?;
        let h = sess(hSession);
        ending(&emu, h, Operation::Sign, || {
            // SAFETY: checked by `input`.
            let data = unsafe { abi::input(pPart, ulPartLen) }?;
            Ok(emu.sign_update(h, data)?)
        })
    })
}

/// C_SignFinal.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    guard("C_SignFinal", || {
        let emu = emu()?;
        let h = sess(hSession);
        ending(&emu, h, Operation::Sign, || {
            // SAFETY: forwarded contract of the output buffer.
            unsafe {
                finish_output(
                    &emu,
                    pSignature,
                    pulSignatureLen,
                    emu.sign_len(h, Part::Multi)?,
                    || emu.sign_final(h),
                )
            }
        })
    })
}

/// C_VerifyInit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_VerifyInit", || {
        let emu = emu()?;
        // SAFETY: checked by `mechanism`.
        let m = unsafe { abi::mechanism(pMechanism) }?;
        Ok(emu.verify_init(sess(hSession), &m, obj(hKey))?)
    })
}

/// C_Verify.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_Verify", || {
        let emu = emu()?;
        let h = sess(hSession);
        ending(&emu, h, Operation::Verify, || {
            // SAFETY: checked by `input`.
            let data = unsafe { abi::input(pData, ulDataLen) }?;
            // SAFETY: as above.
            let sig = unsafe { abi::input(pSignature, ulSignatureLen) }?;
            Ok(emu.verify(h, data, sig)?)
        })
    })
}

/// C_VerifyUpdate.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyUpdate", || {
        let emu = emu()?;
        let h = sess(hSession);
        ending(&emu, h, Operation::Verify, || {
            // SAFETY: checked by `input`.
            let data = unsafe { abi::input(pPart, ulPartLen) }?;
            Ok(emu.verify_update(h, data)?)
        })
    })
}

/// C_VerifyFinal.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyFinal", || {
        let emu = emu()?;
        let h = sess(hSession);
        ending(&emu, h, Operation::Verify, || {
            // SAFETY: checked by `input`.
            let sig = unsafe { abi::input(pSignature, ulSignatureLen) }?;
            Ok(emu.verify_final(h, sig)?)
        })
    })
}

// ---- §5.14 key management -----------------------------------------------------------------------

/// C_GenerateKeyPair (CKM_EC_KEY_PAIR_GEN, P-256).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pPublicKeyTemplate: *mut CK_ATTRIBUTE,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: *mut CK_ATTRIBUTE,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: *mut CK_OBJECT_HANDLE,
    phPrivateKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_GenerateKeyPair", || {
        let emu = emu()?;
        // SAFETY: every pointer is checked by its helper.
        let (m, public, private, pub_out, priv_out) = unsafe {
            (
                abi::mechanism(pMechanism)?,
                abi::template(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
                abi::template(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
                abi::out(phPublicKey)?,
                abi::out(phPrivateKey)?,
            )
        };
        let (p, k) = emu.generate_key_pair(sess(hSession), &m, &public, &private)?;
        *pub_out = p.0;
        *priv_out = k.0;
        Ok(())
    })
}

// ---- §5.15 random numbers -----------------------------------------------------------------------

/// C_SeedRandom.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    pSeed: *mut CK_BYTE,
    ulSeedLen: CK_ULONG,
) -> CK_RV {
    guard("C_SeedRandom", || {
        let emu = emu()?;
        // SAFETY: checked by `input`.
        unsafe { abi::input(pSeed, ulSeedLen) }?;
        Ok(emu.seed_random(sess(hSession))?)
    })
}

/// C_GenerateRandom.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: *mut CK_BYTE,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    guard("C_GenerateRandom", || {
        let emu = emu()?;
        let n = abi::len(ulRandomLen)?;
        if n > 0 && RandomData.is_null() {
            return Err(BAD);
        }
        let mut buf = vec![0u8; n];
        emu.generate_random(sess(hSession), &mut buf)?;
        if n > 0 {
            // SAFETY: non-NULL with `n` writable bytes (caller's contract).
            unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), RandomData, n) };
        }
        Ok(())
    })
}

// ---- §5.16 parallel function management, §5.17 slot events --------------------------------------

/// C_GetFunctionStatus: legacy, always CKR_FUNCTION_NOT_PARALLEL (§5.16).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_GetFunctionStatus", || {
        emu()?.session_info(sess(hSession))?;
        Err(Rv(CKR_FUNCTION_NOT_PARALLEL))
    })
}

/// C_CancelFunction: legacy, always CKR_FUNCTION_NOT_PARALLEL (§5.16).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CancelFunction(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CancelFunction", || {
        emu()?.session_info(sess(hSession))?;
        Err(Rv(CKR_FUNCTION_NOT_PARALLEL))
    })
}

/// C_WaitForSlotEvent: removal and insertion of the emulated token; CKF_DONT_BLOCK answers
/// CKR_NO_EVENT at once; a blocked call returns CKR_CRYPTOKI_NOT_INITIALIZED when C_Finalize runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    pSlot: *mut CK_SLOT_ID,
    pReserved: *mut c_void,
) -> CK_RV {
    guard("C_WaitForSlotEvent", || {
        if !pReserved.is_null() {
            return Err(BAD);
        }
        let emu = emu()?;
        // SAFETY: checked by `out`.
        let out = unsafe { abi::out(pSlot) }?;
        match emu.wait_for_slot_event(flags & CKF_DONT_BLOCK == 0)? {
            Some(slot) => {
                *out = slot;
                Ok(())
            }
            None => Err(Rv(CKR_NO_EVENT)),
        }
    })
}

// ---- PKCS#11 3.0 additions ----------------------------------------------------------------------

/// C_LoginUser (3.0): the token has no named users; the name is ignored as §5.6 allows.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_LoginUser(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    _pUsername: *mut CK_UTF8CHAR,
    _ulUsernameLen: CK_ULONG,
) -> CK_RV {
    // SAFETY: same contract as C_Login.
    unsafe { C_Login(hSession, userType, pPin, ulPinLen) }
}

/// C_SessionCancel (3.0 §5.6): ends the session's active operations that `flags` names
/// (CKF_DIGEST, CKF_SIGN, CKF_VERIFY, CKF_FIND_OBJECTS); the token has no others, so any other
/// flag names nothing active and is not an error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    guard("C_SessionCancel", || {
        let emu = emu()?;
        let h = sess(hSession);
        // An unknown session is CKR_SESSION_HANDLE_INVALID even when no flag is set.
        emu.session_info(h)?;
        for (flag, op) in [
            (CKF_DIGEST, Operation::Digest),
            (CKF_SIGN, Operation::Sign),
            (CKF_VERIFY, Operation::Verify),
            (CKF_FIND_OBJECTS, Operation::Find),
        ] {
            if flags & flag != 0 {
                emu.end_operation(h, op)?;
            }
        }
        Ok(())
    })
}

/// Exports that the device does not offer: they answer CKR_FUNCTION_NOT_SUPPORTED (after the
/// usual "initialised?" check) and touch no argument.
macro_rules! not_supported {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[doc = concat!(stringify!($name), ": not offered by the device.")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            $(let _ = $arg;)*
            guard(stringify!($name), || {
                emu()?;
                Err(Rv(CKR_FUNCTION_NOT_SUPPORTED))
            })
        }
    )*};
}

type H = CK_SESSION_HANDLE;
type O = CK_OBJECT_HANDLE;
type B = *mut CK_BYTE;
type L = CK_ULONG;
type LP = *mut CK_ULONG;
type M = *mut CK_MECHANISM;
type A = *mut CK_ATTRIBUTE;
type OP = *mut CK_OBJECT_HANDLE;
type V = *mut c_void;

not_supported! {
    C_GetOperationState(h: H, s: B, l: LP);
    C_SetOperationState(h: H, s: B, l: L, e: O, a: O);
    C_EncryptInit(h: H, m: M, k: O);
    C_Encrypt(h: H, d: B, l: L, o: B, ol: LP);
    C_EncryptUpdate(h: H, d: B, l: L, o: B, ol: LP);
    C_EncryptFinal(h: H, o: B, ol: LP);
    C_DecryptInit(h: H, m: M, k: O);
    C_Decrypt(h: H, d: B, l: L, o: B, ol: LP);
    C_DecryptUpdate(h: H, d: B, l: L, o: B, ol: LP);
    C_DecryptFinal(h: H, o: B, ol: LP);
    C_DigestKey(h: H, k: O);
    C_SignRecoverInit(h: H, m: M, k: O);
    C_SignRecover(h: H, d: B, l: L, o: B, ol: LP);
    C_VerifyRecoverInit(h: H, m: M, k: O);
    C_VerifyRecover(h: H, d: B, l: L, o: B, ol: LP);
    C_DigestEncryptUpdate(h: H, d: B, l: L, o: B, ol: LP);
    C_DecryptDigestUpdate(h: H, d: B, l: L, o: B, ol: LP);
    C_SignEncryptUpdate(h: H, d: B, l: L, o: B, ol: LP);
    C_DecryptVerifyUpdate(h: H, d: B, l: L, o: B, ol: LP);
    C_GenerateKey(h: H, m: M, t: A, c: L, k: OP);
    C_WrapKey(h: H, m: M, w: O, k: O, o: B, ol: LP);
    C_UnwrapKey(h: H, m: M, u: O, w: B, wl: L, t: A, c: L, k: OP);
    C_DeriveKey(h: H, m: M, b: O, t: A, c: L, k: OP);
    C_MessageEncryptInit(h: H, m: M, k: O);
    C_EncryptMessage(h: H, p: V, pl: L, a: B, al: L, d: B, dl: L, o: B, ol: LP);
    C_EncryptMessageBegin(h: H, p: V, pl: L, a: B, al: L);
    C_EncryptMessageNext(h: H, p: V, pl: L, d: B, dl: L, o: B, ol: LP, f: CK_FLAGS);
    C_MessageEncryptFinal(h: H);
    C_MessageDecryptInit(h: H, m: M, k: O);
    C_DecryptMessage(h: H, p: V, pl: L, a: B, al: L, d: B, dl: L, o: B, ol: LP);
    C_DecryptMessageBegin(h: H, p: V, pl: L, a: B, al: L);
    C_DecryptMessageNext(h: H, p: V, pl: L, d: B, dl: L, o: B, ol: LP, f: CK_FLAGS);
    C_MessageDecryptFinal(h: H);
    C_MessageSignInit(h: H, m: M, k: O);
    C_SignMessage(h: H, p: V, pl: L, d: B, dl: L, o: B, ol: LP);
    C_SignMessageBegin(h: H, p: V, pl: L);
    C_SignMessageNext(h: H, p: V, pl: L, d: B, dl: L, o: B, ol: LP);
    C_MessageSignFinal(h: H);
    C_MessageVerifyInit(h: H, m: M, k: O);
    C_VerifyMessage(h: H, p: V, pl: L, d: B, dl: L, s: B, sl: L);
    C_VerifyMessageBegin(h: H, p: V, pl: L);
    C_VerifyMessageNext(h: H, p: V, pl: L, d: B, dl: L, s: B, sl: L);
    C_MessageVerifyFinal(h: H);
}

macro_rules! function_list {
    ($ty:ident, $major:expr, $minor:expr, $get_info:ident, [$($extra:ident),*]) => {
        $ty {
            version: CK_VERSION { major: $major, minor: $minor },
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some($get_info),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: Some($extra),)*
        }
    };
}

/// The PKCS#11 2.40 function list.
pub static FUNCTION_LIST: CK_FUNCTION_LIST = function_list!(CK_FUNCTION_LIST, 2, 40, C_GetInfo, []);

/// The PKCS#11 3.0 function list.
pub static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = function_list!(
    CK_FUNCTION_LIST_3_0,
    3,
    0,
    C_GetInfo_3_0,
    [
        C_GetInterfaceList,
        C_GetInterface,
        C_LoginUser,
        C_SessionCancel,
        C_MessageEncryptInit,
        C_EncryptMessage,
        C_EncryptMessageBegin,
        C_EncryptMessageNext,
        C_MessageEncryptFinal,
        C_MessageDecryptInit,
        C_DecryptMessage,
        C_DecryptMessageBegin,
        C_DecryptMessageNext,
        C_MessageDecryptFinal,
        C_MessageSignInit,
        C_SignMessage,
        C_SignMessageBegin,
        C_SignMessageNext,
        C_MessageSignFinal,
        C_MessageVerifyInit,
        C_VerifyMessage,
        C_VerifyMessageBegin,
        C_VerifyMessageNext,
        C_MessageVerifyFinal
    ]
);
