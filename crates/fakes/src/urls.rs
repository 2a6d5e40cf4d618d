//! Where each emulated host listens.

use serde::Serialize;

use crate::provider::Host;

/// Base URLs, each like `http://127.0.0.1:PORT` (no trailing slash); distinct ports stand in
/// for distinct hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FakeUrls {
    /// Dialpad production: `/oauth2/authorize`, `/oauth2/token`, `/oauth2/deauthorize`, `/api/v2/...`.
    pub dialpad_production: String,
    /// Dialpad sandbox: same paths, separate client registrations and tokens.
    pub dialpad_sandbox: String,
    /// "zoom.us": `/oauth/authorize`, `/oauth/token`, `/oauth/revoke`.
    pub zoom_oauth: String,
    /// "api.zoom.us": `/v2/users/me`, `/v2/echo/...`.
    pub zoom_api: String,
    /// A second Zoom API host, for a switched `api_url`.
    pub zoom_api_alt: String,
    /// "dashboard.aircall.io": `/oauth/authorize`, `/install?client_id=...`.
    pub aircall_dashboard: String,
    /// "api.aircall.io": `/v1/oauth/token`, `/v1/integrations/...`, `/v1/webhooks`, `/v1/ping`.
    pub aircall_api: String,
    /// The generic server's issuer identifier, with a path: `http://127.0.0.1:PORT/realms/test`.
    pub generic_issuer: String,
    /// A hostile host that answers 200 to everything and records every request.
    pub evil: String,
}

/// The path part of the generic issuer.
pub const GENERIC_ISSUER_PATH: &str = "/realms/test";

impl FakeUrls {
    /// The base URL (scheme, host, port) of a host; for the generic server, without the issuer path.
    pub fn base(&self, host: Host) -> &str {
        match host {
            Host::DialpadProduction => &self.dialpad_production,
            Host::DialpadSandbox => &self.dialpad_sandbox,
            Host::ZoomOauth => &self.zoom_oauth,
            Host::ZoomApi => &self.zoom_api,
            Host::ZoomApiAlt => &self.zoom_api_alt,
            Host::AircallDashboard => &self.aircall_dashboard,
            Host::AircallApi => &self.aircall_api,
            Host::Generic => self.generic_issuer.strip_suffix(GENERIC_ISSUER_PATH).unwrap_or(&self.generic_issuer),
            Host::Evil => &self.evil,
        }
    }

    pub(crate) fn from_bases(bases: &[(Host, String)]) -> FakeUrls {
        let mut urls = FakeUrls::default();
        for (host, base) in bases {
            let slot = match host {
                Host::DialpadProduction => &mut urls.dialpad_production,
                Host::DialpadSandbox => &mut urls.dialpad_sandbox,
                Host::ZoomOauth => &mut urls.zoom_oauth,
                Host::ZoomApi => &mut urls.zoom_api,
                Host::ZoomApiAlt => &mut urls.zoom_api_alt,
                Host::AircallDashboard => &mut urls.aircall_dashboard,
                Host::AircallApi => &mut urls.aircall_api,
                Host::Generic => &mut urls.generic_issuer,
                Host::Evil => &mut urls.evil,
            };
            *slot = if *host == Host::Generic { format!("{base}{GENERIC_ISSUER_PATH}") } else { base.clone() };
        }
        urls
    }
}
