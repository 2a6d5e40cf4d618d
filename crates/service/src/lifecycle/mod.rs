//! A grant's life after it is stored: kept fresh (single-flight refresh under a lease, the
//! background refresher and its schedule), told about by providers (their webhooks), and ended
//! (disconnect, with revocation at the provider).

pub(crate) mod disconnect;
pub(crate) mod grants;
pub(crate) mod lease_heartbeat;
pub(crate) mod persist;
pub(crate) mod provider_webhooks;
pub(crate) mod refresh;
pub(crate) mod refresher;
pub(crate) mod schedule;
pub(crate) mod single_flight;
