//! Which emulated provider, and which emulated host, a request or a setting belongs to.
//!
//! Providers own state (clients, users, codes, tokens). Hosts are listeners: one provider may be
//! served by several hosts (Zoom's `zoom.us` and `api.zoom.us`), and the two Dialpad hosts are two
//! providers because their client registrations are separate.

use serde::{Deserialize, Serialize};

/// An emulated OAuth provider with its own registrations, users and tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    DialpadProduction,
    DialpadSandbox,
    Zoom,
    Aircall,
    Generic,
}

impl Provider {
    pub const ALL: [Provider; 5] =
        [Provider::DialpadProduction, Provider::DialpadSandbox, Provider::Zoom, Provider::Aircall, Provider::Generic];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::DialpadProduction => "dialpad_production",
            Provider::DialpadSandbox => "dialpad_sandbox",
            Provider::Zoom => "zoom",
            Provider::Aircall => "aircall",
            Provider::Generic => "generic",
        }
    }

    pub fn is_dialpad(self) -> bool {
        matches!(self, Provider::DialpadProduction | Provider::DialpadSandbox)
    }
}

impl std::str::FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| format!("unknown provider {s:?}"))
    }
}

/// One emulated host (one loopback listener).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Host {
    DialpadProduction,
    DialpadSandbox,
    ZoomOauth,
    ZoomApi,
    ZoomApiAlt,
    AircallDashboard,
    AircallApi,
    Generic,
    Evil,
}

impl Host {
    /// Listener order; with a fixed base port, host `i` gets `base + i` and control gets `base + 9`.
    pub const ALL: [Host; 9] = [
        Host::DialpadProduction,
        Host::DialpadSandbox,
        Host::ZoomOauth,
        Host::ZoomApi,
        Host::ZoomApiAlt,
        Host::AircallDashboard,
        Host::AircallApi,
        Host::Generic,
        Host::Evil,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Host::DialpadProduction => "dialpad_production",
            Host::DialpadSandbox => "dialpad_sandbox",
            Host::ZoomOauth => "zoom_oauth",
            Host::ZoomApi => "zoom_api",
            Host::ZoomApiAlt => "zoom_api_alt",
            Host::AircallDashboard => "aircall_dashboard",
            Host::AircallApi => "aircall_api",
            Host::Generic => "generic",
            Host::Evil => "evil",
        }
    }

    /// The provider whose state this host serves (`None` for the evil host).
    pub fn provider(self) -> Option<Provider> {
        match self {
            Host::DialpadProduction => Some(Provider::DialpadProduction),
            Host::DialpadSandbox => Some(Provider::DialpadSandbox),
            Host::ZoomOauth | Host::ZoomApi | Host::ZoomApiAlt => Some(Provider::Zoom),
            Host::AircallDashboard | Host::AircallApi => Some(Provider::Aircall),
            Host::Generic => Some(Provider::Generic),
            Host::Evil => None,
        }
    }
}

impl std::str::FromStr for Host {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Host::ALL.into_iter().find(|h| h.as_str() == s).ok_or_else(|| format!("unknown host {s:?}"))
    }
}
