//! Settings: built-in defaults < `segpipe.toml` < `SEGPIPE_*` env < flags.
//!
//! The `config` crate layers the sources. Env vars are looked up only for
//! keys that exist (`SEGPIPE_<SECTION>_<KEY>`), so a stray `SEGPIPE_*` var
//! such as `SEGPIPE_TEST_DATABASE_URL` can never trip `deny_unknown_fields`;
//! an unknown key in the file always does.

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::load::LoadMode;
use crate::model::Method;
use crate::secret::DatabaseUrl;
use crate::transform::KChoice;

/// Why settings could not be built. Always a usage/config error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config file `{path}`")]
    File {
        path: PathBuf,
        #[source]
        source: config::ConfigError,
    },
    #[error("config file `{0}` not found")]
    Missing(PathBuf),
    #[error("invalid setting")]
    Layer(#[source] config::ConfigError),
    #[error("invalid value for `{key}`: {message}")]
    Value { key: &'static str, message: String },
    #[error("config file `{path}`: {message}")]
    FileValue { path: PathBuf, message: String },
    #[error("environment variable `{name}={value}`: {message}")]
    Env {
        name: String,
        value: String,
        message: String,
    },
}

/// Effective settings of one invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Seed for generator, mock API and KMeans.
    pub seed: u64,
    /// Reference date; unset means today (UTC), resolved when a stage starts.
    pub as_of: Option<NaiveDate>,
    /// Where `load`/`run` write: postgres://… or sqlite://PATH.
    pub database_url: DatabaseUrl,
    /// External purchase API; unset means `run` starts the in-process mock.
    pub api_url: Option<String>,
    /// Headers sent with every API request, as `"Name: value"`; values are
    /// secrets (masked in every output).
    pub api_headers: Vec<String>,
    /// Purchases from this CSV/Parquet file instead of an API.
    pub purchases_file: Option<PathBuf>,
    /// `run` reads these customers instead of generating them.
    pub customers_file: Option<PathBuf>,
    pub generate: GenerateSettings,
    pub api: ApiSettings,
    pub extract: ExtractSettings,
    pub transform: TransformSettings,
    pub load: LoadSettings,
    pub run: RunSettings,
    pub quality: QualitySettings,
}

/// `[quality]`: data-quality gates checked before any load (DESIGN §6);
/// each is the largest share (0–1) accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualitySettings {
    /// Rejected customer rows, of all rows read.
    pub max_rejected_rows: f64,
    /// Unparseable dates, of purchases that had a date.
    pub max_unparseable_dates: f64,
    /// Customers with no purchases, of all valid customers.
    pub max_no_purchases: f64,
}

impl Default for QualitySettings {
    fn default() -> Self {
        let g = crate::quality_gate::Gates::default();
        QualitySettings {
            max_rejected_rows: g.max_rejected_rows,
            max_unparseable_dates: g.max_unparseable_dates,
            max_no_purchases: g.max_no_purchases,
        }
    }
}

/// `[load]`: how the PostgreSQL sink replaces the report tables (DESIGN §5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSettings {
    /// `swap` (default, fastest) or `in-place` (keeps views, grants and
    /// snapshot readers working). SQLite treats both alike.
    pub mode: LoadMode,
    /// Longest wait for readers' locks on the report tables before the
    /// load gives up with an error (PostgreSQL).
    pub lock_timeout_ms: u64,
}

impl Default for LoadSettings {
    fn default() -> Self {
        LoadSettings {
            mode: LoadMode::default(),
            lock_timeout_ms: crate::load::DEFAULT_LOCK_TIMEOUT.as_millis() as u64,
        }
    }
}

/// `[generate]`: synthetic customers and their dirt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateSettings {
    /// Distinct customers to generate.
    pub customers: u64,
    /// Customers CSV path (truth goes to `<out>.truth.csv`).
    pub out: PathBuf,
    /// Extra rows repeating an earlier customer, some in another mobile format.
    pub duplicate_rate: f64,
    pub missing_age_rate: f64,
    pub missing_income_rate: f64,
    /// Rows with a blank, short or lettered mobile.
    pub malformed_mobile_rate: f64,
}

/// `[api]`: the mock purchase-history service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    pub bind: String,
    /// Most mobiles per request; more gets 413.
    pub max_mobiles: usize,
    /// Fraction of requests answered 503.
    pub fail_rate: f64,
    /// Delay added to every answer.
    pub latency_ms: u64,
    /// Worker threads; 0 means one per CPU (at least 2).
    pub threads: usize,
    pub null_date_rate: f64,
    pub dmy_date_rate: f64,
    pub null_amount_rate: f64,
    pub null_store_rate: f64,
    /// Fraction of mobiles that get one purchase row twice.
    pub duplicate_purchase_rate: f64,
}

/// `[extract]`: customer validation and the HTTP client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractSettings {
    pub customers: PathBuf,
    pub out: PathBuf,
    /// Ground truth file; unset means `<customers>.truth.csv` when present.
    pub truth: Option<PathBuf>,
    pub batch_size: usize,
    pub workers: usize,
    pub max_attempts: u32,
    pub connect_timeout_ms: u64,
    pub read_timeout_ms: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Longest one batch may take, retries included.
    pub batch_deadline_ms: u64,
}

/// `[transform]`: cleaning, features and KMeans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformSettings {
    pub input: PathBuf,
    pub out: PathBuf,
    /// `auto` or a number.
    pub k: KChoice,
    /// Smallest and largest k tried by `auto`.
    pub k_min: u32,
    pub k_max: u32,
    /// Features fed to KMeans; empty means the measured default.
    pub features: Vec<String>,
    /// log1p money and count features before z-scoring.
    pub log1p: bool,
    /// KMeans restarts (best inertia wins).
    pub restarts: u32,
    pub max_iter: u32,
    /// Most points used to compute silhouette.
    pub silhouette_sample: usize,
    /// `kmeans` (default) or `rfm` (the standard named RFM segments).
    pub method: Method,
    /// Assign with this saved segment_model.json and fit nothing.
    pub model: Option<PathBuf>,
    /// Refit, keeping the ids and labels of this segment_model.json.
    pub previous_model: Option<PathBuf>,
    /// Fit on purchases before this date, score on the later ones.
    pub holdout_from: Option<NaiveDate>,
}

/// `[load]` and `[run]` options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// Load's input directory.
    pub load_input: PathBuf,
    /// Write every stage's checkpoint here during `run`.
    pub checkpoint_dir: Option<PathBuf>,
    /// `run`'s HTML report: a file path, or `none` (default:
    /// segpipe-report.html beside the SQLite file, else in the current directory).
    pub report: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seed: 42,
            as_of: None,
            database_url: DatabaseUrl::new("sqlite://segpipe.db"),
            api_url: None,
            api_headers: Vec::new(),
            purchases_file: None,
            customers_file: None,
            generate: GenerateSettings::default(),
            api: ApiSettings::default(),
            extract: ExtractSettings::default(),
            transform: TransformSettings::default(),
            load: LoadSettings::default(),
            run: RunSettings::default(),
            quality: QualitySettings::default(),
        }
    }
}

impl Default for GenerateSettings {
    fn default() -> Self {
        let dirt = crate::generate::Dirt::default();
        GenerateSettings {
            customers: 10_000,
            out: PathBuf::from("data/customers.csv"),
            duplicate_rate: dirt.duplicate_rate,
            missing_age_rate: dirt.missing_age_rate,
            missing_income_rate: dirt.missing_income_rate,
            malformed_mobile_rate: dirt.malformed_mobile_rate,
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        let dirt = crate::api::Dirt::default();
        ApiSettings {
            bind: "127.0.0.1:8000".to_owned(),
            max_mobiles: 10_000,
            fail_rate: 0.0,
            latency_ms: 0,
            threads: 0,
            null_date_rate: dirt.null_date_rate,
            dmy_date_rate: dirt.dmy_date_rate,
            null_amount_rate: dirt.null_amount_rate,
            null_store_rate: dirt.null_store_rate,
            duplicate_purchase_rate: dirt.duplicate_purchase_rate,
        }
    }
}

impl Default for ExtractSettings {
    fn default() -> Self {
        ExtractSettings {
            customers: PathBuf::from("data/customers.csv"),
            out: PathBuf::from("out/extract"),
            truth: None,
            batch_size: 1000,
            workers: 4,
            max_attempts: 8,
            connect_timeout_ms: 2_000,
            read_timeout_ms: 30_000,
            backoff_base_ms: 50,
            backoff_max_ms: 2_000,
            batch_deadline_ms: 60_000,
        }
    }
}

impl Default for TransformSettings {
    fn default() -> Self {
        TransformSettings {
            input: PathBuf::from("out/extract"),
            out: PathBuf::from("out/transform"),
            k: KChoice::Auto,
            k_min: 2,
            k_max: 8,
            features: Vec::new(),
            log1p: true,
            restarts: 4,
            max_iter: 100,
            silhouette_sample: 10_000,
            method: Method::Kmeans,
            model: None,
            previous_model: None,
            holdout_from: None,
        }
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            load_input: PathBuf::from("out/transform"),
            checkpoint_dir: None,
            report: None,
        }
    }
}

/// Most customers `generate` makes in one file: DESIGN §8's largest world
/// (100 million) is sharded, not generated in one go.
pub const MAX_CUSTOMERS: u64 = 100_000_000;

/// One flag given on the command line, as a config key and value.
pub type Override = (&'static str, config::Value);

impl Settings {
    /// Build settings from every layer. `file` is `--config`; without it
    /// `./segpipe.toml` is read when present.
    pub fn load(file: Option<&Path>, flags: Vec<Override>) -> Result<Settings, Error> {
        Self::load_with_env(file, flags, |k| std::env::var(k).ok())
    }

    /// As [`Settings::load`], with the environment passed in (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        flags: Vec<Override>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, Error> {
        let defaults = config::Config::try_from(&Settings::default()).map_err(Error::Layer)?;
        let mut builder = config::Config::builder().add_source(defaults);
        let file = match file {
            Some(p) if !p.exists() => return Err(Error::Missing(p.to_owned())),
            Some(p) => Some(p.to_owned()),
            None => Some(PathBuf::from("segpipe.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = &file {
            // Read the file alone first, strictly (the `config` crate would
            // turn `batch_size = 1.5` into 2), so an unknown key or a value
            // of the wrong type is blamed on the file, its line and its key.
            check_file(path)?;
            builder = builder
                .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
        }
        if let Some(url) = env("DATABASE_URL") {
            builder = builder
                .set_override("database_url", url)
                .map_err(Error::Layer)?;
        }
        let shapes = defaults_as_toml();
        for key in ENV_KEYS {
            let name = format!("SEGPIPE_{}", key.replace('.', "_").to_ascii_uppercase());
            if let Some(value) = env(&name) {
                check_env(&shapes, key, &name, &value)?;
                let value: config::Value = if *key == "transform.features" {
                    let list: Vec<String> = value
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
                    list.into()
                } else {
                    value.into()
                };
                builder = builder.set_override(*key, value).map_err(Error::Layer)?;
            }
        }
        for (key, value) in flags {
            builder = builder.set_override(key, value).map_err(Error::Layer)?;
        }
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(Error::Layer)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), Error> {
        let rates = [
            ("generate.duplicate_rate", self.generate.duplicate_rate),
            ("generate.missing_age_rate", self.generate.missing_age_rate),
            (
                "generate.missing_income_rate",
                self.generate.missing_income_rate,
            ),
            (
                "generate.malformed_mobile_rate",
                self.generate.malformed_mobile_rate,
            ),
            ("api.fail_rate", self.api.fail_rate),
            ("quality.max_rejected_rows", self.quality.max_rejected_rows),
            (
                "quality.max_unparseable_dates",
                self.quality.max_unparseable_dates,
            ),
            ("quality.max_no_purchases", self.quality.max_no_purchases),
            ("api.null_date_rate", self.api.null_date_rate),
            ("api.dmy_date_rate", self.api.dmy_date_rate),
            ("api.null_amount_rate", self.api.null_amount_rate),
            ("api.null_store_rate", self.api.null_store_rate),
            (
                "api.duplicate_purchase_rate",
                self.api.duplicate_purchase_rate,
            ),
        ];
        for (key, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(Error::Value {
                    key,
                    message: format!("{rate} is not between 0 and 1"),
                });
            }
        }
        if self.api.null_date_rate + self.api.dmy_date_rate > 1.0 {
            return Err(Error::Value {
                key: "api.dmy_date_rate",
                message: "null_date_rate + dmy_date_rate exceeds 1".to_owned(),
            });
        }
        let positive = [
            ("generate.customers", self.generate.customers),
            ("extract.batch_size", self.extract.batch_size as u64),
            ("extract.workers", self.extract.workers as u64),
            ("extract.max_attempts", u64::from(self.extract.max_attempts)),
            ("extract.batch_deadline_ms", self.extract.batch_deadline_ms),
            ("load.lock_timeout_ms", self.load.lock_timeout_ms),
            ("api.max_mobiles", self.api.max_mobiles as u64),
            ("transform.restarts", u64::from(self.transform.restarts)),
            ("transform.max_iter", u64::from(self.transform.max_iter)),
            (
                "transform.silhouette_sample",
                self.transform.silhouette_sample as u64,
            ),
        ];
        for (key, n) in positive {
            if n == 0 {
                return Err(Error::Value {
                    key,
                    message: "must be at least 1".to_owned(),
                });
            }
        }
        // Every size a user can type is bounded, so a typo such as
        // `--customers 18446744073709551615` is an error, not a 40 s climb
        // to an allocation failure.
        let bounded = [
            ("generate.customers", self.generate.customers, MAX_CUSTOMERS),
            (
                "extract.batch_size",
                self.extract.batch_size as u64,
                1_000_000,
            ),
            ("extract.workers", self.extract.workers as u64, 256),
            (
                "extract.max_attempts",
                u64::from(self.extract.max_attempts),
                100,
            ),
            ("api.max_mobiles", self.api.max_mobiles as u64, 10_000_000),
            ("api.threads", self.api.threads as u64, 1024),
            ("api.latency_ms", self.api.latency_ms, 600_000),
            (
                "transform.restarts",
                u64::from(self.transform.restarts),
                1000,
            ),
            (
                "transform.max_iter",
                u64::from(self.transform.max_iter),
                100_000,
            ),
            ("transform.k_max", u64::from(self.transform.k_max), 64),
            (
                "transform.silhouette_sample",
                self.transform.silhouette_sample as u64,
                10_000_000,
            ),
        ];
        for (key, n, max) in bounded {
            if n > max {
                return Err(Error::Value {
                    key,
                    message: format!("{n} is more than the most allowed, {max}"),
                });
            }
        }
        if self.transform.k_min < 2 || self.transform.k_max < self.transform.k_min {
            return Err(Error::Value {
                key: "transform.k_max",
                message: format!(
                    "k range {}..={} is empty or starts below 2",
                    self.transform.k_min, self.transform.k_max
                ),
            });
        }
        if self.api_url.is_some() && self.purchases_file.is_some() {
            return Err(Error::Value {
                key: "purchases_file",
                message: "give purchases_file or api_url, not both".to_owned(),
            });
        }
        for raw in &self.api_headers {
            if let Err(message) = parse_header(raw) {
                return Err(Error::Value {
                    key: "api_headers",
                    message,
                });
            }
        }
        let url = self.database_url.expose();
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite://")
            || self.database_url.is_conninfo())
        {
            return Err(Error::Value {
                key: "database_url",
                message: format!(
                    "`{}` is not postgres://…, postgresql://…, host=… dbname=… or sqlite://PATH",
                    self.database_url
                ),
            });
        }
        Ok(())
    }

    /// The as-of date: the configured one, or today in UTC.
    pub fn as_of(&self) -> NaiveDate {
        self.as_of.unwrap_or_else(|| Utc::now().date_naive())
    }

    /// `api_headers` as (name, value) pairs; validated when settings load.
    pub fn api_headers(&self) -> Vec<(String, String)> {
        self.api_headers
            .iter()
            .filter_map(|raw| parse_header(raw).ok())
            .collect()
    }

    /// TOML rendering with secrets masked, for `segpipe config`.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = DatabaseUrl::new(self.database_url.masked());
        shown.api_url = self.api_url.as_deref().map(crate::secret::mask_url);
        shown.api_headers = self
            .api_headers()
            .into_iter()
            .map(|(name, _)| format!("{name}: {}", crate::secret::MASK))
            .collect();
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

/// Parse the file with serde's strict types; an error names the line and
/// the key (`[section] key`), on one line.
fn check_file(path: &Path) -> Result<(), Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::FileValue {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    toml::from_str::<Settings>(&text)
        .map(drop)
        .map_err(|e| Error::FileValue {
            path: path.to_owned(),
            message: describe_toml_error(&text, &e),
        })
}

/// `invalid type: … (line N, key `extract.batch_size`)` from a toml error.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = crate::error::one_line(e.message(), 200);
    let Some(span) = e.span() else {
        return message;
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let mut section = String::new();
    let mut key = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if i + 1 > line_no {
            break;
        }
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
        }
        if i + 1 == line_no {
            key = t.split_once('=').map(|(k, _)| k.trim().to_owned());
        }
    }
    match key {
        Some(k) if section.is_empty() => format!("{message} (line {line_no}, key `{k}`)"),
        Some(k) => format!("{message} (line {line_no}, key `{section}.{k}`)"),
        None => format!("{message} (line {line_no})"),
    }
}

/// The built-in defaults as TOML: what type each key takes.
fn defaults_as_toml() -> toml::Value {
    toml::Value::try_from(Settings::default()).unwrap_or(toml::Value::Table(Default::default()))
}

/// An environment value must parse as the key's type: whole numbers are
/// never negative or fractional here, rates are numbers, flags are booleans.
fn check_env(shapes: &toml::Value, key: &str, name: &str, value: &str) -> Result<(), Error> {
    let mut shape = Some(shapes);
    for part in key.split('.') {
        shape = shape.and_then(|v| v.get(part));
    }
    let bad = |message: &str| Error::Env {
        name: name.to_owned(),
        value: value.to_owned(),
        message: message.to_owned(),
    };
    let v = value.trim();
    if key == "as_of" && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err() {
        return Err(bad(
            "expected a date in the form YYYY-MM-DD (e.g. 2026-11-24)",
        ));
    }
    match shape {
        Some(toml::Value::Integer(_)) if v.parse::<u64>().is_err() => {
            Err(bad("expected a whole number, 0 or more"))
        }
        Some(toml::Value::Float(_)) if v.parse::<f64>().map_or(true, |x| !x.is_finite()) => {
            Err(bad("expected a number"))
        }
        Some(toml::Value::Boolean(_)) if v.parse::<bool>().is_err() => {
            Err(bad("expected true or false"))
        }
        _ => Ok(()),
    }
}

/// `Name: value` → (name, value); the name must be a valid header token.
fn parse_header(raw: &str) -> Result<(String, String), String> {
    let Some((name, value)) = raw.split_once(':') else {
        let name = raw.split_whitespace().next().unwrap_or_default();
        return Err(format!("`{name}…` is not `Name: value`"));
    };
    let name = name.trim();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("`{name}` is not a header name"));
    }
    let value = value.trim();
    if value.chars().any(|c| c.is_control()) {
        return Err(format!("the value of `{name}` holds a control character"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Keys that can be set from `SEGPIPE_*` env vars (dots become `_`).
const ENV_KEYS: &[&str] = &[
    "seed",
    "as_of",
    "database_url",
    "api_url",
    "purchases_file",
    "customers_file",
    "generate.customers",
    "generate.out",
    "generate.duplicate_rate",
    "generate.missing_age_rate",
    "generate.missing_income_rate",
    "generate.malformed_mobile_rate",
    "api.bind",
    "api.max_mobiles",
    "api.fail_rate",
    "api.latency_ms",
    "api.threads",
    "api.null_date_rate",
    "api.dmy_date_rate",
    "api.null_amount_rate",
    "api.null_store_rate",
    "api.duplicate_purchase_rate",
    "extract.customers",
    "extract.out",
    "extract.truth",
    "extract.batch_size",
    "extract.workers",
    "extract.max_attempts",
    "extract.connect_timeout_ms",
    "extract.read_timeout_ms",
    "extract.backoff_base_ms",
    "extract.backoff_max_ms",
    "extract.batch_deadline_ms",
    "transform.input",
    "transform.out",
    "transform.k",
    "transform.k_min",
    "transform.k_max",
    "transform.features",
    "transform.log1p",
    "transform.restarts",
    "transform.max_iter",
    "transform.silhouette_sample",
    "transform.method",
    "transform.model",
    "transform.previous_model",
    "transform.holdout_from",
    "load.mode",
    "load.lock_timeout_ms",
    "run.load_input",
    "quality.max_rejected_rows",
    "quality.max_unparseable_dates",
    "quality.max_no_purchases",
    "run.checkpoint_dir",
    "run.report",
];

/// Helpers for turning `Option` flags into overrides.
pub fn flag<T: Into<config::Value>>(out: &mut Vec<Override>, key: &'static str, value: Option<T>) {
    if let Some(v) = value {
        out.push((key, v.into()));
    }
}

/// A path flag as an override.
pub fn path_flag(out: &mut Vec<Override>, key: &'static str, value: Option<&PathBuf>) {
    flag(out, key, value.map(|p| p.to_string_lossy().into_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(
        file: Option<&str>,
        flags: Vec<Override>,
        env: &[(&str, &str)],
    ) -> Result<Settings, Error> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("segpipe.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).expect("write config");
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load_with_env(file.map(|_| path.as_path()), flags, |k| env.get(k).cloned())
    }

    #[test]
    fn layers_apply_in_order() {
        let file = "seed = 7\n[generate]\ncustomers = 500\n[transform]\nk = 4\n";
        let s = load(Some(file), vec![], &[]).expect("file");
        assert_eq!(
            (s.seed, s.generate.customers, s.transform.k),
            (7, 500, KChoice::Fixed(4))
        );

        let s = load(
            Some(file),
            vec![],
            &[("SEGPIPE_SEED", "9"), ("SEGPIPE_TRANSFORM_K", "auto")],
        )
        .expect("env");
        assert_eq!(
            (s.seed, s.generate.customers, s.transform.k),
            (9, 500, KChoice::Auto)
        );

        let s = load(
            Some(file),
            vec![("seed", 11u64.into())],
            &[("SEGPIPE_SEED", "9")],
        )
        .expect("flag");
        assert_eq!(s.seed, 11);
    }

    #[test]
    fn unknown_file_key_is_an_error_naming_it() {
        let err = load(Some("[generate]\ncustmers = 5\n"), vec![], &[]).expect_err("unknown key");
        let chain = crate::error::chain(&err);
        assert!(chain.contains("custmers"), "{chain}");
        assert!(chain.contains("segpipe.toml"), "{chain}");
    }

    #[test]
    fn stray_segpipe_env_vars_are_ignored() {
        let s = load(
            None,
            vec![],
            &[
                ("SEGPIPE_TEST_DATABASE_URL", "postgres://x"),
                ("SEGPIPE_BOGUS", "1"),
            ],
        )
        .expect("stray env");
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn database_url_precedence_and_plain_env() {
        let s = load(None, vec![], &[("DATABASE_URL", "postgres://a@h/db")]).expect("plain");
        assert_eq!(s.database_url.expose(), "postgres://a@h/db");
        let s = load(
            None,
            vec![],
            &[
                ("DATABASE_URL", "postgres://a@h/db"),
                ("SEGPIPE_DATABASE_URL", "sqlite://x.db"),
            ],
        )
        .expect("segpipe wins");
        assert_eq!(s.database_url.expose(), "sqlite://x.db");
        assert!(load(None, vec![("database_url", "mysql://x".into())], &[]).is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let err = load(None, vec![("api.fail_rate", 1.5.into())], &[]).expect_err("rate");
        assert!(err.to_string().contains("api.fail_rate"), "{err}");
        let err = load(None, vec![], &[("SEGPIPE_TRANSFORM_K", "many")]).expect_err("k");
        assert!(
            crate::error::chain(&err).contains("many"),
            "{}",
            crate::error::chain(&err)
        );
    }

    #[test]
    fn load_mode_and_lock_timeout_from_file_env_and_flag() {
        let s = load(
            Some("[load]\nmode = \"in-place\"\nlock_timeout_ms = 500\n"),
            vec![],
            &[],
        )
        .expect("file");
        assert_eq!(
            (s.load.mode, s.load.lock_timeout_ms),
            (LoadMode::InPlace, 500)
        );
        let s = load(None, vec![], &[("SEGPIPE_LOAD_MODE", "in-place")]).expect("env");
        assert_eq!(s.load.mode, LoadMode::InPlace);
        let s = load(
            None,
            vec![("load.mode", "swap".into())],
            &[("SEGPIPE_LOAD_MODE", "in-place")],
        )
        .expect("flag");
        assert_eq!(s.load.mode, LoadMode::Swap);
        assert_eq!(Settings::default().load.lock_timeout_ms, 60_000);
        let err = load(Some("[load]\nmode = \"sideways\"\n"), vec![], &[]).expect_err("bad");
        let chain = crate::error::chain(&err);
        assert!(
            chain.contains("sideways") || chain.contains("mode"),
            "{chain}"
        );
        let err = load(None, vec![], &[("SEGPIPE_LOAD_LOCK_TIMEOUT_MS", "0")]).expect_err("zero");
        assert!(err.to_string().contains("load.lock_timeout_ms"), "{err}");
    }

    #[test]
    fn config_output_masks_the_password() {
        let s = Settings {
            database_url: DatabaseUrl::new("postgres://u:hunter2@h/db"),
            ..Settings::default()
        };
        assert!(!s.to_masked_toml().contains("hunter2"));
    }
}
