//! What `run` and the step subcommands print: the per-stage table, the
//! segment lines in plain words, the same facts as JSON (`--json`,
//! `run_results.json`), and the process's memory figures behind them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::{Evaluation, Method, Report};

/// One stage's line in the summary.
#[derive(Clone, Debug, Serialize)]
pub struct StageTiming {
    pub stage: &'static str,
    #[serde(serialize_with = "millis")]
    pub seconds: f64,
    pub rows: u64,
    /// Peak RSS of the process when the stage ended (monotonic).
    pub peak_rss_mib: Option<u64>,
    pub note: String,
}

/// What `run` did, printed at the end (and serialized for `--json`).
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    #[serde(skip)]
    pub header: String,
    pub customers_requested: u64,
    pub stages: Vec<StageTiming>,
    #[serde(serialize_with = "millis")]
    pub total_seconds: f64,
    #[serde(flatten)]
    pub facts: ReportFacts,
    /// Where the tables went, password masked.
    pub destination: String,
    /// The HTML report, unless `--report none`.
    pub report_path: Option<PathBuf>,
    pub checkpoint_dir: Option<PathBuf>,
    pub peak_rss_mib: Option<u64>,
}

/// The facts of a transform's report that every summary shows.
#[derive(Clone, Debug, Serialize)]
pub struct ReportFacts {
    pub run_id: String,
    pub as_of: chrono::NaiveDate,
    pub seed: u64,
    /// `kmeans` or `rfm`.
    pub method: Method,
    /// KMeans clusters (or named RFM segments); rule-based segments come on top.
    pub k: u32,
    pub rule_based_segments: Vec<String>,
    pub silhouette: Option<f64>,
    /// Every criterion per k tried, as in segment_model.json.
    pub criteria: serde_json::Value,
    /// Agreement with ground truth, when it was known.
    pub evaluation: Option<Evaluation>,
    pub customers: u64,
    pub segments: Vec<SegmentFacts>,
    /// Moves from the previous model (empty without one).
    pub transitions: Vec<crate::model::Transition>,
    /// Holdout scores, with `--holdout-from`.
    pub holdout: Option<crate::model::Holdout>,
    /// The transitions and holdout as summary lines.
    #[serde(skip)]
    pub notes: String,
}

/// One segment in the summary.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentFacts {
    pub segment: u32,
    pub label: String,
    pub customers: u64,
    pub share_of_customers: f64,
    pub total_spend: f64,
    pub share_of_spend: f64,
    pub avg_clv: f64,
    pub avg_purchase_count: f64,
    pub avg_days_since_last_purchase: Option<f64>,
}

impl ReportFacts {
    pub fn of(r: &Report) -> ReportFacts {
        let m = &r.model;
        ReportFacts {
            run_id: m.run_id.clone(),
            as_of: m.as_of,
            seed: m.seed,
            method: m.method,
            k: m.k,
            rule_based_segments: r
                .segments
                .iter()
                .filter(|s| s.segment >= m.k)
                .map(|s| s.segment_label.clone())
                .collect(),
            silhouette: m.silhouette,
            criteria: serde_json::to_value(&m.k_sweep).unwrap_or(serde_json::Value::Null),
            evaluation: m.evaluation.clone(),
            transitions: r.transitions.clone(),
            holdout: m.holdout.clone(),
            notes: {
                let mut notes = String::new();
                describe_transitions(&mut notes, r);
                describe_holdout(&mut notes, r);
                notes
            },
            customers: r.customers.len() as u64,
            segments: r
                .segments
                .iter()
                .map(|s| SegmentFacts {
                    segment: s.segment,
                    label: s.segment_label.clone(),
                    customers: s.num_customers,
                    share_of_customers: s.share_of_customers,
                    total_spend: s.total_spend,
                    share_of_spend: s.share_of_spend,
                    avg_clv: s.avg_clv,
                    avg_purchase_count: s.avg_purchase_count,
                    avg_days_since_last_purchase: s.avg_days_since_last_purchase,
                })
                .collect(),
        }
    }
}

impl RunSummary {
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}\n\n{:<10} {:>9} {:>11} {:>9}  notes\n",
            self.header, "stage", "seconds", "rows", "peak MiB"
        );
        for t in &self.stages {
            let peak = t
                .peak_rss_mib
                .map_or_else(|| "-".to_owned(), |m| m.to_string());
            let _ = writeln!(
                s,
                "{:<10} {:>9.2} {:>11} {:>9}  {}",
                t.stage,
                t.seconds,
                thousands(t.rows),
                peak,
                t.note
            );
        }
        let _ = writeln!(s, "{:<10} {:>9.2}", "total", self.total_seconds);
        s.push('\n');
        s.push_str(&describe_facts(&self.facts));
        s.push('\n');
        let _ = writeln!(s, "tables written to {}", self.destination);
        let _ = writeln!(
            s,
            "  look at them:  {}",
            open_tables_hint(&self.destination)
        );
        if let Some(path) = &self.report_path {
            let _ = writeln!(
                s,
                "report written to {}\n  open it in a browser (one file, works offline)",
                path.display()
            );
        }
        if let Some(mib) = self.peak_rss_mib {
            let _ = writeln!(s, "peak RSS {mib} MiB");
        }
        s
    }

    /// The `--json` document and `run_results.json`.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// Seconds to the millisecond: finer digits are noise in results.
fn millis<S: serde::Serializer>(secs: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((secs * 1000.0).round() / 1000.0)
}

/// Pretty JSON plus a newline; the types here always serialize.
pub fn to_json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize results: {e}\"}}"));
    text.push('\n');
    text
}

/// Segments and model quality as a few readable lines.
pub fn describe_report(r: &Report) -> String {
    describe_facts(&ReportFacts::of(r))
}

/// The plain-words model lines and the segment table.
pub fn describe_facts(f: &ReportFacts) -> String {
    let mut s = match f.method {
        Method::Kmeans => format!("k = {} clusters", f.k),
        Method::Rfm => format!("{} named RFM segments", f.k),
    };
    match f.rule_based_segments.len() {
        0 => {}
        1 => {
            let _ = write!(s, " + 1 rule-based segment ({})", f.rule_based_segments[0]);
        }
        n => {
            let _ = write!(
                s,
                " + {n} rule-based segments ({})",
                f.rule_based_segments.join(", ")
            );
        }
    }
    if f.method == Method::Kmeans {
        let _ = writeln!(
            s,
            "\nKMeans silhouette {} (-1..1: how clearly customers sit in their own cluster; higher is better)",
            fmt_opt(f.silhouette)
        );
    } else {
        s.push('\n');
    }
    match &f.evaluation {
        Some(e) => {
            let _ = writeln!(
                s,
                "ground truth: ARI {:.3}, NMI {:.3} over {} labelled customers (1 = the same grouping, 0 = chance)",
                e.ari,
                e.nmi,
                thousands(e.labelled)
            );
        }
        None => s.push_str("ground truth: none to score against\n"),
    }
    let _ = writeln!(
        s,
        "{:>7}  {:<24} {:>10} {:>18} {:>13} {:>9} {:>8}",
        "segment", "label", "customers", "total spend", "avg CLV", "avg count", "recency"
    );
    for seg in &f.segments {
        let _ = writeln!(
            s,
            "{:>7}  {:<24} {:>10} {:>18} {:>13} {:>9.2} {:>8}",
            seg.segment,
            seg.label,
            thousands(seg.customers),
            money(seg.total_spend),
            money(seg.avg_clv),
            seg.avg_purchase_count,
            seg.avg_days_since_last_purchase
                .map_or_else(|| "-".to_owned(), |d| format!("{d:.1}"))
        );
    }
    s.push_str("(money in the input's currency; recency = average days since the last purchase)\n");
    s.push_str(&f.notes);
    s
}

/// The command that shows the tables at `destination` (as `describe` prints it).
pub fn open_tables_hint(destination: &str) -> String {
    match destination.strip_prefix("sqlite://") {
        Some(path) => format!(
            "sqlite3 {} 'select * from segment_metrics'",
            shell_quote(path)
        ),
        None => format!(
            "psql {} -c 'select * from segment_metrics'",
            shell_quote(destination)
        ),
    }
}

/// Quote for a POSIX shell only when needed.
fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:@".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Money, currency-neutral: `136093659.914` → `136,093,659.91`.
pub fn money(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let cents = (x.abs() * 100.0).round() as u64;
    let sign = if x < 0.0 && cents > 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", thousands(cents / 100), cents % 100)
}

/// The holdout scores, when `--holdout-from` was given.
fn describe_holdout(s: &mut String, r: &Report) {
    let m = &r.model;
    if let Some(h) = &m.holdout {
        let _ = writeln!(
            s,
            "holdout {} to {}: segments explain {:.1}% of next-period spend (eta²), the RFM grid {:.1}%",
            h.from,
            h.to,
            100.0 * h.eta2,
            100.0 * h.rfm_grid_eta2
        );
        for g in &h.segments {
            let _ = writeln!(
                s,
                "{:>7}  {:<24} next-period spend/customer {:>10.2}, repeat rate {:>5.1}%",
                g.id,
                g.label,
                g.next_spend_per_customer,
                100.0 * g.repeat_rate
            );
        }
    }
}

/// The moves from the previous model's segments, when one was given.
fn describe_transitions(s: &mut String, r: &Report) {
    if r.transitions.is_empty() {
        return;
    }
    let stayed: u64 = r
        .transitions
        .iter()
        .filter(|t| t.from_segment == t.to_segment)
        .map(|t| t.customers)
        .sum();
    let total: u64 = r.transitions.iter().map(|t| t.customers).sum();
    let _ = writeln!(
        s,
        "since the previous model: {stayed} of {total} customers kept their segment"
    );
    let mut moves: Vec<_> = r
        .transitions
        .iter()
        .filter(|t| t.from_segment != t.to_segment)
        .collect();
    // Biggest moves first; ties by ids, so the text is deterministic.
    moves.sort_by(|a, b| {
        b.customers
            .cmp(&a.customers)
            .then((a.from_segment, a.to_segment).cmp(&(b.from_segment, b.to_segment)))
    });
    let name = |id: u32| r.model.labels.get(&id).map_or("?", String::as_str);
    for t in moves {
        let _ = writeln!(
            s,
            "  moved {:>8}  {} {} -> {} {}",
            t.customers,
            t.from_segment,
            name(t.from_segment),
            t.to_segment,
            name(t.to_segment)
        );
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.3}"))
}

/// Where `run` writes its report by default: beside the SQLite file, or in
/// the current directory for PostgreSQL.
pub fn default_report_path(destination: &str) -> PathBuf {
    const NAME: &str = "segpipe-report.html";
    match destination.strip_prefix("sqlite://") {
        Some(db) => Path::new(db)
            .parent()
            .map_or_else(|| PathBuf::from(NAME), |dir| dir.join(NAME)),
        None => PathBuf::from(NAME),
    }
}

/// Peak resident memory of this process (Linux), in MiB.
pub fn peak_rss_mib() -> Option<u64> {
    proc_status_mib("VmHWM:")
}

/// Current resident memory of this process (Linux), in MiB.
pub fn rss_mib() -> Option<u64> {
    proc_status_mib("VmRSS:")
}

/// A `kB` field of /proc/self/status, in MiB.
fn proc_status_mib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_counts_get_thousands_separators() {
        assert_eq!(money(136_093_659.914), "136,093,659.91");
        assert_eq!(money(0.0), "0.00");
        assert_eq!(money(999.995), "1,000.00");
        assert_eq!(money(-1234.5), "-1,234.50");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(13_200_000), "13,200,000");
    }

    #[test]
    fn tables_hint_names_the_client_for_each_backend() {
        assert_eq!(
            open_tables_hint("sqlite://segpipe.db"),
            "sqlite3 segpipe.db 'select * from segment_metrics'"
        );
        assert_eq!(
            open_tables_hint("postgres://u:***@h:5432/db"),
            "psql 'postgres://u:***@h:5432/db' -c 'select * from segment_metrics'"
        );
    }

    #[test]
    fn report_goes_beside_the_sqlite_file() {
        assert_eq!(
            default_report_path("sqlite://segpipe.db"),
            PathBuf::from("segpipe-report.html")
        );
        assert_eq!(
            default_report_path("sqlite://out/x.db"),
            PathBuf::from("out/segpipe-report.html")
        );
        assert_eq!(
            default_report_path("postgres://u@h/db"),
            PathBuf::from("segpipe-report.html")
        );
    }
}
