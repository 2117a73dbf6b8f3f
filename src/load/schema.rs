//! Schema migrations: the embedded `migrations/{postgres,sqlite}/V*.sql`
//! files, the pure planning step (order and checksum checks), and the two
//! runners that apply them and record each in `segpipe_schema_migrations`.
//!
//! It does not own the lock: both runners expect to be called inside a
//! transaction that already serializes loads (PostgreSQL advisory lock,
//! SQLite `BEGIN IMMEDIATE`), so two processes can never race to create the
//! bookkeeping table or apply the same migration.

use chrono::Utc;

use super::Error;

/// One embedded migration file `V{version}__{name}.sql`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// FNV-1a 64 of the file text, in hex: detects edits to an applied file.
    /// Not a security hash; it only has to be stable across builds.
    pub fn checksum(&self) -> String {
        checksum(self.sql)
    }
}

/// A row of `segpipe_schema_migrations`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Applied {
    pub version: i32,
    pub name: String,
    pub checksum: String,
}

/// PostgreSQL migrations, in version order.
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "reporting_schema",
        sql: include_str!("../../migrations/postgres/V1__reporting_schema.sql"),
    },
    Migration {
        version: 2,
        name: "honest_nulls_rfm_transitions",
        sql: include_str!("../../migrations/postgres/V2__honest_nulls_rfm_transitions.sql"),
    },
];

/// SQLite migrations, in version order.
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "reporting_schema",
        sql: include_str!("../../migrations/sqlite/V1__reporting_schema.sql"),
    },
    Migration {
        version: 2,
        name: "honest_nulls_rfm_transitions",
        sql: include_str!("../../migrations/sqlite/V2__honest_nulls_rfm_transitions.sql"),
    },
];

pub(crate) fn checksum(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The migrations still to apply, in order. Refuses when an applied
/// migration's file changed (checksum or name) or is unknown to this binary
/// (the database was migrated by a newer segpipe): running on would load
/// into a schema this code was not written for.
pub(crate) fn plan<'a>(
    available: &'a [Migration],
    applied: &[Applied],
) -> Result<Vec<&'a Migration>, Error> {
    for done in applied {
        let Some(m) = available.iter().find(|m| m.version == done.version) else {
            return Err(Error::Migrate {
                version: done.version,
                reason: "applied to the database but unknown to this segpipe (newer schema?)"
                    .to_owned(),
            });
        };
        if m.checksum() != done.checksum || m.name != done.name {
            return Err(Error::Migrate {
                version: done.version,
                reason: format!(
                    "checksum mismatch: applied `{}` {}, embedded `{}` {}; applied migrations must not be edited",
                    done.name,
                    done.checksum,
                    m.name,
                    m.checksum()
                ),
            });
        }
    }
    let newest = applied.iter().map(|a| a.version).max().unwrap_or(0);
    let pending: Vec<&Migration> = available
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect();
    // A gap (V3 applied, V2 not) means someone added an old version late;
    // applying it out of order could clash with what V3 did.
    if let Some(late) = pending.iter().find(|m| m.version < newest) {
        return Err(Error::Migrate {
            version: late.version,
            reason: format!("older than applied version {newest}; add a new version instead"),
        });
    }
    Ok(pending)
}

const PG_BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS segpipe_schema_migrations (
    version    INTEGER     PRIMARY KEY,
    name       TEXT        NOT NULL,
    checksum   TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)";

const SQLITE_BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS segpipe_schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    checksum   TEXT    NOT NULL,
    applied_at TEXT    NOT NULL
) STRICT";

/// Apply pending PostgreSQL migrations inside `tx` (which holds the load lock).
pub(crate) async fn migrate_postgres(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<i32>, Error> {
    let bookkeeping = |source| Error::MigratePostgres {
        step: "read the migration bookkeeping table".to_owned(),
        source,
    };
    tx.batch_execute(PG_BOOKKEEPING)
        .await
        .map_err(bookkeeping)?;
    let applied: Vec<Applied> = tx
        .query(
            "SELECT version, name, checksum FROM segpipe_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(bookkeeping)?
        .iter()
        .map(|r| Applied {
            version: r.get(0),
            name: r.get(1),
            checksum: r.get(2),
        })
        .collect();
    let mut done = Vec::new();
    for m in plan(POSTGRES, &applied)? {
        let failed = |source| Error::MigratePostgres {
            step: format!("apply migration V{}", m.version),
            source,
        };
        tx.batch_execute(m.sql).await.map_err(failed)?;
        tx.execute(
            "INSERT INTO segpipe_schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
            &[&m.version, &m.name, &m.checksum(), &Utc::now()],
        )
        .await
        .map_err(failed)?;
        tracing::info!(
            message = "Applied migration.",
            version = m.version,
            name = m.name
        );
        done.push(m.version);
    }
    Ok(done)
}

/// Apply pending SQLite migrations inside `tx` (a `BEGIN IMMEDIATE` transaction).
pub(crate) fn migrate_sqlite(tx: &rusqlite::Transaction<'_>) -> Result<Vec<i32>, Error> {
    let bookkeeping = |source| Error::MigrateSqlite {
        step: "read the migration bookkeeping table".to_owned(),
        source,
    };
    tx.execute_batch(SQLITE_BOOKKEEPING).map_err(bookkeeping)?;
    let applied = {
        let mut stmt = tx
            .prepare(
                "SELECT version, name, checksum FROM segpipe_schema_migrations ORDER BY version",
            )
            .map_err(bookkeeping)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Applied {
                    version: r.get(0)?,
                    name: r.get(1)?,
                    checksum: r.get(2)?,
                })
            })
            .map_err(bookkeeping)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(bookkeeping)?
    };
    let mut done = Vec::new();
    for m in plan(SQLITE, &applied)? {
        let failed = |source| Error::MigrateSqlite {
            step: format!("apply migration V{}", m.version),
            source,
        };
        tx.execute_batch(m.sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO segpipe_schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![m.version, m.name, m.checksum(), Utc::now().to_rfc3339()],
        )
        .map_err(failed)?;
        tracing::info!(
            message = "Applied migration.",
            version = m.version,
            name = m.name
        );
        done.push(m.version);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Migration = Migration {
        version: 1,
        name: "a",
        sql: "CREATE TABLE a (x int);",
    };
    const B: Migration = Migration {
        version: 2,
        name: "b",
        sql: "CREATE TABLE b (x int);",
    };

    fn applied(m: &Migration) -> Applied {
        Applied {
            version: m.version,
            name: m.name.to_owned(),
            checksum: m.checksum(),
        }
    }

    #[test]
    fn plan_applies_pending_in_order() {
        let all = [A, B];
        let versions = |p: Vec<&Migration>| p.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(plan(&all, &[]).expect("fresh")), vec![1, 2]);
        assert_eq!(
            versions(plan(&all, &[applied(&A)]).expect("one done")),
            vec![2]
        );
        assert!(
            plan(&all, &[applied(&A), applied(&B)])
                .expect("all done")
                .is_empty()
        );
    }

    #[test]
    fn plan_refuses_edited_unknown_and_late_migrations() {
        let edited = Migration {
            sql: "CREATE TABLE a (x bigint);",
            ..A
        };
        let err = plan(&[edited, B], &[applied(&A)]).expect_err("edited");
        assert!(matches!(err, Error::Migrate { version: 1, .. }), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");

        let err = plan(&[A], &[applied(&A), applied(&B)]).expect_err("unknown");
        assert!(matches!(err, Error::Migrate { version: 2, .. }), "{err}");

        let err = plan(&[A, B], &[applied(&B)]).expect_err("late");
        assert!(matches!(err, Error::Migrate { version: 1, .. }), "{err}");
    }

    #[test]
    fn checksum_is_stable_fnv1a() {
        // Pinned: changing the hash would make every existing database refuse to load.
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_eq!(checksum("a"), "af63dc4c8601ec8c");
        assert_ne!(A.checksum(), B.checksum());
    }

    /// Every file in migrations/<backend>/ is embedded, in version order,
    /// with the version and name its file name says.
    #[test]
    fn embedded_migrations_match_the_directory() {
        for (dir, embedded) in [("postgres", POSTGRES), ("sqlite", SQLITE)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<(i32, String, String)> = std::fs::read_dir(&path)
                .expect("migrations dir")
                .map(|e| e.expect("dir entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .map(|p| {
                    let stem = p.file_stem().expect("stem").to_string_lossy().into_owned();
                    let (v, name) = stem
                        .strip_prefix('V')
                        .and_then(|s| s.split_once("__"))
                        .expect("V<n>__name");
                    let text = std::fs::read_to_string(&p).expect("read migration");
                    (v.parse().expect("numeric version"), name.to_owned(), text)
                })
                .collect();
            files.sort_by_key(|f| f.0);
            let got: Vec<(i32, String, String)> = embedded
                .iter()
                .map(|m| (m.version, m.name.to_owned(), m.sql.to_owned()))
                .collect();
            assert_eq!(got, files, "{dir}");
            assert!(
                embedded.windows(2).all(|w| w[0].version < w[1].version),
                "{dir} out of order"
            );
        }
    }
}
