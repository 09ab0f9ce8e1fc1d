//! Short-Weierstrass arithmetic for GOST R 34.10 (RFC 7091 §5–§6): y² = x³ + ax + b over GF(p),
//! a base point P of prime order q (cofactor 1 for every curve here).
//!
//! Points are projective (X : Y : Z) and added with the complete formulas of Renes, Costello and
//! Batina ("Complete addition formulas for prime order elliptic curves", 2016, Algorithm 1):
//! one formula for every pair of points, doubling and the neutral point included, so a
//! Montgomery ladder over them takes the same steps whatever the scalar's bits are. Field and
//! scalar arithmetic are crypto-bigint's Montgomery residues (constant time).

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use crypto_bigint::{NonZero, Uint, Zero};

type Fe<const L: usize> = DynResidue<L>;

/// A curve's parameters, as integers (RFC 7091 §5.2).
#[derive(Clone, Debug)]
pub struct Params<const L: usize> {
    pub p: Uint<L>,
    pub a: Uint<L>,
    pub b: Uint<L>,
    pub q: Uint<L>,
    pub x: Uint<L>,
    pub y: Uint<L>,
}

#[derive(Clone, Copy, Debug)]
struct Point<const L: usize> {
    x: Fe<L>,
    y: Fe<L>,
    z: Fe<L>,
}

impl<const L: usize> ConditionallySelectable for Point<L> {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Point {
            x: Fe::conditional_select(&a.x, &b.x, choice),
            y: Fe::conditional_select(&a.y, &b.y, choice),
            z: Fe::conditional_select(&a.z, &b.z, choice),
        }
    }
}

/// A curve ready for arithmetic.
pub struct Curve<const L: usize> {
    field: DynResidueParams<L>,
    scalars: DynResidueParams<L>,
    /// q, checked non-zero once, for the reductions modulo q.
    q: NonZero<Uint<L>>,
    a: Fe<L>,
    b: Fe<L>,
    b3: Fe<L>,
    base: Point<L>,
}

impl<const L: usize> Curve<L> {
    /// Montgomery parameters for p and q (both odd primes).
    pub fn new(params: &Params<L>) -> Curve<L> {
        let field = DynResidueParams::new(&params.p);
        let fe = |v: &Uint<L>| Fe::new(v, field);
        let b = fe(&params.b);
        Curve {
            field,
            scalars: DynResidueParams::new(&params.q),
            q: NonZero::new(params.q).expect("a curve's order is not zero"),
            a: fe(&params.a),
            b,
            b3: b + b + b,
            base: Point {
                x: fe(&params.x),
                y: fe(&params.y),
                z: Fe::one(field),
            },
        }
    }

    /// The subgroup order q.
    pub fn order(&self) -> &Uint<L> {
        &self.q
    }

    fn neutral(&self) -> Point<L> {
        Point {
            x: Fe::zero(self.field),
            y: Fe::one(self.field),
            z: Fe::zero(self.field),
        }
    }

    /// Renes–Costello–Batina 2016, Algorithm 1 (complete addition, any a).
    fn add(&self, p: &Point<L>, q: &Point<L>) -> Point<L> {
        let (a, b3) = (self.a, self.b3);
        let mut t0 = p.x * q.x;
        let mut t1 = p.y * q.y;
        let mut t2 = p.z * q.z;
        let mut t3 = p.x + p.y;
        let mut t4 = q.x + q.y;
        t3 *= t4;
        t4 = t0 + t1;
        t3 -= t4;
        t4 = p.x + p.z;
        let mut t5 = q.x + q.z;
        t4 *= t5;
        t5 = t0 + t2;
        t4 -= t5;
        t5 = p.y + p.z;
        let mut x3 = q.y + q.z;
        t5 *= x3;
        x3 = t1 + t2;
        t5 -= x3;
        let mut z3 = a * t4;
        x3 = b3 * t2;
        z3 += x3;
        x3 = t1 - z3;
        z3 += t1;
        let mut y3 = x3 * z3;
        t1 = t0 + t0;
        t1 += t0;
        t2 = a * t2;
        t4 = b3 * t4;
        t1 += t2;
        t2 = t0 - t2;
        t2 = a * t2;
        t4 += t2;
        t0 = t1 * t4;
        y3 += t0;
        t0 = t5 * t4;
        x3 = t3 * x3;
        x3 -= t0;
        t0 = t3 * t1;
        z3 = t5 * z3;
        z3 += t0;
        Point {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// k·P by a Montgomery ladder over every bit of the integer type: the same additions for
    /// every k of the type (constant time in k).
    fn mul(&self, k: &Uint<L>, p: &Point<L>) -> Point<L> {
        let (mut r0, mut r1) = (self.neutral(), *p);
        for i in (0..Uint::<L>::BITS).rev() {
            let bit = Choice::from(k.bit(i));
            Point::conditional_swap(&mut r0, &mut r1, bit);
            r1 = self.add(&r0, &r1);
            r0 = self.add(&r0, &r0);
            Point::conditional_swap(&mut r0, &mut r1, bit);
        }
        r0
    }

    /// Affine coordinates; `None` for the neutral point.
    fn affine(&self, p: &Point<L>) -> Option<(Uint<L>, Uint<L>)> {
        let (inv, invertible) = p.z.invert();
        if !bool::from(invertible) {
            return None;
        }
        Some(((p.x * inv).retrieve(), (p.y * inv).retrieve()))
    }

    /// The point (x, y) if it is on the curve (and not the neutral point).
    fn point(&self, x: &Uint<L>, y: &Uint<L>) -> Option<Point<L>> {
        let p = self.field.modulus();
        if x >= p || y >= p {
            return None;
        }
        let (x, y) = (Fe::new(x, self.field), Fe::new(y, self.field));
        let on_curve = (y * y).ct_eq(&(x * x * x + self.a * x + self.b));
        bool::from(on_curve).then_some(Point {
            x,
            y,
            z: Fe::one(self.field),
        })
    }

    /// The public key d·P of a private key 0 < d < q.
    pub fn public_key(&self, d: &Uint<L>) -> Option<(Uint<L>, Uint<L>)> {
        if !self.is_scalar(d) {
            return None;
        }
        self.affine(&self.mul(d, &self.base))
    }

    /// Whether 0 < v < q.
    pub fn is_scalar(&self, v: &Uint<L>) -> bool {
        !bool::from(v.is_zero()) && v < &*self.q
    }

    /// e = α mod q, and 1 if that is 0 (RFC 7091 §6.1 step 2).
    pub fn e(&self, alpha: &Uint<L>) -> Uint<L> {
        let e = alpha.rem(&self.q);
        if bool::from(e.is_zero()) {
            Uint::ONE
        } else {
            e
        }
    }

    /// RFC 7091 §6.1 steps 3–6 with the given k: (r, s), or `None` when r or s is 0 (take
    /// another k) or d, k are out of range.
    pub fn sign_with_k(
        &self,
        d: &Uint<L>,
        alpha: &Uint<L>,
        k: &Uint<L>,
    ) -> Option<(Uint<L>, Uint<L>)> {
        if !self.is_scalar(d) || !self.is_scalar(k) {
            return None;
        }
        let e = self.e(alpha);
        let (cx, _) = self.affine(&self.mul(k, &self.base))?;
        let r = cx.rem(&self.q);
        let sc = |v: &Uint<L>| Fe::new(v, self.scalars);
        let s = (sc(&r) * sc(d) + sc(k) * sc(&e)).retrieve();
        (self.is_scalar(&r) && self.is_scalar(&s)).then_some((r, s))
    }

    /// RFC 7091 §6.2: whether (r, s) signs α under the public key (x, y).
    pub fn verify(
        &self,
        x: &Uint<L>,
        y: &Uint<L>,
        alpha: &Uint<L>,
        r: &Uint<L>,
        s: &Uint<L>,
    ) -> bool {
        if !self.is_scalar(r) || !self.is_scalar(s) {
            return false;
        }
        let Some(q_point) = self.point(x, y) else {
            return false;
        };
        let sc = |v: &Uint<L>| Fe::new(v, self.scalars);
        let (v, _) = sc(&self.e(alpha)).invert();
        let z1 = (sc(s) * v).retrieve();
        let z2 = (-(sc(r) * v)).retrieve();
        let c = self.add(&self.mul(&z1, &self.base), &self.mul(&z2, &q_point));
        let Some((cx, _)) = self.affine(&c) else {
            return false;
        };
        cx.rem(&self.q) == *r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::U256;

    /// RFC 7091 Appendix A.1 (the same as RFC 5832's example): the test curve, key, digest
    /// integer and k, and the r and s the standard gives.
    fn example() -> (Curve<4>, U256, U256, U256) {
        let h = U256::from_be_hex;
        let curve = Curve::new(&Params {
            p: h("8000000000000000000000000000000000000000000000000000000000000431"),
            a: U256::from_u8(7),
            b: h("5FBFF498AA938CE739B8E022FBAFEF40563F6E6A3472FC2A514C0CE9DAE23B7E"),
            q: h("8000000000000000000000000000000150FE8A1892976154C59CFC193ACCF5B3"),
            x: U256::from_u8(2),
            y: h("08E2A8A0E65147D4BD6316030E16D19C85C97F0A9CA267122B96ABBCEA7E8FC8"),
        });
        let d = h("7A929ADE789BB9BE10ED359DD39A72C11B60961F49397EEE1D19CE9891EC3B28");
        let e = h("2DFBC1B372D89A1188C09C52E0EEC61FCE52032AB1022E8E67ECE6672B043EE5");
        let k = h("77105C9B20BCD3122823C8CF6FCC7B956DE33814E95B7FE64FED924594DCEAB3");
        (curve, d, e, k)
    }

    #[test]
    fn the_rfc_7091_example_gives_its_public_key_r_and_s() {
        let h = U256::from_be_hex;
        let (curve, d, e, k) = example();
        let (x, y) = curve.public_key(&d).unwrap();
        assert_eq!(
            x,
            h("7F2B49E270DB6D90D8595BEC458B50C58585BA1D4E9B788F6689DBD8E56FD80B")
        );
        assert_eq!(
            y,
            h("26F1B489D6701DD185C8413A977B3CBBAF64D1C593D26627DFFB101A87FF77DA")
        );
        let (r, s) = curve.sign_with_k(&d, &e, &k).unwrap();
        assert_eq!(
            r,
            h("41AA28D2F1AB148280CD9ED56FEDA41974053554A42767B83AD043FD39DC0493")
        );
        assert_eq!(
            s,
            h("01456C64BA4642A1653C235A98A60249BCD6D3F746B631DF928014F6C5BF9C40")
        );
        assert!(curve.verify(&x, &y, &e, &r, &s));
    }

    #[test]
    fn verification_refuses_what_was_not_signed() {
        let (curve, d, e, k) = example();
        let (x, y) = curve.public_key(&d).unwrap();
        let (r, s) = curve.sign_with_k(&d, &e, &k).unwrap();
        let one = U256::ONE;
        assert!(
            !curve.verify(&x, &y, &e.wrapping_add(&one), &r, &s),
            "other digest"
        );
        assert!(
            !curve.verify(&x, &y, &e, &r.wrapping_add(&one), &s),
            "other r"
        );
        assert!(
            !curve.verify(&x, &y, &e, &r, &s.wrapping_add(&one)),
            "other s"
        );
        assert!(!curve.verify(&x, &y, &e, &U256::ZERO, &s), "r = 0");
        assert!(!curve.verify(&x, &y, &e, &r, curve.order()), "s = q");
        assert!(
            !curve.verify(&y, &x, &e, &r, &s),
            "not a point of the curve"
        );
        // The same values not reduced (each + p or + q still fits in 256 bits on this curve).
        let (p, q) = (*curve.field.modulus(), *curve.order());
        assert!(!curve.verify(&x.wrapping_add(&p), &y, &e, &r, &s), "x ≥ p");
        assert!(!curve.verify(&x, &y.wrapping_add(&p), &e, &r, &s), "y ≥ p");
        assert!(!curve.verify(&x, &y, &e, &r.wrapping_add(&q), &s), "r ≥ q");
        assert!(!curve.verify(&x, &y, &e, &r, &s.wrapping_add(&q)), "s ≥ q");
        let (x2, y2) = curve.public_key(&d.wrapping_add(&one)).unwrap();
        assert!(!curve.verify(&x2, &y2, &e, &r, &s), "another key");
    }

    #[test]
    fn keys_and_nonces_out_of_range_are_refused() {
        let (curve, d, e, k) = example();
        let q = *curve.order();
        assert!(curve.public_key(&U256::ZERO).is_none());
        assert!(curve.public_key(&q).is_none());
        assert!(curve.public_key(&q.wrapping_sub(&U256::ONE)).is_some());
        assert!(curve.sign_with_k(&d, &e, &U256::ZERO).is_none());
        assert!(curve.sign_with_k(&q, &e, &k).is_none());
    }

    #[test]
    fn a_nonce_that_gives_s_zero_is_refused() {
        // s = r·d + k·e mod q is 0 for e = −r·d·k⁻¹: that k must not give a signature.
        let (curve, d, _, k) = example();
        let (cx, _) = curve.affine(&curve.mul(&k, &curve.base)).unwrap();
        let q = NonZero::new(*curve.order()).unwrap();
        let sc = |v: &U256| Fe::new(v, curve.scalars);
        let r = cx.rem(&q);
        let e = (-(sc(&r) * sc(&d) * sc(&k).invert().0)).retrieve();
        assert_eq!(curve.sign_with_k(&d, &e, &k), None);
        assert!(
            curve
                .sign_with_k(&d, &e, &k.wrapping_add(&U256::ONE))
                .is_some()
        );
    }

    #[test]
    fn a_digest_that_is_zero_modulo_q_is_signed_as_one() {
        let (curve, d, _, k) = example();
        let q = *curve.order();
        assert_eq!(curve.e(&q), U256::ONE);
        assert_eq!(curve.e(&U256::ZERO), U256::ONE);
        assert_eq!(
            curve.sign_with_k(&d, &q, &k),
            curve.sign_with_k(&d, &U256::ONE, &k)
        );
    }

    #[test]
    fn the_ladder_agrees_with_repeated_addition() {
        let (curve, ..) = example();
        let mut sum = curve.neutral();
        for n in 0u64..20 {
            let ladder = curve.mul(&U256::from_u64(n), &curve.base);
            assert_eq!(curve.affine(&ladder), curve.affine(&sum), "{n}·P");
            sum = curve.add(&sum, &curve.base);
        }
        // q·P is the neutral point.
        assert!(
            curve
                .affine(&curve.mul(curve.order(), &curve.base))
                .is_none()
        );
    }
}
