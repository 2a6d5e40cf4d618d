//! The one table of what every app-key route needs: a scope (`{resource}:{verb}`), or for
//! deriving a narrower key from the caller's own, only a valid key. The [`crate::auth::AppCaller`]
//! extractor looks the matched route up here before any handler runs, so a route missing from
//! the table fails closed (500, never open); tests keep the table, the router and the OpenAPI
//! document's `x-required-scope` in step, and call every route with a key lacking its scope.

use axum::http::Method;
use tokenvault_service::{Action, Level, Required, Resource, Scope};

use Level::{Admin, Read, Write};
use Resource::*;

const fn level(resource: Resource, level: Level) -> Required {
    Required::Scope(Scope::Level(resource, level))
}

const fn action(action: Action) -> Required {
    Required::Scope(Scope::Action(action))
}

/// `(method, route template as axum matched it, what it needs)`; `*` is any method (the proxy).
pub(crate) const ROUTE_SCOPES: &[(&str, &str, Required)] = &[
    ("GET", "/v1/app", level(App, Read)),
    ("PATCH", "/v1/app", level(App, Write)),
    ("GET", "/v1/provider-configs", level(Providers, Read)),
    ("POST", "/v1/provider-configs", level(Providers, Write)),
    ("GET", "/v1/provider-configs/{id}", level(Providers, Read)),
    ("PUT", "/v1/provider-configs/{id}", level(Providers, Write)),
    ("DELETE", "/v1/provider-configs/{id}", level(Providers, Admin)),
    ("POST", "/v1/connect-sessions", action(Action::Initiate)),
    ("GET", "/v1/connect-sessions/{id}", level(Connect, Read)),
    ("GET", "/v1/grants", level(Grants, Read)),
    ("GET", "/v1/grants/{id}", level(Grants, Read)),
    ("DELETE", "/v1/grants/{id}", level(Grants, Admin)),
    ("POST", "/v1/grants/{id}/token", action(Action::Retrieve)),
    ("POST", "/v1/grants/{id}/verify", level(Grants, Write)),
    ("POST", "/v1/installs/claim", level(Connect, Write)),
    ("POST", "/v1/wallet-sessions", level(Grants, Admin)),
    ("GET", "/v1/webhook-endpoints", level(Webhooks, Read)),
    ("POST", "/v1/webhook-endpoints", level(Webhooks, Write)),
    ("DELETE", "/v1/webhook-endpoints/{id}", level(Webhooks, Admin)),
    ("POST", "/v1/webhook-endpoints/{id}/rotate-secret", level(Webhooks, Admin)),
    ("GET", "/v1/webhook-deliveries", level(Webhooks, Read)),
    ("POST", "/v1/webhook-deliveries/{id}/retry", level(Webhooks, Write)),
    ("GET", "/v1/policies", level(Policies, Read)),
    ("POST", "/v1/policies", level(Policies, Write)),
    ("DELETE", "/v1/policies/{id}", level(Policies, Admin)),
    ("GET", "/v1/managed-secrets", level(Secrets, Read)),
    ("POST", "/v1/managed-secrets", level(Secrets, Write)),
    ("GET", "/v1/managed-secrets/{id}", level(Secrets, Read)),
    ("PUT", "/v1/managed-secrets/{id}", level(Secrets, Write)),
    ("DELETE", "/v1/managed-secrets/{id}", level(Secrets, Admin)),
    ("GET", "/v1/audit", level(Audit, Read)),
    ("GET", "/v1/audit/export", level(Audit, Read)),
    ("GET", "/v1/api-keys", level(Keys, Read)),
    ("POST", "/v1/api-keys", level(Keys, Admin)),
    ("POST", "/v1/api-keys/derive", Required::AnyKey),
    ("DELETE", "/v1/api-keys/{key_id}", level(Keys, Admin)),
    ("POST", "/v1/api-keys/{key_id}/rotate", level(Keys, Admin)),
    ("GET", "/v1/agents", level(Agents, Read)),
    ("POST", "/v1/agents", level(Agents, Write)),
    ("GET", "/v1/agents/{agent_id}", level(Agents, Read)),
    ("PATCH", "/v1/agents/{agent_id}", level(Agents, Write)),
    ("DELETE", "/v1/agents/{agent_id}", level(Agents, Admin)),
    ("POST", "/v1/agents/{agent_id}/keys", level(Keys, Admin)),
    ("GET", "/v1/agents/{agent_id}/delegations", level(Delegations, Read)),
    ("POST", "/v1/agents/{agent_id}/delegations", level(Delegations, Write)),
    ("GET", "/v1/delegations/{id}", level(Delegations, Read)),
    ("DELETE", "/v1/delegations/{id}", level(Delegations, Admin)),
    ("GET", "/v1/approvals", level(Approvals, Read)),
    ("GET", "/v1/approvals/{id}", Required::AnyKey),
    ("POST", "/v1/approvals/{id}/approve", level(Approvals, Write)),
    ("POST", "/v1/approvals/{id}/deny", level(Approvals, Write)),
    ("POST", "/v1/approvals/{id}/links", level(Approvals, Write)),
    ("POST", "/v1/approvals/{id}/execute", action(Action::Execute)),
    ("GET", "/v1/approvals/{id}/result", action(Action::Execute)),
    ("*", "/v1/proxy/{grant_id}/{*path}", action(Action::Execute)),
    ("*", "/v1/proxy/{grant_id}", action(Action::Execute)),
];

/// What the route `template` needs for `method`; `None` for a route missing from the table.
pub(crate) fn required(method: &Method, template: &str) -> Option<Required> {
    // axum answers HEAD with the GET handler: it needs what GET needs.
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    ROUTE_SCOPES
        .iter()
        .find(|(m, path, _)| *path == template && (*m == "*" || *m == method))
        .map(|(_, _, required)| *required)
}
