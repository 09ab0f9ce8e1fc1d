//! Objects and their attribute rules.
//!
//! The rules are the tables of PKCS#11 2.40 §4 (common attribute footnotes, Table 10): which
//! attributes must or must not be given on creation or generation, which are sensitive, which can
//! be modified afterwards, and which may only move one way (`CKA_SENSITIVE` to true,
//! `CKA_EXTRACTABLE` to false). They are data ([`schema`]), so one validator serves every class.
//!
//! Values are kept in their PKCS#11 byte form (`CK_ULONG` native-endian, `CK_BBOOL` one byte), so
//! the C edge copies them without conversion.

use crate::crypto;
use crate::error::{Error, Result};
use cryptoki_sys::*;
use std::collections::BTreeMap;

/// Each key-pair generation mechanism and the key type it makes: C_GenerateKeyPair reads it one
/// way, `CKA_KEY_GEN_MECHANISM` the other.
pub const KEY_PAIR_GEN: [(CK_MECHANISM_TYPE, CK_KEY_TYPE); 2] = [
    (CKM_EC_KEY_PAIR_GEN, CKK_EC),
    (CKM_GOSTR3410_KEY_PAIR_GEN, CKK_GOSTR3410),
];

/// An attribute type (`CKA_*`).
pub type AttrType = CK_ATTRIBUTE_TYPE;

/// One attribute of a template: its type and value bytes.
pub type Attr = (AttrType, Vec<u8>);

/// Encodes a `CK_ULONG` value.
pub fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Encodes a `CK_BBOOL` value.
pub fn bool(v: bool) -> Vec<u8> {
    vec![if v { CK_TRUE } else { CK_FALSE }]
}

fn decode_ulong(v: &[u8]) -> Option<CK_ULONG> {
    Some(CK_ULONG::from_ne_bytes(v.try_into().ok()?))
}

/// How a value is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Ulong,
    Bytes,
    /// `CK_DATE`: empty or 8 ASCII digits.
    Date,
}

// Footnotes of PKCS#11 2.40 Table 10, as bit flags.
const REQ_CREATE: u16 = 1 << 1; // 1: must be specified on C_CreateObject
const NO_CREATE: u16 = 1 << 2; // 2: must not be specified on C_CreateObject
const REQ_GEN: u16 = 1 << 3; // 3: must be specified on generation
const NO_GEN: u16 = 1 << 4; // 4: must not be specified on generation
const SENSITIVE: u16 = 1 << 6; // 6/7: not revealed when sensitive or not extractable
const MODIFIABLE: u16 = 1 << 8; // 8: may change after creation
const SO_TRUE: u16 = 1 << 10; // 10: only the SO may set it to true
const ONLY_TRUE: u16 = 1 << 11; // 11: may only change to true
const ONLY_FALSE: u16 = 1 << 12; // 12: may only change to false

#[derive(Clone, Copy, Debug)]
struct Spec {
    ty: AttrType,
    kind: Kind,
    flags: u16,
}

const fn s(ty: AttrType, kind: Kind, flags: u16) -> Spec {
    Spec { ty, kind, flags }
}

use Kind::{Bool as B, Bytes as Y, Date as D, Ulong as U};

const STORAGE: &[Spec] = &[
    s(CKA_CLASS, U, REQ_CREATE),
    s(CKA_TOKEN, B, 0),
    s(CKA_PRIVATE, B, 0),
    s(CKA_MODIFIABLE, B, 0),
    s(CKA_LABEL, Y, MODIFIABLE),
    s(CKA_COPYABLE, B, ONLY_FALSE | MODIFIABLE),
    s(CKA_DESTROYABLE, B, 0),
];
const DATA: &[Spec] = &[
    s(CKA_APPLICATION, Y, MODIFIABLE),
    s(CKA_OBJECT_ID, Y, MODIFIABLE),
    s(CKA_VALUE, Y, MODIFIABLE),
];
const CERTIFICATE: &[Spec] = &[
    s(CKA_CERTIFICATE_TYPE, U, REQ_CREATE),
    s(CKA_TRUSTED, B, SO_TRUE),
    s(CKA_CERTIFICATE_CATEGORY, U, 0),
    s(CKA_CHECK_VALUE, Y, NO_CREATE),
    s(CKA_START_DATE, D, 0),
    s(CKA_END_DATE, D, 0),
    s(CKA_PUBLIC_KEY_INFO, Y, 0),
    // X.509 public key certificate (§4.6.3): only ID, ISSUER and SERIAL_NUMBER may change.
    s(CKA_SUBJECT, Y, REQ_CREATE),
    s(CKA_ID, Y, MODIFIABLE),
    s(CKA_ISSUER, Y, MODIFIABLE),
    s(CKA_SERIAL_NUMBER, Y, MODIFIABLE),
    s(CKA_VALUE, Y, REQ_CREATE),
    s(CKA_URL, Y, 0),
    s(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, Y, 0),
    s(CKA_HASH_OF_ISSUER_PUBLIC_KEY, Y, 0),
    s(CKA_JAVA_MIDP_SECURITY_DOMAIN, U, 0),
];
const KEY: &[Spec] = &[
    s(CKA_KEY_TYPE, U, REQ_CREATE),
    s(CKA_ID, Y, MODIFIABLE),
    s(CKA_START_DATE, D, MODIFIABLE),
    s(CKA_END_DATE, D, MODIFIABLE),
    s(CKA_DERIVE, B, MODIFIABLE),
    s(CKA_LOCAL, B, NO_CREATE | NO_GEN),
    s(CKA_KEY_GEN_MECHANISM, U, NO_CREATE | NO_GEN),
    s(CKA_ALLOWED_MECHANISMS, Y, 0),
    s(CKA_SUBJECT, Y, MODIFIABLE),
    s(CKA_PUBLIC_KEY_INFO, Y, 0),
];
/// Public keys of any type (PKCS#11 2.40 §4.8).
const PUBLIC: &[Spec] = &[
    s(CKA_ENCRYPT, B, MODIFIABLE),
    s(CKA_VERIFY, B, MODIFIABLE),
    s(CKA_VERIFY_RECOVER, B, MODIFIABLE),
    s(CKA_WRAP, B, MODIFIABLE),
    s(CKA_TRUSTED, B, SO_TRUE),
];
const PUBLIC_EC: &[Spec] = &[
    s(CKA_EC_PARAMS, Y, REQ_CREATE | REQ_GEN),
    s(CKA_EC_POINT, Y, REQ_CREATE | NO_GEN),
];
/// GOST R 34.10 keys (PKCS#11 2.40 curr. mech. "GOST R 34.10-2001" public and private key
/// objects): the parameter sets by OID, the public key as `CKA_VALUE`.
const PUBLIC_GOST: &[Spec] = &[
    s(CKA_GOSTR3410_PARAMS, Y, REQ_CREATE | REQ_GEN),
    s(CKA_GOSTR3411_PARAMS, Y, 0),
    s(CKA_GOST28147_PARAMS, Y, 0),
    s(CKA_VALUE, Y, REQ_CREATE | NO_GEN),
];
/// Private keys of any type (§4.9).
const PRIVATE: &[Spec] = &[
    s(CKA_SENSITIVE, B, MODIFIABLE | ONLY_TRUE),
    s(CKA_DECRYPT, B, MODIFIABLE),
    s(CKA_SIGN, B, MODIFIABLE),
    s(CKA_SIGN_RECOVER, B, MODIFIABLE),
    s(CKA_UNWRAP, B, MODIFIABLE),
    s(CKA_EXTRACTABLE, B, MODIFIABLE | ONLY_FALSE),
    s(CKA_ALWAYS_SENSITIVE, B, NO_CREATE | NO_GEN),
    s(CKA_NEVER_EXTRACTABLE, B, NO_CREATE | NO_GEN),
    s(CKA_WRAP_WITH_TRUSTED, B, MODIFIABLE | ONLY_TRUE),
    s(CKA_ALWAYS_AUTHENTICATE, B, 0),
];
const PRIVATE_EC: &[Spec] = &[
    s(CKA_EC_PARAMS, Y, REQ_CREATE | NO_GEN),
    s(CKA_VALUE, Y, REQ_CREATE | NO_GEN | SENSITIVE),
];
const PRIVATE_GOST: &[Spec] = &[
    // Table footnote 4 says the parameters are not given on generation (they come from the
    // public template); OpenSC's pkcs11-tool gives them in both, and tokens accept that: so
    // does kilt, when they agree with the public key's (C_GenerateKeyPair checks).
    s(CKA_GOSTR3410_PARAMS, Y, REQ_CREATE),
    s(CKA_GOSTR3411_PARAMS, Y, 0),
    s(CKA_GOST28147_PARAMS, Y, 0),
    s(CKA_VALUE, Y, REQ_CREATE | NO_GEN | SENSITIVE),
];

/// The object classes the token stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Data,
    Certificate,
    PublicKey,
    PrivateKey,
}

impl Class {
    fn from_ck(v: CK_OBJECT_CLASS) -> Result<Class> {
        match v {
            CKO_DATA => Ok(Class::Data),
            CKO_CERTIFICATE => Ok(Class::Certificate),
            CKO_PUBLIC_KEY => Ok(Class::PublicKey),
            CKO_PRIVATE_KEY => Ok(Class::PrivateKey),
            _ => Err(Error::AttributeValueInvalid(CKA_CLASS)),
        }
    }

    /// The `CKO_*` value.
    pub fn ck(self) -> CK_OBJECT_CLASS {
        match self {
            Class::Data => CKO_DATA,
            Class::Certificate => CKO_CERTIFICATE,
            Class::PublicKey => CKO_PUBLIC_KEY,
            Class::PrivateKey => CKO_PRIVATE_KEY,
        }
    }

    /// The attribute tables of the class; keys' depend on their `CKA_KEY_TYPE` (EC when none is
    /// given: generation fills it in from the mechanism).
    fn tables(self, key_type: Option<CK_KEY_TYPE>) -> [&'static [Spec]; 4] {
        let gost = key_type == Some(CKK_GOSTR3410);
        match self {
            Class::Data => [STORAGE, DATA, &[], &[]],
            Class::Certificate => [STORAGE, CERTIFICATE, &[], &[]],
            Class::PublicKey if gost => [STORAGE, KEY, PUBLIC, PUBLIC_GOST],
            Class::PrivateKey if gost => [STORAGE, KEY, PRIVATE, PRIVATE_GOST],
            Class::PublicKey => [STORAGE, KEY, PUBLIC, PUBLIC_EC],
            Class::PrivateKey => [STORAGE, KEY, PRIVATE, PRIVATE_EC],
        }
    }

    fn spec(self, key_type: Option<CK_KEY_TYPE>, ty: AttrType) -> Option<Spec> {
        // Class-specific entries come last and win (e.g. CKA_VALUE of a private key is sensitive).
        self.tables(key_type)
            .iter()
            .rev()
            .flat_map(|t| t.iter())
            .find(|s| s.ty == ty)
            .copied()
    }

    /// Defaults the token fills in (PKCS#11 2.40 §4; token-specific choices follow the device:
    /// private keys are private, sensitive and non-extractable).
    fn defaults(self) -> Vec<Attr> {
        let mut d = vec![
            (CKA_TOKEN, bool(false)),
            (CKA_PRIVATE, bool(self == Class::PrivateKey)),
            (CKA_MODIFIABLE, bool(true)),
            (CKA_LABEL, vec![]),
            (CKA_COPYABLE, bool(true)),
            (CKA_DESTROYABLE, bool(true)),
        ];
        match self {
            Class::Data => d.extend([
                (CKA_APPLICATION, vec![]),
                (CKA_OBJECT_ID, vec![]),
                (CKA_VALUE, vec![]),
            ]),
            Class::Certificate => d.extend([
                (CKA_TRUSTED, bool(false)),
                (
                    CKA_CERTIFICATE_CATEGORY,
                    ulong(CK_CERTIFICATE_CATEGORY_UNSPECIFIED),
                ),
                (CKA_START_DATE, vec![]),
                (CKA_END_DATE, vec![]),
                (CKA_PUBLIC_KEY_INFO, vec![]),
                (CKA_ID, vec![]),
                (CKA_ISSUER, vec![]),
                (CKA_SERIAL_NUMBER, vec![]),
                (CKA_URL, vec![]),
                (CKA_HASH_OF_SUBJECT_PUBLIC_KEY, vec![]),
                (CKA_HASH_OF_ISSUER_PUBLIC_KEY, vec![]),
                (
                    CKA_JAVA_MIDP_SECURITY_DOMAIN,
                    ulong(CK_SECURITY_DOMAIN_UNSPECIFIED),
                ),
            ]),
            Class::PublicKey | Class::PrivateKey => {
                d.extend([
                    (CKA_ID, vec![]),
                    (CKA_START_DATE, vec![]),
                    (CKA_END_DATE, vec![]),
                    (CKA_DERIVE, bool(false)),
                    (CKA_ALLOWED_MECHANISMS, vec![]),
                    (CKA_SUBJECT, vec![]),
                    (CKA_PUBLIC_KEY_INFO, vec![]),
                ]);
                if self == Class::PublicKey {
                    d.extend([
                        (CKA_ENCRYPT, bool(false)),
                        (CKA_VERIFY, bool(true)),
                        (CKA_VERIFY_RECOVER, bool(false)),
                        (CKA_WRAP, bool(false)),
                        (CKA_TRUSTED, bool(false)),
                    ]);
                } else {
                    d.extend([
                        (CKA_SENSITIVE, bool(true)),
                        (CKA_DECRYPT, bool(false)),
                        (CKA_SIGN, bool(true)),
                        (CKA_SIGN_RECOVER, bool(false)),
                        (CKA_UNWRAP, bool(false)),
                        (CKA_EXTRACTABLE, bool(false)),
                        (CKA_WRAP_WITH_TRUSTED, bool(false)),
                        (CKA_ALWAYS_AUTHENTICATE, bool(false)),
                    ]);
                }
            }
        }
        d
    }
}

/// How an object comes to be: the rules for what a template may hold differ (Table 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `C_CreateObject` (or an import).
    Created,
    /// `C_GenerateKeyPair`.
    Generated,
    /// `C_CopyObject`: the template may only hold modifiable attributes and the one-way flags.
    Copied,
}

/// A token or session object. The private scalar of a key is never among the attributes: it is
/// held sealed in `secret` under the token key.
#[derive(Clone, PartialEq, Eq)]
pub struct Object {
    attrs: BTreeMap<AttrType, Vec<u8>>,
    /// The sealed private scalar of a private key.
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("class", &self.class())
            .field("attributes", &self.attrs.len())
            .finish_non_exhaustive()
    }
}

/// The outcome of reading one attribute (PKCS#11 2.40 §5.7 C_GetAttributeValue).
#[derive(Debug, PartialEq, Eq)]
pub enum AttrValue<'a> {
    Value(&'a [u8]),
    /// Sensitive or unextractable.
    Sensitive,
    /// Not an attribute of this object.
    Invalid,
    /// The private scalar: revealed only after unsealing, which needs the logged-in user.
    Secret,
}

impl Object {
    /// Builds an object from a template, filling defaults and checking every rule. `so` says
    /// whether the security officer is logged in (only the SO may set `CKA_TRUSTED`).
    pub fn from_template(template: &[Attr], origin: Origin, so: bool) -> Result<Object> {
        let mut given: BTreeMap<AttrType, Vec<u8>> = BTreeMap::new();
        for (ty, v) in template {
            if let Some(prev) = given.insert(*ty, v.clone())
                && &prev != v
            {
                return Err(Error::TemplateInconsistent(
                    "an attribute is given twice with different values",
                ));
            }
        }
        let class = match given.get(&CKA_CLASS) {
            Some(v) => {
                Class::from_ck(decode_ulong(v).ok_or(Error::AttributeValueInvalid(CKA_CLASS))?)?
            }
            None => return Err(Error::TemplateIncomplete(CKA_CLASS)),
        };
        let key_type = given.get(&CKA_KEY_TYPE).and_then(|v| decode_ulong(v));
        for (ty, v) in &given {
            let spec = class
                .spec(key_type, *ty)
                .ok_or(Error::AttributeTypeInvalid(*ty))?;
            check_kind(spec, v)?;
            let forbidden = match origin {
                Origin::Created => spec.flags & NO_CREATE != 0,
                Origin::Generated => spec.flags & NO_GEN != 0,
                Origin::Copied => false,
            };
            if forbidden {
                return Err(Error::AttributeReadOnly(*ty));
            }
            if spec.flags & SO_TRUE != 0 && v.as_slice() == [CK_TRUE] && !so {
                return Err(Error::AttributeReadOnly(*ty));
            }
        }
        for tables in class.tables(key_type) {
            for spec in tables {
                let required = match origin {
                    Origin::Created => spec.flags & REQ_CREATE != 0,
                    Origin::Generated => spec.flags & REQ_GEN != 0,
                    Origin::Copied => false,
                };
                if required && !given.contains_key(&spec.ty) {
                    return Err(Error::TemplateIncomplete(spec.ty));
                }
            }
        }
        let mut attrs: BTreeMap<AttrType, Vec<u8>> = class.defaults().into_iter().collect();
        attrs.extend(given);
        let mut obj = Object {
            attrs,
            secret: None,
        };
        obj.check_class_values(class)?;
        if matches!(class, Class::PublicKey | Class::PrivateKey) {
            let generated = origin == Origin::Generated;
            obj.attrs.insert(CKA_LOCAL, bool(generated));
            let mech = KEY_PAIR_GEN
                .iter()
                .find(|(_, k)| generated && Some(*k) == key_type)
                .map_or(CK_UNAVAILABLE_INFORMATION, |(m, _)| *m);
            obj.attrs.insert(CKA_KEY_GEN_MECHANISM, ulong(mech));
        }
        if class == Class::PrivateKey {
            // §4.9: ALWAYS_SENSITIVE / NEVER_EXTRACTABLE hold only for keys born on the token.
            let born_here = origin == Origin::Generated;
            let sens = obj.flag(CKA_SENSITIVE);
            let extr = obj.flag(CKA_EXTRACTABLE);
            obj.attrs
                .insert(CKA_ALWAYS_SENSITIVE, bool(born_here && sens));
            obj.attrs
                .insert(CKA_NEVER_EXTRACTABLE, bool(born_here && !extr));
        }
        Ok(obj)
    }

    fn check_class_values(&self, class: Class) -> Result<()> {
        match class {
            Class::Certificate => {
                if self.ulong(CKA_CERTIFICATE_TYPE) != Some(CKC_X_509) {
                    return Err(Error::AttributeValueInvalid(CKA_CERTIFICATE_TYPE));
                }
            }
            Class::PublicKey | Class::PrivateKey
                if self.ulong(CKA_KEY_TYPE) == Some(CKK_GOSTR3410) =>
            {
                let curve = match self.attrs.get(&CKA_GOSTR3410_PARAMS) {
                    Some(p) => Some(crypto::gost_curve(p).ok_or(Error::CurveNotSupported)?),
                    None => None,
                };
                if let Some(h) = self.attrs.get(&CKA_GOSTR3411_PARAMS)
                    && crypto::gost_hash(h).is_none()
                {
                    return Err(Error::AttributeValueInvalid(CKA_GOSTR3411_PARAMS));
                }
                if class == Class::PublicKey
                    && let (Some(c), Some(v)) = (curve, self.attrs.get(&CKA_VALUE))
                    && v.len() != 2 * c.int_len()
                {
                    return Err(Error::AttributeValueInvalid(CKA_VALUE));
                }
            }
            Class::PublicKey | Class::PrivateKey => {
                if self.ulong(CKA_KEY_TYPE).is_some_and(|k| k != CKK_EC) {
                    return Err(Error::AttributeValueInvalid(CKA_KEY_TYPE));
                }
                if let Some(p) = self.attrs.get(&CKA_EC_PARAMS)
                    && p.as_slice() != crypto::P256_PARAMS
                {
                    return Err(Error::CurveNotSupported);
                }
                if let Some(v) = self.attrs.get(&CKA_EC_POINT) {
                    let point = crypto::parse_ec_point(v)
                        .ok_or(Error::AttributeValueInvalid(CKA_EC_POINT))?;
                    p256::PublicKey::from_sec1_bytes(point)
                        .map_err(|_| Error::AttributeValueInvalid(CKA_EC_POINT))?;
                }
            }
            Class::Data => {}
        }
        Ok(())
    }

    /// Finishes a key generated or imported on the token: type, parameters and key material
    /// (`public` as [`crypto::PrivateKey::public`] gives it). A GOST key keeps the parameter
    /// OIDs it was given; `gost` gives those it lacks (the public key's, on generation).
    pub fn set_key_material(
        &mut self,
        alg: crypto::KeyAlgorithm,
        public: &[u8],
        sealed_scalar: Option<Vec<u8>>,
        gost: Option<(&[u8], &[u8])>,
    ) {
        match alg {
            crypto::KeyAlgorithm::P256 => {
                self.attrs.insert(CKA_KEY_TYPE, ulong(CKK_EC));
                self.attrs
                    .insert(CKA_EC_PARAMS, crypto::P256_PARAMS.to_vec());
            }
            crypto::KeyAlgorithm::Gost(_) => {
                self.attrs.insert(CKA_KEY_TYPE, ulong(CKK_GOSTR3410));
                if let Some((curve, hash)) = gost {
                    self.attrs
                        .entry(CKA_GOSTR3410_PARAMS)
                        .or_insert_with(|| curve.to_vec());
                    self.attrs
                        .entry(CKA_GOSTR3411_PARAMS)
                        .or_insert_with(|| hash.to_vec());
                }
            }
        }
        match (sealed_scalar, alg) {
            (Some(secret), _) => {
                self.attrs.remove(&CKA_VALUE);
                self.secret = Some(secret);
            }
            (None, crypto::KeyAlgorithm::P256) => {
                self.attrs
                    .insert(CKA_EC_POINT, crypto::ec_point_der(public));
            }
            (None, crypto::KeyAlgorithm::Gost(_)) => {
                self.attrs.insert(CKA_VALUE, public.to_vec());
            }
        }
    }

    /// What a key is: P-256, or GOST on the curve its `CKA_GOSTR3410_PARAMS` names.
    pub fn key_algorithm(&self) -> Option<crypto::KeyAlgorithm> {
        match self.ulong(CKA_KEY_TYPE)? {
            CKK_EC => Some(crypto::KeyAlgorithm::P256),
            CKK_GOSTR3410 => Some(crypto::KeyAlgorithm::Gost(crypto::gost_curve(
                self.bytes(CKA_GOSTR3410_PARAMS)?,
            )?)),
            _ => None,
        }
    }

    /// The hash a GOST key's `CKA_GOSTR3411_PARAMS` names.
    pub fn gost_hash(&self) -> Option<crypto::HashKind> {
        self.bytes(CKA_GOSTR3411_PARAMS).and_then(crypto::gost_hash)
    }

    /// The public key as [`crypto::verify_with`] takes it: the P-256 point, or the GOST
    /// `CKA_VALUE` of a public key.
    pub fn public_key(&self) -> Option<&[u8]> {
        match self.key_algorithm()? {
            crypto::KeyAlgorithm::P256 => self.public_point(),
            // A private key holds no CKA_VALUE among its attributes (its scalar is sealed).
            crypto::KeyAlgorithm::Gost(_) => self.bytes(CKA_VALUE),
        }
    }

    /// Takes the plain private scalar out of a created private key, to be sealed by the caller.
    pub fn take_private_value(&mut self) -> Option<Vec<u8>> {
        self.attrs.remove(&CKA_VALUE)
    }

    /// Rebuilds an object from stored parts (no checks: the store holds only checked objects).
    pub fn from_stored(attrs: BTreeMap<AttrType, Vec<u8>>, secret: Option<Vec<u8>>) -> Object {
        Object { attrs, secret }
    }

    /// All attributes, for the store.
    pub fn attributes(&self) -> &BTreeMap<AttrType, Vec<u8>> {
        &self.attrs
    }

    /// The object's class.
    pub fn class(&self) -> Option<Class> {
        self.ulong(CKA_CLASS).and_then(|c| Class::from_ck(c).ok())
    }

    /// A `CK_ULONG` attribute.
    pub fn ulong(&self, ty: AttrType) -> Option<CK_ULONG> {
        self.attrs.get(&ty).and_then(|v| decode_ulong(v))
    }

    /// A `CK_BBOOL` attribute (false when absent).
    pub fn flag(&self, ty: AttrType) -> bool {
        self.attrs
            .get(&ty)
            .is_some_and(|v| v.as_slice() == [CK_TRUE])
    }

    /// Raw bytes of an attribute.
    pub fn bytes(&self, ty: AttrType) -> Option<&[u8]> {
        self.attrs.get(&ty).map(Vec::as_slice)
    }

    /// A token object (persisted) rather than a session object.
    pub fn is_token(&self) -> bool {
        self.flag(CKA_TOKEN)
    }

    /// A private object: visible only to the logged-in user.
    pub fn is_private(&self) -> bool {
        self.flag(CKA_PRIVATE)
    }

    /// The uncompressed public point of an EC public key.
    pub fn public_point(&self) -> Option<&[u8]> {
        self.bytes(CKA_EC_POINT).and_then(crypto::parse_ec_point)
    }

    /// Reads one attribute under the sensitivity rules of §5.7.
    pub fn get(&self, ty: AttrType) -> AttrValue<'_> {
        let Some(class) = self.class() else {
            return AttrValue::Invalid;
        };
        let Some(spec) = class.spec(self.ulong(CKA_KEY_TYPE), ty) else {
            return AttrValue::Invalid;
        };
        if spec.flags & SENSITIVE != 0 {
            if self.flag(CKA_SENSITIVE) || !self.flag(CKA_EXTRACTABLE) {
                return AttrValue::Sensitive;
            }
            if self.secret.is_some() {
                return AttrValue::Secret;
            }
        }
        match self.attrs.get(&ty) {
            Some(v) => AttrValue::Value(v),
            None => AttrValue::Invalid,
        }
    }

    /// Whether every attribute of `template` has the same value here (§5.7 C_FindObjectsInit).
    /// Sensitive attributes never match, so a search cannot probe a secret.
    pub fn matches(&self, template: &[Attr]) -> bool {
        // Raw bytes first (cheap, and false for nearly every object of a large token); the
        // sensitivity rules only for a candidate.
        template.iter().all(|(ty, v)| {
            self.attrs.get(ty).is_some_and(|have| have == v)
                && matches!(self.get(*ty), AttrValue::Value(_))
        })
    }

    /// Applies a `C_SetAttributeValue` template: all of it or nothing (§5.7).
    pub fn updated(&self, template: &[Attr], so: bool) -> Result<Object> {
        let class = self.class().ok_or(Error::ObjectNotFound)?;
        if !self.flag(CKA_MODIFIABLE) {
            return Err(Error::AttributeReadOnly(
                template.first().map(|a| a.0).unwrap_or(CKA_MODIFIABLE),
            ));
        }
        let mut next = self.clone();
        for (ty, v) in template {
            let spec = class
                .spec(self.ulong(CKA_KEY_TYPE), *ty)
                .ok_or(Error::AttributeTypeInvalid(*ty))?;
            check_kind(spec, v)?;
            next.apply_change(spec, v, so)?;
        }
        next.check_class_values(class)?;
        Ok(next)
    }

    /// Applies a `C_CopyObject` template to a copy (§5.7: only attributes that could be modified,
    /// plus CKA_TOKEN/CKA_PRIVATE/CKA_MODIFIABLE/CKA_DESTROYABLE, may be given).
    pub fn copied(&self, template: &[Attr], so: bool) -> Result<Object> {
        let class = self.class().ok_or(Error::ObjectNotFound)?;
        if !self.flag(CKA_COPYABLE) {
            return Err(Error::ActionProhibited);
        }
        let mut next = self.clone();
        for (ty, v) in template {
            let spec = class
                .spec(self.ulong(CKA_KEY_TYPE), *ty)
                .ok_or(Error::AttributeTypeInvalid(*ty))?;
            check_kind(spec, v)?;
            if matches!(
                *ty,
                CKA_TOKEN | CKA_PRIVATE | CKA_MODIFIABLE | CKA_DESTROYABLE
            ) {
                next.attrs.insert(*ty, v.clone());
            } else {
                next.apply_change(spec, v, so)?;
            }
        }
        next.check_class_values(class)?;
        Ok(next)
    }

    fn apply_change(&mut self, spec: Spec, v: &[u8], so: bool) -> Result<()> {
        let ty = spec.ty;
        if self.attrs.get(&ty).is_some_and(|cur| cur.as_slice() == v) {
            return Ok(()); // setting the current value is always allowed
        }
        if spec.flags & MODIFIABLE == 0 {
            return Err(Error::AttributeReadOnly(ty));
        }
        let to_true = v == [CK_TRUE];
        if (spec.flags & ONLY_TRUE != 0 && !to_true)
            || (spec.flags & ONLY_FALSE != 0 && to_true)
            || (spec.flags & SO_TRUE != 0 && to_true && !so)
        {
            return Err(Error::AttributeReadOnly(ty));
        }
        self.attrs.insert(ty, v.to_vec());
        Ok(())
    }

    /// A rough size in bytes, for `C_GetObjectSize`.
    pub fn size(&self) -> usize {
        self.attrs.values().map(|v| v.len() + 16).sum::<usize>()
            + self.secret.as_ref().map_or(0, Vec::len)
    }
}

fn check_kind(spec: Spec, v: &[u8]) -> Result<()> {
    let ok = match spec.kind {
        Kind::Bool => matches!(v, [CK_FALSE] | [CK_TRUE]),
        Kind::Ulong => v.len() == std::mem::size_of::<CK_ULONG>(),
        Kind::Bytes => true,
        Kind::Date => v.is_empty() || (v.len() == 8 && v.iter().all(u8::is_ascii_digit)),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::AttributeValueInvalid(spec.ty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(extra: &[Attr]) -> Vec<Attr> {
        let mut t = vec![(CKA_CLASS, ulong(CKO_DATA))];
        t.extend_from_slice(extra);
        t
    }

    #[test]
    fn defaults_fill_in_and_template_wins() {
        let o = Object::from_template(&data(&[(CKA_LABEL, b"x".to_vec())]), Origin::Created, false)
            .unwrap();
        assert_eq!(o.bytes(CKA_LABEL), Some(&b"x"[..]));
        assert!(!o.is_token());
        assert!(!o.is_private());
        assert!(o.flag(CKA_MODIFIABLE));
    }

    #[test]
    fn creation_rules_give_the_spec_errors() {
        assert!(matches!(
            Object::from_template(&[], Origin::Created, false),
            Err(Error::TemplateIncomplete(CKA_CLASS))
        ));
        assert!(matches!(
            Object::from_template(&data(&[(CKA_SIGN, bool(true))]), Origin::Created, false),
            Err(Error::AttributeTypeInvalid(CKA_SIGN))
        ));
        assert!(matches!(
            Object::from_template(&data(&[(CKA_TOKEN, vec![2])]), Origin::Created, false),
            Err(Error::AttributeValueInvalid(CKA_TOKEN))
        ));
        assert!(matches!(
            Object::from_template(
                &data(&[(CKA_LABEL, b"a".to_vec()), (CKA_LABEL, b"b".to_vec())]),
                Origin::Created,
                false
            ),
            Err(Error::TemplateInconsistent(_))
        ));
        let cert = vec![
            (CKA_CLASS, ulong(CKO_CERTIFICATE)),
            (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
            (CKA_VALUE, vec![1]),
        ];
        assert!(matches!(
            Object::from_template(&cert, Origin::Created, false),
            Err(Error::TemplateIncomplete(CKA_SUBJECT))
        ));
        let pubkey = vec![
            (CKA_CLASS, ulong(CKO_PUBLIC_KEY)),
            (CKA_KEY_TYPE, ulong(CKK_EC)),
            (CKA_EC_PARAMS, crypto::P256_PARAMS.to_vec()),
            (CKA_EC_POINT, vec![4, 1, 2]),
        ];
        assert!(matches!(
            Object::from_template(&pubkey, Origin::Created, false),
            Err(Error::AttributeValueInvalid(CKA_EC_POINT))
        ));
        let mut trusted = cert.clone();
        trusted.push((CKA_SUBJECT, vec![0x30, 0]));
        trusted.push((CKA_TRUSTED, bool(true)));
        assert!(matches!(
            Object::from_template(&trusted, Origin::Created, false),
            Err(Error::AttributeReadOnly(CKA_TRUSTED))
        ));
        assert!(Object::from_template(&trusted, Origin::Created, true).is_ok());
    }

    #[test]
    fn a_generated_private_key_is_sensitive_and_never_extractable() {
        let mut k = Object::from_template(
            &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))],
            Origin::Generated,
            false,
        )
        .unwrap();
        k.set_key_material(crypto::KeyAlgorithm::P256, &[], Some(vec![1, 2, 3]), None);
        assert!(k.flag(CKA_ALWAYS_SENSITIVE) && k.flag(CKA_NEVER_EXTRACTABLE) && k.flag(CKA_LOCAL));
        assert_eq!(k.get(CKA_VALUE), AttrValue::Sensitive);
        assert!(!k.matches(&[(CKA_VALUE, vec![1, 2, 3])]));
        // One-way flags: sensitive cannot go back to false, extractable cannot become true.
        assert!(k.updated(&[(CKA_SENSITIVE, bool(false))], false).is_err());
        assert!(k.updated(&[(CKA_EXTRACTABLE, bool(true))], false).is_err());
        assert!(k.updated(&[(CKA_LABEL, b"new".to_vec())], false).is_ok());
        // A failed update changes nothing: the caller keeps the old object.
        assert!(
            k.updated(&[(CKA_LABEL, b"x".to_vec()), (CKA_SIGN, vec![9])], false)
                .is_err()
        );
        assert_eq!(k.bytes(CKA_LABEL), Some(&b""[..]));
    }

    #[test]
    fn unmodifiable_objects_refuse_changes_and_uncopyable_refuse_copies() {
        let o = Object::from_template(
            &data(&[(CKA_MODIFIABLE, bool(false)), (CKA_COPYABLE, bool(false))]),
            Origin::Created,
            false,
        )
        .unwrap();
        assert!(matches!(
            o.updated(&[(CKA_LABEL, b"x".to_vec())], false),
            Err(Error::AttributeReadOnly(_))
        ));
        assert!(matches!(o.copied(&[], false), Err(Error::ActionProhibited)));
    }
}
