//! The approval pages a browser sees (the hosted Connect UI and wallet are in `hosted`). Every dynamic value is
//! escaped. Error pages keep their HTML (the JSON error middleware leaves them alone) and carry
//! the stable error code both visibly and in the `x-tokenvault-error` header.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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

/// Pages that take a decision or a password: never framed (a hidden button is the attack), no
/// script, forms only to this origin; `csp` says where styles come from.
pub(crate) fn guarded(mut response: Response, csp: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The approval pages' policy: their few styles are inline.
const APPROVAL_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn approval_headers(response: Response) -> Response {
    guarded(response, APPROVAL_CSP)
}

/// The `name=value` pairs of the request's cookies.
pub(crate) fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

fn held_call(approval: &tokenvault_service::ApprovalView, query: Option<&str>) -> String {
    let call = &approval.request;
    let target = match query.or(call.query.as_deref()) {
        Some(query) => format!("{}?{}", call.path, query),
        None => call.path.clone(),
    };
    let who = approval
        .requested_by
        .agent_id
        .as_deref()
        .map(|a| format!("agent <code>{}</code>", escape(a)))
        .or_else(|| approval.requested_by.api_key_id.as_deref().map(|k| format!("API key <code>{}</code>", escape(k))))
        .unwrap_or_else(|| "unknown".into());
    let reason = approval.requested_by.actor.reason.as_deref().unwrap_or("(no reason given)");
    format!(
        "<dl><dt>Call</dt><dd><code id=\"held-call\">{method} {target}</code></dd>\
         <dt>Provider</dt><dd>{provider}</dd><dt>Account (grant)</dt><dd><code>{grant}</code>{user}</dd>\
         <dt>Asked by</dt><dd>{who}</dd><dt>Reason</dt><dd id=\"reason\">{reason}</dd>\
         <dt>Status</dt><dd id=\"status\">{status}</dd><dt>Decide before</dt><dd>{expires}</dd></dl>",
        method = escape(&call.method),
        target = escape(&target),
        provider = escape(&approval.provider),
        grant = escape(&approval.grant_id),
        user = approval
            .end_user_id
            .as_deref()
            .map(|u| format!(" for end user <code>{}</code>", escape(u)))
            .unwrap_or_default(),
        reason = escape(reason),
        status = escape(&approval.status),
        expires = escape(&approval.expires_at.to_rfc3339()),
    )
}

pub(crate) fn approval_page(token: &str, linked: &tokenvault_service::LinkedApproval) -> Response {
    let approval = &linked.approval;
    let body = linked
        .body_preview
        .as_deref()
        .map(|b| format!("<h2>Body</h2><pre id=\"held-body\">{}</pre>", escape(b)))
        .unwrap_or_default();
    let form = if approval.status == "pending" {
        format!(
            "<form method=\"post\" action=\"/approve/{token}\"><label for=\"comment\">Comment (optional)</label><br>\
             <textarea id=\"comment\" name=\"comment\" maxlength=\"500\" rows=\"3\" cols=\"40\"></textarea><br>\
             <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button> \
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
            token = escape(token)
        )
    } else {
        "<p>This call can no longer be decided.</p>".into()
    };
    let who = if linked.approver == "end_user" { "you" } else { "an operator of the app" };
    let html = format!(
        "<h1>A call waits for your approval</h1><p>An app asks to make this call with your connected account; \
         it is sent only if {who} approve.</p>{}{body}{form}",
        held_call(approval, linked.query.as_deref())
    );
    approval_headers(page(StatusCode::OK, "Approve a call", &html))
}

pub(crate) fn approval_decided(approval: &tokenvault_service::ApprovalView) -> Response {
    let html = format!("<h1>Thank you</h1><p>Your decision is recorded.</p>{}", held_call(approval, None));
    approval_headers(page(StatusCode::OK, "Decision recorded", &html))
}

pub(crate) fn approval_error(error: tokenvault_service::ServiceError) -> Response {
    refusal("This approval link cannot be used", error)
}

/// An error page for a browser form: the heading, the error's message and its code (also in the
/// `x-tokenvault-error` header); never framed.
pub(crate) fn refusal(heading: &str, error: tokenvault_service::ServiceError) -> Response {
    let api = crate::ApiError::from(error);
    let body = format!(
        "<h1>{}</h1><p>{}</p><p>Error code: <code id=\"error-code\">{}</code></p>",
        escape(heading),
        escape(&api.message),
        escape(api.code)
    );
    let mut response = approval_headers(page(api.status, heading, &body));
    if let Ok(code) = HeaderValue::from_str(api.code) {
        response.headers_mut().insert("x-tokenvault-error", code);
    }
    response
}
