//! The portal's activity pages of one app: grants (filter, detail, disconnect, a connect link)
//! and the audit log (filters, pages, CSV and JSON-lines export).

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokenvault_service::Vault;

/// `GET /portal/apps/{app_id}/grants`.
pub(crate) async fn grants(
    State(_vault): State<Arc<Vault>>,
    Path(_app_id): Path<String>,
    _headers: HeaderMap,
    RawQuery(_query): RawQuery,
) -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}

/// `GET /portal/apps/{app_id}/grants/{grant_id}`.
pub(crate) async fn grant(
    State(_vault): State<Arc<Vault>>,
    Path((_app_id, _grant_id)): Path<(String, String)>,
    _headers: HeaderMap,
) -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}

/// `POST /portal/apps/{app_id}/grants/{grant_id}/disconnect`.
pub(crate) async fn disconnect(
    State(_vault): State<Arc<Vault>>,
    Path((_app_id, _grant_id)): Path<(String, String)>,
    _headers: HeaderMap,
    crate::context::Context(_context): crate::context::Context,
    _form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}

/// `POST /portal/apps/{app_id}/connect-links`.
pub(crate) async fn connect_link(
    State(_vault): State<Arc<Vault>>,
    Path(_app_id): Path<String>,
    _headers: HeaderMap,
    crate::context::Context(_context): crate::context::Context,
    _form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}

/// `GET /portal/apps/{app_id}/audit`.
pub(crate) async fn audit(
    State(_vault): State<Arc<Vault>>,
    Path(_app_id): Path<String>,
    _headers: HeaderMap,
    RawQuery(_query): RawQuery,
) -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}

/// `GET /portal/apps/{app_id}/audit/export`.
pub(crate) async fn export(
    State(_vault): State<Arc<Vault>>,
    Path(_app_id): Path<String>,
    _headers: HeaderMap,
    RawQuery(_query): RawQuery,
) -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}
