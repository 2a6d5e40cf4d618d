//! The few HTML pages a browser sees: provider choice and connect errors. Every dynamic value is
//! escaped. Error pages keep their HTML (the JSON error middleware leaves them alone) and carry
//! the stable error code both visibly and in the `x-tokenvault-error` header.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokenvault_service::BrowserError;

/// Marks a response as a finished page the error middleware must not replace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RenderedPage;

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         code{{background:#f3f3f3;padding:.1rem .3rem}}a.button{{display:block;margin:.6rem 0;padding:.8rem;border:1px solid #ccc;border-radius:.4rem;text-decoration:none;color:#222}}</style>\
         </head><body>{body}</body></html>",
        title = escape(title)
    );
    let mut response = (status, html).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response.extensions_mut().insert(RenderedPage);
    response
}

pub(crate) fn error_page(error: &BrowserError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = format!(
        "<h1>The connection could not continue</h1><p>{}</p><p>Error code: <code id=\"error-code\">{}</code></p>",
        escape(&error.message),
        escape(error.code)
    );
    let mut response = page(status, "Connection error", &body);
    if let Ok(code) = HeaderValue::from_str(error.code) {
        response.headers_mut().insert("x-tokenvault-error", code);
    }
    response
}

pub(crate) fn choose_provider(token: &str, providers: &[(String, String)]) -> Response {
    let links: String = providers
        .iter()
        .map(|(key, name)| {
            let href = format!(
                "/connect/{}?provider={}",
                escape(token),
                escape(&form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>())
            );
            format!("<a class=\"button\" href=\"{href}\">Connect {}</a>", escape(name))
        })
        .collect();
    page(StatusCode::OK, "Choose a provider", &format!("<h1>Choose what to connect</h1>{links}"))
}
