//! Which headers cross the proxy. Hop-by-hop headers describe one connection, not the message, so
//! they are dropped in both directions (RFC 9110 §7.6.1): the standard set plus every header the
//! `Connection` header names. Towards the provider the caller's own credentials, cookies, actor
//! headers and forwarding headers are dropped as well.

use http::{HeaderMap, HeaderName};

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Never sent to the provider: the vault sets the host and the credential itself.
const NEVER_FORWARDED: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "x-actor-type",
    "x-actor-id",
    "x-actor-reason",
    "x-forwarded-for",
    "forwarded",
];

/// Header names listed in the `Connection` header(s), lower-cased.
fn named_by_connection(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

fn copy_except(headers: &HeaderMap, dropped: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    let named = named_by_connection(headers);
    let mut kept = HeaderMap::new();
    for (name, value) in headers {
        let hop_by_hop = HOP_BY_HOP.contains(&name.as_str()) || named.iter().any(|n| n == name.as_str());
        if !hop_by_hop && !dropped(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// The caller's headers that go to the provider.
pub(crate) fn request_headers(headers: &HeaderMap) -> HeaderMap {
    copy_except(headers, |name| NEVER_FORWARDED.contains(&name.as_str()) || name.as_str().starts_with("x-tokenvault-"))
}

/// The provider's headers that go back to the caller.
pub(crate) fn response_headers(headers: &HeaderMap) -> HeaderMap {
    copy_except(headers, |_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let headers = map(&[
            ("connection", "keep-alive, X-Session-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-session-hop", "1"),
            ("te", "trailers"),
            ("x-custom", "kept"),
            ("content-type", "application/json"),
        ]);
        let kept = response_headers(&headers);
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-custom", "content-type"]);
    }

    #[test]
    fn callers_credentials_never_go_upstream() {
        let headers = map(&[
            ("authorization", "Bearer caller"),
            ("cookie", "a=b"),
            ("host", "vault"),
            ("x-tokenvault-debug", "1"),
            ("accept", "application/json"),
        ]);
        let kept = request_headers(&headers);
        assert_eq!(kept.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["accept"]);
    }
}
