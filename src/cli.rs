//! Command-line surface (clap derive). Clap types stop here: `config.rs`
//! turns them into `Settings`, and stages never see them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::shard::Shard;

/// Customer segmentation pipeline: generate, extract, transform, load.
#[derive(Debug, Parser)]
#[command(name = "segpipe", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (default: ./segpipe.toml when present)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More log detail on stderr (-v info, -vv debug, -vvv trace); without -v, RUST_LOG (`info`, `segpipe::load=debug`) sets it
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a synthetic customers CSV (with dirt) and its ground-truth file
    Generate(GenerateArgs),
    /// Serve the mock purchase-history API until Ctrl-C or SIGTERM
    ServeApi(ServeApiArgs),
    /// Validate customers, fetch their purchases over HTTP, write the checkpoint
    Extract(ExtractArgs),
    /// Clean, engineer features, segment with KMeans and aggregate the reports
    Transform(TransformArgs),
    /// Sharded step: one shard's purchases → its features (Parquet) and its
    /// store and trend tables
    Features(FeaturesArgs),
    /// Sharded step: fit on every shard's features, exactly as one process
    /// would; writes the model and each shard's assignments
    Fit(FitArgs),
    /// Sharded step: one shard's customer tables from its features and the fit
    Assign(AssignArgs),
    /// Write the report tables to PostgreSQL or SQLite in one transaction
    Load(LoadArgs),
    /// Run every stage in one process (mock API in-process unless --api-url)
    Run(RunArgs),
    /// Print the effective configuration (secrets masked)
    Config(ConfigArgs),
    /// Write the HTML report (one self-contained file) from a transform checkpoint
    Report(ReportArgs),
    /// Print a shell completion script to stdout
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout
    Man(ManArgs),
}

/// Seed shared by generator, mock API and KMeans.
#[derive(Debug, Args, Default)]
pub struct SeedArg {
    /// Random seed (default: 42)
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
}

/// Reference date for purchase dates and recency.
#[derive(Debug, Args, Default)]
pub struct AsOfArg {
    /// As-of date, YYYY-MM-DD (default: today, UTC)
    #[arg(long, value_name = "DATE", value_parser = parse_as_of)]
    pub as_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of distinct customers (default: 10000)
    #[arg(long, value_name = "N")]
    pub customers: Option<u64>,
    #[command(flatten)]
    pub seed: SeedArg,
    /// Output CSV; the truth file goes to `<out>.truth.csv` (default: data/customers.csv)
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Share of extra rows repeating an earlier customer (default: 0.05)
    #[arg(long, value_name = "RATE")]
    pub duplicate_rate: Option<f64>,
    /// Share of rows with a missing age (default: 0.10)
    #[arg(long, value_name = "RATE")]
    pub missing_age_rate: Option<f64>,
    /// Share of rows with a missing income (default: 0.02)
    #[arg(long, value_name = "RATE")]
    pub missing_income_rate: Option<f64>,
    /// Share of rows with a malformed mobile (default: 0.01)
    #[arg(long, value_name = "RATE")]
    pub malformed_mobile_rate: Option<f64>,
}

#[derive(Debug, Args)]
pub struct ServeApiArgs {
    /// Address to listen on (default: 127.0.0.1:8000)
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    #[command(flatten)]
    pub seed: SeedArg,
    #[command(flatten)]
    pub as_of: AsOfArg,
    /// Answer 503 to this fraction of requests (default: 0)
    #[arg(long, value_name = "R")]
    pub fail_rate: Option<f64>,
    /// Delay every answer by this many milliseconds (default: 0)
    #[arg(long, value_name = "L")]
    pub latency_ms: Option<u64>,
    /// Most mobiles accepted in one request (413 above) (default: 10000)
    #[arg(long, value_name = "N")]
    pub max_mobiles: Option<usize>,
    /// Worker threads (default: number of CPUs, at least 2)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Customers CSV to read (default: data/customers.csv)
    #[arg(long, value_name = "FILE")]
    pub customers: Option<PathBuf>,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// Checkpoint directory to write (default: out/extract)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Ground-truth file (default: `<customers>.truth.csv` when present)
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Mobiles per request (default: 1000)
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Concurrent HTTP workers (default: 4)
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Attempts per batch before giving up (default: 8)
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Keep only shard I of N (0-based), by a stable hash of the mobile
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Print the results as one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// The shard's extract checkpoint directory
    #[arg(long, value_name = "DIR")]
    pub input: PathBuf,
    /// Directory to write (features.parquet, store and trend tables)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The shard, checked against the one the extract recorded
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    #[command(flatten)]
    pub as_of: AsOfArg,
    /// Print the results as one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    /// A shard's features directory (repeat for every shard)
    #[arg(long, value_name = "DIR", required = true)]
    pub input: Vec<PathBuf>,
    /// Directory to write (model, segment_metrics, assignments per shard)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of KMeans segments, or `auto` (default: auto)
    #[arg(long, value_name = "auto|N")]
    pub k: Option<String>,
    #[command(flatten)]
    pub as_of: AsOfArg,
    #[command(flatten)]
    pub seed: SeedArg,
    /// `kmeans` (default) or `rfm`
    #[arg(long, value_name = "kmeans|rfm")]
    pub method: Option<String>,
    /// Keep the segment ids and labels of this segment_model.json
    #[arg(long, value_name = "FILE")]
    pub previous_model: Option<PathBuf>,
    /// Print the results as one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AssignArgs {
    /// The fit's output directory
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The shard's features directory
    #[arg(long, value_name = "DIR")]
    pub input: PathBuf,
    /// Directory to write (customer_segments, customer_behavior_metrics)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The shard, checked against the one its features recorded
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Print the results as one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

/// Where purchases come from: a file, or an HTTP API.
#[derive(Debug, Args)]
pub struct UpstreamArgs {
    /// Read purchases from this CSV or Parquet (`.parquet`) file instead of
    /// an API: columns mobile, date, amount, store and optional order_id
    #[arg(long, value_name = "FILE", conflicts_with = "api_url")]
    pub purchases: Option<PathBuf>,
    /// Base URL of the purchase API, e.g. http://127.0.0.1:8000 (`run`
    /// starts an in-process mock when neither this nor a file is given)
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// Header sent with every API request, e.g. 'Authorization: Bearer …'
    /// (repeatable; the value is never printed)
    #[arg(long = "api-header", value_name = "NAME: VALUE")]
    pub api_headers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TransformArgs {
    /// Extract checkpoint directory (default: out/extract)
    #[arg(long, value_name = "DIR")]
    pub input: Option<PathBuf>,
    /// Report directory to write (default: out/transform)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Number of KMeans segments, or `auto` to pick by silhouette over 2..=8 (default: auto)
    #[arg(long, value_name = "auto|N")]
    pub k: Option<String>,
    #[command(flatten)]
    pub as_of: AsOfArg,
    #[command(flatten)]
    pub seed: SeedArg,
    /// Print the results as one JSON document on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Transform report directory (default: out/transform); repeat it to
    /// load a sharded run's fit and shard directories as one report
    #[arg(long, value_name = "DIR")]
    pub input: Vec<PathBuf>,
    /// postgres://… or sqlite://PATH (default: sqlite://segpipe.db)
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Print the results as one JSON document on stdout
    #[arg(long)]
    pub json: bool,
    /// How PostgreSQL replaces the tables: `swap` (fastest; drops and
    /// re-creates them, grants carried over, refuses when a view depends on
    /// them) or `in-place` (keeps the tables, so views, grants and snapshot
    /// readers keep working). Default: swap; SQLite treats both alike
    #[arg(long, value_name = "MODE", value_parser = ["swap", "in-place"])]
    pub load_mode: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Customers: a number to generate (default: 10000), or the path of
    /// your own customers CSV (then nothing is generated)
    #[arg(long, value_name = "N|FILE")]
    pub customers: Option<String>,
    #[command(flatten)]
    pub seed: SeedArg,
    #[command(flatten)]
    pub as_of: AsOfArg,
    /// Number of KMeans segments, or `auto` (default: auto)
    #[arg(long, value_name = "auto|N")]
    pub k: Option<String>,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// postgres://… or sqlite://PATH (default: sqlite://segpipe.db)
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// How PostgreSQL replaces the tables: `swap` (fastest; drops and
    /// re-creates them, grants carried over, refuses when a view depends on
    /// them) or `in-place` (keeps the tables, so views, grants and snapshot
    /// readers keep working). Default: swap; SQLite treats both alike
    #[arg(long, value_name = "MODE", value_parser = ["swap", "in-place"])]
    pub load_mode: Option<String>,
    /// Also write every stage's checkpoint files under DIR
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// HTML report to write, or `none` (default: segpipe-report.html beside
    /// the SQLite file, else in the current directory)
    #[arg(long, value_name = "FILE|none")]
    pub report: Option<String>,
    /// Print the results as one JSON document on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// How segments are made, kept and validated (transform and run).
#[derive(Debug, Args, Default)]
pub struct ModelArgs {
    /// `kmeans` (default) or `rfm`: the standard named RFM segments
    #[arg(long, value_name = "kmeans|rfm")]
    pub method: Option<String>,
    /// Assign segments with this saved segment_model.json and fit nothing
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Refit, keeping the segment ids and labels of this segment_model.json,
    /// and report the customers' moves from it
    #[arg(long, value_name = "FILE")]
    pub previous_model: Option<PathBuf>,
    /// Fit on purchases before DATE (YYYY-MM-DD) and score the segments on
    /// the purchases from DATE to the as-of date
    #[arg(long, value_name = "DATE")]
    pub holdout_from: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Transform report directory (default: out/transform)
    #[arg(long, value_name = "DIR")]
    pub input: Option<PathBuf>,
    /// HTML file to write (default: segpipe-report.html)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {}

impl Command {
    /// Whether `--json` was given (run, extract, transform, load).
    pub fn json(&self) -> bool {
        match self {
            Command::Extract(a) => a.json,
            Command::Transform(a) => a.json,
            Command::Load(a) => a.json,
            Command::Features(a) => a.json,
            Command::Fit(a) => a.json,
            Command::Assign(a) => a.json,
            Command::Run(a) => a.json,
            _ => false,
        }
    }
}

/// `--as-of` must be `YYYY-MM-DD`; say so instead of a parser's complaint.
fn parse_as_of(raw: &str) -> Result<String, String> {
    match chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
        Ok(d) => Ok(d.format("%Y-%m-%d").to_string()),
        Err(_) => Err(format!(
            "`{raw}` is not a date in the form YYYY-MM-DD (e.g. 2026-11-24)"
        )),
    }
}
