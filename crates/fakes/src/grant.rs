//! The token endpoint's core: exchanging codes and refresh tokens for new tokens.
//!
//! Providers differ in parsing, client authentication and error bodies, but they agree on what
//! makes a code or refresh token good, which lives here; each failure is a `Failure` that the
//! provider module renders in its own shape.

use serde_json::json;

use crate::control::Control;
use crate::pkce::{self, PkceError};
use crate::provider::Provider;
use crate::random;
use crate::state::ProviderState;
use crate::tokens::{Grant, TokenProblem};

/// When `redirect_uri` must accompany a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectRule {
    /// Always required and identical to the authorize request's (Zoom, Aircall).
    Required,
    /// Required and identical if the authorize request carried one (RFC 6749 §4.1.3).
    IfSentAtAuthorize,
    /// Not required; if present it must match (Dialpad).
    Optional,
}

/// When a refresh token is issued with a code exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshIssue {
    Never,
    Always,
    /// Only if this scope was granted (Dialpad's `offline_access`).
    WithScope(&'static str),
}

/// Opaque random strings, or JWT-shaped ones like Zoom's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenShape {
    Opaque,
    JwtLike,
}

#[derive(Clone, Debug)]
pub struct CodeRules {
    pub redirect: RedirectRule,
    /// `false`: any `code_verifier` is ignored (a server without PKCE support that ignores
    /// unknown parameters, as Aircall's is assumed to be).
    pub enforce_pkce: bool,
    pub refresh: RefreshIssue,
    /// A new grant by the same user to the same client kills the older ones (Zoom 4741).
    pub revoke_previous_grants: bool,
    pub shape: TokenShape,
}

#[derive(Clone, Debug)]
pub struct RefreshRules {
    /// Issue a new refresh token and retire the presented one.
    pub rotate: bool,
    /// Presenting a retired refresh token revokes the whole grant (RFC 9700 §4.14.2).
    pub reuse_revokes_grant: bool,
    pub shape: TokenShape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    CodeUnknown,
    CodeReused,
    CodeExpired,
    CodeWrongClient,
    RedirectMismatch,
    Pkce(PkceError),
    Refresh(TokenProblem),
    RefreshWrongClient,
}

impl Failure {
    pub fn description(self) -> &'static str {
        match self {
            Failure::CodeUnknown => "the authorization code is invalid",
            Failure::CodeReused => "the authorization code was already used",
            Failure::CodeExpired => "the authorization code has expired",
            Failure::CodeWrongClient => "the authorization code was issued to another client",
            Failure::RedirectMismatch => "redirect_uri does not match the authorization request",
            Failure::Pkce(e) => e.description(),
            Failure::Refresh(TokenProblem::Expired) => "the refresh token has expired",
            Failure::Refresh(TokenProblem::Revoked) => "the refresh token has been revoked",
            Failure::Refresh(TokenProblem::Superseded) => "the refresh token was already used",
            Failure::Refresh(TokenProblem::Unknown) => "the refresh token is invalid",
            Failure::RefreshWrongClient => "the refresh token was issued to another client",
        }
    }
}

/// Tokens just minted for a grant.
#[derive(Clone, Debug)]
pub struct Issued {
    pub grant: Grant,
    pub access_token: String,
    /// Seconds the access token lives; `None` = permanent.
    pub lifetime: Option<u64>,
    pub refresh_token: Option<String>,
    pub now: u64,
}

pub fn exchange_code(
    control: &Control,
    provider: Provider,
    client_id: &str,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    rules: &CodeRules,
) -> Result<Issued, Failure> {
    let mut state = control.lock();
    let now = state.clock.now();
    let lifetime = state.variants.lifetimes(provider).access_token_seconds;
    let ps = state.provider(provider);
    let record = ps.codes.get_mut(code).ok_or(Failure::CodeUnknown)?;
    if record.client_id != client_id {
        return Err(Failure::CodeWrongClient);
    }
    if record.used {
        // RFC 6749 §4.1.2: deny, and revoke what the first use produced.
        if let Some(grant) = record.grant {
            ps.tokens.revoke_grant(grant);
        }
        return Err(Failure::CodeReused);
    }
    // One attempt per code, successful or not.
    record.used = true;
    if now > record.expires_at {
        return Err(Failure::CodeExpired);
    }
    let redirect_ok = match (rules.redirect, record.redirect_uri.as_deref(), redirect_uri) {
        (RedirectRule::Required, Some(bound), Some(sent)) => bound == sent,
        (RedirectRule::Required, _, _) => false,
        (RedirectRule::IfSentAtAuthorize, Some(bound), sent) => Some(bound) == sent,
        (RedirectRule::IfSentAtAuthorize, None, _) => true,
        (RedirectRule::Optional, bound, Some(sent)) => bound == Some(sent),
        (RedirectRule::Optional, _, None) => true,
    };
    if !redirect_ok {
        return Err(Failure::RedirectMismatch);
    }
    if rules.enforce_pkce {
        pkce::verify(record.challenge.as_ref(), verifier).map_err(Failure::Pkce)?;
    }
    let record = record.clone();
    if rules.revoke_previous_grants {
        ps.tokens.revoke_grants_where(|g| g.client_id == client_id && g.user.id == record.user.id);
    }
    let grant = ps.tokens.create_grant(client_id, record.user.clone(), record.scopes.clone(), Some(code.to_owned()));
    if let Some(stored) = ps.codes.get_mut(code) {
        stored.grant = Some(grant.id);
    }
    let with_refresh = match rules.refresh {
        RefreshIssue::Never => false,
        RefreshIssue::Always => true,
        RefreshIssue::WithScope(scope) => record.scopes.iter().any(|s| s == scope),
    };
    Ok(mint(ps, grant, now, lifetime, with_refresh, rules.shape))
}

pub fn refresh(
    control: &Control,
    provider: Provider,
    client_id: &str,
    refresh_token: &str,
    rules: &RefreshRules,
) -> Result<Issued, Failure> {
    let mut state = control.lock();
    let now = state.clock.now();
    let lifetimes = state.variants.lifetimes(provider);
    let inactivity = state.variants.refresh_inactivity(provider);
    let ps = state.provider(provider);
    let checked = ps.tokens.check_refresh(refresh_token, now, lifetimes.refresh_grace_seconds, inactivity).cloned();
    let grant = match checked {
        Ok(found) => found,
        Err((problem, grant)) => {
            if let (TokenProblem::Superseded, Some(grant), true) = (problem, grant, rules.reuse_revokes_grant) {
                ps.tokens.revoke_grant(grant);
            }
            return Err(Failure::Refresh(problem));
        }
    };
    if grant.client_id != client_id {
        return Err(Failure::RefreshWrongClient);
    }
    if rules.rotate {
        ps.tokens.supersede_refresh(refresh_token, now);
    }
    Ok(mint(ps, grant, now, lifetimes.access_token_seconds, rules.rotate, rules.shape))
}

fn mint(
    ps: &mut ProviderState,
    grant: Grant,
    now: u64,
    lifetime: Option<u64>,
    with_refresh: bool,
    shape: TokenShape,
) -> Issued {
    let access_token = new_token(&grant, shape, now, lifetime, "access");
    ps.tokens.add_access(grant.id, access_token.clone(), lifetime.map(|l| now + l));
    let refresh_token = with_refresh.then(|| {
        let token = new_token(&grant, shape, now, None, "refresh");
        ps.tokens.add_refresh(grant.id, token.clone(), now);
        token
    });
    Issued { grant, access_token, lifetime, refresh_token, now }
}

fn new_token(grant: &Grant, shape: TokenShape, now: u64, lifetime: Option<u64>, kind: &str) -> String {
    match shape {
        TokenShape::Opaque => random::token(32),
        TokenShape::JwtLike => random::jwt_like(&json!({
            "ver": 9,
            "auid": random::token(16),
            "uid": grant.user.id,
            "aid": grant.user.account_id,
            "tkt": kind,
            "iat": now,
            "exp": lifetime.map(|l| now + l),
            "jti": random::token(16),
        })),
    }
}
