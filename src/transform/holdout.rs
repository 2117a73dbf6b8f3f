//! Holdout validation (`--holdout-from DATE`): split the purchases at DATE,
//! fit on the earlier ones and score the segments on the later ones.
//!
//! Definitions (recorded in the model's `holdout` object):
//! - The fit sees the purchases dated before DATE, as of the day before DATE:
//!   the report tables of such a run describe the customers on that day.
//! - The holdout period is DATE ..= as-of. A customer's next-period spend is
//!   the sum of the valid amounts of their purchases dated in it (0 when
//!   none); a purchase in it counts as a return whatever its amount.
//! - Undated purchases (null, unparseable or after as-of) cannot be placed
//!   in either period: they are left out of both and counted
//!   (`holdout_undated_purchases_excluded`). Duplicates are dropped first.
//! - eta² is the share of the variance of next-period spend, over every
//!   valid customer, explained by the group means: between-group sum of
//!   squares over total sum of squares (0 when every spend is equal).
//! - Each group's repeat rate is the share of its customers with at least
//!   one purchase in the holdout period (for `no purchases` that is a first
//!   purchase).
//! - The baseline is the plain RFM grid: each (r, f, m) cell of the fit
//!   period's scores is a group (125 possible), non-buyers one more group.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::model::{Holdout, HoldoutGroup, Joined, Report, round2, round4};

use super::clean;

/// The holdout period's outcome per customer.
pub struct Outcome {
    /// Per customer: spend and purchases in the holdout period.
    pub next_spend: Vec<f64>,
    pub next_purchases: Vec<u32>,
    pub scored_purchases: u64,
    pub undated: u64,
}

/// Split `joined` (already normalized) at `from`, with `as_of` closing the
/// holdout period: `joined` with only the purchases dated before `from`,
/// and what happened from `from` on.
pub fn split(joined: &Joined, as_of: NaiveDate, from: NaiveDate) -> (Joined, Outcome) {
    let n = joined.customers.len();
    let cleaned = clean::clean(joined, as_of);
    let mut keep = vec![false; joined.purchases.len()];
    let mut next_spend = vec![0.0; n];
    let mut next_purchases = vec![0u32; n];
    let (mut scored, mut undated) = (0u64, 0u64);
    for c in 0..n {
        let rows = cleaned.ranges[c].clone().filter(|&i| !cleaned.dropped[i]);
        // `Cleaned::purchases` yields the kept rows in the same order.
        for (i, p) in rows.zip(cleaned.purchases(joined, c)) {
            match p.date {
                Some(d) if d < from => keep[i] = true,
                Some(_) => {
                    next_spend[c] += p.amount.unwrap_or(0.0);
                    next_purchases[c] += 1;
                    scored += 1;
                }
                None => undated += 1,
            }
        }
    }
    let fit = Joined {
        customers: joined.customers.clone(),
        positions: joined.positions.clone(),
        spool: None,
        purchases: joined
            .purchases
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(p, _)| *p)
            .collect(),
        stores: joined.stores.clone(),
        odd_dates: joined.odd_dates.clone(),
        source_header: joined.source_header.clone(),
        rejects: joined.rejects.clone(),
        purchase_rejects: joined.purchase_rejects.clone(),
        purchase_header: joined.purchase_header.clone(),
        truth: joined.truth.clone(),
        quality: joined.quality.clone(),
    };
    let outcome = Outcome {
        next_spend,
        next_purchases,
        scored_purchases: scored,
        undated,
    };
    (fit, outcome)
}

/// Score the segments of `report` (fitted on the split's first half) on the
/// holdout period.
pub fn score(report: &Report, split: &Outcome, from: NaiveDate, to: NaiveDate) -> Holdout {
    let seg_of: Vec<(u32, String)> = report
        .customers
        .iter()
        .map(|c| (c.segment, c.segment_label.to_string()))
        .collect();
    let (eta2, segments) = groups(&seg_of, &split.next_spend, &split.next_purchases);
    let cell_of: Vec<(u32, String)> = report
        .customers
        .iter()
        .map(|c| match (c.r_score, c.f_score, c.m_score) {
            (Some(r), Some(f), Some(m)) => (
                100 * u32::from(r) + 10 * u32::from(f) + u32::from(m),
                format!("r{r} f{f} m{m}"),
            ),
            _ => (0, super::label::NO_PURCHASES.to_owned()),
        })
        .collect();
    let (rfm_grid_eta2, rfm_grid) = groups(&cell_of, &split.next_spend, &split.next_purchases);
    Holdout {
        from,
        to,
        customers: report.customers.len() as u64,
        eta2,
        segments,
        rfm_grid_eta2,
        rfm_grid,
    }
}

/// eta² of `y` by group, and each group's figures, ordered by group id.
fn groups(group: &[(u32, String)], y: &[f64], buys: &[u32]) -> (f64, Vec<HoldoutGroup>) {
    #[derive(Default)]
    struct Acc {
        label: String,
        n: u64,
        sum: f64,
        returned: u64,
    }
    let mut acc: BTreeMap<u32, Acc> = BTreeMap::new();
    for ((id, label), (&v, &b)) in group.iter().zip(y.iter().zip(buys)) {
        let a = acc.entry(*id).or_insert_with(|| Acc {
            label: label.clone(),
            ..Acc::default()
        });
        a.n += 1;
        a.sum += v;
        a.returned += u64::from(b > 0);
    }
    (round4(eta2(group, y)), {
        acc.into_iter()
            .map(|(id, a)| HoldoutGroup {
                id,
                label: a.label,
                customers: a.n,
                next_spend_per_customer: round2(a.sum / a.n.max(1) as f64),
                repeat_rate: round4(a.returned as f64 / a.n.max(1) as f64),
            })
            .collect()
    })
}

/// Between-group over total sum of squares of `y` grouped by `group`.
pub fn eta2(group: &[(u32, String)], y: &[f64]) -> f64 {
    let n = y.len();
    if n == 0 {
        return 0.0;
    }
    let mean = y.iter().sum::<f64>() / n as f64;
    let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let mut by: BTreeMap<u32, (f64, u64)> = BTreeMap::new();
    for ((id, _), &v) in group.iter().zip(y) {
        let e = by.entry(*id).or_default();
        e.0 += v;
        e.1 += 1;
    }
    let between: f64 = by
        .values()
        .map(|&(s, k)| k as f64 * (s / k as f64 - mean).powi(2))
        .sum();
    (between / total).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(ids: &[u32]) -> Vec<(u32, String)> {
        ids.iter().map(|&i| (i, format!("s{i}"))).collect()
    }

    #[test]
    fn split_puts_each_dated_purchase_in_one_period_and_leaves_undated_out() {
        use crate::model::{Customer, CustomerIdx, Purchase, RawDate};
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).expect("valid date");
        let p = |c, date, amount| Purchase::new(CustomerIdx::from_index(c), date, amount, Some(0));
        let joined = Joined {
            customers: (0..2)
                .map(|i| Customer {
                    mobile: format!("9198000000{i:02}"),
                    name: None,
                    age: None,
                    income: None,
                    gender: None,
                })
                .collect(),
            purchases: vec![
                p(0, RawDate::Ymd(d(1, 10)), Some(10.0)), // fit
                p(0, RawDate::Ymd(d(2, 1)), Some(20.0)),  // holdout (the split day)
                p(0, RawDate::Dmy(d(2, 20)), None),       // holdout, no amount
                p(0, RawDate::Null, Some(5.0)),           // undated: neither
                p(1, RawDate::Ymd(d(1, 31)), Some(7.0)),  // fit (the day before)
                p(1, RawDate::Ymd(d(3, 5)), Some(9.0)),   // after as-of: neither
            ],
            stores: vec!["s".into()],
            ..Joined::default()
        };
        let (fit, out) = split(&joined, d(3, 1), d(2, 1));
        let kept: Vec<f64> = fit.purchases.iter().filter_map(|p| p.amount()).collect();
        assert_eq!(kept, vec![10.0, 7.0]);
        assert_eq!(fit.customers.len(), 2);
        assert_eq!(out.next_spend, vec![20.0, 0.0]);
        assert_eq!(out.next_purchases, vec![2, 0]);
        assert_eq!((out.scored_purchases, out.undated), (2, 2));
    }

    #[test]
    fn eta2_hand_computed() {
        // Groups {0: 1, 3}, {1: 5, 7}: mean 4, total SS 9+1+1+9 = 20,
        // between SS 2*(2-4)^2 + 2*(6-4)^2 = 16 → 0.8.
        let y = [1.0, 3.0, 5.0, 7.0];
        assert!((eta2(&g(&[0, 0, 1, 1]), &y) - 0.8).abs() < 1e-12);
        // One group explains nothing; one group per customer explains all.
        assert_eq!(eta2(&g(&[0, 0, 0, 0]), &y), 0.0);
        assert!((eta2(&g(&[0, 1, 2, 3]), &y) - 1.0).abs() < 1e-12);
        // Constant spend: nothing to explain.
        assert_eq!(eta2(&g(&[0, 1]), &[2.0, 2.0]), 0.0);
    }

    #[test]
    fn group_figures_spend_per_customer_and_repeat_rate() {
        let (e, gs) = groups(&g(&[1, 0, 1, 1]), &[0.0, 10.0, 30.0, 0.0], &[0, 1, 2, 1]);
        // Both groups average 10: the grouping explains nothing.
        assert_eq!(e, 0.0);
        assert_eq!(gs.len(), 2);
        assert_eq!((gs[0].id, gs[0].customers), (0, 1));
        assert_eq!(gs[0].next_spend_per_customer, 10.0);
        assert_eq!(gs[0].repeat_rate, 1.0);
        assert_eq!(
            (gs[1].id, gs[1].customers, gs[1].label.as_str()),
            (1, 3, "s1")
        );
        assert_eq!(gs[1].next_spend_per_customer, 10.0);
        // A purchase without an amount still counts as a return.
        assert_eq!(gs[1].repeat_rate, 0.6667);
    }
}
