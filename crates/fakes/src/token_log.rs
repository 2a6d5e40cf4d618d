//! Recording token-endpoint requests, and the client check every token endpoint shares.

use axum::http::HeaderMap;
use axum::response::Response;

use crate::client_auth::{self, AuthMethod, Credentials};
use crate::control::Control;
use crate::inspect::TokenRequestLog;
use crate::model::ClientRegistration;
use crate::params::{self, Params};
use crate::provider::Provider;

/// What is known about a token request before the outcome.
pub struct Draft {
    log: TokenRequestLog,
}

impl Draft {
    pub fn new(headers: &HeaderMap, params: &Params, creds: Option<&Credentials>) -> Draft {
        let get = |name: &str| params.get(name).map(str::to_owned);
        Draft {
            log: TokenRequestLog {
                at: 0,
                grant_type: params.get("grant_type").unwrap_or_default().to_owned(),
                client_id: creds.map(|c| c.client_id.clone()).or_else(|| get("client_id")),
                code: get("code"),
                refresh_token: get("refresh_token"),
                code_verifier: get("code_verifier"),
                redirect_uri: get("redirect_uri"),
                client_auth: creds.map_or(AuthMethod::None, |c| c.method).as_str().to_owned(),
                content_type: params::content_type(headers),
                outcome_status: 0,
            },
        }
    }

    /// Logs the request with the response's status and passes the response through.
    pub fn finish(mut self, control: &Control, provider: Provider, response: Response) -> Response {
        let mut state = control.lock();
        self.log.at = state.clock.now();
        self.log.outcome_status = response.status().as_u16();
        state.provider(provider).token_log.push(self.log);
        response
    }
}

/// The registered client if the credentials identify it (secret compared; a public client with
/// an empty registered secret authenticates with its id alone).
pub fn authenticate(control: &Control, provider: Provider, creds: &Credentials) -> Option<ClientRegistration> {
    let client = control.lock().provider(provider).clients.get(&creds.client_id).cloned()?;
    let ok = match creds.method {
        AuthMethod::None => client.client_secret.is_empty(),
        _ => client_auth::secret_matches(&client, creds.secret.as_deref()),
    };
    ok.then_some(client)
}
