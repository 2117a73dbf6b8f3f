//! Subcommand shells: flags → settings → stage opts → stage fn → files.
//!
//! Nothing here computes: each arm reads a checkpoint, calls one stage
//! function and writes the next checkpoint (or, for `run`, hands over to
//! `pipeline`). Results go to stdout, logs to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use chrono::Utc;
use tracing::info;

use crate::api;
use crate::checkpoint;
use crate::cli::{AsOfArg, Cli, Command, ModelArgs, ReportArgs, SeedArg, UpstreamArgs};
use crate::config::{Override, Settings, flag, path_flag};
use crate::error::Error;
use crate::extract::{self, customers};
use crate::generate;
use crate::load::{self, Target};
use crate::opts::{api_opts, extract_opts, generate_opts, load_opts, transform_opts};
use crate::pipeline;
use crate::summary;
use crate::transform;

/// Run the chosen subcommand.
pub fn dispatch(cli: Cli) -> Result<(), Error> {
    // Generated from the clap definitions alone: no configuration needed,
    // so a broken segpipe.toml cannot stop them.
    match &cli.command {
        Command::Completions(a) => return out(&completions(a.shell)),
        Command::Man(_) => return out(&man_page()?),
        _ => {}
    }
    let settings = Settings::load(cli.global.config.as_deref(), overrides(&cli.command))?;
    let json = cli.command.json();
    match cli.command {
        Command::Config(_) => out(&settings.to_masked_toml()),
        Command::Generate(_) => generate_cmd(&settings),
        Command::ServeApi(_) => Ok(api::serve(&api_opts(
            &settings,
            settings.as_of(),
            &settings.api.bind,
        ))?),
        Command::Extract(a) => extract_cmd(&settings, a.shard, json),
        Command::Transform(_) => transform_cmd(&settings, json),
        Command::Load(a) => load_cmd(&settings, &a.input, json),
        Command::Features(a) => crate::steps::features_cmd(&settings, &a),
        Command::Fit(a) => crate::steps::fit_cmd(&settings, &a),
        Command::Assign(a) => crate::steps::assign_cmd(&a),
        Command::Report(a) => report_cmd(&settings, &a),
        Command::Run(_) => {
            let summary = pipeline::run(&settings)?;
            let doc = summary.to_json();
            if let Some(dir) = &settings.run.checkpoint_dir {
                let path = dir.join("run_results.json");
                std::fs::write(&path, &doc)
                    .map_err(|source| checkpoint::Error::Write { path, source })?;
            }
            out(&if json { doc } else { summary.render() })
        }
        Command::Completions(_) | Command::Man(_) => Ok(()),
    }
}

/// `segpipe completions SHELL`: the script for that shell.
fn completions(shell: clap_complete::Shell) -> String {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "segpipe", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// `segpipe man`: segpipe(1) with a section per subcommand.
fn man_page() -> Result<String, Error> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut buf = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut buf).map_err(Error::Stdout)?;
    man.render_name_section(&mut buf).map_err(Error::Stdout)?;
    man.render_synopsis_section(&mut buf)
        .map_err(Error::Stdout)?;
    man.render_description_section(&mut buf)
        .map_err(Error::Stdout)?;
    man.render_options_section(&mut buf)
        .map_err(Error::Stdout)?;
    man.render_subcommands_section(&mut buf)
        .map_err(Error::Stdout)?;
    // One section per subcommand with its own options, as `git help` pages do.
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name();
        buf.extend_from_slice(format!(".SH \"SEGPIPE {}\"\n", name.to_uppercase()).as_bytes());
        let sub_man = clap_mangen::Man::new(sub.clone().bin_name(format!("segpipe {name}")));
        sub_man
            .render_synopsis_section(&mut buf)
            .map_err(Error::Stdout)?;
        sub_man
            .render_options_section(&mut buf)
            .map_err(Error::Stdout)?;
    }
    man.render_version_section(&mut buf)
        .map_err(Error::Stdout)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Write results to stdout; a closed pipe is reported as such (exit 0).
pub(crate) fn out(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(Error::Stdout)
}

fn upstream(o: &mut Vec<Override>, a: &UpstreamArgs) {
    flag(o, "api_url", a.api_url.clone());
    path_flag(o, "purchases_file", a.purchases.as_ref());
    if !a.api_headers.is_empty() {
        flag(o, "api_headers", Some(a.api_headers.clone()));
    }
}

fn model_flags(o: &mut Vec<Override>, a: &ModelArgs) {
    flag(o, "transform.method", a.method.clone());
    path_flag(o, "transform.model", a.model.as_ref());
    path_flag(o, "transform.previous_model", a.previous_model.as_ref());
    flag(o, "transform.holdout_from", a.holdout_from.clone());
}

fn overrides(cmd: &Command) -> Vec<Override> {
    let mut o = Vec::new();
    let seed = |o: &mut Vec<Override>, s: &SeedArg| flag(o, "seed", s.seed);
    let as_of = |o: &mut Vec<Override>, a: &AsOfArg| flag(o, "as_of", a.as_of.clone());
    match cmd {
        Command::Generate(a) => {
            flag(&mut o, "generate.customers", a.customers);
            seed(&mut o, &a.seed);
            path_flag(&mut o, "generate.out", a.out.as_ref());
            flag(&mut o, "generate.duplicate_rate", a.duplicate_rate);
            flag(&mut o, "generate.missing_age_rate", a.missing_age_rate);
            flag(
                &mut o,
                "generate.missing_income_rate",
                a.missing_income_rate,
            );
            flag(
                &mut o,
                "generate.malformed_mobile_rate",
                a.malformed_mobile_rate,
            );
        }
        Command::ServeApi(a) => {
            flag(&mut o, "api.bind", a.bind.clone());
            seed(&mut o, &a.seed);
            as_of(&mut o, &a.as_of);
            flag(&mut o, "api.fail_rate", a.fail_rate);
            flag(&mut o, "api.latency_ms", a.latency_ms);
            flag(&mut o, "api.max_mobiles", a.max_mobiles.map(|n| n as u64));
            flag(&mut o, "api.threads", a.threads.map(|n| n as u64));
        }
        Command::Extract(a) => {
            path_flag(&mut o, "extract.customers", a.customers.as_ref());
            upstream(&mut o, &a.upstream);
            path_flag(&mut o, "extract.out", a.out.as_ref());
            path_flag(&mut o, "extract.truth", a.truth.as_ref());
            flag(&mut o, "extract.batch_size", a.batch_size.map(|n| n as u64));
            flag(&mut o, "extract.workers", a.workers.map(|n| n as u64));
            flag(&mut o, "extract.max_attempts", a.max_attempts);
        }
        Command::Transform(a) => {
            path_flag(&mut o, "transform.input", a.input.as_ref());
            path_flag(&mut o, "transform.out", a.out.as_ref());
            flag(&mut o, "transform.k", a.k.clone());
            as_of(&mut o, &a.as_of);
            seed(&mut o, &a.seed);
            model_flags(&mut o, &a.model);
        }
        Command::Load(a) => {
            path_flag(&mut o, "run.load_input", a.input.first());
            flag(&mut o, "database_url", a.database_url.clone());
            flag(&mut o, "load.mode", a.load_mode.clone());
        }
        Command::Run(a) => {
            // `--customers 5000` generates; `--customers crm.csv` reads a file.
            match a.customers.as_deref().map(str::trim) {
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    flag(&mut o, "generate.customers", n.parse::<u64>().ok());
                }
                Some(n) if n.starts_with('-') && n[1..].bytes().all(|b| b.is_ascii_digit()) => {
                    // Let the setting's own check name the rule.
                    flag(&mut o, "generate.customers", Some(n.to_owned()));
                }
                Some(path) => flag(&mut o, "customers_file", Some(path.to_owned())),
                None => {}
            }
            seed(&mut o, &a.seed);
            as_of(&mut o, &a.as_of);
            flag(&mut o, "transform.k", a.k.clone());
            upstream(&mut o, &a.upstream);
            flag(&mut o, "database_url", a.database_url.clone());
            flag(&mut o, "load.mode", a.load_mode.clone());
            path_flag(&mut o, "run.checkpoint_dir", a.checkpoint_dir.as_ref());
            flag(&mut o, "run.report", a.report.clone());
            model_flags(&mut o, &a.model);
        }
        Command::Report(a) => {
            path_flag(&mut o, "run.load_input", a.input.as_ref());
        }
        Command::Features(a) => as_of(&mut o, &a.as_of),
        Command::Fit(a) => {
            flag(&mut o, "transform.k", a.k.clone());
            as_of(&mut o, &a.as_of);
            seed(&mut o, &a.seed);
            flag(&mut o, "transform.method", a.method.clone());
            path_flag(
                &mut o,
                "transform.previous_model",
                a.previous_model.as_ref(),
            );
        }
        Command::Assign(_) => {}
        Command::Config(_) | Command::Completions(_) | Command::Man(_) => {}
    }
    o
}

// ------------------------------------------------------------ shells

fn generate_cmd(s: &Settings) -> Result<(), Error> {
    let started = Instant::now();
    let out_path = &s.generate.out;
    let sum = generate::write(&generate_opts(s), out_path)?;
    info!(
        message = "Generated customers.",
        rows = sum.rows,
        elapsed_ms = started.elapsed().as_millis() as u64
    );
    out(&format!(
        "wrote {} rows ({} customers, {} duplicate rows, {} malformed mobiles, {} missing ages, {} missing incomes) to {} in {:.2}s\nground truth: {}\n",
        sum.rows,
        sum.customers,
        sum.duplicates,
        sum.malformed_mobiles,
        sum.missing_age,
        sum.missing_income,
        out_path.display(),
        started.elapsed().as_secs_f64(),
        generate::truth_path(out_path).display()
    ))
}

/// The truth file extract uses: the configured one, else `<stem>.truth.csv` if present.
fn truth_for(s: &Settings) -> Result<Option<extract::Truth>, Error> {
    let path = match &s.extract.truth {
        Some(p) => p.clone(),
        None => {
            let p = generate::truth_path(&s.extract.customers);
            if !p.exists() {
                return Ok(None);
            }
            p
        }
    };
    Ok(Some(extract::join::read_truth(&path)?))
}

fn extract_cmd(s: &Settings, shard: Option<crate::shard::Shard>, json: bool) -> Result<(), Error> {
    let started = Instant::now();
    if s.api_url.is_none() && s.purchases_file.is_none() {
        return Err(crate::config::Error::Value {
            key: "api_url",
            message: "extract needs --api-url URL or --purchases FILE (or api_url / purchases_file in segpipe.toml)"
                .to_owned(),
        }
        .into());
    }
    let api_url = s.api_url.as_deref().unwrap_or_default();
    let shard = shard.unwrap_or(crate::shard::Shard::WHOLE);
    let validated = customers::read_csv_shard(&s.extract.customers, shard)?;
    let dir = &s.extract.out;
    // Rejects are written first: they are kept even if the API fails later.
    checkpoint::write_rejects(dir, &validated.header, &validated.rejects)?;
    let truth = truth_for(s)?;
    let rows = validated.rows_read;
    let opts = extract::ExtractOpts {
        shard,
        ..extract_opts(s, api_url)
    };
    let joined = extract::extract(validated, truth.as_ref(), &opts)?;
    checkpoint::write_joined(dir, &joined)?;
    crate::steps::record_shard(dir, shard)?;
    if json {
        return out(&summary::to_json(&serde_json::json!({
            "stage": "extract",
            "seconds": started.elapsed().as_secs_f64(),
            "rows_read": rows,
            "customers": joined.customers.len(),
            "rejected": joined.rejects.len(),
            "duplicates_dropped": joined.quality.get("duplicate_customers_dropped"),
            "purchases": joined.purchases.len(),
            "peak_rss_mib": summary::peak_rss_mib(),
            "out": dir,
        })));
    }
    out(&format!(
        "read {rows} rows: {} customers, {} rejected, {} duplicates dropped; {} purchases; wrote {} in {:.2}s\n",
        joined.customers.len(),
        joined.rejects.len(),
        joined.quality.get("duplicate_customers_dropped"),
        joined.purchases.len(),
        dir.display(),
        started.elapsed().as_secs_f64()
    ))
}

fn transform_cmd(s: &Settings, json: bool) -> Result<(), Error> {
    let started = Instant::now();
    let joined = checkpoint::read_joined(&s.transform.input)?;
    let report = transform::transform(joined, &transform_opts(s, s.as_of(), Utc::now()))?;
    checkpoint::write_report(&s.transform.out, &report)?;
    if json {
        return out(&summary::to_json(&serde_json::json!({
            "stage": "transform",
            "seconds": started.elapsed().as_secs_f64(),
            "peak_rss_mib": summary::peak_rss_mib(),
            "out": s.transform.out,
            "report": summary::ReportFacts::of(&report),
        })));
    }
    out(&format!(
        "{}wrote {} in {:.2}s\n",
        summary::describe_report(&report),
        s.transform.out.display(),
        started.elapsed().as_secs_f64()
    ))
}

fn load_cmd(s: &Settings, inputs: &[PathBuf], json: bool) -> Result<(), Error> {
    let started = Instant::now();
    let report = if inputs.len() > 1 {
        let report = checkpoint::read_reports(inputs)?;
        crate::steps::check_complete(inputs, &report)?;
        report
    } else {
        checkpoint::read_report(&s.run.load_input)?
    };
    let target = Target::parse(&s.database_url)?;
    crate::quality_gate::check(&report, &crate::opts::quality_gates(s))?;
    let summary = load::load(&report, &target, &load_opts(s))?;
    let rows: u64 = summary.rows.values().sum();
    if json {
        return out(&summary::to_json(&serde_json::json!({
            "stage": "load",
            "seconds": started.elapsed().as_secs_f64(),
            "rows": rows,
            "tables": summary.rows,
            "peak_rss_mib": summary::peak_rss_mib(),
            "destination": summary.destination,
        })));
    }
    out(&format!(
        "loaded {rows} rows into {} in {:.2}s\n",
        summary.destination,
        started.elapsed().as_secs_f64()
    ))
}

fn report_cmd(s: &Settings, a: &ReportArgs) -> Result<(), Error> {
    let started = Instant::now();
    let input = &s.run.load_input;
    let report = checkpoint::read_report(input)?;
    let path = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("segpipe-report.html"));
    let source = format!("transform checkpoint {}", input.display());
    crate::report::write(
        &path,
        &report,
        &crate::report::Context {
            source: Some(source),
            ..Default::default()
        },
    )?;
    out(&format!(
        "wrote {} ({} customers, {} segments) in {:.2}s; open it in a browser\n",
        path.display(),
        report.customers.len(),
        report.segments.len(),
        started.elapsed().as_secs_f64()
    ))
}
