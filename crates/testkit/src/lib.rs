//! Throwaway databases for tests: a SQLite file in a temporary directory, or a PostgreSQL
//! database with a unique name that is dropped when the value is dropped (even after a panic).
//!
//! PostgreSQL comes from `TOKENVAULT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). If it cannot be reached the test is skipped
//! with a loud message, unless `TOKENVAULT_REQUIRE_POSTGRES=1` (set by CI), which makes it fail.

use std::path::PathBuf;

use sqlx::{Connection, Executor, PgConnection};

pub const POSTGRES_URL_VAR: &str = "TOKENVAULT_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_VAR: &str = "TOKENVAULT_REQUIRE_POSTGRES";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for the lifetime of this value.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Option<TestDatabase> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        TestDatabase { url, backend: Backend::Sqlite, dir: Some(dir), postgres: None }
    }

    /// A fresh PostgreSQL database, or `None` (after printing why) when PostgreSQL is not
    /// available and not required.
    pub async fn postgres() -> Option<TestDatabase> {
        let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let name = format!("tokenvault_test_{}", uuid::Uuid::new_v4().simple());
        let created = async {
            let mut conn = PgConnection::connect(&admin_url).await?;
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if let Err(err) = created {
            let required = std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v == "1" || v == "true");
            if required {
                panic!("PostgreSQL is required ({REQUIRE_POSTGRES_VAR}=1) but {admin_url} is not usable: {err}");
            }
            // Written to the process's stderr directly: `eprintln!` would be captured by the test
            // harness and hidden for a test that passes, and a skip must never be silent.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: PostgreSQL test, because {admin_url} is not usable ({err}). \
                 Set {POSTGRES_URL_VAR}, and {REQUIRE_POSTGRES_VAR}=1 to make this a failure. ***\n"
            );
            return None;
        }
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => format!("{admin_url}/{name}"),
        };
        Some(TestDatabase { url, backend: Backend::Postgres, dir: None, postgres: Some((admin_url, name)) })
    }

    /// PostgreSQL only: terminates every connection to this database (as a failover, a restart
    /// or an operator's `pg_terminate_backend` would). Returns how many were cut.
    pub async fn terminate_connections(&self) -> i64 {
        let (admin_url, name) = self.postgres.as_ref().expect("a PostgreSQL test database");
        let mut admin = PgConnection::connect(admin_url).await.expect("admin connection");
        let (cut,): (i64,) = sqlx::query_as(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .expect("pg_terminate_backend");
        let _ = admin.close().await;
        cut
    }

    /// Runs one statement on this database from a connection of its own (to break or mend
    /// something behind the vault's back in a fault test).
    pub async fn execute(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url).await.expect("test connection");
        conn.execute(sqlx::AssertSqlSafe(sql.to_owned())).await.expect("statement runs");
        let _ = conn.close().await;
    }

    /// The first column of every row `sql` returns, as bytes: to look at what is really stored.
    pub async fn column_bytes(&self, sql: &str) -> Vec<Vec<u8>> {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url).await.expect("test connection");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&mut conn).await.expect("query runs");
        let _ = conn.close().await;
        rows.iter().filter_map(|row| row.try_get::<Option<Vec<u8>>, _>(0).ok().flatten()).collect()
    }

    /// A directory that lives as long as the database (SQLite only; for data-dir based tests).
    pub fn dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().to_owned())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop may run inside an async runtime; do the blocking cleanup on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await?;
                conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database");
        }
    }
}
