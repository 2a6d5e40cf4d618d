//! `/mcp`: the Model Context Protocol over its Streamable HTTP transport (the official Rust SDK,
//! `rmcp`), so an AI agent that speaks MCP is just another caller of the vault: authenticated by
//! its agent key (or an app key with `proxy:execute`) at the transport, and served by the same
//! service-layer operations as the HTTP API, under the same delegations, policies, approvals,
//! limits and audit. Tools never return a token; errors come back as tool errors carrying the
//! vault's machine-readable code.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Value, json};
use tokenvault_service::{
    Action, ApprovalResult, CallContext, ConnectSessionInput, GrantListQuery, ProxyOutcome, ProxyRequest, Required,
    Scope, ServiceError, Vault,
};

use crate::ApiError;

/// Largest provider answer a tool returns to the agent.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Who the transport authenticated, put in the request for the tools.
#[derive(Clone)]
struct McpCaller {
    app_id: String,
    context: CallContext,
}

/// Authenticates every `/mcp` request before the MCP layer sees it: a bad or missing key is a
/// `401` of the transport, a key without `proxy:execute` a `403`, in the vault's error shape.
pub(crate) async fn authenticate(State(vault): State<Arc<Vault>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match caller(&vault, &mut parts).await {
        Ok(caller) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) => error.into_response(),
    }
}

async fn caller(vault: &Arc<Vault>, parts: &mut axum::http::request::Parts) -> Result<McpCaller, ApiError> {
    let presented = crate::auth::bearer(parts)?;
    let principal = vault.authenticate_api_key(presented, crate::context::client_ip(parts)).await?;
    principal.require(Required::Scope(Scope::Action(Action::Execute)))?;
    let crate::context::Context(mut context) =
        <crate::context::Context as axum::extract::FromRequestParts<Arc<Vault>>>::from_request_parts(parts, vault)
            .await?;
    let key = Arc::new(principal);
    context.key = Some(key.clone());
    Ok(McpCaller { app_id: key.app_id.clone(), context })
}

/// The MCP service mounted at `/mcp`: stateless (any instance answers any request), JSON answers.
pub(crate) fn service(vault: Arc<Vault>) -> StreamableHttpService<Tools, LocalSessionManager> {
    let public = vault.public_url();
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Some(host) = public.host_str() {
        hosts.push(host.to_owned());
        if let Some(port) = public.port() {
            hosts.push(format!("{host}:{port}"));
        }
    }
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(hosts);
    StreamableHttpService::new(
        move || Ok(Tools { vault: vault.clone() }),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

#[derive(Clone)]
pub(crate) struct Tools {
    vault: Arc<Vault>,
}

fn object(value: Value) -> Arc<serde_json::Map<String, Value>> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(serde_json::Map::new()),
    }
}

/// The tools, their descriptions and input schemas (documented in docs/mcp.md).
fn tool_list() -> Vec<rmcp::model::Tool> {
    use rmcp::model::Tool;
    let grant = json!({ "type": "string", "pattern": "^grt_[0-9a-f]{32}$", "description": "a connection id from list_connections" });
    vec![
        Tool::new(
            "list_connections",
            "The connected accounts (grants) you may use: provider, account, status, and which methods and paths you may call. Never a token.",
            object(json!({ "type": "object", "properties": {}, "additionalProperties": false })),
        ),
        Tool::new(
            "call_api",
            "Call the provider's API with a connection, through the vault (which adds the credential). A call that needs a person's approval is not sent: the result says `pending_approval` with an `approval_id`; call check_approval with it later.",
            object(json!({
                "type": "object",
                "properties": {
                    "grant_id": grant,
                    "method": { "type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"] },
                    "path": { "type": "string", "pattern": "^/", "description": "the API path, e.g. /v2/users/me (Zoom), /api/v2/users (Dialpad), /v1/calls (Aircall)" },
                    "query": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] }, "description": "query parameters" },
                    "body": { "description": "a JSON body, sent as application/json" },
                    "reason": { "type": "string", "maxLength": 512, "description": "why you make this call (shown to approvers and kept in the audit log)" }
                },
                "required": ["grant_id", "method", "path"],
                "additionalProperties": false
            })),
        ),
        Tool::new(
            "start_connection",
            "Start connecting an end user's account: returns a URL the end user opens in a browser. The new connection is delegated to you.",
            object(json!({
                "type": "object",
                "properties": {
                    "end_user_id": { "type": "string", "minLength": 1, "description": "the app's id of the end user" },
                    "provider": { "type": "string", "description": "a provider configuration key of the app, e.g. zoom, dialpad, aircall" },
                    "return_url": { "type": "string", "description": "where the browser returns (default: the app's first registered return origin)" }
                },
                "required": ["end_user_id"],
                "additionalProperties": false
            })),
        ),
        Tool::new(
            "check_approval",
            "Check a call that waits for approval. Waits up to `wait_seconds` (default 10, at most 25) while it is pending; once approved, executes the call (exactly once) and returns the provider's answer.",
            object(json!({
                "type": "object",
                "properties": {
                    "approval_id": { "type": "string", "pattern": "^apr_[0-9a-f]{32}$" },
                    "wait_seconds": { "type": "integer", "minimum": 0, "maximum": 25 }
                },
                "required": ["approval_id"],
                "additionalProperties": false
            })),
        ),
    ]
}

/// What an agent should know to use each provider's API well.
const RESOURCES: &[(&str, &str, &str)] = &[
    ("tokenvault://providers/zoom", "Zoom API", include_str!("mcp/zoom.md")),
    ("tokenvault://providers/dialpad", "Dialpad API", include_str!("mcp/dialpad.md")),
    ("tokenvault://providers/aircall", "Aircall API", include_str!("mcp/aircall.md")),
];

fn text(value: Value) -> ContentBlock {
    ContentBlock::text(serde_json::to_string_pretty(&value).unwrap_or_default())
}

/// A vault error as a tool error: its code, status and message, nothing secret.
fn failed(error: ServiceError) -> CallToolResult {
    let api = ApiError::from(error);
    CallToolResult::error(vec![text(
        json!({ "error": api.code, "status": api.status.as_u16(), "message": api.message }),
    )])
}

fn invalid(message: &str) -> CallToolResult {
    failed(ServiceError::invalid("invalid_arguments", message))
}

/// The provider's answer as a tool result: an error result for a 4xx or 5xx.
async fn answered(status: u16, headers: &http::HeaderMap, body: Vec<u8>, approval_id: Option<&str>) -> CallToolResult {
    let kind = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let shown = if body.is_empty() {
        Value::Null
    } else if let Ok(json) = serde_json::from_slice::<Value>(&body) {
        json
    } else {
        Value::String(String::from_utf8_lossy(&body).into_owned())
    };
    let mut out = json!({ "status": status, "content_type": kind, "body": shown });
    if let Some(id) = approval_id {
        out["approval_id"] = json!(id);
    }
    if status >= 400 { CallToolResult::error(vec![text(out)]) } else { CallToolResult::success(vec![text(out)]) }
}

fn pending(approval: &tokenvault_service::ApprovalView) -> CallToolResult {
    CallToolResult::success(vec![text(json!({
        "status": "pending_approval",
        "approval_id": approval.id,
        "approvers": approval.approvers,
        "expires_at": approval.expires_at,
        "next": "This call needs a person's approval and was not sent. Tell the user, then call check_approval with this approval_id (it waits up to 25 seconds per call, and executes the call once approved).",
    }))])
}

impl Tools {
    async fn list_connections(&self, caller: &McpCaller) -> Result<CallToolResult, ServiceError> {
        let query = GrantListQuery { status: Some("active".into()), limit: Some(200), ..GrantListQuery::default() };
        let grants = self.vault.list_grants(&caller.app_id, &query, &caller.context).await?;
        let delegations = match caller.context.agent_id() {
            Some(agent) => self.vault.list_delegations(&caller.app_id, agent).await?,
            None => Vec::new(),
        };
        let now = self.vault.now();
        let connections: Vec<Value> = grants
            .iter()
            .map(|g| {
                let delegation = delegations
                    .iter()
                    .rev()
                    .find(|d| d.grant_id == g.id && d.revoked_at.is_none() && d.expires_at.is_none_or(|e| e > now));
                json!({
                    "grant_id": g.id,
                    "provider": g.provider,
                    "end_user_id": g.end_user_id,
                    "account": g.account,
                    "scopes": g.scopes,
                    "status": g.status,
                    "api_base_url": g.api_base_url,
                    "allowed_methods": delegation.and_then(|d| d.methods.clone()),
                    "allowed_paths": delegation.and_then(|d| d.paths.clone()),
                    "resource": format!("tokenvault://providers/{}", g.provider.split('-').next().unwrap_or_default()),
                })
            })
            .collect();
        Ok(CallToolResult::success(vec![text(json!({ "connections": connections }))]))
    }

    async fn call_api(&self, caller: &McpCaller, args: &Value) -> Result<CallToolResult, ServiceError> {
        let (Some(grant_id), Some(method), Some(path)) =
            (args["grant_id"].as_str(), args["method"].as_str(), args["path"].as_str())
        else {
            return Ok(invalid("`grant_id`, `method` and `path` are required"));
        };
        let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
            return Ok(invalid("`method` is not valid"));
        };
        if matches!(method, http::Method::TRACE | http::Method::CONNECT) || !path.starts_with('/') {
            return Ok(invalid("`method` is GET, POST, PUT, PATCH or DELETE and `path` starts with `/`"));
        }
        let query = match &args["query"] {
            Value::Null => None,
            Value::Object(pairs) => {
                let mut out = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    out.append_pair(k, &v);
                }
                Some(out.finish())
            }
            _ => return Ok(invalid("`query` is an object of parameters")),
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::ACCEPT, http::HeaderValue::from_static("application/json"));
        let body = match &args["body"] {
            Value::Null => Vec::new(),
            value => {
                headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                serde_json::to_vec(value).unwrap_or_default()
            }
        };
        if !body.is_empty() {
            headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(body.len()));
        }
        let mut context = caller.context.clone();
        if let Some(reason) = args["reason"].as_str() {
            context.actor = tokenvault_service::Actor::parse(
                context.actor.kind.as_deref().or(Some("ai_agent")),
                context.actor.id.as_deref(),
                Some(reason),
            )?;
        }
        let body = bytes::Bytes::from(body);
        let request = ProxyRequest {
            method,
            path: path.to_owned(),
            query,
            headers,
            body: Box::pin(futures_util::stream::once(async move { Ok(body) })),
        };
        match self.vault.proxy(&caller.app_id, grant_id, request, &context).await? {
            ProxyOutcome::Held(approval) => Ok(pending(&approval)),
            ProxyOutcome::Forwarded(response) => {
                let body =
                    tokenvault_service::read_capped(response.body, MAX_ANSWER_BYTES).await?.ok_or_else(|| {
                        ServiceError::Gateway {
                            status: 502,
                            code: "answer_too_large",
                            message: format!(
                                "the provider's answer is over {MAX_ANSWER_BYTES} bytes; ask for less (paging, fields)"
                            ),
                        }
                    })?;
                Ok(answered(response.status, &response.headers, body.to_vec(), None).await)
            }
        }
    }

    async fn start_connection(&self, caller: &McpCaller, args: &Value) -> Result<CallToolResult, ServiceError> {
        let Some(end_user_id) = args["end_user_id"].as_str() else { return Ok(invalid("`end_user_id` is required")) };
        let return_url = match args["return_url"].as_str() {
            Some(url) => url.to_owned(),
            None => {
                let app = self.vault.get_app(&caller.app_id).await?;
                match app.return_origins.first() {
                    Some(origin) => format!("{}/", origin.trim_end_matches('/')),
                    None => return Ok(invalid("the app has no return origin: pass `return_url`")),
                }
            }
        };
        let input = ConnectSessionInput {
            end_user_id: end_user_id.to_owned(),
            providers: args["provider"].as_str().map(|p| vec![p.to_owned()]),
            return_url,
            ttl_seconds: None,
            delegate_to_agent_id: None,
        };
        let created = self.vault.create_connect_session(&caller.app_id, input, &caller.context).await?;
        use secrecy::ExposeSecret;
        Ok(CallToolResult::success(vec![text(json!({
            "connect_url": created.connect_url.expose_secret(),
            "session_id": created.session.id,
            "expires_at": created.session.expires_at,
            "next": "Give this URL to the end user to open in a browser. When they are done, list_connections shows the new connection.",
        }))]))
    }

    async fn check_approval(&self, caller: &McpCaller, args: &Value) -> Result<CallToolResult, ServiceError> {
        let Some(id) = args["approval_id"].as_str() else { return Ok(invalid("`approval_id` is required")) };
        let wait = match &args["wait_seconds"] {
            Value::Null => 10,
            value => match value.as_u64() {
                Some(s) if s <= tokenvault_service::MAX_WAIT_SECONDS => s,
                _ => return Ok(invalid("`wait_seconds` is 0 to 25")),
            },
        };
        let approval =
            self.vault.get_approval(&caller.app_id, id, Some(Duration::from_secs(wait)), &caller.context).await?;
        match approval.status.as_str() {
            "pending" => Ok(pending(&approval)),
            "approved" => {
                let ApprovalResult { approval_id, status, headers, body } =
                    self.vault.execute_approval(&caller.app_id, id, &caller.context).await?;
                Ok(answered(status, &headers, body.to_vec(), Some(&approval_id)).await)
            }
            "executed" if approval.result_available => {
                let ApprovalResult { approval_id, status, headers, body } =
                    self.vault.approval_result(&caller.app_id, id, &caller.context).await?;
                Ok(answered(status, &headers, body.to_vec(), Some(&approval_id)).await)
            }
            other => Ok(CallToolResult::error(vec![text(json!({
                "error": format!("approval_{other}"),
                "status": other,
                "error_code": approval.error_code,
                "message": match other {
                    "denied" => "a person denied this call; it was not sent",
                    "expired" => "nobody approved this call in time; it was not sent",
                    "failed" => "the approved call could not be executed (see error_code)",
                    _ => "this call was already executed; its answer is no longer kept",
                },
            }))])),
        }
    }
}

fn caller_of(context: &RequestContext<RoleServer>) -> Result<McpCaller, ErrorData> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<McpCaller>().cloned())
        .ok_or_else(|| ErrorData::internal_error("the request was not authenticated", None))
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("tokenvault", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "tokenvault holds the users' OAuth grants for Zoom, Dialpad, Aircall and other APIs. \
                 Use list_connections to see which accounts you may use, call_api to call their APIs \
                 (you never see a token), start_connection to have a user connect an account, and \
                 check_approval for calls a person must approve first. The resources describe each API.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult { tools: tool_list(), ..ListToolsResult::default() })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller_of(&context)?;
        let args = Value::Object(request.arguments.unwrap_or_default());
        let outcome = match request.name.as_ref() {
            "list_connections" => self.list_connections(&caller).await,
            "call_api" => self.call_api(&caller, &args).await,
            "start_connection" => self.start_connection(&caller, &args).await,
            "check_approval" => self.check_approval(&caller, &args).await,
            other => {
                return Err(ErrorData::invalid_params(format!("no tool named `{other}`"), None));
            }
        };
        Ok(outcome.unwrap_or_else(failed).into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources: Vec<Value> = RESOURCES
            .iter()
            .map(|(uri, name, _)| json!({ "uri": uri, "name": name, "mimeType": "text/markdown" }))
            .collect();
        serde_json::from_value(json!({ "resources": resources }))
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some((uri, _, body)) = RESOURCES.iter().find(|(uri, _, _)| *uri == request.uri) else {
            return Err(ErrorData::resource_not_found(format!("no resource `{}`", request.uri), None));
        };
        let result: ReadResourceResult = serde_json::from_value(json!({
            "contents": [{ "uri": uri, "mimeType": "text/markdown", "text": body }]
        }))
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(result.into())
    }
}
