//! Everything the fakes remember, behind one mutex owned by `Control`.
//!
//! Handlers lock, decide, unlock, then build the response; the lock is never held across an
//! `.await`, so a std `Mutex` is enough.

use std::collections::HashMap;

use crate::clock::Clock;
use crate::fault::{Endpoint, Faults};
use crate::inspect::{RecordedRequest, TokenRequestLog};
use crate::model::{ClientRegistration, ConsentMode, FakeUser};
use crate::pkce::Challenge;
use crate::provider::{Host, Provider};
use crate::tokens::{GrantId, TokenStore};
use crate::variant::Variants;

/// Recorded requests kept per host; older ones are dropped so a long demo cannot grow unbounded.
pub const MAX_RECORDED_PER_HOST: usize = 10_000;

/// An issued authorization code and everything it is bound to.
#[derive(Clone, Debug)]
pub struct AuthCode {
    pub client_id: String,
    /// The `redirect_uri` sent to the authorization endpoint, if one was sent.
    pub redirect_uri: Option<String>,
    pub challenge: Option<Challenge>,
    pub scopes: Vec<String>,
    pub user: FakeUser,
    pub expires_at: u64,
    pub used: bool,
    /// The grant minted from this code, so a replay can revoke it.
    pub grant: Option<GrantId>,
    pub nonce: Option<String>,
}

/// Per-provider state.
#[derive(Debug)]
pub struct ProviderState {
    pub clients: HashMap<String, ClientRegistration>,
    pub user: FakeUser,
    pub consent: ConsentMode,
    pub codes: HashMap<String, AuthCode>,
    pub tokens: TokenStore,
    pub token_log: Vec<TokenRequestLog>,
    /// Fixed rate-limit window: (window start, requests in it).
    pub rate_window: (u64, u32),
}

impl ProviderState {
    fn new(provider: Provider) -> Self {
        ProviderState {
            clients: HashMap::new(),
            user: FakeUser::default_for(provider),
            consent: ConsentMode::AutoApprove,
            codes: HashMap::new(),
            tokens: TokenStore::default(),
            token_log: Vec::new(),
            rate_window: (0, 0),
        }
    }
}

/// An Aircall integration: one client installed in one company.
#[derive(Clone, Debug)]
pub struct Integration {
    pub id: u64,
    pub active: bool,
}

/// A webhook created through Aircall's API.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AircallWebhook {
    pub webhook_id: String,
    pub token: String,
    pub url: String,
    pub custom_name: String,
    pub events: Vec<String>,
    pub created_at: u64,
    pub client_id: String,
    pub company_id: String,
}

#[derive(Debug, Default)]
pub struct AircallState {
    /// Keyed by (client_id, company id).
    pub integrations: HashMap<(String, String), Integration>,
    pub webhooks: Vec<AircallWebhook>,
}

#[derive(Debug, Default)]
pub struct State {
    pub clock: Clock,
    pub variants: Variants,
    pub faults: Faults,
    providers: HashMap<Provider, ProviderState>,
    pub calls: HashMap<(Provider, Endpoint), u64>,
    pub host_calls: HashMap<Host, u64>,
    pub recorded: HashMap<Host, Vec<RecordedRequest>>,
    pub aircall: AircallState,
}

impl State {
    pub fn provider(&mut self, provider: Provider) -> &mut ProviderState {
        self.providers.entry(provider).or_insert_with(|| ProviderState::new(provider))
    }

    pub fn record(&mut self, request: RecordedRequest) {
        let list = self.recorded.entry(request.host).or_default();
        if list.len() >= MAX_RECORDED_PER_HOST {
            list.remove(0);
        }
        list.push(request);
    }
}
