//! Operator authentication: the admin token given at start, or tokens minted by
//! `tokenvault admin-token` or the admin API (`tva_<32 hex id>_<secret>`, stored as hashes).
//! Minted tokens can be listed (never their secrets) and revoked; the token given at start is
//! configuration, not data, so it is neither listed nor revocable.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokenvault_store::AdminTokenRecord;

use crate::admin::apps::validate_name;
use crate::values::secrets::{constant_time_eq, hash_secret, random_secret};
use crate::{AdminIdentity, IdKind, ServiceError, Timestamp, Vault};

const TOKEN_PREFIX: &str = "tva_";
const HASH_PURPOSE: &str = "tokenvault/admin-token";

/// A minted admin token as listed: never its secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdminTokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl From<AdminTokenRecord> for AdminTokenInfo {
    fn from(r: AdminTokenRecord) -> Self {
        AdminTokenInfo {
            id: r.id,
            name: r.name,
            created_at: Timestamp::from_millis(r.created_at),
            revoked_at: r.revoked_at.map(Timestamp::from_millis),
        }
    }
}

/// A freshly minted admin token: the only moment its secret exists outside the caller.
#[derive(Debug)]
pub struct MintedAdminToken {
    pub info: AdminTokenInfo,
    pub secret: SecretString,
}

fn invalid_token() -> ServiceError {
    ServiceError::Unauthenticated {
        code: "invalid_admin_token",
        message: "the admin token is not valid or has been revoked",
    }
}

impl Vault {
    /// Mints an operator token; the secret is returned once.
    pub async fn mint_admin_token(&self, name: &str) -> Result<MintedAdminToken, ServiceError> {
        let id = IdKind::AdminToken.generate();
        let hex = &id[IdKind::AdminToken.prefix().len() + 1..];
        let secret = SecretString::from(format!("{TOKEN_PREFIX}{hex}_{}", random_secret()));
        let record = AdminTokenRecord {
            id: id.clone(),
            name: validate_name("name", name)?,
            secret_hash: hash_secret(HASH_PURPOSE, secret.expose_secret()),
            created_at: self.now().as_millis(),
            revoked_at: None,
        };
        self.store.insert_admin_token(&record).await?;
        tracing::info!(admin_token_id = %id, "admin token minted");
        Ok(MintedAdminToken { info: record.into(), secret })
    }

    /// Every minted admin token, revoked ones included, oldest first.
    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenInfo>, ServiceError> {
        Ok(self.store.list_admin_tokens().await?.into_iter().map(AdminTokenInfo::from).collect())
    }

    /// Revokes a minted token; it is refused from the next call on (authentication reads the
    /// store every time). Revoking a revoked token again keeps its first revocation time.
    pub async fn revoke_admin_token(&self, id: &str) -> Result<(), ServiceError> {
        let id = IdKind::AdminToken.parse(id)?;
        self.store
            .revoke_admin_token(&id, self.now().as_millis())
            .await
            .map_err(ServiceError::from_store("admin token"))?;
        tracing::info!(admin_token_id = %id, "admin token revoked");
        Ok(())
    }

    pub async fn authenticate_admin(&self, presented: &str) -> Result<AdminIdentity, ServiceError> {
        let presented_hash = hash_secret(HASH_PURPOSE, presented);
        if let Some(configured) = &self.config.admin_token
            && constant_time_eq(&presented_hash, &hash_secret(HASH_PURPOSE, configured.expose_secret()))
        {
            return Ok(AdminIdentity::ConfiguredToken);
        }
        let id = presented
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.get(..32))
            .map(|hex| format!("{}_{hex}", IdKind::AdminToken.prefix()))
            .ok_or_else(invalid_token)?;
        let record = match self.store.find_admin_token(&id).await {
            Ok(record) => record,
            Err(tokenvault_store::StoreError::NotFound) => return Err(invalid_token()),
            Err(other) => return Err(other.into()),
        };
        if !constant_time_eq(&presented_hash, &record.secret_hash) || record.revoked_at.is_some() {
            return Err(invalid_token());
        }
        Ok(AdminIdentity::MintedToken { id: record.id })
    }
}
