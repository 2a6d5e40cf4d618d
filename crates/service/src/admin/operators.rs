//! Operators: the people who run the vault from the portal. Passwords are hashed with argon2id
//! (in a blocking task: hashing is deliberately slow); a sign-in makes a session whose secret
//! goes in a cookie and whose hash is stored; failed sign-ins are limited per email and per
//! address. Roles: `owner` and `admin` change things, `viewer` only reads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokenvault_store::{OperatorRecord, OperatorSessionRecord};

use crate::values::secrets::{hash_secret, random_secret};
use crate::{IdKind, ServiceError, Timestamp, Vault};

pub const OPERATOR_ROLES: &[&str] = &["owner", "admin", "viewer"];
/// How long a portal session lasts.
const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// Failed sign-ins allowed per email and per address within [`FAILURE_WINDOW_MS`].
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
const MIN_PASSWORD: usize = 12;
const MAX_PASSWORD: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorInput {
    pub email: String,
    pub password: SecretString,
    /// `owner`, `admin` or `viewer` (default `admin`).
    #[serde(default)]
    pub role: Option<String>,
}

impl std::fmt::Debug for OperatorInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorInput").field("email", &self.email).field("role", &self.role).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    pub id: String,
    pub email: String,
    pub role: String,
    pub created_at: Timestamp,
}

impl From<OperatorRecord> for OperatorView {
    fn from(r: OperatorRecord) -> Self {
        OperatorView { id: r.id, email: r.email, role: r.role, created_at: Timestamp::from_millis(r.created_at) }
    }
}

/// A signed-in operator, as the portal sees each request. No `Debug`: it holds the form token.
#[derive(Clone)]
pub struct OperatorSession {
    pub session_id: String,
    pub operator: OperatorView,
    /// The form token every state-changing form of this session must carry.
    pub csrf_token: String,
}

/// A new session: its secret (for the cookie, shown once) and who it is for.
pub struct NewOperatorSession {
    pub secret: SecretString,
    pub session: OperatorSession,
}

/// Failed sign-ins per key (`email:…`, `ip:…`): count and window start.
#[derive(Default)]
pub(crate) struct SignInFailures {
    seen: Mutex<HashMap<String, (u32, i64)>>,
}

impl SignInFailures {
    fn blocked(&self, keys: &[String], now: i64) -> bool {
        let seen = self.seen.lock().expect("poisoned");
        keys.iter().any(|k| seen.get(k).is_some_and(|(n, since)| *n >= MAX_FAILURES && now - since < FAILURE_WINDOW_MS))
    }

    fn failed(&self, keys: &[String], now: i64) {
        let mut seen = self.seen.lock().expect("poisoned");
        for key in keys {
            let entry = seen.entry(key.clone()).or_insert((0, now));
            if now - entry.1 >= FAILURE_WINDOW_MS {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    fn succeeded(&self, keys: &[String]) {
        let mut seen = self.seen.lock().expect("poisoned");
        for key in keys {
            seen.remove(key);
        }
    }
}

fn session_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(hash_secret("operator session", secret))
}

/// The form token of a session: derived from its secret, so it needs no storage and no one
/// without the (HttpOnly) cookie can compute it.
fn csrf_of(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(hash_secret("operator csrf", secret))
}

/// Printable ASCII, one `@`, something before it and a dot after it; compared lower-cased.
fn normalized_email(email: &str) -> Result<String, ServiceError> {
    let email = email.to_ascii_lowercase();
    let valid = email.len() <= 254
        && email.bytes().all(|b| b.is_ascii_graphic())
        && email.matches('@').count() == 1
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if valid { Ok(email) } else { Err(ServiceError::invalid("invalid_email", "`email` is an email address")) }
}

fn bad_sign_in() -> ServiceError {
    ServiceError::Unauthenticated { code: "invalid_credentials", message: "the email or password is wrong" }
}

/// A hash to verify against when the email is unknown, so both cases take as long.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default().hash_password(random_secret().as_bytes()).map(|h| h.to_string()).unwrap_or_default()
    })
}

impl Vault {
    /// Creates an operator (the CLI's `operators create` and the admin API call this).
    pub async fn create_operator(&self, input: OperatorInput) -> Result<OperatorView, ServiceError> {
        let email = normalized_email(&input.email)?;
        let role = input.role.unwrap_or_else(|| "admin".into());
        if !OPERATOR_ROLES.contains(&role.as_str()) {
            return Err(ServiceError::invalid(
                "invalid_role",
                format!("`role` is one of {}", OPERATOR_ROLES.join(", ")),
            ));
        }
        let password = input.password;
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.expose_secret().chars().count()) {
            return Err(ServiceError::invalid(
                "weak_password",
                format!("the password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
            ));
        }
        let password_hash = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(ServiceError::Internal)?;
        let now = self.now().as_millis();
        let record = OperatorRecord {
            id: IdKind::Operator.generate(),
            email,
            password_hash,
            role,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_operator(&record).await?;
        tracing::info!(operator_id = %record.id, role = %record.role, "operator created");
        Ok(record.into())
    }

    pub async fn list_operators(&self) -> Result<Vec<OperatorView>, ServiceError> {
        Ok(self.store.list_operators().await?.into_iter().map(OperatorView::from).collect())
    }

    /// Checks an email and password; `429` after too many failures for the email or the address.
    pub async fn sign_in_operator(
        &self,
        email: &str,
        password: SecretString,
        client_ip: Option<IpAddr>,
    ) -> Result<NewOperatorSession, ServiceError> {
        let now = self.now().as_millis();
        let email = email.trim().to_ascii_lowercase();
        let mut keys = vec![format!("email:{email}")];
        if let Some(ip) = client_ip {
            keys.push(format!("ip:{ip}"));
        }
        if self.sign_in_failures.blocked(&keys, now) {
            return Err(ServiceError::RateLimited {
                message: "too many failed sign-ins; wait 15 minutes".into(),
                retry_after_seconds: (FAILURE_WINDOW_MS / 1000) as u64,
            });
        }
        let operator = self.store.find_operator_by_email(&email).await.ok();
        let stored = operator.as_ref().map(|o| o.password_hash.clone());
        let matches = tokio::task::spawn_blocking(move || {
            let stored = stored.as_deref().unwrap_or_else(|| dummy_hash());
            Argon2::default().verify_password(password.expose_secret().as_bytes(), stored).is_ok()
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let Some(operator) = operator.filter(|_| matches) else {
            self.sign_in_failures.failed(&keys, now);
            tracing::info!("operator sign-in refused");
            return Err(bad_sign_in());
        };
        self.sign_in_failures.succeeded(&keys);
        let secret = random_secret();
        let record = OperatorSessionRecord {
            id: IdKind::OperatorSession.generate(),
            operator_id: operator.id.clone(),
            token_hash: session_hash(&secret),
            created_at: now,
            expires_at: now + SESSION_TTL_MS,
            revoked_at: None,
        };
        self.store.insert_operator_session(&record).await?;
        tracing::info!(operator_id = %operator.id, "operator signed in");
        let session =
            OperatorSession { session_id: record.id, operator: operator.into(), csrf_token: csrf_of(&secret) };
        Ok(NewOperatorSession { secret: secret.into(), session })
    }

    /// The session a cookie names, if it is in force.
    pub async fn operator_session(&self, secret: &str) -> Result<OperatorSession, ServiceError> {
        let (session_id, operator) = self
            .store
            .operator_of_session(&session_hash(secret), self.now().as_millis())
            .await
            .map_err(|_| ServiceError::Unauthenticated { code: "not_signed_in", message: "sign in first" })?;
        Ok(OperatorSession { session_id, operator: operator.into(), csrf_token: csrf_of(secret) })
    }

    /// Whether a form carries its session's token (compared in constant time).
    pub fn operator_csrf_ok(session: &OperatorSession, presented: &str) -> bool {
        crate::values::secrets::constant_time_eq(session.csrf_token.as_bytes(), presented.as_bytes())
    }

    pub async fn sign_out_operator(&self, session: &OperatorSession) -> Result<(), ServiceError> {
        self.store.revoke_operator_session(&session.session_id, self.now().as_millis()).await?;
        Ok(())
    }

    /// Ends every session of the operator, on every device.
    pub async fn sign_out_operator_everywhere(&self, session: &OperatorSession) -> Result<u64, ServiceError> {
        Ok(self.store.revoke_operator_sessions(&session.operator.id, self.now().as_millis()).await?)
    }
}
