//! Configuration an operator or app manages: apps, their provider configurations, and the data
//! key ring that seals every stored secret.

pub(crate) mod apps;
pub(crate) mod key_manager;
pub(crate) mod provider_configs;
