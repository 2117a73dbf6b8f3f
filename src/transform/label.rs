//! Segment ids and names: order KMeans clusters by descending mean CLV (so ids
//! are stable across runs and 0 is the most valuable) and derive a readable,
//! unique label from each segment's profile: a profile word, then, for
//! segments sharing it, how they differ. Report tables are not built here.

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
            p.clv += f.clv();
            p.purchase_count += f64::from(f.purchase_count());
            if let Some(r) = f.days_since_last_purchase() {
                p.recency += f64::from(r);
                dated += 1;
            }
            if let Some(q) = f.purchase_frequency() {
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

/// One label per segment (given in segment order), relative to all buyers.
///
/// Each segment first gets a profile word ([`base`]: `lapsed`, `loyal
/// regular`, …). Segments sharing one are then told apart by how they differ
/// ([`qualify`]): `lapsed high-value` / `lapsed low-value`. The labels are
/// unique in every case, and never a numbered repeat.
pub fn labels(segments: &[Profile], buyers: &Profile) -> Vec<String> {
    let bases: Vec<&str> = segments.iter().map(|p| base(p, buyers)).collect();
    let mut words: Vec<Vec<&str>> = vec![Vec::new(); segments.len()];
    let mut done = vec![false; segments.len()];
    for i in 0..segments.len() {
        if done[i] {
            continue;
        }
        let group: Vec<usize> = (i..segments.len())
            .filter(|&j| bases[j] == bases[i])
            .collect();
        for &j in &group {
            done[j] = true;
        }
        // Skip the axis the word already names (`high-value` gets no
        // `low-value`), and one whose word would spell another profile word
        // (`high-value` + `frequent`).
        let axes: Vec<&Axis> = AXES
            .iter()
            .filter(|a| {
                !bases[i].contains(a.higher)
                    && !BASES.contains(&format!("{} {}", bases[i], a.higher).as_str())
            })
            .collect();
        qualify(&group, segments, &axes, &mut words);
    }
    bases
        .iter()
        .zip(words)
        .map(|(b, w)| std::iter::once(*b).chain(w).collect::<Vec<_>>().join(" "))
        .collect()
}

/// Every profile word [`base`] gives.
const BASES: [&str; 8] = [
    NO_PURCHASES,
    "high-value lapsed",
    "lapsed",
    "high-value frequent",
    "high-value",
    "at risk",
    "loyal regular",
    "occasional",
];

/// The profile word of a segment, relative to all buyers.
fn base(p: &Profile, buyers: &Profile) -> &'static str {
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

/// A way two segments can differ, and the words for its two sides.
struct Axis {
    /// Word for the side with the larger `value`.
    higher: &'static str,
    lower: &'static str,
    value: fn(&Profile) -> f64,
}

/// In the order ties between equally separating axes are broken: what a
/// marketer asks first (worth, then habit, then how long ago, then size).
const AXES: [Axis; 5] = [
    Axis {
        higher: "high-value",
        lower: "low-value",
        value: |p| p.clv,
    },
    Axis {
        higher: "frequent",
        lower: "infrequent",
        value: |p| p.frequency,
    },
    Axis {
        higher: "many-order",
        lower: "few-order",
        value: |p| p.purchase_count,
    },
    Axis {
        higher: "recent",
        lower: "long-idle",
        // Fewer days since the last purchase is the "higher" (more recent) side.
        value: |p| -p.recency,
    },
    Axis {
        higher: "large",
        lower: "small",
        value: |p| p.customers as f64,
    },
];

/// Tell the segments of `group` apart by appending words to `words`: split
/// the group in two at the largest relative gap of the axis that separates it
/// most, name the sides with that axis's words, and repeat within each side
/// on the remaining axes. Segments that no remaining axis separates
/// (identical profiles, which KMeans does not produce, or more than 32
/// segments under one profile word) get `first`, `second`, … in segment
/// order, so the labels stay unique.
fn qualify<'a>(
    group: &[usize],
    segments: &[Profile],
    axes: &[&'a Axis],
    words: &mut [Vec<&'a str>],
) {
    if group.len() < 2 {
        return;
    }
    let mut best: Option<(f64, usize, Vec<usize>)> = None;
    for (a, axis) in axes.iter().enumerate() {
        let mut sorted = group.to_vec();
        let v = |i: usize| (axis.value)(&segments[i]);
        // Higher side first; equal values keep segment order.
        sorted.sort_by(|&x, &y| v(y).total_cmp(&v(x)).then(x.cmp(&y)));
        for cut in 1..sorted.len() {
            let (hi, lo) = (v(sorted[cut - 1]), v(sorted[cut]));
            let scale = hi.abs().max(lo.abs());
            let gap = if scale > 0.0 { (hi - lo) / scale } else { 0.0 };
            if gap > 0.0 && best.as_ref().is_none_or(|(g, _, _)| gap > *g) {
                let mut order = sorted.clone();
                // Mark the cut by the length of the higher side.
                order.truncate(cut);
                best = Some((gap, a, order));
            }
        }
    }
    let Some((_, a, higher)) = best else {
        for (rank, &i) in group.iter().enumerate() {
            words[i].push(ORDINALS.get(rank).copied().unwrap_or("further"));
        }
        if group.len() > ORDINALS.len() {
            // Beyond the spelled-out ordinals, keep the labels apart anyway.
            let rest: Vec<usize> = group[ORDINALS.len()..].to_vec();
            qualify(&rest, segments, &[], words);
        }
        return;
    };
    let axis = axes[a];
    let lower: Vec<usize> = group
        .iter()
        .copied()
        .filter(|i| !higher.contains(i))
        .collect();
    for &i in &higher {
        words[i].push(axis.higher);
    }
    for &i in &lower {
        words[i].push(axis.lower);
    }
    let rest: Vec<&Axis> = axes
        .iter()
        .enumerate()
        .filter(|&(b, _)| b != a)
        .map(|(_, x)| *x)
        .collect();
    let mut higher = higher;
    higher.sort_unstable();
    qualify(&higher, segments, &rest, words);
    qualify(&lower, segments, &rest, words);
}

/// Words for segments no profile axis tells apart, in segment order.
const ORDINALS: [&str; 10] = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
];

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
                // One purchase apart on average (4 vs 3) is the widest gap.
                "occasional many-order",
                "occasional few-order",
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

    /// See: issue 10 (labels repeated as `lapsed`, `lapsed 2`).
    #[test]
    fn issue_10_segments_sharing_a_word_say_how_they_differ() {
        let buyers = p(20_000.0, 13.0, 150.0, 1.5);
        let segs = [
            p(9_000.0, 6.0, 500.0, 1.0),
            p(2_000.0, 5.5, 480.0, 1.1),
            p(1_800.0, 4.0, 60.0, 0.9),
            p(1_700.0, 4.0, 70.0, 0.5),
        ];
        assert_eq!(
            labels(&segs, &buyers),
            vec![
                "lapsed high-value",
                "lapsed low-value",
                "occasional frequent",
                "occasional infrequent",
            ]
        );
        // Three under one word: split at the widest gap, then within a side.
        let segs = [
            p(9_000.0, 6.0, 500.0, 1.0),
            p(2_000.0, 5.5, 480.0, 1.1),
            p(1_900.0, 2.0, 700.0, 1.1),
        ];
        assert_eq!(
            labels(&segs, &buyers),
            vec![
                "lapsed high-value",
                "lapsed low-value many-order",
                "lapsed low-value few-order",
            ]
        );
        // The profile word's own axis is not repeated: two high-value segments
        // differ in something else.
        let segs = [p(90_000.0, 40.0, 10.0, 3.0), p(80_000.0, 40.0, 40.0, 3.0)];
        assert_eq!(
            labels(&segs, &buyers),
            vec![
                "high-value frequent recent",
                "high-value frequent long-idle"
            ]
        );
        // Identical profiles (never from KMeans) still get distinct labels.
        let same = vec![p(1_000.0, 2.0, 60.0, 1.0); 3];
        assert_eq!(
            labels(&same, &buyers),
            vec!["occasional first", "occasional second", "occasional third"]
        );
    }

    /// Property: over many random sets of profiles, from a coarse grid so that
    /// shared words and ties are common, labels are unique, never end in a
    /// number, and start with the segment's profile word.
    #[test]
    fn labels_are_unique_and_unnumbered_for_random_profiles() {
        use rand::RngExt;
        let mut rng = crate::rng::seeded(10, "labels");
        let buyers = p(20_000.0, 13.0, 150.0, 1.5);
        for _ in 0..3_000 {
            let k = rng.random_range(1..=40);
            let segs: Vec<Profile> = (0..k)
                .map(|_| Profile {
                    customers: rng.random_range(0..4) * 100,
                    clv: f64::from(rng.random_range(0..5u32)) * 15_000.0,
                    purchase_count: f64::from(rng.random_range(0..4u32)) * 6.0,
                    recency: f64::from(rng.random_range(0..5u32)) * 120.0,
                    frequency: f64::from(rng.random_range(0..3u32)),
                })
                .collect();
            let got = labels(&segs, &buyers);
            assert_eq!(got.len(), k);
            let mut sorted = got.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), k, "repeated label in {got:?} for {segs:?}");
            for (l, s) in got.iter().zip(&segs) {
                assert!(
                    !l.ends_with(|c: char| c.is_ascii_digit()),
                    "numbered label {l}"
                );
                assert!(l.starts_with(base(s, &buyers)), "{l} for {s:?}");
                assert!(BASES.contains(&base(s, &buyers)), "{s:?}");
            }
        }
    }
}
