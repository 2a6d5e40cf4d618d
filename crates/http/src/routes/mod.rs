pub(crate) mod admin;
pub(crate) mod agents;
pub(crate) mod app;
pub(crate) mod approvals;
pub(crate) mod connect;
pub(crate) mod health;
pub(crate) mod portal;
pub(crate) mod proxy;
pub(crate) mod use_api;
pub(crate) mod wallet;
pub(crate) mod webhooks;

use serde::{Deserialize, Serialize};

/// Cursor pagination input shared by list endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// A page of results; `next_cursor` is passed back as `after` to get the next page.
#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Self {
        let next_cursor = (data.len() as u32 >= limit).then(|| data.last().map(&cursor_of)).flatten();
        Page { data, next_cursor }
    }
}

/// The answer of minting a key (`201`): the key's settings and, this once, its secret.
pub(crate) fn minted_key(
    minted: tokenvault_service::MintedApiKey,
) -> Result<(axum::http::StatusCode, axum::Json<serde_json::Value>), crate::ApiError> {
    use secrecy::ExposeSecret;
    let mut shown = serde_json::to_value(&minted.info)
        .map_err(|e| crate::ApiError::from(tokenvault_service::ServiceError::Internal(e.to_string())))?;
    shown["key"] = serde_json::json!(minted.secret.expose_secret());
    shown["note"] = serde_json::json!("store this key now: it is shown only once");
    Ok((axum::http::StatusCode::CREATED, axum::Json(shown)))
}
