//! Which base URL a managed secret's proxied call goes to: one of the URLs declared with the
//! secret, chosen exactly with `x-tokenvault-base-url`, else the first. Shared by the proxy's
//! target resolution and the managed secrets themselves.

use url::Url;

use crate::ServiceError;

/// The request header naming which declared base URL a managed secret's call goes to.
pub(crate) const BASE_URL_HEADER: &str = "x-tokenvault-base-url";

/// A base URL as stored and compared: parsed, serialised, without a trailing `/`.
fn normalized_base(text: &str) -> Option<String> {
    Url::parse(text).ok().map(|u| u.as_str().trim_end_matches('/').to_owned())
}

fn base_url_not_allowed() -> ServiceError {
    ServiceError::invalid(
        "base_url_not_allowed",
        format!("`{BASE_URL_HEADER}` must be exactly one of the base URLs declared for this credential"),
    )
}

/// The base URL a proxied call asks for with `x-tokenvault-base-url`, if any.
pub(crate) fn requested_base_url(headers: &http::HeaderMap) -> Result<Option<String>, ServiceError> {
    match headers.get(BASE_URL_HEADER) {
        None => Ok(None),
        Some(value) => {
            let text = value.to_str().map_err(|_| base_url_not_allowed())?;
            normalized_base(text).map(Some).ok_or_else(base_url_not_allowed)
        }
    }
}

/// Picks the base URL a call goes to: the requested one if it is declared exactly, else the first.
pub(crate) fn choose_base_url(declared: &[String], requested: Option<&str>) -> Result<Url, ServiceError> {
    let chosen = match requested {
        None => declared.first(),
        Some(requested) => declared.iter().find(|d| normalized_base(d).as_deref() == Some(requested)),
    };
    let chosen = chosen.ok_or_else(base_url_not_allowed)?;
    Url::parse(chosen).map_err(|_| ServiceError::Internal("stored base URL does not parse".into()))
}
