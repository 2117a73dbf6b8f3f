//! Data-quality gates (DESIGN §6): the second line of defence that stops a
//! run before load when its input is too broken to replace good tables:
//! too many rejected customer rows, too many unparseable dates, or almost
//! nobody with a purchase (an upstream answering "no purchases" for everyone
//! must never wipe the segments). Thresholds come from `[quality]`.

use crate::model::{Quality, Report};

/// The thresholds, each a share from 0 to 1 (DESIGN §6 defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct Gates {
    pub max_rejected_rows: f64,
    pub max_unparseable_dates: f64,
    pub max_no_purchases: f64,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            max_rejected_rows: 0.05,
            max_unparseable_dates: 0.05,
            max_no_purchases: 0.90,
        }
    }
}

/// A gate that tripped: a runtime failure (exit 1), nothing loaded.
#[derive(Debug, thiserror::Error)]
#[error(
    "data-quality gate `{rule}` tripped: {observed:.1}% is over the {limit:.1}% allowed ({detail}); nothing was loaded (set [quality] {rule} to accept it)"
)]
pub struct Error {
    pub rule: &'static str,
    pub observed: f64,
    pub limit: f64,
    pub detail: String,
}

/// Check `report` against `gates`; the first gate over its limit fails.
pub fn check(report: &Report, gates: &Gates) -> Result<(), Error> {
    let no_purchases = report
        .customers
        .iter()
        .filter(|c| c.purchase_count == 0)
        .count() as u64;
    check_counts(
        &report.quality,
        report.customers.len() as u64,
        no_purchases,
        gates,
    )
}

fn check_counts(
    q: &Quality,
    customers: u64,
    no_purchases: u64,
    gates: &Gates,
) -> Result<(), Error> {
    let rejected: u64 =
        q.0.iter()
            .filter(|c| c.rule.starts_with("rejected_"))
            .map(|c| c.rows)
            .sum();
    let rows = rejected + q.get("customers_valid") + q.get("duplicate_customers_dropped");
    let kept = q
        .get("purchases_fetched")
        .saturating_sub(q.get("purchases_unmatched_dropped"))
        .saturating_sub(q.get("purchases_rejected"))
        .saturating_sub(q.get("duplicate_purchases_dropped"));
    let dated = kept.saturating_sub(q.get("date_missing"));
    let unparseable = q.get("date_unparseable");
    let share = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    let checks = [
        (
            "max_rejected_rows",
            share(rejected, rows),
            gates.max_rejected_rows,
            format!("{rejected} of {rows} customer rows rejected"),
        ),
        (
            "max_unparseable_dates",
            share(unparseable, dated),
            gates.max_unparseable_dates,
            format!("{unparseable} of {dated} dated purchases unparseable"),
        ),
        (
            "max_no_purchases",
            share(no_purchases, customers),
            gates.max_no_purchases,
            format!("{no_purchases} of {customers} customers with no purchases"),
        ),
    ];
    for (rule, observed, limit, detail) in checks {
        if observed > limit {
            return Err(Error {
                rule,
                observed: observed * 100.0,
                limit: limit * 100.0,
                detail,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(rules: &[(&str, u64)]) -> Quality {
        let mut q = Quality::default();
        for (rule, n) in rules {
            q.add(rule, *n);
        }
        q
    }

    // See: issue 8
    #[test]
    fn issue_8_gates_trip_on_each_rule_and_pass_clean_data() {
        let g = Gates::default();
        let clean = q(&[("customers_valid", 100), ("purchases_fetched", 1000)]);
        assert!(check_counts(&clean, 100, 10, &g).is_ok());
        let rejects = q(&[("customers_valid", 90), ("rejected_invalid_mobile", 10)]);
        assert_eq!(
            check_counts(&rejects, 90, 0, &g).map_err(|e| e.rule),
            Err("max_rejected_rows")
        );
        let dates = q(&[
            ("customers_valid", 10),
            ("purchases_fetched", 100),
            ("date_unparseable", 6),
        ]);
        assert_eq!(
            check_counts(&dates, 10, 0, &g).map_err(|e| e.rule),
            Err("max_unparseable_dates")
        );
        let err = check_counts(&q(&[("customers_valid", 100)]), 100, 95, &g).expect_err("nobody");
        assert_eq!(
            err.to_string(),
            "data-quality gate `max_no_purchases` tripped: 95.0% is over the 90.0% allowed (95 of 100 customers with no purchases); nothing was loaded (set [quality] max_no_purchases to accept it)"
        );
    }
}
