//! `--load-mode swap` on PostgreSQL: build the new tables on two
//! connections, then swap them in with one short transaction.
//!
//! A transaction lives on one connection, so the only way to use a second
//! core of the server is to build the new set outside the transaction that
//! swaps it in (issue 11: the load was 21 of 34 seconds at a million
//! customers, the COPY, key builds and checks all on one backend):
//!
//! 1. A session advisory lock (the same key as in-place's transaction lock)
//!    serializes loads from here to the end; the migrations run and commit.
//! 2. Staging: each report table gets a key-less `<t>__new` (LIKE the live
//!    one), binary COPY, primary key and ANALYZE, the biggest tables first,
//!    on whichever of two connections is free. The month's CHECK is declared
//!    again `NOT VALID` after the COPY instead of run per row
//!    (`DEFERRED_CHECKS`). Then every foreign key is
//!    declared `NOT VALID` (no scan) and validated, again two at a time
//!    (`VALIDATE CONSTRAINT` only takes a share lock on the parent).
//! 3. The swap transaction: lock the live tables, carry GRANTs over, drop
//!    the old set, rename the new one into place, record the run, commit.
//!
//! The live tables are untouched until step 3, which is one transaction:
//! readers see the old set or the new one. Staging tables are committed
//! work, so a failed load drops them on the way out, and a killed one
//! leaves them for the next load, which drops them before it stages.

use std::cmp::Reverse;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio_postgres::Client;

use super::postgres::{
    LOCK_KEY, carry_grants, connect, copy_table, ddl, finish, lock_tables, refuse_dependent_views,
    set_lock_timeout,
};
use super::{Error, LoadOpts, LoadSummary, injected, schema};
use crate::model::Report;
use crate::report_tables::TABLES;
use crate::secret::DatabaseUrl;
use crate::table::Table;

/// Connections that build the new tables at once: one per core of the
/// machine the bench runs on, and what a server busy with readers can spare.
const CONNECTIONS: usize = 2;

/// Stage, then swap (see the module doc).
pub(super) fn swap(
    rt: &Handle,
    client: &mut Client,
    url: &DatabaseUrl,
    report: &Report,
    opts: &LoadOpts,
) -> Result<LoadSummary, Error> {
    rt.block_on(async {
        // Not bounded by `lock_timeout`: a second load waits for the first.
        client
            .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(Error::Lock)?;
        let tx = client.transaction().await.map_err(Error::Lock)?;
        set_lock_timeout(tx.client(), opts.lock_timeout).await?;
        schema::migrate_postgres(&tx).await?;
        // Fail before the long COPY rather than after it.
        refuse_dependent_views(tx.client()).await?;
        tx.commit().await.map_err(Error::Commit)
    })?;
    let mut timings = Vec::new();
    let result = stage(rt, client, url, report, opts, &mut timings).and_then(|()| {
        rt.block_on(async {
            // `client` staged too: the swap commits as the server is set to.
            ddl(client, "end staging", "RESET synchronous_commit").await?;
            let tx = client.transaction().await.map_err(Error::Lock)?;
            set_lock_timeout(tx.client(), opts.lock_timeout).await?;
            swap_in(tx.client(), opts, &mut timings).await?;
            finish(tx, report, timings).await
        })
    });
    rt.block_on(async {
        if result.is_err() {
            // Best effort: the next load drops whatever this leaves.
            let _ = client.batch_execute(&drop_staging_sql()).await;
        }
        let _ = client
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await;
    });
    result
}

/// `DROP TABLE IF EXISTS` every staging table, in one statement so the
/// foreign keys between them go too.
fn drop_staging_sql() -> String {
    format!(
        "DROP TABLE IF EXISTS {}",
        TABLES.map(|t| format!("{}__new", t.name)).join(", ")
    )
}

/// Step 2: the new tables with their data, keys and statistics, and their
/// foreign keys checked. One queue feeds both connections: a table's key
/// check is ready once the table and its parent are staged, so it runs in
/// the time one connection would otherwise wait for the other's last table
/// (1M run: staging then checking took 14.6 + 1.5 s, the queue ~15 s).
fn stage(
    rt: &Handle,
    client: &Client,
    url: &DatabaseUrl,
    report: &Report,
    opts: &LoadOpts,
    timings: &mut Vec<(String, Duration)>,
) -> Result<(), Error> {
    let started = Instant::now();
    rt.block_on(ddl(
        client,
        "drop the staging tables a killed load left",
        &drop_staging_sql(),
    ))?;
    // Parents first, so their children's checks can start as soon as each
    // child is staged; then the biggest first.
    let is_parent = |t: &Table| {
        TABLES
            .iter()
            .any(|c| c.parent.is_some_and(|fk| fk.parent == t.name))
    };
    let mut tables: Vec<&Table> = TABLES.to_vec();
    tables.sort_by_key(|t| (!is_parent(t), Reverse((t.len)(report))));
    let mut tasks: Vec<Task<'_>> = tables.iter().map(|&t| Task::Stage(t)).collect();
    tasks.extend(
        TABLES
            .iter()
            .filter_map(|&t| Some(Task::Check(t, t.parent?.parent, t.fkey_name()?))),
    );
    on_connections(
        rt,
        client,
        url,
        opts,
        tasks,
        async |c: &Client, task| match task {
            // One transaction per table, so COPY may FREEZE (see `copy_table`).
            Task::Stage(table) => in_transaction(c, stage_table(c, report, table, opts)).await,
            Task::Check(table, _, fk_name) => check_foreign_key(c, table, fk_name).await,
        },
    )?;
    timings.push((
        format!("copy, keys, analyze and foreign keys on {CONNECTIONS} connections"),
        started.elapsed(),
    ));
    Ok(())
}

/// Work for a staging connection.
enum Task<'a> {
    Stage(&'a Table),
    /// A child table, its parent's name, the foreign key's name.
    Check(&'a Table, &'static str, String),
}

impl Task<'_> {
    /// Whether the task can start, given the tables staged so far.
    fn ready(&self, staged: &[&str]) -> bool {
        match self {
            Task::Stage(_) => true,
            // A parent that is not a report table is never staged: let
            // the server refuse the key, naming it, rather than wait.
            Task::Check(child, parent, _) => {
                staged.contains(&child.name)
                    && (staged.contains(parent) || !TABLES.iter().any(|t| t.name == *parent))
            }
        }
    }
}

/// Declare `fk_name` on the staged `table` `NOT VALID` (no scan) and
/// validate it. Two transactions: the declaration locks the parent against
/// other declarations, the check only shares it, so checks of two children
/// of one parent run at once.
async fn check_foreign_key(c: &Client, table: &Table, fk_name: &str) -> Result<(), Error> {
    let Some(fk) = table.parent else {
        return Ok(());
    };
    let parent_key = TABLES
        .iter()
        .find(|p| p.name == fk.parent)
        .map_or(fk.column, |p| p.key[0]);
    ddl(
        c,
        &format!("declare foreign key `{fk_name}`"),
        &format!(
            "ALTER TABLE {}__new ADD CONSTRAINT {fk_name} \
             FOREIGN KEY ({}) REFERENCES {}__new ({parent_key}) NOT VALID",
            table.name, fk.column, fk.parent
        ),
    )
    .await?;
    let step = format!("check foreign key `{fk_name}`");
    let validate = format!(
        "ALTER TABLE {}__new VALIDATE CONSTRAINT {fk_name}",
        table.name
    );
    if !keyed_by_parent(table) {
        return ddl(c, &step, &validate).await;
    }
    // The check is an anti-join of child and parent keys. When the child's
    // key starts with the referencing column, both keys' fresh indexes are
    // in that order and all-visible (COPY FREEZE): a merge of two
    // index-only scans reads each once, where the default hash join hashes
    // the parent's million keys per child table (1M run: 0.95 against 1.4
    // server CPU-s for the store summary, 1.15 against 1.65 for the trends).
    let merged = format!("SET LOCAL enable_hashjoin = off; {validate}");
    in_transaction(c, ddl(c, &step, &merged)).await
}

/// `work` in a transaction of its own on `c`: committed when it succeeds,
/// rolled back when it fails, so the connection stays usable either way.
async fn in_transaction(
    c: &Client,
    work: impl Future<Output = Result<(), Error>>,
) -> Result<(), Error> {
    ddl(c, "begin a staging transaction", "BEGIN").await?;
    let done = work.await;
    let end = if done.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = ddl(c, "end a staging transaction", end).await;
    done?;
    ended
}

/// Whether `table`'s primary key starts with its foreign key column.
fn keyed_by_parent(table: &Table) -> bool {
    table
        .parent
        .is_some_and(|fk| table.key.first() == Some(&fk.column))
}

/// One staging table, inside the caller's transaction: created LIKE the
/// live table, copied, keyed and analyzed (each table's times at debug level).
async fn stage_table(
    c: &Client,
    report: &Report,
    table: &Table,
    opts: &LoadOpts,
) -> Result<(), Error> {
    let name = table.name;
    let t = Instant::now();
    ddl(
        c,
        &format!("create `{name}__new`"),
        &format!("CREATE TABLE {name}__new (LIKE {name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"),
    )
    .await?;
    let deferred = defer_checks(c, table).await?;
    let copy = copy_table(c, report, table, &format!("{name}__new"), true).await?;
    injected(opts, name)?;
    let copied = t.elapsed();
    // Sorting a heap already in key order is one pass; parallel workers
    // would each sort a share and merge, for twice the CPU (see `key_order`).
    let mut keys = String::new();
    if copy.in_key_order {
        keys.push_str("SET LOCAL max_parallel_maintenance_workers = 0; ");
    }
    for (con, def) in &deferred {
        keys.push_str(&format!(
            "ALTER TABLE {name}__new ADD CONSTRAINT {con} {def} NOT VALID; "
        ));
    }
    keys.push_str(&format!(
        "ALTER TABLE {name}__new ADD CONSTRAINT {name}__new_pkey PRIMARY KEY ({}); \
         ANALYZE {name}__new",
        table.key.join(", ")
    ));
    ddl(c, &format!("add the primary key of `{name}`"), &keys).await?;
    tracing::debug!(
        message = "Staged table.",
        table = name,
        rows = copy.rows,
        in_key_order = copy.in_key_order,
        copy_ms = copied.as_millis() as u64,
        keys_ms = (t.elapsed() - copied).as_millis() as u64
    );
    Ok(())
}

/// Columns whose CHECK PostgreSQL does not re-evaluate for segpipe's own
/// rows: the month's regular expression cost 0.9 µs a row, 5.7 of the
/// load's 32 server CPU-seconds at a million customers, and its COPY was
/// the longest path. `PgValue::new` refuses what the CHECK would (see
/// `postgres::month_fits`), the constraint is declared `NOT VALID` after
/// the COPY, so it binds every later INSERT and UPDATE by anyone, and
/// `VALIDATE CONSTRAINT` passes on what segpipe wrote.
const DEFERRED_CHECKS: &[(&str, &str)] = &[("customer_purchase_trends", "month")];

/// Drop the staging table's CHECKs on `DEFERRED_CHECKS` columns before
/// its COPY; returns (name, definition) to add back after it.
async fn defer_checks(c: &Client, table: &Table) -> Result<Vec<(String, String)>, Error> {
    let name = table.name;
    let failed = |source| Error::Ddl {
        step: format!("defer the CHECKs of `{name}__new`"),
        source,
    };
    let columns: Vec<&str> = DEFERRED_CHECKS
        .iter()
        .filter(|(t, _)| *t == name)
        .map(|(_, column)| *column)
        .collect();
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let staged = format!("{name}__new");
    let checks: Vec<(String, String)> = c
        .query(
            "SELECT c.conname::text, pg_get_constraintdef(c.oid) FROM pg_constraint c \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
             WHERE c.conrelid = $1::text::regclass AND c.contype = 'c' \
               AND a.attname = ANY ($2::text[]) ORDER BY 1",
            &[&staged, &columns],
        )
        .await
        .map_err(failed)?
        .iter()
        .map(|r| {
            let def: String = r.get(1);
            // A definition read off a NOT VALID constraint says so.
            let def = def.strip_suffix(" NOT VALID").unwrap_or(&def).to_owned();
            (r.get(0), def)
        })
        .collect();
    for (con, _) in &checks {
        ddl(
            c,
            &format!("defer the CHECKs of `{staged}`"),
            &format!("ALTER TABLE {staged} DROP CONSTRAINT {con}"),
        )
        .await?;
    }
    Ok(checks)
}

/// Run every task on `client` and `CONNECTIONS - 1` more connections at
/// once, each taking the first ready task (checks first) when it is free
/// and waiting while none is. The first error stops the others at their next task and
/// is returned.
fn on_connections<'a>(
    rt: &Handle,
    client: &Client,
    url: &DatabaseUrl,
    opts: &LoadOpts,
    tasks: Vec<Task<'a>>,
    work: impl AsyncFn(&Client, &Task<'a>) -> Result<(), Error> + Sync,
) -> Result<(), Error> {
    let queue = Mutex::new(Queue {
        pending: tasks,
        staged: Vec::new(),
        failed: false,
    });
    let drain = async |c: &Client| -> Result<(), Error> {
        session_settings(c, opts).await?;
        loop {
            let next = {
                let mut guard = queue.lock().unwrap_or_else(|e| e.into_inner());
                let q = &mut *guard;
                if q.failed || q.pending.is_empty() {
                    return Ok(());
                }
                // A ready check before another table: the checks are short,
                // and the last table staged should not find them all waiting.
                let ready = |check: bool| {
                    q.pending
                        .iter()
                        .position(|t| matches!(t, Task::Check(..)) == check && t.ready(&q.staged))
                };
                let at = ready(true).or_else(|| ready(false));
                at.map(|i| q.pending.remove(i))
            };
            let Some(task) = next else {
                // The other connection is staging what the rest waits for.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let done = work(c, &task).await;
            let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
            match (done, &task) {
                (Err(e), _) => {
                    q.failed = true;
                    return Err(e);
                }
                (Ok(()), Task::Stage(table)) => q.staged.push(table.name),
                (Ok(()), Task::Check(..)) => {}
            }
        }
    };
    std::thread::scope(|s| {
        let others: Vec<_> = (1..CONNECTIONS)
            .map(|_| {
                s.spawn(|| {
                    rt.block_on(async {
                        let (c, driver) = connect(url).await?;
                        let done = drain(&c).await;
                        drop(c);
                        let _ = driver.await;
                        done
                    })
                })
            })
            .collect();
        let mut result = rt.block_on(drain(client));
        for other in others {
            let done = other.join().unwrap_or(Err(Error::StagingPanic));
            result = result.and(done);
        }
        result
    })
}

/// The tasks not started yet, the tables staged, whether a task failed.
struct Queue<'a> {
    pending: Vec<Task<'a>>,
    staged: Vec<&'static str>,
    failed: bool,
}

/// What each staging connection runs with: index builds sort whole tables,
/// so give them memory; a staging commit need not wait for its WAL to
/// reach the disk (a crash loses only staging tables, which the next load
/// drops, and the swap's commit, durable again, flushes everything before
/// it); lock waits are bounded as in the transaction.
async fn session_settings(c: &Client, opts: &LoadOpts) -> Result<(), Error> {
    ddl(
        c,
        "set the staging session's limits",
        &format!(
            "SET maintenance_work_mem = '512MB'; SET synchronous_commit = off; \
             SET lock_timeout = {}",
            opts.lock_timeout.as_millis().max(1)
        ),
    )
    .await
}

/// Step 3: under locks on the live tables, replace them with the staged ones.
async fn swap_in(
    tx: &Client,
    opts: &LoadOpts,
    timings: &mut Vec<(String, Duration)>,
) -> Result<(), Error> {
    let started = Instant::now();
    // Everything before left the live tables readable. Now lock them all,
    // in one fixed order and with bounded waits (see `lock_tables`), so the
    // DROP below never waits while holding part of the set.
    lock_tables(tx, "ACCESS EXCLUSIVE", opts.lock_timeout, "swap them").await?;
    timings.push(("lock".to_owned(), started.elapsed()));
    let started = Instant::now();
    // Under the lock no new view can appear; one created while staging is
    // caught here instead of by a DROP error.
    refuse_dependent_views(tx).await?;
    for table in TABLES {
        carry_grants(tx, table.name).await?;
    }
    // One statement drops the old set, so the FKs between old tables go too;
    // no CASCADE: a user's view on a report table would silently go with it.
    let mut swap = format!("DROP TABLE {};", TABLES.map(|t| t.name).join(", "));
    for table in TABLES.map(|t| t.name) {
        swap.push_str(&format!(
            " ALTER TABLE {table}__new RENAME TO {table};\
              ALTER TABLE {table} RENAME CONSTRAINT {table}__new_pkey TO {table}_pkey;"
        ));
    }
    ddl(tx, "swap in the new tables", &swap).await?;
    timings.push(("swap".to_owned(), started.elapsed()));
    Ok(())
}
