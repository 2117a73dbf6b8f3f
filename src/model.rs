//! The types that cross stage boundaries, and nothing else.
//!
//! Stages exchange these in memory (`run`) or through CSV checkpoints
//! (`checkpoint`). Big collections are kept compact on purpose: at a million
//! customers there are ~12 million purchases and ~11 million report rows, so
//! per-row strings are replaced by indexes into small tables.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::odd_dates::OddDates;

/// Position of a customer in `Joined::customers` / `Report::customers`: the
/// index that keeps purchases, features, segments and report rows aligned
/// with their customer across extract and transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerIdx(u32);

impl CustomerIdx {
    /// The customer at position `i`. Extract bounds the customer count far
    /// below `u32::MAX`, so this cannot fail for a real position.
    pub fn from_index(i: usize) -> CustomerIdx {
        CustomerIdx(u32::try_from(i).expect("customer positions fit u32 (extract bounds them)"))
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }
}
/// Index of a store name in `Joined::stores` / `Report::store_names`.
pub type StoreId = u32;

/// Customer gender, matched case-insensitively on input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    Male,
    Female,
    Other,
}

impl Gender {
    /// Parse the spellings found in the wild; `None` means unknown.
    pub fn parse(raw: &str) -> Option<Gender> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "male" | "m" | "man" => Some(Gender::Male),
            "female" | "f" | "woman" => Some(Gender::Female),
            "other" | "o" | "non-binary" | "nonbinary" | "x" => Some(Gender::Other),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
        }
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hidden ground-truth behaviour of a generated customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persona {
    Champion,
    Loyal,
    Occasional,
    Lapsed,
    NeverBought,
}

impl Persona {
    pub const ALL: [Persona; 5] = [
        Persona::Champion,
        Persona::Loyal,
        Persona::Occasional,
        Persona::Lapsed,
        Persona::NeverBought,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Persona::Champion => "champion",
            Persona::Loyal => "loyal",
            Persona::Occasional => "occasional",
            Persona::Lapsed => "lapsed",
            Persona::NeverBought => "never_bought",
        }
    }

    pub fn parse(raw: &str) -> Option<Persona> {
        Persona::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

impl fmt::Display for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated customer. Missing age/income stay `None` until transform imputes.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    /// Normalized mobile (digits only): the key.
    pub mobile: String,
    pub name: Option<String>,
    pub age: Option<u16>,
    pub income: Option<f64>,
    pub gender: Option<Gender>,
}

/// A customer row that failed validation, kept verbatim for the rejects file.
#[derive(Clone, Debug, PartialEq)]
pub struct Reject {
    /// 1-based line in the source file (the header is line 1).
    pub line: u64,
    pub reason: String,
    pub fields: Vec<String>,
}

/// A purchase date as the API sent it, stored in 8 bytes without losing text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawDate {
    Null,
    /// The text was exactly `YYYY-MM-DD`.
    Ymd(NaiveDate),
    /// The text was exactly `DD-MM-YYYY`.
    Dmy(NaiveDate),
    /// The text was exactly `YYYY/MM/DD`.
    Slash(NaiveDate),
    /// An ISO 8601 date-time (DESIGN §3): the calendar date as written, and
    /// the rest of the text (`T10:00:00Z`) in `Joined::odd_dates`.
    Stamp(NaiveDate, SuffixId),
    /// Any other text: index into `Joined::odd_dates`.
    Text(u32),
}

/// A date-time's rest in `Joined::odd_dates`: 3 bytes, so a `RawDate`
/// stays 8 and a `Purchase` 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SuffixId([u8; 3]);

impl SuffixId {
    /// `None` past 2^24 entries.
    pub fn new(index: u32) -> Option<SuffixId> {
        let [a, b, c, top] = index.to_le_bytes();
        (top == 0).then_some(SuffixId([a, b, c]))
    }

    pub fn index(self) -> u32 {
        let [a, b, c] = self.0;
        u32::from_le_bytes([a, b, c, 0])
    }
}

const _: () = assert!(std::mem::size_of::<RawDate>() == 8);

impl RawDate {
    /// Classify a date text; `odd` keeps what is not a plain date.
    pub fn classify(raw: Option<&str>, odd: &mut OddDates) -> RawDate {
        let Some(text) = raw else {
            return RawDate::Null;
        };
        if let Some(date) = classify_digits(text) {
            return date;
        }
        if let Some(stamp) = odd.stamp(text) {
            return stamp;
        }
        if let Some(d) = parse_exact(text, "%Y-%m-%d") {
            return RawDate::Ymd(d);
        }
        if let Some(d) = parse_exact(text, "%d-%m-%Y") {
            return RawDate::Dmy(d);
        }
        if let Some(d) = parse_exact(text, "%Y/%m/%d") {
            return RawDate::Slash(d);
        }
        odd.whole(text)
    }

    /// The original text (None for null).
    pub fn text(self, odd: &OddDates) -> Option<String> {
        match self {
            RawDate::Null => None,
            RawDate::Ymd(d) => Some(d.format("%Y-%m-%d").to_string()),
            RawDate::Dmy(d) => Some(d.format("%d-%m-%Y").to_string()),
            RawDate::Slash(d) => Some(d.format("%Y/%m/%d").to_string()),
            RawDate::Stamp(d, s) => Some(crate::odd_dates::stamp_text(d, odd.get(s.index()))),
            RawDate::Text(i) => Some(odd.get(i).to_owned()),
        }
    }
}

/// The fast path of [`RawDate::classify`]: for years 0–9999 the texts that
/// survive [`parse_exact`]'s round trip in the three formats are exactly
/// these fixed digit patterns, so a valid date in one of them is what the
/// slow path would say; anything else (`None`) goes the slow path. Why:
/// chrono's parse-and-format round trip was 40% of reading a purchases file.
pub(crate) fn classify_digits(text: &str) -> Option<RawDate> {
    let b = text.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let num = |at: usize, len: usize| {
        b[at..at + len].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let ymd = |y: u32, m: u32, d: u32| NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
    match (b[2], b[4], b[5], b[7]) {
        (_, b'-', _, b'-') => ymd(num(0, 4)?, num(5, 2)?, num(8, 2)?).map(RawDate::Ymd),
        (_, b'/', _, b'/') => ymd(num(0, 4)?, num(5, 2)?, num(8, 2)?).map(RawDate::Slash),
        (b'-', _, b'-', _) => ymd(num(6, 4)?, num(3, 2)?, num(0, 2)?).map(RawDate::Dmy),
        _ => None,
    }
}

/// Parse only when formatting back gives the same text, so classification is lossless.
fn parse_exact(text: &str, fmt: &str) -> Option<NaiveDate> {
    let d = NaiveDate::parse_from_str(text, fmt).ok()?;
    (d.format(fmt).to_string() == text).then_some(d)
}

/// One purchase as fetched, joined to its customer. 32 bytes: see module doc.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Purchase {
    pub customer: CustomerIdx,
    store: StoreId,
    pub date: RawDate,
    amount: f64,
    /// [`order_key`] of the purchase's `order_id`; 0 when it had none.
    order: u64,
}

/// A non-zero 64-bit key for an order id (FNV-1a of its text). Kept instead
/// of the text: millions of order-id strings would dominate memory, and two
/// orders of one customer colliding in 64 bits is not a real risk.
pub fn order_key(order_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in order_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash.max(1)
}

const NO_STORE: StoreId = StoreId::MAX;

impl Purchase {
    pub fn new(
        customer: CustomerIdx,
        date: RawDate,
        amount: Option<f64>,
        store: Option<StoreId>,
    ) -> Self {
        Purchase {
            customer,
            store: store.unwrap_or(NO_STORE),
            date,
            // JSON cannot carry NaN, so NaN is free to mean "null".
            amount: amount.unwrap_or(f64::NAN),
            order: 0,
        }
    }

    /// The same purchase with an order key (see [`order_key`]); 0 is none.
    pub fn with_order(self, order: u64) -> Self {
        Purchase { order, ..self }
    }

    /// The order key, when the purchase had an `order_id`.
    pub fn order(&self) -> Option<u64> {
        (self.order != 0).then_some(self.order)
    }

    pub fn amount(&self) -> Option<f64> {
        (!self.amount.is_nan()).then_some(self.amount)
    }

    pub fn store(&self) -> Option<StoreId> {
        (self.store != NO_STORE).then_some(self.store)
    }
}

/// One data-quality decision and how many rows it touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityCount {
    pub rule: String,
    pub rows: u64,
}

/// Ordered list of quality counts; adding to a rule twice sums.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quality(pub Vec<QualityCount>);

impl Quality {
    pub fn add(&mut self, rule: &str, rows: u64) {
        match self.0.iter_mut().find(|q| q.rule == rule) {
            Some(q) => q.rows += rows,
            None => self.0.push(QualityCount {
                rule: rule.to_owned(),
                rows,
            }),
        }
    }

    /// Replace a rule's count (a global recount over per-shard sums).
    pub fn set(&mut self, rule: &str, rows: u64) {
        match self.0.iter_mut().find(|q| q.rule == rule) {
            Some(q) => q.rows = rows,
            None => self.add(rule, rows),
        }
    }

    pub fn get(&self, rule: &str) -> u64 {
        self.0.iter().find(|q| q.rule == rule).map_or(0, |q| q.rows)
    }
}

/// Output of extract: valid unique customers and their purchases.
#[derive(Clone, Debug, Default)]
pub struct Joined {
    /// Valid customers, first occurrence per normalized mobile, in file order.
    pub customers: crate::people::People,
    /// Each customer's position in the unsharded customer list (see
    /// `Validated::positions`); empty means `0..customers.len()`.
    pub positions: Vec<u64>,
    /// Purchases sorted by customer, in the order the API sent them.
    pub purchases: Vec<Purchase>,
    /// Or, when extract spilled them (`run`), the spool holding them.
    pub spool: Option<std::sync::Arc<crate::spool::Spooled>>,
    /// Interned store names (`Purchase::store` indexes this).
    pub stores: Vec<String>,
    /// Date texts that are not plain dates, and date-times' rests (`odd_dates`).
    pub odd_dates: crate::odd_dates::OddDates,
    /// Header of the customers file, for the rejects file.
    pub source_header: Vec<String>,
    pub rejects: Vec<Reject>,
    /// Malformed rows of a purchases file, and that file's header.
    pub purchase_rejects: Vec<Reject>,
    pub purchase_header: Vec<String>,
    /// Ground truth aligned with `customers`, when a truth file was found.
    pub truth: Option<Vec<Option<Persona>>>,
    /// Extract's quality decisions (duplicates, rejects by reason, ...).
    pub quality: Quality,
}

/// `YYYY-MM` month of customer_purchase_trends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YearMonth {
    pub year: i32,
    pub month: u32,
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for YearMonth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid month `{s}`, expected YYYY-MM");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if y.len() != 4 || m.len() != 2 || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(YearMonth { year, month })
    }
}

/// customer_segments row (one per valid customer), owned: what
/// checkpoints read and tests build. A report holds these rows by column
/// ([`crate::customer_segments::CustomerSegments`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerSegment {
    pub mobile: String,
    pub name: Option<String>,
    /// Imputed when missing; `None` only when no customer had an age.
    pub age: Option<u16>,
    pub income: Option<f64>,
    pub gender: Option<Gender>,
    pub clv: f64,
    /// `None` when no purchase had an amount.
    pub avg_purchase_amount: Option<f64>,
    pub purchase_count: u32,
    /// `None` when no purchase had a usable date.
    pub days_since_last_purchase: Option<i32>,
    pub purchase_frequency: Option<f64>,
    pub segment: u32,
    pub segment_label: String,
    /// RFM quintile scores (1–5, 5 = best), for buyers only.
    pub r_score: Option<u8>,
    pub f_score: Option<u8>,
    pub m_score: Option<u8>,
}

/// customer_behavior_metrics row; `customer` indexes `Report::customers`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CustomerBehavior {
    pub customer: CustomerIdx,
    pub total_spent: f64,
    /// The amount columns are `None` when no purchase had an amount.
    pub avg_transaction_value: Option<f64>,
    pub max_purchase_amount: Option<f64>,
    pub min_purchase_amount: Option<f64>,
    pub purchase_count: u32,
    /// The date columns are `None` when no purchase had a usable date.
    pub first_purchase: Option<NaiveDate>,
    pub last_purchase: Option<NaiveDate>,
    pub days_since_first_purchase: Option<i32>,
    pub days_since_last_purchase: Option<i32>,
}

/// segment_metrics row.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentMetrics {
    pub segment: u32,
    pub segment_label: String,
    pub num_customers: u64,
    pub total_spend: f64,
    pub avg_clv: f64,
    /// Averages over the segment's known values; `None` when none is known.
    pub avg_age: Option<f64>,
    pub avg_income: Option<f64>,
    pub avg_purchase_count: f64,
    pub avg_days_since_last_purchase: Option<f64>,
    pub avg_purchase_frequency: Option<f64>,
    pub share_of_customers: f64,
    pub share_of_spend: f64,
}

/// customer_store_summary row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoreSummary {
    pub customer: CustomerIdx,
    pub store: StoreId,
    pub total_spent: f64,
    pub visit_count: u32,
}

/// customer_purchase_trends row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PurchaseTrend {
    pub customer: CustomerIdx,
    pub month: YearMonth,
    pub total_spent: f64,
    pub num_purchases: u32,
}

/// One k tried by `--k auto` (or the one k given), with every criterion the
/// choice looks at. `transform::criteria` defines them and the rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KSweep {
    pub k: u32,
    /// Sum of squared distances to the centroids (lower is tighter).
    pub inertia: f64,
    /// Mean silhouette on a sample (-1..1, higher is better separated).
    pub silhouette: f64,
    /// Calinski-Harabasz index (higher is better).
    #[serde(default)]
    pub calinski_harabasz: f64,
    /// Davies-Bouldin index (lower is better).
    #[serde(default)]
    pub davies_bouldin: f64,
    /// Share of the clustered customers in the smallest segment.
    #[serde(default)]
    pub smallest_share: f64,
    /// Mean ARI between the fit and refits on resamples (1 = reproduced).
    #[serde(default)]
    pub stability: f64,
    /// The least stable segment's mean Jaccard over the resamples.
    #[serde(default)]
    pub min_segment_stability: f64,
    /// Whether this k passes the rule's floors (every segment stable, none
    /// tiny); `--k auto` picks the largest such k.
    #[serde(default)]
    pub eligible: bool,
}

/// Per-feature scaling parameters (z-score after optional log1p).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureScale {
    pub feature: String,
    pub log1p: bool,
    pub mean: f64,
    pub std: f64,
    /// What a customer's unknown value becomes before scaling (the median of
    /// the fitted buyers' known values, raw units); `None` if none was unknown.
    #[serde(default)]
    pub impute: Option<f64>,
}

/// Agreement of the segments with the planted personas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub ari: f64,
    pub nmi: f64,
    /// Customers that had a truth label.
    pub labelled: u64,
}

/// How buyers are segmented (DESIGN §4, `--method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// KMeans on the scaled features (the default).
    #[default]
    Kmeans,
    /// The standard named RFM segments from the quintile scores.
    Rfm,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Kmeans => "kmeans",
            Method::Rfm => "rfm",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Format version of segment_model.json that this build writes and reads.
/// Bump it when a field changes meaning; a model of another version is
/// refused by `--model` / `--previous-model` rather than misread.
pub const MODEL_VERSION: u32 = 1;

/// Model files written before the field existed are version 1: every field
/// they hold still means what it meant.
fn model_version_1() -> u32 {
    1
}

/// One group (a segment, or a cell of the RFM grid) scored on the holdout period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldoutGroup {
    /// Segment id, or `100 r + 10 f + m` for an RFM cell (0 = no purchases).
    pub id: u32,
    pub label: String,
    pub customers: u64,
    /// Mean spend in the holdout period over the group's customers (money).
    pub next_spend_per_customer: f64,
    /// Share of the group's customers with at least one purchase in the
    /// holdout period.
    pub repeat_rate: f64,
}

/// Holdout validation (`--holdout-from`): segments fitted on the purchases
/// before `from`, scored on the purchases from `from` to `to` (as-of).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holdout {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Customers scored (every valid customer).
    pub customers: u64,
    /// Share of the variance of next-period spend explained by the segments
    /// (between-group sum of squares over total sum of squares).
    pub eta2: f64,
    pub segments: Vec<HoldoutGroup>,
    /// The same figure for the plain RFM grid (125 cells, non-buyers one group).
    pub rfm_grid_eta2: f64,
    /// Non-empty RFM cells, by id.
    pub rfm_grid: Vec<HoldoutGroup>,
}

/// Everything about the fitted model and the run; written as segment_model.json.
///
/// It holds all that assigning a customer needs (`--model`): the method, the
/// features with their scaling and imputation, the centroids by segment id
/// and the labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentModel {
    /// Format version ([`MODEL_VERSION`]).
    #[serde(default = "model_version_1")]
    pub version: u32,
    #[serde(default)]
    pub method: Method,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub as_of: NaiveDate,
    pub seed: u64,
    /// Segments among buyers: KMeans k, or the named RFM segments present
    /// (the rule-based "no purchases" segment is extra).
    pub k: u32,
    /// Features with their scaling, in centroid order (empty for RFM).
    pub features: Vec<FeatureScale>,
    /// Centroids in scaled feature space, by segment id.
    pub centroids: Vec<Vec<f64>>,
    pub inertia: f64,
    pub silhouette: Option<f64>,
    pub k_sweep: Vec<KSweep>,
    pub labels: BTreeMap<u32, String>,
    pub evaluation: Option<Evaluation>,
    /// Holdout validation, when `--holdout-from` was given.
    #[serde(default)]
    pub holdout: Option<Holdout>,
}

/// segment_transitions row: customers that the previous model puts in
/// `from_segment` and this run puts in `to_segment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from_segment: u32,
    pub to_segment: u32,
    pub customers: u64,
}

/// Output of transform: the report tables plus model and quality.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// customer_segments, by column (see `customer_segments`).
    pub customers: crate::customer_segments::CustomerSegments,
    /// One per customer; `run` spills them too (see `rows`).
    pub behavior: crate::rows::Rows<CustomerBehavior>,
    pub segments: Vec<SegmentMetrics>,
    pub store_names: Vec<String>,
    /// Per customer and store / month: grows with purchases, so `run`
    /// spills them to disk (see `rows`).
    pub stores: crate::rows::Rows<StoreSummary>,
    pub trends: crate::rows::Rows<PurchaseTrend>,
    /// Moves from the previous model's segments (empty without one).
    pub transitions: Vec<Transition>,
    pub model: SegmentModel,
    pub quality: Quality,
}

impl Report {
    /// Row counts per report table, as recorded in pipeline_runs.
    pub fn row_counts(&self) -> BTreeMap<String, u64> {
        crate::report_tables::row_counts(self)
    }
}

/// Round money to cents, the precision of every money column.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Round ratios and averages that are not money.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchase_is_compact_and_keeps_nulls() {
        assert_eq!(std::mem::size_of::<Purchase>(), 32);
        let p = Purchase::new(CustomerIdx::from_index(3), RawDate::Null, None, None);
        assert_eq!((p.amount(), p.store()), (None, None));
        let p = Purchase::new(
            CustomerIdx::from_index(3),
            RawDate::Null,
            Some(0.0),
            Some(0),
        );
        assert_eq!((p.amount(), p.store()), (Some(0.0), Some(0)));
    }

    /// `classify` without its fast path: chrono's round trip alone.
    fn classify_slowly(text: &str) -> Option<RawDate> {
        parse_exact(text, "%Y-%m-%d")
            .map(RawDate::Ymd)
            .or_else(|| parse_exact(text, "%d-%m-%Y").map(RawDate::Dmy))
            .or_else(|| parse_exact(text, "%Y/%m/%d").map(RawDate::Slash))
    }

    #[test]
    fn the_fast_date_path_says_what_chrono_says() {
        let mut texts: Vec<String> = [
            "0000-01-01",
            "9999-12-31",
            "2024-02-29",
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "31-04-2026",
            "29-02-2024",
            "00-00-0000",
            "12-34-5678",
            "2026/03-01",
            "2026-03/01",
            "2026--0301",
            "20260-1-01",
            "+202-01-01",
            "-202-01-01",
            " 2026-0101",
            "2026-1-011",
            "2026-03-0x",
            "２026-03-01",
            "2026.03.01",
            "01/03/2026",
            "2026-3-1",
        ]
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
        let start = NaiveDate::from_ymd_opt(1999, 12, 25).expect("date");
        for day in start.iter_days().take(500) {
            for fmt in ["%Y-%m-%d", "%d-%m-%Y", "%Y/%m/%d"] {
                let text = day.format(fmt).to_string();
                // The same text with one digit made odd.
                texts.push(text.replacen('0', "o", 1));
                texts.push(text);
            }
        }
        let mut fast = 0;
        for text in &texts {
            let mut odd = OddDates::default();
            let got = RawDate::classify(Some(text), &mut odd);
            let want = classify_slowly(text).unwrap_or(RawDate::Text(0));
            assert_eq!(got, want, "{text}");
            fast += usize::from(classify_digits(text).is_some());
        }
        assert!(fast >= 1500, "the fast path took {fast} texts");
    }

    #[test]
    fn raw_date_classification_is_lossless() {
        let mut odd = OddDates::default();
        for text in [
            "2026-03-01",
            "01-03-2026",
            "2026-3-1",
            "03/01/2026",
            "",
            "2026-02-30",
            "2026/03/01",
            "2026-10-01T10:00:00Z",
        ] {
            let d = RawDate::classify(Some(text), &mut odd);
            assert_eq!(d.text(&odd).as_deref(), Some(text));
        }
        assert!(matches!(
            RawDate::classify(Some("2026-03-01"), &mut odd),
            RawDate::Ymd(_)
        ));
        assert!(matches!(
            RawDate::classify(Some("01-03-2026"), &mut odd),
            RawDate::Dmy(_)
        ));
        assert_eq!(RawDate::classify(None, &mut odd), RawDate::Null);
    }

    #[test]
    fn gender_and_persona_parse() {
        assert_eq!(Gender::parse(" FEMALE "), Some(Gender::Female));
        assert_eq!(Gender::parse("M"), Some(Gender::Male));
        assert_eq!(Gender::parse("unknown"), None);
        for p in Persona::ALL {
            assert_eq!(Persona::parse(&p.as_str().to_uppercase()), Some(p));
        }
    }

    #[test]
    fn year_month_round_trips() {
        let m: YearMonth = "2026-03".parse().expect("valid");
        assert_eq!(m.to_string(), "2026-03");
        assert!("2026-13".parse::<YearMonth>().is_err());
        assert!("26-03".parse::<YearMonth>().is_err());
    }
}
