//! Checked conversions between C arguments and Rust values. A NULL pointer where data is needed, a
//! length that does not fit, or an absurd count gives `CKR_ARGUMENTS_BAD`; nothing is read before
//! its pointer and length were checked. (A non-NULL pointer that does not point to memory the
//! caller owns cannot be detected by any library; that is the caller's contract, §5.)

use crate::Rv;
use cryptoki_sys::*;
use kilt_emulator::Mechanism;
use kilt_emulator::object::Attr;

/// Most attributes a template may hold: far above any real use, low enough to refuse a garbage
/// count before allocating.
pub const MAX_TEMPLATE: usize = 1024;
/// Largest single buffer accepted from a caller (certificates are a few KiB).
pub const MAX_BUFFER: usize = 64 << 20;

const BAD: Rv = Rv(CKR_ARGUMENTS_BAD);

/// A length from the caller as `usize`, within [`MAX_BUFFER`].
pub fn len(n: CK_ULONG) -> Result<usize, Rv> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_BUFFER)
        .ok_or(BAD)
}

/// An input buffer. A zero length needs no pointer.
///
/// # Safety
/// When `n > 0` and `p` is not NULL, `p` must point to `n` readable bytes.
pub unsafe fn input<'a>(p: *const CK_BYTE, n: CK_ULONG) -> Result<&'a [u8], Rv> {
    let n = len(n)?;
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(BAD);
    }
    // SAFETY: non-NULL and the caller promises `n` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// A required output location.
///
/// # Safety
/// `p`, when not NULL, must point to a writable `T`.
pub unsafe fn out<'a, T>(p: *mut T) -> Result<&'a mut T, Rv> {
    // SAFETY: checked for NULL; the caller promises a writable `T`.
    unsafe { p.as_mut() }.ok_or(BAD)
}

/// Writes `data` under the output-length protocol of PKCS#11 2.40 §5.2: with a NULL buffer only
/// the length is returned (`CKR_OK`); with a short buffer the needed length is returned with
/// `CKR_BUFFER_TOO_SMALL`; otherwise the data is copied and its length returned.
///
/// # Safety
/// `buf`, when not NULL, must point to `*len_p` writable bytes; `len_p` as for [`out`].
pub unsafe fn write_output(buf: *mut CK_BYTE, len_p: *mut CK_ULONG, data: &[u8]) -> Result<(), Rv> {
    // SAFETY: forwarded contract.
    let len_ref = unsafe { out(len_p) }?;
    let need = CK_ULONG::try_from(data.len()).map_err(|_| Rv(CKR_GENERAL_ERROR))?;
    if buf.is_null() {
        *len_ref = need;
        return Ok(());
    }
    if *len_ref < need {
        *len_ref = need;
        return Err(Rv(CKR_BUFFER_TOO_SMALL));
    }
    // SAFETY: `buf` is non-NULL with at least `need` writable bytes (checked against `*len_ref`).
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
    *len_ref = need;
    Ok(())
}

/// What a caller's output buffer can take, decided before the operation runs, so a length query
/// or a short buffer leaves the operation active (§5.2).
pub enum OutputRoom {
    /// NULL buffer: report the length, run nothing.
    LengthOnly,
    /// Too small: report the length with `CKR_BUFFER_TOO_SMALL`, run nothing.
    TooSmall,
    /// Room enough: run the operation and write.
    Fits,
}

/// Decides [`OutputRoom`] for an output of `need` bytes and sets `*len_p` for the first two cases.
///
/// # Safety
/// As for [`write_output`].
pub unsafe fn output_room(
    buf: *mut CK_BYTE,
    len_p: *mut CK_ULONG,
    need: usize,
) -> Result<OutputRoom, Rv> {
    // SAFETY: forwarded contract.
    let len_ref = unsafe { out(len_p) }?;
    let need = CK_ULONG::try_from(need).map_err(|_| Rv(CKR_GENERAL_ERROR))?;
    if buf.is_null() {
        *len_ref = need;
        return Ok(OutputRoom::LengthOnly);
    }
    if *len_ref < need {
        *len_ref = need;
        return Ok(OutputRoom::TooSmall);
    }
    Ok(OutputRoom::Fits)
}

/// A template of attributes with values (C_CreateObject, C_FindObjectsInit, ...).
///
/// # Safety
/// When `n > 0`, `p` must point to `n` `CK_ATTRIBUTE`s whose non-NULL `pValue` point to
/// `ulValueLen` readable bytes.
pub unsafe fn template(p: *const CK_ATTRIBUTE, n: CK_ULONG) -> Result<Vec<Attr>, Rv> {
    let attrs = unsafe { attributes(p, n) }?;
    attrs
        .iter()
        .map(|a| {
            // SAFETY: forwarded contract of `pValue`/`ulValueLen`.
            let v = unsafe { input(a.pValue as *const CK_BYTE, a.ulValueLen) }?;
            Ok((a.type_, v.to_vec()))
        })
        .collect()
}

/// The attribute array itself (for C_GetAttributeValue, which writes into it).
///
/// # Safety
/// When `n > 0`, `p` must point to `n` `CK_ATTRIBUTE`s.
pub unsafe fn attributes<'a>(
    p: *const CK_ATTRIBUTE,
    n: CK_ULONG,
) -> Result<&'a [CK_ATTRIBUTE], Rv> {
    let n = usize::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_TEMPLATE)
        .ok_or(BAD)?;
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(BAD);
    }
    // SAFETY: non-NULL, caller promises `n` elements.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// A mechanism and its parameter bytes.
///
/// # Safety
/// `p`, when not NULL, must point to a `CK_MECHANISM` whose non-NULL `pParameter` points to
/// `ulParameterLen` bytes.
pub unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<Mechanism, Rv> {
    // SAFETY: checked for NULL; caller promises a readable mechanism.
    let m = unsafe { p.as_ref() }.ok_or(BAD)?;
    // SAFETY: forwarded contract of the parameter.
    let param = unsafe { input(m.pParameter as *const CK_BYTE, m.ulParameterLen) }?;
    Ok(Mechanism {
        kind: m.mechanism,
        param: param.to_vec(),
    })
}

/// A blank-padded fixed-width text field of a PKCS#11 info structure (cut at a char boundary).
pub fn padded<const N: usize>(s: &str) -> [CK_UTF8CHAR; N] {
    let mut out = [b' '; N];
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    out
}

/// A text field given by the caller (label): bytes up to the padding.
pub fn unpad(field: &[u8]) -> String {
    String::from_utf8_lossy(field)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_protocol_reports_length_then_fills() {
        let data = [1u8, 2, 3];
        let mut n: CK_ULONG = 0;
        unsafe { write_output(std::ptr::null_mut(), &mut n, &data) }.unwrap();
        assert_eq!(n, 3);
        let mut small = [0u8; 2];
        n = 2;
        let r = unsafe { write_output(small.as_mut_ptr(), &mut n, &data) };
        assert_eq!(r, Err(Rv(CKR_BUFFER_TOO_SMALL)));
        assert_eq!(n, 3);
        assert_eq!(small, [0, 0], "a short buffer is not written");
        let mut big = [0u8; 8];
        n = 8;
        unsafe { write_output(big.as_mut_ptr(), &mut n, &data) }.unwrap();
        assert_eq!((n, &big[..3]), (3, &data[..]));
        assert_eq!(
            unsafe { write_output(big.as_mut_ptr(), std::ptr::null_mut(), &data) },
            Err(BAD)
        );
    }

    #[test]
    fn null_inputs_with_length_are_refused() {
        assert_eq!(unsafe { input(std::ptr::null(), 4) }, Err(BAD));
        assert_eq!(unsafe { input(std::ptr::null(), 0) }, Ok(&[][..]));
        assert!(unsafe { template(std::ptr::null(), 1) }.is_err());
        assert!(unsafe { attributes(std::ptr::null(), CK_ULONG::MAX) }.is_err());
        assert!(unsafe { mechanism(std::ptr::null()) }.is_err());
        assert!(len(CK_ULONG::MAX).is_err());
    }

    #[test]
    fn text_fields_pad_and_cut_on_char_boundaries() {
        assert_eq!(&padded::<4>("ab"), b"ab  ");
        let f = padded::<3>("жж"); // 4 bytes; the second char does not fit
        assert_eq!(&f, &[0xd0, 0xb6, b' ']);
        assert_eq!(unpad(b"demo    "), "demo");
    }
}
