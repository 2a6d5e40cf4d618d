//! `Control`: the test-facing handle on the fakes' shared state.
//!
//! Every method is synchronous and cheap; the state sits behind one std `Mutex` that handlers hold
//! only briefly, so tests can flip behaviour between requests without awaiting anything.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::fault::{Endpoint, Fault};
use crate::inspect::{RecordedRequest, TokenRequestLog};
use crate::model::{ClientRegistration, ConsentMode, FakeUser};
use crate::provider::{Host, Provider};
use crate::state::{AircallWebhook, State};
use crate::urls::FakeUrls;
use crate::variant::{Variant, Variants};
use crate::webhooks;

/// Cheap-to-clone handle on the shared state of all emulators.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    urls: OnceLock<FakeUrls>,
}

/// One row of `Control::all_calls`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallCount {
    pub provider: Provider,
    pub endpoint: Endpoint,
    pub count: u64,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("urls", &self.shared.urls.get()).finish_non_exhaustive()
    }
}

impl Control {
    pub(crate) fn new() -> Control {
        Control { shared: Arc::new(Shared::default()) }
    }

    /// The state, even if a handler panicked while holding it (the fakes must keep answering).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn set_urls(&self, urls: FakeUrls) {
        let _ = self.shared.urls.set(urls);
    }

    /// The URLs of every host (empty strings before the servers are bound).
    pub fn urls(&self) -> FakeUrls {
        self.shared.urls.get().cloned().unwrap_or_default()
    }

    pub(crate) fn base_url(&self, host: Host) -> String {
        self.shared.urls.get().map(|u| u.base(host).to_owned()).unwrap_or_default()
    }

    // ----- clock -----

    /// Unix seconds on the fake clock.
    pub fn now(&self) -> u64 {
        self.lock().clock.now()
    }

    /// Moves the fake clock forward; every lifetime (codes, tokens, inactivity) follows it.
    pub fn advance(&self, by: Duration) {
        self.lock().clock.advance(by);
    }

    // ----- configuration -----

    /// Registers (or replaces) a client at a provider.
    pub fn register_client(&self, provider: Provider, client: ClientRegistration) {
        self.lock().provider(provider).clients.insert(client.client_id.clone(), client);
    }

    /// Sets who consents next at a provider.
    pub fn set_user(&self, provider: Provider, user: FakeUser) {
        self.lock().provider(provider).user = user;
    }

    pub fn user(&self, provider: Provider) -> FakeUser {
        self.lock().provider(provider).user.clone()
    }

    pub fn set_consent(&self, provider: Provider, mode: ConsentMode) {
        self.lock().provider(provider).consent = mode;
    }

    pub fn set_variant(&self, variant: Variant) {
        self.lock().variants.apply(variant);
    }

    pub fn variants(&self) -> Variants {
        self.lock().variants.clone()
    }

    /// Makes Dialpad return exactly this `expires_in`; `None` restores the configured mode.
    pub fn dialpad_expires_in_raw(&self, value: Option<i64>) {
        self.set_variant(Variant::DialpadExpiresInRaw(value));
    }

    // ----- faults -----

    /// Makes the next `times` requests of `endpoint` at `provider` fail with `fault`.
    pub fn inject(&self, provider: Provider, endpoint: Endpoint, fault: Fault, times: u32) {
        self.lock().faults.inject(provider, endpoint, fault, times);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    // ----- inspection -----

    /// Requests that reached `endpoint` at `provider`, faulted ones included.
    pub fn calls(&self, provider: Provider, endpoint: Endpoint) -> u64 {
        self.lock().calls.get(&(provider, endpoint)).copied().unwrap_or(0)
    }

    /// Requests that reached one host (e.g. `ZoomApiAlt`, to check `api_url` was followed).
    pub fn calls_on_host(&self, host: Host) -> u64 {
        self.lock().host_calls.get(&host).copied().unwrap_or(0)
    }

    pub fn all_calls(&self) -> Vec<CallCount> {
        let mut rows: Vec<CallCount> = self
            .lock()
            .calls
            .iter()
            .map(|(&(provider, endpoint), &count)| CallCount { provider, endpoint, count })
            .collect();
        rows.sort_by_key(|r| (r.provider, r.endpoint));
        rows
    }

    pub fn token_requests(&self, provider: Provider) -> Vec<TokenRequestLog> {
        self.lock().provider(provider).token_log.clone()
    }

    pub fn is_access_token_active(&self, provider: Provider, token: &str) -> bool {
        let mut state = self.lock();
        let now = state.clock.now();
        state.provider(provider).tokens.check_access(token, now).is_ok()
    }

    pub fn is_refresh_token_active(&self, provider: Provider, token: &str) -> bool {
        let mut state = self.lock();
        let now = state.clock.now();
        let grace = state.variants.lifetimes(provider).refresh_grace_seconds;
        let inactivity = state.variants.refresh_inactivity(provider);
        state.provider(provider).tokens.check_refresh(token, now, grace, inactivity).is_ok()
    }

    /// Every request the evil host received (SSRF and redirect-following tests).
    pub fn evil_requests(&self) -> Vec<RecordedRequest> {
        self.requests(Host::Evil)
    }

    /// Every request a host received (the most recent 10 000).
    pub fn requests(&self, host: Host) -> Vec<RecordedRequest> {
        self.lock().recorded.get(&host).cloned().unwrap_or_default()
    }

    /// Forgets call counts, token-request logs and recorded requests (not clients or tokens).
    pub fn reset_counters(&self) {
        let mut state = self.lock();
        state.calls.clear();
        state.host_calls.clear();
        state.recorded.clear();
        for provider in Provider::ALL {
            state.provider(provider).token_log.clear();
        }
    }

    // ----- provider-side actions -----

    /// Simulates an uninstall: every grant of this user at this provider dies, so later API calls
    /// with its tokens get 401. Aircall integrations of the user's company become inactive.
    /// Returns how many grants were revoked.
    pub fn revoke_all_for_user(&self, provider: Provider, user_id: &str) -> usize {
        let mut state = self.lock();
        let tokens = &mut state.provider(provider).tokens;
        let installs: Vec<(String, String)> = tokens
            .grants()
            .filter(|g| g.user.id == user_id)
            .map(|g| (g.client_id.clone(), g.user.account_id.clone()))
            .collect();
        let revoked = tokens.revoke_grants_where(|g| g.user.id == user_id);
        if provider == Provider::Aircall {
            for key in installs {
                if let Some(integration) = state.aircall.integrations.get_mut(&key) {
                    integration.active = false;
                }
            }
        }
        revoked
    }

    /// Zoom's `app_deauthorized` event body, timestamped on the fake clock.
    pub fn zoom_deauthorization_event(&self, user_id: &str, account_id: &str, client_id: &str) -> Value {
        webhooks::zoom_deauthorization_event(user_id, account_id, client_id, self.now())
    }

    /// See [`crate::zoom_sign`].
    pub fn zoom_sign(&self, secret: &str, timestamp: &str, body: &[u8]) -> String {
        webhooks::zoom_sign(secret, timestamp, body)
    }

    /// An Aircall event payload carrying a webhook token, e.g. `event = "call.created"`.
    pub fn aircall_webhook_event(&self, webhook_token: &str, event: &str) -> Value {
        webhooks::aircall_webhook_event(webhook_token, event, self.now())
    }

    /// Webhooks that exist at the fake Aircall.
    pub fn aircall_webhooks(&self) -> Vec<AircallWebhook> {
        self.lock().aircall.webhooks.clone()
    }
}
