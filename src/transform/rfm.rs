//! RFM: the quintile scores `r_score`, `f_score`, `m_score` of every buyer
//! (DESIGN §4) and the standard named RFM segments of `--method rfm`.
//!
//! Scores are always quintiles over the buyers of the data at hand, so an RFM
//! segmentation fits nothing: the same customers give the same scores and
//! the same names. Segment ids and the report tables are not built here.
//!
//! **Scoring.** R is recency (`days_since_last_purchase`, fewer days = better),
//! F is frequency as the purchase count, M is monetary value as the CLV.
//! For each, the buyers are ordered from worst to best value; equal values
//! keep customer order (earlier customer first), so every customer has a
//! distinct rank. The score is `1 + 5 * rank / n` (rank from 0): five groups
//! whose sizes differ by at most one, 5 = best. This is the usual
//! "quintiles of the rank" rule (pandas `qcut(rank(method="first"), 5)`), and
//! keeps the quintiles equal-sized even when many buyers share a value (most
//! buyers of a real log bought once).
//!
//! **Unknown recency.** A buyer with no dated purchase has no recency. It gets
//! `r_score` 3, the score of the median recency (clustering imputes the
//! median too), and the R quintiles are taken over the buyers whose recency
//! is known. F and M are always known for a buyer (a buyer without a valid
//! amount has spent nothing known: CLV 0).

use super::features::Features;

/// The three scores of one buyer, each 1–5 (5 = best).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rfm {
    pub r: u8,
    pub f: u8,
    pub m: u8,
}

/// R score of a buyer whose recency is unknown: the median's quintile.
pub const UNKNOWN_RECENCY_SCORE: u8 = 3;

/// Scores of every customer (`None` for non-buyers), in customer order.
/// `buyers` lists the customers with a purchase, ascending.
pub fn scores(features: &[Features], buyers: &[u32]) -> Vec<Option<Rfm>> {
    let f = |c: u32| &features[c as usize];
    // Recency: fewer days is better, so "worst first" is descending days.
    let dated: Vec<u32> = buyers
        .iter()
        .copied()
        .filter(|&c| f(c).days_since_last_purchase().is_some())
        .collect();
    let r = quintiles(&dated, |c| {
        -f64::from(f(c).days_since_last_purchase().unwrap_or_default())
    });
    let fr = quintiles(buyers, |c| f64::from(f(c).purchase_count()));
    let m = quintiles(buyers, |c| f(c).clv());
    let mut out = vec![None; features.len()];
    for (&c, (&fs, &ms)) in buyers.iter().zip(fr.iter().zip(&m)) {
        out[c as usize] = Some(Rfm {
            r: UNKNOWN_RECENCY_SCORE,
            f: fs,
            m: ms,
        });
    }
    for (&c, &rs) in dated.iter().zip(&r) {
        if let Some(s) = out[c as usize].as_mut() {
            s.r = rs;
        }
    }
    out
}

/// Quintile score of each of `ids` (in the given order) by `value`, higher
/// value = higher score; equal values rank in the order of `ids`.
pub fn quintiles(ids: &[u32], value: impl Fn(u32) -> f64) -> Vec<u8> {
    let n = ids.len();
    // Each value read once into (key, position) pairs, sorted by key then
    // position: the order of a stable sort by `total_cmp`. Sorting positions
    // with a comparator that read the features (112 bytes apart, in random
    // order) took 24 s of a 10M-customer transform.
    let mut order: Vec<(i64, u32)> = ids
        .iter()
        .enumerate()
        .map(|(i, &c)| (total_order_key(value(c)), i as u32))
        .collect();
    order.sort_unstable();
    let mut out = vec![0u8; n];
    for (rank, (_, i)) in order.into_iter().enumerate() {
        out[i as usize] = 1 + (5 * rank / n) as u8;
    }
    out
}

/// An integer that orders like `f64::total_cmp` (the same bit trick).
fn total_order_key(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// The standard named RFM segments, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Named {
    Champions,
    Loyal,
    PotentialLoyalist,
    New,
    Promising,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    CantLoseThem,
    Hibernating,
    Lost,
}

impl Named {
    pub const ALL: [Named; 11] = [
        Named::Champions,
        Named::Loyal,
        Named::PotentialLoyalist,
        Named::New,
        Named::Promising,
        Named::NeedAttention,
        Named::AboutToSleep,
        Named::AtRisk,
        Named::CantLoseThem,
        Named::Hibernating,
        Named::Lost,
    ];

    /// The segment label (lower case, like every segpipe label).
    pub fn label(self) -> &'static str {
        match self {
            Named::Champions => "champions",
            Named::Loyal => "loyal",
            Named::PotentialLoyalist => "potential loyalist",
            Named::New => "new",
            Named::Promising => "promising",
            Named::NeedAttention => "need attention",
            Named::AboutToSleep => "about to sleep",
            Named::AtRisk => "at risk",
            Named::CantLoseThem => "can't lose them",
            Named::Hibernating => "hibernating",
            Named::Lost => "lost",
        }
    }
}

/// The named segment of an (r, f, m) cell.
///
/// F and M are first combined into `fm = ceil((f + m) / 2)` (1–5: how much
/// and how often the customer buys), then the R × FM grid is cut into
/// rectangles, each cell in exactly one (the widely used R×F segment map,
/// with its bottom corner split off as `lost`):
///
/// | r \ fm | 1              | 2              | 3               | 4       | 5               |
/// |--------|----------------|----------------|-----------------|---------|-----------------|
/// | 5      | new            | potential loyalist | potential loyalist | champions | champions |
/// | 4      | promising      | potential loyalist | potential loyalist | loyal | loyal           |
/// | 3      | about to sleep | about to sleep | need attention  | loyal   | loyal           |
/// | 2      | hibernating    | hibernating    | at risk         | at risk | can't lose them |
/// | 1      | lost           | hibernating    | at risk         | at risk | can't lose them |
///
/// Scores outside 1–5 are clamped into it.
pub fn named(s: Rfm) -> Named {
    let r = s.r.clamp(1, 5);
    let fm = (s.f.clamp(1, 5) + s.m.clamp(1, 5)).div_ceil(2);
    match (r, fm) {
        (5, 4..=5) => Named::Champions,
        (3..=4, 4..=5) => Named::Loyal,
        (4..=5, 2..=3) => Named::PotentialLoyalist,
        (5, 1) => Named::New,
        (4, 1) => Named::Promising,
        (3, 3) => Named::NeedAttention,
        (3, 1..=2) => Named::AboutToSleep,
        (1..=2, 5) => Named::CantLoseThem,
        (1..=2, 3..=4) => Named::AtRisk,
        (1, 1) => Named::Lost,
        // (2, 1..=2) and (1, 2); nothing else is left after the clamps.
        _ => Named::Hibernating,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buyer(clv: f64, count: u32, recency: Option<i32>) -> Features {
        Features::default()
            .with_clv(clv)
            .with_purchase_count(count)
            .with_days_since_last_purchase(recency)
    }

    #[test]
    fn quintiles_are_equal_sized_and_break_ties_by_customer_order() {
        // Ten equal values: ranks follow the order given, two per quintile.
        let ids: Vec<u32> = (0..10).collect();
        assert_eq!(quintiles(&ids, |_| 1.0), vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        // Distinct values: higher value, higher score, whatever the order.
        let v = [50.0, 10.0, 40.0, 30.0, 20.0];
        assert_eq!(
            quintiles(&[0, 1, 2, 3, 4], |i| v[i as usize]),
            vec![5, 1, 4, 3, 2]
        );
        // Seven values: sizes 2,1,2,1,1 (1 + 5*rank/7).
        let ids: Vec<u32> = (0..7).collect();
        assert_eq!(quintiles(&ids, f64::from), vec![1, 1, 2, 3, 3, 4, 5]);
        assert!(quintiles(&[], |_| 0.0).is_empty());
        // Keyed like `total_cmp`: -0 before +0, NaN last, infinities at the ends.
        let v = [
            f64::NAN,
            0.0,
            -0.0,
            f64::INFINITY,
            -1.5,
            f64::NEG_INFINITY,
            2.0,
        ];
        let mut by_cmp: Vec<usize> = (0..v.len()).collect();
        by_cmp.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut by_key: Vec<usize> = (0..v.len()).collect();
        by_key.sort_by_key(|&i| total_order_key(v[i]));
        assert_eq!(by_cmp, by_key);
    }

    #[test]
    fn hand_made_scores_with_a_non_buyer_and_an_unknown_recency() {
        let feats = vec![
            buyer(500.0, 5, Some(3)),  // best on everything
            buyer(0.0, 0, None),       // never bought
            buyer(10.0, 1, Some(700)), // worst on everything
            buyer(100.0, 2, None),     // bought, but no dated purchase
            buyer(200.0, 3, Some(100)),
            buyer(300.0, 4, Some(50)),
            buyer(50.0, 1, Some(400)),
        ];
        let buyers = [0, 2, 3, 4, 5, 6];
        let s = scores(&feats, &buyers);
        assert_eq!(s[1], None);
        assert_eq!(s[0], Some(Rfm { r: 5, f: 5, m: 5 }));
        assert_eq!(s[2], Some(Rfm { r: 1, f: 1, m: 1 }));
        // Unknown recency: the median's score; F and M ranked among all six.
        // (six buyers: ranks 0..5 score 1, 1, 2, 3, 4, 5).
        assert_eq!(
            s[3],
            Some(Rfm {
                r: UNKNOWN_RECENCY_SCORE,
                f: 2,
                m: 2
            })
        );
        // R over the five dated buyers: 700, 400, 100, 50, 3 days → 1..5.
        assert_eq!(s[6].map(|x| x.r), Some(2));
        assert_eq!(s[4].map(|x| x.r), Some(3));
        assert_eq!(s[5].map(|x| x.r), Some(4));
        assert_eq!(s[6].map(|x| (x.f, x.m)), Some((1, 1)));
        assert_eq!(s[4].map(|x| (x.f, x.m)), Some((3, 3)));
    }

    #[test]
    fn every_one_of_the_125_cells_maps_to_exactly_one_named_segment() {
        let mut seen = std::collections::BTreeMap::new();
        for r in 1..=5u8 {
            for f in 1..=5u8 {
                for m in 1..=5u8 {
                    let n = named(Rfm { r, f, m });
                    // Exactly one: count how many of the documented
                    // rectangles hold the cell, independently of `named`.
                    let fm = (f + m).div_ceil(2);
                    let holds = |x: Named| match x {
                        Named::Champions => r == 5 && fm >= 4,
                        Named::Loyal => (3..=4).contains(&r) && fm >= 4,
                        Named::PotentialLoyalist => r >= 4 && (2..=3).contains(&fm),
                        Named::New => r == 5 && fm == 1,
                        Named::Promising => r == 4 && fm == 1,
                        Named::NeedAttention => r == 3 && fm == 3,
                        Named::AboutToSleep => r == 3 && fm <= 2,
                        Named::AtRisk => r <= 2 && (3..=4).contains(&fm),
                        Named::CantLoseThem => r <= 2 && fm == 5,
                        Named::Hibernating => r <= 2 && fm <= 2 && !(r == 1 && fm == 1),
                        Named::Lost => r == 1 && fm == 1,
                    };
                    let holders: Vec<Named> =
                        Named::ALL.into_iter().filter(|&x| holds(x)).collect();
                    assert_eq!(holders, vec![n], "cell r{r} f{f} m{m}");
                    *seen.entry(n).or_insert(0u32) += 1;
                }
            }
        }
        assert_eq!(seen.len(), 11, "every named segment is reachable");
        assert_eq!(seen.values().sum::<u32>(), 125);
    }

    #[test]
    fn standard_cells_get_the_standard_names() {
        let n = |r, f, m| named(Rfm { r, f, m }).label();
        assert_eq!(n(5, 5, 5), "champions");
        assert_eq!(n(5, 4, 4), "champions");
        assert_eq!(n(4, 5, 5), "loyal");
        assert_eq!(n(3, 4, 4), "loyal");
        assert_eq!(n(5, 1, 1), "new");
        assert_eq!(n(4, 1, 1), "promising");
        assert_eq!(n(5, 2, 3), "potential loyalist");
        assert_eq!(n(3, 3, 3), "need attention");
        assert_eq!(n(3, 1, 2), "about to sleep");
        assert_eq!(n(2, 4, 4), "at risk");
        assert_eq!(n(1, 5, 5), "can't lose them");
        assert_eq!(n(2, 5, 4), "can't lose them");
        assert_eq!(n(2, 1, 1), "hibernating");
        assert_eq!(n(1, 2, 2), "hibernating");
        assert_eq!(n(1, 1, 1), "lost");
        assert_eq!(n(1, 1, 2), "hibernating");
    }
}
