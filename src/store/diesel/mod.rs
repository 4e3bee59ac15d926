//! The one SQL implementation, for SQLite and PostgreSQL alike, through a
//! diesel `MultiConnection`. Connections are made by URL scheme: diesel's own
//! "try each backend" would let SQLite accept a PostgreSQL URL as a file name.

mod audit;
mod clients;
mod grants;
mod groups;
mod mfa;
mod pim;
mod saml;
mod schema;
mod sessions;
mod users;
mod webauthn;

use super::{Repo, Store};
use crate::config::DatabaseSettings;
use crate::error::{Error, ErrorKind, Result};
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Advisory-lock key that serialises migrations across nodes.
const MIGRATION_LOCK: i64 = 0x706f_7274_6375;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

impl From<DieselError> for Error {
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::NotFound => Error::not_found("not found"),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Error::conflict("already exists").with_detail(e.to_string())
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                Error::new(ErrorKind::Contention, "please retry").with_detail(e.to_string())
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => Error::unavailable(e.to_string()),
            // SQLite reports a writer that lost a race as "database is locked";
            // PostgreSQL aborts one of two transactions waiting on each other
            // (SQLSTATE 40P01, which diesel does not name) with "deadlock
            // detected". Both are rolled back whole, so rerunning is safe.
            DieselError::DatabaseError(_, info)
                if info.message().contains("database is locked")
                    || info.message().contains("deadlock detected") =>
            {
                Error::new(ErrorKind::Contention, "please retry").with_detail(e.to_string())
            }
            _ => Error::internal(e.to_string()),
        }
    }
}

/// Seconds since the epoch, as stored.
pub(crate) fn to_ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn from_ts(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

pub struct ConnectionManager {
    url: String,
}

impl ConnectionManager {
    fn new(url: &str, connect_timeout: Duration) -> Self {
        let url = if is_postgres(url) && !url.contains("connect_timeout=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!(
                "{url}{sep}connect_timeout={}",
                connect_timeout.as_secs().max(1)
            )
        } else {
            url.to_string()
        };
        Self { url }
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConn, ConnectionError> {
        if let Some(path) = sqlite_path(&self.url) {
            let mut conn = diesel::SqliteConnection::establish(path)?;
            // WAL lets the CLI write while a server reads; busy_timeout makes
            // writers queue rather than fail; SQLite needs FKs switched on.
            conn.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(DbConn::Sqlite(conn))
        } else {
            Ok(DbConn::Pg(diesel::PgConnection::establish(&self.url)?))
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ConnectionError> {
        conn.batch_execute("SELECT 1")
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

type Pool = r2d2::Pool<ConnectionManager>;

pub struct DieselStore {
    pool: Pool,
    backend: &'static str,
    /// Tags new audit entries; without it, appends to the audit log fail.
    audit_key: Option<std::sync::Arc<crate::crypto::audit::AuditKey>>,
}

impl DieselStore {
    /// Opens the pool (creating a SQLite file's directory if needed) and
    /// applies pending migrations.
    pub fn open(settings: &DatabaseSettings) -> Result<Self> {
        let url = settings.url.expose();
        if let Some(path) = sqlite_path(url)
            && let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
            && !path.starts_with("file:")
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let manager = ConnectionManager::new(url, settings.connect_timeout);
        let pool = r2d2::Pool::builder()
            // A SQLite file cannot drop its connection, so a `SELECT 1` before
            // every transaction would be pure cost on the hot paths; a
            // PostgreSQL connection may have died with its server.
            .test_on_check_out(is_postgres(url))
            .max_size(settings.max_connections)
            .min_idle(Some(0))
            .connection_timeout(settings.connect_timeout)
            .build(manager)
            .map_err(|e| {
                Error::unavailable(format!("database {}: {e}", settings.url.redacted()))
            })?;
        let backend = if is_postgres(url) {
            "postgres"
        } else {
            "sqlite"
        };
        let store = Self {
            pool,
            backend,
            audit_key: None,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The key that tags new audit entries (see [`crate::crypto::audit`]).
    pub fn with_audit_key(mut self, key: crate::crypto::audit::AuditKey) -> Self {
        self.audit_key = Some(std::sync::Arc::new(key));
        self
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<ConnectionManager>> {
        self.pool
            .get()
            .map_err(|e| Error::unavailable(format!("database: {e}")))
    }

    /// Applies pending migrations; returns how many ran.
    pub fn migrate(&self) -> Result<usize> {
        let mut conn = self.conn()?;
        let ran = match &mut *conn {
            DbConn::Pg(c) => {
                // Nodes starting together take turns; the later ones find
                // nothing pending.
                c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
                let ran = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.len());
                c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
                ran
            }
            DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        };
        ran.map_err(|e| Error::unavailable(format!("migrations failed: {e}")))
    }
}

impl Store for DieselStore {
    fn run_tx(&self, f: &mut dyn FnMut(&mut dyn Repo) -> Result<()>) -> Result<()> {
        let mut pooled = self.conn()?;
        let conn: &mut DbConn = &mut pooled;
        let _key = audit::KeyScope::enter(self.audit_key.clone());
        match conn {
            DbConn::Pg(_) => conn.transaction::<(), Error, _>(|c| f(c)),
            DbConn::Sqlite(_) => sqlite_immediate(conn, f),
        }
    }

    fn ping(&self, timeout: Duration) -> Result<()> {
        let mut conn = self
            .pool
            .get_timeout(timeout)
            .map_err(|e| Error::unavailable(format!("database: {e}")))?;
        conn.batch_execute("SELECT 1").map_err(Error::from)
    }

    fn backend(&self) -> &'static str {
        self.backend
    }
}

/// SQLite's default deferred transaction takes the write lock only at the first
/// write, and a reader that then tries to write while another writer holds the
/// lock fails at once, without waiting. `BEGIN IMMEDIATE` takes the lock up
/// front, so concurrent writers queue behind `busy_timeout` instead.
fn sqlite_immediate(
    conn: &mut DbConn,
    f: &mut dyn FnMut(&mut dyn Repo) -> Result<()>,
) -> Result<()> {
    conn.batch_execute("BEGIN IMMEDIATE")?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)));
    match outcome {
        Ok(Ok(())) => match conn.batch_execute("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = conn.batch_execute("ROLLBACK");
                Err(e.into())
            }
        },
        Ok(Err(e)) => {
            conn.batch_execute("ROLLBACK")?;
            Err(e)
        }
        Err(panic) => {
            // Never hand a connection with an open transaction back to the pool.
            let _ = conn.batch_execute("ROLLBACK");
            std::panic::resume_unwind(panic)
        }
    }
}

/// Maps a uniqueness violation to a message that names what clashed.
pub(crate) fn conflict_as(what: &str) -> impl FnOnce(DieselError) -> Error + '_ {
    move |e| {
        let err = Error::from(e);
        if err.kind == ErrorKind::Conflict {
            Error::conflict(format!("{what} already exists"))
        } else {
            err
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_get_a_connect_timeout() {
        let m = ConnectionManager::new("postgres://u@h/db", Duration::from_secs(3));
        assert_eq!(m.url, "postgres://u@h/db?connect_timeout=3");
        let m = ConnectionManager::new("postgres://u@h/db?sslmode=disable", Duration::from_secs(3));
        assert_eq!(m.url, "postgres://u@h/db?sslmode=disable&connect_timeout=3");
        let m = ConnectionManager::new("sqlite://x.db", Duration::from_secs(3));
        assert_eq!(m.url, "sqlite://x.db");
    }

    struct Message(&'static str);

    impl diesel::result::DatabaseErrorInformation for Message {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    #[test]
    fn a_deadlock_victim_is_retried_like_a_lost_race() {
        for msg in ["deadlock detected", "database is locked"] {
            let e = DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(Message(msg)));
            assert_eq!(Error::from(e).kind, ErrorKind::Contention, "{msg}");
        }
        let other = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(Message("division by zero")),
        );
        assert_eq!(Error::from(other).kind, ErrorKind::Internal);
    }
}
