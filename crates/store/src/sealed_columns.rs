//! The registry of every column that holds a sealed secret, so key rotation can find them all.

use sqlx::Row;

use crate::{Store, StoreError};

/// A column holding sealed values. The seal context of a value is (table, row `id`, column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
}

/// Every sealed column in the schema. A new sealed column must be added here, or rotation
/// would leave it behind (the store conformance suite checks rotation over all of them).
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn { table: "provider_configs", column: "client_secret" },
    SealedColumn { table: "oauth_flows", column: "pkce_verifier" },
    SealedColumn { table: "grants", column: "access_token" },
    SealedColumn { table: "grants", column: "refresh_token" },
    SealedColumn { table: "pending_installs", column: "access_token" },
    SealedColumn { table: "pending_installs", column: "refresh_token" },
    SealedColumn { table: "provider_configs", column: "webhook_secret" },
    SealedColumn { table: "provider_webhooks", column: "token" },
    SealedColumn { table: "webhook_endpoints", column: "secret" },
    SealedColumn { table: "webhook_endpoints", column: "previous_secret" },
    SealedColumn { table: "managed_secrets", column: "secret" },
    SealedColumn { table: "approvals", column: "request" },
    SealedColumn { table: "approvals", column: "result" },
];

/// One stored sealed value and the row it belongs to.
#[derive(Clone)]
pub struct SealedValue {
    pub row_id: String,
    pub sealed: Vec<u8>,
}

impl Store {
    /// A page of sealed values of `column`, ordered by row id, after `after_row`.
    pub async fn sealed_values_page(
        &self,
        column: SealedColumn,
        after_row: &str,
        limit: i64,
    ) -> Result<Vec<SealedValue>, StoreError> {
        let SealedColumn { table, column } = column;
        let sql = format!(
            "SELECT id, {column} AS sealed FROM {table} WHERE {column} IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_row).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| Ok(SealedValue { row_id: row.try_get("id")?, sealed: row.try_get("sealed")? }))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Replaces a sealed value only if it still holds `expected` (compare-and-swap), so a
    /// re-seal never overwrites a value that changed meanwhile (e.g. a refresh stored new
    /// tokens). Returns whether the swap happened.
    pub async fn replace_sealed_value(
        &self,
        column: SealedColumn,
        row_id: &str,
        expected: &[u8],
        replacement: &[u8],
    ) -> Result<bool, StoreError> {
        let SealedColumn { table, column } = column;
        let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} = $3");
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(replacement)
            .bind(row_id)
            .bind(expected)
            .execute(&self.writer)
            .await?;
        match table {
            "grants" => self.changed(crate::ChangeKind::Grant, row_id),
            "managed_secrets" => self.changed(crate::ChangeKind::ManagedSecret, row_id),
            _ => {}
        }
        Ok(done.rows_affected() == 1)
    }
}
