//! Transform: clean → features → scale → cluster → aggregate (DESIGN §4).
//! STUB: being built in the transform worktree.

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::KChoice;
use crate::model::{Joined, Report};

/// Transform inputs, built from `Settings`.
#[derive(Clone, Debug)]
pub struct TransformOpts {
    pub as_of: NaiveDate,
    pub seed: u64,
    pub k: KChoice,
    pub k_min: u32,
    pub k_max: u32,
    /// Features fed to KMeans; empty = the measured default.
    pub features: Vec<String>,
    pub log1p: bool,
    pub restarts: u32,
    pub max_iter: u32,
    pub silhouette_sample: usize,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no valid customers to segment")]
    NoCustomers,
    #[error("invalid feature selection: {message}")]
    Features { message: String },
}

pub fn transform(joined: &Joined, opts: &TransformOpts) -> Result<Report, Error> {
    let _ = (joined, opts);
    Err(Error::Features {
        message: "not implemented yet".into(),
    })
}
