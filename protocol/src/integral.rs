//! Integer fields that take any JSON number without a fraction: `3` and `3.0` alike.
//!
//! The servers' OpenAPI 3.1 documents say `type: integer`, and in JSON Schema 2020-12 (§6.1.1 of
//! the validation vocabulary) an integer is any number with a zero fractional part, so `3.0` is
//! one. serde's integers refuse it; these deserializers keep the promise the documents make.
//!
//! ```
//! #[derive(serde::Deserialize)]
//! struct Shift {
//!     #[serde(deserialize_with = "kilt_protocol::integral::whole")]
//!     days: i64,
//! }
//! let a: Shift = serde_json::from_str(r#"{"days": 30.0}"#).unwrap();
//! assert_eq!(a.days, 30);
//! assert!(serde_json::from_str::<Shift>(r#"{"days": 30.5}"#).is_err());
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{Error, Visitor};

struct Whole<T>(PhantomData<T>);

impl<T: TryFrom<i128>> Whole<T> {
    fn fit<E: Error>(value: i128) -> Result<T, E> {
        T::try_from(value).map_err(|_| {
            E::custom(format!(
                "{value} is out of range for {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

impl<T: TryFrom<i128>> Visitor<'_> for Whole<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
        Self::fit(v.into())
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
        Self::fit(v.into())
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
        // Beyond ±2^64 no target type fits, and the cast below would saturate.
        if v.fract() != 0.0 || v.abs() >= 18_446_744_073_709_551_616.0 {
            return Err(E::custom(format!("{v} is not a whole number in range")));
        }
        Self::fit(v as i128)
    }
}

/// An integer from a whole JSON number (`deserialize_with = "…::whole"`).
pub fn whole<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(Whole(PhantomData))
}

struct Optional<T>(PhantomData<T>);

impl<'de, T: TryFrom<i128>> Visitor<'de> for Optional<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number or null")
    }

    fn visit_none<E: Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        whole(d).map(Some)
    }
}

/// An optional integer from a whole JSON number or `null` (with `#[serde(default)]` for absent).
pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_option(Optional(PhantomData))
}

/// The schema of a `u64` the server takes whole: 0 to 2^64 − 1, with no `format: int64` (which
/// would say it stops at 2^63 − 1).
#[cfg(feature = "openapi")]
pub fn any_u64() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(u64::MAX))
        .build()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Fields {
        #[serde(deserialize_with = "super::whole")]
        small: u8,
        #[serde(deserialize_with = "super::whole")]
        big: u64,
        #[serde(default, deserialize_with = "super::optional")]
        maybe: Option<i64>,
    }

    fn parse(json: &str) -> Result<Fields, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_in_any_notation_are_taken() {
        assert_eq!(
            parse(r#"{"small": 255.0, "big": 18446744073709551615, "maybe": -3.0}"#),
            Ok(Fields {
                small: 255,
                big: u64::MAX,
                maybe: Some(-3)
            })
        );
        assert_eq!(
            parse(r#"{"small": 0, "big": 1e3, "maybe": null}"#),
            Ok(Fields {
                small: 0,
                big: 1000,
                maybe: None
            })
        );
        assert_eq!(parse(r#"{"small": 1, "big": 2}"#).unwrap().maybe, None);
    }

    #[test]
    fn fractions_out_of_range_and_other_types_are_refused() {
        for (json, why) in [
            (r#"{"small": 1.5, "big": 0}"#, "not a whole number"),
            (r#"{"small": 256, "big": 0}"#, "out of range"),
            (r#"{"small": -1, "big": 0}"#, "out of range"),
            (r#"{"small": 1, "big": -1.0}"#, "out of range"),
            (
                r#"{"small": 1, "big": 1e20}"#,
                "not a whole number in range",
            ),
            (r#"{"small": "1", "big": 0}"#, "a whole number"),
            (
                r#"{"small": 1, "big": 0, "maybe": 0.25}"#,
                "not a whole number",
            ),
            (
                r#"{"small": 1, "big": 0, "maybe": true}"#,
                "expected a whole number",
            ),
        ] {
            let err = parse(json).expect_err(json);
            assert!(err.contains(why), "{json}: {err}");
        }
    }

    #[test]
    fn a_deserializer_without_numbers_hears_what_is_expected() {
        use serde::de::IntoDeserializer;
        use serde::de::value::Error;
        let err = super::optional::<_, i64>(IntoDeserializer::<Error>::into_deserializer(true))
            .unwrap_err();
        assert!(err.to_string().contains("a whole number or null"), "{err}");
    }

    #[cfg(feature = "openapi")]
    #[test]
    fn any_u64_spans_the_whole_range_without_an_int64_format() {
        let schema = serde_json::to_value(super::any_u64()).unwrap();
        assert_eq!(
            schema,
            serde_json::json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
        );
    }
}
