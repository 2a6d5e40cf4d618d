//! The call context extractor: request id, declared actor and caller IP, for policies and audit.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tokenvault_service::{Actor, CallContext};

use crate::ApiError;
use crate::request_id::RequestId;

pub(crate) struct Context(pub CallContext);

/// A declared-actor header as text. A value that is not visible ASCII (bytes past 0x7e, which
/// `HeaderValue::to_str` refuses) is refused with `400 invalid_actor` rather than treated as
/// absent: an actor the caller declared must be either recorded or refused, never dropped.
/// Repeating a header is refused too: which of two declared actors is the real one is unclear.
fn actor_header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    let refused =
        |why: &str| ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_actor", format!("`{name}` {why}"));
    if values.next().is_some() {
        return Err(refused("must be sent at most once"));
    }
    value.to_str().map(Some).map_err(|_| refused("must be printable ASCII"))
}

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let actor = Actor::parse(
            actor_header(&parts.headers, "x-actor-type")?,
            actor_header(&parts.headers, "x-actor-id")?,
            actor_header(&parts.headers, "x-actor-reason")?,
        )?;
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        Ok(Context(CallContext { request_id, actor, client_ip: client_ip(parts), key: None }))
    }
}

/// The caller's address: as a trusted reverse proxy reported it, else the TCP peer.
pub(crate) fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    match parts.extensions.get::<crate::client_ip::ClientIp>() {
        Some(client) => Some(client.0),
        None => parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
    }
}
