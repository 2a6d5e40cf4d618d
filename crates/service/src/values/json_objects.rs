//! Nested objects in request bodies. serde's derived structs also read a JSON *array* (their
//! fields in order), so `"rules": [null, null]` would pass as empty rules. The OpenAPI document
//! says these fields are objects, and the server must refuse what the document refuses: these
//! helpers read such a field only from a JSON object (or `null` where the field is optional).

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn from_object<T: DeserializeOwned, E: Error>(value: Value) -> Result<T, E> {
    if !value.is_object() {
        return Err(E::custom("expected a JSON object"));
    }
    T::deserialize(value).map_err(E::custom)
}

pub(crate) fn object<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    from_object(Value::deserialize(d)?)
}

pub(crate) fn opt_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        value => from_object(value).map(Some),
    }
}

pub(crate) fn opt_objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<Vec<T>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Array(items) => items.into_iter().map(from_object).collect::<Result<_, _>>().map(Some),
        _ => Err(D::Error::custom("expected an array of JSON objects")),
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug, PartialEq, Default)]
    struct Inner {
        a: Option<u8>,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Outer {
        #[serde(deserialize_with = "super::object")]
        one: Inner,
        #[serde(default, deserialize_with = "super::opt_object")]
        maybe: Option<Inner>,
        #[serde(default, deserialize_with = "super::opt_objects")]
        many: Option<Vec<Inner>>,
    }

    #[test]
    fn nested_objects_must_be_objects() {
        let read = |text: &str| serde_json::from_str::<Outer>(text);
        let ok = read(r#"{"one": {"a": 1}, "maybe": null, "many": [{}]}"#).unwrap();
        assert_eq!((ok.one.a, ok.maybe, ok.many), (Some(1), None, Some(vec![Inner::default()])));
        for bad in [
            r#"{"one": [1]}"#,
            r#"{"one": {}, "maybe": [1]}"#,
            r#"{"one": {}, "many": [[1]]}"#,
            r#"{"one": {}, "many": {}}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
