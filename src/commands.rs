//! Subcommand shells: flags → settings → stage opts → stage fn → files.
//!
//! Nothing here computes: each arm reads a checkpoint, calls one stage
//! function and writes the next checkpoint (or, for `run`, hands over to
//! `pipeline`). Results go to stdout, logs to stderr.

use std::io::Write;
use std::time::Instant;

use chrono::Utc;
use tracing::info;

use crate::api;
use crate::checkpoint;
use crate::cli::{AsOfArg, Cli, Command, SeedArg, UpstreamArgs};
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
    let settings = Settings::load(cli.global.config.as_deref(), overrides(&cli.command))?;
    match cli.command {
        Command::Config(_) => out(&settings.to_masked_toml()),
        Command::Generate(_) => generate_cmd(&settings),
        Command::ServeApi(_) => Ok(api::serve(&api_opts(
            &settings,
            settings.as_of(),
            &settings.api.bind,
        ))?),
        Command::Extract(_) => extract_cmd(&settings),
        Command::Transform(_) => transform_cmd(&settings),
        Command::Load(_) => load_cmd(&settings),
        Command::Run(_) => {
            let summary = pipeline::run(&settings)?;
            out(&summary.render())
        }
    }
}

/// Write results to stdout; a closed pipe is reported as such (exit 0).
fn out(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(Error::Stdout)
}

fn upstream(o: &mut Vec<Override>, a: &UpstreamArgs) {
    flag(o, "api_url", a.api_url.clone());
    if !a.api_headers.is_empty() {
        flag(o, "api_headers", Some(a.api_headers.clone()));
    }
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
        }
        Command::Load(a) => {
            path_flag(&mut o, "run.load_input", a.input.as_ref());
            flag(&mut o, "database_url", a.database_url.clone());
            flag(&mut o, "load.mode", a.load_mode.clone());
        }
        Command::Run(a) => {
            flag(&mut o, "generate.customers", a.customers);
            seed(&mut o, &a.seed);
            as_of(&mut o, &a.as_of);
            flag(&mut o, "transform.k", a.k.clone());
            upstream(&mut o, &a.upstream);
            flag(&mut o, "database_url", a.database_url.clone());
            flag(&mut o, "load.mode", a.load_mode.clone());
            path_flag(&mut o, "run.checkpoint_dir", a.checkpoint_dir.as_ref());
        }
        Command::Config(_) => {}
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

fn extract_cmd(s: &Settings) -> Result<(), Error> {
    let started = Instant::now();
    let Some(api_url) = s.api_url.as_deref() else {
        return Err(crate::config::Error::Value {
            key: "api_url",
            message: "extract needs --api-url (or SEGPIPE_API_URL / api_url in segpipe.toml)"
                .to_owned(),
        }
        .into());
    };
    let validated = customers::read_csv(&s.extract.customers)?;
    let dir = &s.extract.out;
    // Rejects are written first: they are kept even if the API fails later.
    checkpoint::write_rejects(dir, &validated.header, &validated.rejects)?;
    let truth = truth_for(s)?;
    let rows = validated.rows_read;
    let joined = extract::extract(validated, truth.as_ref(), &extract_opts(s, api_url))?;
    checkpoint::write_joined(dir, &joined)?;
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

fn transform_cmd(s: &Settings) -> Result<(), Error> {
    let started = Instant::now();
    let joined = checkpoint::read_joined(&s.transform.input)?;
    let report = transform::transform(joined, &transform_opts(s, s.as_of(), Utc::now()))?;
    checkpoint::write_report(&s.transform.out, &report)?;
    out(&format!(
        "{}wrote {} in {:.2}s\n",
        summary::describe_report(&report),
        s.transform.out.display(),
        started.elapsed().as_secs_f64()
    ))
}

fn load_cmd(s: &Settings) -> Result<(), Error> {
    let started = Instant::now();
    let report = checkpoint::read_report(&s.run.load_input)?;
    let target = Target::parse(&s.database_url)?;
    let summary = load::load(&report, &target, &load_opts(s))?;
    let rows: u64 = summary.rows.values().sum();
    out(&format!(
        "loaded {rows} rows into {} in {:.2}s\n",
        summary.destination,
        started.elapsed().as_secs_f64()
    ))
}
