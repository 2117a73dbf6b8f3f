//! The hand-written migrations and the table declarations in
//! `segpipe::report_tables` must agree: same tables, columns (order, type,
//! nullability), primary keys and foreign keys, on both backends, both after
//! the first migration and after a load has swapped fresh tables in.

use segpipe::load::{LoadOpts, Target, load};
use segpipe::report_tables::{HISTORY, TABLES};

use crate::load_postgres::report;
use crate::pg::{self, TestDb};
use crate::util::Workdir;

type Shape = Vec<(String, String, bool)>;

fn declared_pg(table: &segpipe::table::Table) -> Shape {
    table
        .columns
        .iter()
        .map(|c| {
            (
                c.name.to_owned(),
                c.kind.postgres_type().to_owned(),
                c.nullable,
            )
        })
        .collect()
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn check_postgres(url: &str) {
    let report_tables: Vec<String> = pg::rows(
        url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' \
         AND tablename NOT IN ('pipeline_runs', 'segpipe_schema_migrations') ORDER BY 1",
    )
    .iter()
    .map(|r| text(&r[0]))
    .collect();
    let mut declared: Vec<String> = TABLES
        .iter()
        .chain(&HISTORY)
        .map(|t| t.name.to_owned())
        .collect();
    declared.sort();
    assert_eq!(report_tables, declared);
    for table in TABLES.iter().chain(&HISTORY) {
        let got: Shape = pg::rows(
            url,
            &format!(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), \
                 CASE WHEN a.attnotnull THEN 'f' ELSE 't' END \
                 FROM pg_attribute a WHERE a.attrelid = '{}'::regclass \
                 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                table.name
            ),
        )
        .iter()
        .map(|r| (text(&r[0]), text(&r[1]), text(&r[2]) == "t"))
        .collect();
        assert_eq!(got, declared_pg(table), "{}", table.name);
        let key: Vec<String> = pg::rows(
            url,
            &format!(
                "SELECT a.attname FROM pg_constraint c \
                 CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
                 WHERE c.conrelid = '{0}'::regclass AND c.contype = 'p' \
                 AND c.conname = '{0}_pkey' ORDER BY k.n",
                table.name
            ),
        )
        .iter()
        .map(|r| text(&r[0]))
        .collect();
        assert_eq!(key, table.key, "{} primary key", table.name);
        let fks: Vec<(String, String)> = pg::rows(
            url,
            &format!(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE conrelid = '{}'::regclass AND contype = 'f' ORDER BY conname",
                table.name
            ),
        )
        .iter()
        .map(|r| (text(&r[0]), text(&r[1])))
        .collect();
        let want: Vec<(String, String)> = table
            .parent
            .iter()
            .zip(table.fkey_name())
            .map(|(fk, name)| {
                (
                    name,
                    format!(
                        "FOREIGN KEY ({0}) REFERENCES {1}({0})",
                        fk.column, fk.parent
                    ),
                )
            })
            .collect();
        assert_eq!(fks, want, "{} foreign keys", table.name);
    }
}

#[test]
fn postgres_migrations_match_the_declarations() {
    let db = TestDb::new();
    load(&report(20, 1), &db.target(), &LoadOpts::default()).expect("first load");
    check_postgres(db.url());
    // The second load swaps freshly built tables in: same shape.
    load(&report(30, 2), &db.target(), &LoadOpts::default()).expect("second load");
    check_postgres(db.url());
}

#[test]
fn sqlite_migrations_match_the_declarations() {
    let w = Workdir::new();
    let path = w.join("s.db");
    load(
        &report(20, 1),
        &Target::Sqlite(path.clone()),
        &LoadOpts::default(),
    )
    .expect("load");
    let conn = rusqlite::Connection::open(&path).expect("open");
    let mut names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT IN ('pipeline_runs', 'segpipe_schema_migrations') ORDER BY 1",
        )
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    names.sort();
    let mut declared: Vec<String> = TABLES
        .iter()
        .chain(&HISTORY)
        .map(|t| t.name.to_owned())
        .collect();
    declared.sort();
    assert_eq!(names, declared);
    for table in TABLES.iter().chain(&HISTORY) {
        let info: Vec<(String, String, bool, i64)> = conn
            .prepare(&format!("PRAGMA table_info({})", table.name))
            .expect("prepare")
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)? == 0,
                    r.get::<_, i64>(5)?,
                ))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let shape: Vec<(String, String, bool)> = info
            .iter()
            .map(|(n, t, null, _)| (n.clone(), t.clone(), *null))
            .collect();
        let want: Vec<(String, String, bool)> = table
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.to_owned(),
                    c.kind.sqlite_type().to_owned(),
                    c.nullable,
                )
            })
            .collect();
        assert_eq!(shape, want, "{}", table.name);
        let mut key: Vec<(i64, String)> = info
            .iter()
            .filter(|(.., pk)| *pk > 0)
            .map(|(n, .., pk)| (*pk, n.clone()))
            .collect();
        key.sort();
        let key: Vec<String> = key.into_iter().map(|(_, n)| n).collect();
        assert_eq!(key, table.key, "{} primary key", table.name);
        let fks: Vec<(String, String, String)> = conn
            .prepare(&format!("PRAGMA foreign_key_list({})", table.name))
            .expect("prepare")
            .query_map([], |r| Ok((r.get(2)?, r.get(3)?, r.get(4)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let want: Vec<(String, String, String)> = table
            .parent
            .iter()
            .map(|fk| {
                (
                    fk.parent.to_owned(),
                    fk.column.to_owned(),
                    fk.column.to_owned(),
                )
            })
            .collect();
        assert_eq!(fks, want, "{} foreign keys", table.name);
    }
}
