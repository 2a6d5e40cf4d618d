//! The HTTP edge of tokenvault: routers, extractors, and the one mapping from errors to responses.
//!
//! Nothing here decides policy; handlers parse input, call a [`Vault`] use case and render the
//! result. Every failure leaves through [`ApiError`] and the [`error_shape`] middleware, so every
//! error response has the same JSON shape and carries the request id.

mod auth;
mod client_ip;
mod context;
mod edge_limits;
mod error;
mod error_shape;
mod hosted;
mod json;
mod log_redaction;
mod mcp;
mod metrics;
mod openapi;
mod pages;
mod query;
mod request_id;
mod routes;
mod scopes;
mod server;

pub use client_ip::TrustedProxies;
pub use edge_limits::HeadLimits;
pub use error::ApiError;
pub use server::{HttpOptions, build_router, serve};

pub use tokenvault_service::Vault;
