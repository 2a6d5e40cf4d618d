//! Request parameters from a query string, a form body or a JSON object, read uniformly.
//!
//! Handlers take raw bytes and parse here, so a malformed request becomes a provider-shaped 400
//! instead of a framework rejection (and never a panic).

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

/// Ordered name/value pairs. An empty value counts as omitted (RFC 6749 §3.1).
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn from_query(query: Option<&str>) -> Params {
        Params::from_form(query.unwrap_or_default().as_bytes())
    }

    pub fn from_form(body: &[u8]) -> Params {
        Params { pairs: url::form_urlencoded::parse(body).into_owned().collect() }
    }

    /// A top-level JSON object; strings, numbers and booleans become strings, `null` is omitted.
    pub fn from_json(body: &[u8]) -> Result<Params, String> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON body: {e}"))?;
        let object = value.as_object().ok_or("JSON body must be an object")?;
        let mut pairs = Vec::new();
        for (name, value) in object {
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(format!("parameter {name} must be a string")),
            };
            pairs.push((name.clone(), text));
        }
        Ok(Params { pairs })
    }

    /// Appends `other`'s pairs (Zoom reads the query string and the form body together).
    pub fn merged(mut self, other: Params) -> Params {
        self.pairs.extend(other.pairs);
        self
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// A parameter that appears more than once with a value (forbidden by RFC 6749 §3.1, §3.2).
    pub fn duplicated(&self) -> Option<&str> {
        self.pairs.iter().enumerate().find_map(|(i, (name, value))| {
            let again = self.pairs[i + 1..].iter().any(|(n, v)| n == name && !v.is_empty());
            (!value.is_empty() && again).then_some(name.as_str())
        })
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// How a request body is encoded, judged by `Content-Type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
    /// No content type and no body.
    Empty,
    Other(String),
}

pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

pub fn body_kind(headers: &HeaderMap, body: &[u8]) -> BodyKind {
    let Some(ct) = content_type(headers) else {
        return if body.is_empty() { BodyKind::Empty } else { BodyKind::Other(String::new()) };
    };
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => BodyKind::Form,
        "application/json" => BodyKind::Json,
        _ => BodyKind::Other(ct),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_omitted_and_duplicates_found() {
        let p = Params::from_form(b"a=&b=1&c=x&c=y&d=1&d=");
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("1"));
        assert_eq!(p.duplicated(), Some("c"));
        assert_eq!(Params::from_form(b"d=1&d=").duplicated(), None);
    }

    #[test]
    fn json_values_become_strings() {
        let p = Params::from_json(br#"{"a":"x","b":5,"c":null,"d":true}"#).unwrap();
        assert_eq!(p.get("b"), Some("5"));
        assert_eq!(p.get("c"), None);
        assert!(Params::from_json(b"[1]").is_err());
        assert!(Params::from_json(br#"{"a":{"b":1}}"#).is_err());
        assert!(Params::from_json(b"not json").is_err());
    }
}
