//! Serde helpers that keep non-finite floats (NaN, ±Inf) in JSON.
//!
//! JSON has no NaN or infinity: `serde_json` writes them as `null` and then
//! refuses to read `null` back as an `f64`, which made a journal holding a
//! 0/0 rate unreadable. With these helpers a finite value stays a JSON number
//! and a non-finite one is written as the string `"NaN"`, `"inf"` or
//! `"-inf"`; reading accepts those strings (and `"+inf"`, `"infinity"`,
//! `"-infinity"`, any case). A `null` where a plain `f64` belongs (a journal
//! written before these helpers, where `null` only ever stood for a
//! non-finite value) reads as NaN: that measurement was unusable then and
//! stays unusable (`inconclusive`) now.
//!
//! Use with `#[serde(with = "crate::release::nonfinite::f64")]` (or
//! `opt_f64`, `opt_f64_pair`).

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use std::fmt;

fn ser_f64<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(v)
    } else if v.is_nan() {
        s.serialize_str("NaN")
    } else if v > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

fn parse_word(w: &str) -> Option<f64> {
    match w.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Visits a number, a non-finite word, or (`null_is_nan`) `null` as NaN.
struct F64Visitor {
    null_is_nan: bool,
}

impl<'de> Visitor<'de> for F64Visitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or one of \"NaN\", \"inf\", \"-inf\"")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_f32<E: de::Error>(self, v: f32) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        parse_word(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        if self.null_is_nan {
            Ok(f64::NAN)
        } else {
            Err(E::invalid_type(de::Unexpected::Unit, &self))
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<f64, E> {
        self.visit_unit()
    }
}

/// A plain `f64`: number, or `"NaN"` / `"inf"` / `"-inf"`; `null` reads as NaN.
pub mod f64 {
    use super::*;

    /// Serializes `v` (non-finite as a word).
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        ser_f64(*v, s)
    }

    /// Deserializes a number, a non-finite word, or `null` (NaN).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(F64Visitor { null_is_nan: true })
    }
}

/// An `Option<f64>`: `null` is `None`, otherwise as [`f64`](self::f64).
/// Use with `#[serde(default, with = "…::opt_f64")]`.
pub mod opt_f64 {
    use super::*;

    /// Serializes `None` as `null`, a value as [`f64`](super::f64).
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => ser_f64(*x, s),
            None => s.serialize_none(),
        }
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("null, a number or one of \"NaN\", \"inf\", \"-inf\"")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(F64Visitor { null_is_nan: false })
                .map(Some)
        }
    }

    /// Deserializes `null` as `None`, else a number or non-finite word.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_option(OptVisitor)
    }
}

/// An `(Option<f64>, Option<f64>)` pair, as a two-element JSON array.
pub mod opt_f64_pair {
    use super::*;
    use serde::ser::SerializeTuple;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct W(#[serde(default, with = "super::opt_f64")] Option<f64>);

    /// Serializes both halves with [`opt_f64`](super::opt_f64).
    pub fn serialize<S: Serializer>(
        v: &(Option<f64>, Option<f64>),
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&W(v.0))?;
        t.serialize_element(&W(v.1))?;
        t.end()
    }

    /// Deserializes a two-element array of [`opt_f64`](super::opt_f64) values.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<(Option<f64>, Option<f64>), D::Error> {
        let (a, b) = <(W, W)>::deserialize(d)?;
        Ok((a.0, b.0))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct T {
        #[serde(with = "super::f64")]
        a: f64,
        #[serde(default, with = "super::opt_f64")]
        b: Option<f64>,
        #[serde(with = "super::opt_f64_pair")]
        c: (Option<f64>, Option<f64>),
    }

    fn same(x: f64, y: f64) -> bool {
        x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
    }

    #[test]
    fn non_finite_values_are_words_and_read_back() {
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e-300,
        ] {
            let t = T {
                a: v,
                b: Some(v),
                c: (Some(v), None),
            };
            let s = serde_json::to_string(&t).unwrap();
            let back: T = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(same(back.a, v), "{s}");
            assert!(same(back.b.unwrap(), v), "{s}");
            assert!(same(back.c.0.unwrap(), v), "{s}");
            assert_eq!(back.c.1, None);
        }
        let s = serde_json::to_string(&T {
            a: f64::NAN,
            b: Some(f64::INFINITY),
            c: (Some(f64::NEG_INFINITY), None),
        })
        .unwrap();
        assert_eq!(s, r#"{"a":"NaN","b":"inf","c":["-inf",null]}"#);
    }

    #[test]
    fn old_null_reads_as_nan_and_missing_option_as_none() {
        let t: T = serde_json::from_str(r#"{"a":null,"c":[null,5]}"#).unwrap();
        assert!(t.a.is_nan());
        assert_eq!(t.b, None);
        assert_eq!(t.c, (None, Some(5.0)));
        assert!(serde_json::from_str::<T>(r#"{"a":"lots","c":[null,null]}"#).is_err());
    }
}
