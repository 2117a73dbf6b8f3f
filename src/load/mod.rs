//! Load: write the report tables to PostgreSQL or SQLite atomically (DESIGN §5).
//! STUB: being built in the load worktree.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::DatabaseUrl;
use crate::model::Report;

/// Where the tables go.
#[derive(Clone, Debug)]
pub enum Target {
    Postgres(DatabaseUrl),
    Sqlite(PathBuf),
}

impl Target {
    /// Parse `postgres://…`, `postgresql://…` or `sqlite://PATH`.
    pub fn parse(url: &DatabaseUrl) -> Result<Target, Error> {
        let raw = url.expose();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Ok(Target::Postgres(url.clone()))
        } else if let Some(path) = raw.strip_prefix("sqlite://") {
            Ok(Target::Sqlite(PathBuf::from(path)))
        } else {
            Err(Error::Url { url: url.masked() })
        }
    }
}

/// Load options beyond the target.
#[derive(Clone, Debug, Default)]
pub struct LoadOpts {
    /// Test hook: fail after writing this table, inside the transaction.
    pub fail_after_table: Option<String>,
}

/// What a load wrote.
#[derive(Clone, Debug)]
pub struct LoadSummary {
    pub destination: String,
    pub rows: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported database url `{url}`, expected postgres://… or sqlite://PATH")]
    Url { url: String },
    #[error("load not implemented yet")]
    NotYet,
}

pub fn load(report: &Report, target: &Target, opts: &LoadOpts) -> Result<LoadSummary, Error> {
    let _ = (report, target, opts);
    Err(Error::NotYet)
}
