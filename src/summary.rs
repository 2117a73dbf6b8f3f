//! What `run` and the step subcommands print: the per-stage table, the
//! segment lines, and the process's memory figures behind them.

use std::fmt::Write as _;

use crate::model::{Method, Report};

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
    let mut s = match m.method {
        Method::Kmeans => format!("k = {} (KMeans), silhouette {}", m.k, fmt_opt(m.silhouette)),
        Method::Rfm => format!("{} named RFM segments", m.k),
    };
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
    describe_transitions(&mut s, r);
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
    s
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
