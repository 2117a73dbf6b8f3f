//! Settings → stage options: the one place that turns configuration into
//! each stage's `XxxOpts`, so stages never see `Settings` or clap types.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::api::{self, ApiOpts};
use crate::config::Settings;
use crate::extract::ExtractOpts;
use crate::generate::{self, GenerateOpts};
use crate::load::LoadOpts;
use crate::transform::TransformOpts;

pub fn generate_opts(s: &Settings) -> GenerateOpts {
    let g = &s.generate;
    GenerateOpts {
        customers: g.customers,
        seed: s.seed,
        dirt: generate::Dirt {
            duplicate_rate: g.duplicate_rate,
            missing_age_rate: g.missing_age_rate,
            missing_income_rate: g.missing_income_rate,
            malformed_mobile_rate: g.malformed_mobile_rate,
        },
    }
}

pub fn api_opts(s: &Settings, as_of: NaiveDate, bind: &str) -> ApiOpts {
    let a = &s.api;
    ApiOpts {
        bind: bind.to_owned(),
        seed: s.seed,
        as_of,
        max_mobiles: a.max_mobiles,
        fail_rate: a.fail_rate,
        latency_ms: a.latency_ms,
        threads: a.threads,
        dirt: api::Dirt {
            null_date_rate: a.null_date_rate,
            dmy_date_rate: a.dmy_date_rate,
            null_amount_rate: a.null_amount_rate,
            null_store_rate: a.null_store_rate,
            duplicate_purchase_rate: a.duplicate_purchase_rate,
        },
        limits: api::Limits::default(),
    }
}

pub fn extract_opts(s: &Settings, api_url: &str) -> ExtractOpts {
    let e = &s.extract;
    ExtractOpts {
        purchases_file: s.purchases_file.clone(),
        api_url: api_url.to_owned(),
        batch_size: e.batch_size,
        workers: e.workers,
        max_attempts: e.max_attempts,
        connect_timeout: Duration::from_millis(e.connect_timeout_ms),
        read_timeout: Duration::from_millis(e.read_timeout_ms),
        backoff_base: Duration::from_millis(e.backoff_base_ms),
        backoff_max: Duration::from_millis(e.backoff_max_ms),
        batch_deadline: Duration::from_millis(e.batch_deadline_ms),
        headers: s.api_headers(),
        shard: crate::shard::Shard::WHOLE,
        spool: false,
    }
}

pub fn transform_opts(s: &Settings, as_of: NaiveDate, started_at: DateTime<Utc>) -> TransformOpts {
    let t = &s.transform;
    TransformOpts {
        as_of,
        seed: s.seed,
        k: t.k,
        k_min: t.k_min,
        k_max: t.k_max,
        features: t.features.clone(),
        log1p: t.log1p,
        restarts: t.restarts,
        max_iter: t.max_iter,
        silhouette_sample: t.silhouette_sample,
        run_id: run_id(started_at, s.seed),
        started_at,
        method: t.method,
        model: t.model.clone(),
        previous_model: t.previous_model.clone(),
        holdout_from: t.holdout_from,
    }
}

/// A run id that sorts by time and differs between runs in the same second.
pub fn run_id(at: DateTime<Utc>, seed: u64) -> String {
    let salt = crate::rng::hash(&[
        &at.timestamp_nanos_opt().unwrap_or_default().to_le_bytes(),
        &seed.to_le_bytes(),
        &std::process::id().to_le_bytes(),
    ]);
    format!("{}-{:08x}", at.format("%Y%m%dT%H%M%SZ"), salt as u32)
}

/// Load options of the subcommands (the failure hook in [`LoadOpts`] is
/// set by tests calling the library only).
pub fn load_opts(s: &Settings) -> LoadOpts {
    LoadOpts {
        mode: s.load.mode,
        lock_timeout: Duration::from_millis(s.load.lock_timeout_ms),
        ..LoadOpts::default()
    }
}

/// The data-quality gates checked before a load.
pub fn quality_gates(s: &Settings) -> crate::quality_gate::Gates {
    crate::quality_gate::Gates {
        max_rejected_rows: s.quality.max_rejected_rows,
        max_unparseable_dates: s.quality.max_unparseable_dates,
        max_no_purchases: s.quality.max_no_purchases,
    }
}
