//! Fresh PostgreSQL databases for tests.
//!
//! `HOOKD_TEST_DATABASE_URL` names a server (and a database to connect to
//! for CREATE/DROP), by default the local one. The tests that need it are
//! `#[ignore]`d with that reason, and `scripts/test` runs them when a server
//! answers; run without one, they fail saying so (never pass unchecked).

use sqlx::Connection;

pub const ENV: &str = "HOOKD_TEST_DATABASE_URL";

/// The server used when `HOOKD_TEST_DATABASE_URL` is unset (the one
/// `scripts/test` looks for).
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `HOOKD_TEST_DATABASE_URL`, else the local server.
pub fn admin_url() -> String {
    std::env::var(ENV).unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// A database created for one test and dropped when this is dropped.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// A new empty database on the server of `admin_url()`; panics when
    /// no server answers there.
    pub async fn create() -> TestDatabase {
        let name = format!("hookd_test_{:016x}", rand_u64());
        Self::named(&admin_url(), &name, true).await
    }

    /// The database `name`, created if `fresh`; reused otherwise.
    pub async fn named(admin_url: &str, name: &str, fresh: bool) -> TestDatabase {
        if fresh {
            let mut conn = sqlx::PgConnection::connect(admin_url)
                .await
                .unwrap_or_else(|e| panic!("{}", unreachable(admin_url, &e)));
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("creating the test database");
        }
        TestDatabase {
            url: with_database(admin_url, name),
            name: name.to_string(),
            admin_url: admin_url.to_string(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any runtime guarantee: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// What a test says when the server does not answer.
pub fn unreachable(admin_url: &str, e: &dyn std::fmt::Display) -> String {
    format!(
        "this test needs PostgreSQL, and none answers at {admin_url} ({ENV}): {e}; \
         scripts/test runs the PostgreSQL tests when a server answers"
    )
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// `admin_url` with its database replaced by `name`.
pub fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
