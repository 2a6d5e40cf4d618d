//! Response builders shared by the emulators.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn with_body(code: u16, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status(code);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn json(code: u16, value: &Value) -> Response {
    with_body(code, "application/json", value.to_string())
}

/// Token-endpoint JSON: never cached (RFC 6749 §5.1).
pub fn no_store_json(code: u16, value: &Value) -> Response {
    let mut response = json(code, value);
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// RFC 6749 §5.2 error body.
pub fn oauth_error(code: u16, error: &str, description: &str) -> Response {
    no_store_json(code, &json!({ "error": error, "error_description": description }))
}

pub fn empty(code: u16) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status(code);
    response
}

pub fn html(code: u16, body: String) -> Response {
    with_body(code, "text/html; charset=utf-8", body)
}

/// A page the user sees instead of a redirect (RFC 6749 §4.1.2.1: never redirect to an
/// unverified `redirect_uri`).
pub fn error_page(title: &str, message: &str) -> Response {
    html(
        400,
        format!(
            "<!doctype html><html><head><title>{t}</title></head><body><h1>{t}</h1><p>{m}</p></body></html>",
            t = escape(title),
            m = escape(message)
        ),
    )
}

pub fn redirect(code: u16, location: &str) -> Response {
    let mut response = empty(code);
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
            response
        }
        Err(_) => error_page("Bad redirect", "the redirect target is not a valid header value"),
    }
}

/// A fault's canned response.
pub fn canned(code: u16, body: &str, retry_after: Option<u64>) -> Response {
    let is_json = serde_json::from_str::<Value>(body).is_ok();
    let content_type = if is_json { "application/json" } else { "text/plain; charset=utf-8" };
    let mut response = with_body(code, content_type, body.to_owned());
    if let Some(seconds) = retry_after {
        response.headers_mut().insert("retry-after", HeaderValue::from(seconds));
    }
    response
}

/// HTML escaping for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Appends query parameters to a URI, keeping whatever query it already has intact.
/// The URI was matched by exact string and carries no fragment, so plain appending is exact.
pub fn append_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    let added = serializer.finish();
    if added.is_empty() {
        return uri.to_owned();
    }
    let separator = match uri.find('?') {
        None => "?",
        Some(_) if uri.ends_with('?') || uri.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{uri}{separator}{added}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_query_keeps_existing_parameters() {
        assert_eq!(append_query("https://v/cb", &[("code", "a b")]), "https://v/cb?code=a+b");
        assert_eq!(
            append_query("https://v/cb?tenant=x%20y", &[("code", "c"), ("state", "s")]),
            "https://v/cb?tenant=x%20y&code=c&state=s"
        );
        assert_eq!(append_query("https://v/cb?", &[("code", "c")]), "https://v/cb?code=c");
    }
}
