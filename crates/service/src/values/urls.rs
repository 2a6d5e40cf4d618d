//! Validation of URLs that apps hand to the vault: return origins and browser return URLs.

use url::Url;

use crate::ServiceError;

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// An absolute https URL (http only for loopback), without fragment or credentials.
pub(crate) fn parse_browser_url(field: &'static str, text: &str) -> Result<Url, ServiceError> {
    let invalid = |why: &str| ServiceError::invalid("invalid_url", format!("`{field}` {why}"));
    if text.chars().count() > 2048 {
        return Err(invalid("is longer than 2048 characters"));
    }
    let url = Url::parse(text).map_err(|_| invalid("is not an absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => return Err(invalid("must use https (http only for localhost)")),
    }
    if url.fragment().is_some() {
        return Err(invalid("must not contain a fragment (#)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain credentials"));
    }
    Ok(url)
}

/// `scheme://host[:port]` exactly, normalised.
pub(crate) fn parse_origin(text: &str) -> Result<String, ServiceError> {
    let url = parse_browser_url("return_origins", text)?;
    if url.path() != "/" || url.query().is_some() {
        return Err(ServiceError::invalid(
            "invalid_url",
            format!("`{text}` is not an origin (scheme://host[:port], no path)"),
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// Appends query parameters to a URL, keeping the parameters it already has.
pub(crate) fn with_params(mut url: Url, params: &[(&str, &str)]) -> Url {
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_strict() {
        assert_eq!(parse_origin("https://App.Example.com").unwrap(), "https://app.example.com");
        assert_eq!(parse_origin("http://localhost:3000/").unwrap(), "http://localhost:3000");
        assert!(parse_origin("http://app.example.com").is_err());
        assert!(parse_origin("https://app.example.com/path").is_err());
        assert!(parse_origin("javascript:alert(1)").is_err());
    }

    #[test]
    fn browser_urls_reject_fragments_and_credentials() {
        assert!(parse_browser_url("u", "https://a.example/x?y=1").is_ok());
        assert!(parse_browser_url("u", "https://a.example/x#f").is_err());
        assert!(parse_browser_url("u", "https://user:pw@a.example/").is_err());
    }
}
