//! The purchase half of transform over a spool (DESIGN §8): the same clean,
//! features and store/trend steps as in memory, one customer range at a
//! time, so at most one bucket of purchases is in memory.
//!
//! Each bucket becomes a small `Joined` of its customers (demographics
//! only, no strings, read from the `People` transform made of them) and purchases; the per-purchase counts are summed over
//! buckets and the demographic ones computed once over every customer, in
//! the order `clean` writes them, so the quality table is the same too.
//! Store and trend rows go to spill files as each bucket makes them (see
//! `rows`): they are most of the report's rows and grow with purchases.
//! The spills sort them into key order (`key_order`) on the way.

use crate::customer_segments::People;
use crate::key_order::{MobileRanks, SortingSpill};
use crate::model::{Joined, PurchaseTrend, Quality, StoreSummary};
use crate::rows::Rows;
use crate::spool::Spooled;

use super::features::Features;
use super::{aggregate, clean, features};

pub struct Digest {
    pub feats: Vec<Features>,
    pub store_names: Vec<String>,
    pub stores: Rows<StoreSummary>,
    pub trends: Rows<PurchaseTrend>,
    pub quality: Quality,
}

/// The purchase half over `spool`; `people`'s demographics are imputed
/// first (once, over every customer), before any per-customer vector grows.
pub fn digest(
    joined: &mut Joined,
    people: &mut People,
    spool: &Spooled,
    as_of: chrono::NaiveDate,
) -> std::io::Result<Digest> {
    let n = people.len();
    let demo = clean::demographics_of((0..n).map(|c| people.demographics(c)));
    let demographic: Vec<&str> = demo.rules.iter().map(|(r, _)| *r).collect();
    let rules = demo.rules;
    people.impute(demo.ages, demo.incomes);
    let mut feats = Vec::with_capacity(n);
    let ranks = MobileRanks::of(people);
    let mut stores = SortingSpill::new("stores", &ranks)?;
    let mut trends = SortingSpill::new("trends", &ranks)?;
    let mut purchase_rules = Quality::default();
    let mut store_names = joined.stores.clone();
    for b in 0..spool.buckets() {
        let (range, mut purchases) = spool.read(b)?;
        let base = range.start;
        for p in &mut purchases {
            p.customer = crate::model::CustomerIdx::from_index(p.customer.index() - base);
        }
        let mut chunk = Joined {
            customers: people.demographics_of(range),
            purchases,
            stores: std::mem::take(&mut joined.stores),
            odd_dates: std::mem::take(&mut joined.odd_dates),
            ..Joined::default()
        };
        if let Some(repaired) = clean::normalize(&chunk) {
            chunk = repaired;
        }
        let cleaned = clean::clean(&chunk, as_of);
        feats.extend(features::features(&chunk, &cleaned));
        let (s, t) = aggregate::stores_and_trends(&chunk, &cleaned);
        let at =
            |c: crate::model::CustomerIdx| crate::model::CustomerIdx::from_index(c.index() + base);
        for r in s {
            stores.push(&StoreSummary {
                customer: at(r.customer),
                ..r
            })?;
        }
        for r in t {
            trends.push(&PurchaseTrend {
                customer: at(r.customer),
                ..r
            })?;
        }
        for q in cleaned
            .quality
            .0
            .iter()
            .filter(|q| !demographic.contains(&q.rule.as_str()))
        {
            purchase_rules.add(&q.rule, q.rows);
        }
        if cleaned.store_names.len() > store_names.len() {
            store_names = cleaned.store_names;
        }
        joined.stores = chunk.stores;
        joined.odd_dates = chunk.odd_dates;
    }
    let mut quality = std::mem::take(&mut joined.quality);
    for q in purchase_rules.0 {
        quality.add(&q.rule, q.rows);
    }
    for (rule, rows) in rules {
        quality.add(rule, rows);
    }
    Ok(Digest {
        feats,
        store_names,
        stores: stores.finish()?,
        trends: trends.finish()?,
        quality,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::model::RawDate;
    use crate::odd_dates::ymd;
    use crate::spool::Spool;
    use crate::transform::synthetic::{Dirt, joined};
    use crate::transform::tests::{as_of, opts};
    use crate::transform::transform;

    /// `j` transformed in memory and over a 7-bucket spool.
    fn both_ways(j: crate::model::Joined) -> (crate::model::Report, crate::model::Report) {
        let mut spool = Spool::with_width(j.customers.len(), 150).expect("spool");
        for p in &j.purchases {
            spool.push(p).expect("push");
        }
        let mut spooled = j.clone();
        spooled.purchases = Vec::new();
        spooled.spool = Some(Arc::new(spool.finish().expect("finish")));
        let a = transform(j, &opts()).expect("in memory");
        let b = transform(spooled, &opts()).expect("spooled");
        assert!(b.stores.is_spilled() && b.trends.is_spilled() && b.behavior.is_spilled());
        assert_eq!(a.customers, b.customers);
        assert_eq!(a.behavior, b.behavior);
        assert_eq!(a.segments, b.segments);
        assert_eq!(a.stores, b.stores);
        assert_eq!(a.trends, b.trends);
        assert_eq!(a.store_names, b.store_names);
        assert_eq!(a.quality, b.quality);
        (a, b)
    }

    /// The spool path cuts customers into buckets; with 7 buckets and dirty
    /// data (duplicates, odd dates, null stores) the report must be the one
    /// the in-memory path gives, row for row and count for count.
    #[test]
    fn spooled_transform_equals_in_memory_transform() {
        let (a, _) = both_ways(joined(1_000, 7, as_of(), &Dirt::default()));
        assert!(a.stores.len() > 1_000 && a.trends.len() > 1_000);
    }

    /// See: issue 11 (a purchases file of ISO date-times kept a string per
    /// purchase, and each bucket re-read all of them: 123 s against 4 s at
    /// a million customers). Date-times and odd texts in every bucket give
    /// the in-memory report, and the date-times' rests are stored once.
    #[test]
    fn issue_11_date_times_and_odd_texts_spool_like_in_memory() {
        let mut j = joined(1_000, 7, as_of(), &Dirt::default());
        for i in 0..j.purchases.len() {
            let RawDate::Ymd(d) = j.purchases[i].date else {
                continue;
            };
            let text = match i % 7 {
                0 => "sometime".to_owned(),
                1 | 2 => format!("{}T10:00:00Z", ymd(d)),
                3 => format!("{} 08:26:{:02}", ymd(d), i % 60),
                _ => continue,
            };
            j.purchases[i].date = RawDate::classify(Some(&text), &mut j.odd_dates);
        }
        assert!(j.odd_dates.len() <= 62, "{} entries", j.odd_dates.len());
        let (a, _) = both_ways(j);
        let count = |rule: &str| a.quality.0.iter().find(|q| q.rule == rule).map(|q| q.rows);
        assert!(count("date_iso_datetime_parsed") > Some(1_000));
        assert!(count("date_unparseable") > Some(100));
    }
}
