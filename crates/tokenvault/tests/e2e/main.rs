//! End-to-end tests: the real server on an ephemeral loopback port, driven over HTTP, with a
//! real SQLite file or PostgreSQL database (and, from the connect flow on, the fake providers).

mod coherence;
mod connect_env;
mod disconnect_failures;
mod fake_peek;
mod faults;
mod support;
mod tls;
mod webhooks;

mod admin_tokens;
mod agents;
mod approvals;
mod audit;
mod browser;
mod cli;
mod connect;
mod connect_more;
mod egress;
mod foundation;
mod holes;
mod hosted;
mod keys;
mod lifecycle;
mod log_capture;
mod managed_secrets;
mod mcp;
mod metrics;
mod multiprocess;
mod openapi_conformance;
mod operations;
mod policy_actors;
mod portal;
mod portal_activity;
mod portal_manage;
mod portal_setup;
mod process;
mod provider_verdicts;
mod proxy;
mod refresher;
mod restart;
