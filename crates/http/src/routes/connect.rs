//! Browser-facing connect endpoints: no API key; the session token, `state` and the flow cookie
//! are the credentials.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokenvault_service::{BrowserError, ConnectStart, FlowCookie, Vault};

use crate::pages;
use crate::query::QueryParams;

#[derive(Deserialize)]
pub(crate) struct StartParams {
    provider: Option<String>,
}

/// 303 See Other (RFC 9700 §4.12), with no referrer so the URL never leaks onward.
fn redirect(location: &str, cookie: Option<&FlowCookie>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(value) => response.headers_mut().insert(header::LOCATION, value),
        Err(_) => {
            return crate::hosted::error(
                &BrowserError { status: 500, code: "internal_error", message: "invalid redirect".into() },
                None,
            );
        }
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if let Some(cookie) = cookie {
        let value = format!(
            "{}={}; Path=/connect/callback; Max-Age={}; HttpOnly; SameSite=Lax{}",
            cookie.name,
            cookie.value.expose_secret(),
            cookie.max_age_seconds,
            if cookie.secure { "; Secure" } else { "" }
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response.extensions_mut().insert(pages::RenderedPage);
    response
}

fn respond(token: &str, result: Result<ConnectStart, BrowserError>) -> Response {
    match result {
        Ok(ConnectStart::Redirect { url, cookie }) => redirect(&url, Some(&cookie)),
        Ok(ConnectStart::Landing(landing)) => crate::hosted::landing(token, &landing),
        Err(error) => crate::hosted::error(&error, None),
    }
}

pub(crate) async fn start(
    State(vault): State<Arc<Vault>>,
    Path(token): Path<String>,
    params: Result<QueryParams<StartParams>, crate::ApiError>,
) -> Response {
    let provider = params.ok().and_then(|QueryParams(p)| p.provider);
    let result = vault.start_connect(&token, provider.as_deref()).await;
    respond(&token, result)
}

pub(crate) async fn install(State(vault): State<Arc<Vault>>, Path(config_id): Path<String>) -> Response {
    let result = vault.start_install(&config_id).await;
    respond("", result)
}

pub(crate) async fn callback(
    State(vault): State<Arc<Vault>>,
    Path(config_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let cookies = parse_cookies(&headers);
    match vault.handle_callback(&config_id, query.as_deref().unwrap_or(""), &cookies).await {
        Ok(done) => redirect(&done.url, None),
        Err(error) => crate::hosted::error(&error, None),
    }
}

fn parse_cookies(headers: &HeaderMap) -> HashMap<String, String> {
    pages::cookies(headers)
        .filter(|(name, _)| name.starts_with("tv_flow_"))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}
