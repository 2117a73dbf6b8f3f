//! Aggregate: build the report tables of DESIGN §5 (customer_segments,
//! customer_behavior_metrics, segment_metrics, customer_store_summary,
//! customer_purchase_trends) from cleaned purchases, features and segments.
//!
//! Money is rounded to cents and ratios to 4 decimals here, when rows are
//! built, so a CSV round trip is exact. Rows come out in a fixed order
//! (customer index, then store name or month); no hash map is iterated.

use chrono::Datelike;

use crate::customer_segments::{CustomerSegments, People, Segmented};
use crate::model::{
    CustomerBehavior, CustomerIdx, CustomerSegment, Joined, PurchaseTrend, SegmentMetrics, StoreId,
    StoreSummary, YearMonth, round2, round4,
};

use crate::rows::{Rows, Spill};

use super::clean::Cleaned;
use super::features::Features;
use super::rfm::Rfm;

/// The per-customer tables (stores and trends come from [`stores_and_trends`]).
pub struct Tables {
    pub customers: CustomerSegments,
    pub behavior: Rows<CustomerBehavior>,
    pub segments: Vec<SegmentMetrics>,
}

/// Build every table from `people` with imputed demographics
/// ([`People::impute`]). `segment[c]` is customer c's segment id,
/// `labels[s]` the label of segment s (ids are `0..labels.len()`) and
/// `scores[c]` customer c's RFM scores (`None` for non-buyers). With
/// `spill`, behavior rows go to a scratch file as they are made (`run`).
pub fn aggregate(
    people: People,
    features: Vec<Features>,
    segment: &[u32],
    labels: &[String],
    scores: &[Option<Rfm>],
    spill: bool,
) -> std::io::Result<Tables> {
    let behavior_row = |(c, f): (usize, &Features)| CustomerBehavior {
        customer: CustomerIdx::from_index(c),
        total_spent: round2(f.clv()),
        avg_transaction_value: f.avg_purchase_amount().map(round2),
        max_purchase_amount: f.max_purchase_amount().map(round2),
        min_purchase_amount: f.min_purchase_amount().map(round2),
        purchase_count: f.purchase_count(),
        first_purchase: f.first_purchase(),
        last_purchase: f.last_purchase(),
        days_since_first_purchase: f.days_since_first_purchase(),
        days_since_last_purchase: f.days_since_last_purchase(),
    };
    let behavior = if spill {
        let mut out = Spill::new("behavior")?;
        for row in features.iter().enumerate().map(behavior_row) {
            out.push(&row)?;
        }
        out.finish()?
    } else {
        features.iter().enumerate().map(behavior_row).collect()
    };
    // The people are completed in place: their mobiles and names are
    // neither copied nor held twice (issue 11). Rows come last to first, and
    // the features already read are freed every RELEASE rows, so features
    // and the new columns (about the same size) are not both held whole:
    // ~450 MiB less at the peak of a 10M-customer run.
    const RELEASE: usize = 1 << 20;
    let mut features = features;
    let customers = CustomerSegments::complete(people, labels, |c, people| {
        let f = &features[c];
        let row = Segmented {
            age: people.age(c),
            income: people.income(c).map(round2),
            clv: round2(f.clv()),
            avg_purchase_amount: f.avg_purchase_amount().map(round2),
            purchase_count: f.purchase_count(),
            days_since_last_purchase: f.days_since_last_purchase(),
            purchase_frequency: f.purchase_frequency().map(round4),
            segment: segment[c],
            scores: scores[c].map_or([None; 3], |s| [Some(s.r), Some(s.f), Some(s.m)]),
        };
        if c.is_multiple_of(RELEASE) {
            features.truncate(c);
            features.shrink_to_fit();
        }
        row
    });
    let segments = segment_metrics(&customers, labels);
    Ok(Tables {
        customers,
        behavior,
        segments,
    })
}

/// customer_segments rows carrying only the mobile: what the store and
/// trend rows of a shard need to name their customers.
pub fn mobiles_only(customers: &People) -> CustomerSegments {
    customers
        .mobiles()
        .map(|m| CustomerSegment {
            mobile: m.to_owned(),
            name: None,
            age: None,
            income: None,
            gender: None,
            clv: 0.0,
            avg_purchase_amount: None,
            purchase_count: 0,
            days_since_last_purchase: None,
            purchase_frequency: None,
            segment: 0,
            segment_label: String::new(),
            r_score: None,
            f_score: None,
            m_score: None,
        })
        .collect()
}

/// segment_metrics from the already rounded customer rows, so totals match
/// what a reader of customer_segments would compute.
fn segment_metrics(customers: &CustomerSegments, labels: &[String]) -> Vec<SegmentMetrics> {
    #[derive(Default, Clone)]
    struct Acc {
        n: u64,
        spend: f64,
        age: f64,
        aged: u64,
        income: f64,
        earning: u64,
        count: f64,
        recency: f64,
        dated: u64,
        freq: f64,
        timed: u64,
    }
    let mut acc = vec![Acc::default(); labels.len()];
    for c in customers.iter() {
        let a = &mut acc[c.segment as usize];
        a.n += 1;
        a.spend += c.clv;
        if let Some(age) = c.age {
            a.age += f64::from(age);
            a.aged += 1;
        }
        if let Some(income) = c.income {
            a.income += income;
            a.earning += 1;
        }
        a.count += f64::from(c.purchase_count);
        if let Some(r) = c.days_since_last_purchase {
            a.recency += f64::from(r);
            a.dated += 1;
        }
        if let Some(q) = c.purchase_frequency {
            a.freq += q;
            a.timed += 1;
        }
    }
    let total_n = customers.len().max(1) as f64;
    let total_spend: f64 = acc.iter().map(|a| a.spend).sum();
    // Averages over known values only; over none, unknown (DESIGN §5).
    let avg = |sum: f64, n: u64| (n > 0).then(|| sum / n as f64);
    acc.iter()
        .zip(labels)
        .enumerate()
        .map(|(s, (a, label))| SegmentMetrics {
            segment: s as u32,
            segment_label: label.clone(),
            num_customers: a.n,
            total_spend: round2(a.spend),
            avg_clv: round2(avg(a.spend, a.n).unwrap_or(0.0)),
            avg_age: avg(a.age, a.aged).map(round4),
            avg_income: avg(a.income, a.earning).map(round2),
            avg_purchase_count: round4(avg(a.count, a.n).unwrap_or(0.0)),
            avg_days_since_last_purchase: avg(a.recency, a.dated).map(round4),
            avg_purchase_frequency: avg(a.freq, a.timed).map(round4),
            share_of_customers: round4(a.n as f64 / total_n),
            share_of_spend: round4(if total_spend > 0.0 {
                a.spend / total_spend
            } else {
                0.0
            }),
        })
        .collect()
}

/// Store summaries (over all kept purchases; money over non-null amounts) and
/// monthly trends (over dated purchases), one customer range at a time with
/// small reused buffers instead of a map keyed by (customer, store).
pub fn stores_and_trends(
    joined: &Joined,
    cleaned: &Cleaned,
) -> (Vec<StoreSummary>, Vec<PurchaseTrend>) {
    // Sort stores by name once; within a customer sort by that rank.
    let mut by_name: Vec<usize> = (0..cleaned.store_names.len()).collect();
    by_name.sort_by(|&a, &b| {
        cleaned.store_names[a]
            .cmp(&cleaned.store_names[b])
            .then(a.cmp(&b))
    });
    let mut rank = vec![0u32; by_name.len()];
    for (r, &s) in by_name.iter().enumerate() {
        rank[s] = r as u32;
    }
    let mut stores = Vec::new();
    let mut trends = Vec::new();
    let mut buf_s: Vec<(u32, f64)> = Vec::new();
    let mut buf_t: Vec<(YearMonth, f64)> = Vec::new();
    for c in 0..joined.customers.len() {
        buf_s.clear();
        buf_t.clear();
        for p in cleaned.purchases(joined, c) {
            let amount = p.amount.unwrap_or(0.0);
            buf_s.push((rank[p.store as usize], amount));
            if let Some(d) = p.date {
                buf_t.push((
                    YearMonth {
                        year: d.year(),
                        month: d.month(),
                    },
                    amount,
                ));
            }
        }
        // Stable sorts keep API order inside a group, so float sums are reproducible.
        buf_s.sort_by_key(|x| x.0);
        for group in buf_s.chunk_by(|a, b| a.0 == b.0) {
            stores.push(StoreSummary {
                customer: CustomerIdx::from_index(c),
                store: by_name[group[0].0 as usize] as StoreId,
                total_spent: round2(group.iter().map(|x| x.1).sum()),
                visit_count: group.len() as u32,
            });
        }
        buf_t.sort_by_key(|x| x.0);
        for group in buf_t.chunk_by(|a, b| a.0 == b.0) {
            trends.push(PurchaseTrend {
                customer: CustomerIdx::from_index(c),
                month: group[0].0,
                total_spent: round2(group.iter().map(|x| x.1).sum()),
                num_purchases: group.len() as u32,
            });
        }
    }
    (stores, trends)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::model::{Customer, Purchase, RawDate};
    use crate::transform::clean::clean;
    use crate::transform::features::features;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn tables_are_sorted_and_consistent() {
        let joined = Joined {
            customers: (0..3)
                .map(|i| Customer {
                    mobile: format!("9198000000{i:02}"),
                    name: Some(format!("c{i}")),
                    age: if i == 1 {
                        None
                    } else {
                        Some(30 + i as u16 * 10)
                    },
                    income: Some(1000.0),
                    gender: None,
                })
                .collect(),
            stores: vec!["Zed".into(), "Alpha".into()],
            purchases: vec![
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Ymd(d(2026, 2, 3)),
                    Some(10.25),
                    Some(0),
                ),
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Ymd(d(2026, 1, 3)),
                    Some(5.0),
                    Some(1),
                ),
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Dmy(d(2026, 2, 9)),
                    None,
                    None,
                ),
                Purchase::new(
                    CustomerIdx::from_index(0),
                    RawDate::Null,
                    Some(1.0),
                    Some(0),
                ),
                Purchase::new(
                    CustomerIdx::from_index(2),
                    RawDate::Ymd(d(2026, 2, 1)),
                    Some(7.5),
                    Some(1),
                ),
            ],
            ..Joined::default()
        };
        let cleaned = clean(&joined, d(2026, 3, 1));
        let feats = features(&joined, &cleaned);
        let labels = vec!["a".to_owned(), "no purchases".to_owned()];
        let (stores, trends) = stores_and_trends(&joined, &cleaned);
        let mut people = joined.customers.clone();
        people.impute(cleaned.ages.clone(), cleaned.incomes.clone());
        let t = aggregate(
            people,
            feats.clone(),
            &[0, 1, 0],
            &labels,
            &[
                Some(Rfm { r: 5, f: 4, m: 3 }),
                None,
                Some(Rfm { r: 1, f: 2, m: 5 }),
            ],
            false,
        )
        .expect("in memory");
        assert_eq!(
            (
                t.customers.row(0).r_score,
                t.customers.row(0).f_score,
                t.customers.row(0).m_score
            ),
            (Some(5), Some(4), Some(3))
        );
        assert_eq!(t.customers.row(1).r_score, None);
        assert_eq!(t.customers.row(2).m_score, Some(5));

        assert_eq!(t.customers.len(), 3);
        assert_eq!(t.customers.row(1).age, Some(40), "imputed median");
        assert_eq!(t.customers.row(0).clv, 16.25);
        assert_eq!(t.behavior.get(1).map(|b| b.customer.index()), Some(1));
        let names = &cleaned.store_names;
        let rows: Vec<(usize, &str, f64, u32)> = stores
            .iter()
            .map(|s| {
                (
                    s.customer.index(),
                    names[s.store as usize].as_str(),
                    s.total_spent,
                    s.visit_count,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (0, "Alpha", 5.0, 1),
                (0, "Zed", 11.25, 2),
                (0, "unknown", 0.0, 1),
                (2, "Alpha", 7.5, 1)
            ]
        );
        let trends: Vec<(usize, String, f64, u32)> = trends
            .iter()
            .map(|r| {
                (
                    r.customer.index(),
                    r.month.to_string(),
                    r.total_spent,
                    r.num_purchases,
                )
            })
            .collect();
        assert_eq!(
            trends,
            vec![
                (0, "2026-01".into(), 5.0, 1),
                (0, "2026-02".into(), 10.25, 2),
                (2, "2026-02".into(), 7.5, 1)
            ]
        );

        let seg = &t.segments;
        assert_eq!(seg.iter().map(|s| s.num_customers).sum::<u64>(), 3);
        assert_eq!((seg[0].num_customers, seg[0].total_spend), (2, 23.75));
        assert_eq!(seg[1].segment_label, "no purchases");
        assert_eq!(seg[0].share_of_customers, 0.6667);
        assert_eq!(seg[0].share_of_spend, 1.0);
        assert_eq!(seg[0].avg_age, Some(40.0));
    }
}
