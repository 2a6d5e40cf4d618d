/// Store failures. Messages name tables and constraints, never stored values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("database url is not supported: {0}")]
    UnsupportedUrl(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The statement's connection broke; another connection may work (see `Store::retrying`).
    #[error("database connection lost: {0}")]
    ConnectionLost(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict`, leaving other errors untouched.
    pub(crate) fn unique_as_conflict(err: sqlx::Error, what: &'static str) -> StoreError {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
            _ => err.into(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    /// Faults of the connection or the server's availability (as opposed to a bad statement)
    /// become `Unavailable`: the caller answers 503 with `Retry-After`, never 500.
    fn from(err: sqlx::Error) -> Self {
        if connection_lost(&err) {
            suspect_connections();
            StoreError::ConnectionLost(err.to_string())
        } else if matches!(err, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) || busy(&err) {
            StoreError::Unavailable(err.to_string())
        } else {
            StoreError::Database(err)
        }
    }
}

/// Until when (ms since [`ORIGIN`]) pooled connections are checked before use: a connection was
/// just found broken, so its idle siblings may be too (the server restarted, or an operator
/// terminated the backends). The rest of the time nothing is checked: no ping per statement.
static SUSPECT_UNTIL_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static ORIGIN: std::sync::LazyLock<std::time::Instant> = std::sync::LazyLock::new(std::time::Instant::now);
const SUSPECT_FOR_MS: u64 = 10_000;

fn since_origin_ms() -> u64 {
    ORIGIN.elapsed().as_millis() as u64
}

fn suspect_connections() {
    SUSPECT_UNTIL_MS.fetch_max(since_origin_ms() + SUSPECT_FOR_MS, std::sync::atomic::Ordering::AcqRel);
}

/// Whether a pooled connection should be checked before it is handed out.
pub(crate) fn connections_suspect() -> bool {
    since_origin_ms() < SUSPECT_UNTIL_MS.load(std::sync::atomic::Ordering::Acquire)
}

/// The statement failed because its connection broke (reset, closed, terminated by the server,
/// e.g. `pg_terminate_backend` or a restart). Another connection from the pool may well work.
fn connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Tls(_) => true,
        // SQLSTATE class 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown,
        // cannot connect now.
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// SQLite could not get its lock within the busy timeout (SQLITE_BUSY / SQLITE_LOCKED and
/// their extended codes): a temporary condition.
fn busy(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6) && db.message().contains("locked")),
        _ => false,
    }
}
