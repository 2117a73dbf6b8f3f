//! What `run` and the step subcommands print: the per-stage table, the
//! segment lines, and the process's memory figures behind them.

use std::fmt::Write as _;

use crate::model::Report;

/// One stage's line in the summary.
#[derive(Clone, Debug)]
pub struct StageTiming {
    pub stage: &'static str,
    pub seconds: f64,
    pub rows: u64,
    /// Peak RSS of the process when the stage ended (monotonic).
    pub peak_rss_mib: Option<u64>,
    pub note: String,
}

/// What `run` did, printed at the end.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub header: String,
    pub stages: Vec<StageTiming>,
    pub report: String,
    pub destination: String,
    pub peak_rss_mib: Option<u64>,
}

impl RunSummary {
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}\n\n{:<10} {:>9} {:>11} {:>9}  notes\n",
            self.header, "stage", "seconds", "rows", "peak MiB"
        );
        let mut total = 0.0;
        for t in &self.stages {
            total += t.seconds;
            let peak = t
                .peak_rss_mib
                .map_or_else(|| "-".to_owned(), |m| m.to_string());
            let _ = writeln!(
                s,
                "{:<10} {:>9.2} {:>11} {:>9}  {}",
                t.stage, t.seconds, t.rows, peak, t.note
            );
        }
        let _ = writeln!(s, "{:<10} {:>9.2}", "total", total);
        s.push('\n');
        s.push_str(&self.report);
        let _ = writeln!(s, "tables written to {}", self.destination);
        if let Some(mib) = self.peak_rss_mib {
            let _ = writeln!(s, "peak RSS {mib} MiB");
        }
        s
    }
}

/// Segments and model quality as a few readable lines.
pub fn describe_report(r: &Report) -> String {
    let m = &r.model;
    let mut s = format!("k = {} (KMeans), silhouette {}", m.k, fmt_opt(m.silhouette));
    match &m.evaluation {
        Some(e) => {
            let _ = write!(
                s,
                ", ARI {:.3}, NMI {:.3} vs {} planted personas",
                e.ari, e.nmi, e.labelled
            );
        }
        None => s.push_str(", no ground truth to score against"),
    }
    s.push('\n');
    let _ = writeln!(
        s,
        "{:>7}  {:<24} {:>10} {:>14} {:>10} {:>9} {:>8}",
        "segment", "label", "customers", "total_spend", "avg_clv", "avg_count", "recency"
    );
    for seg in &r.segments {
        let _ = writeln!(
            s,
            "{:>7}  {:<24} {:>10} {:>14.2} {:>10.2} {:>9.2} {:>8}",
            seg.segment,
            seg.segment_label,
            seg.num_customers,
            seg.total_spend,
            seg.avg_clv,
            seg.avg_purchase_count,
            seg.avg_days_since_last_purchase
                .map_or_else(|| "-".to_owned(), |d| format!("{d:.1}"))
        );
    }
    s
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.3}"))
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
