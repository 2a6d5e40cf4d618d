//! App API keys: `tvk_<32 hex id>_<43 chars of base64url secret>`, shown once, stored as a hash.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokenvault_store::ApiKeyRecord;

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
}

impl From<ApiKeyRecord> for ApiKeyInfo {
    fn from(r: ApiKeyRecord) -> Self {
        ApiKeyInfo {
            id: r.id,
            app_id: r.app_id,
            name: r.name,
            created_at: Timestamp::from_millis(r.created_at),
            last_used_at: r.last_used_at.map(Timestamp::from_millis),
            revoked_at: r.revoked_at.map(Timestamp::from_millis),
        }
    }
}

/// A freshly minted key: the only moment its secret exists outside the caller.
#[derive(Debug)]
pub struct MintedApiKey {
    pub info: ApiKeyInfo,
    pub secret: SecretString,
}

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
    ServiceError::Unauthenticated { code: "invalid_api_key", message: "the API key is not valid or has been revoked" }
}

impl Vault {
    pub async fn mint_api_key(
        &self,
        app_id: &str,
        name: &str,
        context: &crate::CallContext,
    ) -> Result<MintedApiKey, ServiceError> {
        let app = self.get_app(app_id).await?;
        let id = IdKind::ApiKey.generate();
        let hex = &id[IdKind::ApiKey.prefix().len() + 1..];
        let secret = SecretString::from(format!("{KEY_PREFIX}{hex}_{}", random_secret()));
        let record = ApiKeyRecord {
            id,
            app_id: app.id,
            name: validate_name("name", name)?,
            secret_hash: hash_secret(HASH_PURPOSE, secret.expose_secret()),
            created_at: self.now().as_millis(),
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_api_key(&record).await.map_err(ServiceError::from_store("app"))?;
        tracing::info!(app_id = %record.app_id, api_key_id = %record.id, "api key minted");
        self.audit(crate::audit::AuditEntry::config(&record.app_id, "api_key.created", &record.id, context));
        Ok(MintedApiKey { info: record.into(), secret })
    }

    pub async fn list_api_keys(&self, app_id: &str) -> Result<Vec<ApiKeyInfo>, ServiceError> {
        let app = self.get_app(app_id).await?;
        Ok(self.store.list_api_keys(&app.id).await?.into_iter().map(ApiKeyInfo::from).collect())
    }

    /// Revokes a key of `app_id`; a key of another app is "not found".
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

    /// Resolves a presented API key to its app id. Unknown, malformed and revoked keys are
    /// indistinguishable to the caller.
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<String, ServiceError> {
        let id = parse_presented(presented).ok_or_else(invalid_key)?;
        let record = match self.cached_api_key(&id).await {
            Ok(record) => record,
            Err(tokenvault_store::StoreError::NotFound) => return Err(invalid_key()),
            Err(other) => return Err(other.into()),
        };
        let matches = constant_time_eq(&hash_secret(HASH_PURPOSE, presented), &record.secret_hash);
        if !matches || record.revoked_at.is_some() {
            return Err(invalid_key());
        }
        let now = self.now().as_millis();
        if self.key_touches.due(&record.id, now) {
            // At most once a minute per key and process: never a write on every call.
            if let Err(error) = self.store.touch_api_key(&record.id, now).await {
                tracing::warn!(error = %error, "the API key's last use could not be recorded");
            }
        }
        Ok(record.app_id.clone())
    }
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
