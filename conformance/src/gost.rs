//! GOST R 34.10 and GOST R 34.11-94 (PKCS#11 2.40 Current Mechanisms, "GOST R 34.10-2001",
//! "GOST R 34.11-94"): key generation, the parameter attributes, signing without and with
//! hashing, the digest. Every case skips unless the token advertises the mechanisms it needs;
//! signatures are also checked by `kilt-gost`, independently of the token's C_Verify.

use crate::calls::{S, expect, mechanisms, needs, no, ok, pair, ul, user, yes};
use crate::cases::{Case, Check, R};
use crate::raw::{Buf, Mech, Op};
use crate::{Ctx, Group};
use cryptoki_sys::*;
use kilt_gost::CurveId;

/// DER OIDs: CryptoPro-A (RFC 4357 §10.8), tc26-512-paramSetA (RFC 7836), the GOST R 34.11-94
/// Test and CryptoPro parameter sets (RFC 4357 §10.2), Streebog-512 (RFC 6986).
const CRYPTOPRO_A: &[u8] = &[0x06, 0x07, 0x2a, 0x85, 0x03, 0x02, 0x02, 0x23, 0x01];
const TC26_512_A: &[u8] = &[
    0x06, 0x09, 0x2a, 0x85, 0x03, 0x07, 0x01, 0x02, 0x01, 0x02, 0x01,
];
const GOST94_TEST: &[u8] = &[0x06, 0x07, 0x2a, 0x85, 0x03, 0x02, 0x02, 0x1e, 0x00];
const STREEBOG_512: &[u8] = &[0x06, 0x08, 0x2a, 0x85, 0x03, 0x07, 0x01, 0x01, 0x02, 0x03];

fn curve_params(c: CurveId) -> &'static [u8] {
    match c {
        CurveId::CryptoProA => CRYPTOPRO_A,
        CurveId::Tc26_512A => TC26_512_A,
    }
}

/// The curves the token's key generation covers, by its advertised key sizes.
fn curves(ctx: &Ctx) -> Result<Vec<CurveId>, Check> {
    needs(ctx, CKM_GOSTR3410_KEY_PAIR_GEN)?;
    let (rv, info) = ctx
        .raw
        .mechanism_info(ctx.slot.id(), CKM_GOSTR3410_KEY_PAIR_GEN, false);
    ok("C_GetMechanismInfo(CKM_GOSTR3410_KEY_PAIR_GEN)", rv)?;
    Ok([(CurveId::CryptoProA, 256), (CurveId::Tc26_512A, 512)]
        .into_iter()
        .filter(|(_, bits)| (info.ulMinKeySize..=info.ulMaxKeySize).contains(bits))
        .map(|(c, _)| c)
        .collect())
}

/// A GOST session key pair on `curve` (public, private).
fn gost_pair(s: &S, curve: CurveId) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), Check> {
    let (rv, public, private) = s.raw.generate_key_pair(
        s.h,
        &Mech::new(CKM_GOSTR3410_KEY_PAIR_GEN),
        &[
            (CKA_TOKEN, no()),
            (CKA_GOSTR3410_PARAMS, curve_params(curve).to_vec()),
            (CKA_VERIFY, yes()),
        ],
        &[(CKA_TOKEN, no()), (CKA_SIGN, yes()), (CKA_SENSITIVE, yes())],
        false,
    );
    ok(&format!("C_GenerateKeyPair on {curve:?}"), rv)?;
    Ok((public, private))
}

/// One attribute's value (at most 1 KiB).
fn value(s: &S, o: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Result<(CK_RV, Vec<u8>), Check> {
    let (rv, mut outs) = s.raw.get_attributes(s.h, o, Some(&[(ty, Buf::Cap(1024))]));
    let out = outs
        .pop()
        .ok_or_else(|| Check::Fail("no attribute came back".into()))?;
    ensure!(
        !out.overrun,
        "the module claimed more bytes than the buffer held"
    );
    Ok((rv, out.bytes))
}

fn sign(s: &S, m: &Mech, key: CK_OBJECT_HANDLE, data: &[u8]) -> Result<Vec<u8>, Check> {
    ok("C_SignInit", s.raw.init(Op::Sign, s.h, Some(m), key))?;
    let out = s
        .raw
        .single(Op::Sign, s.h, Some(data), Buf::Cap(256), false);
    ok("C_Sign", out.rv)?;
    Ok(out.bytes)
}

fn verify(s: &S, m: &Mech, key: CK_OBJECT_HANDLE, data: &[u8], sig: &[u8]) -> CK_RV {
    let rv = s.raw.init(Op::Verify, s.h, Some(m), key);
    if rv != CKR_OK {
        return rv;
    }
    s.raw.verify(s.h, Some(data), Some(sig))
}

fn keygen(ctx: &Ctx) -> R {
    let s = user(ctx, false)?;
    for curve in curves(ctx)? {
        let (public, private) = gost_pair(&s, curve)?;
        for (o, half) in [(public, "public"), (private, "private")] {
            let (rv, t) = value(&s, o, CKA_KEY_TYPE)?;
            ok("C_GetAttributeValue(CKA_KEY_TYPE)", rv)?;
            ensure!(
                t == ul(CKK_GOSTR3410),
                "{curve:?} {half} key type is not CKK_GOSTR3410"
            );
            let (rv, p) = value(&s, o, CKA_GOSTR3410_PARAMS)?;
            ok("C_GetAttributeValue(CKA_GOSTR3410_PARAMS)", rv)?;
            ensure!(
                p == curve_params(curve),
                "{curve:?} {half} key names another parameter set"
            );
        }
        let (rv, v) = value(&s, public, CKA_VALUE)?;
        ok("C_GetAttributeValue(public CKA_VALUE)", rv)?;
        ensure!(
            v.len() == 2 * curve.int_len(),
            "{curve:?} public CKA_VALUE is {} bytes, want {} (x ‖ y)",
            v.len(),
            2 * curve.int_len()
        );
        let (rv, _) = value(&s, private, CKA_VALUE)?;
        expect(
            "reading a sensitive private CKA_VALUE",
            rv,
            &[CKR_ATTRIBUTE_SENSITIVE],
        )?;
    }
    Ok(())
}

fn keygen_needs_params(ctx: &Ctx) -> R {
    needs(ctx, CKM_GOSTR3410_KEY_PAIR_GEN)?;
    let s = user(ctx, false)?;
    let (rv, _, _) = s.raw.generate_key_pair(
        s.h,
        &Mech::new(CKM_GOSTR3410_KEY_PAIR_GEN),
        &[(CKA_TOKEN, no())],
        &[(CKA_TOKEN, no()), (CKA_SIGN, yes())],
        false,
    );
    expect(
        "C_GenerateKeyPair without CKA_GOSTR3410_PARAMS",
        rv,
        &[CKR_TEMPLATE_INCOMPLETE],
    )
}

fn sign_digest(ctx: &Ctx) -> R {
    needs(ctx, CKM_GOSTR3410)?;
    let s = user(ctx, false)?;
    let m = Mech::new(CKM_GOSTR3410);
    for curve in curves(ctx)? {
        let n = curve.int_len();
        let (public, private) = gost_pair(&s, curve)?;
        let digest: Vec<u8> = (0..n).map(|i| (i * 7 + 1) as u8).collect();
        let sig = sign(&s, &m, private, &digest)?;
        ensure!(
            sig.len() == 2 * n,
            "{curve:?}: a {}-byte signature, want {} (s ‖ r)",
            sig.len(),
            2 * n
        );
        let (_, v) = value(&s, public, CKA_VALUE)?;
        ensure!(
            kilt_gost::pkcs11::verify_digest(curve, &v, &digest, &sig),
            "{curve:?}: kilt-gost does not verify the token's signature as s ‖ r over the \
             digest read little-endian"
        );
        ok("C_Verify", verify(&s, &m, public, &digest, &sig))?;
        let mut bad = sig.clone();
        bad[1] ^= 0x40;
        expect(
            "C_Verify of a changed signature",
            verify(&s, &m, public, &digest, &bad),
            &[CKR_SIGNATURE_INVALID],
        )?;
        ok("C_SignInit", s.raw.init(Op::Sign, s.h, Some(&m), private))?;
        let short = s
            .raw
            .single(Op::Sign, s.h, Some(&digest[1..]), Buf::Cap(256), false);
        expect(
            "C_Sign of a digest one byte short",
            short.rv,
            &[CKR_DATA_LEN_RANGE],
        )?;
    }
    Ok(())
}

fn sign_with_hash(ctx: &Ctx) -> R {
    needs(ctx, CKM_GOSTR3410_WITH_GOSTR3411)?;
    let s = user(ctx, false)?;
    let m = Mech::new(CKM_GOSTR3410_WITH_GOSTR3411);
    let data = "Платёжное поручение №1".as_bytes();
    for curve in curves(ctx)? {
        let (public, private) = gost_pair(&s, curve)?;
        let single = sign(&s, &m, private, data)?;
        ok("C_SignInit", s.raw.init(Op::Sign, s.h, Some(&m), private))?;
        for part in data.chunks(7) {
            ok("C_SignUpdate", s.raw.update(Op::Sign, s.h, Some(part)))?;
        }
        let multi = s.raw.finish(Op::Sign, s.h, Buf::Cap(256), false);
        ok("C_SignFinal", multi.rv)?;
        for (sig, how) in [(&single, "single-part"), (&multi.bytes, "multi-part")] {
            ok(
                &format!("C_Verify of the {how} signature"),
                verify(&s, &m, public, data, sig),
            )?;
        }
        // Independently, when the key names a hash the suite knows.
        let (_, hash) = value(&s, public, CKA_GOSTR3411_PARAMS)?;
        let digest = match hash.as_slice() {
            GOST94_TEST => Some(kilt_gost::gost94_test(data).to_vec()),
            STREEBOG_512 => Some(kilt_gost::streebog512(data).to_vec()),
            _ => None,
        };
        if let Some(d) = digest {
            let (_, v) = value(&s, public, CKA_VALUE)?;
            ensure!(
                kilt_gost::pkcs11::verify_digest(curve, &v, &d, &single),
                "{curve:?}: the signature is not over the hash the key's CKA_GOSTR3411_PARAMS names"
            );
        }
        expect(
            "C_Verify over other data",
            verify(&s, &m, public, b"other", &single),
            &[CKR_SIGNATURE_INVALID],
        )?;
    }
    Ok(())
}

fn digest(ctx: &Ctx) -> R {
    needs(ctx, CKM_GOSTR3411)?;
    let s = user(ctx, false)?;
    let msg = b"This is message, length=32 bytes";
    // RFC 5831 §7.3.1 under the Test set; the CryptoPro set's value as OpenSSL's GOST engine
    // computes it (`openssl dgst -engine gost -md_gost94`), the mechanism's default.
    for (param, want, set) in [
        (
            Some(GOST94_TEST),
            "b1c466d37519b82e8319819ff32595e047a28cb6f83eff1c6916a815a637fffa",
            "Test",
        ),
        (
            None,
            "2cefc2f7b7bdc514e18ea57fa74ff357e7fa17d652c75f69cb1be7893ede48eb",
            "CryptoPro (no parameter)",
        ),
    ] {
        let m = match param {
            Some(p) => Mech {
                kind: CKM_GOSTR3411,
                param: p.to_vec(),
            },
            None => Mech::new(CKM_GOSTR3411),
        };
        ok("C_DigestInit", s.raw.init(Op::Digest, s.h, Some(&m), 0))?;
        let out = s
            .raw
            .single(Op::Digest, s.h, Some(msg), Buf::Cap(64), false);
        ok("C_Digest", out.rv)?;
        let got: String = out.bytes.iter().map(|b| format!("{b:02x}")).collect();
        ensure!(got == want, "{set} set: digest {got}, want {want}");
    }
    Ok(())
}

fn key_type_inconsistent(ctx: &Ctx) -> R {
    needs(ctx, CKM_GOSTR3410)?;
    needs(ctx, CKM_ECDSA)?;
    let s = user(ctx, false)?;
    let curve = *curves(ctx)?
        .first()
        .ok_or_else(|| Check::Skip("no GOST curve advertised".into()))?;
    let (_, gost) = gost_pair(&s, curve)?;
    let (_, ec) = pair(&s)?;
    expect(
        "C_SignInit(CKM_GOSTR3410) with a P-256 key",
        s.raw
            .init(Op::Sign, s.h, Some(&Mech::new(CKM_GOSTR3410)), ec),
        &[CKR_KEY_TYPE_INCONSISTENT],
    )?;
    expect(
        "C_SignInit(CKM_ECDSA) with a GOST key",
        s.raw.init(Op::Sign, s.h, Some(&Mech::new(CKM_ECDSA)), gost),
        &[CKR_KEY_TYPE_INCONSISTENT],
    )
}

fn mechanism_claims(ctx: &Ctx) -> R {
    let list = mechanisms(ctx);
    let gost = [
        (CKM_GOSTR3410_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR),
        (CKM_GOSTR3410, CKF_SIGN | CKF_VERIFY),
        (CKM_GOSTR3410_WITH_GOSTR3411, CKF_SIGN | CKF_VERIFY),
        (CKM_GOSTR3411, CKF_DIGEST),
    ];
    let advertised: Vec<_> = gost.iter().filter(|(m, _)| list.contains(m)).collect();
    if advertised.is_empty() {
        return Err(Check::Skip("the token advertises no GOST mechanism".into()));
    }
    for (m, flags) in advertised {
        let (rv, info) = ctx.raw.mechanism_info(ctx.slot.id(), *m, false);
        ok("C_GetMechanismInfo", rv)?;
        ensure!(
            info.flags & flags == *flags,
            "mechanism {m:#x} lacks the flags {flags:#x} its functions need"
        );
    }
    Ok(())
}

/// The GOST cases.
pub(crate) fn gost_cases() -> Vec<Case> {
    vec![
        case!(
            "gost-mechanism-flags",
            Gost,
            "mech GOST R 34.10-2001 / R 34.11-94",
            "advertised GOST mechanisms carry the flags of their functions",
            mechanism_claims
        ),
        case!(
            "gost-keygen",
            Gost,
            "mech GOST R 34.10-2001 key objects",
            "a key pair on each advertised curve: CKK_GOSTR3410, the curve's OID, a 2n-byte public value, a sensitive private one",
            keygen
        ),
        case!(
            "gost-keygen-needs-params",
            Gost,
            "mech GOST R 34.10-2001 public key, footnote 3",
            "generation without CKA_GOSTR3410_PARAMS is CKR_TEMPLATE_INCOMPLETE",
            keygen_needs_params
        ),
        case!(
            "gost-sign-digest",
            Gost,
            "mech GOST R 34.10-2001 without hashing",
            "CKM_GOSTR3410 signs a digest as s ‖ r (checked by kilt-gost), verifies, refuses a changed signature and a short digest",
            sign_digest
        ),
        case!(
            "gost-sign-with-hash",
            Gost,
            "mech GOST R 34.10-2001 with GOST R 34.11-94",
            "CKM_GOSTR3410_WITH_GOSTR3411 single- and multi-part, over the key's hash",
            sign_with_hash
        ),
        case!(
            "gost-digest",
            Gost,
            "mech GOST R 34.11-94 digest",
            "CKM_GOSTR3411: RFC 5831's Test-set example, and the CryptoPro set without a parameter",
            digest
        ),
        case!(
            "gost-key-type-inconsistent",
            Gost,
            "§5.11 C_SignInit",
            "a GOST mechanism with a P-256 key, and ECDSA with a GOST key: CKR_KEY_TYPE_INCONSISTENT",
            key_type_inconsistent
        ),
    ]
}
