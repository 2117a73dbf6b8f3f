//! Features: the per-customer behaviour numbers of DESIGN §4 (clv, amounts,
//! counts, recency, frequency), computed from cleaned purchases.
//!
//! Values are kept unrounded here (clustering wants the raw numbers);
//! `aggregate` rounds when it builds report rows. Scaling is not done here.
//!
//! A run holds one [`Features`] per customer, so its size weighs on a
//! 10M-customer transform: as plain `Option` fields it was 104 bytes
//! (0.97 GiB). It is 48 (0.45 GiB): a missing amount is one reserved NaN
//! bit pattern instead of an `Option<f64>`, a missing recency is
//! `i32::MIN`, and the two values that follow from the others
//! (`purchase_frequency`, `days_since_first_purchase`) are recomputed on read
//! with the operations that used to store them, so every value is bit for
//! bit what it was.

use chrono::NaiveDate;

use crate::model::Joined;
use crate::people::{put, take};

use super::clean::Cleaned;

/// Shortest active span used by `purchase_frequency`, so one or two purchases
/// on nearby days do not read as a huge rate.
pub const MIN_SPAN_DAYS: i64 = 30;

/// "No recency". Never a real value: days between two `NaiveDate`s are
/// within ±2^28.
const NO_DAYS: i32 = i32::MIN;

/// Behaviour of one customer. What cannot be known is `None`, never a
/// stand-in (DESIGN §4): clustering imputes for itself (`scale`).
///
/// Read through the accessors, one per feature. Built by [`features`], or
/// from stored values with `Features::default()` (no purchases) and the
/// `with_*` setters. `purchase_frequency` and `days_since_first_purchase`
/// have no setter: they are derived from the dates, the count and
/// `days_since_last_purchase`, as [`features`] computes them.
#[derive(Clone)]
pub struct Features {
    clv: f64,
    /// the `people` NaN sentinel for `None`, as are `max` and `min`.
    avg: f64,
    max: f64,
    min: f64,
    purchase_count: u32,
    first_purchase: Option<NaiveDate>,
    last_purchase: Option<NaiveDate>,
    /// `NO_DAYS` for `None`.
    days_since_last: i32,
}

impl Default for Features {
    /// No purchases: clv 0, count 0, everything else `None`.
    fn default() -> Self {
        Features {
            clv: 0.0,
            avg: put(None),
            max: put(None),
            min: put(None),
            purchase_count: 0,
            first_purchase: None,
            last_purchase: None,
            days_since_last: NO_DAYS,
        }
    }
}

impl Features {
    /// Sum of non-null amounts (0 when there is none: nothing was spent).
    pub fn clv(&self) -> f64 {
        self.clv
    }

    /// Over non-null amounts; `None` when there is none.
    pub fn avg_purchase_amount(&self) -> Option<f64> {
        take(self.avg)
    }

    pub fn max_purchase_amount(&self) -> Option<f64> {
        take(self.max)
    }

    pub fn min_purchase_amount(&self) -> Option<f64> {
        take(self.min)
    }

    /// Purchases after dedupe, whatever their nulls.
    pub fn purchase_count(&self) -> u32 {
        self.purchase_count
    }

    /// Over valid (parsed, not future) dates; `None` without one.
    pub fn first_purchase(&self) -> Option<NaiveDate> {
        self.first_purchase
    }

    pub fn last_purchase(&self) -> Option<NaiveDate> {
        self.last_purchase
    }

    /// `as_of - first_purchase`, as `as_of - last` plus `last - first`:
    /// exact in `i64`, and the same clamp as [`features`] (which no pair of
    /// dates reaches), so it equals the value computed from `as_of`.
    pub fn days_since_first_purchase(&self) -> Option<i32> {
        let (first, last) = (self.first_purchase?, self.last_purchase?);
        let since_last = i64::from(self.days_since_last_purchase()?);
        Some(i32::try_from(since_last + (last - first).num_days()).unwrap_or(i32::MAX))
    }

    pub fn days_since_last_purchase(&self) -> Option<i32> {
        (self.days_since_last != NO_DAYS).then_some(self.days_since_last)
    }

    /// Purchases per 30 days over max(last - first, 30 days); `None`
    /// without a dated purchase.
    pub fn purchase_frequency(&self) -> Option<f64> {
        let (first, last) = (self.first_purchase?, self.last_purchase?);
        let span = (last - first).num_days().max(MIN_SPAN_DAYS) as f64;
        Some(f64::from(self.purchase_count) * 30.0 / span)
    }

    #[must_use]
    pub fn with_clv(mut self, clv: f64) -> Self {
        self.clv = clv;
        self
    }

    /// A `Some` of the reserved NaN pattern would read back as `None`; no
    /// arithmetic on parsed amounts produces that payload.
    #[must_use]
    pub fn with_avg_purchase_amount(mut self, x: Option<f64>) -> Self {
        self.avg = put(x);
        self
    }

    #[must_use]
    pub fn with_max_purchase_amount(mut self, x: Option<f64>) -> Self {
        self.max = put(x);
        self
    }

    #[must_use]
    pub fn with_min_purchase_amount(mut self, x: Option<f64>) -> Self {
        self.min = put(x);
        self
    }

    #[must_use]
    pub fn with_purchase_count(mut self, n: u32) -> Self {
        self.purchase_count = n;
        self
    }

    #[must_use]
    pub fn with_first_purchase(mut self, d: Option<NaiveDate>) -> Self {
        self.first_purchase = d;
        self
    }

    #[must_use]
    pub fn with_last_purchase(mut self, d: Option<NaiveDate>) -> Self {
        self.last_purchase = d;
        self
    }

    /// `Some(i32::MIN)` would read back as `None`; [`features`] never makes it.
    #[must_use]
    pub fn with_days_since_last_purchase(mut self, days: Option<i32>) -> Self {
        self.days_since_last = days.unwrap_or(NO_DAYS);
        self
    }
}

impl PartialEq for Features {
    /// On the values read, so a `None` equals a `None` whatever its bits and
    /// a NaN amount is unequal to itself, as an `Option<f64>` field was.
    fn eq(&self, o: &Self) -> bool {
        self.clv() == o.clv()
            && self.avg_purchase_amount() == o.avg_purchase_amount()
            && self.max_purchase_amount() == o.max_purchase_amount()
            && self.min_purchase_amount() == o.min_purchase_amount()
            && self.purchase_count() == o.purchase_count()
            && self.first_purchase() == o.first_purchase()
            && self.last_purchase() == o.last_purchase()
            && self.days_since_first_purchase() == o.days_since_first_purchase()
            && self.days_since_last_purchase() == o.days_since_last_purchase()
            && self.purchase_frequency() == o.purchase_frequency()
    }
}

impl std::fmt::Debug for Features {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Features")
            .field("clv", &self.clv())
            .field("avg_purchase_amount", &self.avg_purchase_amount())
            .field("max_purchase_amount", &self.max_purchase_amount())
            .field("min_purchase_amount", &self.min_purchase_amount())
            .field("purchase_count", &self.purchase_count())
            .field("first_purchase", &self.first_purchase())
            .field("last_purchase", &self.last_purchase())
            .field(
                "days_since_first_purchase",
                &self.days_since_first_purchase(),
            )
            .field("days_since_last_purchase", &self.days_since_last_purchase())
            .field("purchase_frequency", &self.purchase_frequency())
            .finish()
    }
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
    let mut purchase_count = 0u32;
    let mut priced = 0u32;
    let mut clv = 0.0;
    let mut max_purchase_amount: Option<f64> = None;
    let mut min_purchase_amount: Option<f64> = None;
    let mut first_purchase: Option<NaiveDate> = None;
    let mut last_purchase: Option<NaiveDate> = None;
    for p in purchases {
        purchase_count += 1;
        if let Some(a) = p.amount {
            priced += 1;
            clv += a;
            max_purchase_amount = Some(max_purchase_amount.map_or(a, |m| m.max(a)));
            min_purchase_amount = Some(min_purchase_amount.map_or(a, |m| m.min(a)));
        }
        if let Some(d) = p.date {
            first_purchase = Some(first_purchase.map_or(d, |x| x.min(d)));
            last_purchase = Some(last_purchase.map_or(d, |x| x.max(d)));
        }
    }
    let avg_purchase_amount = (priced > 0).then(|| clv / f64::from(priced));
    // Only with both dates, like the derived features that build on it.
    let days_since_last_purchase = first_purchase
        .and(last_purchase)
        .map(|last| i32::try_from((as_of - last).num_days()).unwrap_or(i32::MAX));
    Features {
        clv,
        avg: put(avg_purchase_amount),
        max: put(max_purchase_amount),
        min: put(min_purchase_amount),
        purchase_count,
        first_purchase,
        last_purchase,
        days_since_last: days_since_last_purchase.unwrap_or(NO_DAYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Customer, CustomerIdx, Purchase, RawDate};
    use crate::transform::clean::{CleanPurchase, clean};

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
        assert_eq!(f.purchase_count(), 4);
        assert_eq!(f.clv(), 400.0);
        assert!((f.avg_purchase_amount().expect("priced") - 400.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            (f.max_purchase_amount(), f.min_purchase_amount()),
            (Some(250.0), Some(50.0))
        );
        assert_eq!(f.first_purchase(), Some(d(2026, 1, 1)));
        assert_eq!(f.last_purchase(), Some(d(2026, 6, 20)));
        assert_eq!(f.days_since_first_purchase(), Some(180));
        assert_eq!(f.days_since_last_purchase(), Some(10));
        // 170-day span: 4 purchases * 30 / 170.
        assert!((f.purchase_frequency().expect("dated") - 120.0 / 170.0).abs() < 1e-12);
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
        assert_eq!(f[0].days_since_last_purchase(), None);
        assert_eq!(f[0].avg_purchase_amount(), None);
        assert_eq!(f[1], none.with_purchase_count(1));
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
        assert_eq!(features(&j, &c)[0].purchase_frequency(), Some(2.0));
    }

    #[test]
    fn a_customer_is_48_bytes() {
        // 10M customers: 0.45 GiB of features (0.97 GiB as plain fields).
        assert_eq!(std::mem::size_of::<Features>(), 48);
    }

    #[test]
    fn a_real_nan_amount_stays_some_and_none_stays_none() {
        let f = Features::default()
            .with_avg_purchase_amount(Some(f64::NAN))
            .with_max_purchase_amount(Some(-f64::NAN))
            .with_min_purchase_amount(None);
        assert!(f.avg_purchase_amount().is_some_and(f64::is_nan));
        assert!(f.max_purchase_amount().is_some_and(f64::is_nan));
        assert_eq!(f.min_purchase_amount(), None);
        assert_eq!(Features::default().avg_purchase_amount(), None);
        // Compared as values: NaN is unequal to itself, None equals None.
        assert_ne!(f, f.clone());
        assert_eq!(
            f.with_avg_purchase_amount(None)
                .with_max_purchase_amount(None),
            Features::default()
        );
    }

    #[test]
    fn derived_values_are_the_ones_computed_from_as_of() {
        // Far-apart dates, the widest chrono allows, and same-day ones.
        for (first, last, as_of) in [
            (d(2026, 1, 1), d(2026, 6, 20), d(2026, 6, 30)),
            (d(2026, 6, 30), d(2026, 6, 30), d(2026, 6, 30)),
            (NaiveDate::MIN, d(1970, 1, 1), NaiveDate::MAX),
            (NaiveDate::MIN, NaiveDate::MAX, NaiveDate::MAX),
            (d(2026, 1, 1), d(2026, 6, 20), NaiveDate::MIN),
        ] {
            for count in [1u32, 2, 7] {
                let purchases = (0..count).map(|i| CleanPurchase {
                    date: Some(if i == 0 { first } else { last }),
                    amount: Some(f64::from(i) * 0.1),
                    store: 0,
                });
                let f = customer_features(purchases, as_of);
                let last = if count == 1 { first } else { last };
                let days = |x: NaiveDate| i32::try_from((as_of - x).num_days()).unwrap_or(i32::MAX);
                let span = (last - first).num_days().max(MIN_SPAN_DAYS) as f64;
                assert_eq!(f.days_since_first_purchase(), Some(days(first)));
                assert_eq!(f.days_since_last_purchase(), Some(days(last)));
                assert_eq!(
                    f.purchase_frequency().map(f64::to_bits),
                    Some((f64::from(count) * 30.0 / span).to_bits())
                );
            }
        }
    }

    /// The computation as it was with plain `Option` fields, kept to check
    /// the compact layout against: (amounts as bits, dates, days, frequency).
    #[allow(clippy::type_complexity)]
    fn plain(
        purchases: &[CleanPurchase],
        as_of: NaiveDate,
    ) -> (
        [Option<u64>; 4],
        u32,
        [Option<NaiveDate>; 2],
        [Option<i32>; 2],
        Option<u64>,
    ) {
        let (mut clv, mut avg, mut max, mut min) = (0.0, None, None::<f64>, None::<f64>);
        let (mut count, mut priced) = (0u32, 0u32);
        let (mut first, mut last) = (None::<NaiveDate>, None::<NaiveDate>);
        let (mut since_first, mut since_last, mut frequency) = (None, None, None);
        for p in purchases {
            count += 1;
            if let Some(a) = p.amount {
                priced += 1;
                clv += a;
                max = Some(max.map_or(a, |m| m.max(a)));
                min = Some(min.map_or(a, |m| m.min(a)));
            }
            if let Some(d) = p.date {
                first = Some(first.map_or(d, |x| x.min(d)));
                last = Some(last.map_or(d, |x| x.max(d)));
            }
        }
        if priced > 0 {
            avg = Some(clv / f64::from(priced));
        }
        if let (Some(first), Some(last)) = (first, last) {
            let days = |d: NaiveDate| i32::try_from((as_of - d).num_days()).unwrap_or(i32::MAX);
            since_first = Some(days(first));
            since_last = Some(days(last));
            let span = (last - first).num_days().max(MIN_SPAN_DAYS) as f64;
            frequency = Some(f64::from(count) * 30.0 / span);
        }
        let bits = |x: Option<f64>| x.map(f64::to_bits);
        (
            [Some(clv.to_bits()), bits(avg), bits(max), bits(min)],
            count,
            [first, last],
            [since_first, since_last],
            bits(frequency),
        )
    }

    #[test]
    fn bit_for_bit_the_values_of_plain_fields() {
        let as_of = d(2026, 6, 30);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let n = next() % 9;
            let purchases: Vec<CleanPurchase> = (0..n)
                .map(|_| {
                    let r = next();
                    CleanPurchase {
                        date: (r % 4 != 0).then(|| as_of - chrono::Days::new((r >> 40) & 0x3fff)),
                        amount: (r % 5 != 0).then(|| ((r >> 8) & 0xf_ffff) as f64 / 7.0),
                        store: 0,
                    }
                })
                .collect();
            let f = customer_features(purchases.iter().copied(), as_of);
            let bits = |x: Option<f64>| x.map(f64::to_bits);
            let got = (
                [
                    Some(f.clv().to_bits()),
                    bits(f.avg_purchase_amount()),
                    bits(f.max_purchase_amount()),
                    bits(f.min_purchase_amount()),
                ],
                f.purchase_count(),
                [f.first_purchase(), f.last_purchase()],
                [f.days_since_first_purchase(), f.days_since_last_purchase()],
                bits(f.purchase_frequency()),
            );
            assert_eq!(got, plain(&purchases, as_of), "{purchases:?}");
        }
    }
}
