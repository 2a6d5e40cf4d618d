//! The embedded database runs in WAL mode, so readers never block the writer.

use sqlx::{Connection, SqliteConnection};
use tokenvault_store::Store;
use tokenvault_testkit::{Backend, TestDatabase};

#[tokio::test]
async fn the_sqlite_file_is_in_wal_mode_and_stays_so() {
    let db = TestDatabase::create(Backend::Sqlite).await.expect("sqlite is always available");
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    // A separate, plain connection reads the mode recorded in the file itself.
    let mut plain = SqliteConnection::connect(&db.url).await.unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&mut plain).await.unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    plain.close().await.unwrap();
    store.close().await;
}
