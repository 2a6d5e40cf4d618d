//! The pages end users see (the hosted Connect UI, its error pages and the wallet): one look,
//! the app's branding on it, everything compiled in. Each page gets a fresh CSP nonce for its one
//! inline style block (the app's accent colour is validated `#rrggbb`, so it is safe to write
//! there); no script, never framed, no referrer. The text colour on the accent is chosen for
//! contrast (WCAG AA, 4.5:1), whatever colour the app picked.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokenvault_service::{App, BrowserError, ConnectLanding};

const CSS: &str = include_str!("../static/hosted.css");
const DEFAULT_ACCENT: &str = "#1f5fbf";

/// The provider marks shipped in the binary, by catalog id (anything else: a generic key).
pub(crate) fn logo(provider: &str) -> &'static str {
    match provider {
        "zoom" => include_str!("../static/logos/zoom.svg"),
        "dialpad" => include_str!("../static/logos/dialpad.svg"),
        "aircall" => include_str!("../static/logos/aircall.svg"),
        _ => include_str!("../static/logos/oauth.svg"),
    }
}

pub(crate) struct Brand {
    pub name: String,
    pub logo_url: Option<String>,
    pub support_url: Option<String>,
}

/// What every hosted page shares: colours, the nonce, the app (when known).
pub(crate) struct Look {
    pub nonce: String,
    pub accent: String,
    pub on_accent: &'static str,
    pub accent_text: String,
    pub css: &'static str,
    pub app: Option<Brand>,
}

fn channel(hex: &str) -> f64 {
    let c = f64::from(u8::from_str_radix(hex, 16).unwrap_or(0)) / 255.0;
    if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
}

/// WCAG relative luminance of `#rrggbb`.
fn luminance(color: &str) -> f64 {
    0.2126 * channel(&color[1..3]) + 0.7152 * channel(&color[3..5]) + 0.0722 * channel(&color[5..7])
}

fn contrast(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    (hi + 0.05) / (lo + 0.05)
}

impl Look {
    pub fn new(app: Option<&App>) -> Look {
        let accent = app
            .and_then(|a| a.branding.accent_color.clone())
            .filter(|c| c.len() == 7 && c[1..].chars().all(|ch| ch.is_ascii_hexdigit()))
            .unwrap_or_else(|| DEFAULT_ACCENT.to_owned());
        let l = luminance(&accent);
        let on_accent = if contrast(1.0, l) >= 4.5 { "#ffffff" } else { "#111111" };
        let accent_text = if contrast(1.0, l) >= 4.5 { accent.clone() } else { "#1b1b1b".to_owned() };
        Look {
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            accent,
            on_accent,
            accent_text,
            css: CSS,
            app: app.map(|a| Brand {
                name: a.shown_name().to_owned(),
                logo_url: a.branding.logo_url.clone(),
                support_url: a.branding.support_url.clone(),
            }),
        }
    }
}

/// A finished hosted page: its CSP allows exactly its own style block and images from https.
pub(crate) fn respond(status: StatusCode, nonce: &str, html: Result<String, askama::Error>) -> Response {
    respond_with(status, nonce, html, false)
}

/// Like [`respond`]; with `script`, the page's one nonce'd script runs too.
fn respond_with(status: StatusCode, nonce: &str, html: Result<String, askama::Error>, script: bool) -> Response {
    let Ok(html) = html else {
        let error = tokenvault_service::ServiceError::Internal("a hosted page failed to render".into());
        return crate::ApiError::from(error).into_response();
    };
    let mut response = (status, html).into_response();
    let scripts = if script { format!("; script-src 'nonce-{nonce}'") } else { String::new() };
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; img-src https: http://localhost:* http://127.0.0.1:*; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'{scripts}"
    );
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response.extensions_mut().insert(crate::pages::RenderedPage);
    response
}

#[derive(Template)]
#[template(path = "hosted/result.html")]
struct ResultPage {
    look: Look,
    succeeded: bool,
    /// The result as JSON (for the opener).
    result: String,
    origin: String,
    return_url: String,
}

/// The end of a flow opened by `/connect.js` in a popup: the result (the return URL's query:
/// status, session, grant or error) is posted to the opener, restricted to the return URL's
/// origin (one the app registered), and the popup closes. Without an opener, a link goes on to
/// the return URL as the redirect mode would.
pub(crate) fn popup_result(return_url: &str) -> Response {
    let Ok(url) = url::Url::parse(return_url) else {
        let error = BrowserError::new(500, "internal_error", "invalid return URL");
        return self::error(&error);
    };
    let result: serde_json::Map<String, serde_json::Value> =
        url.query_pairs().map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned()))).collect();
    let look = Look::new(None);
    let nonce = look.nonce.clone();
    let page = ResultPage {
        look,
        succeeded: result.get("status").and_then(|s| s.as_str()) == Some("succeeded"),
        result: serde_json::Value::Object(result).to_string(),
        origin: url.origin().ascii_serialization(),
        return_url: return_url.to_owned(),
    };
    respond_with(StatusCode::OK, &nonce, page.render(), true)
}

pub(crate) struct ProviderCard {
    pub key: String,
    pub display_name: String,
    pub logo: &'static str,
    pub scopes: Vec<(String, String)>,
    pub scope_note: Option<String>,
    pub connected_account: Option<String>,
    pub href: String,
}

#[derive(Template)]
#[template(path = "hosted/landing.html")]
struct LandingPage {
    look: Look,
    app_name: String,
    providers: Vec<ProviderCard>,
    expires_at: String,
    expires_at_text: String,
}

/// `GET /connect/{token}`: who asks, for which providers, with what access.
pub(crate) fn landing(token: &str, landing: &ConnectLanding, popup: bool) -> Response {
    let look = Look::new(Some(&landing.app));
    let nonce = look.nonce.clone();
    let providers = landing
        .providers
        .iter()
        .map(|p| ProviderCard {
            key: p.key.clone(),
            display_name: p.display_name.clone(),
            logo: logo(&p.provider),
            scopes: p.scopes.clone(),
            scope_note: p.scope_note.clone(),
            connected_account: p.connected_account.clone(),
            href: format!(
                "/connect/{}?provider={}{}",
                token,
                form_urlencoded::byte_serialize(p.key.as_bytes()).collect::<String>(),
                if popup { "&mode=popup" } else { "" }
            ),
        })
        .collect();
    let page = LandingPage {
        app_name: landing.app.shown_name().to_owned(),
        look,
        providers,
        expires_at: landing.expires_at.to_rfc3339(),
        expires_at_text: readable(&landing.expires_at.to_rfc3339()),
    };
    respond(StatusCode::OK, &nonce, page.render())
}

/// `2026-12-03T15:30:00Z` as `2026-12-03 15:30 UTC`.
pub(crate) fn readable(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(minutes) => format!("{} UTC", minutes.replace('T', " ")),
        None => rfc3339.to_owned(),
    }
}

#[derive(Template)]
#[template(path = "hosted/error.html")]
struct ErrorPage<'a> {
    look: Look,
    heading: &'a str,
    message: &'a str,
    advice: &'a str,
    code: &'a str,
}

/// What an end user can do about each kind of failure.
fn advice(code: &str) -> (&'static str, &'static str) {
    match code {
        "unknown_session" | "session_expired" | "session_already_used" | "unknown_wallet_link" | "wallet_link_used" => {
            (
                "This link cannot be used",
                "go back to the app and start again; it will give you a new link. Links work once and for a short time.",
            )
        }
        "access_denied" | "consent_denied" => {
            ("You declined access", "if that was a mistake, go back to the app and connect again.")
        }
        "provider_not_allowed" | "unknown_install" | "invalid_client" | "configuration_error" => (
            "The app's setup is not complete",
            "this is not a problem on your side. Contact the app's support and mention the error code below.",
        ),
        "signed_out" => ("You are signed out", "you can close this page."),
        "wallet_signed_out" => (
            "Open your wallet from the app",
            "go back to the app and open your connections from there; the wallet link works once and for a short time.",
        ),
        "internal_error" => ("Something went wrong", "wait a minute and try again from the app."),
        code if code.starts_with("provider_") => (
            "The provider did not answer",
            "the service you are connecting is not answering right now. Wait a few minutes and try again from the app.",
        ),
        _ => (
            "The connection could not continue",
            "go back to the app and try again. If it keeps happening, contact the app's support with the error code below.",
        ),
    }
}

/// An error page for an end user: what happened, what to do, the stable code (also in the
/// `x-tokenvault-error` header).
pub(crate) fn error(error: &BrowserError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let look = Look::new(None);
    let nonce = look.nonce.clone();
    let (heading, what_to_do) = advice(error.code);
    let page = ErrorPage { look, heading, message: &error.message, advice: what_to_do, code: error.code };
    let mut response = respond(status, &nonce, page.render());
    if let Ok(code) = HeaderValue::from_str(error.code) {
        response.headers_mut().insert("x-tokenvault-error", code);
    }
    response
}
