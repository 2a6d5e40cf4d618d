use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Transaction};

use crate::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which SQL dialect a [`Store`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection pool to the vault's database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Reads (and, on PostgreSQL, everything).
    pub(crate) pool: AnyPool,
    /// Writes. On SQLite a pool of one connection, so writers queue here, asynchronously, instead
    /// of sleeping in SQLite's busy handler, and readers (WAL) never wait for them; on PostgreSQL
    /// the same pool as `pool`.
    pub(crate) writer: AnyPool,
    dialect: Dialect,
    pub(crate) listener: crate::changes::ListenerSlot,
}

/// SQLite creates a missing database file with mode 0644 (less the umask), readable by every
/// local user, and gives its `-wal` and `-shm` files the database file's mode. So when the URL
/// asks for the file to be created (`mode=rwc`), the store creates it first, empty (an empty file
/// is an empty SQLite database) and 0600: all three files are then private to the vault's user.
/// An existing file is left as it is.
fn create_private_sqlite_file(url: &str) -> Result<(), StoreError> {
    use sqlx::ConnectOptions;
    use std::os::unix::fs::OpenOptionsExt;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    let creates = options.to_url_lossy().query_pairs().any(|(key, value)| key == "mode" && value == "rwc");
    if !creates {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(options.get_filename()) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(StoreError::Database(sqlx::Error::Io(err))),
    }
}

impl Store {
    /// Connects to `sqlite://...` or `postgres://...`. SQLite runs in WAL mode with a busy
    /// timeout, so readers never block the writer and short write contention waits instead of
    /// failing.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::UnsupportedUrl(format!("scheme `{scheme}` (use sqlite:// or postgres://)")));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let (pool, writer) = match dialect {
            Dialect::Sqlite => {
                create_private_sqlite_file(url)?;
                let sqlite = |connections: u32| {
                    AnyPoolOptions::new()
                        .max_connections(connections)
                        .acquire_timeout(Duration::from_secs(10))
                        .test_before_acquire(false)
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                                conn.execute("PRAGMA busy_timeout = 10000").await?;
                                conn.execute("PRAGMA foreign_keys = ON").await?;
                                conn.execute("PRAGMA synchronous = NORMAL").await?;
                                Ok(())
                            })
                        })
                };
                let writer = sqlite(1).connect_with(options.clone()).await?;
                let pool = sqlite(8).connect_with(options).await?;
                (pool, writer)
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(20)
                    .acquire_timeout(Duration::from_secs(10))
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            // Checked only when there is reason to doubt it (see `connections_suspect`)
                            // or it sat idle long enough for the server or a middlebox to drop it.
                            if crate::error::connections_suspect() || meta.idle_for > Duration::from_secs(30) {
                                use sqlx::Connection;
                                return Ok(conn.ping().await.is_ok());
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool)
            }
        };
        Ok(Store { pool, writer, dialect, listener: Default::default() })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Applies the in-tree migrations of this store's dialect.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrator().run(&self.writer).await?;
        Ok(())
    }

    /// True when the database answers and every in-tree migration has been applied.
    pub async fn is_ready(&self) -> bool {
        let applied: Result<Vec<(i64,)>, _> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = TRUE").fetch_all(&self.pool).await;
        match applied {
            Ok(rows) => self.migrator().iter().all(|m| rows.iter().any(|(v,)| *v == m.version)),
            Err(_) => false,
        }
    }

    /// SQLite only: writes a consistent copy of the whole database into `path`, which must not
    /// exist or be empty, while the vault keeps serving (`VACUUM INTO`). For PostgreSQL,
    /// `pg_dump` is the tool.
    pub async fn backup_sqlite_to(&self, path: &str) -> Result<(), StoreError> {
        if self.dialect != Dialect::Sqlite {
            return Err(StoreError::UnsupportedUrl("backups of PostgreSQL are made with pg_dump".into()));
        }
        // A read transaction: writers go on meanwhile.
        sqlx::query("VACUUM INTO $1").bind(path).execute(&self.pool).await?;
        Ok(())
    }

    /// Connections open in the pool and how many of them are idle.
    pub fn pool_state(&self) -> (u32, usize) {
        let (mut size, mut idle) = (self.pool.size(), self.pool.num_idle());
        if self.dialect == Dialect::Sqlite {
            size += self.writer.size();
            idle += self.writer.num_idle();
        }
        (size, idle)
    }

    /// True once [`Store::close`] ran: nothing will be written any more.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    fn migrator(&self) -> &'static Migrator {
        match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Runs `op` (one statement, or a transaction that is repeated whole), and once more if the
    /// first attempt lost its connection: a lost connection makes the pool check each connection
    /// before handing it out for a while, so the second attempt runs on a live one. Only for
    /// operations that are safe to repeat: reads, and writes guarded by a condition that a
    /// first attempt which did commit makes false (the caller then checks what is stored).
    pub(crate) async fn retrying<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        match op().await {
            Err(StoreError::ConnectionLost(reason)) => {
                tracing::warn!(error = %reason, "database connection lost; retrying once on another connection");
                op().await
            }
            other => other,
        }
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a read-then-write transaction can never fail to upgrade its lock.
    pub async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        let tx = match self.dialect {
            Dialect::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.writer.begin().await?,
        };
        Ok(tx)
    }
}
