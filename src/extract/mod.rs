//! Extract: validate customers, fetch purchases over HTTP, join on mobile.

use std::path::PathBuf;
use std::time::Duration;

/// Extract inputs, built from `Settings`.
#[derive(Clone, Debug)]
pub struct ExtractOpts {
    pub api_url: String,
    pub batch_size: usize,
    pub workers: usize,
    pub max_attempts: u32,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
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
    #[error("{path}:1: {message}")]
    Header { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Truth { path: PathBuf, line: u64, message: String },
    #[error("invalid api url `{url}`: {message}")]
    ApiUrl { url: String, message: String },
    #[error("batch {index} ({mobiles} mobiles from `{first}`) failed after {attempts} attempts at {url}")]
    Batch {
        index: usize,
        mobiles: usize,
        first: String,
        attempts: u32,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
