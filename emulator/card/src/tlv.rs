//! BER-TLV as PIV and ISO/IEC 7816-4 use it: tags of one to three bytes, definite lengths of one
//! to three bytes (ISO/IEC 7816-4 §6.3; SP 800-73-4 Part 2 §3 uses nothing else).

/// Appends tag, length and value.
pub fn put(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    if tag > 0xFFFF {
        out.push((tag >> 16) as u8);
    }
    if tag > 0xFF {
        out.push((tag >> 8) as u8);
    }
    out.push(tag as u8);
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xFF {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(value);
}

/// One TLV as a value.
pub fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    put(&mut out, tag, value);
    out
}

/// Reads one TLV at the start of `b`: (tag, value, rest). `None` if it is malformed or cut short.
pub fn next(b: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    let (&first, mut rest) = b.split_first()?;
    let mut tag = u32::from(first);
    // Low five bits all set: more tag bytes follow while b8 is set (§6.3 of 7816-4).
    if first & 0x1F == 0x1F {
        loop {
            let (&t, r) = rest.split_first()?;
            rest = r;
            if tag > 0xFFFF {
                return None;
            }
            tag = (tag << 8) | u32::from(t);
            if t & 0x80 == 0 {
                break;
            }
        }
    }
    let (&l, r) = rest.split_first()?;
    rest = r;
    let len = match l {
        0..=0x7F => usize::from(l),
        0x81 => {
            let (&a, r) = rest.split_first()?;
            rest = r;
            usize::from(a)
        }
        0x82 => {
            let [a, b, r @ ..] = rest else { return None };
            rest = r;
            usize::from(u16::from_be_bytes([*a, *b]))
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// All TLVs of `b` in order; `None` if any is malformed.
pub fn parse_all(mut b: &[u8]) -> Option<Vec<(u32, &[u8])>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (t, v, rest) = next(b)?;
        out.push((t, v));
        b = rest;
    }
    Some(out)
}

/// The value of the first TLV with `tag` among `b`'s top level.
pub fn find(b: &[u8], tag: u32) -> Option<&[u8]> {
    parse_all(b)?
        .into_iter()
        .find_map(|(t, v)| (t == tag).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn piv_tags_and_long_lengths() {
        let v = vec![7u8; 300];
        let t = tlv(0x5FC105, &v);
        assert_eq!(&t[..6], &[0x5F, 0xC1, 0x05, 0x82, 0x01, 0x2C]);
        assert_eq!(next(&t), Some((0x5FC105, &v[..], &[][..])));
        assert_eq!(find(&[0x7C, 5, 0x82, 0, 0x81, 1, 9], 0x81), None);
        let inner = find(&[0x7C, 5, 0x82, 0, 0x81, 1, 9], 0x7C).unwrap();
        assert_eq!(find(inner, 0x81), Some(&[9u8][..]));
        assert_eq!(next(&[0x53, 0x82, 0x01]), None);
        assert_eq!(next(&[0x53, 0x83, 0, 0, 1, 0]), None);
    }

    #[test]
    fn tags_up_to_three_bytes_and_no_longer() {
        // Tags are written with as many bytes as their value needs.
        assert_eq!(tlv(0xFF, &[]), [0xFF, 0x00]);
        assert_eq!(tlv(0xFFFF, &[]), [0xFF, 0xFF, 0x00]);
        assert_eq!(tlv(0x7F49, &[]), [0x7F, 0x49, 0x00]);
        // Lengths: one byte up to 127, then 81 xx, then 82 xx xx.
        assert_eq!(tlv(0x53, &[0; 127])[..2], [0x53, 0x7F]);
        assert_eq!(tlv(0x53, &[0; 128])[..3], [0x53, 0x81, 0x80]);
        assert_eq!(tlv(0x53, &[0; 255])[..3], [0x53, 0x81, 0xFF]);
        assert_eq!(tlv(0x53, &[0; 256])[..4], [0x53, 0x82, 0x01, 0x00]);
        // Read: a three-byte tag is the longest.
        assert_eq!(
            next(&[0xFF, 0xFF, 0x01, 0x00]),
            Some((0xFFFF01, &[][..], &[][..]))
        );
        assert_eq!(next(&[0x1F, 0xFF, 0xFF, 0x01, 0x00]), None);
        assert_eq!(next(&[0x5F, 0xC1]), None);
    }

    proptest! {
        #[test]
        fn round_trip(tag in prop_oneof![0x01u32..0x1F, 0x5F01u32..0x5F7F, 0x5FC101u32..0x5FC17F],
                      value in proptest::collection::vec(any::<u8>(), 0..1000)) {
            let t = tlv(tag, &value);
            prop_assert_eq!(next(&t), Some((tag, &value[..], &[][..])));
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_all(&b);
        }
    }
}
