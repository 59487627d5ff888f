//! Fresh, migrated stores for tests: an SQLite file of its own, or a Postgres schema
//! of its own on the server named by `TEST_DATABASE_URL`. Public (not `cfg(test)`)
//! so the API's end-to-end tests can run against the same backends.
//!
//! Postgres is required where `CI=true`: there [`postgres`] panics if the server is
//! unreachable. Elsewhere it prints a loud warning and returns `None`, and the
//! caller skips its Postgres half.

use std::ops::Deref;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

use super::Store;

pub const TEST_DATABASE_URL_ENV: &str = "TEST_DATABASE_URL";
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Test schemas are named `t_<unix seconds>_<random>`; ones older than this are
/// leftovers of killed runs and are dropped by the next run.
const STALE_SCHEMA_AGE: Duration = Duration::from_secs(6 * 3600);
const SCHEMA_PREFIX: &str = "t_";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const POOL_SIZE: u32 = 5;

/// A migrated store that is thrown away afterwards. Derefs to [`Store`]. Call
/// [`TestStore::cleanup`] at the end; if a test panics first, `Drop` cleans up.
#[derive(Debug)]
pub struct TestStore {
    store: Store,
    url: String,
    scratch: Option<Scratch>,
}

#[derive(Debug)]
enum Scratch {
    SqliteFile(PathBuf),
    PostgresSchema { admin_url: String, schema: String },
}

impl Deref for TestStore {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    /// The URL this store was opened with; connecting to it again (say, from a
    /// server under test) reaches the same database or schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Closes the pool, then deletes the file or drops the schema.
    pub async fn cleanup(mut self) {
        self.store.close().await;
        if let Some(scratch) = self.scratch.take() {
            scratch.remove().await;
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some(scratch) = self.scratch.take() else { return };
        // Drop can't await and may run on a runtime thread: do the async cleanup on
        // a thread of its own with a small runtime of its own.
        let cleanup =
            std::thread::spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(scratch.remove()),
                Err(err) => eprintln!("test store cleanup: no runtime: {err}"),
            });
        let _ = cleanup.join();
    }
}

impl Scratch {
    async fn remove(self) {
        match self {
            Scratch::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Scratch::PostgresSchema { admin_url, schema } => {
                let result = async {
                    let mut conn = PgConnection::connect(&admin_url).await?;
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).execute(&mut conn).await?;
                    conn.close().await
                }
                .await;
                if let Err(err) = result {
                    eprintln!("test store cleanup: could not drop schema {schema}: {err}");
                }
            }
        }
    }
}

/// A fresh SQLite database in a new file under the system temp dir.
pub async fn sqlite() -> TestStore {
    let path = std::env::temp_dir().join(format!("trespasser-test-{}.db", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", path.display());
    let scratch = Scratch::SqliteFile(path);
    let store = match Store::connect(&url, POOL_SIZE).await {
        Ok(store) => store,
        Err(err) => {
            scratch.remove().await;
            panic!("open {url}: {err}");
        }
    };
    let test_store = TestStore { store, url, scratch: Some(scratch) };
    test_store.migrate().await.expect("migrate a fresh SQLite file");
    test_store
}

/// The Postgres server tests use: `TEST_DATABASE_URL`, or the local default.
pub fn postgres_url() -> String {
    std::env::var(TEST_DATABASE_URL_ENV).unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// Whether Postgres is mandatory (`CI=true`).
pub fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A fresh schema on the test Postgres server, migrated, with a store whose
/// connections have it as their `search_path`. `None` when the server can't be
/// reached and `CI` is not `true`; under `CI=true` that panics instead.
pub async fn postgres() -> Option<TestStore> {
    let admin_url = postgres_url();
    let mut admin = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&admin_url)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => return unreachable_postgres(&err.to_string()),
        Err(_) => return unreachable_postgres("connect timed out"),
    };

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    drop_stale_schemas(&mut admin, now).await;
    let schema = format!("{SCHEMA_PREFIX}{now}_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|err| panic!("create test schema {schema}: {err}"));
    let _ = admin.close().await;

    let separator = if admin_url.contains('?') { '&' } else { '?' };
    let url = format!("{admin_url}{separator}options[search_path]={schema}");
    let scratch = Scratch::PostgresSchema { admin_url, schema };
    let store = match Store::connect(&url, POOL_SIZE).await {
        Ok(store) => store,
        Err(err) => {
            scratch.remove().await;
            panic!("connect to the test schema: {err}");
        }
    };
    // From here on a panic drops the TestStore, and with it the schema.
    let test_store = TestStore { store, url, scratch: Some(scratch) };
    test_store.migrate().await.expect("migrate a fresh Postgres schema");
    Some(test_store)
}

fn unreachable_postgres(reason: &str) -> Option<TestStore> {
    let url = postgres_url();
    if postgres_required() {
        panic!("Postgres is required (CI=true) but unreachable at {TEST_DATABASE_URL_ENV}={}: {reason}", redact(&url));
    }
    eprintln!(
        "\n==== WARNING: Postgres unreachable at {TEST_DATABASE_URL_ENV}={} ({reason}); \
         SKIPPING the Postgres half of this test. Set {TEST_DATABASE_URL_ENV} (CI=true makes this fatal). ====\n",
        redact(&url)
    );
    None
}

/// Drops test schemas left behind by runs that were killed before cleaning up.
/// Only old ones: other test processes may be using the young ones right now.
async fn drop_stale_schemas(admin: &mut PgConnection, now: u64) {
    let names: Vec<String> =
        match sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 't\\_%'")
            .fetch_all(&mut *admin)
            .await
        {
            Ok(names) => names,
            Err(_) => return,
        };
    for name in names {
        let created = name
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(secs, _)| secs.parse::<u64>().ok());
        if created.is_some_and(|created| now.saturating_sub(created) > STALE_SCHEMA_AGE.as_secs()) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")).execute(&mut *admin).await;
        }
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
