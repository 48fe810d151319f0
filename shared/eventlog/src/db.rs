//! Connections to the one SQL database a process uses: SQLite (embedded) or
//! PostgreSQL (distributed), both through sqlx's `Any` driver so that
//! projections are written once for both backends.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::Error;

/// Which SQL engine sits behind a [`Db`]; the few statements that differ match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

/// A database handle: a read pool and a write pool (the same pool on
/// PostgreSQL; a single connection on SQLite, which has one writer at a time
/// anyway, so that writers queue in-process instead of failing with BUSY).
#[derive(Clone, Debug)]
pub struct Db {
    /// Which backend.
    kind: DbKind,
    /// The pool readers use.
    read: AnyPool,
    /// The pool writers use: the read pool on PostgreSQL, one connection on SQLite.
    write: AnyPool,
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies the
    /// event log's migrations.
    pub async fn connect(url: &str) -> Result<Db, Error> {
        Self::connect_with(url, 32).await
    }

    /// Like [`Db::connect`] with an explicit PostgreSQL pool size.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Db, Error> {
        sqlx::any::install_default_drivers();
        let db = if url.starts_with("sqlite:") {
            Self::connect_sqlite(url).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Db {
                kind: DbKind::Postgres,
                read: pool.clone(),
                write: pool,
            }
        } else {
            return Err(Error::Config(format!(
                "database url must start with sqlite: or postgres: (got {})",
                url.split(':').next().unwrap_or("")
            )));
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn connect_sqlite(url: &str) -> Result<Db, Error> {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        let url = if url.contains('?') {
            url.to_string()
        } else {
            format!("{url}?mode=rwc")
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _meta| Box::pin(sqlite_pragmas(conn)))
            // Whatever ran on it (a replayable transaction turns flushing
            // off), the connection goes back to the pool flushing commits.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA synchronous=FULL").await?;
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await?;
        let read = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _meta| Box::pin(sqlite_pragmas(conn)))
            .connect_with(options)
            .await?;
        Ok(Db {
            kind: DbKind::Sqlite,
            read,
            write,
        })
    }

    async fn migrate(&self) -> Result<(), Error> {
        let mut migrator = match self.kind {
            DbKind::Postgres => sqlx::migrate!("migrations/postgres"),
            DbKind::Sqlite => sqlx::migrate!("migrations/sqlite"),
        };
        // Each crate that owns tables brings its own migrator with its own
        // version range; they share sqlx's bookkeeping table.
        migrator.set_ignore_missing(true);
        migrator.run(&self.write).await?;
        Ok(())
    }

    /// Applies a crate's own migrations (projection tables), chosen by backend.
    pub async fn run_migrations(
        &self,
        postgres: &sqlx::migrate::Migrator,
        sqlite: &sqlx::migrate::Migrator,
    ) -> Result<(), Error> {
        let mut migrator = match self.kind {
            DbKind::Postgres => clone_migrator(postgres),
            DbKind::Sqlite => clone_migrator(sqlite),
        };
        migrator.set_ignore_missing(true);
        migrator.run(&self.write).await?;
        Ok(())
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Pool for reads. On SQLite, reads here never wait for the writer.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Pool for writes (and for reads that must see the latest commit).
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write never has to upgrade.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, Error> {
        Ok(match self.kind {
            DbKind::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            DbKind::Postgres => self.write.begin().await?,
        })
    }

    /// Begins a write transaction whose effect the log can always give
    /// again: a read model's batch and its checkpoint. On SQLite its commit
    /// is not flushed to disk (WAL with `synchronous=NORMAL`, until the
    /// connection goes back to the pool): it survives a crash of the
    /// process, and a crash of the machine only loses batches that are then
    /// applied again from their checkpoint. PostgreSQL commits it as any
    /// other: there the process would outlive a lost commit and never apply
    /// it again.
    pub async fn begin_replayable(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, Error> {
        Ok(match self.kind {
            DbKind::Sqlite => {
                self.write
                    .begin_with("PRAGMA synchronous=NORMAL; BEGIN IMMEDIATE")
                    .await?
            }
            DbKind::Postgres => self.write.begin().await?,
        })
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// WAL with synchronous=FULL: a commit is on disk before it returns.
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
         PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
    )
    .await?;
    Ok(())
}

fn clone_migrator(m: &sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    sqlx::migrate::Migrator {
        migrations: m.migrations.clone(),
        ignore_missing: true,
        locking: m.locking,
        no_tx: m.no_tx,
    }
}

/// Whether `e` is a unique constraint's violation (a concurrent insert won).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous(executor: impl sqlx::Executor<'_, Database = sqlx::Any>) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(executor)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn only_a_replayable_transaction_commits_without_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.unwrap();
        // 2 is FULL, 1 NORMAL.
        let mut tx = db.begin_replayable().await.unwrap();
        assert_eq!(synchronous(&mut *tx).await, 1);
        tx.commit().await.unwrap();
        assert_eq!(synchronous(db.writer()).await, 2);
        let mut tx = db.begin().await.unwrap();
        assert_eq!(synchronous(&mut *tx).await, 2);
        drop(tx);
        // Also when the transaction is dropped half way.
        let tx = db.begin_replayable().await.unwrap();
        drop(tx);
        assert_eq!(synchronous(db.writer()).await, 2);
    }
}
