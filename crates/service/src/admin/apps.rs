//! Apps: the tenants of a vault. Each owns its API keys, provider configurations, grants,
//! policies and webhooks, and its return origins bound where browsers may be sent back to.

use serde::Serialize;
use tokenvault_store::AppRecord;

use crate::{IdKind, ServiceError, Timestamp, Vault};

/// The tenant: owns API keys, provider configurations and grants.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    /// Origins allowed as connect-session `return_url`s (no open redirects).
    pub return_origins: Vec<String>,
    /// Where installs started at the provider (Aircall) are sent to be claimed; none = refused.
    pub install_return_url: Option<String>,
}

impl From<AppRecord> for App {
    fn from(r: AppRecord) -> Self {
        App {
            id: r.id,
            name: r.name,
            created_at: Timestamp::from_millis(r.created_at),
            return_origins: r.return_origins,
            install_return_url: r.install_return_url,
        }
    }
}

/// Changes to an app; absent fields stay as they are.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppUpdate {
    pub name: Option<String>,
    pub return_origins: Option<Vec<String>>,
    /// `null` turns provider-initiated installs off.
    #[serde(default, with = "double_option")]
    pub install_return_url: Option<Option<String>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

const MAX_NAME_LEN: usize = 200;

/// Names are for humans: required, bounded, printable; surrounding whitespace is trimmed. The
/// length and the control-character rule apply to the name as sent (so that the OpenAPI
/// document can state them as `maxLength` and a pattern): a tab or newline is refused wherever
/// it is, not only inside the name.
pub(crate) fn validate_name(field: &'static str, name: &str) -> Result<String, ServiceError> {
    if name.chars().any(char::is_control) {
        return Err(ServiceError::invalid("invalid_name", format!("`{field}` must not contain control characters")));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(ServiceError::invalid(
            "invalid_name",
            format!("`{field}` must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("invalid_name", format!("`{field}` must not be empty")));
    }
    Ok(name.to_owned())
}

impl Vault {
    pub async fn create_app(&self, name: &str) -> Result<App, ServiceError> {
        let record = AppRecord {
            id: IdKind::App.generate(),
            name: validate_name("name", name)?,
            created_at: self.now().as_millis(),
            return_origins: Vec::new(),
            install_return_url: None,
        };
        self.store.insert_app(&record).await?;
        tracing::info!(app_id = %record.id, "app created");
        Ok(record.into())
    }

    pub async fn get_app(&self, id: &str) -> Result<App, ServiceError> {
        let id = IdKind::App.parse(id)?;
        Ok(self.store.get_app(&id).await.map_err(ServiceError::from_store("app"))?.into())
    }

    /// A page of apps after the cursor `after` (an app id), at most `limit` (1..=200, else
    /// `invalid_limit`).
    pub async fn list_apps(&self, after: Option<&str>, limit: u32) -> Result<Vec<App>, ServiceError> {
        let after = after.map(|a| IdKind::App.parse(a)).transpose()?;
        let limit = i64::from(crate::PageSize::LIST.resolve(Some(limit))?);
        Ok(self.store.list_apps(after.as_deref(), limit).await?.into_iter().map(App::from).collect())
    }

    /// Updates an app's name and connect settings (return origins, install return URL).
    pub async fn update_app(
        &self,
        id: &str,
        update: AppUpdate,
        context: &crate::CallContext,
    ) -> Result<App, ServiceError> {
        let id = IdKind::App.parse(id)?;
        let mut record = self.store.get_app(&id).await.map_err(ServiceError::from_store("app"))?;
        if let Some(name) = update.name {
            record.name = validate_name("name", &name)?;
        }
        if let Some(origins) = update.return_origins {
            if origins.len() > 50 {
                return Err(ServiceError::invalid("invalid_return_origins", "at most 50 return origins"));
            }
            record.return_origins =
                origins.iter().map(|o| crate::values::urls::parse_origin(o)).collect::<Result<_, _>>()?;
        }
        if let Some(install_return_url) = update.install_return_url {
            record.install_return_url = install_return_url
                .map(|u| crate::values::urls::parse_browser_url("install_return_url", &u).map(|u| u.to_string()))
                .transpose()?;
        }
        self.store.update_app(&record).await.map_err(ServiceError::from_store("app"))?;
        self.audit(crate::audit::AuditEntry::config(&record.id, "app.updated", &record.id, context));
        Ok(record.into())
    }

    /// Deletes an app with everything it owns; its API keys stop working at once.
    pub async fn delete_app(&self, id: &str) -> Result<(), ServiceError> {
        let id = IdKind::App.parse(id)?;
        self.store.delete_app(&id).await.map_err(ServiceError::from_store("app"))?;
        tracing::info!(app_id = %id, "app deleted");
        Ok(())
    }
}
