//! Extractors that authenticate the caller: an app API key, or an admin token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use tokenvault_service::{AdminIdentity, Vault};

use crate::ApiError;

/// The app resolved from `Authorization: Bearer tvk_…`. Every app-scoped handler takes this, so
/// no handler can act on an app the key does not belong to.
pub(crate) struct AppCaller {
    pub app_id: String,
}

/// An operator authenticated with an admin token.
pub(crate) struct AdminCaller {
    #[allow(dead_code)]
    pub identity: AdminIdentity,
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
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
        let app_id = vault.authenticate_api_key(bearer(parts)?).await?;
        Ok(AppCaller { app_id })
    }
}

impl FromRequestParts<Arc<Vault>> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, vault: &Arc<Vault>) -> Result<Self, Self::Rejection> {
        let identity = vault.authenticate_admin(bearer(parts)?).await?;
        Ok(AdminCaller { identity })
    }
}
