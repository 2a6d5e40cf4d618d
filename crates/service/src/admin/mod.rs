//! Configuration an operator or app manages: apps, their provider configurations, the data key
//! ring that seals every stored secret, and the operators who sign in to the portal.

pub(crate) mod apps;
pub(crate) mod key_manager;
pub(crate) mod operators;
pub(crate) mod provider_configs;
