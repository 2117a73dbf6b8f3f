//! Shells of the sharded step subcommands (DESIGN §8): `features`, `fit`,
//! `assign`. Like `commands`, nothing here computes: each reads its inputs,
//! calls one function of `transform::steps` and writes its outputs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;

use crate::checkpoint::{self, Error as CkError};
use crate::cli::{AssignArgs, FeaturesArgs, FitArgs};
use crate::commands::out;
use crate::config::Settings;
use crate::error::Error;
use crate::interchange::{self, FEATURES};
use crate::opts::transform_opts;
use crate::report_tables::{
    CUSTOMER_BEHAVIOR_METRICS, CUSTOMER_PURCHASE_TRENDS, CUSTOMER_SEGMENTS, CUSTOMER_STORE_SUMMARY,
    SEGMENT_METRICS, SEGMENT_TRANSITIONS,
};
use crate::shard::Shard;
use crate::summary;
use crate::transform::steps;

/// The file in an extract checkpoint that records its shard.
const SHARD_FILE: &str = "shard.txt";

/// Record `shard` in an extract checkpoint (`features` reads it back).
pub fn record_shard(dir: &Path, shard: Shard) -> Result<(), CkError> {
    let path = dir.join(SHARD_FILE);
    std::fs::write(&path, format!("{shard}\n")).map_err(|source| CkError::Write { path, source })
}

fn recorded_shard(dir: &Path) -> Result<Shard, CkError> {
    let path = dir.join(SHARD_FILE);
    match std::fs::read_to_string(&path) {
        // An extract without --shard is the whole population.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Shard::WHOLE),
        Err(source) => Err(CkError::Open { path, source }),
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|message| CkError::Shard { path, message }),
    }
}

/// A `--shard` given to a later step must be the one its input was made for.
fn check_shard(path: &Path, recorded: Shard, given: Option<Shard>) -> Result<(), CkError> {
    match given {
        Some(g) if g != recorded => Err(CkError::Shard {
            path: path.to_owned(),
            message: format!("holds shard {recorded}, not --shard {g}"),
        }),
        _ => Ok(()),
    }
}

pub fn features_cmd(s: &Settings, a: &FeaturesArgs) -> Result<(), Error> {
    let started = Instant::now();
    let shard = recorded_shard(&a.input)?;
    check_shard(&a.input, shard, a.shard)?;
    let joined = checkpoint::read_joined(&a.input)?;
    let (features, report, quality) = steps::features(joined, shard, s.as_of());
    interchange::write_features(&a.out.join(FEATURES), &features)?;
    checkpoint::write_tables(
        &a.out,
        &report,
        &[&CUSTOMER_STORE_SUMMARY, &CUSTOMER_PURCHASE_TRENDS],
    )?;
    checkpoint::write_quality_file(&a.out, &quality)?;
    let customers = features.customers.len();
    finish(
        a.json,
        serde_json::json!({
            "stage": "features",
            "shard": shard.to_string(),
            "customers": customers,
            "store_rows": report.stores.len(),
            "trend_rows": report.trends.len(),
            "seconds": started.elapsed().as_secs_f64(),
            "peak_rss_mib": summary::peak_rss_mib(),
            "out": a.out,
        }),
        format!(
            "shard {shard}: {customers} customers, {} store rows, {} trend rows; wrote {} in {:.2}s\n",
            report.stores.len(),
            report.trends.len(),
            a.out.display(),
            started.elapsed().as_secs_f64()
        ),
    )
}

pub fn fit_cmd(s: &Settings, a: &FitArgs) -> Result<(), Error> {
    let started = Instant::now();
    let mut shards = Vec::new();
    let mut quality = Vec::new();
    for dir in &a.input {
        shards.push(interchange::read_features(&dir.join(FEATURES))?);
        quality.push(checkpoint::read_quality_file(dir)?);
    }
    check_cover(&a.input, &shards)?;
    let customers: usize = shards.iter().map(|s| s.customers.len()).sum();
    let opts = transform_opts(s, s.as_of(), Utc::now());
    let (report, assignments) = steps::fit(shards, quality, &opts)?;
    checkpoint::write_tables(&a.out, &report, &[&SEGMENT_METRICS, &SEGMENT_TRANSITIONS])?;
    checkpoint::write_model_and_quality(&a.out, &report)?;
    for (shard, rows) in &assignments {
        interchange::write_assignments(
            &a.out.join(interchange::assignments_name(*shard)),
            *shard,
            rows,
        )?;
    }
    finish(
        a.json,
        serde_json::json!({
            "stage": "fit",
            "shards": assignments.len(),
            "customers": customers,
            "seconds": started.elapsed().as_secs_f64(),
            "peak_rss_mib": summary::peak_rss_mib(),
            "out": a.out,
            "report": summary::ReportFacts::of(&report),
        }),
        format!(
            "fit on {} shards, {customers} customers\n{}wrote {} in {:.2}s\n",
            assignments.len(),
            summary::describe_report(&report),
            a.out.display(),
            started.elapsed().as_secs_f64()
        ),
    )
}

/// Every shard of one run exactly once: `0/N` … `N-1/N`.
fn check_cover(inputs: &[PathBuf], shards: &[interchange::ShardFeatures]) -> Result<(), CkError> {
    let ids: Vec<Shard> = shards
        .iter()
        .map(|s| s.shard.unwrap_or(Shard::WHOLE))
        .collect();
    let count = ids.first().map_or(1, |s| s.count);
    for (i, id) in ids.iter().enumerate() {
        let path = inputs[i].join(FEATURES);
        if id.count != count {
            return Err(CkError::Shard {
                path,
                message: format!("is shard {id}, but the first input is of {count} shards"),
            });
        }
        if ids[..i].contains(id) {
            return Err(CkError::Shard {
                path,
                message: format!("shard {id} is given twice"),
            });
        }
    }
    if let Some(missing) = (0..count).find(|&i| !ids.iter().any(|s| s.index == i)) {
        return Err(CkError::Shard {
            path: inputs.first().cloned().unwrap_or_default(),
            message: format!(
                "shard {missing}/{count} is missing: fit needs every shard's features"
            ),
        });
    }
    Ok(())
}

pub fn assign_cmd(a: &AssignArgs) -> Result<(), Error> {
    let started = Instant::now();
    let features_path = a.input.join(FEATURES);
    let features = interchange::read_features(&features_path)?;
    let shard = features.shard.unwrap_or(Shard::WHOLE);
    check_shard(&features_path, shard, a.shard)?;
    let path = a.model.join(interchange::assignments_name(shard));
    let (recorded, rows) = interchange::read_assignments(&path)?;
    check_shard(&path, recorded, Some(shard))?;
    let model = checkpoint::read_model(&a.model)?;
    let report = steps::assign(features, &rows, &model)
        .map_err(|message| CkError::Shard { path, message })?;
    checkpoint::write_tables(
        &a.out,
        &report,
        &[&CUSTOMER_SEGMENTS, &CUSTOMER_BEHAVIOR_METRICS],
    )?;
    finish(
        a.json,
        serde_json::json!({
            "stage": "assign",
            "shard": shard.to_string(),
            "customers": report.customers.len(),
            "seconds": started.elapsed().as_secs_f64(),
            "peak_rss_mib": summary::peak_rss_mib(),
            "out": a.out,
        }),
        format!(
            "shard {shard}: {} customers assigned; wrote {} in {:.2}s\n",
            report.customers.len(),
            a.out.display(),
            started.elapsed().as_secs_f64()
        ),
    )
}

/// A sharded load must hold every shard once: the fit's segment_metrics
/// counts every customer, so the customer rows must add up to it.
pub fn check_complete(inputs: &[PathBuf], report: &crate::model::Report) -> Result<(), CkError> {
    let counted: u64 = report.segments.iter().map(|s| s.num_customers).sum();
    let rows = report.customers.len() as u64;
    if counted != rows {
        return Err(CkError::Shard {
            path: inputs.first().cloned().unwrap_or_default(),
            message: format!(
                "segment_metrics counts {counted} customers but the inputs hold {rows} \
                 customer_segments rows: give load the fit directory and every shard's \
                 features and assign directories, each once"
            ),
        });
    }
    Ok(())
}

fn finish(json: bool, doc: serde_json::Value, text: String) -> Result<(), Error> {
    if json {
        out(&summary::to_json(&doc))
    } else {
        out(&text)
    }
}
