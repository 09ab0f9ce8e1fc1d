//! State machines: how digest, sign, verify and find operations start and end (PKCS#11 2.40
//! §5.2, §5.7, §5.10–§5.12), sessions and logins (§5.6), object and template rules (§4, §5.7),
//! what the info structures claim against what the token then does, PKCS#11 3.0's session
//! functions, and several threads and processes on one token (§5.5.1–§5.5.2).

use crate::calls::{
    P256_OID, S, data_object, expect, needs, no, ok, open, pair, pair_templates, public_data, ul,
    user, yes,
};
use crate::cases::{Case, Check, R};
use crate::raw::{Buf, Mech, Op, Raw};
use crate::{Ctx, Group};
use cryptoki_sys::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::Digest;

fn sha256() -> Mech {
    Mech::new(CKM_SHA256)
}

/// What an operation needs: its mechanism (multi-part capable for `multi`) and key.
fn start(ctx: &Ctx, s: &S, op: Op, multi: bool) -> Result<(Mech, CK_OBJECT_HANDLE), Check> {
    Ok(match op {
        Op::Digest => (sha256(), 0),
        Op::Sign | Op::Verify => {
            let m = if multi {
                needs(ctx, CKM_ECDSA_SHA256)?;
                CKM_ECDSA_SHA256
            } else {
                needs(ctx, CKM_ECDSA)?;
                CKM_ECDSA
            };
            let (public, private) = pair(s)?;
            (Mech::new(m), if op == Op::Sign { private } else { public })
        }
    })
}

/// A session with `op` initialised (single-part mechanism unless `multi`).
fn active(ctx: &Ctx, op: Op, multi: bool) -> Result<S<'_>, Check> {
    let s = user(ctx, false)?;
    let (m, key) = start(ctx, &s, op, multi)?;
    ok("C_*Init", ctx.raw.init(op, s.h, Some(&m), key))?;
    Ok(s)
}

fn fname(op: Op, call: &str) -> String {
    let base = match op {
        Op::Digest => "C_Digest",
        Op::Sign => "C_Sign",
        Op::Verify => "C_Verify",
    };
    format!("{base}{call}")
}

/// Proves the operation is over: its update answers CKR_OPERATION_NOT_INITIALIZED.
fn ended(ctx: &Ctx, s: &S, op: Op, after: &str) -> R {
    expect(
        &format!("{} after {after}", fname(op, "Update")),
        ctx.raw.update(op, s.h, Some(b"x")),
        &[CKR_OPERATION_NOT_INITIALIZED],
    )
    .map_err(|c| match c {
        Check::Fail(m) => Check::Fail(format!("{m}: the operation was not ended")),
        other => other,
    })
}

fn init_twice(ctx: &Ctx, op: Op) -> R {
    let s = user(ctx, false)?;
    let (m, key) = start(ctx, &s, op, false)?;
    ok("C_*Init", ctx.raw.init(op, s.h, Some(&m), key))?;
    expect(
        &format!("a second {}", fname(op, "Init")),
        ctx.raw.init(op, s.h, Some(&m), key),
        &[CKR_OPERATION_ACTIVE],
    )
}

fn without_init(ctx: &Ctx, op: Op, call: &str) -> R {
    let s = user(ctx, false)?;
    let rv = match call {
        "" => match op {
            Op::Verify => ctx.raw.verify(s.h, Some(&[1; 32]), Some(&[1; 64])),
            _ => {
                ctx.raw
                    .single(op, s.h, Some(&[1; 32]), Buf::Cap(64), false)
                    .rv
            }
        },
        "Update" => ctx.raw.update(op, s.h, Some(b"x")),
        _ => match op {
            Op::Verify => ctx.raw.verify_final(s.h, Some(&[1; 64])),
            _ => ctx.raw.finish(op, s.h, Buf::Cap(64), false).rv,
        },
    };
    expect(
        &format!("{} without {}", fname(op, call), fname(op, "Init")),
        rv,
        &[CKR_OPERATION_NOT_INITIALIZED],
    )
}

/// §5.10–§5.12: the single-part call cannot finish a multi-part operation.
fn single_after_update(ctx: &Ctx, op: Op) -> R {
    let s = active(ctx, op, true)?;
    ok(&fname(op, "Update"), ctx.raw.update(op, s.h, Some(b"part")))?;
    let rv = match op {
        Op::Verify => ctx.raw.verify(s.h, Some(b"part"), Some(&[1; 64])),
        _ => {
            ctx.raw
                .single(op, s.h, Some(b"part"), Buf::Cap(64), false)
                .rv
        }
    };
    expect(
        &format!("{} after {}", fname(op, ""), fname(op, "Update")),
        rv,
        &[CKR_OPERATION_ACTIVE],
    )
}

/// §5.10–§5.11: after the single-part call asked for its length, `*Final` cannot finish.
fn final_after_length_query(ctx: &Ctx, op: Op) -> R {
    let s = active(ctx, op, true)?;
    let q = ctx.raw.single(op, s.h, Some(b"abc"), Buf::Null, false);
    ok(&format!("{} length query", fname(op, "")), q.rv)?;
    let f = ctx.raw.finish(op, s.h, Buf::Cap(64), false);
    ensure!(
        f.rv != CKR_OK,
        "{} after a {} length query returned CKR_OK ({} bytes){}",
        fname(op, "Final"),
        fname(op, ""),
        f.len,
        if op == Op::Digest && f.bytes == sha2::Sha256::digest(b"").to_vec() {
            ": the digest of nothing"
        } else {
            ""
        }
    );
    Ok(())
}

/// §5.10–§5.12: a call that fails (here on a NULL length or signature pointer) ends the operation.
fn failed_call_ends(ctx: &Ctx, op: Op, multi: bool) -> R {
    let s = active(ctx, op, multi)?;
    let (what, rv) = match (op, multi) {
        (Op::Verify, false) => (
            "C_Verify(NULL signature)",
            ctx.raw.verify(s.h, Some(&[1; 32]), None),
        ),
        (Op::Verify, true) => {
            ok("C_VerifyUpdate", ctx.raw.update(op, s.h, Some(b"abc")))?;
            (
                "C_VerifyFinal(NULL signature)",
                ctx.raw.verify_final(s.h, None),
            )
        }
        (_, false) => (
            "the call with a NULL length pointer",
            ctx.raw
                .single(op, s.h, Some(&[1; 32]), Buf::Cap(64), true)
                .rv,
        ),
        (_, true) => {
            ok("C_*Update", ctx.raw.update(op, s.h, Some(b"abc")))?;
            (
                "the final call with a NULL length pointer",
                ctx.raw.finish(op, s.h, Buf::Cap(64), true).rv,
            )
        }
    };
    expect(what, rv, &[CKR_ARGUMENTS_BAD])?;
    let again = match (op, multi) {
        (Op::Verify, false) => ctx.raw.verify(s.h, Some(&[1; 32]), Some(&[1; 64])),
        (Op::Verify, true) => ctx.raw.verify_final(s.h, Some(&[1; 64])),
        (_, false) => {
            ctx.raw
                .single(op, s.h, Some(&[1; 32]), Buf::Cap(64), false)
                .rv
        }
        (_, true) => ctx.raw.finish(op, s.h, Buf::Cap(64), false).rv,
    };
    expect(
        &format!("a valid call after {what} failed"),
        again,
        &[CKR_OPERATION_NOT_INITIALIZED],
    )
    .map_err(|c| match c {
        Check::Fail(m) => Check::Fail(format!("{m}: the failed call did not end the operation")),
        other => other,
    })?;
    // The session is still usable.
    let (m, key) = start(ctx, &s, op, multi)?;
    ok(
        "a new C_*Init in the same session",
        ctx.raw.init(op, s.h, Some(&m), key),
    )
}

fn success_ends(ctx: &Ctx, op: Op) -> R {
    let s = active(ctx, op, false)?;
    match op {
        Op::Verify => {
            // A wrong signature: C_Verify ends the operation whatever its outcome (§5.12).
            let rv = ctx.raw.verify(s.h, Some(&[1; 32]), Some(&[1; 64]));
            expect(
                "C_Verify of a wrong signature",
                rv,
                &[CKR_SIGNATURE_INVALID],
            )?;
        }
        _ => ok(
            &fname(op, ""),
            ctx.raw
                .single(op, s.h, Some(&[1; 32]), Buf::Cap(64), false)
                .rv,
        )?,
    }
    let again = match op {
        Op::Verify => ctx.raw.verify(s.h, Some(&[1; 32]), Some(&[1; 64])),
        _ => {
            ctx.raw
                .single(op, s.h, Some(&[1; 32]), Buf::Cap(64), false)
                .rv
        }
    };
    expect(
        &format!("a second {} after the first finished", fname(op, "")),
        again,
        &[CKR_OPERATION_NOT_INITIALIZED],
    )
}

fn final_without_update(ctx: &Ctx) -> R {
    let s = active(ctx, Op::Digest, false)?;
    let f = ctx.raw.finish(Op::Digest, s.h, Buf::Cap(32), false);
    ok("C_DigestFinal right after C_DigestInit", f.rv)?;
    ensure!(
        f.bytes == sha2::Sha256::digest(b"").to_vec(),
        "not SHA-256 of nothing"
    );
    Ok(())
}

fn bad_mechanism_keeps_session(ctx: &Ctx, op: Op) -> R {
    let s = user(ctx, false)?;
    let (good, key) = start(ctx, &s, op, false)?;
    let bad = Mech::new(match op {
        Op::Digest => CKM_ECDSA,
        _ => CKM_SHA256,
    });
    expect(
        &format!("{} with a mechanism of another kind", fname(op, "Init")),
        ctx.raw.init(op, s.h, Some(&bad), key),
        &[CKR_MECHANISM_INVALID],
    )?;
    ok(
        "a valid C_*Init afterwards",
        ctx.raw.init(op, s.h, Some(&good), key),
    )
}

fn mechanism_parameter(ctx: &Ctx, op: Op) -> R {
    let s = user(ctx, false)?;
    let (mut m, key) = start(ctx, &s, op, false)?;
    m.param = vec![1, 2, 3, 4];
    expect(
        &format!(
            "{} with a parameter the mechanism has none of",
            fname(op, "Init")
        ),
        ctx.raw.init(op, s.h, Some(&m), key),
        &[CKR_MECHANISM_PARAM_INVALID],
    )
}

fn per_session(ctx: &Ctx, op: Op) -> R {
    let a = active(ctx, op, true)?;
    let b = user(ctx, false)?;
    expect(
        &format!("{} in another session", fname(op, "Update")),
        ctx.raw.update(op, b.h, Some(b"x")),
        &[CKR_OPERATION_NOT_INITIALIZED],
    )?;
    ok(
        &format!("{} in the session that started it", fname(op, "Update")),
        ctx.raw.update(op, a.h, Some(b"x")),
    )
}

fn wrong_key_class(ctx: &Ctx, op: Op) -> R {
    needs(ctx, CKM_ECDSA)?;
    let s = user(ctx, false)?;
    let (public, private) = pair(&s)?;
    let key = if op == Op::Sign { public } else { private };
    expect(
        &format!("{} with the other half of the pair", fname(op, "Init")),
        ctx.raw.init(op, s.h, Some(&Mech::new(CKM_ECDSA)), key),
        &[CKR_KEY_TYPE_INCONSISTENT, CKR_KEY_FUNCTION_NOT_PERMITTED],
    )
}

fn key_not_permitted(ctx: &Ctx) -> R {
    needs(ctx, CKM_ECDSA)?;
    let s = user(ctx, false)?;
    let (pt, st) = pair_templates(false);
    let (rv, _, private) =
        ctx.raw
            .generate_key_pair(s.h, &Mech::new(CKM_EC_KEY_PAIR_GEN), &pt, &st, false);
    ok("C_GenerateKeyPair (CKA_SIGN false)", rv)?;
    expect(
        "C_SignInit with a key whose CKA_SIGN is false",
        ctx.raw
            .init(Op::Sign, s.h, Some(&Mech::new(CKM_ECDSA)), private),
        &[CKR_KEY_FUNCTION_NOT_PERMITTED],
    )
}

fn raw_ecdsa_single_part(ctx: &Ctx) -> R {
    let s = active(ctx, Op::Sign, false)?;
    let rv = ctx.raw.update(Op::Sign, s.h, Some(&[1; 32]));
    ensure!(
        rv != CKR_OK,
        "C_SignUpdate with CKM_ECDSA returned CKR_OK (mech §2.3.1: single-part only)"
    );
    ended(ctx, &s, Op::Sign, "a refused C_SignUpdate")
}

fn verify_signature_length(ctx: &Ctx) -> R {
    let s = active(ctx, Op::Verify, false)?;
    expect(
        "C_Verify with a 10-byte signature",
        ctx.raw.verify(s.h, Some(&[1; 32]), Some(&[1; 10])),
        &[CKR_SIGNATURE_LEN_RANGE],
    )
}

fn verify_multipart(ctx: &Ctx) -> R {
    needs(ctx, CKM_ECDSA_SHA256)?;
    let s = user(ctx, false)?;
    let (public, private) = pair(&s)?;
    let m = Mech::new(CKM_ECDSA_SHA256);
    ok("C_SignInit", ctx.raw.init(Op::Sign, s.h, Some(&m), private))?;
    let sig = ctx
        .raw
        .single(Op::Sign, s.h, Some(b"one two three"), Buf::Cap(64), false);
    ok("C_Sign", sig.rv)?;
    ok(
        "C_VerifyInit",
        ctx.raw.init(Op::Verify, s.h, Some(&m), public),
    )?;
    for part in [&b"one "[..], b"two ", b"three"] {
        ok(
            "C_VerifyUpdate",
            ctx.raw.update(Op::Verify, s.h, Some(part)),
        )?;
    }
    ok(
        "C_VerifyFinal of a single-part signature",
        ctx.raw.verify_final(s.h, Some(&sig.bytes)),
    )
}

// ---- find ------------------------------------------------------------------------------------

fn find_init_twice(ctx: &Ctx) -> R {
    let s = open(ctx, false)?;
    ok("C_FindObjectsInit", ctx.raw.find_init(s.h, Some(&[])))?;
    expect(
        "a second C_FindObjectsInit",
        ctx.raw.find_init(s.h, Some(&[])),
        &[CKR_OPERATION_ACTIVE],
    )
}

fn find_without_init(ctx: &Ctx) -> R {
    let s = open(ctx, false)?;
    expect(
        "C_FindObjects without C_FindObjectsInit",
        ctx.raw.find(s.h, Some(4), false).0,
        &[CKR_OPERATION_NOT_INITIALIZED],
    )?;
    expect(
        "C_FindObjectsFinal without C_FindObjectsInit",
        ctx.raw.find_final(s.h),
        &[CKR_OPERATION_NOT_INITIALIZED],
    )
}

fn find_after_final(ctx: &Ctx) -> R {
    let s = open(ctx, false)?;
    ok("C_FindObjectsInit", ctx.raw.find_init(s.h, Some(&[])))?;
    ok("C_FindObjectsFinal", ctx.raw.find_final(s.h))?;
    expect(
        "C_FindObjects after C_FindObjectsFinal",
        ctx.raw.find(s.h, Some(4), false).0,
        &[CKR_OPERATION_NOT_INITIALIZED],
    )
}

fn find_exhausted(ctx: &Ctx) -> R {
    let s = open(ctx, true)?;
    let label = b"kilt-conformance-exhaust".to_vec();
    let o = data_object(&s, &label)?;
    ok(
        "C_FindObjectsInit",
        ctx.raw.find_init(s.h, Some(&[(CKA_LABEL, label)])),
    )?;
    let (rv, first) = ctx.raw.find(s.h, Some(10), false);
    ok("C_FindObjects", rv)?;
    ensure!(first == vec![o], "found {first:?}, want [{o}]");
    let (rv, next) = ctx.raw.find(s.h, Some(10), false);
    ok("C_FindObjects after the last", rv)?;
    ensure!(next.is_empty(), "the search found {next:?} again");
    ok("C_FindObjectsFinal", ctx.raw.find_final(s.h))
}

fn find_all_with_empty_template(ctx: &Ctx) -> R {
    let s = open(ctx, true)?;
    let o = data_object(&s, b"kilt-conformance-all")?;
    ok(
        "C_FindObjectsInit with no attributes",
        ctx.raw.find_init(s.h, Some(&[])),
    )?;
    let mut all = vec![];
    loop {
        let (rv, got) = ctx.raw.find(s.h, Some(100), false);
        ok("C_FindObjects", rv)?;
        if got.is_empty() || all.len() > 100_000 {
            break;
        }
        all.extend(got);
    }
    ensure!(
        all.contains(&o),
        "an empty template did not find every object (§5.7: ulCount 0 matches all)"
    );
    Ok(())
}

fn find_by_class(ctx: &Ctx) -> R {
    let s = user(ctx, true)?;
    data_object(&s, b"kilt-conformance-class")?;
    ok(
        "C_FindObjectsInit",
        ctx.raw.find_init(s.h, Some(&[(CKA_CLASS, ul(CKO_DATA))])),
    )?;
    let (rv, found) = ctx.raw.find(s.h, Some(200), false);
    ok("C_FindObjects", rv)?;
    ctx.raw.find_final(s.h);
    for o in found {
        let (_, a) = ctx
            .raw
            .get_attributes(s.h, o, Some(&[(CKA_CLASS, Buf::Cap(8))]));
        ensure!(
            a[0].bytes == ul(CKO_DATA),
            "a search for CKO_DATA found object {o} of another class"
        );
    }
    Ok(())
}

fn find_per_session(ctx: &Ctx) -> R {
    let a = open(ctx, false)?;
    let b = open(ctx, false)?;
    ok("C_FindObjectsInit", ctx.raw.find_init(a.h, Some(&[])))?;
    ok(
        "C_FindObjectsInit in a second session while the first searches",
        ctx.raw.find_init(b.h, Some(&[])),
    )
}

// ---- sessions and logins -----------------------------------------------------------------------

fn not_serial(ctx: &Ctx) -> R {
    let (rv, h) = ctx.raw.open_session(ctx.slot.id(), 0, false);
    if rv == CKR_OK {
        ctx.raw.close_session(h);
    }
    expect(
        "C_OpenSession without CKF_SERIAL_SESSION",
        rv,
        &[CKR_SESSION_PARALLEL_NOT_SUPPORTED],
    )
}

fn close_all(ctx: &Ctx) -> R {
    let a = open(ctx, false)?;
    let b = open(ctx, true)?;
    ok(
        "C_CloseAllSessions",
        ctx.raw.close_all_sessions(ctx.slot.id()),
    )?;
    for s in [&a, &b] {
        expect(
            "C_GetSessionInfo after C_CloseAllSessions",
            ctx.raw.session_info(s.h, false).0,
            &[CKR_SESSION_HANDLE_INVALID],
        )?;
    }
    Ok(())
}

fn last_session_logs_out(ctx: &Ctx) -> R {
    drop(user(ctx, false)?);
    let s = open(ctx, false)?;
    let (rv, i) = ctx.raw.session_info(s.h, false);
    ok("C_GetSessionInfo", rv)?;
    ensure!(
        i.state == CKS_RO_PUBLIC_SESSION,
        "a new session after the last one closed is in state {} (§5.6: closing the last session logs out)",
        i.state
    );
    Ok(())
}

fn session_info_fields(ctx: &Ctx) -> R {
    for rw in [false, true] {
        let s = open(ctx, rw)?;
        let (rv, i) = ctx.raw.session_info(s.h, false);
        ok("C_GetSessionInfo", rv)?;
        ensure!(
            i.slotID == ctx.slot.id(),
            "slotID {} in the session info, the session is on {}",
            i.slotID,
            ctx.slot.id()
        );
        ensure!(
            i.flags & CKF_SERIAL_SESSION != 0,
            "CKF_SERIAL_SESSION is not set"
        );
        ensure!(
            (i.flags & CKF_RW_SESSION != 0) == rw,
            "CKF_RW_SESSION is {} for a {} session",
            i.flags & CKF_RW_SESSION != 0,
            if rw { "R/W" } else { "R/O" }
        );
    }
    Ok(())
}

fn logout_not_logged_in(ctx: &Ctx) -> R {
    let s = open(ctx, false)?;
    expect(
        "C_Logout without a login",
        ctx.raw.logout(s.h),
        &[CKR_USER_NOT_LOGGED_IN],
    )
}

fn bad_user_type(ctx: &Ctx) -> R {
    let s = open(ctx, false)?;
    expect(
        "C_Login as user type 7",
        ctx.raw.login(s.h, 7, Some(ctx.options.user_pin.as_bytes())),
        &[CKR_USER_TYPE_INVALID],
    )
}

fn so_pin(ctx: &Ctx) -> Result<&[u8], Check> {
    ctx.options
        .so_pin
        .as_ref()
        .map(|p| p.as_bytes())
        .ok_or_else(|| Check::Skip("needs the SO PIN (--so-pin-source)".into()))
}

fn user_then_so(ctx: &Ctx) -> R {
    let so = so_pin(ctx)?;
    let s = user(ctx, true)?;
    expect(
        "C_Login as SO while the user is logged in",
        ctx.raw.login(s.h, CKU_SO, Some(so)),
        &[CKR_USER_ANOTHER_ALREADY_LOGGED_IN],
    )
}

fn so_then_user(ctx: &Ctx) -> R {
    let so = so_pin(ctx)?;
    let s = open(ctx, true)?;
    ok("C_Login (SO)", ctx.raw.login(s.h, CKU_SO, Some(so)))?;
    let (_, i) = ctx.raw.session_info(s.h, false);
    ensure!(
        i.state == CKS_RW_SO_FUNCTIONS,
        "state {} after the SO logged in, want CKS_RW_SO_FUNCTIONS",
        i.state
    );
    let (rv, h) = ctx
        .raw
        .open_session(ctx.slot.id(), CKF_SERIAL_SESSION, false);
    if rv == CKR_OK {
        ctx.raw.close_session(h);
    }
    expect(
        "a read-only C_OpenSession while the SO is logged in",
        rv,
        &[CKR_SESSION_READ_WRITE_SO_EXISTS],
    )?;
    expect(
        "C_Login as user while the SO is logged in",
        ctx.raw
            .login(s.h, CKU_USER, Some(ctx.options.user_pin.as_bytes())),
        &[CKR_USER_ANOTHER_ALREADY_LOGGED_IN],
    )
}

fn init_pin_needs_so(ctx: &Ctx) -> R {
    let s = user(ctx, true)?;
    expect(
        "C_InitPIN by the user",
        ctx.raw.init_pin(s.h, ctx.options.user_pin.as_bytes()),
        &[CKR_USER_NOT_LOGGED_IN],
    )
}

fn set_pin_read_only(ctx: &Ctx) -> R {
    let s = user(ctx, false)?;
    let pin = ctx.options.user_pin.as_bytes();
    expect(
        "C_SetPIN in a read-only session",
        ctx.raw.set_pin(s.h, pin, pin),
        &[CKR_SESSION_READ_ONLY],
    )
}

fn set_pin_too_short(ctx: &Ctx) -> R {
    let s = user(ctx, true)?;
    let (_, t) = ctx.raw.token_info(ctx.slot.id(), false);
    if t.ulMinPinLen <= 1 {
        return Err(Check::Skip("the token allows 1-character PINs".into()));
    }
    let pin = ctx.options.user_pin.as_bytes();
    let rv = ctx.raw.set_pin(s.h, pin, b"1");
    if rv == CKR_OK {
        ctx.raw.set_pin(s.h, b"1", pin);
    }
    expect(
        &format!("C_SetPIN to 1 character (ulMinPinLen {})", t.ulMinPinLen),
        rv,
        &[CKR_PIN_LEN_RANGE],
    )
}

fn session_counts(ctx: &Ctx) -> R {
    let count = || {
        let (rv, t) = ctx.raw.token_info(ctx.slot.id(), false);
        (rv, t.ulSessionCount, t.ulRwSessionCount)
    };
    let (rv, before, rw_before) = count();
    ok("C_GetTokenInfo", rv)?;
    if before == CK_UNAVAILABLE_INFORMATION || rw_before == CK_UNAVAILABLE_INFORMATION {
        return Err(Check::Skip("the token does not count sessions".into()));
    }
    let _s = open(ctx, true)?;
    let (_, after, rw_after) = count();
    ensure!(
        after == before + 1 && rw_after == rw_before + 1,
        "opening a R/W session moved ulSessionCount {before}→{after}, ulRwSessionCount {rw_before}→{rw_after}"
    );
    Ok(())
}

// ---- objects and templates (§4, §5.7) ----------------------------------------------------------

fn create(ctx: &Ctx, what: &str, t: &[crate::raw::Attr], want: &[CK_RV]) -> R {
    let s = user(ctx, true)?;
    let (rv, o) = ctx.raw.create_object(s.h, Some(t), false);
    if rv == CKR_OK {
        ctx.raw.destroy_object(s.h, o);
    }
    expect(what, rv, want)
}

fn data_with(extra: (CK_ATTRIBUTE_TYPE, Vec<u8>)) -> Vec<crate::raw::Attr> {
    vec![
        (CKA_CLASS, ul(CKO_DATA)),
        (CKA_TOKEN, no()),
        (CKA_PRIVATE, no()),
        extra,
    ]
}

fn set_read_only_attribute(ctx: &Ctx) -> R {
    let s = open(ctx, true)?;
    let o = data_object(&s, b"kilt-conformance-ro-attr")?;
    expect(
        "C_SetAttributeValue(CKA_CLASS)",
        ctx.raw
            .set_attributes(s.h, o, &[(CKA_CLASS, ul(CKO_CERTIFICATE))]),
        &[CKR_ATTRIBUTE_READ_ONLY],
    )
}

fn set_label(ctx: &Ctx) -> R {
    let s = open(ctx, true)?;
    let o = data_object(&s, b"kilt-conformance-before")?;
    ok(
        "C_SetAttributeValue(CKA_LABEL)",
        ctx.raw
            .set_attributes(s.h, o, &[(CKA_LABEL, b"after".to_vec())]),
    )?;
    let (_, a) = ctx
        .raw
        .get_attributes(s.h, o, Some(&[(CKA_LABEL, Buf::Cap(64))]));
    ensure!(
        a[0].bytes == b"after",
        "the label reads {:?} after it was set",
        String::from_utf8_lossy(&a[0].bytes)
    );
    Ok(())
}

fn not_modifiable(ctx: &Ctx) -> R {
    let s = open(ctx, true)?;
    let (rv, o) = ctx
        .raw
        .create_object(s.h, Some(&data_with((CKA_MODIFIABLE, no()))), false);
    ok("C_CreateObject with CKA_MODIFIABLE false", rv)?;
    expect(
        "C_SetAttributeValue on an unmodifiable object",
        ctx.raw
            .set_attributes(s.h, o, &[(CKA_LABEL, b"x".to_vec())]),
        &[CKR_ATTRIBUTE_READ_ONLY, CKR_ACTION_PROHIBITED],
    )
}

fn copy_object(ctx: &Ctx) -> R {
    let s = open(ctx, true)?;
    let o = data_object(&s, b"kilt-conformance-original")?;
    let (rv, c) = ctx
        .raw
        .copy_object(s.h, o, &[(CKA_LABEL, b"kilt-conformance-copy".to_vec())]);
    if rv == CKR_FUNCTION_NOT_SUPPORTED {
        return Err(Check::Skip("C_CopyObject is not supported".into()));
    }
    ok("C_CopyObject", rv)?;
    ensure!(c != o, "the copy has the original's handle");
    let (_, a) = ctx.raw.get_attributes(
        s.h,
        c,
        Some(&[(CKA_LABEL, Buf::Cap(64)), (CKA_VALUE, Buf::Cap(64))]),
    );
    ensure!(
        a[0].bytes == b"kilt-conformance-copy" && a[1].bytes == b"kilt",
        "the copy reads {:?}",
        a.iter()
            .map(|x| String::from_utf8_lossy(&x.bytes).into_owned())
            .collect::<Vec<_>>()
    );
    let (_, a) = ctx
        .raw
        .get_attributes(s.h, o, Some(&[(CKA_LABEL, Buf::Cap(64))]));
    ensure!(
        a[0].bytes == b"kilt-conformance-original",
        "copying changed the original"
    );
    Ok(())
}

fn private_needs_login(ctx: &Ctx) -> R {
    let s = open(ctx, true)?;
    let (rv, o) = ctx.raw.create_object(
        s.h,
        Some(&[
            (CKA_CLASS, ul(CKO_DATA)),
            (CKA_TOKEN, no()),
            (CKA_PRIVATE, yes()),
        ]),
        false,
    );
    if rv == CKR_OK {
        ctx.raw.destroy_object(s.h, o);
    }
    expect(
        "C_CreateObject of a private object without login",
        rv,
        &[CKR_USER_NOT_LOGGED_IN],
    )
}

fn session_object_shared(ctx: &Ctx) -> R {
    let a = open(ctx, true)?;
    let label = b"kilt-conformance-shared".to_vec();
    let o = data_object(&a, &label)?;
    let b = open(ctx, false)?;
    ok(
        "C_FindObjectsInit",
        ctx.raw.find_init(b.h, Some(&[(CKA_LABEL, label.clone())])),
    )?;
    let (_, found) = ctx.raw.find(b.h, Some(4), false);
    ensure!(
        found == vec![o],
        "another session of the application sees {found:?}, want [{o}] (§4.4)"
    );
    drop(a);
    let c = open(ctx, false)?;
    ok(
        "C_FindObjectsInit",
        ctx.raw.find_init(c.h, Some(&[(CKA_LABEL, label)])),
    )?;
    let (_, found) = ctx.raw.find(c.h, Some(4), false);
    ensure!(
        found.is_empty(),
        "a session object outlived its session: {found:?}"
    );
    Ok(())
}

fn token_object_persists(ctx: &Ctx) -> R {
    let label = b"kilt-conformance-persist".to_vec();
    let o = {
        let s = user(ctx, true)?;
        public_data(&ctx.raw, s.h, &label, true).map_err(Check::Fail)?
    };
    let s = user(ctx, true)?;
    ok(
        "C_FindObjectsInit",
        ctx.raw.find_init(s.h, Some(&[(CKA_LABEL, label)])),
    )?;
    let (_, found) = ctx.raw.find(s.h, Some(4), false);
    ctx.raw.find_final(s.h);
    for f in &found {
        ctx.raw.destroy_object(s.h, *f);
    }
    ensure!(
        found.len() == 1,
        "a token object was found {} times after its session closed (handle was {o})",
        found.len()
    );
    Ok(())
}

fn keygen_without_params(ctx: &Ctx) -> R {
    needs(ctx, CKM_EC_KEY_PAIR_GEN)?;
    let s = user(ctx, false)?;
    let (rv, a, b) = ctx.raw.generate_key_pair(
        s.h,
        &Mech::new(CKM_EC_KEY_PAIR_GEN),
        &[(CKA_TOKEN, no())],
        &[(CKA_TOKEN, no())],
        false,
    );
    if rv == CKR_OK {
        ctx.raw.destroy_object(s.h, a);
        ctx.raw.destroy_object(s.h, b);
    }
    expect(
        "C_GenerateKeyPair(EC) without CKA_EC_PARAMS",
        rv,
        &[CKR_TEMPLATE_INCOMPLETE],
    )
}

fn keygen_unsupported_curve(ctx: &Ctx) -> R {
    needs(ctx, CKM_EC_KEY_PAIR_GEN)?;
    let (_, i) = ctx
        .raw
        .mechanism_info(ctx.slot.id(), CKM_EC_KEY_PAIR_GEN, false);
    if i.ulMaxKeySize >= 384 {
        return Err(Check::Skip(format!(
            "the token claims EC keys up to {} bits",
            i.ulMaxKeySize
        )));
    }
    let s = user(ctx, false)?;
    // secp384r1: beyond what the token claims.
    let p384 = vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    let (rv, a, b) = ctx.raw.generate_key_pair(
        s.h,
        &Mech::new(CKM_EC_KEY_PAIR_GEN),
        &[(CKA_TOKEN, no()), (CKA_EC_PARAMS, p384)],
        &[(CKA_TOKEN, no())],
        false,
    );
    if rv == CKR_OK {
        ctx.raw.destroy_object(s.h, a);
        ctx.raw.destroy_object(s.h, b);
    }
    expect(
        &format!(
            "C_GenerateKeyPair on P-384 (ulMaxKeySize {})",
            i.ulMaxKeySize
        ),
        rv,
        &[
            CKR_CURVE_NOT_SUPPORTED,
            CKR_ATTRIBUTE_VALUE_INVALID,
            CKR_DOMAIN_PARAMS_INVALID,
            CKR_TEMPLATE_INCONSISTENT,
        ],
    )
}

fn generated_attributes(ctx: &Ctx) -> R {
    needs(ctx, CKM_EC_KEY_PAIR_GEN)?;
    let s = user(ctx, false)?;
    let (public, private) = pair(&s)?;
    for (o, class) in [(public, CKO_PUBLIC_KEY), (private, CKO_PRIVATE_KEY)] {
        let (rv, a) = ctx.raw.get_attributes(
            s.h,
            o,
            Some(&[
                (CKA_CLASS, Buf::Cap(8)),
                (CKA_KEY_TYPE, Buf::Cap(8)),
                (CKA_LOCAL, Buf::Cap(1)),
                (CKA_KEY_GEN_MECHANISM, Buf::Cap(8)),
                (CKA_EC_PARAMS, Buf::Cap(64)),
            ]),
        );
        ok("C_GetAttributeValue", rv)?;
        ensure!(
            a[0].bytes == ul(class),
            "CKA_CLASS of a generated key is wrong"
        );
        ensure!(a[1].bytes == ul(CKK_EC), "CKA_KEY_TYPE is not CKK_EC");
        ensure!(
            a[2].bytes == yes(),
            "CKA_LOCAL is not true on a generated key (§4.7)"
        );
        ensure!(
            a[3].bytes == ul(CKM_EC_KEY_PAIR_GEN),
            "CKA_KEY_GEN_MECHANISM is not CKM_EC_KEY_PAIR_GEN (§4.7)"
        );
        ensure!(
            a[4].bytes == P256_OID,
            "CKA_EC_PARAMS is not the curve asked for"
        );
    }
    Ok(())
}

fn imported_public_key_verifies(ctx: &Ctx) -> R {
    needs(ctx, CKM_ECDSA)?;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let sk =
        p256::ecdsa::SigningKey::from_slice(&[0x4b; 32]).map_err(|e| Check::Fail(e.to_string()))?;
    let point = sk.verifying_key().to_encoded_point(false);
    let mut der = vec![0x04, 0x41];
    der.extend_from_slice(point.as_bytes());
    let s = open(ctx, true)?;
    let (rv, key) = ctx.raw.create_object(
        s.h,
        Some(&[
            (CKA_CLASS, ul(CKO_PUBLIC_KEY)),
            (CKA_KEY_TYPE, ul(CKK_EC)),
            (CKA_TOKEN, no()),
            (CKA_VERIFY, yes()),
            (CKA_EC_PARAMS, P256_OID.to_vec()),
            (CKA_EC_POINT, der),
        ]),
        false,
    );
    ok("C_CreateObject of an EC public key", rv)?;
    let digest = [0x11u8; 32];
    let sig: p256::ecdsa::Signature = sk
        .sign_prehash(&digest)
        .map_err(|e| Check::Fail(e.to_string()))?;
    ok(
        "C_VerifyInit",
        ctx.raw
            .init(Op::Verify, s.h, Some(&Mech::new(CKM_ECDSA)), key),
    )?;
    ok(
        "C_Verify of a signature made outside the token",
        ctx.raw.verify(s.h, Some(&digest), Some(&sig.to_bytes())),
    )
}

fn signature_verifies_outside(ctx: &Ctx) -> R {
    needs(ctx, CKM_ECDSA)?;
    let s = user(ctx, false)?;
    let (public, private) = pair(&s)?;
    let (_, a) = ctx
        .raw
        .get_attributes(s.h, public, Some(&[(CKA_EC_POINT, Buf::Cap(80))]));
    let point = a[0].bytes.get(2..).unwrap_or_default();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| Check::Fail("CKA_EC_POINT is not a P-256 point".into()))?;
    // A digest shorter than the curve: mech §2.3.6 takes it as it is (left-padded number).
    ok(
        "C_SignInit",
        ctx.raw
            .init(Op::Sign, s.h, Some(&Mech::new(CKM_ECDSA)), private),
    )?;
    let digest = sha2::Sha256::digest(b"outside").to_vec();
    let sig = ctx
        .raw
        .single(Op::Sign, s.h, Some(&digest), Buf::Cap(64), false);
    ok("C_Sign", sig.rv)?;
    let sig = p256::ecdsa::Signature::from_slice(&sig.bytes)
        .map_err(|_| Check::Fail("not r‖s".into()))?;
    vk.verify_prehash(&digest, &sig)
        .map_err(|_| Check::Fail("the raw signature does not verify with p256".into()))
}

// ---- claims: what the info structures say against what the token does ---------------------------

fn padded(field: &[u8], what: &str) -> R {
    ensure!(
        !field.contains(&0),
        "{what} contains NUL bytes: it must be blank-padded, not NUL-terminated (§3.2)"
    );
    ensure!(std::str::from_utf8(field).is_ok(), "{what} is not UTF-8");
    Ok(())
}

fn strings_padded(ctx: &Ctx) -> R {
    let (_, i) = ctx.raw.info(false, false);
    padded(&i.manufacturerID, "CK_INFO.manufacturerID")?;
    padded(&i.libraryDescription, "CK_INFO.libraryDescription")?;
    let (_, si) = ctx.raw.slot_info(ctx.slot.id(), false);
    padded(&si.slotDescription, "CK_SLOT_INFO.slotDescription")?;
    padded(&si.manufacturerID, "CK_SLOT_INFO.manufacturerID")?;
    let (_, t) = ctx.raw.token_info(ctx.slot.id(), false);
    padded(&t.label, "CK_TOKEN_INFO.label")?;
    padded(&t.manufacturerID, "CK_TOKEN_INFO.manufacturerID")?;
    padded(&t.model, "CK_TOKEN_INFO.model")?;
    padded(&t.serialNumber, "CK_TOKEN_INFO.serialNumber")
}

fn rng_flag(ctx: &Ctx) -> R {
    let (_, t) = ctx.raw.token_info(ctx.slot.id(), false);
    let s = open(ctx, false)?;
    let (rv, _) = ctx.raw.random(s.h, Some(16));
    if t.flags & CKF_RNG != 0 {
        ok("C_GenerateRandom on a token that claims CKF_RNG", rv)
    } else {
        expect(
            "C_GenerateRandom on a token without CKF_RNG",
            rv,
            &[CKR_RANDOM_NO_RNG],
        )
    }
}

fn present_slots_listed(ctx: &Ctx) -> R {
    let present = crate::calls::slots(ctx, true);
    let all = crate::calls::slots(ctx, false);
    for s in &all {
        let (_, i) = ctx.raw.slot_info(*s, false);
        let flagged = i.flags & CKF_TOKEN_PRESENT != 0;
        ensure!(
            flagged == present.contains(s),
            "slot {s}: CKF_TOKEN_PRESENT is {flagged} but C_GetSlotList(TRUE) {} it",
            if present.contains(s) {
                "lists"
            } else {
                "omits"
            }
        );
    }
    ensure!(
        present.iter().all(|p| all.contains(p)),
        "C_GetSlotList(TRUE) lists a slot C_GetSlotList(FALSE) does not"
    );
    Ok(())
}

fn mechanism_flags_hold(ctx: &Ctx) -> R {
    let slot = ctx.slot.id();
    let flags = |m| ctx.raw.mechanism_info(slot, m, false).1.flags;
    let list = crate::calls::mechanisms(ctx);
    let s = user(ctx, false)?;
    if list.contains(&CKM_SHA256) {
        ensure!(
            flags(CKM_SHA256) & CKF_DIGEST != 0,
            "CKM_SHA256 is listed without CKF_DIGEST"
        );
        ok(
            "C_DigestInit(CKM_SHA256)",
            ctx.raw.init(Op::Digest, s.h, Some(&sha256()), 0),
        )?;
        // Finished, so a token that runs one operation per session may start the next.
        ctx.raw
            .single(Op::Digest, s.h, Some(b"x"), Buf::Cap(32), false);
    }
    if list.contains(&CKM_EC_KEY_PAIR_GEN) {
        ensure!(
            flags(CKM_EC_KEY_PAIR_GEN) & CKF_GENERATE_KEY_PAIR != 0,
            "CKM_EC_KEY_PAIR_GEN is listed without CKF_GENERATE_KEY_PAIR"
        );
        let (public, private) = pair(&s)?;
        for m in [CKM_ECDSA, CKM_ECDSA_SHA256] {
            if !list.contains(&m) {
                continue;
            }
            let f = flags(m);
            ensure!(
                f & (CKF_SIGN | CKF_VERIFY) != 0,
                "ECDSA mechanism 0x{m:x} claims neither CKF_SIGN nor CKF_VERIFY"
            );
            let signs = ctx.raw.init(Op::Sign, s.h, Some(&Mech::new(m)), private);
            ctx.raw
                .single(Op::Sign, s.h, Some(&[1; 32]), Buf::Cap(64), false);
            ensure!(
                (f & CKF_SIGN != 0) == (signs == CKR_OK),
                "mechanism 0x{m:x}: CKF_SIGN is {} but C_SignInit returned {}",
                f & CKF_SIGN != 0,
                crate::raw::name(signs)
            );
            let verifies = ctx.raw.init(Op::Verify, s.h, Some(&Mech::new(m)), public);
            ctx.raw.verify(s.h, Some(&[1; 32]), Some(&[1; 64]));
            ensure!(
                (f & CKF_VERIFY != 0) == (verifies == CKR_OK),
                "mechanism 0x{m:x}: CKF_VERIFY is {} but C_VerifyInit returned {}",
                f & CKF_VERIFY != 0,
                crate::raw::name(verifies)
            );
        }
    }
    Ok(())
}

fn ec_key_sizes(ctx: &Ctx) -> R {
    needs(ctx, CKM_EC_KEY_PAIR_GEN)?;
    for m in [CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, CKM_ECDSA_SHA256] {
        let (rv, i) = ctx.raw.mechanism_info(ctx.slot.id(), m, false);
        if rv == CKR_MECHANISM_INVALID {
            continue;
        }
        ok("C_GetMechanismInfo", rv)?;
        // mech §2.3: EC key sizes are in bits; the token makes P-256 keys.
        ensure!(
            i.ulMinKeySize <= 256 && 256 <= i.ulMaxKeySize,
            "mechanism 0x{m:x} claims key sizes {}..{} bits, but the token makes 256-bit keys",
            i.ulMinKeySize,
            i.ulMaxKeySize
        );
    }
    Ok(())
}

fn pin_lengths_claimed(ctx: &Ctx) -> R {
    let (_, t) = ctx.raw.token_info(ctx.slot.id(), false);
    let n = ctx.options.user_pin.as_bytes().len() as CK_ULONG;
    ensure!(
        t.ulMinPinLen <= n && n <= t.ulMaxPinLen,
        "the working user PIN has {n} characters, outside the claimed {}..{}",
        t.ulMinPinLen,
        t.ulMaxPinLen
    );
    Ok(())
}

fn wait_no_event(ctx: &Ctx) -> R {
    // Drain what happened before, then nothing is pending.
    for _ in 0..64 {
        if ctx.raw.wait_for_slot_event(CKF_DONT_BLOCK, false).0 != CKR_OK {
            break;
        }
    }
    let (rv, _) = ctx.raw.wait_for_slot_event(CKF_DONT_BLOCK, false);
    if rv == CKR_FUNCTION_NOT_SUPPORTED {
        return Err(Check::Skip("C_WaitForSlotEvent is not supported".into()));
    }
    expect(
        "C_WaitForSlotEvent(CKF_DONT_BLOCK) with nothing pending",
        rv,
        &[CKR_NO_EVENT],
    )
}

/// A function no listed mechanism claims (`flag`) cannot start with any of them (§5.5: the
/// mechanism list and its flags are what the token does).
fn unclaimed(ctx: &Ctx, f: crate::raw::Other, flag: CK_FLAGS) -> R {
    let list = crate::calls::mechanisms(ctx);
    let slot = ctx.slot.id();
    if let Some(m) = list
        .iter()
        .find(|m| ctx.raw.mechanism_info(slot, **m, false).1.flags & flag != 0)
    {
        return Err(Check::Skip(format!(
            "the token claims mechanism 0x{m:x} for {f:?}"
        )));
    }
    let s = user(ctx, true)?;
    let key = if list.contains(&CKM_EC_KEY_PAIR_GEN) {
        pair(&s)?.1
    } else {
        CK_INVALID_HANDLE
    };
    for m in list
        .iter()
        .chain(&[CKM_AES_KEY_GEN, CKM_AES_CBC, CKM_ECDH1_DERIVE])
    {
        let rv = ctx.raw.other(f, s.h, &Mech::new(*m), key);
        ensure!(
            rv != CKR_OK,
            "C_{f:?} with mechanism 0x{m:x} returned CKR_OK, but no mechanism claims it"
        );
        ensure!(
            rv != CKR_GENERAL_ERROR && rv != CKR_DEVICE_ERROR,
            "C_{f:?} with mechanism 0x{m:x} returned {}: a refusal, not a failure, is expected",
            crate::raw::name(rv)
        );
    }
    // The refusal changed nothing: the session still works.
    ok(
        "C_GenerateRandom afterwards",
        ctx.raw.random(s.h, Some(8)).0,
    )
}

fn legacy_functions(ctx: &Ctx) -> R {
    let s = open(ctx, false)?;
    for cancel in [false, true] {
        expect(
            if cancel {
                "C_CancelFunction"
            } else {
                "C_GetFunctionStatus"
            },
            ctx.raw.legacy(s.h, cancel),
            &[CKR_FUNCTION_NOT_PARALLEL],
        )?;
    }
    Ok(())
}

// ---- PKCS#11 3.0 session functions --------------------------------------------------------------

fn needs_v3(ctx: &Ctx) -> R {
    if ctx.raw.has_v3() {
        Ok(())
    } else {
        Err(Check::Skip(
            "the module offers no PKCS#11 3.0 interface".into(),
        ))
    }
}

fn session_cancel(ctx: &Ctx, op: Op) -> R {
    needs_v3(ctx)?;
    let s = active(ctx, op, true)?;
    let flag = match op {
        Op::Digest => CKF_DIGEST,
        Op::Sign => CKF_SIGN,
        Op::Verify => CKF_VERIFY,
    };
    ok("C_SessionCancel", ctx.raw.session_cancel(s.h, flag))?;
    ended(ctx, &s, op, "C_SessionCancel")?;
    let (m, key) = start(ctx, &s, op, true)?;
    ok(
        "a new C_*Init after C_SessionCancel",
        ctx.raw.init(op, s.h, Some(&m), key),
    )
}

fn session_cancel_find(ctx: &Ctx) -> R {
    needs_v3(ctx)?;
    let s = open(ctx, false)?;
    ok("C_FindObjectsInit", ctx.raw.find_init(s.h, Some(&[])))?;
    ok(
        "C_SessionCancel(CKF_FIND_OBJECTS)",
        ctx.raw.session_cancel(s.h, CKF_FIND_OBJECTS),
    )?;
    expect(
        "C_FindObjects after C_SessionCancel",
        ctx.raw.find(s.h, Some(4), false).0,
        &[CKR_OPERATION_NOT_INITIALIZED],
    )
}

fn session_cancel_only_named(ctx: &Ctx) -> R {
    needs_v3(ctx)?;
    let s = active(ctx, Op::Digest, true)?;
    ok("C_FindObjectsInit", ctx.raw.find_init(s.h, Some(&[])))?;
    ok(
        "C_SessionCancel(CKF_FIND_OBJECTS)",
        ctx.raw.session_cancel(s.h, CKF_FIND_OBJECTS),
    )?;
    ok(
        "C_DigestUpdate (not cancelled)",
        ctx.raw.update(Op::Digest, s.h, Some(b"x")),
    )
}

fn session_cancel_closed(ctx: &Ctx) -> R {
    needs_v3(ctx)?;
    let h = open(ctx, false)?.h;
    expect(
        "C_SessionCancel on a closed session",
        ctx.raw.session_cancel(h, CKF_DIGEST),
        &[CKR_SESSION_HANDLE_INVALID],
    )
}

fn login_user(ctx: &Ctx) -> R {
    needs_v3(ctx)?;
    let s = open(ctx, false)?;
    let rv = ctx
        .raw
        .login_user(s.h, CKU_USER, ctx.options.user_pin.as_bytes(), b"kilt");
    ok("C_LoginUser(CKU_USER)", rv)?;
    let (_, i) = ctx.raw.session_info(s.h, false);
    ensure!(
        i.state == CKS_RO_USER_FUNCTIONS,
        "state {} after C_LoginUser",
        i.state
    );
    ok("C_Logout", ctx.raw.logout(s.h))
}

// ---- threads and processes (§5.5.1–§5.5.2) ------------------------------------------------------------

fn threads_own_sessions(ctx: &Ctx) -> R {
    needs(ctx, CKM_ECDSA)?;
    let _keep = user(ctx, false)?;
    let results: Vec<R> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                scope.spawn(move || -> R {
                    let s = user(ctx, false)?;
                    let (public, private) = pair(&s)?;
                    let (_, a) =
                        ctx.raw
                            .get_attributes(s.h, public, Some(&[(CKA_EC_POINT, Buf::Cap(80))]));
                    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(
                        a[0].bytes.get(2..).unwrap_or_default(),
                    )
                    .map_err(|_| Check::Fail("bad CKA_EC_POINT".into()))?;
                    for i in 0..25u8 {
                        let digest = [t.wrapping_mul(31).wrapping_add(i); 32];
                        ok(
                            "C_SignInit",
                            ctx.raw
                                .init(Op::Sign, s.h, Some(&Mech::new(CKM_ECDSA)), private),
                        )?;
                        let sig = ctx
                            .raw
                            .single(Op::Sign, s.h, Some(&digest), Buf::Cap(64), false);
                        ok("C_Sign", sig.rv)?;
                        let sig = p256::ecdsa::Signature::from_slice(&sig.bytes)
                            .map_err(|_| Check::Fail("not r‖s".into()))?;
                        vk.verify_prehash(&digest, &sig).map_err(|_| {
                            Check::Fail(format!("thread {t}: signature {i} does not verify"))
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Check::Fail("a thread panicked".into())))
            })
            .collect()
    });
    results.into_iter().collect()
}

fn threads_share_session(ctx: &Ctx) -> R {
    let s = open(ctx, false)?;
    let h = s.h;
    let results: Vec<R> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(move || -> R {
                    for _ in 0..200 {
                        ok(
                            "C_GenerateRandom on a shared session",
                            ctx.raw.random(h, Some(16)).0,
                        )?;
                        ok(
                            "C_GetSessionInfo on a shared session",
                            ctx.raw.session_info(h, false).0,
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Check::Fail("a thread panicked".into())))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// Runs `steps` in a forked child after the child's own `C_Initialize` (2.40 §5.5.1) and
/// returns what they report, or why the child failed.
fn forked(
    ctx: &Ctx,
    steps: impl FnOnce(&Raw, CK_SLOT_ID) -> Result<String, String>,
) -> Result<String, Check> {
    let slot = ctx.slot.id();
    let out = ctx
        .raw
        .in_forked_child(std::time::Duration::from_secs(30), move |raw| {
            let report = step(
                "C_Initialize in the forked child",
                raw.initialize(crate::raw::Init::Flags(CKF_OS_LOCKING_OK)),
                CKR_OK,
            )
            .and_then(|()| steps(raw, slot));
            match report {
                Ok(s) => format!("ok {s}").into_bytes(),
                Err(e) => format!("fail {e}").into_bytes(),
            }
        })
        .map_err(Check::Fail)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    match text.split_once(' ') {
        Some(("ok", rest)) => Ok(rest.to_string()),
        Some(("fail", why)) => Err(Check::Fail(format!("in the forked child: {why}"))),
        _ => Err(Check::Fail(format!("the forked child reported {text:?}"))),
    }
}

fn step(what: &str, rv: CK_RV, want: CK_RV) -> Result<(), String> {
    if rv == want {
        Ok(())
    } else {
        Err(format!(
            "{what} returned {}, want {}",
            crate::raw::name(rv),
            crate::raw::name(want)
        ))
    }
}

fn fork_child_initialises(ctx: &Ctx) -> R {
    let parent = open(ctx, false)?;
    let h = parent.h;
    forked(ctx, move |r, slot| {
        step(
            "the parent's session in the child after C_Initialize",
            r.session_info(h, false).0,
            CKR_SESSION_HANDLE_INVALID,
        )?;
        let (rv, s) = r.open_session(slot, CKF_SERIAL_SESSION, false);
        step("C_OpenSession in the child", rv, CKR_OK)?;
        step(
            "C_GenerateRandom in the child",
            r.random(s, Some(8)).0,
            CKR_OK,
        )?;
        r.finalize(false);
        Ok(String::new())
    })?;
    ok(
        "the parent's session after the child ran",
        ctx.raw.session_info(h, false).0,
    )
}

fn processes_share_objects(ctx: &Ctx) -> R {
    let label = b"kilt-conformance-parent".to_vec();
    let s = user(ctx, true)?;
    let mine = public_data(&ctx.raw, s.h, &label, true).map_err(Check::Fail)?;
    let pin = ctx.options.user_pin.as_bytes().to_vec();
    let result = forked(ctx, move |r, slot| {
        let (rv, s) = r.open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, false);
        step("C_OpenSession in the child", rv, CKR_OK)?;
        step(
            "C_Login in the child",
            r.login(s, CKU_USER, Some(&pin)),
            CKR_OK,
        )?;
        step(
            "C_FindObjectsInit",
            r.find_init(s, Some(&[(CKA_LABEL, b"kilt-conformance-parent".to_vec())])),
            CKR_OK,
        )?;
        let (_, found) = r.find(s, Some(4), false);
        if found.len() != 1 {
            return Err(format!(
                "the child found the parent's token object {} times",
                found.len()
            ));
        }
        public_data(r, s, b"kilt-conformance-child", true)
            .map_err(|e| format!("in the child: {e}"))?;
        Ok(String::new())
    });
    ctx.raw.destroy_object(s.h, mine);
    ok(
        "C_FindObjectsInit",
        ctx.raw.find_init(
            s.h,
            Some(&[(CKA_LABEL, b"kilt-conformance-child".to_vec())]),
        ),
    )?;
    let (_, found) = ctx.raw.find(s.h, Some(4), false);
    ctx.raw.find_final(s.h);
    for f in &found {
        ctx.raw.destroy_object(s.h, *f);
    }
    result?;
    ensure!(
        found.len() == 1,
        "the parent found the child's token object {} times",
        found.len()
    );
    Ok(())
}

fn processes_share_pin_counter(ctx: &Ctx) -> R {
    let (_, t) = ctx.raw.token_info(ctx.slot.id(), false);
    if t.flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED) != 0 {
        return Err(Check::Skip(
            "the user PIN already has failed tries; not spending another".into(),
        ));
    }
    let result = forked(ctx, |r, slot| {
        let (rv, s) = r.open_session(slot, CKF_SERIAL_SESSION, false);
        step("C_OpenSession in the child", rv, CKR_OK)?;
        step(
            "a wrong C_Login in the child",
            r.login(s, CKU_USER, Some(b"00000001")),
            CKR_PIN_INCORRECT,
        )?;
        r.finalize(false);
        Ok(String::new())
    });
    let (_, t) = ctx.raw.token_info(ctx.slot.id(), false);
    // A correct login resets the counter whatever happened.
    drop(user(ctx, false)?);
    result?;
    ensure!(
        t.flags & CKF_USER_PIN_COUNT_LOW != 0,
        "the parent does not see the wrong PIN the child gave (CKF_USER_PIN_COUNT_LOW not set)"
    );
    Ok(())
}

macro_rules! per_op {
    ($id:literal, $group:ident, $spec:literal, $title:literal, $f:ident, $op:ident $(, $arg:expr)*) => {
        case!($id, $group, $spec, $title, |c: &Ctx| $f(c, Op::$op $(, $arg)*))
    };
}

macro_rules! unclaimed {
    ($id:literal, $f:ident, $flag:ident) => {
        case!(
            $id,
            Claims,
            "§5.5 CK_MECHANISM_INFO flags",
            concat!(
                "C_",
                stringify!($f),
                " refused when no mechanism claims ",
                stringify!($flag)
            ),
            |c: &Ctx| unclaimed(c, crate::raw::Other::$f, $flag)
        )
    };
}

/// The state-machine, object, claim, 3.0 and concurrency cases.
pub fn machine_cases() -> Vec<Case> {
    vec![
        unclaimed!("unclaimed-encrypt", EncryptInit, CKF_ENCRYPT),
        unclaimed!("unclaimed-decrypt", DecryptInit, CKF_DECRYPT),
        unclaimed!("unclaimed-sign-recover", SignRecoverInit, CKF_SIGN_RECOVER),
        unclaimed!(
            "unclaimed-verify-recover",
            VerifyRecoverInit,
            CKF_VERIFY_RECOVER
        ),
        unclaimed!("unclaimed-generate-key", GenerateKey, CKF_GENERATE),
        unclaimed!("unclaimed-derive", DeriveKey, CKF_DERIVE),
        unclaimed!("unclaimed-wrap", WrapKey, CKF_WRAP),
        unclaimed!("unclaimed-unwrap", UnwrapKey, CKF_UNWRAP),
        case!(
            "legacy-parallel-functions",
            Claims,
            "§5.16 C_GetFunctionStatus, C_CancelFunction",
            "legacy functions: CKR_FUNCTION_NOT_PARALLEL",
            legacy_functions
        ),
        per_op!(
            "digest-init-twice",
            Operations,
            "§5.10 C_DigestInit",
            "second init: CKR_OPERATION_ACTIVE",
            init_twice,
            Digest
        ),
        per_op!(
            "digest-without-init",
            Operations,
            "§5.10 C_Digest",
            "C_Digest without init",
            without_init,
            Digest,
            ""
        ),
        per_op!(
            "digest-update-without-init",
            Operations,
            "§5.10 C_DigestUpdate",
            "C_DigestUpdate without init",
            without_init,
            Digest,
            "Update"
        ),
        per_op!(
            "digest-final-without-init",
            Operations,
            "§5.10 C_DigestFinal",
            "C_DigestFinal without init",
            without_init,
            Digest,
            "Final"
        ),
        case!(
            "digest-final-without-update",
            Operations,
            "§5.10 C_DigestFinal",
            "init then final: digest of nothing",
            final_without_update
        ),
        per_op!(
            "digest-after-update",
            Operations,
            "§5.10 C_Digest",
            "C_Digest cannot finish a multi-part digest",
            single_after_update,
            Digest
        ),
        per_op!(
            "digest-final-after-length-query",
            Operations,
            "§5.10, §5.2",
            "C_DigestFinal after C_Digest's length query refused",
            final_after_length_query,
            Digest
        ),
        per_op!(
            "digest-failed-call-ends",
            Operations,
            "§5.10 C_Digest",
            "a failed C_Digest ends the operation",
            failed_call_ends,
            Digest,
            false
        ),
        per_op!(
            "digest-final-failed-call-ends",
            Operations,
            "§5.10 C_DigestFinal",
            "a failed C_DigestFinal ends the operation",
            failed_call_ends,
            Digest,
            true
        ),
        per_op!(
            "digest-success-ends",
            Operations,
            "§5.10 C_Digest",
            "a finished digest is over",
            success_ends,
            Digest
        ),
        per_op!(
            "digest-bad-mechanism",
            Operations,
            "§5.10, §5.1.8",
            "wrong mechanism refused, session usable",
            bad_mechanism_keeps_session,
            Digest
        ),
        per_op!(
            "digest-mechanism-parameter",
            Operations,
            "§5.10, mech §2.16",
            "a parameter SHA-256 has none of",
            mechanism_parameter,
            Digest
        ),
        per_op!(
            "digest-per-session",
            Operations,
            "§5.10, §5.6",
            "operations belong to their session",
            per_session,
            Digest
        ),
        per_op!(
            "sign-init-twice",
            Operations,
            "§5.11 C_SignInit",
            "second init: CKR_OPERATION_ACTIVE",
            init_twice,
            Sign
        ),
        per_op!(
            "sign-without-init",
            Operations,
            "§5.11 C_Sign",
            "C_Sign without init",
            without_init,
            Sign,
            ""
        ),
        per_op!(
            "sign-update-without-init",
            Operations,
            "§5.11 C_SignUpdate",
            "C_SignUpdate without init",
            without_init,
            Sign,
            "Update"
        ),
        per_op!(
            "sign-final-without-init",
            Operations,
            "§5.11 C_SignFinal",
            "C_SignFinal without init",
            without_init,
            Sign,
            "Final"
        ),
        per_op!(
            "sign-after-update",
            Operations,
            "§5.11 C_Sign",
            "C_Sign cannot finish a multi-part signature",
            single_after_update,
            Sign
        ),
        per_op!(
            "sign-final-after-length-query",
            Operations,
            "§5.11, §5.2",
            "C_SignFinal after C_Sign's length query refused",
            final_after_length_query,
            Sign
        ),
        per_op!(
            "sign-failed-call-ends",
            Operations,
            "§5.11 C_Sign",
            "a failed C_Sign ends the operation",
            failed_call_ends,
            Sign,
            false
        ),
        per_op!(
            "sign-final-failed-call-ends",
            Operations,
            "§5.11 C_SignFinal",
            "a failed C_SignFinal ends the operation",
            failed_call_ends,
            Sign,
            true
        ),
        per_op!(
            "sign-success-ends",
            Operations,
            "§5.11 C_Sign",
            "a finished signature is over",
            success_ends,
            Sign
        ),
        per_op!(
            "sign-bad-mechanism",
            Operations,
            "§5.11, §5.1.8",
            "wrong mechanism refused, session usable",
            bad_mechanism_keeps_session,
            Sign
        ),
        per_op!(
            "sign-mechanism-parameter",
            Operations,
            "§5.11, mech §2.3.6",
            "a parameter ECDSA has none of",
            mechanism_parameter,
            Sign
        ),
        per_op!(
            "sign-per-session",
            Operations,
            "§5.11, §5.6",
            "operations belong to their session",
            per_session,
            Sign
        ),
        per_op!(
            "sign-with-public-key",
            Operations,
            "§5.11 C_SignInit",
            "a public key cannot sign",
            wrong_key_class,
            Sign
        ),
        case!(
            "sign-key-not-permitted",
            Operations,
            "§5.11, §4.9 CKA_SIGN",
            "CKA_SIGN false: CKR_KEY_FUNCTION_NOT_PERMITTED",
            key_not_permitted
        ),
        case!(
            "sign-raw-ecdsa-single-part",
            Operations,
            "mech §2.3.1 Table",
            "CKM_ECDSA refuses C_SignUpdate and ends",
            raw_ecdsa_single_part
        ),
        per_op!(
            "verify-init-twice",
            Operations,
            "§5.12 C_VerifyInit",
            "second init: CKR_OPERATION_ACTIVE",
            init_twice,
            Verify
        ),
        per_op!(
            "verify-without-init",
            Operations,
            "§5.12 C_Verify",
            "C_Verify without init",
            without_init,
            Verify,
            ""
        ),
        per_op!(
            "verify-update-without-init",
            Operations,
            "§5.12 C_VerifyUpdate",
            "C_VerifyUpdate without init",
            without_init,
            Verify,
            "Update"
        ),
        per_op!(
            "verify-final-without-init",
            Operations,
            "§5.12 C_VerifyFinal",
            "C_VerifyFinal without init",
            without_init,
            Verify,
            "Final"
        ),
        per_op!(
            "verify-after-update",
            Operations,
            "§5.12 C_Verify",
            "C_Verify cannot finish a multi-part verification",
            single_after_update,
            Verify
        ),
        per_op!(
            "verify-failed-call-ends",
            Operations,
            "§5.12 C_Verify",
            "a failed C_Verify ends the operation",
            failed_call_ends,
            Verify,
            false
        ),
        per_op!(
            "verify-final-failed-call-ends",
            Operations,
            "§5.12 C_VerifyFinal",
            "a failed C_VerifyFinal ends the operation",
            failed_call_ends,
            Verify,
            true
        ),
        per_op!(
            "verify-invalid-ends",
            Operations,
            "§5.12 C_Verify",
            "CKR_SIGNATURE_INVALID ends the operation",
            success_ends,
            Verify
        ),
        case!(
            "verify-signature-length",
            Operations,
            "§5.12 C_Verify",
            "wrong length: CKR_SIGNATURE_LEN_RANGE",
            verify_signature_length
        ),
        case!(
            "verify-multipart",
            Operations,
            "§5.12 C_VerifyUpdate",
            "multi-part verify of a single-part signature",
            verify_multipart
        ),
        per_op!(
            "verify-with-private-key",
            Operations,
            "§5.12 C_VerifyInit",
            "a private key cannot verify",
            wrong_key_class,
            Verify
        ),
        per_op!(
            "verify-per-session",
            Operations,
            "§5.12, §5.6",
            "operations belong to their session",
            per_session,
            Verify
        ),
        case!(
            "find-init-twice",
            Operations,
            "§5.7 C_FindObjectsInit",
            "second init: CKR_OPERATION_ACTIVE",
            find_init_twice
        ),
        case!(
            "find-without-init",
            Operations,
            "§5.7 C_FindObjects",
            "find and final without init",
            find_without_init
        ),
        case!(
            "find-after-final",
            Operations,
            "§5.7 C_FindObjectsFinal",
            "final ends the search",
            find_after_final
        ),
        case!(
            "find-exhausted",
            Operations,
            "§5.7 C_FindObjects",
            "after the last handle: none, CKR_OK",
            find_exhausted
        ),
        case!(
            "find-empty-template",
            Operations,
            "§5.7 C_FindObjectsInit",
            "no attributes find everything",
            find_all_with_empty_template
        ),
        case!(
            "find-by-class",
            Operations,
            "§5.7 C_FindObjectsInit",
            "a class template finds only that class",
            find_by_class
        ),
        case!(
            "find-per-session",
            Operations,
            "§5.7, §5.6",
            "searches belong to their session",
            find_per_session
        ),
        case!(
            "session-not-serial",
            Sessions,
            "§5.6 C_OpenSession",
            "no CKF_SERIAL_SESSION: CKR_SESSION_PARALLEL_NOT_SUPPORTED",
            not_serial
        ),
        case!(
            "close-all-sessions",
            Sessions,
            "§5.6 C_CloseAllSessions",
            "every handle of the slot ends",
            close_all
        ),
        case!(
            "last-session-logs-out",
            Sessions,
            "§5.6 C_CloseSession",
            "closing the last session logs out",
            last_session_logs_out
        ),
        case!(
            "session-info-fields",
            Sessions,
            "§5.6 C_GetSessionInfo",
            "slot and flags of the session",
            session_info_fields
        ),
        case!(
            "logout-not-logged-in",
            Sessions,
            "§5.6 C_Logout",
            "no login: CKR_USER_NOT_LOGGED_IN",
            logout_not_logged_in
        ),
        case!(
            "login-bad-user-type",
            Sessions,
            "§5.6 C_Login",
            "unknown user type: CKR_USER_TYPE_INVALID",
            bad_user_type
        ),
        case!(
            "so-while-user",
            Sessions,
            "§5.6 C_Login",
            "SO while the user is in: CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
            user_then_so
        ),
        case!(
            "so-session-rules",
            Sessions,
            "§5.6 Table 6, C_OpenSession",
            "SO state; no R/O session or user login beside the SO",
            so_then_user
        ),
        case!(
            "init-pin-needs-so",
            Sessions,
            "§5.6 C_InitPIN",
            "the user cannot C_InitPIN",
            init_pin_needs_so
        ),
        case!(
            "set-pin-read-only",
            Sessions,
            "§5.6 C_SetPIN",
            "R/O session: CKR_SESSION_READ_ONLY",
            set_pin_read_only
        ),
        case!(
            "set-pin-too-short",
            Sessions,
            "§5.6 C_SetPIN",
            "below ulMinPinLen: CKR_PIN_LEN_RANGE",
            set_pin_too_short
        ),
        case!(
            "session-counts",
            Claims,
            "§5.5 CK_TOKEN_INFO",
            "ulSessionCount and ulRwSessionCount count",
            session_counts
        ),
        case!(
            "create-bad-attribute-type",
            Objects,
            "§4.1.1, §5.7 C_CreateObject",
            "unknown attribute: CKR_ATTRIBUTE_TYPE_INVALID",
            |c: &Ctx| create(
                c,
                "C_CreateObject with attribute type 0x7ffffffe",
                &data_with((0x7fff_fffe, vec![1])),
                &[CKR_ATTRIBUTE_TYPE_INVALID]
            )
        ),
        case!(
            "create-bad-attribute-value",
            Objects,
            "§4.1.1, §5.7 C_CreateObject",
            "4-byte CK_BBOOL: CKR_ATTRIBUTE_VALUE_INVALID",
            |c: &Ctx| create(
                c,
                "C_CreateObject with a 4-byte CKA_MODIFIABLE",
                &data_with((CKA_MODIFIABLE, vec![1, 0, 0, 0])),
                &[CKR_ATTRIBUTE_VALUE_INVALID]
            )
        ),
        case!(
            "create-bad-class",
            Objects,
            "§4.1.1 CKA_CLASS",
            "unknown class refused",
            |c: &Ctx| create(
                c,
                "C_CreateObject of class 0x7777",
                &[(CKA_CLASS, ul(0x7777)), (CKA_TOKEN, no())],
                &[CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT]
            )
        ),
        case!(
            "certificate-without-value",
            Objects,
            "§4.6.3 Table 21",
            "X.509 without CKA_VALUE: CKR_TEMPLATE_INCOMPLETE",
            |c: &Ctx| create(
                c,
                "C_CreateObject of a certificate without CKA_VALUE",
                &[
                    (CKA_CLASS, ul(CKO_CERTIFICATE)),
                    (CKA_CERTIFICATE_TYPE, ul(CKC_X_509)),
                    (CKA_TOKEN, no()),
                    (CKA_SUBJECT, vec![0x30, 0])
                ],
                &[CKR_TEMPLATE_INCOMPLETE]
            )
        ),
        case!(
            "certificate-without-type",
            Objects,
            "§4.6.1 Table 18",
            "certificate without CKA_CERTIFICATE_TYPE: CKR_TEMPLATE_INCOMPLETE",
            |c: &Ctx| create(
                c,
                "C_CreateObject of a certificate without CKA_CERTIFICATE_TYPE",
                &[
                    (CKA_CLASS, ul(CKO_CERTIFICATE)),
                    (CKA_TOKEN, no()),
                    (CKA_VALUE, vec![0x30, 0])
                ],
                &[CKR_TEMPLATE_INCOMPLETE]
            )
        ),
        case!(
            "set-read-only-attribute",
            Objects,
            "§4.1.2, §5.7 C_SetAttributeValue",
            "CKA_CLASS cannot change",
            set_read_only_attribute
        ),
        case!(
            "set-label",
            Objects,
            "§5.7 C_SetAttributeValue",
            "a label changes and reads back",
            set_label
        ),
        case!(
            "not-modifiable",
            Objects,
            "§4.4 CKA_MODIFIABLE",
            "CKA_MODIFIABLE false: no changes",
            not_modifiable
        ),
        case!(
            "copy-object",
            Objects,
            "§5.7 C_CopyObject",
            "the copy takes the template, the original stays",
            copy_object
        ),
        case!(
            "private-object-needs-login",
            Objects,
            "§4.4 CKA_PRIVATE, §5.6 Table 7",
            "no private objects in a public session",
            private_needs_login
        ),
        case!(
            "session-object-scope",
            Objects,
            "§4.4 CKA_TOKEN",
            "session objects are shared by the sessions and end with theirs",
            session_object_shared
        ),
        case!(
            "token-object-persists",
            Objects,
            "§4.4 CKA_TOKEN",
            "token objects outlive their session",
            token_object_persists
        ),
        case!(
            "keygen-without-params",
            Objects,
            "mech §2.3.5 Table 35",
            "EC key pair without CKA_EC_PARAMS: CKR_TEMPLATE_INCOMPLETE",
            keygen_without_params
        ),
        case!(
            "keygen-unsupported-curve",
            Objects,
            "mech §2.3.5",
            "a curve beyond ulMaxKeySize refused",
            keygen_unsupported_curve
        ),
        case!(
            "generated-key-attributes",
            Objects,
            "§4.7 Table 24, §4.8",
            "class, type, CKA_LOCAL, CKA_KEY_GEN_MECHANISM, params",
            generated_attributes
        ),
        case!(
            "imported-public-key-verifies",
            Objects,
            "§4.8, mech §2.3.3",
            "an imported EC public key verifies outside signatures",
            imported_public_key_verifies
        ),
        case!(
            "signature-verifies-outside",
            Objects,
            "mech §2.3.6",
            "raw ECDSA verifies with p256 (raw call)",
            signature_verifies_outside
        ),
        case!(
            "strings-blank-padded",
            Claims,
            "§3.2 CK_INFO, CK_SLOT_INFO, CK_TOKEN_INFO",
            "info strings blank-padded UTF-8",
            strings_padded
        ),
        case!(
            "rng-flag",
            Claims,
            "§5.5 CKF_RNG, §5.15",
            "CKF_RNG matches C_GenerateRandom",
            rng_flag
        ),
        case!(
            "token-present-flag",
            Claims,
            "§5.5 C_GetSlotList, CKF_TOKEN_PRESENT",
            "slot flags match the slot lists",
            present_slots_listed
        ),
        case!(
            "mechanism-flags-hold",
            Claims,
            "§5.5 CK_MECHANISM_INFO",
            "CKF_DIGEST/SIGN/VERIFY/GENERATE_KEY_PAIR hold",
            mechanism_flags_hold
        ),
        case!(
            "ec-key-sizes",
            Claims,
            "§5.5 CK_MECHANISM_INFO, mech §2.3",
            "claimed EC key sizes include 256 bits",
            ec_key_sizes
        ),
        case!(
            "pin-lengths-claimed",
            Claims,
            "§5.5 ulMinPinLen, ulMaxPinLen",
            "the working PIN is within the claimed lengths",
            pin_lengths_claimed
        ),
        case!(
            "wait-no-event",
            Claims,
            "§5.5 C_WaitForSlotEvent",
            "CKF_DONT_BLOCK with nothing pending: CKR_NO_EVENT",
            wait_no_event
        ),
        per_op!(
            "session-cancel-digest",
            Pkcs11v3,
            "3.0 §5.6 C_SessionCancel",
            "cancels a digest; the session goes on",
            session_cancel,
            Digest
        ),
        per_op!(
            "session-cancel-sign",
            Pkcs11v3,
            "3.0 §5.6 C_SessionCancel",
            "cancels a signature",
            session_cancel,
            Sign
        ),
        per_op!(
            "session-cancel-verify",
            Pkcs11v3,
            "3.0 §5.6 C_SessionCancel",
            "cancels a verification",
            session_cancel,
            Verify
        ),
        case!(
            "session-cancel-find",
            Pkcs11v3,
            "3.0 §5.6 C_SessionCancel",
            "cancels a search",
            session_cancel_find
        ),
        case!(
            "session-cancel-only-named",
            Pkcs11v3,
            "3.0 §5.6 C_SessionCancel",
            "only the named operations end",
            session_cancel_only_named
        ),
        case!(
            "session-cancel-closed",
            Pkcs11v3,
            "3.0 §5.6 C_SessionCancel",
            "closed session: CKR_SESSION_HANDLE_INVALID",
            session_cancel_closed
        ),
        case!(
            "login-user",
            Pkcs11v3,
            "3.0 §5.6 C_LoginUser",
            "C_LoginUser logs the user in",
            login_user
        ),
        case!(
            "threads-own-sessions",
            Concurrency,
            "§5.5.2, §5.4 C_Initialize",
            "4 threads sign in their own sessions",
            threads_own_sessions
        ),
        case!(
            "threads-share-session",
            Concurrency,
            "§5.5.2, §5.4 CKF_OS_LOCKING_OK",
            "4 threads on one session",
            threads_share_session
        ),
        case!(
            "fork-child-initialises",
            Concurrency,
            "§5.5.1 (3.0 §6.7.7)",
            "the child's C_Initialize works; the parent's sessions stay the parent's",
            fork_child_initialises
        ),
        case!(
            "processes-share-objects",
            Concurrency,
            "§5.5.1, §4.4 CKA_TOKEN",
            "two processes see each other's token objects",
            processes_share_objects
        ),
        case!(
            "processes-share-pin-counter",
            Concurrency,
            "§5.5.1, §5.5 Table 8",
            "a wrong PIN in one process counts in the other",
            processes_share_pin_counter
        ),
    ]
}
