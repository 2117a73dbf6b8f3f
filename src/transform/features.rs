//! Features: the per-customer behaviour numbers of DESIGN §4 (clv, amounts,
//! counts, recency, frequency), computed from cleaned purchases.
//!
//! Values are kept unrounded here (clustering wants the raw numbers);
//! `aggregate` rounds when it builds report rows. Scaling is not done here.

use chrono::NaiveDate;

use crate::model::Joined;

use super::clean::Cleaned;

/// Shortest active span used by `purchase_frequency`, so one or two purchases
/// on nearby days do not read as a huge rate.
pub const MIN_SPAN_DAYS: i64 = 30;

/// Behaviour of one customer. What cannot be known is `None`, never a
/// stand-in (DESIGN §4): clustering imputes for itself (`scale`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Features {
    /// Sum of non-null amounts (0 when there is none: nothing was spent).
    pub clv: f64,
    /// Over non-null amounts; `None` when there is none.
    pub avg_purchase_amount: Option<f64>,
    pub max_purchase_amount: Option<f64>,
    pub min_purchase_amount: Option<f64>,
    /// Purchases after dedupe, whatever their nulls.
    pub purchase_count: u32,
    /// Over valid (parsed, not future) dates; `None` without one.
    pub first_purchase: Option<NaiveDate>,
    pub last_purchase: Option<NaiveDate>,
    pub days_since_first_purchase: Option<i32>,
    pub days_since_last_purchase: Option<i32>,
    /// Purchases per 30 days over max(last - first, 30 days); `None`
    /// without a dated purchase.
    pub purchase_frequency: Option<f64>,
}

/// Features of every customer, in `joined.customers` order (none dropped).
pub fn features(joined: &Joined, cleaned: &Cleaned) -> Vec<Features> {
    (0..joined.customers.len())
        .map(|c| customer_features(cleaned.purchases(joined, c), cleaned.as_of))
        .collect()
}

fn customer_features(
    purchases: impl Iterator<Item = super::clean::CleanPurchase>,
    as_of: NaiveDate,
) -> Features {
    let mut f = Features::default();
    let mut priced = 0u32;
    for p in purchases {
        f.purchase_count += 1;
        if let Some(a) = p.amount {
            priced += 1;
            f.clv += a;
            f.max_purchase_amount = Some(f.max_purchase_amount.map_or(a, |m| m.max(a)));
            f.min_purchase_amount = Some(f.min_purchase_amount.map_or(a, |m| m.min(a)));
        }
        if let Some(d) = p.date {
            f.first_purchase = Some(f.first_purchase.map_or(d, |x| x.min(d)));
            f.last_purchase = Some(f.last_purchase.map_or(d, |x| x.max(d)));
        }
    }
    if priced > 0 {
        f.avg_purchase_amount = Some(f.clv / f64::from(priced));
    }
    if let (Some(first), Some(last)) = (f.first_purchase, f.last_purchase) {
        let days = |d: NaiveDate| i32::try_from((as_of - d).num_days()).unwrap_or(i32::MAX);
        f.days_since_first_purchase = Some(days(first));
        f.days_since_last_purchase = Some(days(last));
        let span = (last - first).num_days().max(MIN_SPAN_DAYS) as f64;
        f.purchase_frequency = Some(f64::from(f.purchase_count) * 30.0 / span);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Customer, CustomerIdx, Purchase, RawDate};
    use crate::transform::clean::clean;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    fn joined(purchases: Vec<Purchase>, customers: usize) -> Joined {
        Joined {
            customers: (0..customers)
                .map(|i| Customer {
                    mobile: format!("91980000000{i}"),
                    name: None,
                    age: Some(30),
                    income: Some(1.0),
                    gender: None,
                })
                .collect(),
            purchases,
            stores: vec!["DMart".into()],
            ..Joined::default()
        }
    }

    #[test]
    fn hand_made_customer() {
        let as_of = d(2026, 6, 30);
        let j = joined(
            vec![
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Ymd(d(2026, 1, 1)),
                    Some(100.0),
                    Some(0),
                ),
                // DD-MM-YYYY counts as a date: the last one.
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Dmy(d(2026, 6, 20)),
                    Some(50.0),
                    Some(0),
                ),
                // Null amount: counted as a purchase, not as money.
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Ymd(d(2026, 3, 1)),
                    None,
                    Some(0),
                ),
                // After as-of: no date features, but the money counts.
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Ymd(d(2026, 7, 15)),
                    Some(250.0),
                    None,
                ),
            ],
            1,
        );
        let c = clean(&j, as_of);
        let f = &features(&j, &c)[0];
        assert_eq!(f.purchase_count, 4);
        assert_eq!(f.clv, 400.0);
        assert!((f.avg_purchase_amount.expect("priced") - 400.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            (f.max_purchase_amount, f.min_purchase_amount),
            (Some(250.0), Some(50.0))
        );
        assert_eq!(f.first_purchase, Some(d(2026, 1, 1)));
        assert_eq!(f.last_purchase, Some(d(2026, 6, 20)));
        assert_eq!(f.days_since_first_purchase, Some(180));
        assert_eq!(f.days_since_last_purchase, Some(10));
        // 170-day span: 4 purchases * 30 / 170.
        assert!((f.purchase_frequency.expect("dated") - 120.0 / 170.0).abs() < 1e-12);
    }

    // See: issue 9
    #[test]
    fn issue_9_no_purchases_and_no_dates_are_null_not_stand_ins() {
        let as_of = d(2026, 6, 30);
        let j = joined(
            vec![Purchase::new(
                CustomerIdx::from_index(1),
                RawDate::Null,
                None,
                None,
            )],
            2,
        );
        let c = clean(&j, as_of);
        let f = features(&j, &c);
        let none = Features::default();
        assert_eq!(f[0], none);
        assert_eq!(f[0].days_since_last_purchase, None);
        assert_eq!(f[0].avg_purchase_amount, None);
        assert_eq!(
            f[1],
            Features {
                purchase_count: 1,
                ..none
            }
        );
    }

    #[test]
    fn span_is_floored_at_thirty_days() {
        let as_of = d(2026, 6, 30);
        let j = joined(
            vec![
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Ymd(d(2026, 6, 1)),
                    Some(1.0),
                    Some(0),
                ),
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Ymd(d(2026, 6, 2)),
                    Some(1.0),
                    Some(0),
                ),
            ],
            1,
        );
        let c = clean(&j, as_of);
        assert_eq!(features(&j, &c)[0].purchase_frequency, Some(2.0));
    }
}
