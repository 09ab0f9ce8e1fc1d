//! Cases made of raw calls (see [`crate::raw`]): the library's life cycle before and around
//! `C_Initialize`, the argument checks of every function (closed sessions, destroyed objects,
//! NULL pointers, unknown slots), and the output-length protocol of §5.2 in both directions.
//! Sections are PKCS#11 2.40 unless marked 3.0.

use crate::cases::{Case, Check, R};
use crate::raw::{Attr, Buf, Init, Mech, Op, Raw, name};
use crate::{Ctx, Group};
use cryptoki_sys::*;
use sha2::Digest;

/// Fails unless `got` is one of `want`.
pub(crate) fn expect(what: &str, got: CK_RV, want: &[CK_RV]) -> R {
    ensure!(
        want.contains(&got),
        "{what} returned {}, want {}",
        name(got),
        want.iter()
            .map(|w| name(*w))
            .collect::<Vec<_>>()
            .join(" or ")
    );
    Ok(())
}

/// Fails with the call's name unless it returned `CKR_OK`.
pub(crate) fn ok(what: &str, got: CK_RV) -> R {
    expect(what, got, &[CKR_OK])
}

pub(crate) fn ul(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub(crate) fn yes() -> Vec<u8> {
    vec![CK_TRUE]
}

pub(crate) fn no() -> Vec<u8> {
    vec![CK_FALSE]
}

pub(crate) const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A session the suite opened raw; closed when dropped.
pub(crate) struct S<'a> {
    pub raw: &'a Raw,
    pub h: CK_SESSION_HANDLE,
}

impl Drop for S<'_> {
    fn drop(&mut self) {
        self.raw.close_session(self.h);
    }
}

/// Opens a raw session on the token under test.
pub(crate) fn open(ctx: &Ctx, rw: bool) -> Result<S<'_>, Check> {
    let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
    let (rv, h) = ctx.raw.open_session(ctx.slot.id(), flags, false);
    ok("C_OpenSession", rv)?;
    Ok(S { raw: &ctx.raw, h })
}

/// A raw session with the user logged in.
pub(crate) fn user(ctx: &Ctx, rw: bool) -> Result<S<'_>, Check> {
    let s = open(ctx, rw)?;
    let rv = ctx
        .raw
        .login(s.h, CKU_USER, Some(ctx.options.user_pin.as_bytes()));
    expect("C_Login", rv, &[CKR_OK, CKR_USER_ALREADY_LOGGED_IN])?;
    Ok(s)
}

/// A public session data object (`label` given).
pub(crate) fn data_object(s: &S, label: &[u8]) -> Result<CK_OBJECT_HANDLE, Check> {
    public_data(s.raw, s.h, label, false).map_err(Check::Fail)
}

/// A public data object (a token object if `token`) holding "kilt"; a forked child uses it too.
pub(crate) fn public_data(
    raw: &Raw,
    h: CK_SESSION_HANDLE,
    label: &[u8],
    token: bool,
) -> Result<CK_OBJECT_HANDLE, String> {
    let (rv, o) = raw.create_object(
        h,
        Some(&[
            (CKA_CLASS, ul(CKO_DATA)),
            (CKA_TOKEN, if token { yes() } else { no() }),
            (CKA_PRIVATE, no()),
            (CKA_LABEL, label.to_vec()),
            (CKA_VALUE, b"kilt".to_vec()),
        ]),
        false,
    );
    if rv == CKR_OK {
        Ok(o)
    } else {
        Err(format!("C_CreateObject returned {}", name(rv)))
    }
}

/// The templates of a P-256 session pair.
pub(crate) fn pair_templates(sign: bool) -> (Vec<Attr>, Vec<Attr>) {
    (
        vec![
            (CKA_TOKEN, no()),
            (CKA_EC_PARAMS, P256_OID.to_vec()),
            (CKA_VERIFY, yes()),
        ],
        vec![
            (CKA_TOKEN, no()),
            (CKA_SIGN, if sign { yes() } else { no() }),
            (CKA_SENSITIVE, yes()),
        ],
    )
}

/// A P-256 session key pair (public, private), made raw in a logged-in session.
pub(crate) fn pair(s: &S) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), Check> {
    let (pt, st) = pair_templates(true);
    let (rv, a, b) = s
        .raw
        .generate_key_pair(s.h, &Mech::new(CKM_EC_KEY_PAIR_GEN), &pt, &st, false);
    ok("C_GenerateKeyPair", rv)?;
    Ok((a, b))
}

/// The token's mechanisms (length query, then the list).
pub(crate) fn mechanisms(ctx: &Ctx) -> Vec<CK_MECHANISM_TYPE> {
    let (_, n, _) = ctx.raw.mechanism_list(ctx.slot.id(), None, false);
    // A hostile count is capped, never allocated.
    let (_, _, list) = ctx
        .raw
        .mechanism_list(ctx.slot.id(), Some((n as usize).min(4096)), false);
    list
}

/// The module's slots (length query, then the list).
pub(crate) fn slots(ctx: &Ctx, present: bool) -> Vec<CK_SLOT_ID> {
    let (_, n, _) = ctx.raw.slot_list(present, None, false);
    let (_, _, list) = ctx
        .raw
        .slot_list(present, Some((n as usize).min(65536)), false);
    list
}

/// Skips unless the token lists `m`.
pub(crate) fn needs(ctx: &Ctx, m: CK_MECHANISM_TYPE) -> R {
    if mechanisms(ctx).contains(&m) {
        Ok(())
    } else {
        Err(Check::Skip(format!(
            "the token does not advertise {}",
            cryptoki::mechanism::MechanismType::try_from(m)
                .map(|m| m.to_string())
                .unwrap_or(format!("0x{m:x}"))
        )))
    }
}

// ---- the library, before and around C_Initialize (run before the other cases) ---------------

fn before_init(raw: &Raw, what: &str, f: fn(&Raw) -> CK_RV) -> R {
    expect(
        &format!("{what} before C_Initialize"),
        f(raw),
        &[CKR_CRYPTOKI_NOT_INITIALIZED],
    )
}

/// Runs `f` with the library initialised, finalising it afterwards whatever happened.
fn initialised(raw: &Raw, f: impl FnOnce() -> R) -> R {
    ok("C_Initialize", raw.initialize(Init::Null))?;
    let r = f();
    raw.finalize(false);
    r
}

fn function_list_null(raw: &Raw) -> R {
    expect(
        "C_GetFunctionList(NULL)",
        raw.function_list(true).0,
        &[CKR_ARGUMENTS_BAD],
    )
}

fn function_list_version(raw: &Raw) -> R {
    let (rv, v) = raw.function_list(false);
    ok("C_GetFunctionList", rv)?;
    ensure!(
        v.is_some_and(|v| v.0 == 2),
        "the CK_FUNCTION_LIST says version {v:?}: a 2.x list must say 2.x (3.0 §5.4: 3.0 comes through C_GetInterface)"
    );
    Ok(())
}

fn initialize_reserved(raw: &Raw) -> R {
    let rv = raw.initialize(Init::Reserved);
    if rv == CKR_OK {
        raw.finalize(false);
    }
    expect("C_Initialize with pReserved set", rv, &[CKR_ARGUMENTS_BAD])
}

fn initialize_some_mutexes(raw: &Raw) -> R {
    let rv = raw.initialize(Init::SomeMutexFunctions);
    if rv == CKR_OK {
        raw.finalize(false);
    }
    expect(
        "C_Initialize with only CreateMutex",
        rv,
        &[CKR_ARGUMENTS_BAD],
    )
}

fn initialize_own_mutexes(raw: &Raw) -> R {
    let rv = raw.initialize(Init::OwnMutexes);
    if rv == CKR_OK {
        raw.finalize(false);
    }
    // §5.4 case 2: use the application's functions, or say it cannot.
    expect(
        "C_Initialize with mutex functions and no CKF_OS_LOCKING_OK",
        rv,
        &[CKR_OK, CKR_CANT_LOCK],
    )
}

fn initialize_twice(raw: &Raw) -> R {
    initialised(raw, || {
        expect(
            "a second C_Initialize",
            raw.initialize(Init::Flags(CKF_OS_LOCKING_OK)),
            &[CKR_CRYPTOKI_ALREADY_INITIALIZED],
        )
    })
}

fn finalize_reserved(raw: &Raw) -> R {
    initialised(raw, || {
        expect(
            "C_Finalize(non-NULL)",
            raw.finalize(true),
            &[CKR_ARGUMENTS_BAD],
        )?;
        ok(
            "C_GetInfo after a refused C_Finalize",
            raw.info(false, false).0,
        )
    })
}

fn finalize_twice(raw: &Raw) -> R {
    ok("C_Initialize", raw.initialize(Init::Null))?;
    ok("C_Finalize", raw.finalize(false))?;
    expect(
        "a second C_Finalize",
        raw.finalize(false),
        &[CKR_CRYPTOKI_NOT_INITIALIZED],
    )
}

fn reinitialize_forgets_sessions(raw: &Raw) -> R {
    ok("C_Initialize", raw.initialize(Init::Null))?;
    let (_, _, slots) = raw.slot_list(true, Some(16), false);
    let Some(slot) = slots.first().copied() else {
        raw.finalize(false);
        return Err(Check::Skip("no slot with a token".into()));
    };
    let (rv, h) = raw.open_session(slot, CKF_SERIAL_SESSION, false);
    raw.finalize(false);
    ok("C_OpenSession", rv)?;
    initialised(raw, || {
        expect(
            "C_GetSessionInfo of a session from before C_Finalize",
            raw.session_info(h, false).0,
            &[CKR_SESSION_HANDLE_INVALID],
        )
    })
}

fn needs_v3(raw: &Raw) -> R {
    if raw.has_v3() {
        Ok(())
    } else {
        Err(Check::Skip(
            "the module offers no PKCS#11 3.0 interface".into(),
        ))
    }
}

fn interface_list_null_count(raw: &Raw) -> R {
    needs_v3(raw)?;
    expect(
        "C_GetInterfaceList with a NULL count",
        raw.interface_list(None, true).0,
        &[CKR_ARGUMENTS_BAD],
    )
}

fn interface_list_query(raw: &Raw) -> R {
    needs_v3(raw)?;
    let (rv, n, _) = raw.interface_list(None, false);
    ok("C_GetInterfaceList(NULL list)", rv)?;
    ensure!(
        (1..=64).contains(&n),
        "the length query says {n} interfaces"
    );
    let (rv, m, _) = raw.interface_list(Some(0), false);
    expect(
        "C_GetInterfaceList with room for 0",
        rv,
        &[CKR_BUFFER_TOO_SMALL],
    )?;
    ensure!(m == n, "a short list set the count to {m}, want {n} (§5.2)");
    Ok(())
}

fn interface_list_versions(raw: &Raw) -> R {
    needs_v3(raw)?;
    let (rv, _, list) = raw.interface_list(Some(16), false);
    ok("C_GetInterfaceList", rv)?;
    ensure!(
        list.iter().any(|i| i.version.0 == 3),
        "no 3.x interface in {:?}",
        list.iter().map(|i| i.version).collect::<Vec<_>>()
    );
    Ok(())
}

fn interface_by_version(raw: &Raw) -> R {
    needs_v3(raw)?;
    let (rv, i) = raw.interface(Some(c"PKCS 11"), Some((3, 0)), false, 0);
    ok("C_GetInterface(\"PKCS 11\", 3.0)", rv)?;
    let v = i.map(|i| i.version);
    ensure!(v == Some((3, 0)), "asked for 3.0, got the list of {v:?}");
    let (rv, i) = raw.interface(None, None, false, 0);
    ok("C_GetInterface(NULL, NULL) (the default)", rv)?;
    ensure!(i.is_some(), "the default interface is NULL");
    Ok(())
}

fn interface_unknown(raw: &Raw) -> R {
    needs_v3(raw)?;
    let (rv, _) = raw.interface(Some(c"Vendor nothing"), None, false, 0);
    ensure!(rv != CKR_OK, "an unknown interface name was found");
    let (rv, _) = raw.interface(Some(c"PKCS 11"), Some((9, 9)), false, 0);
    ensure!(rv != CKR_OK, "interface version 9.9 was found");
    Ok(())
}

fn interface_null_out(raw: &Raw) -> R {
    needs_v3(raw)?;
    expect(
        "C_GetInterface with a NULL ppInterface",
        raw.interface(None, None, true, 0).0,
        &[CKR_ARGUMENTS_BAD],
    )
}

fn interface_flags(raw: &Raw) -> R {
    needs_v3(raw)?;
    let (_, _, list) = raw.interface_list(Some(16), false);
    if list.iter().any(|i| i.flags & CKF_INTERFACE_FORK_SAFE != 0) {
        return Err(Check::Skip(
            "the module offers a fork-safe interface".into(),
        ));
    }
    let (rv, _) = raw.interface(None, None, false, CKF_INTERFACE_FORK_SAFE);
    ensure!(
        rv != CKR_OK,
        "C_GetInterface(flags = CKF_INTERFACE_FORK_SAFE) found an interface although none has the flag"
    );
    Ok(())
}

fn info_versions(raw: &Raw) -> R {
    needs_v3(raw)?;
    initialised(raw, || {
        let (rv, i3) = raw.info(false, true);
        ok("C_GetInfo of the 3.0 list", rv)?;
        let v = (i3.cryptokiVersion.major, i3.cryptokiVersion.minor);
        ensure!(
            v.0 == 3,
            "C_GetInfo through the 3.0 list says cryptokiVersion {}.{} (3.0 §5.4)",
            v.0,
            v.1
        );
        let (_, i2) = raw.info(false, false);
        let l = raw.list_version();
        ensure!(
            (i2.cryptokiVersion.major, i2.cryptokiVersion.minor) == l,
            "C_GetInfo through the 2.x list says {}.{}, the list {}.{}",
            i2.cryptokiVersion.major,
            i2.cryptokiVersion.minor,
            l.0,
            l.1
        );
        Ok(())
    })
}

/// One "before C_Initialize" row.
macro_rules! before {
    ($id:literal, $fn:literal, $call:expr) => {
        case!(
            $id,
            Library,
            "§5.4, §5.1.3",
            concat!($fn, " before C_Initialize: CKR_CRYPTOKI_NOT_INITIALIZED"),
            |r: &Raw| before_init(r, $fn, $call)
        )
    };
}

/// Cases run with the library not initialised; each leaves it so.
pub fn library_cases() -> Vec<Case<Raw>> {
    vec![
        before!("before-init-get-info", "C_GetInfo", |r| r
            .info(false, false)
            .0),
        before!("before-init-get-slot-list", "C_GetSlotList", |r| r
            .slot_list(true, None, false)
            .0),
        before!("before-init-get-slot-info", "C_GetSlotInfo", |r| r
            .slot_info(0, false)
            .0),
        before!("before-init-get-token-info", "C_GetTokenInfo", |r| r
            .token_info(0, false)
            .0),
        before!(
            "before-init-get-mechanism-list",
            "C_GetMechanismList",
            |r| r.mechanism_list(0, None, false).0
        ),
        before!(
            "before-init-get-mechanism-info",
            "C_GetMechanismInfo",
            |r| r.mechanism_info(0, CKM_SHA256, false).0
        ),
        before!("before-init-open-session", "C_OpenSession", |r| r
            .open_session(0, CKF_SERIAL_SESSION, false)
            .0),
        before!("before-init-close-session", "C_CloseSession", |r| r
            .close_session(1)),
        before!(
            "before-init-close-all-sessions",
            "C_CloseAllSessions",
            |r| r.close_all_sessions(0)
        ),
        before!("before-init-get-session-info", "C_GetSessionInfo", |r| r
            .session_info(1, false)
            .0),
        before!("before-init-login", "C_Login", |r| r.login(
            1,
            CKU_USER,
            Some(b"00000000")
        )),
        before!("before-init-find-objects-init", "C_FindObjectsInit", |r| r
            .find_init(1, Some(&[]))),
        before!("before-init-digest-init", "C_DigestInit", |r| r.init(
            Op::Digest,
            1,
            Some(&Mech::new(CKM_SHA256)),
            0
        )),
        before!("before-init-generate-random", "C_GenerateRandom", |r| r
            .random(1, Some(8))
            .0),
        before!(
            "before-init-wait-for-slot-event",
            "C_WaitForSlotEvent",
            |r| r.wait_for_slot_event(CKF_DONT_BLOCK, false).0
        ),
        before!("before-init-finalize", "C_Finalize", |r| r.finalize(false)),
        case!(
            "function-list-null",
            Library,
            "§5.4 C_GetFunctionList",
            "NULL ppFunctionList: CKR_ARGUMENTS_BAD",
            function_list_null
        ),
        case!(
            "function-list-version",
            Library,
            "§5.4, 3.0 §5.4",
            "C_GetFunctionList gives a 2.x list",
            function_list_version
        ),
        case!(
            "initialize-reserved",
            Library,
            "§5.4 C_Initialize",
            "pReserved set: CKR_ARGUMENTS_BAD",
            initialize_reserved
        ),
        case!(
            "initialize-some-mutexes",
            Library,
            "§5.4 C_Initialize",
            "some mutex functions only: CKR_ARGUMENTS_BAD",
            initialize_some_mutexes
        ),
        case!(
            "initialize-own-mutexes",
            Library,
            "§5.4 C_Initialize case 2",
            "application mutexes: used or CKR_CANT_LOCK",
            initialize_own_mutexes
        ),
        case!(
            "initialize-twice",
            Library,
            "§5.4 C_Initialize",
            "second C_Initialize: CKR_CRYPTOKI_ALREADY_INITIALIZED",
            initialize_twice
        ),
        case!(
            "finalize-reserved",
            Library,
            "§5.4 C_Finalize",
            "C_Finalize(non-NULL) refused, library still up",
            finalize_reserved
        ),
        case!(
            "finalize-twice",
            Library,
            "§5.4 C_Finalize",
            "second C_Finalize: CKR_CRYPTOKI_NOT_INITIALIZED",
            finalize_twice
        ),
        case!(
            "reinitialize-forgets-sessions",
            Library,
            "§5.4 C_Finalize",
            "sessions do not survive C_Finalize",
            reinitialize_forgets_sessions
        ),
        case!(
            "interface-list-null-count",
            Pkcs11v3,
            "3.0 §5.4 C_GetInterfaceList",
            "NULL count: CKR_ARGUMENTS_BAD",
            interface_list_null_count
        ),
        case!(
            "interface-list-length",
            Pkcs11v3,
            "3.0 §5.4, §5.2",
            "length query and short list",
            interface_list_query
        ),
        case!(
            "interface-list-has-3-0",
            Pkcs11v3,
            "3.0 §5.4 C_GetInterfaceList",
            "a 3.x interface is listed",
            interface_list_versions
        ),
        case!(
            "interface-by-version",
            Pkcs11v3,
            "3.0 §5.4 C_GetInterface",
            "by name and version, and the default",
            interface_by_version
        ),
        case!(
            "interface-unknown",
            Pkcs11v3,
            "3.0 §5.4 C_GetInterface",
            "unknown name or version not found",
            interface_unknown
        ),
        case!(
            "interface-null-out",
            Pkcs11v3,
            "3.0 §5.4 C_GetInterface",
            "NULL ppInterface: CKR_ARGUMENTS_BAD",
            interface_null_out
        ),
        case!(
            "interface-flags",
            Pkcs11v3,
            "3.0 §5.4 C_GetInterface",
            "flags no interface has: not found",
            interface_flags
        ),
        case!(
            "info-version-per-interface",
            Pkcs11v3,
            "3.0 §5.4 C_GetInfo",
            "C_GetInfo says the interface's version",
            info_versions
        ),
    ]
}

// ---- argument checks after C_Initialize --------------------------------------------------------

/// A session handle that was valid and is closed now.
fn closed(ctx: &Ctx, what: &str, f: fn(&Raw, CK_SESSION_HANDLE) -> CK_RV) -> R {
    let h = open(ctx, true)?.h; // dropped: closed here
    expect(
        &format!("{what} on a closed session"),
        f(&ctx.raw, h),
        &[CKR_SESSION_HANDLE_INVALID],
    )
}

/// An object handle that was valid in this session and is destroyed now.
fn destroyed(
    ctx: &Ctx,
    what: &str,
    want: CK_RV,
    f: fn(&Raw, CK_SESSION_HANDLE, CK_OBJECT_HANDLE) -> CK_RV,
) -> R {
    let s = user(ctx, true)?;
    let o = if want == CKR_KEY_HANDLE_INVALID {
        needs(ctx, CKM_EC_KEY_PAIR_GEN)?;
        let (public, private) = pair(&s)?;
        let o = if what.starts_with("C_Sign") {
            private
        } else {
            public
        };
        ok("C_DestroyObject", ctx.raw.destroy_object(s.h, o))?;
        o
    } else {
        let o = data_object(&s, b"kilt-conformance-destroyed")?;
        ok("C_DestroyObject", ctx.raw.destroy_object(s.h, o))?;
        o
    };
    expect(
        &format!("{what} on a destroyed object"),
        f(&ctx.raw, s.h, o),
        &[want],
    )
}

/// A call with a NULL where the spec wants a pointer, in a user session with a key pair.
fn null_arg(ctx: &Ctx, what: &str, f: fn(&Ctx, &S, CK_OBJECT_HANDLE) -> CK_RV) -> R {
    let s = user(ctx, true)?;
    let key = if needs(ctx, CKM_EC_KEY_PAIR_GEN).is_ok() {
        pair(&s)?.1
    } else {
        CK_INVALID_HANDLE
    };
    expect(
        &format!("{what} with a NULL pointer"),
        f(ctx, &s, key),
        &[CKR_ARGUMENTS_BAD],
    )
}

/// A slot id no slot has.
fn bad_slot(ctx: &Ctx) -> CK_SLOT_ID {
    slots(ctx, false)
        .iter()
        .max()
        .map_or(0x1000, |m| m + 0x1000)
}

fn slot_invalid(ctx: &Ctx, what: &str, f: fn(&Raw, CK_SLOT_ID) -> CK_RV) -> R {
    let slot = bad_slot(ctx);
    expect(
        &format!("{what} on slot {slot}"),
        f(&ctx.raw, slot),
        &[CKR_SLOT_ID_INVALID],
    )
}

fn sha256() -> Mech {
    Mech::new(CKM_SHA256)
}

fn ecdsa() -> Mech {
    Mech::new(CKM_ECDSA)
}

/// One per-function argument row: `$helper(ctx, "C_Xxx", extra…, call)`.
macro_rules! row {
    ($id:literal, $fn:literal, $spec:literal, $what:expr, $helper:ident, [$($extra:expr),*], $call:expr) => {
        case!(
            $id,
            Arguments,
            $spec,
            concat!($fn, $what),
            |c: &Ctx| $helper(c, $fn, $($extra,)* $call)
        )
    };
}

macro_rules! closed {
    ($id:literal, $fn:literal, $call:expr) => {
        row!(
            $id,
            $fn,
            "§5.1.3 CKR_SESSION_HANDLE_INVALID",
            " on a closed session",
            closed,
            [],
            $call
        )
    };
}

macro_rules! destroyed {
    ($id:literal, $fn:literal, $want:ident, $call:expr) => {
        row!(
            $id,
            $fn,
            "§5.1.5 handles of destroyed objects",
            concat!(" on a destroyed object: ", stringify!($want)),
            destroyed,
            [$want],
            $call
        )
    };
}

macro_rules! null {
    ($id:literal, $fn:literal, $call:expr) => {
        row!(
            $id,
            $fn,
            "§5.1.6 CKR_ARGUMENTS_BAD",
            " with a NULL pointer",
            null_arg,
            [],
            $call
        )
    };
}

macro_rules! slot {
    ($id:literal, $fn:literal, $call:expr) => {
        row!(
            $id,
            $fn,
            "§5.1.3 CKR_SLOT_ID_INVALID",
            " on a slot that does not exist",
            slot_invalid,
            [],
            $call
        )
    };
}

/// The per-function argument rows.
pub fn argument_cases() -> Vec<Case> {
    vec![
        closed!("closed-session-close", "C_CloseSession", |r, h| r
            .close_session(h)),
        closed!("closed-session-info", "C_GetSessionInfo", |r, h| r
            .session_info(h, false)
            .0),
        closed!("closed-session-login", "C_Login", |r, h| r.login(
            h,
            CKU_USER,
            Some(b"00000000")
        )),
        closed!("closed-session-logout", "C_Logout", |r, h| r.logout(h)),
        closed!("closed-session-set-pin", "C_SetPIN", |r, h| r.set_pin(
            h,
            b"00000000",
            b"00000001"
        )),
        closed!("closed-session-init-pin", "C_InitPIN", |r, h| r
            .init_pin(h, b"00000000")),
        closed!("closed-session-create-object", "C_CreateObject", |r, h| r
            .create_object(
                h,
                Some(&[(CKA_CLASS, ul(CKO_DATA)), (CKA_TOKEN, no())]),
                false
            )
            .0),
        closed!("closed-session-copy-object", "C_CopyObject", |r, h| r
            .copy_object(h, 1, &[])
            .0),
        closed!(
            "closed-session-destroy-object",
            "C_DestroyObject",
            |r, h| r.destroy_object(h, 1)
        ),
        closed!("closed-session-object-size", "C_GetObjectSize", |r, h| r
            .object_size(h, 1, false)
            .0),
        closed!(
            "closed-session-get-attribute",
            "C_GetAttributeValue",
            |r, h| r.get_attributes(h, 1, Some(&[(CKA_CLASS, Buf::Cap(8))])).0
        ),
        closed!(
            "closed-session-set-attribute",
            "C_SetAttributeValue",
            |r, h| r.set_attributes(h, 1, &[(CKA_LABEL, b"x".to_vec())])
        ),
        closed!("closed-session-find-init", "C_FindObjectsInit", |r, h| r
            .find_init(h, Some(&[]))),
        closed!("closed-session-find", "C_FindObjects", |r, h| r
            .find(h, Some(4), false)
            .0),
        closed!("closed-session-find-final", "C_FindObjectsFinal", |r, h| r
            .find_final(h)),
        closed!("closed-session-digest-init", "C_DigestInit", |r, h| r.init(
            Op::Digest,
            h,
            Some(&sha256()),
            0
        )),
        closed!("closed-session-digest", "C_Digest", |r, h| r
            .single(Op::Digest, h, Some(b"x"), Buf::Cap(32), false)
            .rv),
        closed!("closed-session-digest-update", "C_DigestUpdate", |r, h| r
            .update(Op::Digest, h, Some(b"x"))),
        closed!("closed-session-digest-final", "C_DigestFinal", |r, h| r
            .finish(Op::Digest, h, Buf::Cap(32), false)
            .rv),
        closed!("closed-session-sign-init", "C_SignInit", |r, h| r.init(
            Op::Sign,
            h,
            Some(&ecdsa()),
            1
        )),
        closed!("closed-session-sign", "C_Sign", |r, h| r
            .single(Op::Sign, h, Some(&[1; 32]), Buf::Cap(64), false)
            .rv),
        closed!("closed-session-sign-update", "C_SignUpdate", |r, h| r
            .update(Op::Sign, h, Some(b"x"))),
        closed!("closed-session-sign-final", "C_SignFinal", |r, h| r
            .finish(Op::Sign, h, Buf::Cap(64), false)
            .rv),
        closed!("closed-session-verify-init", "C_VerifyInit", |r, h| r.init(
            Op::Verify,
            h,
            Some(&ecdsa()),
            1
        )),
        closed!("closed-session-verify", "C_Verify", |r, h| r.verify(
            h,
            Some(&[1; 32]),
            Some(&[1; 64])
        )),
        closed!("closed-session-verify-update", "C_VerifyUpdate", |r, h| r
            .update(Op::Verify, h, Some(b"x"))),
        closed!("closed-session-verify-final", "C_VerifyFinal", |r, h| r
            .verify_final(h, Some(&[1; 64]))),
        closed!(
            "closed-session-generate-key-pair",
            "C_GenerateKeyPair",
            |r, h| {
                let (pt, st) = pair_templates(true);
                r.generate_key_pair(h, &Mech::new(CKM_EC_KEY_PAIR_GEN), &pt, &st, false)
                    .0
            }
        ),
        closed!(
            "closed-session-generate-random",
            "C_GenerateRandom",
            |r, h| r.random(h, Some(8)).0
        ),
        destroyed!(
            "destroyed-object-get-attribute",
            "C_GetAttributeValue",
            CKR_OBJECT_HANDLE_INVALID,
            |r, h, o| r.get_attributes(h, o, Some(&[(CKA_CLASS, Buf::Cap(8))])).0
        ),
        destroyed!(
            "destroyed-object-set-attribute",
            "C_SetAttributeValue",
            CKR_OBJECT_HANDLE_INVALID,
            |r, h, o| r.set_attributes(h, o, &[(CKA_LABEL, b"x".to_vec())])
        ),
        destroyed!(
            "destroyed-object-destroy",
            "C_DestroyObject",
            CKR_OBJECT_HANDLE_INVALID,
            |r, h, o| r.destroy_object(h, o)
        ),
        destroyed!(
            "destroyed-object-size",
            "C_GetObjectSize",
            CKR_OBJECT_HANDLE_INVALID,
            |r, h, o| r.object_size(h, o, false).0
        ),
        destroyed!(
            "destroyed-object-copy",
            "C_CopyObject",
            CKR_OBJECT_HANDLE_INVALID,
            |r, h, o| r.copy_object(h, o, &[]).0
        ),
        destroyed!(
            "destroyed-key-sign-init",
            "C_SignInit",
            CKR_KEY_HANDLE_INVALID,
            |r, h, o| r.init(Op::Sign, h, Some(&ecdsa()), o)
        ),
        destroyed!(
            "destroyed-key-verify-init",
            "C_VerifyInit",
            CKR_KEY_HANDLE_INVALID,
            |r, h, o| r.init(Op::Verify, h, Some(&ecdsa()), o)
        ),
        null!("null-get-info", "C_GetInfo", |c, _, _| c
            .raw
            .info(true, false)
            .0),
        null!("null-get-slot-list-count", "C_GetSlotList", |c, _, _| c
            .raw
            .slot_list(true, None, true)
            .0),
        null!("null-get-slot-info", "C_GetSlotInfo", |c, _, _| c
            .raw
            .slot_info(c.slot.id(), true)
            .0),
        null!("null-get-token-info", "C_GetTokenInfo", |c, _, _| c
            .raw
            .token_info(c.slot.id(), true)
            .0),
        null!(
            "null-get-mechanism-list-count",
            "C_GetMechanismList",
            |c, _, _| c.raw.mechanism_list(c.slot.id(), None, true).0
        ),
        null!(
            "null-get-mechanism-info",
            "C_GetMechanismInfo",
            |c, _, _| c.raw.mechanism_info(c.slot.id(), CKM_SHA256, true).0
        ),
        null!("null-open-session", "C_OpenSession", |c, _, _| c
            .raw
            .open_session(c.slot.id(), CKF_SERIAL_SESSION, true)
            .0),
        null!("null-get-session-info", "C_GetSessionInfo", |c, s, _| c
            .raw
            .session_info(s.h, true)
            .0),
        null!(
            "null-create-object-template",
            "C_CreateObject",
            |c, s, _| c.raw.create_object(s.h, None, false).0
        ),
        null!("null-create-object-handle", "C_CreateObject", |c, s, _| c
            .raw
            .create_object(
                s.h,
                Some(&[
                    (CKA_CLASS, ul(CKO_DATA)),
                    (CKA_TOKEN, no()),
                    (CKA_PRIVATE, no())
                ]),
                true
            )
            .0),
        null!(
            "null-get-attribute-template",
            "C_GetAttributeValue",
            |c, s, k| c.raw.get_attributes(s.h, k, None).0
        ),
        null!("null-get-object-size", "C_GetObjectSize", |c, s, k| c
            .raw
            .object_size(s.h, k, true)
            .0),
        null!(
            "null-find-objects-init-template",
            "C_FindObjectsInit",
            |c, s, _| c.raw.find_init(s.h, None)
        ),
        null!("null-find-objects-array", "C_FindObjects", |c, s, _| {
            c.raw.find_init(s.h, Some(&[]));
            c.raw.find(s.h, None, false).0
        }),
        null!("null-find-objects-count", "C_FindObjects", |c, s, _| {
            c.raw.find_init(s.h, Some(&[]));
            c.raw.find(s.h, Some(4), true).0
        }),
        null!("null-digest-init-mechanism", "C_DigestInit", |c, s, _| c
            .raw
            .init(Op::Digest, s.h, None, 0)),
        null!("null-sign-init-mechanism", "C_SignInit", |c, s, k| c
            .raw
            .init(Op::Sign, s.h, None, k)),
        null!("null-verify-init-mechanism", "C_VerifyInit", |c, s, _| c
            .raw
            .init(Op::Verify, s.h, None, 0)),
        null!("null-digest-data", "C_Digest", |c, s, _| {
            c.raw.init(Op::Digest, s.h, Some(&sha256()), 0);
            c.raw.single(Op::Digest, s.h, None, Buf::Cap(32), false).rv
        }),
        null!("null-digest-length", "C_Digest", |c, s, _| {
            c.raw.init(Op::Digest, s.h, Some(&sha256()), 0);
            c.raw
                .single(Op::Digest, s.h, Some(b"abc"), Buf::Cap(32), true)
                .rv
        }),
        null!("null-digest-final-length", "C_DigestFinal", |c, s, _| {
            c.raw.init(Op::Digest, s.h, Some(&sha256()), 0);
            c.raw.finish(Op::Digest, s.h, Buf::Cap(32), true).rv
        }),
        null!("null-sign-data", "C_Sign", |c, s, k| {
            c.raw.init(Op::Sign, s.h, Some(&ecdsa()), k);
            c.raw.single(Op::Sign, s.h, None, Buf::Cap(64), false).rv
        }),
        null!("null-sign-length", "C_Sign", |c, s, k| {
            c.raw.init(Op::Sign, s.h, Some(&ecdsa()), k);
            c.raw
                .single(Op::Sign, s.h, Some(&[1; 32]), Buf::Cap(64), true)
                .rv
        }),
        null!("null-verify-signature", "C_Verify", |c, s, k| {
            // The public key is the private's handle minus one on most tokens; any key works
            // for the argument check, which comes first.
            c.raw
                .init(Op::Verify, s.h, Some(&ecdsa()), k.saturating_sub(1));
            c.raw.verify(s.h, Some(&[1; 32]), None)
        }),
        null!("null-generate-random", "C_GenerateRandom", |c, s, _| c
            .raw
            .random(s.h, None)
            .0),
        null!(
            "null-generate-key-pair-handles",
            "C_GenerateKeyPair",
            |c, s, _| {
                let (pt, st) = pair_templates(true);
                c.raw
                    .generate_key_pair(s.h, &Mech::new(CKM_EC_KEY_PAIR_GEN), &pt, &st, true)
                    .0
            }
        ),
        slot!("bad-slot-info", "C_GetSlotInfo", |r, s| r
            .slot_info(s, false)
            .0),
        slot!("bad-slot-token-info", "C_GetTokenInfo", |r, s| r
            .token_info(s, false)
            .0),
        slot!("bad-slot-mechanism-list", "C_GetMechanismList", |r, s| r
            .mechanism_list(s, None, false)
            .0),
        slot!("bad-slot-mechanism-info", "C_GetMechanismInfo", |r, s| r
            .mechanism_info(s, CKM_SHA256, false)
            .0),
        slot!("bad-slot-open-session", "C_OpenSession", |r, s| r
            .open_session(s, CKF_SERIAL_SESSION, false)
            .0),
        slot!(
            "bad-slot-close-all-sessions",
            "C_CloseAllSessions",
            |r, s| r.close_all_sessions(s)
        ),
        slot!("bad-slot-init-token", "C_InitToken", |r, s| r.init_token(
            s,
            b"00000000",
            &[b' '; 32]
        )),
    ]
}

// ---- §5.2 output lengths in both directions ----------------------------------------------------

fn slot_list_lengths(ctx: &Ctx) -> R {
    let (rv, n, _) = ctx.raw.slot_list(false, None, false);
    ok("C_GetSlotList(NULL list)", rv)?;
    ensure!(n >= 1, "the length query says {n} slots");
    let (rv, m, _) = ctx.raw.slot_list(false, Some(0), false);
    expect("C_GetSlotList with room for 0", rv, &[CKR_BUFFER_TOO_SMALL])?;
    ensure!(m == n, "a short list set the count to {m}, want {n}");
    let (rv, k, list) = ctx.raw.slot_list(false, Some(n as usize + 5), false);
    ok("C_GetSlotList with room to spare", rv)?;
    ensure!(
        k == n && list.len() == n as usize,
        "a large list set the count to {k}, want {n}"
    );
    Ok(())
}

fn mechanism_list_lengths(ctx: &Ctx) -> R {
    let slot = ctx.slot.id();
    let (rv, n, _) = ctx.raw.mechanism_list(slot, None, false);
    ok("C_GetMechanismList(NULL list)", rv)?;
    let (rv, m, _) = ctx.raw.mechanism_list(slot, Some(0), false);
    expect(
        "C_GetMechanismList with room for 0",
        rv,
        &[CKR_BUFFER_TOO_SMALL],
    )?;
    ensure!(m == n, "a short list set the count to {m}, want {n}");
    let (rv, k, list) = ctx.raw.mechanism_list(slot, Some(n as usize + 5), false);
    ok("C_GetMechanismList", rv)?;
    let mut dedup = list.clone();
    dedup.sort_unstable();
    dedup.dedup();
    ensure!(k == n, "a large list set the count to {k}, want {n}");
    ensure!(dedup.len() == list.len(), "the list repeats a mechanism");
    Ok(())
}

/// One output call that first gets a short buffer, then the right one.
fn short_then_right(
    ctx: &Ctx,
    op: Op,
    multi: bool,
    want_len: usize,
    room: usize,
) -> Result<Vec<u8>, Check> {
    let s = user(ctx, false)?;
    let (m, key, data): (Mech, CK_OBJECT_HANDLE, Vec<u8>) = match op {
        Op::Digest => (sha256(), 0, b"abc".to_vec()),
        _ => {
            let k = pair(&s)?.1;
            if multi {
                needs(ctx, CKM_ECDSA_SHA256)?;
                (Mech::new(CKM_ECDSA_SHA256), k, b"abc".to_vec())
            } else {
                (ecdsa(), k, vec![7; 32])
            }
        }
    };
    ok("C_*Init", ctx.raw.init(op, s.h, Some(&m), key))?;
    let call = |b| {
        if multi {
            ctx.raw.finish(op, s.h, b, false)
        } else {
            ctx.raw.single(op, s.h, Some(&data), b, false)
        }
    };
    if multi {
        ok("C_*Update", ctx.raw.update(op, s.h, Some(&data)))?;
    }
    let short = call(Buf::Cap(4));
    expect(
        "a call with a 4-byte buffer",
        short.rv,
        &[CKR_BUFFER_TOO_SMALL],
    )?;
    ensure!(
        short.len as usize == want_len,
        "a short buffer set the length to {}, want {want_len}",
        short.len
    );
    let right = call(Buf::Cap(room));
    ok(
        "the same call with room (the operation must still be active)",
        right.rv,
    )?;
    ensure!(
        !right.overrun,
        "the module claimed {} bytes in a buffer of {room}",
        right.len
    );
    ensure!(
        right.len as usize == want_len,
        "with {room} bytes of room the length says {}, want {want_len} (§5.2: the exact length)",
        right.len
    );
    Ok(right.bytes)
}

fn digest_short(ctx: &Ctx) -> R {
    let d = short_then_right(ctx, Op::Digest, false, 32, 32)?;
    ensure!(
        d == sha2::Sha256::digest(b"abc").to_vec(),
        "wrong digest after a short buffer"
    );
    Ok(())
}

fn digest_roomy(ctx: &Ctx) -> R {
    let d = short_then_right(ctx, Op::Digest, false, 32, 100)?;
    ensure!(d == sha2::Sha256::digest(b"abc").to_vec(), "wrong digest");
    Ok(())
}

fn digest_final_short(ctx: &Ctx) -> R {
    let d = short_then_right(ctx, Op::Digest, true, 32, 32)?;
    ensure!(
        d == sha2::Sha256::digest(b"abc").to_vec(),
        "wrong digest after a short buffer"
    );
    Ok(())
}

fn sign_short(ctx: &Ctx) -> R {
    needs(ctx, CKM_ECDSA)?;
    short_then_right(ctx, Op::Sign, false, 64, 64).map(drop)
}

fn sign_roomy(ctx: &Ctx) -> R {
    needs(ctx, CKM_ECDSA)?;
    short_then_right(ctx, Op::Sign, false, 64, 200).map(drop)
}

fn sign_final_short(ctx: &Ctx) -> R {
    short_then_right(ctx, Op::Sign, true, 64, 64).map(drop)
}

fn attribute_lengths(ctx: &Ctx) -> R {
    let s = open(ctx, true)?;
    let label = b"kilt-conformance-length".to_vec();
    let o = data_object(&s, &label)?;
    let (rv, q) = ctx
        .raw
        .get_attributes(s.h, o, Some(&[(CKA_LABEL, Buf::Null)]));
    ok("C_GetAttributeValue(NULL pValue)", rv)?;
    ensure!(
        q[0].len as usize == label.len(),
        "the length query says {} bytes, the label has {}",
        q[0].len,
        label.len()
    );
    let (rv, short) = ctx
        .raw
        .get_attributes(s.h, o, Some(&[(CKA_LABEL, Buf::Cap(3))]));
    expect(
        "C_GetAttributeValue with 3 bytes for the label",
        rv,
        &[CKR_BUFFER_TOO_SMALL],
    )?;
    ensure!(
        short[0].len == CK_UNAVAILABLE_INFORMATION,
        "a too-small buffer set ulValueLen to {}, want CK_UNAVAILABLE_INFORMATION (§5.7 rule 4)",
        short[0].len
    );
    let (rv, big) = ctx
        .raw
        .get_attributes(s.h, o, Some(&[(CKA_LABEL, Buf::Cap(100))]));
    ok("C_GetAttributeValue with room", rv)?;
    ensure!(
        !big[0].overrun && big[0].bytes == label,
        "read back {:?}",
        big[0].bytes
    );
    Ok(())
}

fn attribute_invalid_among_valid(ctx: &Ctx) -> R {
    let s = open(ctx, true)?;
    let o = data_object(&s, b"kilt-conformance-mixed")?;
    let (rv, out) = ctx.raw.get_attributes(
        s.h,
        o,
        Some(&[(CKA_SIGN, Buf::Cap(1)), (CKA_LABEL, Buf::Cap(64))]),
    );
    expect(
        "C_GetAttributeValue(CKA_SIGN of a data object, CKA_LABEL)",
        rv,
        &[CKR_ATTRIBUTE_TYPE_INVALID],
    )?;
    ensure!(
        out[0].len == CK_UNAVAILABLE_INFORMATION,
        "the invalid type's ulValueLen is {}, want CK_UNAVAILABLE_INFORMATION (§5.7 rule 2)",
        out[0].len
    );
    ensure!(
        out[1].bytes == b"kilt-conformance-mixed",
        "the valid attribute beside it was not filled in (§5.7: every attribute is processed)"
    );
    Ok(())
}

fn attribute_sensitive(ctx: &Ctx) -> R {
    needs(ctx, CKM_EC_KEY_PAIR_GEN)?;
    let s = user(ctx, false)?;
    let (_, private) = pair(&s)?;
    let (rv, out) = ctx.raw.get_attributes(
        s.h,
        private,
        Some(&[(CKA_VALUE, Buf::Cap(64)), (CKA_CLASS, Buf::Cap(8))]),
    );
    expect(
        "C_GetAttributeValue(CKA_VALUE of a sensitive key)",
        rv,
        &[CKR_ATTRIBUTE_SENSITIVE],
    )?;
    ensure!(
        out[0].len == CK_UNAVAILABLE_INFORMATION,
        "the sensitive value's ulValueLen is {}, want CK_UNAVAILABLE_INFORMATION (§5.7 rule 1)",
        out[0].len
    );
    ensure!(
        out[1].bytes == ul(CKO_PRIVATE_KEY),
        "CKA_CLASS beside it was not filled in"
    );
    Ok(())
}

pub fn length_cases() -> Vec<Case> {
    vec![
        case!(
            "length-slot-list",
            Arguments,
            "§5.2, §5.5 C_GetSlotList",
            "query, short and large lists",
            slot_list_lengths
        ),
        case!(
            "length-mechanism-list",
            Arguments,
            "§5.2, §5.5 C_GetMechanismList",
            "query, short and large lists",
            mechanism_list_lengths
        ),
        case!(
            "length-digest-short",
            Arguments,
            "§5.2 C_Digest",
            "short buffer: CKR_BUFFER_TOO_SMALL, operation stays",
            digest_short
        ),
        case!(
            "length-digest-roomy",
            Arguments,
            "§5.2 C_Digest",
            "large buffer: the exact length",
            digest_roomy
        ),
        case!(
            "length-digest-final-short",
            Arguments,
            "§5.2 C_DigestFinal",
            "short buffer keeps the operation",
            digest_final_short
        ),
        case!(
            "length-sign-short",
            Arguments,
            "§5.2 C_Sign",
            "short buffer: CKR_BUFFER_TOO_SMALL, operation stays",
            sign_short
        ),
        case!(
            "length-sign-roomy",
            Arguments,
            "§5.2 C_Sign",
            "large buffer: the exact length",
            sign_roomy
        ),
        case!(
            "length-sign-final-short",
            Arguments,
            "§5.2 C_SignFinal",
            "short buffer keeps the operation",
            sign_final_short
        ),
        case!(
            "length-attribute",
            Arguments,
            "§5.7 C_GetAttributeValue",
            "query, short (CK_UNAVAILABLE_INFORMATION), large",
            attribute_lengths
        ),
        case!(
            "attribute-invalid-among-valid",
            Arguments,
            "§5.7 C_GetAttributeValue",
            "one invalid type, the others filled",
            attribute_invalid_among_valid
        ),
        case!(
            "attribute-sensitive",
            Arguments,
            "§5.7 C_GetAttributeValue",
            "sensitive value refused, the others filled",
            attribute_sensitive
        ),
    ]
}
