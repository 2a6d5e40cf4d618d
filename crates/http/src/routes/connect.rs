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
    /// `popup`: opened by `/connect.js`; the result is reported to the opener.
    mode: Option<String>,
}

/// Marks a flow opened in a popup by `/connect.js`: the callback then answers a page that posts
/// the result to the opener (restricted to the return URL's origin, one the app registered).
const POPUP_COOKIE: &str = "tv_popup";

/// 303 See Other (RFC 9700 §4.12), with no referrer so the URL never leaks onward.
fn redirect(location: &str, cookie: Option<&FlowCookie>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(value) => response.headers_mut().insert(header::LOCATION, value),
        Err(_) => {
            return crate::hosted::error(&BrowserError {
                status: 500,
                code: "internal_error",
                message: "invalid redirect".into(),
            });
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

fn respond(token: &str, result: Result<ConnectStart, BrowserError>, popup: bool) -> Response {
    match result {
        Ok(ConnectStart::Redirect { url, cookie }) => {
            let mut response = redirect(&url, Some(&cookie));
            let value = if popup { "1; Max-Age=900" } else { "; Max-Age=0" };
            let secure = if cookie.secure { "; Secure" } else { "" };
            let popup_cookie =
                format!("{POPUP_COOKIE}={value}; Path=/connect/callback; HttpOnly; SameSite=Lax{secure}");
            if let Ok(value) = HeaderValue::from_str(&popup_cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Ok(ConnectStart::Landing(landing)) => crate::hosted::landing(token, &landing, popup),
        Err(error) => crate::hosted::error(&error),
    }
}

pub(crate) async fn start(
    State(vault): State<Arc<Vault>>,
    Path(token): Path<String>,
    params: Result<QueryParams<StartParams>, crate::ApiError>,
) -> Response {
    let (provider, mode) = params.ok().map(|QueryParams(p)| (p.provider, p.mode)).unwrap_or_default();
    let result = vault.start_connect(&token, provider.as_deref()).await;
    respond(&token, result, mode.as_deref() == Some("popup"))
}

pub(crate) async fn install(State(vault): State<Arc<Vault>>, Path(config_id): Path<String>) -> Response {
    let result = vault.start_install(&config_id).await;
    respond("", result, false)
}

pub(crate) async fn callback(
    State(vault): State<Arc<Vault>>,
    Path(config_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let cookies = parse_cookies(&headers);
    let popup = pages::cookies(&headers).any(|(name, value)| name == POPUP_COOKIE && value == "1");
    match vault.handle_callback(&config_id, query.as_deref().unwrap_or(""), &cookies).await {
        Ok(done) if popup => {
            let mut response = crate::hosted::popup_result(&done.url);
            let clear = format!("{POPUP_COOKIE}=; Path=/connect/callback; Max-Age=0; HttpOnly; SameSite=Lax");
            if let Ok(value) = HeaderValue::from_str(&clear) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Ok(done) => redirect(&done.url, None),
        Err(error) => crate::hosted::error(&error),
    }
}

/// `GET /connect.js`: the embeddable script (see docs/wallet.md, "Connect from your page").
pub(crate) async fn script() -> Response {
    let mut response = include_str!("../../static/connect.js").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn parse_cookies(headers: &HeaderMap) -> HashMap<String, String> {
    pages::cookies(headers)
        .filter(|(name, _)| name.starts_with("tv_flow_"))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}
