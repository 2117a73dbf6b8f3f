//! Extract: validate customers, fetch purchases over HTTP, join on mobile.
//!
//! [`extract`] is the stage function; `customers` validates rows (read by
//! `lines`), `client` talks to the purchase API, `join` assembles the result.

pub mod client;
pub mod customers;
pub mod join;
mod lines;
pub mod purchases_file;
mod purchases_parquet;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::info;

use crate::model::Joined;
pub use customers::{Validated, Validator};
pub use join::Truth;

/// Extract inputs, built from `Settings`.
#[derive(Clone, Debug)]
pub struct ExtractOpts {
    /// Read purchases from this CSV/Parquet file instead of the API.
    pub purchases_file: Option<PathBuf>,
    pub api_url: String,
    pub batch_size: usize,
    pub workers: usize,
    pub max_attempts: u32,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Longest a batch may take, retries included, before the run fails
    /// naming it (a dead upstream must not hold a run for minutes).
    pub batch_deadline: Duration,
    /// Extra request headers (`Authorization`, …); values are secrets.
    pub headers: Vec<(String, String)>,
    /// The customers' shard: a purchases file row of another shard's
    /// mobile is skipped, not counted as unmatched.
    pub shard: crate::shard::Shard,
    /// Spill purchases to a temporary spool (memory flat in purchases).
    pub spool: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}")]
    Csv {
        path: String,
        line: u64,
        #[source]
        source: csv::Error,
    },
    #[error("{path}:{line}: {message}")]
    Structural {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}:{line}: {message}")]
    Truth {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("invalid api url `{url}`: {message}")]
    ApiUrl { url: String, message: String },
    #[error(
        "batch {index} ({mobiles} mobiles from `{first}`) failed after {attempts} attempts at {url}"
    )]
    Batch {
        index: usize,
        mobiles: usize,
        first: String,
        attempts: u32,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot spill purchases to the temporary directory (TMPDIR)")]
    Spool(#[source] std::io::Error),
}

/// Fetch purchases for validated customers and join them (and the truth).
pub fn extract(
    validated: Validated,
    truth: Option<&Truth>,
    opts: &ExtractOpts,
) -> Result<Joined, Error> {
    let started = Instant::now();
    info!(
        message = "Fetching purchases.",
        customers = validated.customers.len(),
        batch_size = opts.batch_size,
        workers = opts.workers
    );
    let fetched = match &opts.purchases_file {
        Some(path) => purchases_file::read(path, &validated.customers, opts.shard, opts.spool)?,
        None => client::fetch(&validated.customers, opts)?,
    };
    info!(
        message = "Fetched purchases.",
        purchases = fetched.purchases.len() as u64
            + fetched
                .spool
                .as_ref()
                .map_or(0, crate::spool::Spool::pushed),
        requests = fetched.requests,
        retries = fetched.retries,
        splits = fetched.splits,
        unmatched = fetched.unmatched,
        elapsed_ms = started.elapsed().as_millis() as u64
    );
    let mut fetched = fetched;
    let spool = fetched
        .spool
        .take()
        .map(|s| s.finish().map(std::sync::Arc::new))
        .transpose()
        .map_err(Error::Spool)?;
    Ok(join::assemble(validated, fetched, truth, spool))
}
