//! Clean: the row-level decisions of DESIGN §4 (duplicates, dates, null amounts
//! and stores, age/income imputation), each counted in `Quality`.
//!
//! It does not copy the purchases. At a million customers `Joined` already
//! holds ~12 million 32-byte purchases, so cleaning produces per-customer
//! ranges, a "dropped" flag per row and the resolution rules; later steps read
//! `Joined::purchases` through [`Cleaned::purchases`]. Features and report rows
//! are not built here.

use std::collections::HashMap;
use std::ops::Range;

use chrono::{Datelike, NaiveDate};

use crate::model::{Joined, Purchase, Quality, RawDate, StoreId};
use crate::odd_dates::{OddDates, iso_datetime_date, text_key};

/// Store name given to purchases whose store was null.
pub const UNKNOWN_STORE: &str = "unknown";

/// One purchase after cleaning, as every later step sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CleanPurchase {
    /// A parsed date on or before as-of; `None` when null, unparseable or future.
    pub date: Option<NaiveDate>,
    /// `None` when the API sent null: never treated as a zero purchase.
    pub amount: Option<f64>,
    /// Index into [`Cleaned::store_names`]; null stores point at `unknown`.
    pub store: StoreId,
}

/// The outcome of cleaning: how to read `Joined::purchases`, plus imputed
/// demographics and the quality counts of every decision.
#[derive(Clone, Debug)]
pub struct Cleaned {
    /// Per customer, its rows in `Joined::purchases` (duplicates included).
    pub ranges: Vec<Range<usize>>,
    /// Per purchase row: a duplicate of an earlier row of the customer.
    pub dropped: Vec<bool>,
    /// The date of each odd text this chunk's purchases have, when it is
    /// an ISO date-time (only a stamp that did not fit `RawDate::Stamp`).
    text_dates: HashMap<u32, Option<NaiveDate>, foldhash::fast::RandomState>,
    /// `Joined::stores`, plus `unknown` when some store was null.
    pub store_names: Vec<String>,
    unknown_store: StoreId,
    pub as_of: NaiveDate,
    /// Age and income after median imputation (`None` only when no value was valid).
    pub ages: Vec<Option<u16>>,
    pub incomes: Vec<Option<f64>>,
    /// Extract's counts first, then this step's, in a fixed rule order.
    pub quality: Quality,
}

impl Cleaned {
    /// The kept (deduplicated) purchases of customer `c`, in API order.
    pub fn purchases<'a>(
        &'a self,
        joined: &'a Joined,
        c: usize,
    ) -> impl Iterator<Item = CleanPurchase> + 'a {
        let range = self.ranges[c].clone();
        joined.purchases[range.clone()]
            .iter()
            .zip(&self.dropped[range])
            .filter(|(_, dropped)| !**dropped)
            .map(|(p, _)| self.resolve(p))
    }

    fn resolve(&self, p: &Purchase) -> CleanPurchase {
        let date = match p.date {
            RawDate::Ymd(d) | RawDate::Dmy(d) | RawDate::Slash(d) | RawDate::Stamp(d, _) => Some(d),
            RawDate::Text(i) => self.text_dates.get(&i).copied().flatten(),
            RawDate::Null => None,
        }
        .filter(|d| *d <= self.as_of);
        CleanPurchase {
            date,
            amount: p.amount(),
            store: p.store().unwrap_or(self.unknown_store),
        }
    }
}

/// Repair a `Joined` that breaks extract's contract: purchases not sorted by
/// customer are stably sorted, and rows naming a customer or store that does
/// not exist are dropped or get the `unknown` store, counted like any dirt.
/// Returns `None` (no copy) for the normal, well-formed input.
pub fn normalize(joined: &Joined) -> Option<Joined> {
    let n = joined.customers.len();
    let stores = joined.stores.len();
    let bad_customer = |p: &Purchase| p.customer.index() >= n;
    let bad_store = |p: &Purchase| p.store().is_some_and(|s| s as usize >= stores);
    let sorted = joined.purchases.is_sorted_by_key(|p| p.customer);
    if sorted
        && !joined
            .purchases
            .iter()
            .any(|p| bad_customer(p) || bad_store(p))
    {
        return None;
    }
    let mut fixed = joined.clone();
    let before = fixed.purchases.len();
    fixed.purchases.retain(|p| !bad_customer(p));
    let dropped = (before - fixed.purchases.len()) as u64;
    let mut bad_stores = 0u64;
    for p in &mut fixed.purchases {
        if bad_store(p) {
            bad_stores += 1;
            *p = Purchase::new(p.customer, p.date, p.amount(), None);
        }
    }
    // Stable: keeps the API order within a customer.
    fixed.purchases.sort_by_key(|p| p.customer);
    fixed
        .quality
        .add("purchases_resorted_by_customer", u64::from(!sorted));
    fixed
        .quality
        .add("purchase_unknown_customer_dropped", dropped);
    fixed
        .quality
        .add("purchase_unknown_store_index", bad_stores);
    Some(fixed)
}

/// Clean `joined` (as returned by [`normalize`]) as of `as_of`. Row-level dirt
/// is counted, never an error.
pub fn clean(joined: &Joined, as_of: NaiveDate) -> Cleaned {
    let n = joined.customers.len();
    let ranges = customer_ranges(joined);
    let dropped = mark_duplicates(&joined.purchases, &ranges, &joined.odd_dates);
    // Per chunk, not per odd text: a spooled transform cleans one bucket
    // at a time, and a file of unparseable dates has millions of texts.
    let mut text_dates: HashMap<u32, Option<NaiveDate>, _> = HashMap::default();
    for p in &joined.purchases {
        if let RawDate::Text(i) = p.date {
            text_dates
                .entry(i)
                .or_insert_with(|| iso_datetime_date(joined.odd_dates.get(i)));
        }
    }

    let mut store_names = joined.stores.clone();
    let mut counts = Counts::default();
    for (p, _) in joined.purchases.iter().zip(&dropped).filter(|(_, d)| !**d) {
        let date = match p.date {
            RawDate::Null => {
                counts.date_missing += 1;
                None
            }
            RawDate::Ymd(d) => Some(d),
            RawDate::Dmy(d) => {
                counts.date_dmy += 1;
                Some(d)
            }
            RawDate::Slash(d) => {
                counts.date_slash += 1;
                Some(d)
            }
            RawDate::Stamp(d, _) => {
                counts.date_iso_datetime += 1;
                Some(d)
            }
            RawDate::Text(i) => match text_dates.get(&i).copied().flatten() {
                Some(d) => {
                    counts.date_iso_datetime += 1;
                    Some(d)
                }
                None => {
                    counts.date_unparseable += 1;
                    None
                }
            },
        };
        if date.is_some_and(|d| d > as_of) {
            counts.date_future += 1;
        }
        if p.amount().is_none() {
            counts.amount_missing += 1;
        }
        if p.store().is_none() {
            counts.store_missing += 1;
        }
    }
    // Reuse an `unknown` store the API may already have sent, so the
    // store summary never shows two rows named `unknown` for one customer.
    let unknown_store = match store_names.iter().position(|s| s == UNKNOWN_STORE) {
        Some(i) => i,
        None => {
            if counts.store_missing > 0 {
                store_names.push(UNKNOWN_STORE.to_owned());
            }
            store_names.len().saturating_sub(1)
        }
    };
    // Extract interns stores into u32 ids, so the table fits in a StoreId.
    let unknown_store = StoreId::try_from(unknown_store).unwrap_or(StoreId::MAX);

    let demo = demographics_of((0..n).map(|c| joined.customers.demographics(c)));
    let mut quality = joined.quality.clone();
    let dup = dropped.iter().filter(|d| **d).count() as u64;
    // Fixed order, zeros included, so data_quality has the same rows every run.
    for (rule, rows) in [
        ("duplicate_purchases_dropped", dup),
        ("date_dmy_parsed", counts.date_dmy),
        ("date_slash_parsed", counts.date_slash),
        ("date_iso_datetime_parsed", counts.date_iso_datetime),
        ("date_missing", counts.date_missing),
        ("date_unparseable", counts.date_unparseable),
        ("date_after_as_of", counts.date_future),
        ("amount_missing", counts.amount_missing),
        ("store_missing_as_unknown", counts.store_missing),
    ] {
        quality.add(rule, rows);
    }
    for (rule, rows) in demo.rules {
        quality.add(rule, rows);
    }
    debug_assert_eq!(ranges.len(), n);
    Cleaned {
        ranges,
        dropped,
        text_dates,
        store_names,
        unknown_store,
        as_of,
        ages: demo.ages,
        incomes: demo.incomes,
        quality,
    }
}

/// Age and income after median imputation, with the counts of what was
/// imputed: over every customer at once, since the medians are global (a
/// sharded `fit` recomputes these over all shards).
pub struct Demographics {
    pub ages: Vec<Option<u16>>,
    pub incomes: Vec<Option<f64>>,
    pub rules: [(&'static str, u64); 5],
}

pub fn demographics(customers: &[crate::model::Customer]) -> Demographics {
    demographics_of(customers.iter().map(|c| crate::model::Customer {
        mobile: String::new(),
        name: None,
        ..*c
    }))
}

/// [`demographics`] of customers given one by one (their strings unused),
/// so callers holding them by column need no `Customer` slice.
pub fn demographics_of(customers: impl Iterator<Item = crate::model::Customer>) -> Demographics {
    let mut ages: Vec<Option<u16>> = Vec::with_capacity(customers.size_hint().0);
    let mut incomes: Vec<Option<f64>> = Vec::with_capacity(customers.size_hint().0);
    let mut gender_missing = 0u64;
    for c in customers {
        ages.push(c.age);
        incomes.push(c.income.filter(|x| x.is_finite()));
        gender_missing += u64::from(c.gender.is_none());
    }
    let age_median = median(ages.iter().flatten().map(|&a| f64::from(a)).collect())
        .map(|m| m.round().clamp(0.0, f64::from(u16::MAX)) as u16);
    let income_median =
        median(incomes.iter().flatten().copied().collect()).map(crate::model::round2);
    let age_imputed = ages.iter().filter(|a| a.is_none()).count() as u64;
    let income_imputed = incomes.iter().filter(|a| a.is_none()).count() as u64;
    let split = |known: bool, n: u64| if known { (n, 0) } else { (0, n) };
    let (age_imp, age_none) = split(age_median.is_some(), age_imputed);
    let (inc_imp, inc_none) = split(income_median.is_some(), income_imputed);
    Demographics {
        ages: ages.into_iter().map(|a| a.or(age_median)).collect(),
        incomes: incomes.into_iter().map(|x| x.or(income_median)).collect(),
        rules: [
            ("age_imputed_median", age_imp),
            ("age_missing_no_median", age_none),
            ("income_imputed_median", inc_imp),
            ("income_missing_no_median", inc_none),
            ("gender_missing", gender_missing),
        ],
    }
}

#[derive(Default)]
struct Counts {
    date_dmy: u64,
    date_slash: u64,
    date_iso_datetime: u64,
    date_missing: u64,
    date_unparseable: u64,
    date_future: u64,
    amount_missing: u64,
    store_missing: u64,
}

/// Rows of each customer; extract sorts purchases by customer, and grouping by
/// ranges is what keeps transform free of per-purchase maps. Input comes
/// through [`normalize`], so it is sorted and every customer index is valid.
fn customer_ranges(joined: &Joined) -> Vec<Range<usize>> {
    let n = joined.customers.len();
    let mut ranges = vec![0..0; n];
    let purchases = &joined.purchases;
    let mut start = 0usize;
    for group in purchases.chunk_by(|a, b| a.customer == b.customer) {
        let end = start + group.len();
        if let Some(r) = ranges.get_mut(group[0].customer.index()) {
            *r = start..end;
        }
        start = end;
    }
    ranges
}

/// Flag duplicates, keeping the first (DESIGN §4): a purchase with an
/// `order_id` duplicates only another of the customer with the same order id;
/// one without duplicates only an exact copy (same raw date text, amount and
/// store). Sorting a small per-customer buffer beats hashing 12M rows.
fn mark_duplicates(
    purchases: &[Purchase],
    ranges: &[Range<usize>],
    odd_dates: &OddDates,
) -> Vec<bool> {
    let mut dropped = vec![false; purchases.len()];
    let mut keys: Vec<(u64, u64, u64, usize)> = Vec::new();
    for range in ranges.iter().filter(|r| r.len() > 1) {
        keys.clear();
        keys.extend(purchases[range.clone()].iter().enumerate().map(|(i, p)| {
            let row = range.start + i;
            match p.order() {
                // Tag 0 keeps order-id rows apart from the rest.
                Some(order) => (0, order, 0, row),
                None => {
                    let amount = p.amount().map_or(u64::MAX, f64::to_bits);
                    let store = u64::from(p.store().unwrap_or(StoreId::MAX));
                    (date_key(p.date, odd_dates), amount, store, row)
                }
            }
        }));
        keys.sort_unstable();
        for w in keys.windows(2) {
            if w[0].0 == w[1].0 && w[0].1 == w[1].1 && w[0].2 == w[1].2 {
                // Equal keys sort by row index, so the later row is dropped.
                dropped[w[1].3] = true;
            }
        }
    }
    dropped
}

/// A raw date as a non-zero integer that keeps the text: `01-03-2026` and
/// `2026-03-01` are different texts, so they are not exact duplicates; two
/// equal odd texts (the same date-time) are.
fn date_key(d: RawDate, odd_dates: &OddDates) -> u64 {
    // Days from CE are positive for every date the API can send.
    let day = |d: NaiveDate| u64::try_from(d.num_days_from_ce()).unwrap_or(0);
    match d {
        RawDate::Null => 1,
        RawDate::Ymd(d) => (1 << 40) | day(d),
        RawDate::Dmy(d) => (2 << 40) | day(d),
        RawDate::Slash(d) => (3 << 40) | day(d),
        // The whole text's key, however it is stored.
        RawDate::Text(_) | RawDate::Stamp(..) => {
            (1 << 63) | (text_key(d, odd_dates).unwrap_or(1) >> 1)
        }
    }
}

/// Median of finite values (mean of the two middle ones for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Customer, CustomerIdx, Gender};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    fn customer(age: Option<u16>, income: Option<f64>, gender: Option<Gender>) -> Customer {
        Customer {
            mobile: "919800000000".into(),
            name: None,
            age,
            income,
            gender,
        }
    }

    pub(crate) fn dirty_joined() -> Joined {
        let mut joined = Joined {
            customers: vec![
                customer(Some(30), Some(100.0), Some(Gender::Male)),
                customer(None, Some(300.0), None),
                customer(Some(50), None, Some(Gender::Female)),
            ]
            .into(),
            stores: vec!["DMart".into(), "More".into()],
            odd_dates: {
                let mut odd = OddDates::default();
                odd.whole("2026/13/45"); // RawDate::Text(0)
                odd
            },
            ..Joined::default()
        };
        joined.quality.add("customers_duplicate_mobile", 2);
        let ymd = RawDate::Ymd(d(2026, 1, 10));
        joined.purchases = vec![
            Purchase::new(CustomerIdx::from_index(0), ymd, Some(10.0), Some(0)),
            Purchase::new(CustomerIdx::from_index(0), ymd, Some(10.0), Some(0)), // exact duplicate
            Purchase::new(
                CustomerIdx::from_index(0),
                RawDate::Dmy(d(2026, 1, 10)),
                Some(10.0),
                Some(0),
            ), // other text: kept
            Purchase::new(CustomerIdx::from_index(0), RawDate::Null, None, None),
            Purchase::new(CustomerIdx::from_index(0), RawDate::Null, None, None), // duplicate of a null row
            Purchase::new(
                CustomerIdx::from_index(2),
                RawDate::Text(0),
                Some(5.0),
                Some(1),
            ),
            Purchase::new(
                CustomerIdx::from_index(2),
                RawDate::Ymd(d(2027, 1, 1)),
                Some(7.0),
                None,
            ),
        ];
        joined
    }

    #[test]
    fn every_rule_is_counted_after_extract_counts() {
        let joined = dirty_joined();
        assert!(
            normalize(&joined).is_none(),
            "well-formed input is not copied"
        );
        let c = clean(&joined, d(2026, 6, 1));
        let q = &c.quality;
        assert_eq!(q.0[0].rule, "customers_duplicate_mobile");
        assert_eq!(q.get("duplicate_purchases_dropped"), 2);
        assert_eq!(q.get("date_dmy_parsed"), 1);
        assert_eq!(q.get("date_missing"), 1);
        assert_eq!(q.get("date_unparseable"), 1);
        assert_eq!(q.get("date_after_as_of"), 1);
        assert_eq!(q.get("amount_missing"), 1);
        assert_eq!(q.get("store_missing_as_unknown"), 2);
        assert_eq!(q.get("age_imputed_median"), 1);
        assert_eq!(q.get("income_imputed_median"), 1);
        assert_eq!(q.get("gender_missing"), 1);
        assert_eq!(c.ages, vec![Some(30), Some(40), Some(50)]);
        assert_eq!(c.incomes, vec![Some(100.0), Some(300.0), Some(200.0)]);
        assert_eq!(c.store_names, vec!["DMart", "More", "unknown"]);

        let kept: Vec<_> = c.purchases(&joined, 0).collect();
        assert_eq!(kept.len(), 3);
        assert_eq!(
            kept[2],
            CleanPurchase {
                date: None,
                amount: None,
                store: 2
            }
        );
        let third: Vec<_> = c.purchases(&joined, 2).collect();
        assert_eq!(third[0].date, None, "unparseable text");
        assert_eq!(third[1].date, None, "after as-of");
        assert_eq!(third[1].store, 2);
        assert_eq!(c.purchases(&joined, 1).count(), 0);
    }

    #[test]
    fn unsorted_or_dangling_purchases_are_repaired_and_counted() {
        let mut joined = dirty_joined();
        joined.purchases.swap(0, 6);
        joined.purchases.push(Purchase::new(
            CustomerIdx::from_index(9),
            RawDate::Null,
            None,
            None,
        ));
        joined.purchases.push(Purchase::new(
            CustomerIdx::from_index(1),
            RawDate::Null,
            Some(1.0),
            Some(7),
        ));
        let fixed = normalize(&joined).expect("needs repair");
        let q = &fixed.quality;
        assert_eq!(q.get("purchases_resorted_by_customer"), 1);
        assert_eq!(q.get("purchase_unknown_customer_dropped"), 1);
        assert_eq!(q.get("purchase_unknown_store_index"), 1);
        let c = clean(&fixed, d(2026, 6, 1));
        assert_eq!(c.ranges, vec![0..5, 5..6, 6..8]);
        assert_eq!(c.quality.get("duplicate_purchases_dropped"), 2);
        assert_eq!(c.purchases(&fixed, 1).next().map(|p| p.store), Some(2));
    }

    #[test]
    fn median_handles_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    // See: issue 9
    #[test]
    fn issue_9_equal_orders_with_distinct_ids_are_both_kept() {
        let date = RawDate::Ymd(d(2026, 3, 1));
        let c0 = CustomerIdx::from_index(0);
        let p = |order: &str| {
            Purchase::new(c0, date, Some(10.0), Some(0)).with_order(crate::model::order_key(order))
        };
        let j = Joined {
            customers: vec![customer(Some(30), Some(1.0), None)].into(),
            purchases: vec![
                p("A-1"),
                p("A-2"), // same values, other order: kept
                p("A-1"), // same order id: dropped
                Purchase::new(c0, date, Some(10.0), Some(0)), // no id: exact copy rule
                Purchase::new(c0, date, Some(10.0), Some(0)), // exact copy of the row above
            ],
            stores: vec!["S".into()],
            ..Joined::default()
        };
        let c = clean(&j, d(2026, 6, 1));
        assert_eq!(c.dropped, vec![false, false, true, false, true]);
    }

    // See: issue 9
    #[test]
    fn issue_9_date_forms_are_counted_each() {
        let c0 = CustomerIdx::from_index(0);
        let mut j = Joined {
            customers: vec![customer(Some(30), Some(1.0), None)].into(),
            stores: vec!["S".into()],
            ..Joined::default()
        };
        for (i, text) in [
            "2026-03-01",
            "02-03-2026",
            "2026/03/03",
            "2026-03-04T10:00:00Z",
            "03/05/2026",
        ]
        .iter()
        .enumerate()
        {
            let date = RawDate::classify(Some(text), &mut j.odd_dates);
            j.purchases
                .push(Purchase::new(c0, date, Some(i as f64), Some(0)));
        }
        let c = clean(&j, d(2026, 6, 1));
        for (rule, n) in [
            ("date_dmy_parsed", 1),
            ("date_slash_parsed", 1),
            ("date_iso_datetime_parsed", 1),
            ("date_unparseable", 1),
        ] {
            assert_eq!(c.quality.get(rule), n, "{rule}");
        }
        let dates: Vec<Option<NaiveDate>> = c.purchases(&j, 0).map(|p| p.date).collect();
        assert_eq!(
            dates,
            vec![
                Some(d(2026, 3, 1)),
                Some(d(2026, 3, 2)),
                Some(d(2026, 3, 3)),
                Some(d(2026, 3, 4)),
                None
            ]
        );
    }
}
