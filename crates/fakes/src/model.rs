//! Values tests configure: client registrations, the consenting user, the consent behaviour.

use serde::{Deserialize, Serialize};

use crate::provider::Provider;

/// A client (app) registered at a provider, as the provider's developer console would hold it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    pub client_id: String,
    pub client_secret: String,
    /// Compared to `redirect_uri` by exact string match.
    pub redirect_uris: Vec<String>,
    /// Zoom: the scopes configured on the app, granted as a bundle.
    /// Others: the scopes the client may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Aircall: where the dashboard's "Install" button sends the admin.
    #[serde(default)]
    pub install_uri: Option<String>,
}

/// The person who consents next at a provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeUser {
    pub id: String,
    /// Dialpad `company_id`, Zoom `account_id`, Aircall company id.
    pub account_id: String,
    pub name: String,
    pub email: String,
}

impl FakeUser {
    /// Each provider starts with a plausible user whose id looks like that provider's ids.
    pub fn default_for(provider: Provider) -> FakeUser {
        let (id, account_id, name, email) = match provider {
            Provider::DialpadProduction => ("5835806903417907", "4508591728425984", "Dana Dialer", "dana@example.com"),
            Provider::DialpadSandbox => ("6046311011590144", "5174212836065280", "Sandy Sandbox", "sandy@example.com"),
            Provider::Zoom => ("KDcuGIm1QgePTO8WbOqwIQ", "Q8ZiAqZ_TE6sYVA4p2dG1w", "Zoe Zoomer", "zoe@example.com"),
            Provider::Aircall => ("123456", "98765", "Alex Aircall", "alex@example.com"),
            Provider::Generic => ("user-0001", "tenant-0001", "Gene Generic", "gene@example.com"),
        };
        FakeUser {
            id: id.to_owned(),
            account_id: account_id.to_owned(),
            name: name.to_owned(),
            email: email.to_owned(),
        }
    }

    /// `(first, last)` split at the first space, for providers that report both.
    pub fn first_last(&self) -> (&str, &str) {
        self.name.split_once(' ').unwrap_or((self.name.as_str(), ""))
    }
}

/// What the authorization endpoint does once the request is valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    /// Redirect to `redirect_uri` with a code at once (tests).
    #[default]
    AutoApprove,
    /// Redirect with `error=access_denied`.
    AutoDeny,
    /// Show an HTML page with Approve and Deny buttons (browser demos).
    Page,
}
