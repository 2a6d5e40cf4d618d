//! The hostile host: 200 to anything, while the host-level recorder keeps every request, so SSRF
//! and redirect-following tests can prove nothing (least of all a token) reached it.

use axum::Router;
use axum::response::Response;
use serde_json::json;

use crate::responses;
use crate::server::HostCtx;

pub fn router() -> Router<HostCtx> {
    Router::new().fallback(answer)
}

async fn answer() -> Response {
    responses::json(200, &json!({ "ok": true, "evil": true }))
}
