//! The call context extractor: request id, declared actor and caller IP, for policies and audit.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tokenvault_service::{Actor, CallContext};

use crate::ApiError;
use crate::request_id::RequestId;

pub(crate) struct Context(pub CallContext);

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let actor = Actor::parse(header("x-actor-type"), header("x-actor-id"), header("x-actor-reason"))?;
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        let client_ip = match parts.extensions.get::<crate::client_ip::ClientIp>() {
            Some(client) => Some(client.0),
            None => parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
        };
        Ok(Context(CallContext { request_id, actor, client_ip }))
    }
}
