//! Approvals of held proxied calls under `/v1/approvals` (app and agent keys), and the page an
//! approver opens from a one-use link, `/approve/{token}`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokenvault_service::{
    ApprovalDecisionInput, ApprovalLinkInput, ApprovalLinkView, ApprovalListQuery, ApprovalResult, ApprovalView,
    MAX_WAIT_SECONDS, Vault,
};

use super::Page;
use crate::ApiError;
use crate::auth::AppCaller;
use crate::json::{JsonBody, OptionalJsonBody};
use crate::query::QueryParams;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    status: Option<String>,
    grant_id: Option<String>,
    /// Cursor: the `next_cursor` of the previous page (newest first).
    before: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitParams {
    wait: Option<String>,
}

/// A page of approvals, newest first; `next_cursor` goes back as `before`.
pub(crate) async fn list_approvals(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Page<ApprovalView>>, ApiError> {
    let limit = tokenvault_service::PageSize::LIST.resolve(params.limit)?;
    let query = ApprovalListQuery {
        status: params.status,
        grant_id: params.grant_id,
        before: params.before,
        limit: Some(limit),
    };
    let approvals = vault.list_approvals(&caller.app_id, query, &caller.context).await?;
    Ok(Json(Page::new(approvals, limit, |a| a.id.clone())))
}

pub(crate) async fn get_approval(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<WaitParams>,
) -> Result<Json<ApprovalView>, ApiError> {
    let wait = match params.wait.as_deref() {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_WAIT_SECONDS => Some(Duration::from_secs(seconds)),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_wait",
                    format!("`wait` is a whole number of seconds from 0 to {MAX_WAIT_SECONDS}"),
                ));
            }
        },
    };
    Ok(Json(vault.get_approval(&caller.app_id, &id, wait, &caller.context).await?))
}

pub(crate) async fn approve(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
    OptionalJsonBody(input): OptionalJsonBody<ApprovalDecisionInput>,
) -> Result<Json<ApprovalView>, ApiError> {
    Ok(Json(vault.decide_approval(&caller.app_id, &id, true, input, &caller.context).await?))
}

pub(crate) async fn deny(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
    OptionalJsonBody(input): OptionalJsonBody<ApprovalDecisionInput>,
) -> Result<Json<ApprovalView>, ApiError> {
    Ok(Json(vault.decide_approval(&caller.app_id, &id, false, input, &caller.context).await?))
}

pub(crate) async fn create_link(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ApprovalLinkInput>,
) -> Result<(StatusCode, Json<ApprovalLinkView>), ApiError> {
    Ok((StatusCode::CREATED, Json(vault.create_approval_link(&caller.app_id, &id, input, &caller.context).await?)))
}

/// The provider's answer, as the proxy would have passed it, marked with the approval.
fn answer(result: ApprovalResult) -> Response {
    let mut out = Response::new(Body::from(result.body));
    *out.status_mut() = StatusCode::from_u16(result.status).unwrap_or(StatusCode::BAD_GATEWAY);
    *out.headers_mut() = result.headers;
    if let Ok(id) = HeaderValue::from_str(&result.approval_id) {
        out.headers_mut().insert("x-tokenvault-approval-id", id);
    }
    out.extensions_mut().insert(crate::pages::RenderedPage);
    out
}

pub(crate) async fn execute(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(answer(vault.execute_approval(&caller.app_id, &id, &caller.context).await?))
}

pub(crate) async fn result(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(answer(vault.approval_result(&caller.app_id, &id, &caller.context).await?))
}

/// The proxy's answer to a held call: `202` with the approval, and where to poll it.
pub(crate) fn held(approval: &ApprovalView) -> Response {
    let mut body = serde_json::to_value(approval).unwrap_or_default();
    body["approval_id"] = serde_json::json!(approval.id);
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/approvals/{}", approval.id)) {
        response.headers_mut().insert(axum::http::header::LOCATION, location);
    }
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct LinkForm {
    decision: String,
    #[serde(default)]
    comment: Option<String>,
}

/// `GET /approve/{token}`: the held call and the two buttons.
pub(crate) async fn link_page(State(vault): State<Arc<Vault>>, Path(token): Path<String>) -> Response {
    match vault.approval_by_link(&token).await {
        Ok(linked) => crate::pages::approval_page(&token, &linked),
        Err(error) => crate::pages::approval_error(error),
    }
}

/// `POST /approve/{token}` (form `decision=approve|deny`, optional `comment`).
pub(crate) async fn link_decide(
    State(vault): State<Arc<Vault>>,
    Path(token): Path<String>,
    form: Result<axum::Form<LinkForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return crate::pages::approval_error(tokenvault_service::ServiceError::invalid(
            "invalid_form",
            "the form needs `decision` (approve or deny)",
        ));
    };
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return crate::pages::approval_error(tokenvault_service::ServiceError::invalid(
                "invalid_form",
                "`decision` is approve or deny",
            ));
        }
    };
    match vault.decide_by_link(&token, approve, form.comment).await {
        Ok(approval) => crate::pages::approval_decided(&approval),
        Err(error) => crate::pages::approval_error(error),
    }
}
