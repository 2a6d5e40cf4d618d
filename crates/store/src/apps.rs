use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError, json_list};

/// An app: the tenant that owns API keys, provider configurations and grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    /// Origins allowed as connect `return_url`s.
    pub return_origins: Vec<String>,
    /// Where a provider-initiated install (Aircall) sends the browser to be claimed.
    pub install_return_url: Option<String>,
    pub branding: Branding,
}

/// How the app presents itself to end users on the hosted pages (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    pub display_name: Option<String>,
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub accent_color: Option<String>,
    pub support_url: Option<String>,
}

const COLUMNS: &str =
    "id, name, created_at, return_origins, install_return_url, display_name, logo_url, accent_color, support_url";

impl AppRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            return_origins: json_list::decode(&row.try_get::<String, _>("return_origins")?)?,
            install_return_url: row.try_get("install_return_url")?,
            branding: Branding {
                display_name: row.try_get("display_name")?,
                logo_url: row.try_get("logo_url")?,
                accent_color: row.try_get("accent_color")?,
                support_url: row.try_get("support_url")?,
            },
        })
    }
}

impl Store {
    pub async fn insert_app(&self, app: &AppRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO apps (id, name, created_at, return_origins, install_return_url, display_name, logo_url, accent_color, support_url) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(app.created_at)
        .bind(json_list::encode(&app.return_origins))
        .bind(&app.install_return_url)
        .bind(&app.branding.display_name)
        .bind(&app.branding.logo_url)
        .bind(&app.branding.accent_color)
        .bind(&app.branding.support_url)
        .execute(&self.writer)
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "app id already exists"))?;
        Ok(())
    }

    pub async fn get_app(&self, id: &str) -> Result<AppRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM apps WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(AppRecord::from_row(&row)?)
    }

    /// Apps ordered by id (ids are time-ordered), starting after `after` when given.
    pub async fn list_apps(&self, after: Option<&str>, limit: i64) -> Result<Vec<AppRecord>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM apps WHERE id > $1 ORDER BY id LIMIT $2")))
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(AppRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Replaces an app's name, connect settings and branding.
    pub async fn update_app(&self, app: &AppRecord) -> Result<(), StoreError> {
        self.announcing(crate::ChangeKind::App, &app.id, async move {
            let done = sqlx::query(
                "UPDATE apps SET name = $1, return_origins = $2, install_return_url = $3, display_name = $4, \
                 logo_url = $5, accent_color = $6, support_url = $7 WHERE id = $8",
            )
            .bind(&app.name)
            .bind(json_list::encode(&app.return_origins))
            .bind(&app.install_return_url)
            .bind(&app.branding.display_name)
            .bind(&app.branding.logo_url)
            .bind(&app.branding.accent_color)
            .bind(&app.branding.support_url)
            .bind(&app.id)
            .execute(&self.writer)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    /// Deletes an app and, by cascade, everything it owns.
    pub async fn delete_app(&self, id: &str) -> Result<(), StoreError> {
        self.announcing(crate::ChangeKind::App, id, async move {
            let done = sqlx::query("DELETE FROM apps WHERE id = $1").bind(id).execute(&self.writer).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}
