//! `run`: every stage in one process, no CSV in between.
//!
//! Generated rows go straight into the validator, the mock API listens on
//! an ephemeral loopback port, and the `Joined` is dropped before load so
//! purchases and report tables are not both held at the peak. With
//! `--checkpoint-dir` each stage also writes the files its subcommand
//! writes, so a `run` can be inspected or resumed step by step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use tracing::info;

use crate::api;
use crate::checkpoint;
use crate::config::Settings;
use crate::error::Error;
use crate::extract::{self, Validator, customers};
use crate::generate::{self, HEADER};
use crate::load::{self, Target};
use crate::opts::{api_opts, extract_opts, generate_opts, load_opts, transform_opts};
use crate::summary::{
    ReportFacts, RunSummary, StageTiming, default_report_path, peak_rss_mib, rss_mib,
};
use crate::transform;

/// Run every stage with these settings.
pub fn run(s: &Settings) -> Result<RunSummary, Error> {
    let started_at = Utc::now();
    let as_of = s.as_of();
    let target = Target::parse(&s.database_url)?;
    load::preflight(&target)?;
    let ckpt = s.run.checkpoint_dir.as_deref();
    let mut stages = Vec::new();

    // generate → validated customers (+ truth), in memory unless checkpointing;
    // or the user's own customers file.
    let t = Instant::now();
    let gen_opts = generate_opts(s);
    let (validated, truth) = match (&s.customers_file, ckpt) {
        (Some(path), _) => {
            let truth_path = generate::truth_path(path);
            let truth = if truth_path.exists() {
                extract::join::read_truth(&truth_path)?
            } else {
                HashMap::new()
            };
            (customers::read_csv(path)?, truth)
        }
        (None, Some(dir)) => {
            let path = dir.join("generate").join("customers.csv");
            generate::write(&gen_opts, &path)?;
            let truth = extract::join::read_truth(&generate::truth_path(&path))?;
            (customers::read_csv(&path)?, truth)
        }
        (None, None) => {
            let header: Vec<String> = HEADER.iter().map(|h| (*h).to_owned()).collect();
            let mut v = Validator::new("generated customers", &header)?;
            // Each kept customer's persona beside it: one byte a customer,
            // where a map by mobile took ~28 (issue 11). A generated mobile
            // is new exactly when the row carries its truth.
            let mut aligned = Vec::new();
            for (i, row) in generate::customers(&gen_opts).enumerate() {
                let kept = v.kept();
                // Line numbers as in the CSV `generate` writes (header = 1).
                v.push(i as u64 + 2, &row.fields);
                if v.kept() > kept {
                    aligned.push(row.truth.as_ref().map(|(_, p)| *p));
                }
            }
            let mut validated = v.finish();
            validated.truth = Some(aligned);
            (validated, HashMap::new())
        }
    };
    let customers_from = match &s.customers_file {
        Some(path) => format!("customers from {}", path.display()),
        None => format!("{} generated customers", gen_opts.customers),
    };
    stages.push(StageTiming {
        stage: if s.customers_file.is_some() {
            "customers"
        } else {
            "generate"
        },
        seconds: t.elapsed().as_secs_f64(),
        rows: validated.rows_read,
        peak_rss_mib: peak_rss_mib(),
        note: match &s.customers_file {
            Some(_) => customers_from.clone(),
            None => format!("{} customers, seed {}", gen_opts.customers, s.seed),
        },
    });

    // extract: from --purchases, against --api-url, or the in-process mock
    // on 127.0.0.1:0.
    let t = Instant::now();
    let server = match (&s.api_url, &s.purchases_file) {
        (None, None) => Some(api::Server::start(&api_opts(s, as_of, "127.0.0.1:0"))?),
        _ => None,
    };
    let api_url = match &server {
        Some(server) => server.url(),
        None => s.api_url.clone().unwrap_or_default(),
    };
    let purchases_from = match (&s.purchases_file, &s.api_url) {
        (Some(path), _) => path.display().to_string(),
        (None, Some(_)) => crate::secret::mask_url(&api_url),
        (None, None) => "in-process mock API".to_owned(),
    };
    info!(message = "Extracting.", purchases_from = %purchases_from);
    if let Some(dir) = ckpt {
        checkpoint::write_rejects(&dir.join("extract"), &validated.header, &validated.rejects)?;
    }
    let rows_read = validated.rows_read;
    // Purchases go to a disk spool, so memory grows with customers only
    // (DESIGN §8). Checkpoints and holdout splits read purchases whole, so
    // they keep them in memory.
    let opts = extract::ExtractOpts {
        spool: ckpt.is_none() && s.transform.holdout_from.is_none(),
        ..extract_opts(s, &api_url)
    };
    // No truth file (the user's own customers): nothing to score against.
    let extracted = extract::extract(validated, (!truth.is_empty()).then_some(&truth), &opts);
    // Extract put each customer's persona beside it; a map read from a truth
    // file (a million entries, ~40 MiB) would otherwise live through
    // transform and load.
    drop(truth);
    let server_used = server.is_some();
    if let Some(server) = server {
        server.shutdown();
    }
    let joined = extracted?;
    if let Some(dir) = ckpt {
        checkpoint::write_joined(&dir.join("extract"), &joined)?;
    }
    stages.push(StageTiming {
        stage: "extract",
        seconds: t.elapsed().as_secs_f64(),
        rows: purchase_count(&joined),
        peak_rss_mib: peak_rss_mib(),
        note: format!(
            "{rows_read} rows: {} customers, {} rejected, {} duplicates dropped; purchases from {}",
            joined.customers.len(),
            joined.rejects.len(),
            joined.quality.get("duplicate_customers_dropped"),
            purchases_from
        ),
    });

    // transform
    tracing::debug!(
        message = "Memory before transform.",
        rss_mib = rss_mib(),
        peak_mib = peak_rss_mib()
    );
    let t = Instant::now();
    let purchases = purchase_count(&joined);
    let spin = crate::progress::spinner("transform");
    let report = transform::transform(joined, &transform_opts(s, as_of, started_at));
    spin.finish_and_clear();
    let report = report?;
    tracing::debug!(
        message = "Memory after transform.",
        rss_mib = rss_mib(),
        peak_mib = peak_rss_mib()
    );
    if let Some(dir) = ckpt {
        checkpoint::write_report(&dir.join("transform"), &report)?;
    }
    stages.push(StageTiming {
        stage: "transform",
        seconds: t.elapsed().as_secs_f64(),
        rows: purchases,
        peak_rss_mib: peak_rss_mib(),
        note: format!("{} segments, as of {as_of}", report.segments.len()),
    });

    // The second line of defence: broken input never replaces good tables.
    crate::quality_gate::check(&report, &crate::opts::quality_gates(s))?;

    // load
    let t = Instant::now();
    let spin = crate::progress::spinner("load");
    let loaded = load::load(&report, &target, &load_opts(s));
    spin.finish_and_clear();
    let loaded = loaded?;
    stages.push(StageTiming {
        stage: "load",
        seconds: t.elapsed().as_secs_f64(),
        rows: loaded.rows.values().sum(),
        peak_rss_mib: peak_rss_mib(),
        note: loaded
            .rows
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    });

    // The HTML report (DESIGN §7), beside the tables unless told otherwise.
    let report_path = match s.run.report.as_deref() {
        Some("none") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => Some(default_report_path(&loaded.destination)),
    };
    let source = match &s.customers_file {
        None => format!(
            "{} generated customers (seed {}); purchases from {purchases_from}",
            gen_opts.customers, s.seed
        ),
        Some(_) => format!("{customers_from}; purchases from {purchases_from}"),
    };
    if let Some(path) = &report_path {
        let t = Instant::now();
        crate::report::write(
            path,
            &report,
            &crate::report::Context {
                source: Some(source),
                stages: &stages,
                destination: Some(loaded.destination.clone()),
            },
        )?;
        info!(
            message = "Wrote the report.",
            path = %path.display(),
            elapsed_ms = t.elapsed().as_millis() as u64
        );
    }

    Ok(RunSummary {
        header: match &s.customers_file {
            None => format!(
                "segpipe run {}: {} customers, seed {}, as of {as_of}",
                report.model.run_id, gen_opts.customers, s.seed
            ),
            Some(_) => format!(
                "segpipe run {}: {customers_from}, purchases from {purchases_from}, as of {as_of}{}",
                report.model.run_id,
                if server_used {
                    ""
                } else {
                    " (nothing synthetic)"
                }
            ),
        },
        customers_requested: gen_opts.customers,
        total_seconds: stages.iter().map(|t| t.seconds).sum(),
        stages,
        facts: ReportFacts::of(&report),
        destination: loaded.destination,
        report_path,
        checkpoint_dir: ckpt.map(Path::to_path_buf),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Purchases extracted, in memory or spooled.
fn purchase_count(joined: &crate::model::Joined) -> u64 {
    joined.purchases.len() as u64 + joined.spool.as_ref().map_or(0, |s| s.len())
}
