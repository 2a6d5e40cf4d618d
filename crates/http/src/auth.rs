//! Extractors that authenticate the caller: an app API key, or an admin token.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use tokenvault_service::{AdminIdentity, CallContext, KeyPrincipal, ServiceError, Vault};

use crate::ApiError;

/// The key resolved from `Authorization: Bearer tvk_…`, checked against the scope its route
/// needs ([`crate::scopes`]), with the call's context (which carries the verified key, so the
/// service applies delegations, per-agent policies and audits under the key's identity). Every
/// app-scoped handler takes this, so no handler can act on an app the key does not belong to,
/// and no route is reachable without its scope.
pub(crate) struct AppCaller {
    pub app_id: String,
    pub key: Arc<KeyPrincipal>,
    pub context: CallContext,
}

/// An operator authenticated with an admin token.
pub(crate) struct AdminCaller {
    #[allow(dead_code)]
    pub identity: AdminIdentity,
}

pub(crate) fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing_credentials", "send `Authorization: Bearer <key>`")
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_authorization_header",
                "the Authorization header must be `Bearer <key>`",
            )
        })
}

impl FromRequestParts<Arc<Vault>> for AppCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, vault: &Arc<Vault>) -> Result<Self, Self::Rejection> {
        let presented = bearer(parts)?;
        let principal = vault.authenticate_api_key(presented, crate::context::client_ip(parts)).await?;
        let route = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
        let required = crate::scopes::required(&parts.method, &route)
            .ok_or_else(|| ApiError::from(ServiceError::Internal(format!("the route {route} declares no scope"))))?;
        principal.require(required)?;
        let crate::context::Context(mut context) = crate::context::Context::from_request_parts(parts, vault).await?;
        let key = Arc::new(principal);
        context.key = Some(key.clone());
        Ok(AppCaller { app_id: key.app_id.clone(), key, context })
    }
}

impl FromRequestParts<Arc<Vault>> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, vault: &Arc<Vault>) -> Result<Self, Self::Rejection> {
        let identity = vault.authenticate_admin(bearer(parts)?).await?;
        Ok(AdminCaller { identity })
    }
}
