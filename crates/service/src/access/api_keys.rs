//! API keys: `tvk_<32 hex id>_<43 chars of base64url secret>`, shown once, stored as a hash.
//!
//! A key belongs to an app, or to one of its agents (an agent key). It carries scopes (see
//! [`crate::access::scopes`]), and optionally an expiry, the addresses it may be used from and
//! a rate limit. A key is rotated with an overlap (the old one keeps working for a grace period,
//! then stops); a key can derive a short-lived child that never holds more than it does and
//! stops with it. No key can mint, derive or rotate a key with more than it holds.

use std::net::IpAddr;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokenvault_store::{ApiKeyRecord, StoreError};

use crate::access::policies::RateLimit;
use crate::access::principal::KeyPrincipal;
use crate::access::scopes::{Scope, ScopeSet};
use crate::admin::apps::validate_name;
use crate::values::secrets::{constant_time_eq, hash_secret, random_secret};
use crate::{IdKind, ServiceError, Timestamp, Vault};

const KEY_PREFIX: &str = "tvk_";
const HASH_PURPOSE: &str = "tokenvault/api-key";

/// An API key as listed: never its secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// What the key may do; `["*"]` is full access (keys minted before scopes have it).
    pub scopes: ScopeSet,
    pub expires_at: Option<Timestamp>,
    /// Addresses the key may be used from; `null`: anywhere.
    pub allowed_cidrs: Option<Vec<String>>,
    pub rate_limit: Option<RateLimit>,
    /// The agent the key belongs to; `null`: the app's own key.
    pub agent_id: Option<String>,
    /// The key this one was derived from (it stops with its parent).
    pub parent_id: Option<String>,
    /// The key that replaced this one by rotation (this one works until `expires_at`).
    pub replaced_by: Option<String>,
}

impl From<ApiKeyRecord> for ApiKeyInfo {
    fn from(r: ApiKeyRecord) -> Self {
        ApiKeyInfo {
            scopes: ScopeSet::from_stored(r.scopes.as_deref()),
            rate_limit: r.rate_limit.as_deref().and_then(|text| serde_json::from_str(text).ok()),
            id: r.id,
            app_id: r.app_id,
            name: r.name,
            created_at: Timestamp::from_millis(r.created_at),
            last_used_at: r.last_used_at.map(Timestamp::from_millis),
            revoked_at: r.revoked_at.map(Timestamp::from_millis),
            expires_at: r.expires_at.map(Timestamp::from_millis),
            allowed_cidrs: r.allowed_cidrs,
            agent_id: r.agent_id,
            parent_id: r.parent_id,
            replaced_by: r.replaced_by,
        }
    }
}

/// A freshly minted key: the only moment its secret exists outside the caller.
#[derive(Debug)]
pub struct MintedApiKey {
    pub info: ApiKeyInfo,
    pub secret: SecretString,
}

/// What a new key may do and for how long (`POST .../api-keys`, `.../derive`, agent keys).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyInput {
    #[serde(default)]
    pub name: Option<String>,
    /// Required for app keys (no key gets more than it asks for); `*` is full access.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// RFC 3339; or `expires_in` seconds. Neither: the key does not expire (derived keys: 1 hour).
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default, deserialize_with = "crate::values::whole_numbers::opt_u64")]
    pub expires_in: Option<u64>,
    /// CIDRs (or single addresses) the key may be used from; absent: anywhere.
    #[serde(default)]
    pub allowed_cidrs: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::values::json_objects::opt_object")]
    pub rate_limit: Option<RateLimit>,
}

/// `POST /v1/api-keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// How long the old key keeps working: default 7 days, at most 30.
    #[serde(default, deserialize_with = "crate::values::whole_numbers::opt_u64")]
    pub grace_seconds: Option<u64>,
}

/// Who asks for a new key: an operator (anything the app may have), or a key (never more than
/// it has itself).
#[derive(Clone, Copy)]
pub(crate) enum Issuer<'a> {
    Operator,
    Key(&'a KeyPrincipal),
}

const ROTATION_GRACE_DEFAULT: u64 = 7 * 86_400;
const ROTATION_GRACE_MAX: u64 = 30 * 86_400;
const DERIVED_LIFETIME_DEFAULT: u64 = 3_600;
const DERIVED_LIFETIME_MAX: u64 = 86_400;
const MAX_LIFETIME: u64 = 10 * 365 * 86_400;
const MAX_CIDRS: usize = 32;

/// The scopes an agent key may hold: using delegated grants, never managing the app.
pub const AGENT_SCOPES: &[&str] =
    &["grants:read", "tokens:retrieve", "proxy:execute", "connect:initiate", "connect:read", "providers:read"];
/// What an agent key gets when the request names no scopes.
const AGENT_DEFAULT_SCOPES: &[&str] = &["grants:read", "proxy:execute"];

/// Splits a presented key into its id and the full string, or `None` if it is not shaped like one.
fn parse_presented(presented: &str) -> Option<String> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (hex, secret) = rest.split_at_checked(32)?;
    let secret = secret.strip_prefix('_')?;
    let shaped = hex.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() == 43
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    shaped.then(|| format!("{}_{hex}", IdKind::ApiKey.prefix()))
}

fn invalid_key() -> ServiceError {
    ServiceError::Unauthenticated {
        code: "invalid_api_key",
        message: "the API key is not valid, has expired or has been revoked",
    }
}

fn escalation(message: String) -> ServiceError {
    ServiceError::Forbidden { code: "scope_escalation", message }
}

/// Parses and normalises CIDRs (a bare address is its own /32 or /128).
fn parse_cidrs(list: &[String]) -> Result<Vec<IpNet>, ServiceError> {
    if list.is_empty() || list.len() > MAX_CIDRS {
        return Err(ServiceError::invalid(
            "invalid_cidr",
            format!("`allowed_cidrs` needs 1 to {MAX_CIDRS} entries (leave it out to allow any address)"),
        ));
    }
    list.iter()
        .map(|text| {
            text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)).map(|net| net.trunc()).map_err(
                |_| {
                    ServiceError::invalid(
                        "invalid_cidr",
                        format!("`{}` is not a CIDR such as 203.0.113.0/24", text.chars().take(64).collect::<String>()),
                    )
                },
            )
        })
        .collect()
}

/// Whether `ip` is inside one of the stored CIDRs (an IPv4-mapped IPv6 address counts as IPv4).
fn ip_allowed(cidrs: &[String], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()).any(|net| net.contains(&ip))
}

fn validate_rate_limit(limit: &RateLimit) -> Result<(), ServiceError> {
    if limit.requests == 0 || limit.per_seconds == 0 || limit.per_seconds > 86_400 {
        return Err(ServiceError::invalid(
            "invalid_rate_limit",
            "`rate_limit` needs `requests` >= 1 and `per_seconds` from 1 to 86400",
        ));
    }
    Ok(())
}

/// A key's settings once read and checked against who issues it.
struct KeySpec {
    name: String,
    scopes: ScopeSet,
    expires_at: Option<i64>,
    allowed_cidrs: Option<Vec<String>>,
    rate_limit: Option<RateLimit>,
    agent_id: Option<String>,
    parent_id: Option<String>,
}

impl Vault {
    /// Reads `input` into a key's settings and refuses anything more than `issuer` holds:
    /// scopes it lacks, a longer life, addresses outside its CIDRs.
    fn key_spec(
        &self,
        input: ApiKeyInput,
        issuer: Issuer<'_>,
        default_scopes: Option<&[&str]>,
        default_lifetime: Option<u64>,
        max_lifetime: u64,
    ) -> Result<KeySpec, ServiceError> {
        let now = self.now().as_millis();
        let name = validate_name("name", input.name.as_deref().unwrap_or("default"))?;
        let requested = match (input.scopes, default_scopes) {
            (Some(scopes), _) => scopes,
            (None, Some(defaults)) => defaults.iter().map(|s| s.to_string()).collect(),
            (None, None) => Vec::new(),
        };
        let scopes = ScopeSet::parse_requested(&requested)?;
        let lifetime = match (input.expires_at.as_deref(), input.expires_in) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid("invalid_expiry", "give `expires_at` or `expires_in`, not both"));
            }
            (Some(at), None) => {
                let at = Timestamp::parse_rfc3339(at)
                    .ok_or_else(|| ServiceError::invalid("invalid_expiry", "`expires_at` must be an RFC 3339 time"))?
                    .as_millis();
                if at <= now {
                    return Err(ServiceError::invalid("invalid_expiry", "`expires_at` must be in the future"));
                }
                Some(((at - now) as u64).div_ceil(1000))
            }
            (None, Some(seconds)) => Some(seconds),
            (None, None) => default_lifetime,
        };
        if let Some(seconds) = lifetime
            && !(1..=max_lifetime).contains(&seconds)
        {
            return Err(ServiceError::invalid(
                "invalid_expiry",
                format!("the key's lifetime must be 1 to {max_lifetime} seconds"),
            ));
        }
        let mut expires_at = lifetime.map(|s| now + s as i64 * 1000);
        if let Some(at) = input.expires_at.as_deref().and_then(Timestamp::parse_rfc3339) {
            expires_at = Some(at.as_millis());
        }
        let cidrs = input.allowed_cidrs.as_deref().map(parse_cidrs).transpose()?;
        if let Some(limit) = &input.rate_limit {
            validate_rate_limit(limit)?;
        }
        let cidrs: Option<Vec<String>> = cidrs.map(|list| list.iter().map(ToString::to_string).collect());
        if let Issuer::Key(issuer) = issuer {
            within(issuer, &scopes, expires_at, cidrs.as_deref())?;
        }
        Ok(KeySpec {
            name,
            scopes,
            expires_at,
            allowed_cidrs: cidrs,
            rate_limit: input.rate_limit,
            agent_id: None,
            parent_id: None,
        })
    }

    async fn mint_from_spec(
        &self,
        app_id: &str,
        spec: KeySpec,
        context: &crate::CallContext,
    ) -> Result<MintedApiKey, ServiceError> {
        let (record, secret) = self.new_key_record(app_id, spec);
        self.store.insert_api_key(&record).await.map_err(ServiceError::from_store("app"))?;
        tracing::info!(app_id = %record.app_id, api_key_id = %record.id, "api key minted");
        self.audit(crate::audit::AuditEntry::config(&record.app_id, "api_key.created", &record.id, context));
        Ok(MintedApiKey { info: record.into(), secret })
    }

    fn new_key_record(&self, app_id: &str, spec: KeySpec) -> (ApiKeyRecord, SecretString) {
        let id = IdKind::ApiKey.generate();
        let hex = &id[IdKind::ApiKey.prefix().len() + 1..];
        let secret = SecretString::from(format!("{KEY_PREFIX}{hex}_{}", random_secret()));
        let record = ApiKeyRecord {
            id,
            app_id: app_id.to_owned(),
            name: spec.name,
            secret_hash: hash_secret(HASH_PURPOSE, secret.expose_secret()),
            created_at: self.now().as_millis(),
            last_used_at: None,
            revoked_at: None,
            scopes: Some(spec.scopes.to_stored()),
            expires_at: spec.expires_at,
            allowed_cidrs: spec.allowed_cidrs,
            rate_limit: spec.rate_limit.map(|l| serde_json::to_string(&l).expect("a rate limit serializes")),
            parent_id: spec.parent_id,
            agent_id: spec.agent_id,
            replaced_by: None,
        };
        (record, secret)
    }

    /// Mints an app key. `issuer` is who asks: an operator, or a key of the app (which can give
    /// out no more than it holds). Scopes must be named.
    pub async fn mint_api_key(
        &self,
        app_id: &str,
        input: ApiKeyInput,
        issuer: Option<&KeyPrincipal>,
        context: &crate::CallContext,
    ) -> Result<MintedApiKey, ServiceError> {
        let app = self.get_app(app_id).await?;
        let issuer = issuer.map_or(Issuer::Operator, Issuer::Key);
        let spec = self.key_spec(input, issuer, None, None, MAX_LIFETIME)?;
        self.mint_from_spec(&app.id, spec, context).await
    }

    /// Mints a key for an agent of the app: only scopes that use delegated grants
    /// ([`AGENT_SCOPES`]); without `scopes`, `grants:read` and `proxy:execute`.
    pub async fn mint_agent_key(
        &self,
        app_id: &str,
        agent_id: &str,
        input: ApiKeyInput,
        issuer: Option<&KeyPrincipal>,
        context: &crate::CallContext,
    ) -> Result<MintedApiKey, ServiceError> {
        let agent = self.app_agent(app_id, agent_id).await?;
        if agent.status != "active" {
            return Err(ServiceError::conflict("agent_not_active", format!("the agent is {}", agent.status)));
        }
        let issuer = issuer.map_or(Issuer::Operator, Issuer::Key);
        let mut spec = self.key_spec(input, issuer, Some(AGENT_DEFAULT_SCOPES), None, MAX_LIFETIME)?;
        check_agent_scopes(&spec.scopes)?;
        spec.agent_id = Some(agent.id.clone());
        self.mint_from_spec(app_id, spec, context).await
    }

    /// Derives a short-lived child of the calling key: scopes, addresses and lifetime within
    /// its own (default: the same scopes and addresses, 1 hour; at most 24 hours), revoked with
    /// it. A derived key cannot derive again.
    pub async fn derive_api_key(
        &self,
        parent: &KeyPrincipal,
        mut input: ApiKeyInput,
        context: &crate::CallContext,
    ) -> Result<MintedApiKey, ServiceError> {
        if parent.parent_id.is_some() {
            return Err(escalation("a derived key cannot derive further keys; derive from its parent".into()));
        }
        if input.scopes.is_none() {
            input.scopes = Some(parent.scopes.to_stored());
        }
        if input.allowed_cidrs.is_none() {
            input.allowed_cidrs = parent.allowed_cidrs.clone();
        }
        if input.rate_limit.is_some() {
            return Err(ServiceError::invalid(
                "invalid_rate_limit",
                "a derived key shares its parent's rate limit; it cannot set its own",
            ));
        }
        let mut spec =
            self.key_spec(input, Issuer::Key(parent), None, Some(DERIVED_LIFETIME_DEFAULT), DERIVED_LIFETIME_MAX)?;
        spec.parent_id = Some(parent.key_id.clone());
        spec.agent_id = parent.agent_id.clone();
        self.mint_from_spec(&parent.app_id, spec, context).await
    }

    /// Rotates a key of `app_id`: a new key with the same settings, while the old one keeps
    /// working for `grace_seconds` (default 7 days, at most 30) and then stops.
    pub async fn rotate_api_key(
        &self,
        app_id: &str,
        key_id: &str,
        input: RotateInput,
        issuer: Option<&KeyPrincipal>,
        context: &crate::CallContext,
    ) -> Result<MintedApiKey, ServiceError> {
        let key_id = IdKind::ApiKey.parse(key_id)?;
        let old = self.store.find_api_key(&key_id).await.map_err(ServiceError::from_store("api key"))?;
        if old.app_id != app_id {
            return Err(ServiceError::not_found("api key"));
        }
        let grace = input.grace_seconds.unwrap_or(ROTATION_GRACE_DEFAULT);
        if grace > ROTATION_GRACE_MAX {
            return Err(ServiceError::invalid(
                "invalid_grace",
                format!("`grace_seconds` is at most {ROTATION_GRACE_MAX} (30 days)"),
            ));
        }
        if old.parent_id.is_some() {
            return Err(ServiceError::conflict(
                "rotation_not_allowed",
                "a derived key is not rotated: derive a new one from its parent",
            ));
        }
        if let Some(issuer) = issuer {
            // The new key has the old one's settings: the caller must hold all of them.
            let scopes = ScopeSet::from_stored(old.scopes.as_deref());
            within(issuer, &scopes, old.expires_at, old.allowed_cidrs.as_deref())?;
        }
        let now = self.now().as_millis();
        let old_expires_at = old.expires_at.map_or(now + grace as i64 * 1000, |at| at.min(now + grace as i64 * 1000));
        let spec = KeySpec {
            name: old.name.clone(),
            scopes: ScopeSet::from_stored(old.scopes.as_deref()),
            expires_at: old.expires_at,
            allowed_cidrs: old.allowed_cidrs.clone(),
            rate_limit: old.rate_limit.as_deref().and_then(|t| serde_json::from_str(t).ok()),
            agent_id: old.agent_id.clone(),
            parent_id: None,
        };
        let (record, secret) = self.new_key_record(app_id, spec);
        self.store.rotate_api_key(&old.id, old_expires_at, now, &record).await.map_err(|e| match e {
            StoreError::Conflict(why) => ServiceError::conflict("rotation_not_allowed", why),
            other => other.into(),
        })?;
        tracing::info!(app_id, api_key_id = %old.id, new_api_key_id = %record.id, "api key rotated");
        self.audit(crate::audit::AuditEntry::config(app_id, "api_key.rotated", &old.id, context));
        Ok(MintedApiKey { info: record.into(), secret })
    }

    pub async fn list_api_keys(&self, app_id: &str) -> Result<Vec<ApiKeyInfo>, ServiceError> {
        let app = self.get_app(app_id).await?;
        Ok(self.store.list_api_keys(&app.id).await?.into_iter().map(ApiKeyInfo::from).collect())
    }

    /// Revokes a key of `app_id` (and every key derived from it); a key of another app is
    /// "not found".
    pub async fn revoke_api_key(
        &self,
        app_id: &str,
        key_id: &str,
        context: &crate::CallContext,
    ) -> Result<(), ServiceError> {
        let key_id = IdKind::ApiKey.parse(key_id)?;
        self.store
            .revoke_api_key(app_id, &key_id, self.now().as_millis())
            .await
            .map_err(ServiceError::from_store("api key"))?;
        tracing::info!(app_id, api_key_id = %key_id, "api key revoked");
        self.audit(crate::audit::AuditEntry::config(app_id, "api_key.revoked", &key_id, context));
        Ok(())
    }

    /// Resolves a presented API key to who it is. Unknown, malformed, revoked and expired keys
    /// (and keys derived from such a key) are indistinguishable to the caller (401); a key used
    /// from outside its CIDRs is 403 `ip_not_allowed`, a suspended agent's key 403
    /// `agent_suspended`, a key over its rate limit 429.
    pub async fn authenticate_api_key(
        &self,
        presented: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<KeyPrincipal, ServiceError> {
        let id = parse_presented(presented).ok_or_else(invalid_key)?;
        let record = self.live_key(&id).await?;
        let matches = constant_time_eq(&hash_secret(HASH_PURPOSE, presented), &record.secret_hash);
        if !matches {
            return Err(invalid_key());
        }
        let now = self.now().as_millis();
        // A derived key lives only while its parent does, and shares its parent's rate limit.
        let parent = match &record.parent_id {
            Some(parent_id) => Some(self.live_key(parent_id).await?),
            None => None,
        };
        if parent.as_ref().is_some_and(|p| p.app_id != record.app_id) {
            return Err(invalid_key());
        }
        let root = parent.as_deref().unwrap_or(&record);
        if let Some(agent_id) = &record.agent_id {
            let agent = match self.cached_agent(agent_id).await {
                Ok(agent) => agent,
                Err(StoreError::NotFound) => return Err(invalid_key()),
                Err(other) => return Err(other.into()),
            };
            match agent.status.as_str() {
                _ if agent.app_id != record.app_id => return Err(invalid_key()),
                "active" => {}
                "suspended" => {
                    return Err(ServiceError::Forbidden {
                        code: "agent_suspended",
                        message: "the agent this key belongs to is suspended".into(),
                    });
                }
                _ => return Err(invalid_key()),
            }
        }
        if let Some(cidrs) = &record.allowed_cidrs
            && !client_ip.is_some_and(|ip| ip_allowed(cidrs, ip))
        {
            return Err(ServiceError::Forbidden {
                code: "ip_not_allowed",
                message: "this API key may not be used from this address".into(),
            });
        }
        if let Some(limit) = root.rate_limit.as_deref().and_then(|t| serde_json::from_str::<RateLimit>(t).ok())
            && let Err(wait) = self.rate_buckets.take(("api_key".into(), root.id.clone()), limit, now)
        {
            return Err(ServiceError::RateLimited {
                message: "this API key's rate limit is exhausted".into(),
                retry_after_seconds: wait,
            });
        }
        if self.key_touches.due(&record.id, now) {
            // At most once a minute per key and process: never a write on every call.
            if let Err(error) = self.store.touch_api_key(&record.id, now).await {
                tracing::warn!(error = %error, "the API key's last use could not be recorded");
            }
        }
        Ok(KeyPrincipal {
            key_id: record.id.clone(),
            app_id: record.app_id.clone(),
            agent_id: record.agent_id.clone(),
            scopes: ScopeSet::from_stored(record.scopes.as_deref()),
            expires_at: record.expires_at,
            allowed_cidrs: record.allowed_cidrs.clone(),
            parent_id: record.parent_id.clone(),
        })
    }

    /// The key `id` if it exists, is not revoked and has not expired; else 401.
    async fn live_key(&self, id: &str) -> Result<std::sync::Arc<ApiKeyRecord>, ServiceError> {
        let record = match self.cached_api_key(id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Err(invalid_key()),
            Err(other) => return Err(other.into()),
        };
        let now = self.now().as_millis();
        if record.revoked_at.is_some() || record.expires_at.is_some_and(|at| at <= now) {
            return Err(invalid_key());
        }
        Ok(record)
    }
}

/// Refuses a key with more than `issuer` holds: scopes it lacks, a longer life, addresses
/// outside its CIDRs (`403 scope_escalation`).
fn within(
    issuer: &KeyPrincipal,
    scopes: &ScopeSet,
    expires_at: Option<i64>,
    cidrs: Option<&[String]>,
) -> Result<(), ServiceError> {
    let uncovered = issuer.scopes.uncovered(scopes);
    if !uncovered.is_empty() {
        let names: Vec<String> = uncovered.iter().map(ToString::to_string).collect();
        return Err(escalation(format!(
            "a key cannot give out scopes it lacks: {} (it has: {})",
            names.join(", "),
            issuer.scopes
        )));
    }
    if let Some(limit) = issuer.expires_at
        && expires_at.is_none_or(|at| at > limit)
    {
        return Err(escalation(format!(
            "the new key may not outlive this one (it expires at {})",
            Timestamp::from_millis(limit)
        )));
    }
    if let Some(outer) = &issuer.allowed_cidrs {
        let outer: Vec<IpNet> = outer.iter().filter_map(|c| c.parse().ok()).collect();
        let inside = cidrs.is_some_and(|inner| {
            inner.iter().all(|net| net.parse::<IpNet>().is_ok_and(|net| outer.iter().any(|o| o.contains(&net))))
        });
        if !inside {
            return Err(escalation(format!(
                "the new key must be limited to addresses within this key's: {}",
                outer.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

/// Refuses scopes an agent key may not hold.
fn check_agent_scopes(scopes: &ScopeSet) -> Result<(), ServiceError> {
    let allowed: Vec<Scope> = AGENT_SCOPES.iter().map(|s| Scope::parse(s).expect("valid agent scope")).collect();
    let refused: Vec<String> =
        scopes.scopes().iter().filter(|s| !allowed.contains(s)).map(ToString::to_string).collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(ServiceError::invalid(
        "scope_not_allowed_for_agent",
        format!("an agent key may hold only {}; not {}", AGENT_SCOPES.join(", "), refused.join(", ")),
    ))
}

/// When this process last recorded each API key's use, so `last_used_at` (minute precision) is
/// written at most once a minute per key instead of on every call.
#[derive(Default)]
pub(crate) struct KeyTouches(std::sync::Mutex<std::collections::HashMap<String, i64>>);

impl KeyTouches {
    const EVERY_MS: i64 = 60_000;

    /// True (and remembered) if the key's use should be written now.
    fn due(&self, key_id: &str, now: i64) -> bool {
        let mut touched = self.0.lock().expect("key touches poisoned");
        if touched.get(key_id).is_some_and(|at| now - at < Self::EVERY_MS && now >= *at) {
            return false;
        }
        if touched.len() > 10_000 {
            touched.retain(|_, at| now - *at < Self::EVERY_MS);
        }
        touched.insert(key_id.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_use_is_written_at_most_once_a_minute() {
        let touches = KeyTouches::default();
        assert!(touches.due("key_a", 1_000));
        assert!(!touches.due("key_a", 30_000));
        assert!(touches.due("key_b", 30_000), "per key");
        assert!(touches.due("key_a", 61_000));
        assert!(touches.due("key_a", 500), "a clock moved back does not stop the writes");
    }

    #[test]
    fn presented_key_shape() {
        let hex = "0192f7c4e6a87b3c9d1e2f3a4b5c6d7e";
        let secret = "a".repeat(43);
        assert_eq!(parse_presented(&format!("tvk_{hex}_{secret}")), Some(format!("key_{hex}")));
        assert_eq!(parse_presented(&format!("tvk_{hex}_{}", "a".repeat(42))), None);
        assert_eq!(parse_presented(&format!("tvx_{hex}_{secret}")), None);
        assert_eq!(parse_presented("tvk_é"), None);
        assert_eq!(parse_presented(""), None);
    }
}
