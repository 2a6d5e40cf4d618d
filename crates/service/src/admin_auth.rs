//! Operator authentication: the admin token given at start, or tokens minted by
//! `tokenvault admin-token` (`tva_<32 hex id>_<secret>`, stored as hashes).

use secrecy::{ExposeSecret, SecretString};
use tokenvault_store::AdminTokenRecord;

use crate::apps::validate_name;
use crate::secrets::{constant_time_eq, hash_secret, random_secret};
use crate::{AdminIdentity, IdKind, ServiceError, Vault};

const TOKEN_PREFIX: &str = "tva_";
const HASH_PURPOSE: &str = "tokenvault/admin-token";

fn invalid_token() -> ServiceError {
    ServiceError::Unauthenticated {
        code: "invalid_admin_token",
        message: "the admin token is not valid or has been revoked",
    }
}

impl Vault {
    /// Mints an operator token; the secret is returned once.
    pub async fn mint_admin_token(&self, name: &str) -> Result<(String, SecretString), ServiceError> {
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
        Ok((id, secret))
    }

    pub async fn revoke_admin_token(&self, id: &str) -> Result<(), ServiceError> {
        let id = IdKind::AdminToken.parse(id)?;
        self.store
            .revoke_admin_token(&id, self.now().as_millis())
            .await
            .map_err(ServiceError::from_store("admin token"))
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
