//! Whole numbers in request bodies. JSON has one number type, and JSON Schema (so the OpenAPI
//! document) counts `990.0` as the integer 990; serde's integer types refuse it. These helpers
//! read any JSON number that is a whole number within the field's range, so the server accepts
//! exactly what the document's `"type": "integer"` fields promise.

use serde::{Deserialize, Deserializer, de::Error};

fn whole<'de, D: Deserializer<'de>, T: TryFrom<u64>>(number: serde_json::Number) -> Result<T, D::Error> {
    let value = number.as_u64().or_else(|| {
        number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64).map(|f| f as u64)
    });
    value
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| D::Error::custom(format!("expected a whole number from 0 to {}", max::<T>())))
}

fn max<T: TryFrom<u64>>() -> u64 {
    if T::try_from(u64::from(u32::MAX) + 1).is_ok() { u64::MAX } else { u64::from(u32::MAX) }
}

pub(crate) fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    whole::<D, u32>(serde_json::Number::deserialize(d)?)
}

pub(crate) fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?.map(whole::<D, u32>).transpose()
}

pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?.map(whole::<D, u64>).transpose()
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Sample {
        #[serde(deserialize_with = "super::u32")]
        n: u32,
        #[serde(default, deserialize_with = "super::opt_u64")]
        m: Option<u64>,
    }

    #[test]
    fn whole_floats_are_integers_and_fractions_are_not() {
        let read = |text: &str| serde_json::from_str::<Sample>(text);
        assert_eq!(read(r#"{"n": 990.0, "m": 5}"#).unwrap(), Sample { n: 990, m: Some(5) });
        assert_eq!(read(r#"{"n": 1, "m": null}"#).unwrap(), Sample { n: 1, m: None });
        assert_eq!(read(r#"{"n": 1}"#).unwrap(), Sample { n: 1, m: None });
        for bad in [r#"{"n": 2.5}"#, r#"{"n": -1}"#, r#"{"n": 4294967296}"#, r#"{"n": "1"}"#] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
