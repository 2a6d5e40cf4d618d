//! The `tokenvault` binary's library half: configuration, wiring and startup, shared by `main`
//! and the end-to-end tests (which start the real server on an ephemeral port).

pub mod application;
pub mod cli;
pub mod client;
pub mod commands;
pub mod direct;
pub mod logging;
pub mod master_key;
pub mod output;
pub mod profiles;
pub mod remote;
pub mod settings;

pub use application::Application;
pub use settings::Settings;
