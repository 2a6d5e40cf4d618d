//! Apps: the tenants of a vault. Each owns its API keys, provider configurations, grants,
//! policies and webhooks, and its return origins bound where browsers may be sent back to.

use serde::Serialize;
use tokenvault_store::{AppRecord, Branding};

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
    /// How the app presents itself on the hosted Connect UI and the wallet.
    pub branding: AppBranding,
}

/// Shown to end users on the hosted pages; every field optional (`null` = the vault's default).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AppBranding {
    /// The name end users see (default: the app's name).
    pub display_name: Option<String>,
    /// An https image URL, shown at most 48 px high.
    pub logo_url: Option<String>,
    /// `#rrggbb`, the colour of buttons and links.
    pub accent_color: Option<String>,
    /// Where end users get help (https URL or `mailto:`).
    pub support_url: Option<String>,
}

impl From<Branding> for AppBranding {
    fn from(b: Branding) -> Self {
        AppBranding {
            display_name: b.display_name,
            logo_url: b.logo_url,
            accent_color: b.accent_color,
            support_url: b.support_url,
        }
    }
}

impl App {
    /// The name end users see.
    pub fn shown_name(&self) -> &str {
        self.branding.display_name.as_deref().unwrap_or(&self.name)
    }
}

impl From<AppRecord> for App {
    fn from(r: AppRecord) -> Self {
        App {
            id: r.id,
            name: r.name,
            created_at: Timestamp::from_millis(r.created_at),
            return_origins: r.return_origins,
            install_return_url: r.install_return_url,
            branding: r.branding.into(),
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
    /// Each field given replaces the stored one; `null` clears it.
    #[serde(default, deserialize_with = "crate::values::json_objects::opt_object")]
    pub branding: Option<BrandingUpdate>,
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandingUpdate {
    #[serde(default, with = "double_option")]
    pub display_name: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub logo_url: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub accent_color: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub support_url: Option<Option<String>>,
}

/// `#rrggbb`, lower-cased (it is written into the hosted pages' stylesheet, so nothing else).
fn parse_color(text: &str) -> Result<String, ServiceError> {
    let ok = text.len() == 7 && text.starts_with('#') && text[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err(ServiceError::invalid("invalid_color", "`accent_color` must be a colour as #rrggbb"));
    }
    Ok(text.to_ascii_lowercase())
}

fn parse_support_url(text: &str) -> Result<String, ServiceError> {
    if let Some(address) = text.strip_prefix("mailto:") {
        let ok = address.len() <= 254
            && address.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
            && !address.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"?&#".contains(c));
        return if ok {
            Ok(text.to_owned())
        } else {
            Err(ServiceError::invalid("invalid_url", "`support_url` is not a valid mailto: address"))
        };
    }
    Ok(crate::values::urls::parse_browser_url("support_url", text)?.to_string())
}

fn apply_branding(branding: &mut Branding, update: BrandingUpdate) -> Result<(), ServiceError> {
    if let Some(name) = update.display_name {
        branding.display_name = name.map(|n| validate_name("display_name", &n)).transpose()?;
    }
    if let Some(logo) = update.logo_url {
        branding.logo_url =
            logo.map(|u| crate::values::urls::parse_browser_url("logo_url", &u).map(|u| u.to_string())).transpose()?;
    }
    if let Some(color) = update.accent_color {
        branding.accent_color = color.map(|c| parse_color(&c)).transpose()?;
    }
    if let Some(support) = update.support_url {
        branding.support_url = support.map(|u| parse_support_url(&u)).transpose()?;
    }
    Ok(())
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
            branding: Branding::default(),
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

    /// Updates an app's name, connect settings (return origins, install return URL) and branding.
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
        if let Some(branding) = update.branding {
            apply_branding(&mut record.branding, branding)?;
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
