//! Segment ids and names: order KMeans clusters by descending mean CLV (so ids
//! are stable across runs and 0 is the most valuable) and derive a readable,
//! unique label from each segment's profile. Report tables are not built here.

use super::features::Features;

/// Label of the rule-based segment of customers with no purchase.
pub const NO_PURCHASES: &str = "no purchases";

/// Recency (days since last purchase) beyond which a segment reads as lapsed:
/// a year without buying, in a two-year window.
const LAPSED_DAYS: f64 = 365.0;
/// Half a year without buying: still a customer, but slipping.
const AT_RISK_DAYS: f64 = 180.0;
/// Mean CLV at least this many times the buyers' mean reads as high value.
const HIGH_VALUE_FACTOR: f64 = 2.0;

/// Mean behaviour of a group of customers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub customers: u64,
    pub clv: f64,
    pub purchase_count: f64,
    pub recency: f64,
    pub frequency: f64,
}

impl Profile {
    /// Means over the customers; recency and frequency over those whose
    /// value is known.
    pub fn of<'a>(features: impl Iterator<Item = &'a Features>) -> Profile {
        let mut p = Profile::default();
        let (mut dated, mut timed) = (0u64, 0u64);
        for f in features {
            p.customers += 1;
            p.clv += f.clv;
            p.purchase_count += f64::from(f.purchase_count);
            if let Some(r) = f.days_since_last_purchase {
                p.recency += f64::from(r);
                dated += 1;
            }
            if let Some(q) = f.purchase_frequency {
                p.frequency += q;
                timed += 1;
            }
        }
        if p.customers > 0 {
            let n = p.customers as f64;
            p.clv /= n;
            p.purchase_count /= n;
        }
        p.recency /= dated.max(1) as f64;
        p.frequency /= timed.max(1) as f64;
        p
    }
}

/// `rank[cluster]` = segment id, by descending mean CLV (ties: lower cluster first).
pub fn rank_by_clv(profiles: &[Profile]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..profiles.len()).collect();
    order.sort_by(|&a, &b| profiles[b].clv.total_cmp(&profiles[a].clv).then(a.cmp(&b)));
    let mut rank = vec![0u32; profiles.len()];
    for (seg, cluster) in order.into_iter().enumerate() {
        rank[cluster] = seg as u32;
    }
    rank
}

/// One label per segment (given in segment order), relative to all buyers,
/// made unique by appending ` 2`, ` 3`, … to repeats.
pub fn labels(segments: &[Profile], buyers: &Profile) -> Vec<String> {
    let raw: Vec<&str> = segments.iter().map(|p| label(p, buyers)).collect();
    unique(&raw)
}

fn label(p: &Profile, buyers: &Profile) -> &'static str {
    let high_value = p.clv >= HIGH_VALUE_FACTOR * buyers.clv && p.clv > 0.0;
    if p.customers > 0 && p.purchase_count == 0.0 {
        NO_PURCHASES
    } else if p.recency > LAPSED_DAYS {
        if high_value {
            "high-value lapsed"
        } else {
            "lapsed"
        }
    } else if high_value {
        if p.frequency >= buyers.frequency {
            "high-value frequent"
        } else {
            "high-value"
        }
    } else if p.recency > AT_RISK_DAYS {
        "at risk"
    } else if p.purchase_count >= buyers.purchase_count {
        "loyal regular"
    } else {
        "occasional"
    }
}

/// Append a number to repeated labels so every segment has its own name.
pub fn unique(raw: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let seen = raw[..i].iter().filter(|x| *x == r).count();
        let mut name = if seen == 0 {
            (*r).to_owned()
        } else {
            format!("{r} {}", seen + 1)
        };
        // A numbered name could clash with a literal one; keep counting.
        let mut extra = seen + 1;
        while out.contains(&name) {
            extra += 1;
            name = format!("{r} {extra}");
        }
        out.push(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(clv: f64, count: f64, recency: f64, frequency: f64) -> Profile {
        Profile {
            customers: 10,
            clv,
            purchase_count: count,
            recency,
            frequency,
        }
    }

    #[test]
    fn ranks_by_descending_clv() {
        let profiles = [
            p(10.0, 1.0, 1.0, 1.0),
            p(300.0, 1.0, 1.0, 1.0),
            p(50.0, 1.0, 1.0, 1.0),
        ];
        assert_eq!(rank_by_clv(&profiles), vec![2, 0, 1]);
    }

    #[test]
    fn persona_like_profiles_get_their_names() {
        let buyers = p(20_000.0, 13.0, 150.0, 1.5);
        let segs = [
            p(110_000.0, 45.0, 7.0, 3.0),
            p(16_000.0, 18.0, 22.0, 1.4),
            p(4_400.0, 5.5, 470.0, 1.3),
            p(1_800.0, 4.0, 60.0, 0.9),
            p(1_700.0, 3.0, 70.0, 0.8),
        ];
        assert_eq!(
            labels(&segs, &buyers),
            vec![
                "high-value frequent",
                "loyal regular",
                "lapsed",
                "occasional",
                "occasional 2"
            ]
        );
        assert_eq!(
            labels(
                &[Profile {
                    customers: 3,
                    ..Profile::default()
                }],
                &buyers
            ),
            vec![NO_PURCHASES]
        );
    }

    #[test]
    fn unique_never_repeats() {
        assert_eq!(unique(&["a", "a 2", "a"]), vec!["a", "a 2", "a 3"]);
    }
}
